/* internal.h - libcaio's private types: the request, the context and the backend ops table. */
#ifndef CAIO_INTERNAL_H
#define CAIO_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "caio.h"

#define CAIO_NO_NOWAIT_FS	8	/* file systems remembered to refuse RWF_NOWAIT */

/* Where a request is; guards cancel and destroy. */
enum req_state {
	REQ_FREE = 0,
	REQ_QUEUED,		/* in ctx->queue, not yet flushed */
	REQ_POOL,		/* handed to the thread pool (waiting or running) */
	REQ_KERNEL,		/* handed to the backend */
	REQ_DONE,		/* result known, callback not yet run */
};

struct caio_req {
	struct caio_req *next;		/* free list / done lists */
	caio_cb cb;
	void *data;
	uint32_t index;			/* slot number: backends keep per-slot state in arrays */
	uint8_t op;			/* enum caio_op */
	uint8_t state;			/* enum req_state */
	uint8_t cancel_requested;	/* the backend's kernel cancel was issued */
	uint8_t nowait_first;		/* pool: try the page cache before blocking (spread_reads) */
	uint8_t fixed_buf;		/* uring: submitted as READ_FIXED/WRITE_FIXED */
	int fd;				/* the fd, or the dirfd of *at() calls */
	int64_t offset;
	int64_t res;
	uint64_t write_key;		/* pool: a buffered write's file, 0 for others (serial_writes) */
	union {
		struct { void *buf; size_t len; } rw;
		struct { const struct iovec *iov; int cnt; } vec;
		struct { int mode; int64_t len; } alloc;
		struct { const char *path; int flags; mode_t mode; } open;	/* openat, mkdirat, unlinkat */
		struct { const char *path; int flags; unsigned mask; struct statx *buf; } statx;
		struct { const char *oldpath; const char *newpath; int newdirfd; unsigned flags; } two;	/* renameat, linkat, symlinkat (fd unused) */
		int64_t length;								/* ftruncate */
		struct { int fd_in; unsigned flags; int64_t off_in; size_t len; } splice;	/* fd, offset: the output */
	} u;
};

struct caio_pool;

/*
 * One backend.  Every function returns 0/count or a negative errno.
 * Completions found by a backend are finished with caio__complete() from
 * reap(), which the core only calls on the reaping thread.
 */
struct caio_backend_ops {
	const char *name;
	/* Set up ctx->backend_data and ctx->native_ops; on failure write
	 * why into reason (e.g. "io_uring_setup: ENOSYS (blocked by seccomp?)"). */
	int (*init)(caio_ctx *ctx, char *reason, size_t len);
	/* Called with nothing in flight in the backend (the core waited). */
	void (*exit)(caio_ctx *ctx);
	/* Hand reqs[0..nr) over in ONE kernel call, then, if wait_nr > 0,
	 * block until wait_nr completions are ready or ts passes (NULL: no
	 * limit); fuse both into one call where the kernel allows.  Returns
	 * how many requests were consumed (submitted, or finished at once
	 * with an error through caio__finish); the core requeues the rest. */
	int (*submit)(caio_ctx *ctx, caio_req **reqs, unsigned nr,
		      unsigned wait_nr, const struct timespec *ts);
	/* Finish up to max ready completions (caio__complete each), no blocking. */
	int (*reap)(caio_ctx *ctx, unsigned max);
	/* Cancel a REQ_KERNEL request: -EINPROGRESS, -EALREADY or -ENOENT. */
	int (*cancel)(caio_ctx *ctx, caio_req *req);
	/* Register nr checked regions, or with nr == 0 drop them (nothing is
	 * in the kernel then).  NULL: the backend has no such thing. */
	int (*register_buffers)(caio_ctx *ctx, const struct iovec *iov, unsigned nr);
};

extern const struct caio_backend_ops caio__backend_uring;
extern const struct caio_backend_ops caio__backend_linux;
extern const struct caio_backend_ops caio__backend_thread;
extern const struct caio_backend_ops caio__backend_sync;

struct caio_ctx {
	const struct caio_backend_ops *ops;
	enum caio_backend backend;
	void *backend_data;
	uint32_t native_ops;		/* bit per enum caio_op the backend runs itself */
	uint32_t flags;
	uint32_t max_requests;
	uint32_t batch;
	uint32_t threads;
	uint32_t sqpoll_idle_ms;
	int efd;			/* eventfd: every backend and the pool signal it */
	bool efd_watched;		/* the user polls efd: keep it readable while completions wait */
	bool flush_in_wait;		/* the flush caio_wait() makes for what its callbacks queued */
	int fork_generation;
	pid_t pid;

	caio_req *slots;		/* max_requests of them */
	caio_req *free_list;
	uint32_t pending;		/* slots in use */
	uint32_t kernel_inflight;	/* REQ_KERNEL in the backend */

	caio_req **queue;		/* queued for the next flush, in order */
	uint32_t queued;

	caio_req *done_head, *done_tail;	/* finished by the core itself (cancel, sync) */
	struct caio_pool *pool;		/* thread pool: the thread backend, or the fallback */
	uint32_t pool_inflight;

	uint8_t *fd_buffered;		/* by descriptor: seen without O_DIRECT, file refused NOWAIT (core.c) */
	uint32_t fd_buffered_len;
	struct caio_no_nowait_fs {	/* file systems that refused RWF_NOWAIT */
		dev_t dev;
		bool in_memory;		/* tmpfs, ramfs */
	} no_nowait[CAIO_NO_NOWAIT_FS];
	unsigned no_nowait_count;

	struct caio_stats stats;
	char selection[512];
};

/* core.c: called by backends */
void caio__complete(caio_ctx *ctx, caio_req *req, int64_t res);	/* run the callback now, free the slot */
void caio__finish(caio_ctx *ctx, caio_req *req, int64_t res);	/* park on the done list for the next reap */
void caio__signal(caio_ctx *ctx);					/* make efd readable */
void caio__count_submit(caio_ctx *ctx, unsigned nr);			/* one kernel submission of nr */
bool caio__forked(const caio_ctx *ctx);
int64_t caio__now_ns(void);						/* CLOCK_MONOTONIC */
bool caio__fd_buffered(caio_ctx *ctx, int fd);	/* not O_DIRECT? remembered when so */
void caio__fd_forget(caio_ctx *ctx, int fd);	/* a remembered answer proved stale */
/* Files whose reads and writes RWF_NOWAIT cannot try (caio__fd_nowait). */
enum caio_nowait {
	CAIO_NOWAIT_TAKEN = 0,	/* as far as known: try RWF_NOWAIT */
	CAIO_NOWAIT_REFUSED,	/* a read may wait for anything (FUSE, procfs...) */
	CAIO_NOWAIT_IN_MEMORY,	/* refused, but a tmpfs or ramfs file: reads copy memory */
};
/* What caio__fd_nowait found for the descriptor it last looked at: one per
 * batch, starting with fd = -1. */
struct caio_fd_verdict {
	int fd;
	enum caio_nowait kind;
};
void caio__fd_note_refuses_nowait(caio_ctx *ctx, int fd);	/* EOPNOTSUPP for RWF_NOWAIT */
enum caio_nowait caio__fd_nowait(caio_ctx *ctx, int fd, struct caio_fd_verdict *seen);
bool caio__fd_noted_refusing(const caio_ctx *ctx, int fd);
int caio__start_fallback_pool(caio_ctx *ctx);			/* the pool for ops the backend lacks */

/* execute.c: run one request synchronously; the syscall's result or -errno */
int64_t caio__execute(const caio_req *req);

/* backend-thread.c: the pool, shared by the thread backend and the fallback */
int caio__pool_new(caio_ctx *ctx, unsigned threads, struct caio_pool **poolp);
void caio__pool_free(struct caio_pool *pool, bool forked);	/* after it went idle */
void caio__pool_submit(struct caio_pool *pool, caio_req **reqs, unsigned nr);
int caio__pool_reap(struct caio_pool *pool, unsigned max);
int caio__pool_cancel(struct caio_pool *pool, caio_req *req);	/* 0 or -EALREADY */
bool caio__pool_help(struct caio_pool *pool);	/* run a waiting request on this thread */
void caio__pool_kick(struct caio_pool *pool);	/* wake a worker for a lazy request */
bool caio__pool_lazy(const struct caio_pool *pool);
void caio__pool_forked(void);	/* in a forked child, which has no workers */

/* select.c */
int caio__select(caio_ctx *ctx, const char *requested, char *err, size_t errlen);
const struct caio_backend_ops *caio__backend_ops(enum caio_backend backend);
int caio__probe_hook(enum caio_backend backend, char *reason, size_t len);

/* util */
const char *caio__errno_name(int err);	/* "ENOSYS" */

#define CAIO_OP_BIT(op)		(1u << (op))
#define CAIO_ALL_OPS		((1u << CAIO_OP_COUNT) - 1)

#endif
