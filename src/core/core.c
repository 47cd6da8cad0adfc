/* core.c - the context: request slots, the submission queue, flush, reap, wait and cancel. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "internal.h"

#define MAX_REQUESTS_LIMIT	(1u << 20)

/* Bumped in every forked child, so an inherited context can tell. */
static int fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
	__atomic_add_fetch(&fork_generation, 1, __ATOMIC_RELAXED);
	caio__pool_forked();
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, on_fork_child);
}

bool caio__forked(const caio_ctx *ctx)
{
	return ctx->fork_generation !=
	       __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);
}

void caio__signal(caio_ctx *ctx)
{
	uint64_t one = 1;

	if (write(ctx->efd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, so it is readable anyway */
	}
}

static void drain_eventfd(caio_ctx *ctx)
{
	uint64_t count;

	if (read(ctx->efd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing was signalled */
	}
}

void caio__count_submit(caio_ctx *ctx, unsigned nr)
{
	ctx->stats.kernel_submits++;
	ctx->stats.kernel_requests += nr;
	if (nr > ctx->stats.max_batch)
		ctx->stats.max_batch = nr;
}

static void count_completion(caio_ctx *ctx, const caio_req *req, int64_t res)
{
	ctx->stats.completions++;
	if (res == -ECANCELED)
		ctx->stats.cancelled++;
	if (res < 0) {
		ctx->stats.errors++;
		return;
	}
	if (req->op == CAIO_OP_READ || req->op == CAIO_OP_READV)
		ctx->stats.bytes_read += res;
	else if (req->op == CAIO_OP_WRITE || req->op == CAIO_OP_WRITEV ||
		 req->op == CAIO_OP_SPLICE)
		ctx->stats.bytes_written += res;
}

void caio__complete(caio_ctx *ctx, caio_req *req, int64_t res)
{
	count_completion(ctx, req, res);
	req->state = REQ_DONE;
	if (req->cb)
		req->cb(req, res, req->data);
	req->state = REQ_FREE;
	req->cb = NULL;
	req->next = ctx->free_list;
	ctx->free_list = req;
	ctx->pending--;
}

void caio__finish(caio_ctx *ctx, caio_req *req, int64_t res)
{
	bool was_empty = ctx->done_head == NULL;

	req->res = res;
	req->state = REQ_DONE;
	req->next = NULL;
	if (ctx->done_tail)
		ctx->done_tail->next = req;
	else
		ctx->done_head = req;
	ctx->done_tail = req;
	if (was_empty && ctx->efd_watched)
		caio__signal(ctx);
}

static int reap_done_list(caio_ctx *ctx, unsigned max)
{
	int n = 0;

	while (ctx->done_head && n < max) {
		caio_req *req = ctx->done_head;

		ctx->done_head = req->next;
		if (!ctx->done_head)
			ctx->done_tail = NULL;
		caio__complete(ctx, req, req->res);
		n++;
	}
	return n;
}

int caio__start_fallback_pool(caio_ctx *ctx)
{
	if (ctx->pool)
		return 0;
	return caio__pool_new(ctx, 4, &ctx->pool);
}

/* ---- context life cycle ---- */

static int alloc_slots(caio_ctx *ctx)
{
	ctx->slots = calloc(ctx->max_requests, sizeof(*ctx->slots));
	ctx->queue = calloc(ctx->max_requests, sizeof(*ctx->queue));
	if (!ctx->slots || !ctx->queue)
		return -ENOMEM;
	for (uint32_t i = ctx->max_requests; i-- > 0;) {
		ctx->slots[i].index = i;
		ctx->slots[i].next = ctx->free_list;
		ctx->free_list = &ctx->slots[i];
	}
	return 0;
}

static void set_error(const struct caio_params *p, const char *msg)
{
	if (p->error && p->error_len)
		snprintf(p->error, p->error_len, "%s", msg);
}

int caio_ctx_new(caio_ctx **ctxp, const struct caio_params *params)
{
	struct caio_params p = { .size = sizeof(p) };
	caio_ctx *ctx;
	int err;

	if (!ctxp)
		return -EINVAL;
	*ctxp = NULL;
	if (params) {
		if (params->size < sizeof(params->size))
			return -EINVAL;
		memcpy(&p, params, params->size < sizeof(p) ? params->size : sizeof(p));
	}
	if (p.error && p.error_len)
		p.error[0] = '\0';
	if (p.max_requests > MAX_REQUESTS_LIMIT) {
		set_error(&p, "max_requests is larger than 1048576");
		return -EINVAL;
	}
	if (p.flags & ~(CAIO_CTX_SQPOLL | CAIO_CTX_NO_ENV | CAIO_CTX_QUIET |
			CAIO_CTX_LAZY_EVENTFD)) {
		set_error(&p, "unknown flags");	/* from a newer caio.h */
		return -EINVAL;
	}
	pthread_once(&atfork_once, register_atfork);

	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->efd = -1;
	ctx->flags = p.flags;
	ctx->max_requests = p.max_requests ? p.max_requests : CAIO_MAX_REQUESTS_DEFAULT;
	ctx->batch = p.batch && p.batch < ctx->max_requests ? p.batch : ctx->max_requests;
	ctx->threads = p.threads;
	ctx->sqpoll_idle_ms = p.sqpoll_idle_ms;
	ctx->fork_generation = __atomic_load_n(&fork_generation, __ATOMIC_RELAXED);
	ctx->pid = getpid();
	ctx->stats.size = sizeof(ctx->stats);

	err = alloc_slots(ctx);
	if (err)
		goto fail;
	ctx->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->efd < 0) {
		err = -errno;
		goto fail;
	}
	err = caio__select(ctx, p.backend, p.error, p.error_len);
	if (err)
		goto fail;
	*ctxp = ctx;
	return 0;
fail:
	if (err == -ENOMEM && p.error && p.error_len && !p.error[0])
		set_error(&p, "out of memory");
	if (ctx->efd >= 0)
		close(ctx->efd);
	free(ctx->queue);
	free(ctx->slots);
	free(ctx);
	return err;
}

/* Cancel everything that can be cancelled, then wait for the rest. */
static void drain_all(caio_ctx *ctx)
{
	for (uint32_t i = 0; i < ctx->max_requests; i++) {
		caio_req *req = &ctx->slots[i];

		if (req->state == REQ_QUEUED || req->state == REQ_POOL ||
		    (req->state == REQ_KERNEL && !req->cancel_requested))
			caio_cancel(ctx, req);
	}
	while (ctx->pending)
		caio_wait(ctx, ctx->pending, -1);
}

void caio_ctx_destroy(caio_ctx *ctx)
{
	if (!ctx)
		return;
	/* In a forked child the requests, the pool's threads and the kernel
	 * state stay with the parent: release only this process's copies
	 * (every backend's exit knows not to wait there). */
	if (!caio__forked(ctx))
		drain_all(ctx);
	ctx->ops->exit(ctx);
	if (ctx->pool)
		caio__pool_free(ctx->pool, caio__forked(ctx));
	close(ctx->efd);
	free(ctx->fd_buffered);
	free(ctx->queue);
	free(ctx->slots);
	free(ctx);
}

/* ---- queries ---- */

int caio_ctx_eventfd(caio_ctx *ctx)
{
	if (!ctx->efd_watched) {
		ctx->efd_watched = true;
		/* Completions parked before anyone watched must still wake,
		 * and so must a poller with a lazy request in the pool. */
		if (ctx->done_head || (ctx->pool && caio__pool_lazy(ctx->pool)))
			caio__signal(ctx);
	}
	return ctx->efd;
}

enum caio_backend caio_ctx_backend(const caio_ctx *ctx)
{
	return ctx->backend;
}

const char *caio_ctx_backend_name(const caio_ctx *ctx)
{
	return caio_backend_name(ctx->backend);
}

unsigned caio_ctx_max_requests(const caio_ctx *ctx)
{
	return ctx->max_requests;
}

unsigned caio_ctx_pending(const caio_ctx *ctx)
{
	return ctx->pending;
}

const char *caio_ctx_selection(const caio_ctx *ctx)
{
	return ctx->selection;
}

int caio_ctx_op_native(const caio_ctx *ctx, enum caio_op op)
{
	if ((unsigned)op >= CAIO_OP_COUNT)
		return -EINVAL;
	return !!(ctx->native_ops & CAIO_OP_BIT(op));
}

int caio_ctx_stats(const caio_ctx *ctx, struct caio_stats *st)
{
	struct caio_stats now = ctx->stats;
	size_t size;

	if (!st || st->size < sizeof(uint32_t) * 2)
		return -EINVAL;
	size = st->size < sizeof(now) ? st->size : sizeof(now);
	now.size = size;
	now.pending = ctx->pending;
	memcpy(st, &now, size);
	return 0;
}

#define CAIO_MAX_BUFFER_BYTES	((size_t)1 << 30)	/* io_uring's limit per buffer */

int caio_ctx_register_buffers(caio_ctx *ctx, const struct iovec *iov, unsigned nr)
{
	unsigned i;

	if (caio__forked(ctx))
		return -EBADFD;
	if (!iov)
		return -EFAULT;
	if (!nr || nr > CAIO_MAX_BUFFER_REGIONS)
		return -EINVAL;
	for (i = 0; i < nr; i++) {
		if (!iov[i].iov_base)
			return -EFAULT;
		if (!iov[i].iov_len || iov[i].iov_len > CAIO_MAX_BUFFER_BYTES)
			return -EINVAL;
	}
	if (!ctx->ops->register_buffers)
		return -EOPNOTSUPP;
	return ctx->ops->register_buffers(ctx, iov, nr);
}

int caio_ctx_unregister_buffers(caio_ctx *ctx)
{
	if (caio__forked(ctx))
		return -EBADFD;
	if (!ctx->ops->register_buffers)
		return -EOPNOTSUPP;
	/* Old kernels wait for every request before they let go of the
	 * pages; requests queued but not flushed pick their opcode later. */
	if (ctx->kernel_inflight)
		return -EBUSY;
	return ctx->ops->register_buffers(ctx, NULL, 0);
}

enum caio_op caio_req_op(const caio_req *req)
{
	return req->op;
}

/* ---- submission ---- */

static int req_take(caio_ctx *ctx, enum caio_op op, int fd, caio_cb cb,
		    void *data, caio_req **reqp)
{
	caio_req *req;

	if (caio__forked(ctx))
		return -EBADFD;
	req = ctx->free_list;
	if (!req)
		return -EAGAIN;
	ctx->free_list = req->next;
	ctx->pending++;
	req->next = NULL;
	req->op = op;
	req->fd = fd;
	req->offset = 0;
	req->res = 0;
	req->cb = cb;
	req->data = data;
	req->cancel_requested = 0;
	*reqp = req;
	return 0;
}

static int req_queue(caio_ctx *ctx, caio_req *req, caio_req **reqp)
{
	req->state = REQ_QUEUED;
	ctx->queue[ctx->queued++] = req;
	ctx->stats.requests++;
	if (reqp)
		*reqp = req;
	if (ctx->queued >= ctx->batch)
		caio_flush(ctx);	/* a failure leaves them queued for the next flush */
	return 0;
}

static int check_rw(int fd, const void *buf, size_t nbytes, int64_t offset)
{
	if (fd < 0)
		return -EBADF;
	if (offset < 0)
		return -EINVAL;
	if (!buf && nbytes)
		return -EFAULT;
	return 0;
}

static int check_iov(int fd, const struct iovec *iov, int iovcnt, int64_t offset)
{
	if (fd < 0)
		return -EBADF;
	if (offset < 0 || iovcnt < 0 || iovcnt > IOV_MAX)
		return -EINVAL;
	if (!iov && iovcnt)
		return -EFAULT;
	for (int i = 0; i < iovcnt; i++)
		if (!iov[i].iov_base && iov[i].iov_len)
			return -EFAULT;
	return 0;
}

static int submit_rw(caio_ctx *ctx, enum caio_op op, int fd, void *buf,
		     size_t nbytes, int64_t offset, caio_cb cb, void *data,
		     caio_req **reqp)
{
	caio_req *req;
	int err = check_rw(fd, buf, nbytes, offset);

	if (!err)
		err = req_take(ctx, op, fd, cb, data, &req);
	if (err)
		return err;
	req->offset = offset;
	req->u.rw.buf = buf;
	req->u.rw.len = nbytes;
	return req_queue(ctx, req, reqp);
}

int caio_read(caio_ctx *ctx, int fd, void *buf, size_t nbytes, int64_t offset,
	      caio_cb cb, void *data, caio_req **reqp)
{
	return submit_rw(ctx, CAIO_OP_READ, fd, buf, nbytes, offset, cb, data, reqp);
}

int caio_write(caio_ctx *ctx, int fd, const void *buf, size_t nbytes,
	       int64_t offset, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_rw(ctx, CAIO_OP_WRITE, fd, (void *)buf, nbytes, offset,
			 cb, data, reqp);
}

static int submit_vec(caio_ctx *ctx, enum caio_op op, int fd,
		      const struct iovec *iov, int iovcnt, int64_t offset,
		      caio_cb cb, void *data, caio_req **reqp)
{
	caio_req *req;
	int err = check_iov(fd, iov, iovcnt, offset);

	if (!err)
		err = req_take(ctx, op, fd, cb, data, &req);
	if (err)
		return err;
	req->offset = offset;
	req->u.vec.iov = iov;
	req->u.vec.cnt = iovcnt;
	return req_queue(ctx, req, reqp);
}

int caio_readv(caio_ctx *ctx, int fd, const struct iovec *iov, int iovcnt,
	       int64_t offset, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_vec(ctx, CAIO_OP_READV, fd, iov, iovcnt, offset, cb, data, reqp);
}

int caio_writev(caio_ctx *ctx, int fd, const struct iovec *iov, int iovcnt,
		int64_t offset, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_vec(ctx, CAIO_OP_WRITEV, fd, iov, iovcnt, offset, cb, data, reqp);
}

static int submit_fd_only(caio_ctx *ctx, enum caio_op op, int fd, caio_cb cb,
			  void *data, caio_req **reqp)
{
	caio_req *req;
	int err = fd < 0 ? -EBADF : req_take(ctx, op, fd, cb, data, &req);

	if (err)
		return err;
	return req_queue(ctx, req, reqp);
}

int caio_fsync(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_fd_only(ctx, CAIO_OP_FSYNC, fd, cb, data, reqp);
}

int caio_fdsync(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_fd_only(ctx, CAIO_OP_FDSYNC, fd, cb, data, reqp);
}

int caio_close(caio_ctx *ctx, int fd, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_fd_only(ctx, CAIO_OP_CLOSE, fd, cb, data, reqp);
}

int caio_fallocate(caio_ctx *ctx, int fd, int mode, int64_t offset,
		   int64_t len, caio_cb cb, void *data, caio_req **reqp)
{
	caio_req *req;
	int err;

	if (fd < 0)
		return -EBADF;
	if (offset < 0 || len <= 0)
		return -EINVAL;
	err = req_take(ctx, CAIO_OP_FALLOCATE, fd, cb, data, &req);
	if (err)
		return err;
	req->offset = offset;
	req->u.alloc.mode = mode;
	req->u.alloc.len = len;
	return req_queue(ctx, req, reqp);
}

int caio_ftruncate(caio_ctx *ctx, int fd, int64_t length, caio_cb cb,
		   void *data, caio_req **reqp)
{
	caio_req *req;
	int err;

	if (fd < 0)
		return -EBADF;
	if (length < 0)
		return -EINVAL;
	err = req_take(ctx, CAIO_OP_FTRUNCATE, fd, cb, data, &req);
	if (err)
		return err;
	req->u.length = length;
	return req_queue(ctx, req, reqp);
}

int caio_splice(caio_ctx *ctx, int fd_in, int64_t off_in, int fd_out,
		int64_t off_out, size_t nbytes, unsigned flags, caio_cb cb,
		void *data, caio_req **reqp)
{
	caio_req *req;
	int err;

	if (fd_in < 0 || fd_out < 0)
		return -EBADF;
	if (off_in < -1 || off_out < -1)
		return -EINVAL;
	err = req_take(ctx, CAIO_OP_SPLICE, fd_out, cb, data, &req);
	if (err)
		return err;
	req->offset = off_out;
	req->u.splice.fd_in = fd_in;
	req->u.splice.off_in = off_in;
	req->u.splice.len = nbytes > CAIO_MAX_RW_COUNT ? CAIO_MAX_RW_COUNT : nbytes;
	req->u.splice.flags = flags;
	return req_queue(ctx, req, reqp);
}

/* openat, mkdirat and unlinkat share the path + flags + mode shape. */
static int submit_path(caio_ctx *ctx, enum caio_op op, int dirfd,
		       const char *path, int flags, mode_t mode, caio_cb cb,
		       void *data, caio_req **reqp)
{
	caio_req *req;
	int err;

	if (!path)
		return -EFAULT;
	err = req_take(ctx, op, dirfd, cb, data, &req);
	if (err)
		return err;
	req->u.open.path = path;
	req->u.open.flags = flags;
	req->u.open.mode = mode;
	return req_queue(ctx, req, reqp);
}

int caio_openat(caio_ctx *ctx, int dirfd, const char *path, int flags,
		mode_t mode, caio_cb cb, void *data, caio_req **reqp)
{
	return submit_path(ctx, CAIO_OP_OPENAT, dirfd, path, flags, mode, cb, data, reqp);
}

int caio_mkdirat(caio_ctx *ctx, int dirfd, const char *path, mode_t mode,
		 caio_cb cb, void *data, caio_req **reqp)
{
	return submit_path(ctx, CAIO_OP_MKDIRAT, dirfd, path, 0, mode, cb, data, reqp);
}

int caio_unlinkat(caio_ctx *ctx, int dirfd, const char *path, int flags,
		  caio_cb cb, void *data, caio_req **reqp)
{
	return submit_path(ctx, CAIO_OP_UNLINKAT, dirfd, path, flags, 0, cb, data, reqp);
}

int caio_statx(caio_ctx *ctx, int dirfd, const char *path, int flags,
	       unsigned mask, struct statx *buf, caio_cb cb, void *data,
	       caio_req **reqp)
{
	caio_req *req;
	int err;

	if (!path || !buf)
		return -EFAULT;
	err = req_take(ctx, CAIO_OP_STATX, dirfd, cb, data, &req);
	if (err)
		return err;
	req->u.statx.path = path;
	req->u.statx.flags = flags;
	req->u.statx.mask = mask;
	req->u.statx.buf = buf;
	return req_queue(ctx, req, reqp);
}

/* renameat, linkat and symlinkat: two names, a second dirfd, flags. */
static int submit_two(caio_ctx *ctx, enum caio_op op, int olddirfd,
		      const char *oldpath, int newdirfd, const char *newpath,
		      unsigned flags, caio_cb cb, void *data, caio_req **reqp)
{
	caio_req *req;
	int err;

	if (!oldpath || !newpath)
		return -EFAULT;
	err = req_take(ctx, op, olddirfd, cb, data, &req);
	if (err)
		return err;
	req->u.two.oldpath = oldpath;
	req->u.two.newpath = newpath;
	req->u.two.newdirfd = newdirfd;
	req->u.two.flags = flags;
	return req_queue(ctx, req, reqp);
}

int caio_renameat(caio_ctx *ctx, int olddirfd, const char *oldpath,
		  int newdirfd, const char *newpath, unsigned flags,
		  caio_cb cb, void *data, caio_req **reqp)
{
	return submit_two(ctx, CAIO_OP_RENAMEAT, olddirfd, oldpath, newdirfd,
			  newpath, flags, cb, data, reqp);
}

int caio_linkat(caio_ctx *ctx, int olddirfd, const char *oldpath,
		int newdirfd, const char *newpath, int flags, caio_cb cb,
		void *data, caio_req **reqp)
{
	return submit_two(ctx, CAIO_OP_LINKAT, olddirfd, oldpath, newdirfd,
			  newpath, flags, cb, data, reqp);
}

int caio_symlinkat(caio_ctx *ctx, const char *target, int newdirfd,
		   const char *linkpath, caio_cb cb, void *data,
		   caio_req **reqp)
{
	return submit_two(ctx, CAIO_OP_SYMLINKAT, -1, target, newdirfd,
			  linkpath, 0, cb, data, reqp);
}

/* ---- flush, reap, wait ---- */

/* Move requests the backend cannot run to the pool; keep the rest in order. */
static void route_fallback(caio_ctx *ctx)
{
	caio_req *fallback[64];
	uint32_t kept = 0, nfb = 0;
	int err;

	for (uint32_t i = 0; i < ctx->queued; i++) {
		caio_req *req = ctx->queue[i];

		if (ctx->native_ops & CAIO_OP_BIT(req->op)) {
			ctx->queue[kept++] = req;
			continue;
		}
		err = caio__start_fallback_pool(ctx);
		if (err) {
			caio__finish(ctx, req, err);
			continue;
		}
		fallback[nfb++] = req;
		if (nfb == 64) {
			caio__pool_submit(ctx->pool, fallback, nfb);
			ctx->stats.fallback_requests += nfb;
			nfb = 0;
		}
	}
	if (nfb) {
		caio__pool_submit(ctx->pool, fallback, nfb);
		ctx->stats.fallback_requests += nfb;
	}
	ctx->queued = kept;
}

/* Hand the queue to the backend, optionally waiting for wait_nr completions
 * in the same kernel call.  Returns the number handed over. */
static int flush_queue(caio_ctx *ctx, unsigned wait_nr, const struct timespec *ts)
{
	uint32_t before = ctx->queued;
	int done;

	if (ctx->native_ops != CAIO_ALL_OPS)
		route_fallback(ctx);
	if (!ctx->queued && !wait_nr)
		goto out;
	done = ctx->ops->submit(ctx, ctx->queue, ctx->queued, wait_nr, ts);
	if (done < 0)
		return done;
	if (done < ctx->queued)
		memmove(ctx->queue, ctx->queue + done,
			(ctx->queued - done) * sizeof(*ctx->queue));
	ctx->queued -= done;
out:
	if (before != ctx->queued)
		ctx->stats.flushes++;
	return before - ctx->queued;
}

/* A request the pool holds lazily (see thread_submit) starts when the
 * caller comes back for anything but a wait it can do the work in. */
static void kick_lazy(caio_ctx *ctx)
{
	if (ctx->pool)
		caio__pool_kick(ctx->pool);
}

int caio_flush(caio_ctx *ctx)
{
	if (caio__forked(ctx))
		return -EBADFD;
	kick_lazy(ctx);
	if (!ctx->queued)
		return 0;
	return flush_queue(ctx, 0, NULL);
}

static int reap_ready(caio_ctx *ctx, unsigned max)
{
	int n = reap_done_list(ctx, max);

	if (ctx->done_head && ctx->efd_watched)
		caio__signal(ctx);	/* left some behind: stay readable */
	if (n < max && ctx->pool_inflight)
		n += caio__pool_reap(ctx->pool, max - n);
	if (n < max && ctx->kernel_inflight)
		n += ctx->ops->reap(ctx, max - n);
	return n;
}

static int reap_now(caio_ctx *ctx, unsigned max)
{
	int n;

	if (!max)
		max = UINT_MAX;
	if (!(ctx->flags & CAIO_CTX_LAZY_EVENTFD)) {
		if (ctx->efd_watched || ctx->pool_inflight)
			drain_eventfd(ctx);
		return reap_ready(ctx, max);
	}
	/* Lazy: drain only when there is nothing to run.  What completed
	 * between that empty look and the drain signalled before the drain:
	 * look again. */
	n = reap_ready(ctx, max);
	if (!n && (ctx->efd_watched || ctx->pool_inflight)) {
		drain_eventfd(ctx);
		n = reap_ready(ctx, max);
	}
	return n;
}

int caio_reap(caio_ctx *ctx, unsigned max)
{
	if (caio__forked(ctx))
		return -EBADFD;
	kick_lazy(ctx);
	return reap_now(ctx, max);
}

#define FD_BUFFERED_MAX	(1u << 20)	/* larger descriptors are never remembered */

/* What ctx->fd_buffered remembers of a descriptor, as bits. */
#define FD_SEEN_BUFFERED	1u	/* open without O_DIRECT */
#define FD_NO_NOWAIT		2u	/* its file refused RWF_NOWAIT (caio__fd_note_refuses_nowait) */

static void fd_remember_buffered(caio_ctx *ctx, int fd)
{
	uint32_t len = ctx->fd_buffered_len ? ctx->fd_buffered_len : 64;
	uint8_t *grown;

	if ((unsigned)fd >= ctx->fd_buffered_len) {
		while (len <= (unsigned)fd)
			len *= 2;
		if (len > FD_BUFFERED_MAX)
			return;
		grown = realloc(ctx->fd_buffered, len);
		if (!grown)
			return;		/* not remembered: asked again next time */
		memset(grown + ctx->fd_buffered_len, 0, len - ctx->fd_buffered_len);
		ctx->fd_buffered = grown;
		ctx->fd_buffered_len = len;
	}
	ctx->fd_buffered[fd] = FD_SEEN_BUFFERED;
}

/*
 * Is fd open without O_DIRECT?  A descriptor seen so is remembered by its
 * number and costs no syscall again; any other pays one fcntl(F_GETFL) per
 * call.  The number may since have been closed and reused for an O_DIRECT
 * file: callers only steer speed by the answer, never a result, and
 * caio__fd_forget() an answer they find stale.
 */
bool caio__fd_buffered(caio_ctx *ctx, int fd)
{
	int flags;

	if ((unsigned)fd < ctx->fd_buffered_len && ctx->fd_buffered[fd])
		return true;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || (flags & O_DIRECT))
		return false;
	fd_remember_buffered(ctx, fd);
	return true;
}

/* The file systems noted to refuse RWF_NOWAIT: their entry, or NULL. */
static const struct caio_no_nowait_fs *no_nowait_fs(const caio_ctx *ctx, dev_t dev)
{
	for (unsigned i = 0; i < ctx->no_nowait_count; i++)
		if (ctx->no_nowait[i].dev == dev)
			return &ctx->no_nowait[i];
	return NULL;
}

/* tmpfs and ramfs keep their files in memory: reading one copies memory
 * (or, under memory pressure, swaps it in, as touching any memory may). */
static bool fs_in_memory(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 &&
	       (sfs.f_type == TMPFS_MAGIC || sfs.f_type == RAMFS_MAGIC);
}

/*
 * The kernel refused RWF_NOWAIT for fd's file with EOPNOTSUPP: it has no
 * FMODE_NOWAIT (tmpfs, FUSE, procfs...), and neither has any file of that
 * file system.  Remember the descriptor, which the caller knows is not
 * O_DIRECT, and the file system; a stream is left alone (it keeps its poll
 * paths).
 */
void caio__fd_note_refuses_nowait(caio_ctx *ctx, int fd)
{
	struct stat st;

	if (fstat(fd, &st) < 0 || !(S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)))
		return;
	fd_remember_buffered(ctx, fd);
	if ((unsigned)fd >= ctx->fd_buffered_len)
		return;		/* not remembered: asked again next time */
	if (!no_nowait_fs(ctx, st.st_dev)) {
		if (ctx->no_nowait_count == CAIO_NO_NOWAIT_FS)
			return;
		ctx->no_nowait[ctx->no_nowait_count].dev = st.st_dev;
		/* a block device's node lives on devtmpfs: never "in memory" */
		ctx->no_nowait[ctx->no_nowait_count].in_memory =
			S_ISREG(st.st_mode) && fs_in_memory(fd);
		ctx->no_nowait_count++;
	}
	ctx->fd_buffered[fd] |= FD_NO_NOWAIT;
}

/* Noted by caio__fd_note_refuses_nowait, unverified: for the rest of a
 * batch whose descriptors caio__fd_nowait checked at its start. */
bool caio__fd_noted_refusing(const caio_ctx *ctx, int fd)
{
	return (unsigned)fd < ctx->fd_buffered_len && (ctx->fd_buffered[fd] & FD_NO_NOWAIT);
}

/*
 * Does fd's file refuse RWF_NOWAIT, as noted, and is it a file in memory?
 * The note is by descriptor number, which may since have been closed and
 * reused: one fstat per batch (seen) checks that it still is a file on a
 * file system that refused, and forgets the note otherwise.  Only noted
 * descriptors cost the fstat.
 */
enum caio_nowait caio__fd_nowait(caio_ctx *ctx, int fd, struct caio_fd_verdict *seen)
{
	const struct caio_no_nowait_fs *fs;
	struct stat st;

	if (!caio__fd_noted_refusing(ctx, fd))
		return CAIO_NOWAIT_TAKEN;
	if (seen->fd != fd) {
		seen->fd = fd;
		seen->kind = CAIO_NOWAIT_TAKEN;
		if (fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) &&
		    (fs = no_nowait_fs(ctx, st.st_dev)))
			seen->kind = fs->in_memory && S_ISREG(st.st_mode) ?
				     CAIO_NOWAIT_IN_MEMORY : CAIO_NOWAIT_REFUSED;
		else
			ctx->fd_buffered[fd] &= ~FD_NO_NOWAIT;
	}
	return seen->kind;
}

void caio__fd_forget(caio_ctx *ctx, int fd)
{
	if ((unsigned)fd < ctx->fd_buffered_len)
		ctx->fd_buffered[fd] = 0;
}

int64_t caio__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Block until something may be ready or the deadline (< 0: none) passes. */
static int block_once(caio_ctx *ctx, int64_t deadline)
{
	struct timespec ts, *tsp = NULL;
	int64_t left = 0;

	if (deadline >= 0) {
		left = deadline - caio__now_ns();
		if (left <= 0)
			return -ETIME;
		ts.tv_sec = left / 1000000000LL;
		ts.tv_nsec = left % 1000000000LL;
		tsp = &ts;
	}
	ctx->stats.kernel_waits++;
	if (ctx->queued && ctx->native_ops != CAIO_ALL_OPS)
		route_fallback(ctx);
	/* Only the backend's own completions outstanding: let it wait in
	 * the kernel, fused with the flush (one io_uring_enter at QD1). */
	if (!ctx->pool_inflight && !ctx->done_head && ctx->kernel_inflight + ctx->queued) {
		int r = flush_queue(ctx, 1, tsp);

		return r < 0 ? r : 0;
	}
	if (ctx->queued) {
		int r = flush_queue(ctx, 0, NULL);

		if (r < 0)
			return r;
	}
	if (ctx->done_head)
		return 0;
	/* With no deadline to keep, work instead of sleeping. */
	if (deadline < 0 && ctx->pool_inflight && caio__pool_help(ctx->pool))
		return 0;
	struct pollfd pfd = { .fd = ctx->efd, .events = POLLIN };
	int timeout_ms = deadline < 0 ? -1 : (int)((left + 999999) / 1000000);

	if (poll(&pfd, 1, timeout_ms) < 0)
		return -errno;
	return 0;
}

int caio_wait(caio_ctx *ctx, unsigned min_nr, int64_t timeout_ns)
{
	int64_t deadline = timeout_ns < 0 ? -1 : caio__now_ns() + timeout_ns;
	int done = 0, r;

	if (caio__forked(ctx))
		return -EBADFD;
	if (!min_nr || !timeout_ns) {
		r = caio_flush(ctx);
		return r < 0 ? r : caio_reap(ctx, 0);
	}
	if (deadline >= 0)
		kick_lazy(ctx);		/* only a wait without deadline helps */
	for (;;) {
		r = reap_now(ctx, 0);
		if (r > 0)
			done += r;
		if (done >= min_nr || !ctx->pending)
			break;
		r = block_once(ctx, deadline);
		if (r == -ETIME)
			break;
		if (r == -EINTR && !done)
			return -EINTR;
		if (r < 0 && r != -EINTR)
			return done ? done : r;
	}
	if (ctx->queued) {
		/* callbacks may have queued more */
		ctx->flush_in_wait = true;
		caio_flush(ctx);
		ctx->flush_in_wait = false;
	}
	return done;
}

/* ---- cancel ---- */

static bool is_our_request(const caio_ctx *ctx, const caio_req *req)
{
	return req >= ctx->slots && req < ctx->slots + ctx->max_requests &&
	       ((const char *)req - (const char *)ctx->slots) % sizeof(*req) == 0;
}

static void unqueue(caio_ctx *ctx, caio_req *req)
{
	for (uint32_t i = 0; i < ctx->queued; i++) {
		if (ctx->queue[i] != req)
			continue;
		memmove(ctx->queue + i, ctx->queue + i + 1,
			(ctx->queued - i - 1) * sizeof(*ctx->queue));
		ctx->queued--;
		return;
	}
}

int caio_cancel(caio_ctx *ctx, caio_req *req)
{
	if (caio__forked(ctx))
		return -EBADFD;
	if (!req || !is_our_request(ctx, req))
		return -ENOENT;
	switch (req->state) {
	case REQ_QUEUED:
		unqueue(ctx, req);
		caio__finish(ctx, req, -ECANCELED);
		return 0;
	case REQ_POOL:
		return caio__pool_cancel(ctx->pool, req);
	case REQ_KERNEL:
		if (req->cancel_requested)
			return -EINPROGRESS;
		return ctx->ops->cancel ? ctx->ops->cancel(ctx, req) : -EALREADY;
	default:
		return -ENOENT;
	}
}
