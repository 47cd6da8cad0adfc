/* backend-thread.c - a pthread pool running the plain syscalls: the thread backend and every backend's fallback. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define POOL_THREADS_DEFAULT	8

/*
 * Workers take requests from todo and put results on done, both under one
 * mutex.  Only the context's thread touches req->state and the context;
 * workers signal the eventfd when done goes from empty to non-empty, and
 * the reaper drains the eventfd before it takes done, so no wakeup is lost.
 */
struct caio_pool {
	caio_ctx *ctx;
	pthread_mutex_t lock;
	pthread_cond_t work;
	caio_req *todo_head, *todo_tail;
	caio_req *done_head, *done_tail;
	unsigned idle;
	bool stop;
	unsigned nthreads;
	pthread_t threads[];
};

static caio_req *pop_todo(struct caio_pool *pool)
{
	caio_req *req = pool->todo_head;

	pool->todo_head = req->next;
	if (!pool->todo_head)
		pool->todo_tail = NULL;
	return req;
}

static bool push_done(struct caio_pool *pool, caio_req *req, int64_t res)
{
	bool was_empty = pool->done_head == NULL;

	req->res = res;
	req->next = NULL;
	if (pool->done_tail)
		pool->done_tail->next = req;
	else
		pool->done_head = req;
	pool->done_tail = req;
	return was_empty;
}

static void *pool_worker(void *arg)
{
	struct caio_pool *pool = arg;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		caio_req *req;
		int64_t res;

		while (!pool->todo_head && !pool->stop) {
			pool->idle++;
			pthread_cond_wait(&pool->work, &pool->lock);
			pool->idle--;
		}
		if (!pool->todo_head)
			break;
		req = pop_todo(pool);
		pthread_mutex_unlock(&pool->lock);

		res = caio__execute(req);

		pthread_mutex_lock(&pool->lock);
		if (push_done(pool, req, res))
			caio__signal(pool->ctx);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* Workers never take signals: they belong to the application's threads. */
static int start_workers(struct caio_pool *pool, unsigned threads)
{
	sigset_t all, old;
	int err = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool->nthreads < threads) {
		err = -pthread_create(&pool->threads[pool->nthreads], NULL,
				      pool_worker, pool);
		if (err)
			break;
		pool->nthreads++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

int caio__pool_new(caio_ctx *ctx, unsigned threads, struct caio_pool **poolp)
{
	struct caio_pool *pool;
	int err;

	pool = calloc(1, sizeof(*pool) + threads * sizeof(pthread_t));
	if (!pool)
		return -ENOMEM;
	pool->ctx = ctx;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	err = start_workers(pool, threads);
	if (err && !pool->nthreads) {
		pthread_cond_destroy(&pool->work);
		pthread_mutex_destroy(&pool->lock);
		free(pool);
		return err;
	}
	*poolp = pool;
	return 0;
}

void caio__pool_free(struct caio_pool *pool, bool forked)
{
	/* A forked child has none of the workers, and the lock may have
	 * been held by one of them at the fork. */
	if (forked) {
		free(pool);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	pool->stop = true;
	pthread_cond_broadcast(&pool->work);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool);
}

void caio__pool_submit(struct caio_pool *pool, caio_req **reqs, unsigned nr)
{
	unsigned wake;

	for (unsigned i = 0; i < nr; i++)
		reqs[i]->state = REQ_POOL;
	pool->ctx->pool_inflight += nr;

	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < nr; i++) {
		reqs[i]->next = NULL;
		if (pool->todo_tail)
			pool->todo_tail->next = reqs[i];
		else
			pool->todo_head = reqs[i];
		pool->todo_tail = reqs[i];
	}
	wake = nr < pool->idle ? nr : pool->idle;
	if (wake == pool->idle && wake > 1)
		pthread_cond_broadcast(&pool->work);
	else
		while (wake--)
			pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

int caio__pool_reap(struct caio_pool *pool, unsigned max)
{
	caio_ctx *ctx = pool->ctx;
	caio_req *list, *last = NULL;
	unsigned n = 0;

	pthread_mutex_lock(&pool->lock);
	list = pool->done_head;
	for (caio_req *req = list; req && n < max; req = req->next) {
		last = req;
		n++;
	}
	if (last) {
		pool->done_head = last->next;
		if (!pool->done_head)
			pool->done_tail = NULL;
		else
			caio__signal(ctx);	/* left some behind: stay readable */
		last->next = NULL;
	}
	pthread_mutex_unlock(&pool->lock);

	while (list && n) {
		caio_req *req = list;

		list = req->next;
		ctx->pool_inflight--;
		caio__complete(ctx, req, req->res);
		if (req == last)
			break;
	}
	return n;
}

/* Only a request no worker has taken yet can be cancelled. */
int caio__pool_cancel(struct caio_pool *pool, caio_req *req)
{
	caio_req *prev = NULL;
	bool found = false;

	pthread_mutex_lock(&pool->lock);
	for (caio_req *r = pool->todo_head; r; prev = r, r = r->next) {
		if (r != req)
			continue;
		if (prev)
			prev->next = r->next;
		else
			pool->todo_head = r->next;
		if (pool->todo_tail == r)
			pool->todo_tail = prev;
		found = true;
		if (push_done(pool, req, -ECANCELED))
			caio__signal(pool->ctx);
		break;
	}
	pthread_mutex_unlock(&pool->lock);
	return found ? 0 : -EALREADY;
}

/* ---- the thread backend: the pool itself ---- */

static int thread_init(caio_ctx *ctx, char *reason, size_t len)
{
	unsigned threads = ctx->threads ? ctx->threads : POOL_THREADS_DEFAULT;
	int err = caio__pool_new(ctx, threads, &ctx->pool);

	if (err)
		snprintf(reason, len, "pthread_create: %s", caio__errno_name(err));
	ctx->native_ops = CAIO_ALL_OPS;
	return err;
}

static void thread_exit(caio_ctx *ctx)
{
	/* the core frees ctx->pool */
}

/*
 * A read the page cache can satisfy costs less than a hand-off to a worker
 * (two context switches and a handful of futex calls): try it here without
 * blocking, as io_uring does before it punts to its workers.  Only a full
 * read counts; anything else, and O_DIRECT (which would still wait for the
 * device), goes to the pool.
 */
static bool thread_read_inline(caio_ctx *ctx, caio_req *req)
{
	struct iovec one, *iov = &one;
	size_t want = 0;
	int cnt = 1, flags;
	ssize_t res;

	if (req->op == CAIO_OP_READ) {
		one.iov_base = req->u.rw.buf;
		one.iov_len = req->u.rw.len > CAIO_MAX_RW_COUNT ?
			      CAIO_MAX_RW_COUNT : req->u.rw.len;
		want = one.iov_len;
	} else if (req->op == CAIO_OP_READV) {
		iov = (struct iovec *)req->u.vec.iov;
		cnt = req->u.vec.cnt;
		for (int i = 0; i < cnt; i++)
			want += iov[i].iov_len;
	}
	if (!want || want > CAIO_MAX_RW_COUNT)
		return false;
	flags = fcntl(req->fd, F_GETFL);
	if (flags < 0 || (flags & O_DIRECT))
		return false;
	res = preadv2(req->fd, iov, cnt, req->offset, RWF_NOWAIT);
	if (res < 0 || (size_t)res != want)
		return false;
	caio__finish(ctx, req, res);
	return true;
}

static int thread_submit(caio_ctx *ctx, caio_req **reqs, unsigned nr,
			 unsigned wait_nr, const struct timespec *ts)
{
	unsigned to_pool = 0;

	for (unsigned i = 0; i < nr; i++)
		if (!thread_read_inline(ctx, reqs[i]))
			reqs[to_pool++] = reqs[i];
	if (to_pool)
		caio__pool_submit(ctx->pool, reqs, to_pool);
	if (nr)
		caio__count_submit(ctx, nr);
	if (wait_nr && to_pool == nr) {
		struct pollfd pfd = { .fd = ctx->efd, .events = POLLIN };

		ppoll(&pfd, 1, ts, NULL);
	}
	return nr;
}

static int thread_reap(caio_ctx *ctx, unsigned max)
{
	return caio__pool_reap(ctx->pool, max);
}

const struct caio_backend_ops caio__backend_thread = {
	.name = "thread",
	.init = thread_init,
	.exit = thread_exit,
	.submit = thread_submit,
	.reap = thread_reap,
	.cancel = NULL,
};
