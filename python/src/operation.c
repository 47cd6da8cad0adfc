/* operation.c - caio Operation: one read, write, fsync or fdsync and its buffers. */
#include "pycaio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- argument parsing: every bad value is refused before any I/O ---- */

static int parse_fd(PyObject *obj, int *fd)
{
	/* Accepts an int or an object with fileno(); refuses negatives. */
	*fd = PyObject_AsFileDescriptor(obj);
	return *fd < 0 ? -1 : 0;
}

static int parse_offset(PyObject *obj, int64_t *offset)
{
	PyObject *index = PyNumber_Index(obj);
	int overflow = 0;
	long long value;

	if (!index)
		return -1;
	value = PyLong_AsLongLongAndOverflow(index, &overflow);
	Py_DECREF(index);
	if (value == -1 && PyErr_Occurred())
		return -1;
	if (overflow > 0) {
		PyErr_SetString(PyExc_OverflowError, "offset must be below 2**63");
		return -1;
	}
	if (overflow < 0 || value < 0) {
		/* io_uring would read at the file position, libaio would wrap */
		PyErr_SetString(PyExc_ValueError, "offset must not be negative");
		return -1;
	}
	*offset = value;
	return 0;
}

static int parse_nbytes(PyObject *obj, size_t *nbytes)
{
	PyObject *index = PyNumber_Index(obj);
	Py_ssize_t value;

	if (!index)
		return -1;
	value = PyLong_AsSsize_t(index);
	Py_DECREF(index);
	if (value == -1 && PyErr_Occurred())
		return -1;
	if (value < 0) {
		PyErr_SetString(PyExc_ValueError, "nbytes must not be negative");
		return -1;
	}
	*nbytes = value;
	return 0;
}

static pycaio_operation *op_new(PyTypeObject *type, enum pycaio_kind kind)
{
	pycaio_operation *op = (pycaio_operation *)type->tp_alloc(type, 0);

	if (op)
		op->kind = kind;
	return op;
}

/* ---- constructors (class methods) ---- */

static PyObject *op_read(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "nbytes", "fd", "offset", "priority", NULL };
	PyObject *nbytes_obj, *fd_obj, *offset_obj, *priority = NULL;
	pycaio_operation *op;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O:read", kwlist,
					 &nbytes_obj, &fd_obj, &offset_obj, &priority))
		return NULL;
	op = op_new(type, PYCAIO_READ);
	if (!op)
		return NULL;
	if (parse_nbytes(nbytes_obj, &op->nbytes) || parse_fd(fd_obj, &op->fd) ||
	    parse_offset(offset_obj, &op->offset))
		goto fail;
	/* The kernel reads straight into the bytes object get_value() returns. */
	op->payload = PyBytes_FromStringAndSize(NULL, op->nbytes);
	if (!op->payload)
		goto fail;
	return (PyObject *)op;
fail:
	Py_DECREF(op);
	return NULL;
}

static int hold_view(pycaio_operation *op)
{
	PyObject *copy;

	if (op->has_view)
		return 0;
	if (PyObject_GetBuffer(op->payload, &op->view, PyBUF_SIMPLE) == 0)
		goto held;
	if (!PyErr_ExceptionMatches(PyExc_BufferError))
		return -1;
	/* A non-contiguous buffer: write a contiguous copy of it. */
	PyErr_Clear();
	copy = PyBytes_FromObject(op->payload);
	if (!copy)
		return -1;
	if (PyObject_GetBuffer(copy, &op->view, PyBUF_SIMPLE)) {
		Py_DECREF(copy);
		return -1;
	}
	Py_DECREF(copy);	/* the view keeps it alive */
held:
	op->has_view = 1;
	op->nbytes = op->view.len;
	return 0;
}

static void release_view(pycaio_operation *op)
{
	if (!op->has_view)
		return;
	op->has_view = 0;
	PyBuffer_Release(&op->view);
}

static PyObject *op_write(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "payload_bytes", "fd", "offset", "priority", NULL };
	PyObject *payload, *fd_obj, *offset_obj, *priority = NULL;
	pycaio_operation *op;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|O:write", kwlist,
					 &payload, &fd_obj, &offset_obj, &priority))
		return NULL;
	if (PyUnicode_Check(payload)) {
		PyErr_SetString(PyExc_TypeError, "payload must be bytes-like, not str");
		return NULL;
	}
	op = op_new(type, PYCAIO_WRITE);
	if (!op)
		return NULL;
	Py_INCREF(payload);
	op->payload = payload;
	if (parse_fd(fd_obj, &op->fd) || parse_offset(offset_obj, &op->offset) ||
	    hold_view(op))
		goto fail;
	return (PyObject *)op;
fail:
	Py_DECREF(op);
	return NULL;
}

static PyObject *op_sync(PyTypeObject *type, PyObject *args, PyObject *kwds,
			 enum pycaio_kind kind)
{
	static char *kwlist[] = { "fd", "priority", NULL };
	PyObject *fd_obj, *priority = NULL;
	pycaio_operation *op;

	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O", kwlist, &fd_obj, &priority))
		return NULL;
	op = op_new(type, kind);
	if (!op)
		return NULL;
	if (parse_fd(fd_obj, &op->fd)) {
		Py_DECREF(op);
		return NULL;
	}
	return (PyObject *)op;
}

static PyObject *op_fsync(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	return op_sync(type, args, kwds, PYCAIO_FSYNC);
}

static PyObject *op_fdsync(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	return op_sync(type, args, kwds, PYCAIO_FDSYNC);
}

/* ---- submission, called by the context with its lock held ---- */

static void on_complete(caio_req *req, int64_t res, void *data)
{
	pycaio_operation *op = data;
	pycaio_context *ctx = op->ctx;

	/* May run without the GIL (inside caio_wait): touch no Python object. */
	op->piece_res = res;
	op->req = NULL;
	if (ctx->ndone == ctx->done_cap) {
		/* Cannot happen (one piece per slot); grow rather than lose it. */
		void *more = realloc(ctx->done, 2 * ctx->done_cap * sizeof(*ctx->done));

		if (!more)
			return;
		ctx->done = more;
		ctx->done_cap *= 2;
	}
	ctx->done[ctx->ndone++] = op;
}

static char *io_buffer(pycaio_operation *op)
{
	if (op->bounce)
		return op->bounce;
	if (op->kind == PYCAIO_READ)
		return PyBytes_AS_STRING(op->payload);
	return op->view.buf;
}

/* Queue the next piece: at most CAIO_MAX_RW_COUNT bytes, as the kernel. */
static int submit_piece(pycaio_context *ctx, pycaio_operation *op)
{
	size_t left = op->nbytes - op->done;
	uint64_t pos = (uint64_t)op->offset + op->done;
	char *buf;

	if (pos > INT64_MAX)
		return -EINVAL;
	op->piece = left < CAIO_MAX_RW_COUNT ? left : CAIO_MAX_RW_COUNT;
	switch (op->kind) {
	case PYCAIO_READ:
		buf = io_buffer(op) + op->done;
		return caio_read(ctx->caio, op->fd, buf, op->piece, pos,
				 on_complete, op, &op->req);
	case PYCAIO_WRITE:
		buf = io_buffer(op) + op->done;
		return caio_write(ctx->caio, op->fd, buf, op->piece, pos,
				  on_complete, op, &op->req);
	case PYCAIO_FSYNC:
		return caio_fsync(ctx->caio, op->fd, on_complete, op, &op->req);
	default:
		return caio_fdsync(ctx->caio, op->fd, on_complete, op, &op->req);
	}
}

/* A read buffer must be ours alone while the kernel writes into it. */
static int prepare_read_buffer(pycaio_operation *op)
{
	PyObject *fresh;

	if (op->payload && Py_REFCNT(op->payload) == 1 &&
	    PyBytes_GET_SIZE(op->payload) == (Py_ssize_t)op->nbytes)
		return 0;
	fresh = PyBytes_FromStringAndSize(NULL, op->nbytes);
	if (!fresh)
		return -1;
	Py_XSETREF(op->payload, fresh);
	return 0;
}

static void drop_bounce(pycaio_operation *op)
{
	free(op->bounce);
	op->bounce = NULL;
}

/*
 * Linux AIO runs a buffered read or write inside io_submit(): on a pipe,
 * FIFO, socket or terminal that blocks the caller - the event loop - until
 * data or room arrives, and forever if the other end waits for that loop.
 * Such a descriptor gets ESPIPE, as pread(2) and the thread pools give.
 */
static int linux_aio_refuses(const pycaio_context *ctx, const pycaio_operation *op)
{
	struct stat st;

	if (!ctx->refuse_streams || (op->kind != PYCAIO_READ && op->kind != PYCAIO_WRITE))
		return 0;
	if (fstat(op->fd, &st))
		return 0;	/* the kernel reports EBADF itself */
	if (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))
		return 1;
	return S_ISCHR(st.st_mode) && isatty(op->fd);
}

/* Complete with res through the normal path, as if the kernel said so. */
static void complete_now(pycaio_context *ctx, pycaio_operation *op, int64_t res)
{
	uint64_t one = 1;

	op->req = NULL;
	on_complete(NULL, res, op);
	if (write(ctx->efd, &one, sizeof(one)) < 0) {
		/* saturated: readable anyway */
	}
}

/* Returns 0, a negative errno from libcaio, or -1000 with a Python error set. */
int pycaio_op_start(pycaio_context *ctx, pycaio_operation *op)
{
	int refused = linux_aio_refuses(ctx, op);
	int r;

	if (op->kind == PYCAIO_READ && prepare_read_buffer(op))
		return -1000;
	if (op->kind == PYCAIO_WRITE && hold_view(op))
		return -1000;
	drop_bounce(op);
	op->done = 0;
	op->result = 0;
	op->cancelled = 0;
	op->bounced = 0;
	op->ctx = ctx;
	r = refused ? 0 : submit_piece(ctx, op);
	if (r < 0) {
		op->ctx = NULL;
		return r;
	}
	if (refused)
		complete_now(ctx, op, -ESPIPE);
	op->state = PYCAIO_FLIGHT;
	Py_INCREF(op);
	Py_INCREF(ctx);
	op->prev = NULL;
	op->next = ctx->inflight;
	if (ctx->inflight)
		ctx->inflight->prev = op;
	ctx->inflight = op;
	return 0;
}

static int fd_is_direct(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags >= 0 && (flags & O_DIRECT);
}

/* O_DIRECT refused our buffer: retry once through an aligned copy. */
static int start_bounce(pycaio_context *ctx, pycaio_operation *op)
{
	size_t len = (op->nbytes + PYCAIO_ALIGN - 1) & ~(size_t)(PYCAIO_ALIGN - 1);
	void *mem;

	if (!len || !fd_is_direct(op->fd))
		return -EINVAL;
	if (posix_memalign(&mem, PYCAIO_ALIGN, len))
		return -EINVAL;
	if (op->kind == PYCAIO_WRITE)
		memcpy(mem, op->view.buf, op->nbytes);
	op->bounce = mem;
	op->bounced = 1;
	return submit_piece(ctx, op);
}

/*
 * Decide what a finished piece means: 1 if another piece was queued (the
 * operation stays in flight), 0 if the operation is finished.  Called with
 * the context's lock held.
 */
int pycaio_op_continue(pycaio_context *ctx, pycaio_operation *op)
{
	int64_t res = op->piece_res;
	int r;

	if (op->kind != PYCAIO_READ && op->kind != PYCAIO_WRITE)
		return 0;
	if (res > 0)
		op->done += res;
	if (ctx->closed)
		return 0;	/* closing: report what was done so far */
	if (res > 0 && (size_t)res == op->piece && op->done < op->nbytes &&
	    !op->cancelled)
		r = submit_piece(ctx, op);
	else if (res == -EINVAL && !op->bounced && op->done == 0)
		r = start_bounce(ctx, op);
	else
		return 0;
	if (r == 0)
		return 1;
	if (!(res == -EINVAL && op->done == 0))
		op->piece_res = r;
	return 0;
}

static int64_t final_result(const pycaio_operation *op)
{
	if (op->kind != PYCAIO_READ && op->kind != PYCAIO_WRITE)
		return op->piece_res;
	/* Bytes moved before an error are reported, as write(2) does. */
	if (op->piece_res >= 0 || op->done > 0)
		return op->done;
	return op->piece_res;
}

static void settle_read_buffer(pycaio_operation *op)
{
	if (op->bounce && op->result > 0)
		memcpy(PyBytes_AS_STRING(op->payload), op->bounce, op->result);
	if (op->result < 0 || (size_t)op->result >= op->nbytes)
		return;
	/* Short read: shrink in place; nobody else has seen the object.  On
	 * failure payload is NULL and get_value() raises MemoryError. */
	if (_PyBytes_Resize(&op->payload, op->result))
		PyErr_Clear();
}

static void unlink_inflight(pycaio_operation *op)
{
	pycaio_context *ctx = op->ctx;

	if (op->prev)
		op->prev->next = op->next;
	else
		ctx->inflight = op->next;
	if (op->next)
		op->next->prev = op->prev;
	op->prev = op->next = NULL;
}

static PyObject *op_exception(const pycaio_operation *op)
{
	int err = (int)-op->result;

	/* OSError(errno, text) returns the matching subclass (FileNotFoundError...). */
	return PyObject_CallFunction(PyExc_OSError, "is", err,
				     caio_strerror((int)op->result));
}

PyObject *pycaio_op_value(pycaio_operation *op)
{
	if (op->result < 0) {
		PyObject *exc = op_exception(op);

		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		return NULL;
	}
	switch (op->kind) {
	case PYCAIO_READ:
		if (!op->payload)
			return PyErr_NoMemory();
		Py_INCREF(op->payload);
		return op->payload;
	case PYCAIO_WRITE:
		return PyLong_FromLongLong(op->result);
	default:
		Py_RETURN_NONE;
	}
}

static int resolve_future(pycaio_operation *op, PyObject *future)
{
	PyObject *done, *arg, *rv;
	int is_done;

	done = PyObject_CallMethodNoArgs(future, pycaio_str_done);
	if (!done)
		return -1;
	is_done = PyObject_IsTrue(done);
	Py_DECREF(done);
	if (is_done)
		return is_done < 0 ? -1 : 0;	/* cancelled meanwhile */
	if (op->result < 0) {
		arg = op_exception(op);
		if (!arg)
			return -1;
		rv = PyObject_CallMethodOneArg(future, pycaio_str_set_exception, arg);
	} else {
		arg = pycaio_op_value(op);
		if (!arg)
			return -1;
		rv = PyObject_CallMethodOneArg(future, pycaio_str_set_result, arg);
	}
	Py_DECREF(arg);
	Py_XDECREF(rv);
	return rv ? 0 : -1;
}

static int run_callback(pycaio_operation *op)
{
	PyObject *callback = op->callback, *arg, *rv;

	if (!callback)
		return 0;
	arg = PyLong_FromLongLong(op->result);
	if (!arg)
		return -1;
	Py_INCREF(callback);
	rv = PyObject_CallOneArg(callback, arg);
	Py_DECREF(callback);
	Py_DECREF(arg);
	Py_XDECREF(rv);
	return rv ? 0 : -1;
}

/* Record res as the last piece's result and finish (fork, close). */
void pycaio_op_fail(pycaio_operation *op, int64_t res)
{
	op->piece_res = res;
	op->req = NULL;
}

/*
 * The operation is over: publish the result, run its callback and resolve
 * its future, then drop the references taken by pycaio_op_start().  Called
 * with the GIL and without the context's lock.  Returns -1 with a Python
 * error set if the callback or the future raised.
 */
int pycaio_op_finish(pycaio_operation *op)
{
	pycaio_context *ctx = op->ctx;
	PyObject *future = op->future;
	int err = 0;

	op->result = final_result(op);
	if (op->kind == PYCAIO_READ)
		settle_read_buffer(op);
	drop_bounce(op);
	release_view(op);
	unlink_inflight(op);
	op->ctx = NULL;
	op->future = NULL;
	op->state = PYCAIO_DONE;
	if (run_callback(op))
		err = -1;
	if (future) {
		/* Resolve it even if the callback raised: someone awaits it. */
		PyObject *type, *value, *tb;

		PyErr_Fetch(&type, &value, &tb);
		if (resolve_future(op, future)) {
			if (type)
				PyErr_WriteUnraisable(future);
			else
				err = -1;
		}
		if (type)
			PyErr_Restore(type, value, tb);
		Py_DECREF(future);
	}
	Py_DECREF(ctx);
	Py_DECREF(op);
	return err;
}

/* ---- Python-visible methods and properties ---- */

static int refuse_in_flight(pycaio_operation *op)
{
	if (op->state != PYCAIO_FLIGHT)
		return 0;
	PyErr_SetString(PyExc_RuntimeError, "operation is still in progress");
	return -1;
}

static PyObject *op_get_value(pycaio_operation *op, PyObject *unused)
{
	if (refuse_in_flight(op))
		return NULL;
	if (op->state == PYCAIO_NEW) {
		PyErr_SetString(PyExc_RuntimeError, "operation was never submitted");
		return NULL;
	}
	return pycaio_op_value(op);
}

static PyObject *op_set_callback(pycaio_operation *op, PyObject *callback)
{
	if (callback != Py_None && !PyCallable_Check(callback)) {
		PyErr_Format(PyExc_ValueError, "callback %R is not callable", callback);
		return NULL;
	}
	Py_XSETREF(op->callback, callback == Py_None ? NULL : Py_NewRef(callback));
	Py_RETURN_TRUE;
}

/* Private: the asyncio layer's future, resolved when the operation ends. */
static PyObject *op_set_future(pycaio_operation *op, PyObject *future)
{
	Py_XSETREF(op->future, future == Py_None ? NULL : Py_NewRef(future));
	Py_RETURN_NONE;
}

static PyObject *op_get_fileno(pycaio_operation *op, void *closure)
{
	return PyLong_FromLong(op->fd);
}

static PyObject *op_get_offset(pycaio_operation *op, void *closure)
{
	if (op->kind == PYCAIO_FSYNC || op->kind == PYCAIO_FDSYNC)
		return PyLong_FromLong(0);
	return PyLong_FromLongLong(op->offset);
}

static PyObject *op_get_nbytes(pycaio_operation *op, void *closure)
{
	return PyLong_FromSize_t(op->nbytes);
}

static PyObject *op_get_payload(pycaio_operation *op, void *closure)
{
	if (refuse_in_flight(op))
		return NULL;
	if (!op->payload)
		Py_RETURN_NONE;
	return Py_NewRef(op->payload);
}

static PyObject *op_get_result(pycaio_operation *op, void *closure)
{
	return PyLong_FromLongLong(op->state == PYCAIO_DONE ? op->result : 0);
}

static PyObject *op_get_error(pycaio_operation *op, void *closure)
{
	int64_t res = op->state == PYCAIO_DONE ? op->result : 0;

	return PyLong_FromLong(res < 0 ? (long)-res : 0);
}

static PyObject *op_get_callback(pycaio_operation *op, void *closure)
{
	return Py_NewRef(op->callback ? op->callback : Py_None);
}

static PyObject *op_get_context(pycaio_operation *op, void *closure)
{
	return Py_NewRef(op->ctx ? (PyObject *)op->ctx : Py_None);
}

static PyObject *op_get_in_progress(pycaio_operation *op, void *closure)
{
	return PyBool_FromLong(op->state == PYCAIO_FLIGHT);
}

static const char *kind_name(const pycaio_operation *op)
{
	static const char *names[] = { "read", "write", "fsync", "fdsync" };

	return names[op->kind];
}

static PyObject *op_repr(pycaio_operation *op)
{
	static const char *states[] = { "new", "in progress", "done" };

	return PyUnicode_FromFormat("<%s %s fd=%d offset=%lld nbytes=%zu %s result=%lld>",
				    Py_TYPE(op)->tp_name, kind_name(op), op->fd,
				    (long long)op->offset, op->nbytes,
				    states[op->state], (long long)op->result);
}

static int op_traverse(pycaio_operation *op, visitproc visit, void *arg)
{
	Py_VISIT(op->callback);
	Py_VISIT(op->future);
	if (op->kind == PYCAIO_WRITE)
		Py_VISIT(op->payload);
	return 0;
}

static int op_clear(pycaio_operation *op)
{
	/* Never called in flight: the context holds a reference GC cannot see. */
	Py_CLEAR(op->callback);
	Py_CLEAR(op->future);
	return 0;
}

static void op_dealloc(pycaio_operation *op)
{
	PyObject_GC_UnTrack(op);
	op_clear(op);
	release_view(op);
	drop_bounce(op);
	Py_CLEAR(op->payload);
	Py_TYPE(op)->tp_free((PyObject *)op);
}

static PyMethodDef op_methods[] = {
	{ "read", (PyCFunction)(void (*)(void))op_read, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	  "read(nbytes, fd, offset, priority=0) -> Operation\n\nRead nbytes at offset." },
	{ "write", (PyCFunction)(void (*)(void))op_write, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	  "write(payload_bytes, fd, offset, priority=0) -> Operation\n\n"
	  "Write any bytes-like object at offset." },
	{ "fsync", (PyCFunction)(void (*)(void))op_fsync, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	  "fsync(fd, priority=0) -> Operation" },
	{ "fdsync", (PyCFunction)(void (*)(void))op_fdsync, METH_CLASS | METH_VARARGS | METH_KEYWORDS,
	  "fdsync(fd, priority=0) -> Operation\n\nfdatasync(2)." },
	{ "get_value", (PyCFunction)op_get_value, METH_NOARGS,
	  "get_value() -> bytes | int | None\n\n"
	  "bytes read, bytes written, or None; raises OSError with the errno of a failure." },
	{ "set_callback", (PyCFunction)op_set_callback, METH_O,
	  "set_callback(callback) -> True\n\n"
	  "callback(result) runs inside Context.process_events() when the operation ends." },
	{ "_set_future", (PyCFunction)op_set_future, METH_O, NULL },
	{ NULL }
};

static PyGetSetDef op_getset[] = {
	{ "fileno", (getter)op_get_fileno, NULL, "the file descriptor", NULL },
	{ "offset", (getter)op_get_offset, NULL, "the file offset", NULL },
	{ "nbytes", (getter)op_get_nbytes, NULL, "bytes requested", NULL },
	{ "payload", (getter)op_get_payload, NULL, "the read buffer or the written object", NULL },
	{ "result", (getter)op_get_result, NULL, "byte count, 0 or -errno once done", NULL },
	{ "error", (getter)op_get_error, NULL, "errno of a failure, else 0", NULL },
	{ "in_progress", (getter)op_get_in_progress, NULL, "submitted and not finished", NULL },
	{ "callback", (getter)op_get_callback, NULL, "what set_callback() set, or None", NULL },
	{ "context", (getter)op_get_context, NULL,
	  "the Context running it while in progress (it keeps the Context alive), else None", NULL },
	{ NULL }
};

PyTypeObject pycaio_operation_type = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "caio._caio.Operation",
	.tp_doc = "One asynchronous file operation; create it with read(), write(), fsync() or fdsync().",
	.tp_basicsize = sizeof(pycaio_operation),
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_BASETYPE,
	.tp_dealloc = (destructor)op_dealloc,
	.tp_traverse = (traverseproc)op_traverse,
	.tp_clear = (inquiry)op_clear,
	.tp_repr = (reprfunc)op_repr,
	.tp_methods = op_methods,
	.tp_getset = op_getset,
};
