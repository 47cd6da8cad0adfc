/* caio.h - libcaio: asynchronous file I/O for Linux behind one API and four backends. */
#ifndef CAIO_H
#define CAIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with -fvisibility=hidden: only what this header
 * declares is exported. */
#if defined(CAIO_BUILDING_LIBRARY) && defined(__GNUC__)
#pragma GCC visibility push(default)
#endif

/*
 * Model
 * -----
 * A context (caio_ctx) owns one backend instance and a fixed pool of
 * max_requests request slots.  caio_read() and friends validate their
 * arguments, take a slot and queue the request; nothing reaches the kernel
 * until a flush, which hands every queued request to the backend in ONE call
 * (one io_uring_enter or one io_submit).  A flush happens when caio_flush()
 * is called, when the queue reaches params.batch requests, and before
 * caio_wait() blocks.
 *
 * Completions are delivered only by caio_reap() and caio_wait(): they run
 * the callbacks on the calling thread, whatever the backend (the thread pool
 * and sync backends included).  caio_ctx_eventfd() returns a descriptor that
 * becomes readable when completions are waiting, for poll/epoll/asyncio.
 *
 * Errors: every function returns 0 or a count on success and a negative errno
 * on failure; errno is never relied on.  Argument errors (negative offset,
 * NULL buffer, fd < 0, too many iovecs) are returned by the submitting call
 * and no callback runs.  Errors found by the kernel (EBADF for a closed fd,
 * EISDIR, ENOSPC, ...) arrive as the callback's negative result.
 *
 * Thread safety: a context is not locked.  Any thread may use it, but calls
 * on one context must not overlap (like an io_uring ring); use one context
 * per thread or serialise with your own lock.  Callbacks run inside
 * caio_reap()/caio_wait()/caio_ctx_destroy() on the thread that called them;
 * a callback may submit, flush and cancel on its own context, but must not
 * reap, wait or destroy it.  Different contexts are independent.  Functions
 * that take no context (caio_probe, caio_backend_name, caio_strerror...) are
 * safe from any thread.
 *
 * Fork: a context belongs to the process that created it.  In a child every
 * call on an inherited context returns -EBADFD, and caio_ctx_destroy() only
 * releases the child's memory and descriptors (it waits for nothing).
 */

typedef struct caio_ctx caio_ctx;
typedef struct caio_req caio_req;

/* Backends in automatic selection order. */
enum caio_backend {
	CAIO_BACKEND_URING = 0,		/* io_uring through liburing */
	CAIO_BACKEND_LINUX,		/* Linux AIO through libaio, kernel >= 4.18 */
	CAIO_BACKEND_THREAD,		/* pthread pool running pread/pwrite/... */
	CAIO_BACKEND_SYNC,		/* runs each request inside the flush */
	CAIO_BACKEND_COUNT
};

/* Operations.  New ones are appended; the numbers never change. */
enum caio_op {
	CAIO_OP_READ = 0,
	CAIO_OP_WRITE,
	CAIO_OP_READV,
	CAIO_OP_WRITEV,
	CAIO_OP_FSYNC,
	CAIO_OP_FDSYNC,
	CAIO_OP_FALLOCATE,
	CAIO_OP_OPENAT,
	CAIO_OP_CLOSE,
	CAIO_OP_STATX,
	CAIO_OP_UNLINKAT,
	CAIO_OP_RENAMEAT,
	CAIO_OP_MKDIRAT,
	CAIO_OP_SYMLINKAT,
	CAIO_OP_LINKAT,
	CAIO_OP_FTRUNCATE,
	CAIO_OP_SPLICE,
	CAIO_OP_COUNT
};

/* Largest transfer one read/write request performs, like the kernel's
 * MAX_RW_COUNT: a larger request completes short, as pread(2) would. */
#define CAIO_MAX_RW_COUNT	0x7ffff000u

#define CAIO_MAX_REQUESTS_DEFAULT	512u

/* params.flags */
#define CAIO_CTX_SQPOLL		(1u << 0)	/* uring: kernel submission polling thread */
#define CAIO_CTX_NO_ENV		(1u << 1)	/* ignore CAIO_IMPL and the default_implementation file */
#define CAIO_CTX_QUIET		(1u << 2)	/* do not print selection warnings to stderr */
/* caio_reap() clears the eventfd only when it finds nothing to run: a reap
 * right after the flush that completed its requests (page-cached reads)
 * saves a read(2), and a poller then wakes at most once in vain, for the
 * empty reap that clears it.  Without it the eventfd is readable exactly
 * while completions wait. */
#define CAIO_CTX_LAZY_EVENTFD	(1u << 3)

/*
 * Context parameters.  Set size = sizeof(struct caio_params) and zero what
 * you do not use: fields are only ever appended, and the library reads no
 * field beyond the size the caller declares.
 */
struct caio_params {
	uint32_t size;
	uint32_t flags;			/* CAIO_CTX_* */
	uint32_t max_requests;		/* slots: queued + in flight + unreaped; 0 = 512 */
	/* Auto-flush at this many queued; 0 = max_requests.  Large batches
	 * save CPU; on a device that completes in bursts a small batch (even
	 * 1) can keep it busier at medium queue depths. */
	uint32_t batch;
	uint32_t threads;		/* thread backend pool size; 0 = default (8) */
	uint32_t sqpoll_idle_ms;	/* uring with CAIO_CTX_SQPOLL; 0 = kernel default */
	/* NULL or "auto": CAIO_IMPL, then the default_implementation file,
	 * then the first backend whose probe succeeds.  Otherwise a backend
	 * name ("uring", "linux", "thread", "sync" or its alias "python"):
	 * that backend or an error, never a silent fallback. */
	const char *backend;
	/* Optional: on failure, a human-readable reason is written here. */
	char *error;
	size_t error_len;
};

/* The completion callback: res is the syscall's result (a byte count, 0,
 * a new fd for openat) or a negative errno; -ECANCELED when cancelled.
 * req identifies the request; it is recycled when the callback returns. */
typedef void (*caio_cb)(caio_req *req, int64_t res, void *data);

/* Context life cycle.  caio_ctx_destroy() cancels queued requests, waits
 * for the ones in flight and runs every outstanding callback before it
 * frees the context, so nothing leaks. */
int caio_ctx_new(caio_ctx **ctxp, const struct caio_params *params);
void caio_ctx_destroy(caio_ctx *ctx);

/* The eventfd that is readable while completions wait to be reaped.  Owned
 * by the context: never close it; caio_reap() clears it (but see
 * CAIO_CTX_LAZY_EVENTFD). */
int caio_ctx_eventfd(caio_ctx *ctx);

enum caio_backend caio_ctx_backend(const caio_ctx *ctx);
const char *caio_ctx_backend_name(const caio_ctx *ctx);
unsigned caio_ctx_max_requests(const caio_ctx *ctx);
/* Requests holding a slot: queued, in the kernel or a worker, or unreaped. */
unsigned caio_ctx_pending(const caio_ctx *ctx);
/* How the backend was chosen, with every reason a backend was skipped,
 * e.g. "uring: io_uring_setup: ENOSYS (blocked by seccomp?); chose linux". */
const char *caio_ctx_selection(const caio_ctx *ctx);

/* Capabilities: 1 if the backend runs op natively, 0 if the core routes it
 * through its thread pool (the result is the same, only the path differs),
 * -EINVAL for an unknown op. */
int caio_ctx_op_native(const caio_ctx *ctx, enum caio_op op);

/* Counters; set st->size = sizeof(*st) first. */
struct caio_stats {
	uint32_t size;
	uint32_t pending;		/* as caio_ctx_pending() */
	uint64_t requests;		/* accepted by the submit calls */
	uint64_t completions;		/* callbacks run */
	uint64_t cancelled;		/* completed with -ECANCELED by caio_cancel */
	uint64_t errors;		/* completed with a negative result */
	uint64_t flushes;		/* flushes that moved >= 1 request */
	uint64_t kernel_submits;	/* io_uring_enter/io_submit calls that submitted */
	uint64_t kernel_requests;	/* requests handed over by those calls */
	uint64_t kernel_waits;		/* blocking waits for completions */
	uint64_t max_batch;		/* most requests in one kernel submission */
	uint64_t fallback_requests;	/* routed to the thread pool */
	uint64_t bytes_read;
	uint64_t bytes_written;
	/* io_submit calls the kernel refused outright (a request it will not
	 * take, e.g. RWF_NOWAIT on a file without it): each costs a syscall
	 * that submitted nothing.  Newer than the fields above: set size. */
	uint64_t kernel_refusals;
	/* Reads and writes the kernel did with registered buffers
	 * (caio_ctx_register_buffers): no page pinning per request.  Newer
	 * still: set size. */
	uint64_t fixed_requests;
};
int caio_ctx_stats(const caio_ctx *ctx, struct caio_stats *st);

/*
 * Submission.  Each call validates, takes a slot and queues; it returns 0,
 * or -EAGAIN when all max_requests slots are taken (nothing blocks), or an
 * argument error.  reqp, when not NULL, receives the request for
 * caio_cancel(); it stays valid until its callback returns.
 *   offset < 0                    -> -EINVAL (io_uring would read at the file position)
 *   buf == NULL with nbytes > 0   -> -EFAULT
 *   fd < 0                        -> -EBADF
 *   iovcnt < 0 or > IOV_MAX       -> -EINVAL, iov == NULL or an iov_base NULL with len > 0 -> -EFAULT
 */
int caio_read(caio_ctx *ctx, int fd, void *buf, size_t nbytes, int64_t offset,
	      caio_cb cb, void *data, caio_req **reqp);
int caio_write(caio_ctx *ctx, int fd, const void *buf, size_t nbytes,
	       int64_t offset, caio_cb cb, void *data, caio_req **reqp);
/* iov must stay valid until the callback runs. */
int caio_readv(caio_ctx *ctx, int fd, const struct iovec *iov, int iovcnt,
	       int64_t offset, caio_cb cb, void *data, caio_req **reqp);
int caio_writev(caio_ctx *ctx, int fd, const struct iovec *iov, int iovcnt,
		int64_t offset, caio_cb cb, void *data, caio_req **reqp);
int caio_fsync(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp);
int caio_fdsync(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp);
int caio_fallocate(caio_ctx *ctx, int fd, int mode, int64_t offset,
		   int64_t len, caio_cb cb, void *data, caio_req **reqp);

/* Metadata operations (io_uring runs most natively; others use the pool).
 * Paths and buffers must stay valid until the callback runs. */
int caio_openat(caio_ctx *ctx, int dirfd, const char *path, int flags,
		mode_t mode, caio_cb cb, void *data, caio_req **reqp);
int caio_close(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp);
struct statx;
int caio_statx(caio_ctx *ctx, int dirfd, const char *path, int flags,
	       unsigned mask, struct statx *buf, caio_cb cb, void *data,
	       caio_req **reqp);
int caio_unlinkat(caio_ctx *ctx, int dirfd, const char *path, int flags,
		  caio_cb cb, void *data, caio_req **reqp);
int caio_renameat(caio_ctx *ctx, int olddirfd, const char *oldpath,
		  int newdirfd, const char *newpath, unsigned flags,
		  caio_cb cb, void *data, caio_req **reqp);
int caio_mkdirat(caio_ctx *ctx, int dirfd, const char *path, mode_t mode,
		 caio_cb cb, void *data, caio_req **reqp);
int caio_symlinkat(caio_ctx *ctx, const char *target, int newdirfd,
		   const char *linkpath, caio_cb cb, void *data,
		   caio_req **reqp);
int caio_linkat(caio_ctx *ctx, int olddirfd, const char *oldpath,
		int newdirfd, const char *newpath, int flags, caio_cb cb,
		void *data, caio_req **reqp);
int caio_ftruncate(caio_ctx *ctx, int fd, int64_t length, caio_cb cb,
		   void *data, caio_req **reqp);

/* splice(2): move up to nbytes between a pipe and another descriptor
 * without copying them through user memory, e.g. the data of a FUSE write
 * from the pipe /dev/fuse was spliced into, into the file.  off_in and
 * off_out are the offsets in a file, -1 for a pipe (or to use and advance
 * the file position); flags are SPLICE_F_*.  The result is the count moved,
 * which may be short like the syscall's.  Runs in io_uring natively, in the
 * pool otherwise; a pipe end may make it wait for the other end. */
int caio_splice(caio_ctx *ctx, int fd_in, int64_t off_in, int fd_out,
		int64_t off_out, size_t nbytes, unsigned flags, caio_cb cb,
		void *data, caio_req **reqp);

/*
 * Registered buffers.  The pages of the nr regions in iov are pinned once,
 * here, instead of at every O_DIRECT request: the uring backend then runs a
 * caio_read() or caio_write() whose buffer lies wholly inside one region as
 * IORING_OP_READ_FIXED / WRITE_FIXED.  Buffers outside the regions work as
 * before, so registering is only ever an optimisation.  The regions must
 * stay mapped until they are unregistered or the context is destroyed.
 * One set at a time, of at most CAIO_MAX_BUFFER_REGIONS regions of 1 byte
 * to 1 GiB each that do not overlap.  Returns 0, or:
 *   -EOPNOTSUPP  the backend has no registered buffers (linux, thread, sync)
 *   -EBUSY       a set is registered already
 *   -EINVAL      nr is 0 or too large, a region is empty or too large, or
 *                two regions overlap (uring)
 *   -EFAULT      iov or a region's base is NULL
 *   -ENOMEM      the kernel could not pin the pages (RLIMIT_MEMLOCK before
 *                Linux 5.12), or another error the kernel gave
 * caio_ctx_unregister_buffers() drops the set: -EBUSY while requests are
 * in the kernel, -ENXIO when none is registered.
 */
#define CAIO_MAX_BUFFER_REGIONS	1024
int caio_ctx_register_buffers(caio_ctx *ctx, const struct iovec *iov, unsigned nr);
int caio_ctx_unregister_buffers(caio_ctx *ctx);

/* Hand every queued request to the backend in one kernel call.
 * Returns the number handed over, or a negative errno. */
int caio_flush(caio_ctx *ctx);

/* Run the callbacks of up to max waiting completions (0 = all), never
 * blocking.  Returns the number run. */
int caio_reap(caio_ctx *ctx, unsigned max);

/* Flush, then block until at least min_nr callbacks have run (fewer if
 * fewer are pending) or timeout_ns passes (< 0: no timeout, 0: poll).
 * What the callbacks queued is flushed before it returns; with the thread
 * backend, a lone such request waits for the next call on the context (or
 * a poll of its eventfd), since a wait without timeout then runs it on the
 * calling thread: at queue depth 1 that saves two thread wake-ups a request.
 * Returns the number of callbacks run, or -EINTR if a signal interrupted
 * the wait before any ran. */
int caio_wait(caio_ctx *ctx, unsigned min_nr, int64_t timeout_ns);

/*
 * Cancel.  Returns:
 *   0            cancelled: the callback will run with -ECANCELED (the
 *                request was still queued or waiting for a worker)
 *   -EINPROGRESS the request is in the kernel and a kernel cancel was
 *                issued; its callback's result says whether it worked
 *                (-ECANCELED) or the operation completed anyway
 *   -EALREADY    already running and cannot be stopped; it completes
 *                with its real result
 *   -ENOENT      not a pending request of this context (already done)
 */
int caio_cancel(caio_ctx *ctx, caio_req *req);

/* The operation of a request (valid until its callback returns). */
enum caio_op caio_req_op(const caio_req *req);

/*
 * Backends without a context.  caio_probe() really tries the backend (it
 * sets up and tears down a small instance) and returns 0 or a negative
 * errno with the reason in buf.
 */
int caio_probe(enum caio_backend backend, char *buf, size_t len);
const char *caio_backend_name(enum caio_backend backend);
/* "uring", "linux", "thread", "sync", "python" (= sync) -> the backend, or -EINVAL. */
int caio_backend_from_name(const char *name);
/* The backend CAIO_IMPL or the default_implementation file asks for:
 * a backend, -ENOENT if neither names one, -EINVAL (with a warning in buf)
 * if the one that is set is not a backend name. */
int caio_backend_requested(char *buf, size_t len);
/* The path of the default_implementation file: $CAIO_DEFAULT_IMPLEMENTATION
 * if set, else $(sysconfdir)/caio/default_implementation. */
const char *caio_default_implementation_path(void);
/* The name of an operation, e.g. "read", "fdsync". */
const char *caio_op_name(enum caio_op op);
/* strerror() for a negative errno, thread safe, never NULL. */
const char *caio_strerror(int negative_errno);
/* The library version, e.g. "0.1.0". */
const char *caio_version(void);

#if defined(CAIO_BUILDING_LIBRARY) && defined(__GNUC__)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* CAIO_H */
