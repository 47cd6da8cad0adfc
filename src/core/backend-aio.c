/* backend-aio.c - the Linux AIO backend: libaio's io_submit/io_getevents behind one ops table. */
#include "config.h"

/*
 * Linux AIO is only truly asynchronous for files opened with O_DIRECT.  A
 * plain buffered read or write runs to completion inside io_submit(): it
 * blocks the caller there on a cache miss or on writeback throttling, and
 * forever on an empty pipe or socket.  So, as io_uring does internally,
 * reads and writes on descriptors that are not O_DIRECT go in with
 * RWF_NOWAIT (Linux >= 4.14; probed once, without it they go in as before):
 * what the page cache or the pipe can serve at once completes inside
 * io_submit, and what would have to wait comes back -EAGAIN (or short, or
 * -EOPNOTSUPP from a file system without buffered NOWAIT writes, or is
 * refused by io_submit for a file without FMODE_NOWAIT, which is then
 * remembered: see aio_pool_first) and is redone:
 *   - on a regular file or block device, by the core's thread pool (pread
 *     and friends, counted in fallback_requests), so the user sees the
 *     syscall's result; a short read that ends at the file size is EOF
 *     and final, a short write under O_APPEND is final (redoing it would
 *     append twice);
 *   - on a pipe, socket or character device, by an IOCB_CMD_POLL for
 *     POLLIN/POLLOUT, after which the NOWAIT transfer is submitted again:
 *     such a request keeps AIO's stream semantics (the offset is ignored,
 *     a read returns what is there, a write may be short) and completes
 *     when data or room arrives, whether or not the descriptor is
 *     O_NONBLOCK: -EAGAIN is never reported, and a waiting request can be
 *     cancelled (io_cancel of the poll).
 * O_DIRECT requests keep the plain path: NOWAIT would turn a full device
 * queue into -EAGAIN and pool round trips.  Whether an fd is O_DIRECT
 * comes from caio__fd_buffered(), which remembers the descriptors seen
 * buffered (any other pays one fcntl(F_GETFL) per request, cheap next to a
 * device I/O).  A stale answer only costs speed, never a wrong result: a
 * NOWAIT O_DIRECT request that would wait is redone in the pool.
 * fsync and fdsync exist since Linux 4.18 and run on a kernel workqueue.
 * Nothing else has an AIO command: native_ops leaves fallocate and the
 * metadata calls out and the core runs them in its thread pool.
 *
 * Every iocb carries IOCB_FLAG_RESFD, so the kernel bumps the context's
 * eventfd once per completion: event loops and the core's mixed waits
 * (kernel requests next to pool requests) poll that one descriptor.
 *
 * Completions are read straight out of the kernel's completion ring in
 * user space when its header is the one this code knows (libaio's
 * io_getevents already peeks at the same header; fio calls the idea
 * userspace_reap), and with io_getevents otherwise or when it must block.
 * A page-cached request therefore costs one io_submit and nothing else.
 * Events fetched by the wait inside submit() are kept in events[] until
 * reap() runs their callbacks: callbacks only run from reap.
 */

#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "internal.h"

/* The header of the kernel's completion ring (fs/aio.c), mapped at the
 * address io_setup() returns as the io_context_t. */
struct aio_ring {
	unsigned id;
	unsigned nr;			/* events the ring holds */
	unsigned head;			/* next event to consume: the consumer moves it */
	unsigned tail;			/* next event the kernel fills */
	unsigned magic;
	unsigned compat_features;
	unsigned incompat_features;
	unsigned header_length;		/* sizeof(struct aio_ring) */
	struct io_event io_events[];
};

#define AIO_RING_MAGIC			0xa10a10a1u
#define AIO_RING_INCOMPAT_FEATURES	0u

#define AIO_NATIVE_OPS	(CAIO_OP_BIT(CAIO_OP_READ) | CAIO_OP_BIT(CAIO_OP_WRITE) | \
			 CAIO_OP_BIT(CAIO_OP_READV) | CAIO_OP_BIT(CAIO_OP_WRITEV) | \
			 CAIO_OP_BIT(CAIO_OP_FSYNC) | CAIO_OP_BIT(CAIO_OP_FDSYNC))

/* What a slot's iocb in the kernel is. */
enum aio_slot_mode {
	SLOT_PLAIN = 0,			/* the request as is: its event is final */
	SLOT_NOWAIT,			/* a read/write with RWF_NOWAIT: may need a redo */
	SLOT_POLL,			/* a poll standing in for a stream read/write */
};

struct aio_backend {
	io_context_t io;
	bool nowait;			/* the kernel takes RWF_NOWAIT */
	uint8_t *slot_mode;		/* enum aio_slot_mode, by req->index */
	struct aio_ring *ring;		/* NULL: unknown layout, always io_getevents */
	struct iocb *iocbs;		/* one per request slot, by req->index */
	struct iocb **batch;		/* the array handed to io_submit */
	struct io_event *events;	/* fetched, callbacks not run: [head, head + count) */
	unsigned head, count;
	unsigned size;			/* ctx->max_requests */
};

/* Set once the fdsync probe passed: the kernel does not change under us. */
static int fdsync_probe_passed;
/* The RWF_NOWAIT probe: 0 not run yet, 1 accepted, -1 refused. */
static int nowait_probe_result;

/* ---- setup ---- */

static int aio_check_kernel(char *reason, size_t len)
{
	struct utsname u;
	unsigned major, minor;

	/* An unreadable version leaves the decision to the fdsync probe. */
	if (uname(&u) < 0 || sscanf(u.release, "%u.%u", &major, &minor) != 2)
		return 0;
	if (major > 4 || (major == 4 && minor >= 18))
		return 0;
	snprintf(reason, len, "Linux AIO needs kernel >= 4.18 for fsync/fdsync (this is %u.%u)",
		 major, minor);
	return -ENOSYS;
}

static unsigned long aio_read_sysctl(const char *path)
{
	unsigned long value = 0;
	FILE *f = fopen(path, "re");

	if (f) {
		if (fscanf(f, "%lu", &value) != 1)
			value = 0;
		fclose(f);
	}
	return value;
}

static void aio_setup_reason(int err, unsigned nr, char *reason, size_t len)
{
	switch (err) {
	case EAGAIN:
		snprintf(reason, len, "io_setup(%u): EAGAIN (system-wide AIO event limit: "
			 "/proc/sys/fs/aio-nr is %lu of /proc/sys/fs/aio-max-nr %lu; "
			 "raise fs.aio-max-nr or lower max_requests)", nr,
			 aio_read_sysctl("/proc/sys/fs/aio-nr"),
			 aio_read_sysctl("/proc/sys/fs/aio-max-nr"));
		break;
	case ENOSYS:
		snprintf(reason, len, "io_setup: ENOSYS (kernel built without AIO or blocked by seccomp)");
		break;
	default:
		snprintf(reason, len, "io_setup(%u): %s", nr, caio__errno_name(err));
	}
}

/* The result of one fdsync submitted and waited for, or a negative errno. */
static int aio_fdsync_once(io_context_t io, int fd, char *reason, size_t len)
{
	struct timespec limit = { .tv_sec = 5 };
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	int ret;

	io_prep_fdsync(&cb, fd);
	ret = io_submit(io, 1, cbs);
	if (ret != 1) {
		snprintf(reason, len, "io_submit(IOCB_CMD_FDSYNC): %s%s",
			 caio__errno_name(-ret),
			 ret == -EINVAL ? " (this kernel has no AIO fsync/fdsync)" : "");
		return ret < 0 ? ret : -EIO;
	}
	/* io_destroy() waits for the iocb if this gives up, so cb stays valid. */
	ret = io_getevents(io, 1, 1, &ev, &limit);
	if (ret != 1) {
		snprintf(reason, len, "io_getevents after IOCB_CMD_FDSYNC: %s",
			 ret ? caio__errno_name(-ret) : "no completion within 5 s");
		return ret < 0 ? ret : -ETIMEDOUT;
	}
	if ((long)ev.res < 0) {
		snprintf(reason, len, "IOCB_CMD_FDSYNC on a memfd completed with %s",
			 caio__errno_name((int)-(long)ev.res));
		return (int)(long)ev.res;
	}
	return 0;
}

/* Kernels are known to lie about their version (distribution backports), so
 * run one real fdsync on a memfd, whose fsync does nothing. */
static int aio_probe_fdsync(io_context_t io, char *reason, size_t len)
{
	int fd, err;

	if (__atomic_load_n(&fdsync_probe_passed, __ATOMIC_RELAXED))
		return 0;
	fd = memfd_create("caio-aio-probe", MFD_CLOEXEC);
	if (fd < 0)
		return 0;	/* no memfd (seccomp?): the version check has to do */
	err = aio_fdsync_once(io, fd, reason, len);
	close(fd);
	if (!err)
		__atomic_store_n(&fdsync_probe_passed, 1, __ATOMIC_RELAXED);
	return err;
}

/*
 * Does io_submit take RWF_NOWAIT?  Kernels before 4.14 refuse any
 * aio_rw_flags with EINVAL; later ones complete the read (a byte is in the
 * pipe, so nothing can block even if the flag were ignored) or refuse it
 * with EOPNOTSUPP for a pipe without FMODE_NOWAIT, which still means the
 * flag is known.  Anything odd: no NOWAIT, the behaviour before it existed.
 */
static bool aio_probe_nowait(io_context_t io)
{
	struct timespec limit = { .tv_sec = 5 };
	struct iocb cb, *cbs[1] = { &cb };
	struct io_event ev;
	int fds[2], ret;
	char byte = 0;

	ret = __atomic_load_n(&nowait_probe_result, __ATOMIC_RELAXED);
	if (ret)
		return ret > 0;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return false;
	ret = -EIO;
	if (write(fds[1], &byte, 1) == 1) {
		io_prep_pread(&cb, fds[0], &byte, 1, 0);
		cb.aio_rw_flags = RWF_NOWAIT;
		ret = io_submit(io, 1, cbs);
		if (ret == 1 && io_getevents(io, 1, 1, &ev, &limit) != 1)
			ret = -EIO;	/* io_destroy() waits for it */
	}
	close(fds[0]);
	close(fds[1]);
	ret = ret == 1 || ret == -EOPNOTSUPP ? 1 : -1;
	__atomic_store_n(&nowait_probe_result, ret, __ATOMIC_RELAXED);
	return ret > 0;
}

/* The ring is read in user space only if it looks exactly like the layout
 * above.  libaio's io_getevents dereferences the same header, so the
 * io_context_t is known to be a mapped address wherever libaio works. */
static struct aio_ring *aio_ring_usable(io_context_t io)
{
	struct aio_ring *ring = (struct aio_ring *)io;

	if (ring->magic != AIO_RING_MAGIC ||
	    ring->incompat_features != AIO_RING_INCOMPAT_FEATURES ||
	    ring->header_length != sizeof(*ring) || !ring->nr)
		return NULL;
	return ring;
}

static void aio_free(struct aio_backend *ab)
{
	free(ab->slot_mode);
	free(ab->events);
	free(ab->batch);
	free(ab->iocbs);
	free(ab);
}

static struct aio_backend *aio_alloc(unsigned size)
{
	struct aio_backend *ab = calloc(1, sizeof(*ab));

	if (!ab)
		return NULL;
	ab->size = size;
	ab->iocbs = calloc(size, sizeof(*ab->iocbs));
	ab->batch = calloc(size, sizeof(*ab->batch));
	ab->events = calloc(size, sizeof(*ab->events));
	ab->slot_mode = calloc(size, sizeof(*ab->slot_mode));
	if (!ab->iocbs || !ab->batch || !ab->events || !ab->slot_mode) {
		aio_free(ab);
		return NULL;
	}
	return ab;
}

static int aio_init(caio_ctx *ctx, char *reason, size_t len)
{
	struct aio_backend *ab;
	int err;

	err = aio_check_kernel(reason, len);
	if (err)
		return err;
	ab = aio_alloc(ctx->max_requests);
	if (!ab) {
		snprintf(reason, len, "out of memory");
		return -ENOMEM;
	}
	err = io_setup(ctx->max_requests, &ab->io);
	if (err < 0) {
		aio_setup_reason(-err, ctx->max_requests, reason, len);
		goto fail_free;
	}
	err = aio_probe_fdsync(ab->io, reason, len);
	if (err)
		goto fail_destroy;
	ab->ring = aio_ring_usable(ab->io);
	ab->nowait = aio_probe_nowait(ab->io);
	ctx->backend_data = ab;
	ctx->native_ops = AIO_NATIVE_OPS;
	return 0;

fail_destroy:
	io_destroy(ab->io);
fail_free:
	aio_free(ab);
	return err;
}

/* ---- completions ---- */

/* Move ready events from the ring to events[] without a system call. */
static unsigned aio_ring_fetch(struct aio_backend *ab, unsigned max)
{
	struct aio_ring *ring = ab->ring;
	struct io_event *out = ab->events + ab->head + ab->count;
	unsigned head = ring->head, nr = ring->nr, n = 0;
	/* Pairs with the kernel's barrier between writing an event and the tail. */
	unsigned tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);

	if (head >= nr || tail >= nr)
		return 0;
	while (head != tail && n < max) {
		out[n++] = ring->io_events[head];
		if (++head == nr)
			head = 0;
	}
	/* The kernel may refill the slots once head has moved past them. */
	__atomic_store_n(&ring->head, head, __ATOMIC_RELEASE);
	ab->count += n;
	return n;
}

/* Make room after the buffered events: fetches append at head + count. */
static void aio_compact(struct aio_backend *ab)
{
	if (ab->head && ab->count)
		memmove(ab->events, ab->events + ab->head, ab->count * sizeof(*ab->events));
	ab->head = 0;
}

/*
 * Move completions from the kernel into events[]: everything that is ready,
 * and when min_nr > 0 block (up to ts, NULL: no limit) until at least that
 * many arrived.  Returns the number fetched, or a negative errno (-EINTR
 * from a signal) when none was.
 */
static int aio_fetch(caio_ctx *ctx, struct aio_backend *ab, unsigned min_nr,
		     const struct timespec *ts)
{
	unsigned in_kernel = ctx->kernel_inflight - ab->count;
	struct timespec timeout = { 0 };
	unsigned got = 0;
	int ret;

	if (!in_kernel)
		return 0;
	if (min_nr > in_kernel)
		min_nr = in_kernel;	/* never wait for what cannot come */
	aio_compact(ab);
	if (ab->ring) {
		got = aio_ring_fetch(ab, in_kernel);
		if (got >= min_nr)
			return got;
	}
	if (min_nr && ts)
		timeout = *ts;
	ret = io_getevents(ab->io, min_nr - got, in_kernel - got,
			   ab->events + ab->count, min_nr && !ts ? NULL : &timeout);
	if (ret < 0)
		return got ? (int)got : ret;
	ab->count += ret;
	return got + ret;
}

/* ---- submission ---- */

static size_t aio_clamp(size_t len)
{
	return len < CAIO_MAX_RW_COUNT ? len : CAIO_MAX_RW_COUNT;
}

static bool aio_is_rw(const caio_req *req)
{
	return req->op == CAIO_OP_READ || req->op == CAIO_OP_WRITE ||
	       req->op == CAIO_OP_READV || req->op == CAIO_OP_WRITEV;
}

static struct iocb *aio_prepare(caio_ctx *ctx, struct aio_backend *ab, caio_req *req)
{
	struct iocb *cb = &ab->iocbs[req->index];

	switch (req->op) {
	case CAIO_OP_READ:
		io_prep_pread(cb, req->fd, req->u.rw.buf, aio_clamp(req->u.rw.len), req->offset);
		break;
	case CAIO_OP_WRITE:
		io_prep_pwrite(cb, req->fd, req->u.rw.buf, aio_clamp(req->u.rw.len), req->offset);
		break;
	case CAIO_OP_READV:
		io_prep_preadv(cb, req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
		break;
	case CAIO_OP_WRITEV:
		io_prep_pwritev(cb, req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
		break;
	case CAIO_OP_FSYNC:
		io_prep_fsync(cb, req->fd);
		break;
	case CAIO_OP_FDSYNC:
		io_prep_fdsync(cb, req->fd);
		break;
	default:
		/* The core routes every other op to its pool.  Should one slip
		 * through, the kernel refuses IO_CMD_NOOP with EINVAL and the
		 * request finishes with that error. */
		memset(cb, 0, sizeof(*cb));
		cb->aio_fildes = req->fd;
		cb->aio_lio_opcode = IO_CMD_NOOP;
	}
	ab->slot_mode[req->index] = SLOT_PLAIN;
	if (ab->nowait && aio_is_rw(req) && caio__fd_buffered(ctx, req->fd)) {
		cb->aio_rw_flags = RWF_NOWAIT;
		ab->slot_mode[req->index] = SLOT_NOWAIT;
	}
	cb->data = req;
	io_set_eventfd(cb, ctx->efd);
	return cb;
}

static void aio_mark_kernel(caio_ctx *ctx, caio_req **reqs, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		reqs[i]->state = REQ_KERNEL;
	ctx->kernel_inflight += n;
}

/* io_submit errors that say "not now" rather than "not this request". */
static bool aio_transient(int err)
{
	return err == 0 || err == -EAGAIN || err == -ENOMEM || err == -EINTR;
}

/* Hand one request to the core's thread pool; false if there is none. */
static bool aio_to_pool(caio_ctx *ctx, caio_req *req)
{
	if (caio__start_fallback_pool(ctx) < 0)
		return false;
	caio__pool_submit(ctx->pool, &req, 1);
	ctx->stats.fallback_requests++;
	return true;
}

/*
 * io_submit refuses with EINVAL a read or write on a file without
 * read_iter/write_iter (a directory, a device that only has .read), where
 * pread(2) answers something else (EISDIR) or even works, and with
 * EOPNOTSUPP a NOWAIT one on a file without FMODE_NOWAIT.  Such a request
 * goes to the core's thread pool, so its result is exactly the syscall's.
 */
static bool aio_refused_to_pool(caio_ctx *ctx, struct aio_backend *ab,
				caio_req *req, int err)
{
	bool nowait = ab->slot_mode[req->index] == SLOT_NOWAIT;

	if (!aio_is_rw(req) || (err != -EINVAL && !(nowait && err == -EOPNOTSUPP)))
		return false;
	if (err == -EOPNOTSUPP)
		caio__fd_note_refuses_nowait(ctx, req->fd);
	return aio_to_pool(ctx, req);
}

/*
 * A file without FMODE_NOWAIT (tmpfs, FUSE, procfs...) makes io_submit
 * refuse a NOWAIT read or write outright, and the kernel stops the whole
 * call at that iocb: a batch of n such requests would cost n io_submit
 * calls, each refused, before all of them reach the pool.  So the first
 * refusal is noted (aio_refused_to_pool) and later requests on that
 * descriptor go to the pool without a syscall.
 */
static bool aio_pool_first(caio_ctx *ctx, struct aio_backend *ab, const caio_req *req,
			   struct caio_fd_verdict *seen)
{
	return ab->slot_mode[req->index] == SLOT_NOWAIT && ctx->pool &&
	       caio__fd_nowait(ctx, req->fd, seen) != CAIO_NOWAIT_TAKEN;
}

/*
 * One io_submit for the whole batch.  The kernel stops at the first iocb it
 * refuses and reports only the ones before it; a refusal that belongs to
 * that iocb (EBADF, EINVAL, EFAULT...) finishes just that request (or
 * sends it to the pool, above) and the rest go in another call, so one bad
 * request cannot block the queue.
 * Returns how many were consumed, or -EAGAIN when the kernel takes none and
 * nothing in flight could ever make room.
 */
static int aio_submit_batch(caio_ctx *ctx, struct aio_backend *ab,
			    caio_req **reqs, unsigned nr)
{
	struct caio_fd_verdict seen = { .fd = -1 };
	unsigned done = 0, run;
	int ret = 0;

	while (done < nr) {
		for (run = 0; done + run < nr && aio_pool_first(ctx, ab, reqs[done + run], &seen); )
			run++;
		if (run) {
			caio__pool_submit(ctx->pool, reqs + done, run);
			ctx->stats.fallback_requests += run;
			done += run;
			continue;
		}
		for (run = 1; done + run < nr && !aio_pool_first(ctx, ab, reqs[done + run], &seen); )
			run++;
		ret = io_submit(ab->io, run, ab->batch + done);
		if (ret > 0) {
			aio_mark_kernel(ctx, reqs + done, ret);
			caio__count_submit(ctx, ret);
			done += ret;
		} else if (aio_transient(ret)) {
			break;
		} else {
			ctx->stats.kernel_refusals++;
			if (!aio_refused_to_pool(ctx, ab, reqs[done], ret))
				caio__finish(ctx, reqs[done], ret);
			done++;
		}
	}
	if (!done && ctx->kernel_inflight == ab->count)
		return ret ? ret : -EAGAIN;
	return done;
}

static int aio_submit(caio_ctx *ctx, caio_req **reqs, unsigned nr,
		      unsigned wait_nr, const struct timespec *ts)
{
	struct aio_backend *ab = ctx->backend_data;
	int done = 0, ret;

	for (unsigned i = 0; i < nr; i++)
		ab->batch[i] = aio_prepare(ctx, ab, reqs[i]);
	if (nr) {
		done = aio_submit_batch(ctx, ab, reqs, nr);
		if (done < 0)
			return done;
	}
	if (wait_nr > ab->count) {
		ret = aio_fetch(ctx, ab, wait_nr - ab->count, ts);
		/* Consumed requests must be reported, whatever the wait did;
		 * a pure wait reports -EINTR so caio_wait() can return it. */
		if (ret < 0 && !done)
			return ret;
	}
	return done;
}

/* ---- requests that would have waited ---- */

static bool aio_is_read(const caio_req *req)
{
	return req->op == CAIO_OP_READ || req->op == CAIO_OP_READV;
}

/* The byte count a complete transfer returns. */
static int64_t aio_wanted(const caio_req *req)
{
	size_t sum = 0;

	if (req->op == CAIO_OP_READ || req->op == CAIO_OP_WRITE)
		return aio_clamp(req->u.rw.len);
	for (int i = 0; i < req->u.vec.cnt; i++)
		sum += req->u.vec.iov[i].iov_len;
	return aio_clamp(sum);
}

static bool aio_is_stream(const struct stat *st)
{
	return S_ISFIFO(st->st_mode) || S_ISSOCK(st->st_mode) || S_ISCHR(st->st_mode);
}

/* A short NOWAIT transfer on a file: final, or only the part that did not
 * have to wait?  A read that ends at the file size is EOF; a write is
 * redone whole (the same bytes at the same offset) unless O_APPEND, where
 * a redo would append again. */
static bool aio_short_is_final(const caio_req *req, int64_t res, const struct stat *st)
{
	int flags;

	if (aio_is_read(req))
		return S_ISREG(st->st_mode) && req->offset + res >= st->st_size;
	flags = fcntl(req->fd, F_GETFL);
	return flags >= 0 && (flags & O_APPEND);
}

/* A stream request that would wait: poll for readiness in the kernel. */
static bool aio_arm_poll(caio_ctx *ctx, struct aio_backend *ab, caio_req *req)
{
	struct iocb *cb = &ab->iocbs[req->index];

	io_prep_poll(cb, req->fd, aio_is_read(req) ? POLLIN : POLLOUT);
	cb->data = req;
	io_set_eventfd(cb, ctx->efd);
	ab->slot_mode[req->index] = SLOT_POLL;
	if (io_submit(ab->io, 1, &cb) != 1)
		return false;
	caio__count_submit(ctx, 1);
	return true;
}

/* Move a request whose event was consumed from the kernel to the pool. */
static bool aio_kernel_to_pool(caio_ctx *ctx, caio_req *req)
{
	if (!aio_to_pool(ctx, req))
		return false;
	ctx->kernel_inflight--;
	return true;
}

/* The poll of a stream request fired: submit the transfer again.  A
 * refusal (the fd was closed meanwhile...) goes to the pool, which gives
 * the syscall's answer. */
static bool aio_poll_done(caio_ctx *ctx, struct aio_backend *ab, caio_req *req,
			  int64_t *res)
{
	struct iocb *cb;
	int ret;

	if (req->cancel_requested) {
		*res = -ECANCELED;	/* the transfer never ran */
		return false;
	}
	cb = aio_prepare(ctx, ab, req);
	ret = io_submit(ab->io, 1, &cb);
	if (ret == 1) {
		caio__count_submit(ctx, 1);
		return true;
	}
	*res = ret < 0 ? ret : -EAGAIN;
	return aio_kernel_to_pool(ctx, req);
}

/* A NOWAIT transfer finished: keep its result, or redo what had to wait. */
static bool aio_nowait_done(caio_ctx *ctx, struct aio_backend *ab, caio_req *req,
			    int64_t *res)
{
	bool would_wait = *res == -EAGAIN || *res == -EOPNOTSUPP;
	struct stat st;

	if (!would_wait && (*res < 0 || *res >= aio_wanted(req)))
		return false;
	if (req->cancel_requested) {
		if (would_wait)
			*res = -ECANCELED;	/* it never ran: see aio_cancel */
		return false;
	}
	if (fstat(req->fd, &st) < 0)
		return aio_kernel_to_pool(ctx, req);	/* the pool reports the error */
	if (aio_is_stream(&st)) {
		if (*res >= 0)
			return false;	/* a short stream transfer is final */
		if (*res == -EAGAIN && aio_arm_poll(ctx, ab, req))
			return true;
		return aio_kernel_to_pool(ctx, req);
	}
	if (!would_wait && aio_short_is_final(req, *res, &st))
		return false;
	return aio_kernel_to_pool(ctx, req);
}

/* Returns true when req stays in flight (in the kernel or the pool) rather
 * than completing with *res. */
static bool aio_redirect(caio_ctx *ctx, struct aio_backend *ab, caio_req *req,
			 int64_t *res)
{
	switch (ab->slot_mode[req->index]) {
	case SLOT_NOWAIT:
		return aio_nowait_done(ctx, ab, req, res);
	case SLOT_POLL:
		return aio_poll_done(ctx, ab, req, res);
	default:
		return false;
	}
}

/* Run up to max buffered completions; returns how many ran. */
static unsigned aio_run_events(caio_ctx *ctx, struct aio_backend *ab, unsigned max)
{
	unsigned n = 0;

	while (n < max && ab->count) {
		/* Copy first: the callback may submit, which must find the
		 * buffer consistent. */
		struct io_event ev = ab->events[ab->head++];
		caio_req *req = ev.data;
		/* res is an unsigned long carrying a negative errno */
		int64_t res = (int64_t)(long)ev.res;

		ab->count--;
		if (aio_redirect(ctx, ab, req, &res))
			continue;
		ctx->kernel_inflight--;
		caio__complete(ctx, req, res);
		n++;
	}
	return n;
}

static int aio_reap(caio_ctx *ctx, unsigned max)
{
	struct aio_backend *ab = ctx->backend_data;
	unsigned ran = aio_run_events(ctx, ab, max);

	/* One fetch per call: completions of requests that callbacks submit
	 * wait for the next reap instead of extending this one forever. */
	if (ran < max) {
		aio_fetch(ctx, ab, 0, NULL);
		ran += aio_run_events(ctx, ab, max - ran);
	}
	/* The core may have drained the eventfd before calling us; keep it
	 * readable while fetched completions wait for another reap. */
	if (ab->count && ctx->efd_watched)
		caio__signal(ctx);
	return ran;
}

/* ---- cancel and teardown ---- */

static int aio_cancel(caio_ctx *ctx, caio_req *req)
{
	struct aio_backend *ab = ctx->backend_data;
	struct io_event ev;
	int ret = io_cancel(ab->io, &ab->iocbs[req->index], &ev);

	/*
	 * Since Linux 3.11 a cancel that was issued returns -EINPROGRESS and
	 * the event (-ECANCELED or the real result) arrives through the ring
	 * like any other; 0 was the older spelling of the same.  -EINVAL
	 * means no cancel method (regular files' reads and writes have none)
	 * or the iocb already completed: it completes with its real result.
	 * A NOWAIT transfer has not waited for anything yet: if it comes back
	 * "would wait", it ends -ECANCELED instead of being redone.
	 */
	if (ret == -EINPROGRESS || ret == 0 ||
	    ab->slot_mode[req->index] == SLOT_NOWAIT) {
		req->cancel_requested = 1;
		return -EINPROGRESS;
	}
	return -EALREADY;
}

/* The core waits for everything before exit; this is the safety net. */
static void aio_drain(caio_ctx *ctx, struct aio_backend *ab)
{
	while (ctx->kernel_inflight) {
		if (!ab->count) {
			int ret = aio_fetch(ctx, ab, 1, NULL);

			if (ret < 0 && ret != -EINTR)
				return;	/* io_destroy() still waits for them */
		}
		aio_run_events(ctx, ab, ab->count);
	}
}

static void aio_exit(caio_ctx *ctx)
{
	struct aio_backend *ab = ctx->backend_data;

	if (!ab)
		return;
	/* A forked child has neither the AIO context nor its ring mapping. */
	if (!caio__forked(ctx)) {
		aio_drain(ctx, ab);
		io_destroy(ab->io);
	}
	aio_free(ab);
	ctx->backend_data = NULL;
}

const struct caio_backend_ops caio__backend_linux = {
	.name = "linux",
	.init = aio_init,
	.exit = aio_exit,
	.submit = aio_submit,
	.reap = aio_reap,
	.cancel = aio_cancel,
};
