/* context.c - caio Context: one libcaio context, submission and completion delivery. */
#include "pycaio.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REAP_CHUNK	64

/* ---- locking: libcaio calls on one context must not overlap ---- */

static int ctx_usable(pycaio_context *ctx)
{
	if (ctx->caio && !ctx->closed)
		return 0;
	PyErr_SetString(PyExc_RuntimeError, ctx->caio || ctx->closed ?
			"caio context is closed" : "caio context is not initialised");
	return -1;
}

/* Take the lock (waiting without the GIL); fails if the context closed. */
static int ctx_lock(pycaio_context *ctx)
{
	if (ctx_usable(ctx))
		return -1;
	if (!PyThread_acquire_lock(ctx->lock, NOWAIT_LOCK)) {
		Py_BEGIN_ALLOW_THREADS
		PyThread_acquire_lock(ctx->lock, WAIT_LOCK);
		Py_END_ALLOW_THREADS
	}
	if (ctx_usable(ctx) == 0)
		return 0;
	PyThread_release_lock(ctx->lock);
	return -1;
}

static void ctx_unlock(pycaio_context *ctx)
{
	PyThread_release_lock(ctx->lock);
}

/* ---- completions ---- */

/*
 * Move what the libcaio callbacks collected into ops[] (lock held): an
 * operation with more pieces to go is resubmitted and stays in flight.
 * Returns how many operations are finished.
 */
static size_t take_done(pycaio_context *ctx, pycaio_operation **ops)
{
	size_t n = 0, continued = 0;

	for (size_t i = 0; i < ctx->ndone; i++) {
		pycaio_operation *op = ctx->done[i];

		if (pycaio_op_continue(ctx, op))
			continued++;
		else
			ops[n++] = op;
	}
	ctx->ndone = 0;
	if (continued)
		caio_flush(ctx->caio);
	return n;
}

/* Finish every operation; keep the first Python error and report it. */
static int finish_all(pycaio_operation **ops, size_t n)
{
	PyObject *type = NULL, *value = NULL, *tb = NULL;

	for (size_t i = 0; i < n; i++) {
		if (pycaio_op_finish(ops[i]) == 0)
			continue;
		if (!type)
			PyErr_Fetch(&type, &value, &tb);
		else
			PyErr_WriteUnraisable(NULL);
	}
	if (!type)
		return 0;
	PyErr_Restore(type, value, tb);
	return -1;
}

/* Take and finish what is collected; the lock is released on return. */
static int deliver(pycaio_context *ctx, size_t *finished)
{
	pycaio_operation *stack[REAP_CHUNK], **ops = stack;
	size_t n;
	int err;

	if (ctx->ndone > REAP_CHUNK) {
		ops = malloc(ctx->ndone * sizeof(*ops));
		if (!ops) {
			ctx_unlock(ctx);
			PyErr_NoMemory();
			return -1;
		}
	}
	n = take_done(ctx, ops);
	ctx_unlock(ctx);
	err = finish_all(ops, n);
	if (ops != stack)
		free(ops);
	if (finished)
		*finished += n;
	return err;
}

static void wake_reader(pycaio_context *ctx)
{
	uint64_t one = 1;

	/* Left completions behind: keep the eventfd readable for the loop. */
	if (write(ctx->efd, &one, sizeof(one)) < 0) {
		/* saturated: readable anyway */
	}
}

/* Reap without blocking until nothing is ready or max (0: no limit) ran. */
static int reap_ready(pycaio_context *ctx, unsigned max, size_t *finished)
{
	unsigned total = 0;

	for (;;) {
		unsigned chunk = REAP_CHUNK;
		int n;

		if (max && max - total < chunk)
			chunk = max - total;
		if (ctx_lock(ctx))
			return -1;
		n = caio_reap(ctx->caio, chunk);
		if (n < 0) {
			ctx_unlock(ctx);
			pycaio_error(n, "caio_reap");
			return -1;
		}
		if (deliver(ctx, finished))
			return -1;
		total += n;
		if ((unsigned)n < chunk)
			return 0;
		if (max && total >= max) {
			wake_reader(ctx);
			return 0;
		}
	}
}

/* Block (without the GIL) until min_nr callbacks ran or timeout_ns passed. */
static int wait_for(pycaio_context *ctx, unsigned min_nr, int64_t timeout_ns,
		    size_t *finished)
{
	int r = 0;

	if (ctx_lock(ctx))
		return -1;
	if (caio_ctx_pending(ctx->caio)) {
		Py_BEGIN_ALLOW_THREADS
		r = caio_wait(ctx->caio, min_nr, timeout_ns);
		Py_END_ALLOW_THREADS
		if (r < 0 && r != -EINTR) {
			ctx_unlock(ctx);
			pycaio_error(r, "caio_wait");
			return -1;
		}
		return deliver(ctx, finished);
	}
	ctx_unlock(ctx);
	if (timeout_ns > 0) {
		/* Nothing pending: sleep out the timeout like io_getevents(). */
		struct pollfd pfd = { .fd = ctx->efd, .events = POLLIN };

		Py_BEGIN_ALLOW_THREADS
		r = poll(&pfd, 1, (int)((timeout_ns + 999999) / 1000000));
		Py_END_ALLOW_THREADS
	}
	return 0;
}

/* ---- life cycle ---- */

static PyObject *ctx_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	pycaio_context *ctx = (pycaio_context *)type->tp_alloc(type, 0);

	if (ctx)
		ctx->efd = -1;
	return (PyObject *)ctx;
}

static int raise_ctx_new(int err, const char *backend, const char *reason)
{
	const char *why = *reason ? reason : caio_strerror(err);

	if (err == -EINVAL)
		PyErr_Format(PyExc_ValueError, "caio backend %s: %s", backend, why);
	else
		pycaio_oserror(err, "caio backend %s: %s", backend, why);
	return -1;
}

static int ctx_open(pycaio_context *ctx, const char *backend, unsigned max_requests,
		    int sqpoll, unsigned threads)
{
	char reason[512] = "";
	struct caio_params params = {
		.size = sizeof(params),
		.flags = CAIO_CTX_NO_ENV | CAIO_CTX_QUIET | CAIO_CTX_LAZY_EVENTFD |
			 (sqpoll ? CAIO_CTX_SQPOLL : 0),
		.max_requests = max_requests,
		.threads = threads,
		.backend = backend,
		.error = reason,
		.error_len = sizeof(reason),
	};
	caio_ctx *caio;
	int r;

	Py_BEGIN_ALLOW_THREADS
	r = caio_ctx_new(&caio, &params);
	Py_END_ALLOW_THREADS
	if (r < 0)
		return raise_ctx_new(r, backend, reason);
	ctx->max_requests = caio_ctx_max_requests(caio);
	ctx->done = calloc(ctx->max_requests, sizeof(*ctx->done));
	ctx->lock = PyThread_allocate_lock();
	if (!ctx->done || !ctx->lock) {
		caio_ctx_destroy(caio);
		PyErr_NoMemory();
		return -1;
	}
	ctx->done_cap = ctx->max_requests;
	ctx->caio = caio;
	ctx->efd = caio_ctx_eventfd(caio);
	ctx->pid = getpid();
	ctx->sqpoll = sqpoll && caio_ctx_backend(caio) == CAIO_BACKEND_URING;
	/* Page-cached reads often finish inside the flush: io_uring and AIO
	 * complete them in the kernel call, the pool reads them with
	 * RWF_NOWAIT on the caller's thread.  Reaping at once spares the
	 * event loop a trip through the eventfd. */
	ctx->reap_after_flush = caio_ctx_backend(caio) != CAIO_BACKEND_SYNC;
	ctx->refuse_streams = caio_ctx_backend(caio) == CAIO_BACKEND_LINUX;
	snprintf(ctx->backend, sizeof(ctx->backend), "%s", caio_ctx_backend_name(caio));
	return 0;
}

static int ctx_init(pycaio_context *ctx, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "backend", "max_requests", "sqpoll", "pool_size", NULL };
	const char *backend;
	Py_ssize_t max_requests = 32, pool_size = 0;
	int sqpoll = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|npn:Context", kwlist, &backend,
					 &max_requests, &sqpoll, &pool_size))
		return -1;
	if (ctx->caio || ctx->closed) {
		PyErr_SetString(PyExc_RuntimeError, "Context.__init__ called twice");
		return -1;
	}
	if (max_requests < 0 || max_requests > (1 << 20) || pool_size < 0 || pool_size > 1024) {
		PyErr_SetString(PyExc_ValueError,
				"max_requests must be in 0..1048576 and pool_size in 0..1024");
		return -1;
	}
	return ctx_open(ctx, backend, max_requests, sqpoll, pool_size);
}

/* In a forked child the parent's requests never complete here: fail them. */
static int fail_inflight(pycaio_context *ctx, int64_t res)
{
	int err = 0;

	while (ctx->inflight) {
		pycaio_operation *op = ctx->inflight;

		pycaio_op_fail(op, res);
		if (pycaio_op_finish(op)) {
			if (err)
				PyErr_WriteUnraisable(NULL);
			err = -1;
		}
	}
	return err;
}

static int ctx_close(pycaio_context *ctx)
{
	caio_ctx *caio = ctx->caio;
	size_t finished = 0;

	if (!caio || ctx->closed)
		return 0;
	if (getpid() != ctx->pid) {
		ctx->closed = 1;
		ctx->caio = NULL;
		caio_ctx_destroy(caio);	/* the child's copy: waits for nothing */
		return fail_inflight(ctx, -EBADFD);
	}
	if (ctx_lock(ctx))
		return -1;
	ctx->closed = 1;	/* from now on every other call raises */
	/* Cancels what it can, waits for the rest, runs every callback. */
	Py_BEGIN_ALLOW_THREADS
	caio_ctx_destroy(caio);
	Py_END_ALLOW_THREADS
	if (deliver(ctx, &finished)) {
		ctx->caio = NULL;
		fail_inflight(ctx, -ECANCELED);
		return -1;
	}
	ctx->caio = NULL;
	return fail_inflight(ctx, -ECANCELED);
}

static void ctx_dealloc(pycaio_context *ctx)
{
	PyObject *type, *value, *tb;

	/* In-flight operations hold a reference: nothing is pending here. */
	PyErr_Fetch(&type, &value, &tb);
	if (ctx_close(ctx))
		PyErr_WriteUnraisable((PyObject *)ctx);
	PyErr_Restore(type, value, tb);
	if (ctx->lock)
		PyThread_free_lock(ctx->lock);
	free(ctx->done);
	Py_TYPE(ctx)->tp_free((PyObject *)ctx);
}

/* ---- submission ---- */

static int check_operations(PyObject *const *args, Py_ssize_t nargs)
{
	for (Py_ssize_t i = 0; i < nargs; i++) {
		if (PyObject_TypeCheck(args[i], &pycaio_operation_type))
			continue;
		PyErr_Format(PyExc_ValueError, "argument %zd is not a caio Operation: %R",
			     i, args[i]);
		return -1;
	}
	return 0;
}

/* Start ops[] with the lock held; returns the number accepted or -1. */
static Py_ssize_t start_all(pycaio_context *ctx, PyObject *const *args,
			    Py_ssize_t nargs, int *full)
{
	Py_ssize_t accepted = 0;

	for (Py_ssize_t i = 0; i < nargs; i++) {
		pycaio_operation *op = (pycaio_operation *)args[i];
		int r;

		if (op->state == PYCAIO_FLIGHT)
			continue;	/* already submitted: like the original, skip it */
		r = pycaio_op_start(ctx, op);
		if (r == -EAGAIN) {
			*full = 1;
			break;
		}
		if (r == -1000)
			return -1;
		if (r < 0) {
			pycaio_error(r, "submit");
			return -1;
		}
		accepted++;
	}
	return accepted;
}

/* ContextFullError; its `accepted` says how many went in before it filled. */
static PyObject *raise_full(pycaio_context *ctx, Py_ssize_t accepted)
{
	PyObject *msg = PyUnicode_FromFormat(
		"caio context is full: max_requests=%u operations are pending "
		"(%zd of this submit accepted)", ctx->max_requests, accepted);
	PyObject *exc, *count;

	if (!msg)
		return NULL;
	exc = PyObject_CallFunction(pycaio_full_error, "iO", EAGAIN, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	count = PyLong_FromSsize_t(accepted);
	if (count && PyObject_SetAttrString(exc, "accepted", count) == 0)
		PyErr_SetObject(pycaio_full_error, exc);
	Py_XDECREF(count);
	Py_DECREF(exc);
	return NULL;
}

static PyObject *submit_ops(pycaio_context *ctx, PyObject *const *args,
			    Py_ssize_t nargs, int flush)
{
	Py_ssize_t accepted;
	int full = 0, r = 0;

	if (check_operations(args, nargs) || ctx_lock(ctx))
		return NULL;
	accepted = start_all(ctx, args, nargs, &full);
	if (flush && accepted != 0)
		r = caio_flush(ctx->caio);	/* also hands over the ones before an error */
	ctx_unlock(ctx);
	if (accepted < 0)
		return NULL;
	if (r < 0)
		return pycaio_error(r, "caio_flush");
	/* Like io_submit(): a partial batch is reported by its count. */
	if (full && accepted == 0)
		return raise_full(ctx, accepted);
	return PyLong_FromSsize_t(accepted);
}

static PyObject *ctx_submit(pycaio_context *ctx, PyObject *const *args, Py_ssize_t nargs)
{
	return submit_ops(ctx, args, nargs, 1);
}

static PyObject *ctx_queue(pycaio_context *ctx, PyObject *const *args, Py_ssize_t nargs)
{
	return submit_ops(ctx, args, nargs, 0);
}

static PyObject *ctx_flush(pycaio_context *ctx, PyObject *unused)
{
	int r;

	if (ctx_lock(ctx))
		return NULL;
	r = caio_flush(ctx->caio);
	ctx_unlock(ctx);
	if (r < 0)
		return pycaio_error(r, "caio_flush");
	return PyLong_FromLong(r);
}

/*
 * _submit(op, future, flush): the asyncio fast path.  The future is
 * resolved with get_value()'s result or exception when the operation ends;
 * with flush, completions the backend finished inside the kernel call are
 * delivered at once, so the caller often never has to suspend.
 */
static PyObject *ctx_submit_future(pycaio_context *ctx, PyObject *const *args,
				   Py_ssize_t nargs)
{
	pycaio_operation *op;
	int r, flush;

	if (nargs != 3 || check_operations(args, 1)) {
		if (!PyErr_Occurred())
			PyErr_SetString(PyExc_TypeError, "_submit(op, future, flush)");
		return NULL;
	}
	op = (pycaio_operation *)args[0];
	flush = PyObject_IsTrue(args[2]);
	if (op->state == PYCAIO_FLIGHT) {
		PyErr_SetString(PyExc_RuntimeError, "operation is already in progress");
		return NULL;
	}
	if (ctx_lock(ctx))
		return NULL;
	Py_XSETREF(op->future, Py_NewRef(args[1]));
	r = pycaio_op_start(ctx, op);
	if (r == 0 && flush) {
		int f = caio_flush(ctx->caio);

		if (f < 0)
			r = f;	/* the operation stays queued for the next flush */
	}
	ctx_unlock(ctx);
	if (op->state != PYCAIO_FLIGHT)
		Py_CLEAR(op->future);
	if (r == -1000)
		return NULL;
	if (r == -EAGAIN)
		return raise_full(ctx, 0);
	if (r < 0 && op->state != PYCAIO_FLIGHT)
		return pycaio_error(r, "submit");
	if (r < 0)
		return pycaio_error(r, "caio_flush");
	if (flush && ctx->reap_after_flush && reap_ready(ctx, 0, NULL))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *ctx_cancel(pycaio_context *ctx, PyObject *const *args, Py_ssize_t nargs)
{
	long cancelled = 0;

	if (check_operations(args, nargs) || ctx_lock(ctx))
		return NULL;
	for (Py_ssize_t i = 0; i < nargs; i++) {
		pycaio_operation *op = (pycaio_operation *)args[i];
		int r;

		if (op->state != PYCAIO_FLIGHT || op->ctx != ctx || !op->req)
			continue;
		op->cancelled = 1;
		r = caio_cancel(ctx->caio, op->req);
		/* 0: will complete with ECANCELED; EINPROGRESS: a kernel cancel
		 * is on its way and the result will tell. */
		if (r == 0 || r == -EINPROGRESS)
			cancelled++;
	}
	ctx_unlock(ctx);
	return PyLong_FromLong(cancelled);
}

static int parse_timeout(PyObject *obj, int64_t *timeout_ns)
{
	double seconds;

	if (!obj || obj == Py_None) {
		*timeout_ns = -1;
		return 0;
	}
	seconds = PyFloat_AsDouble(obj);
	if (seconds == -1.0 && PyErr_Occurred())
		return -1;
	if (seconds < 0 || isnan(seconds)) {
		PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 or None");
		return -1;
	}
	*timeout_ns = seconds > 9e9 ? -1 : (int64_t)(seconds * 1e9);
	return 0;
}

static PyObject *ctx_process_events(pycaio_context *ctx, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "max_requests", "min_requests", "timeout", NULL };
	unsigned int max_requests = 512, min_requests = 0;
	PyObject *timeout_obj = NULL;
	int64_t timeout_ns;
	size_t finished = 0;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "|IIO:process_events", kwlist,
					 &max_requests, &min_requests, &timeout_obj) ||
	    parse_timeout(timeout_obj, &timeout_ns))
		return NULL;
	if (!timeout_obj)
		timeout_ns = 0;
	if (max_requests && min_requests > max_requests) {
		PyErr_Format(PyExc_ValueError, "min_requests (%u) must be <= max_requests (%u)",
			     min_requests, max_requests);
		return NULL;
	}
	if (reap_ready(ctx, max_requests, &finished))
		return NULL;
	if (finished < min_requests && timeout_ns != 0 &&
	    wait_for(ctx, min_requests - finished, timeout_ns, &finished))
		return NULL;
	return PyLong_FromSize_t(finished);
}

static PyObject *ctx_poll(pycaio_context *ctx, PyObject *unused)
{
	uint64_t count;

	if (ctx_usable(ctx))
		return NULL;
	if (read(ctx->efd, &count, sizeof(count)) != sizeof(count))
		return PyErr_SetFromErrno(PyExc_OSError);	/* EAGAIN: BlockingIOError */
	return PyLong_FromUnsignedLongLong(count);
}

static PyObject *ctx_close_method(pycaio_context *ctx, PyObject *unused)
{
	if (ctx_close(ctx))
		return NULL;
	Py_RETURN_NONE;
}

static PyObject *ctx_enter(pycaio_context *ctx, PyObject *unused)
{
	if (ctx_usable(ctx))
		return NULL;
	return Py_NewRef(ctx);
}

static PyObject *ctx_exit(pycaio_context *ctx, PyObject *args)
{
	return ctx_close_method(ctx, NULL);
}

/* ---- introspection ---- */

static int put_u64(PyObject *dict, const char *key, uint64_t value)
{
	PyObject *v = PyLong_FromUnsignedLongLong(value);
	int r;

	if (!v)
		return -1;
	r = PyDict_SetItemString(dict, key, v);
	Py_DECREF(v);
	return r;
}

static PyObject *stats_dict(const struct caio_stats *st)
{
	PyObject *d = PyDict_New();

	if (!d)
		return NULL;
	if (put_u64(d, "pending", st->pending) || put_u64(d, "requests", st->requests) ||
	    put_u64(d, "completions", st->completions) ||
	    put_u64(d, "cancelled", st->cancelled) || put_u64(d, "errors", st->errors) ||
	    put_u64(d, "flushes", st->flushes) ||
	    put_u64(d, "kernel_submits", st->kernel_submits) ||
	    put_u64(d, "kernel_requests", st->kernel_requests) ||
	    put_u64(d, "kernel_waits", st->kernel_waits) ||
	    put_u64(d, "max_batch", st->max_batch) ||
	    put_u64(d, "fallback_requests", st->fallback_requests) ||
	    put_u64(d, "bytes_read", st->bytes_read) ||
	    put_u64(d, "bytes_written", st->bytes_written) ||
	    put_u64(d, "kernel_refusals", st->kernel_refusals)) {
		Py_DECREF(d);
		return NULL;
	}
	return d;
}

static PyObject *ctx_stats(pycaio_context *ctx, PyObject *unused)
{
	struct caio_stats st = { .size = sizeof(st) };
	int r;

	if (ctx_lock(ctx))
		return NULL;
	r = caio_ctx_stats(ctx->caio, &st);
	ctx_unlock(ctx);
	if (r < 0)
		return pycaio_error(r, "caio_ctx_stats");
	return stats_dict(&st);
}

static PyObject *ctx_get_fileno(pycaio_context *ctx, void *closure)
{
	if (ctx_usable(ctx))
		return NULL;
	return PyLong_FromLong(ctx->efd);
}

static PyObject *ctx_get_max_requests(pycaio_context *ctx, void *closure)
{
	return PyLong_FromUnsignedLong(ctx->max_requests);
}

static PyObject *ctx_get_backend(pycaio_context *ctx, void *closure)
{
	return PyUnicode_FromString(ctx->backend);
}

static PyObject *ctx_get_sqpoll(pycaio_context *ctx, void *closure)
{
	return PyBool_FromLong(ctx->sqpoll);
}

static PyObject *ctx_get_closed(pycaio_context *ctx, void *closure)
{
	return PyBool_FromLong(ctx->closed || !ctx->caio);
}

static PyObject *ctx_get_pending(pycaio_context *ctx, void *closure)
{
	if (ctx_usable(ctx))
		return NULL;
	return PyLong_FromUnsignedLong(caio_ctx_pending(ctx->caio));
}

static PyObject *ctx_get_selection(pycaio_context *ctx, void *closure)
{
	if (ctx_usable(ctx))
		return NULL;
	return PyUnicode_FromString(caio_ctx_selection(ctx->caio));
}

static PyObject *ctx_repr(pycaio_context *ctx)
{
	return PyUnicode_FromFormat("<%s backend=%s max_requests=%u%s>",
				    Py_TYPE(ctx)->tp_name, ctx->backend, ctx->max_requests,
				    ctx->closed || !ctx->caio ? " closed" : "");
}

static PyMethodDef ctx_methods[] = {
	{ "submit", (PyCFunction)(void (*)(void))ctx_submit, METH_FASTCALL,
	  "submit(*operations) -> int\n\nQueue the operations and hand them to the kernel "
	  "in one call; returns how many were accepted (fewer when the context is full; "
	  "BlockingIOError when none fit)." },
	{ "queue", (PyCFunction)(void (*)(void))ctx_queue, METH_FASTCALL,
	  "queue(*operations) -> int\n\nLike submit() but nothing reaches the kernel until flush()." },
	{ "flush", (PyCFunction)ctx_flush, METH_NOARGS,
	  "flush() -> int\n\nHand every queued operation to the kernel in one call." },
	{ "cancel", (PyCFunction)(void (*)(void))ctx_cancel, METH_FASTCALL,
	  "cancel(*operations) -> int\n\nCancel where the backend can; returns how many "
	  "cancellations were started.  Each operation still completes through "
	  "process_events() with -ECANCELED or, if it ran anyway, its real result." },
	{ "process_events", (PyCFunction)(void (*)(void))ctx_process_events,
	  METH_VARARGS | METH_KEYWORDS,
	  "process_events(max_requests=512, min_requests=0, timeout=0) -> int\n\n"
	  "Run the callbacks of finished operations; wait up to timeout seconds "
	  "(None: no limit) for min_requests of them.  Returns how many finished." },
	{ "poll", (PyCFunction)ctx_poll, METH_NOARGS,
	  "poll() -> int\n\nRead the eventfd counter; BlockingIOError when nothing was signalled." },
	{ "close", (PyCFunction)ctx_close_method, METH_NOARGS,
	  "close()\n\nCancel or wait for every pending operation, run its callback, "
	  "release the context.  Idempotent." },
	{ "stats", (PyCFunction)ctx_stats, METH_NOARGS, "stats() -> dict of libcaio counters" },
	{ "_submit", (PyCFunction)(void (*)(void))ctx_submit_future, METH_FASTCALL, NULL },
	{ "__enter__", (PyCFunction)ctx_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)ctx_exit, METH_VARARGS, NULL },
	{ NULL }
};

static PyGetSetDef ctx_getset[] = {
	{ "fileno", (getter)ctx_get_fileno, NULL,
	  "the eventfd that is readable while completions wait (for loop.add_reader)", NULL },
	{ "max_requests", (getter)ctx_get_max_requests, NULL, "operation slots", NULL },
	{ "backend", (getter)ctx_get_backend, NULL, "the libcaio backend name", NULL },
	{ "sqpoll", (getter)ctx_get_sqpoll, NULL, "io_uring submission polling asked for", NULL },
	{ "closed", (getter)ctx_get_closed, NULL, "close() was called", NULL },
	{ "pending", (getter)ctx_get_pending, NULL, "operations holding a slot", NULL },
	{ "selection", (getter)ctx_get_selection, NULL, "how libcaio chose the backend", NULL },
	{ NULL }
};

PyTypeObject pycaio_context_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "caio._caio.Context",
	.tp_doc = "Context(backend, max_requests=32, sqpoll=False, pool_size=0)\n\n"
		  "One libcaio context forced to the named backend.",
	.tp_basicsize = sizeof(pycaio_context),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_new = ctx_new,
	.tp_init = (initproc)ctx_init,
	.tp_dealloc = (destructor)ctx_dealloc,
	.tp_repr = (reprfunc)ctx_repr,
	.tp_methods = ctx_methods,
	.tp_getset = ctx_getset,
};
