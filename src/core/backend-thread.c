/* backend-thread.c - a pthread pool running the plain syscalls: the thread backend and every backend's fallback. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"

#define POOL_THREADS_DEFAULT	8
/* A batch's buffered reads are spread over the workers from this many bytes
 * on, 16 reads of 4 KiB: below it the caller is through its share before a
 * worker could help (at 32 KiB queue depth 8 gained 30% for twice the CPU;
 * at 8 KiB queue depth 2 lost a quarter). */
#define SPREAD_MIN_BYTES	(64 * 1024)
/* How long a worker that ran spread reads looks for more before it sleeps:
 * about twice what waking a sleeping worker takes here. */
#define LINGER_NS		50000
/* An inline read that took longer than this may have waited for a device
 * (thread_read_inline): 4 KiB from the page cache takes about 1 us here,
 * from a fast NVMe drive 10 or more.  A large read from the page cache takes
 * longer too, and only pays one fcntl again the next time. */
#define STALE_READ_NS		5000
/* Spread reads from this size on go to the spread readers (struct
 * spread_reader): below it a copy is too short for where its buffer's
 * cache lines lie to matter. */
#define READER_MIN_BYTES	(128 * 1024)
/* Buffers whose home spread_reads remembers (buffer_home). */
#define BUFFER_HOMES		256
/* At most this many spread reads are taken by one worker at once. */
#define SPREAD_RUN_MAX		64

/* req->nowait_first: how a read is tried before a worker blocks on it
 * (spread_reads, thread_read_inline) */
enum {
	SPREAD_NOWAIT = 1,	/* from the page cache, RWF_NOWAIT */
	SPREAD_BLOCKING,	/* a file that refuses RWF_NOWAIT: by workers, blocking */
	SPREAD_MEMORY,		/* a tmpfs file, which refuses it: plain, it copies memory */
};
/* A blocking spread read that took longer than this plus a nanosecond per
 * 2 bytes (memory copies here run at 5 to 20 bytes a nanosecond) waited
 * for something: the rest of its worker's run goes to other workers. */
#define BLOCKING_READ_NS	5000

/*
 * Buffered writes to one file run one after another on the worker that
 * took the first of them from todo, as in io_uring's io-wq: every Linux
 * file system holds the inode lock across a buffered write, so a second
 * worker on the same file only waits for it, or spins on it (1 MiB writes
 * at queue depth 8 on ext4: 13.0k MiB/s with 8 workers and with 2, 14.3k
 * with 1).  The others wait in that worker's serial_writes entry, one per
 * worker and one for the context's thread (caio__pool_help) at most.  A file is known by its write_key, from
 * st_dev and st_ino: two files that share one only lose some speed.
 */
struct serial_writes {
	uint64_t key;		/* 0: entry free */
	caio_req *head, *tail;
};

/*
 * A large page-cached read is a copy into the application's buffer, and it
 * runs faster on the CPU that wrote that buffer last, whose cache holds its
 * lines: spread_reads gives each buffer a home, the context's thread or one
 * spread reader (a thread per other CPU that only copies from the page
 * cache), the first time it sees it, and sends its reads there from then on.
 * Handed to whichever worker was woken, 1 MiB reads at queue depth 8 moved
 * between CPUs and ran 5-15% slower (caio-bench, 256 KiB reads: 7%).
 * A read the page cache cannot satisfy whole goes on to the workers.
 */
struct spread_reader {
	struct caio_pool *pool;
	pthread_t thread;
	pthread_cond_t wake;
	caio_req *head, *tail;	/* under the pool's lock */
	bool sleeping;
};

struct buffer_home {
	uintptr_t buf;
	unsigned home;		/* 0: the context's thread, else reader home - 1 */
};

/*
 * Workers take requests from todo and put results on done, both under one
 * mutex.  Only the context's thread touches req->state and the context;
 * workers signal the eventfd when done goes from empty to non-empty, and
 * the reaper drains the eventfd before it takes done (or, with
 * CAIO_CTX_LAZY_EVENTFD, when it found done empty, and then looks again),
 * so no wakeup is lost.
 */
struct caio_pool {
	caio_ctx *ctx;
	pthread_mutex_t lock;
	pthread_cond_t work;
	pthread_cond_t settled;	/* caio__pool_new waits on it for the workers */
	caio_req *todo_head, *todo_tail;
	caio_req *done_head, *done_tail;
	unsigned idle;
	unsigned running;	/* taken by a worker, not yet on done */
	/* workers in a run of page-cache reads, which they are through with in
	 * microseconds and then look for more (pool_enqueue wakes none for them) */
	unsigned spreading;
	bool lazy;		/* context's thread only: on todo, no worker woken */
	bool lingering;		/* a worker polls for work before it sleeps (linger) */
	bool stop;		/* written atomically: linger reads it unlocked */
	bool starting;		/* caio__pool_new waits for every worker to sleep */
	unsigned enqueued;	/* bumped atomically whenever todo gains requests */
	unsigned spread_ways;	/* this thread and a worker per other CPU (spread_reads) */
	unsigned nthreads;
	struct spread_reader *readers;	/* started on the first large spread read */
	unsigned nreaders;
	bool readers_tried;		/* context's thread only, as are homes */
	unsigned next_home;
	struct buffer_home homes[BUFFER_HOMES];
	struct serial_writes *serial;	/* nthreads + 1 entries */
	pthread_t threads[];
};

/* Take the first request off the list from *head to *tail; NULL if empty. */
static caio_req *list_pop(caio_req **head, caio_req **tail)
{
	caio_req *req = *head;

	if (req && !(*head = req->next))
		*tail = NULL;
	return req;
}

static caio_req *pop_todo(struct caio_pool *pool)
{
	return list_pop(&pool->todo_head, &pool->todo_tail);
}

/* Append req to the list from *head to *tail. */
static void list_append(caio_req **head, caio_req **tail, caio_req *req)
{
	req->next = NULL;
	if (*tail)
		(*tail)->next = req;
	else
		*head = req;
	*tail = req;
}

/* Take req out of the list from *head to *tail; false if it is not there. */
static bool list_remove(caio_req **head, caio_req **tail, caio_req *req)
{
	caio_req *prev = NULL;

	for (caio_req *r = *head; r; prev = r, r = r->next) {
		if (r != req)
			continue;
		if (prev)
			prev->next = r->next;
		else
			*head = r->next;
		if (*tail == r)
			*tail = prev;
		return true;
	}
	return false;
}

static bool push_done(struct caio_pool *pool, caio_req *req, int64_t res)
{
	bool was_empty = pool->done_head == NULL;

	req->res = res;
	list_append(&pool->done_head, &pool->done_tail, req);
	return was_empty;
}

/* A request taken from todo and not run goes back to its head, in front of
 * those queued after it; the lock is held. */
static void put_back(struct caio_pool *pool, caio_req *req)
{
	pool->running--;
	req->next = pool->todo_head;
	pool->todo_head = req;
	if (!pool->todo_tail)
		pool->todo_tail = req;
	__atomic_store_n(&pool->enqueued, pool->enqueued + 1, __ATOMIC_RELAXED);
}

/* A read's iovec and length, or 0 when req is no read or too long for one call. */
static size_t read_iov(const caio_req *req, struct iovec *one,
		       const struct iovec **iov, int *cnt)
{
	size_t want = 0;

	if (req->op == CAIO_OP_READ) {
		one->iov_base = req->u.rw.buf;
		one->iov_len = req->u.rw.len > CAIO_MAX_RW_COUNT ?
			       CAIO_MAX_RW_COUNT : req->u.rw.len;
		*iov = one;
		*cnt = 1;
		want = one->iov_len;
	} else if (req->op == CAIO_OP_READV) {
		*iov = req->u.vec.iov;
		*cnt = req->u.vec.cnt;
		for (int i = 0; i < *cnt; i++)
			want += (*iov)[i].iov_len;
	}
	return want > CAIO_MAX_RW_COUNT ? 0 : want;
}

/* The whole read from the page cache, without waiting; else -EAGAIN, or
 * -EOPNOTSUPP from a file that refuses RWF_NOWAIT (tmpfs, FUSE...).  A
 * tmpfs file's read (SPREAD_MEMORY) goes without the flag. */
static int64_t read_cached(const caio_req *req)
{
	const struct iovec *iov;
	struct iovec one;
	int cnt;
	size_t want = read_iov(req, &one, &iov, &cnt);
	ssize_t res;

	if (!want)
		return -EAGAIN;
	res = preadv2(req->fd, iov, cnt, req->offset,
		      req->nowait_first == SPREAD_MEMORY ? 0 : RWF_NOWAIT);
	if (res < 0 && errno == EOPNOTSUPP)
		return -EOPNOTSUPP;
	return res >= 0 && (size_t)res == want ? res : -EAGAIN;
}

/* The F_GETFL flags of the descriptor last looked at by buffered_read. */
struct fd_flags {
	int fd;
	int flags;
};

/* The length of a read of a file opened without O_DIRECT, which the page
 * cache may hold; 0 for anything else.  seen saves the fcntl for the reads
 * of one batch that share a descriptor. */
static size_t buffered_read(const caio_req *req, struct fd_flags *seen)
{
	const struct iovec *iov;
	struct iovec one;
	int cnt, flags;
	size_t want = read_iov(req, &one, &iov, &cnt);

	if (!want)
		return 0;
	if (seen->fd != req->fd) {
		seen->fd = req->fd;
		seen->flags = fcntl(req->fd, F_GETFL);
	}
	flags = seen->flags;
	return flags >= 0 && !(flags & O_DIRECT) ? want : 0;
}

/* The write_key of the descriptor last looked at by write_key. */
struct fd_key {
	int fd;
	uint64_t key;
};

/* For a write through the page cache of a regular file, its file's key
 * (see struct serial_writes), else 0; seen saves the fstat for the writes
 * of one enqueue that share a descriptor.  A block device takes no inode
 * lock for a buffered write.  Called on the context's thread. */
static uint64_t write_key(caio_ctx *ctx, const caio_req *req, struct fd_key *seen)
{
	struct stat st;

	if (req->op != CAIO_OP_WRITE && req->op != CAIO_OP_WRITEV)
		return 0;
	if (seen->fd != req->fd) {
		seen->fd = req->fd;
		seen->key = 0;
		if (caio__fd_buffered(ctx, req->fd) && fstat(req->fd, &st) == 0 &&
		    S_ISREG(st.st_mode))
			seen->key = ((uint64_t)st.st_dev << 32 ^ st.st_ino) ?: 1;
	}
	return seen->key;
}

/*
 * A worker takes a run of spread reads (spread_reads) at once and hands
 * their results back under one lock with one eventfd signal: per read, a
 * lock round trip and a completion hand-off cost a third of what copying
 * 4 KiB from the page cache does.  It takes half of those waiting, so that
 * the caller, through with its own share, still finds some to take instead
 * of sleeping (caio__pool_help).  Returns how many it took into run[];
 * called and returns with the lock held.
 */
static unsigned take_spread_run(struct caio_pool *pool, caio_req **run)
{
	unsigned waiting = 0, n = 0;

	for (caio_req *req = pool->todo_head; req && req->nowait_first &&
	     waiting < 2 * SPREAD_RUN_MAX; req = req->next)
		waiting++;
	while (n < (waiting + 1) / 2)
		run[n++] = pop_todo(pool);
	return n;
}

/* A worker counted in spreading is about to do something that may wait:
 * from now on spread reads enqueued wake another instead of waiting for it. */
static void stop_spreading(struct caio_pool *pool, bool *spreading)
{
	pthread_mutex_lock(&pool->lock);
	pool->spreading--;
	*spreading = false;
	if (pool->todo_head && pool->idle)
		pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/*
 * Run reads taken by take_spread_run from the page cache.  The first one
 * that must wait for the device ends the run: the reads after it go back
 * to todo for another worker, woken first, as a full hand-off would have
 * had them run alongside; this worker then waits for that one read.  A
 * file that refuses RWF_NOWAIT is read blocking, and a read that took long
 * enough to have waited (BLOCKING_READ_NS) ends the run the same way.
 * *spreading: the worker is counted in pool->spreading, until the first
 * read that may wait.  Returns how many of run[] have a result in res[].
 */
static unsigned run_spread_reads(struct caio_pool *pool, caio_req **run,
				 int64_t *res, unsigned n, bool *spreading)
{
	for (unsigned i = 0; i < n; i++) {
		bool waited;

		if (run[i]->nowait_first == SPREAD_BLOCKING) {
			int64_t start;

			if (*spreading)
				stop_spreading(pool, spreading);
			start = caio__now_ns();

			res[i] = caio__execute(run[i]);
			waited = caio__now_ns() - start >
				 BLOCKING_READ_NS + (res[i] > 0 ? res[i] / 2 : 0);
		} else {
			res[i] = read_cached(run[i]);
			waited = res[i] < 0;
		}
		if (!waited)
			continue;
		pthread_mutex_lock(&pool->lock);
		if (*spreading) {
			pool->spreading--;
			*spreading = false;
		}
		for (unsigned j = n; j-- > i + 1; )
			put_back(pool, run[j]);
		if (pool->todo_head && pool->idle)
			pthread_cond_signal(&pool->work);
		pthread_mutex_unlock(&pool->lock);
		if (run[i]->nowait_first != SPREAD_BLOCKING)
			res[i] = caio__execute(run[i]);
		return i + 1;
	}
	return n;
}

/* Workers lingering in the whole process: at most one per CPU besides the
 * caller's, so that they never take a CPU from the threads they serve. */
static unsigned lingering_workers;

void caio__pool_forked(void)
{
	__atomic_store_n(&lingering_workers, 0, __ATOMIC_RELAXED);
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/*
 * After spread reads, one worker of the pool looks for the next batch's
 * share for LINGER_NS before it sleeps: under a deep queue of cached reads
 * that share comes every few tens of microseconds, and pool_enqueue() wakes
 * nobody for it, when waking a worker costs about as much as the reads
 * (queue depth 32: 0.87M reads a second without it, 1.5M with it).
 * Called and returns with the lock held.
 */
static void linger(struct caio_pool *pool)
{
	unsigned seen = pool->enqueued;
	int64_t until;

	if (pool->lingering)
		return;
	if (__atomic_fetch_add(&lingering_workers, 1, __ATOMIC_RELAXED) >=
	    pool->spread_ways - 1) {
		__atomic_fetch_sub(&lingering_workers, 1, __ATOMIC_RELAXED);
		return;
	}
	pool->lingering = true;
	pthread_mutex_unlock(&pool->lock);
	until = caio__now_ns() + LINGER_NS;
	for (unsigned i = 1; __atomic_load_n(&pool->enqueued, __ATOMIC_RELAXED) == seen &&
			     !__atomic_load_n(&pool->stop, __ATOMIC_RELAXED); i++) {
		cpu_relax();
		if (i % 64 == 0 && caio__now_ns() > until)
			break;
	}
	pthread_mutex_lock(&pool->lock);
	pool->lingering = false;
	__atomic_fetch_sub(&lingering_workers, 1, __ATOMIC_RELAXED);
}

static struct serial_writes *serial_find(struct caio_pool *pool, uint64_t key)
{
	for (unsigned i = 0; i <= pool->nthreads; i++)
		if (pool->serial[i].key == key)
			return &pool->serial[i];
	return NULL;
}

/*
 * Run req, a buffered write taken from todo, then every write to its file
 * queued behind it meanwhile; or, when another worker is at that file
 * already, leave req in its queue.  Called and returns with the lock held.
 */
static void run_serial_writes(struct caio_pool *pool, caio_req *req)
{
	struct serial_writes *sw = serial_find(pool, req->write_key);

	if (sw) {
		list_append(&sw->head, &sw->tail, req);
		return;
	}
	sw = serial_find(pool, 0);	/* one is free: this worker holds none */
	sw->key = req->write_key;
	while (req) {
		int64_t res;

		pool->running++;
		pthread_mutex_unlock(&pool->lock);
		res = caio__execute(req);
		pthread_mutex_lock(&pool->lock);
		pool->running--;
		if (push_done(pool, req, res))
			caio__signal(pool->ctx);
		req = list_pop(&sw->head, &sw->tail);
	}
	sw->key = 0;
}

static void *pool_worker(void *arg)
{
	struct caio_pool *pool = arg;
	caio_req *run[SPREAD_RUN_MAX];
	int64_t res[SPREAD_RUN_MAX];
	bool spread = false;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		bool signal = false, spreading;
		unsigned n;

		if (spread && !pool->todo_head && !pool->stop) {
			linger(pool);
			spread = false;
		}
		while (!pool->todo_head && !pool->stop) {
			pool->idle++;
			if (pool->starting)
				pthread_cond_signal(&pool->settled);
			pthread_cond_wait(&pool->work, &pool->lock);
			pool->idle--;
		}
		if (!pool->todo_head)
			break;
		spread = pool->todo_head->nowait_first;
		n = spread ? take_spread_run(pool, run) : 0;
		spreading = n && run[0]->nowait_first != SPREAD_BLOCKING;
		pool->spreading += spreading;
		if (!n) {
			run[0] = pop_todo(pool);
			if (run[0]->write_key) {
				run_serial_writes(pool, run[0]);
				continue;
			}
			n = 1;
		}
		pool->running += n;
		pthread_mutex_unlock(&pool->lock);

		if (spread)
			n = run_spread_reads(pool, run, res, n, &spreading);
		else
			res[0] = caio__execute(run[0]);

		pthread_mutex_lock(&pool->lock);
		pool->running -= n;
		pool->spreading -= spreading;
		for (unsigned i = 0; i < n; i++)
			signal |= push_done(pool, run[i], res[i]);
		if (signal)
			caio__signal(pool->ctx);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* A spread reader copies its reads from the page cache as they come and
 * hands each back at once; one that would wait goes on to the workers. */
static void *reader_main(void *arg)
{
	struct spread_reader *r = arg;
	struct caio_pool *pool = r->pool;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		caio_req *list;

		while (!r->head && !pool->stop) {
			r->sleeping = true;
			pthread_cond_wait(&r->wake, &pool->lock);
			r->sleeping = false;
		}
		if (!r->head)
			break;
		list = r->head;
		r->head = r->tail = NULL;
		pthread_mutex_unlock(&pool->lock);
		while (list) {
			caio_req *req = list;
			int64_t res = read_cached(req);

			list = req->next;
			pthread_mutex_lock(&pool->lock);
			if (res < 0) {
				req->nowait_first = 0;	/* a plain, blocking read */
				list_append(&pool->todo_head, &pool->todo_tail, req);
				__atomic_store_n(&pool->enqueued, pool->enqueued + 1,
						 __ATOMIC_RELAXED);
				if (pool->idle)
					pthread_cond_signal(&pool->work);
			} else if (push_done(pool, req, res)) {
				caio__signal(pool->ctx);
			}
			pthread_mutex_unlock(&pool->lock);
		}
		pthread_mutex_lock(&pool->lock);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

/* One reader per CPU besides the context's thread's; as many as start. */
static void start_readers(struct caio_pool *pool)
{
	unsigned want = pool->spread_ways - 1;
	sigset_t all, old;

	pool->readers_tried = true;
	pool->readers = calloc(want, sizeof(*pool->readers));
	if (!pool->readers)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (pool->nreaders < want) {
		struct spread_reader *r = &pool->readers[pool->nreaders];

		r->pool = pool;
		pthread_cond_init(&r->wake, NULL);
		if (pthread_create(&r->thread, NULL, reader_main, r)) {
			pthread_cond_destroy(&r->wake);
			break;
		}
		pool->nreaders++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static void stop_readers(struct caio_pool *pool)
{
	for (unsigned i = 0; i < pool->nreaders; i++) {
		pthread_join(pool->readers[i].thread, NULL);
		pthread_cond_destroy(&pool->readers[i].wake);
	}
	free(pool->readers);
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

static unsigned usable_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	return CPU_COUNT(&set) ? CPU_COUNT(&set) : 1;
}

int caio__pool_new(caio_ctx *ctx, unsigned threads, struct caio_pool **poolp)
{
	struct caio_pool *pool;
	int err;

	pool = calloc(1, sizeof(*pool) + threads * sizeof(pthread_t));
	if (!pool)
		return -ENOMEM;
	pool->serial = calloc(threads + 1, sizeof(*pool->serial));
	if (!pool->serial) {
		free(pool);
		return -ENOMEM;
	}
	pool->ctx = ctx;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->work, NULL);
	pthread_cond_init(&pool->settled, NULL);
	pool->starting = true;
	err = start_workers(pool, threads);
	pool->spread_ways = usable_cpus();
	if (pool->spread_ways > pool->nthreads + 1)
		pool->spread_ways = pool->nthreads + 1;
	if (err && !pool->nthreads) {
		pthread_cond_destroy(&pool->settled);
		pthread_cond_destroy(&pool->work);
		pthread_mutex_destroy(&pool->lock);
		free(pool->serial);
		free(pool);
		return err;
	}
	/* Return with every worker asleep, through with its start-up: a
	 * thread still starting holds locks of the C library (and of a
	 * sanitizer's allocator), which a fork() right after would copy
	 * held into the child; and the first requests need not race it. */
	pthread_mutex_lock(&pool->lock);
	while (pool->idle < pool->nthreads)
		pthread_cond_wait(&pool->settled, &pool->lock);
	pool->starting = false;
	pthread_mutex_unlock(&pool->lock);
	*poolp = pool;
	return 0;
}

void caio__pool_free(struct caio_pool *pool, bool forked)
{
	/* A forked child has none of the workers, and the lock may have
	 * been held by one of them at the fork. */
	if (forked) {
		free(pool->readers);
		free(pool->serial);
		free(pool);
		return;
	}
	pthread_mutex_lock(&pool->lock);
	__atomic_store_n(&pool->stop, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&pool->work);
	for (unsigned i = 0; i < pool->nreaders; i++)
		pthread_cond_signal(&pool->readers[i].wake);
	pthread_mutex_unlock(&pool->lock);
	stop_readers(pool);
	for (unsigned i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	pthread_cond_destroy(&pool->settled);
	pthread_cond_destroy(&pool->work);
	pthread_mutex_destroy(&pool->lock);
	free(pool->serial);
	free(pool);
}

enum enqueue_wake {
	WAKE_EACH,	/* a worker per request, as many as are idle */
	WAKE_LAZY,	/* none: the caller comes back through caio__pool_help()
			 * or caio__pool_kick() (see thread_submit) */
	WAKE_SPREAD,	/* one per other CPU (per CPU for SPREAD_BLOCKING reads);
			 * reads that would block wake more */
};

static void pool_enqueue(struct caio_pool *pool, caio_req **reqs, unsigned nr,
			 enum enqueue_wake how)
{
	struct fd_key seen = { .fd = -1 };
	unsigned wake = 0, queued = 0, blocking = 0;
	uint64_t last_key = 0;

	for (unsigned i = 0; i < nr; i++) {
		reqs[i]->state = REQ_POOL;
		if (how != WAKE_SPREAD)
			reqs[i]->nowait_first = 0;	/* spread_reads set it */
		blocking += reqs[i]->nowait_first == SPREAD_BLOCKING;
		reqs[i]->write_key = how == WAKE_SPREAD ? 0 : write_key(pool->ctx, reqs[i], &seen);
	}
	pool->ctx->pool_inflight += nr;

	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < nr; i++) {
		caio_req *req = reqs[i];

		if (req->write_key) {
			struct serial_writes *sw = serial_find(pool, req->write_key);

			if (sw) {
				/* its worker runs it next: nobody to wake */
				list_append(&sw->head, &sw->tail, req);
				continue;
			}
			/* the worker that takes the first runs the others */
			queued += req->write_key != last_key;
			last_key = req->write_key;
		} else
			queued++;
		list_append(&pool->todo_head, &pool->todo_tail, req);
	}
	__atomic_store_n(&pool->enqueued, pool->enqueued + 1, __ATOMIC_RELAXED);
	if (how == WAKE_LAZY)
		pool->lazy = true;
	else {
		/* one more for a lazy request still waiting, if any; the
		 * caller reads none of the blocking spread reads itself */
		wake = how == WAKE_SPREAD && nr >= pool->spread_ways ?
		       pool->spread_ways - !blocking : queued;
		if (how == WAKE_SPREAD) {
			/* the lingering worker takes it, and reads that do
			 * not block can wait for one through with its run
			 * in microseconds, rather than share its CPU */
			unsigned coming = pool->lingering + (blocking ? 0 : pool->spreading);

			wake = wake > coming ? wake - coming : 0;
		}
		wake += pool->lazy;
		pool->lazy = false;
	}
	if (wake > pool->idle)
		wake = pool->idle;
	if (wake == pool->idle && wake > 1)
		pthread_cond_broadcast(&pool->work);
	else
		while (wake--)
			pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/* Wake a worker for a request enqueued lazily, if one may still wait. */
void caio__pool_kick(struct caio_pool *pool)
{
	if (!pool->lazy)
		return;
	pool->lazy = false;
	pthread_mutex_lock(&pool->lock);
	if (pool->todo_head && pool->idle)
		pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

bool caio__pool_lazy(const struct caio_pool *pool)
{
	return pool->lazy;
}

void caio__pool_submit(struct caio_pool *pool, caio_req **reqs, unsigned nr)
{
	pool_enqueue(pool, reqs, nr, WAKE_EACH);
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

#define BOUNDED_OPS	(CAIO_OP_BIT(CAIO_OP_READ) | CAIO_OP_BIT(CAIO_OP_WRITE) | \
			 CAIO_OP_BIT(CAIO_OP_READV) | CAIO_OP_BIT(CAIO_OP_WRITEV) | \
			 CAIO_OP_BIT(CAIO_OP_FSYNC) | CAIO_OP_BIT(CAIO_OP_FDSYNC) | \
			 CAIO_OP_BIT(CAIO_OP_FALLOCATE) | CAIO_OP_BIT(CAIO_OP_FTRUNCATE))

/*
 * Data operations on a regular file or block device end in bounded time and
 * cannot be interrupted by a signal half-way; on a pipe, socket or tty they
 * may wait forever, and an open may wait for a FIFO's other end.
 */
static bool ends_in_bounded_time(const caio_req *req)
{
	struct stat st;

	if (!(BOUNDED_OPS & CAIO_OP_BIT(req->op)) || fstat(req->fd, &st) < 0)
		return false;
	return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

/*
 * Run a request on the context's thread as a worker would run it: with
 * signals held back, so that a file on FUSE or NFS, whose waits a signal
 * interrupts, does not fail the request with EINTR because of the caller's
 * signal handlers.  The signal is delivered when the request is done.
 */
static int64_t execute_here(const caio_req *req)
{
	sigset_t all, old;
	int64_t res;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	res = caio__execute(req);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return res;
}

/* The context's thread is through with the file of the buffered write it
 * took (caio__pool_help): the writes to it that workers left in its entry
 * meanwhile go back to the front of todo, in their order.  Lock held. */
static void serial_hand_back(struct caio_pool *pool, struct serial_writes *sw)
{
	if (!sw)
		return;
	if (sw->head) {
		sw->tail->next = pool->todo_head;
		pool->todo_head = sw->head;
		if (!pool->todo_tail)
			pool->todo_tail = sw->tail;
		__atomic_store_n(&pool->enqueued, pool->enqueued + 1, __ATOMIC_RELAXED);
		pthread_cond_signal(&pool->work);
	}
	*sw = (struct serial_writes){ 0 };
}

/* A request the context's thread took from todo but will not run: put it
 * back where it was and make sure a worker comes. */
static void give_back(struct caio_pool *pool, caio_req *req, struct serial_writes *sw)
{
	pthread_mutex_lock(&pool->lock);
	serial_hand_back(pool, sw);
	put_back(pool, req);
	pthread_cond_signal(&pool->work);
	pthread_mutex_unlock(&pool->lock);
}

/* A request taken from todo ran on the context's thread: its result waits
 * on the context's done list. */
static void ran_here(struct caio_pool *pool, caio_req *req, int64_t res,
		     struct serial_writes *sw)
{
	pthread_mutex_lock(&pool->lock);
	serial_hand_back(pool, sw);
	pool->running--;
	pthread_mutex_unlock(&pool->lock);
	pool->ctx->pool_inflight--;
	caio__finish(pool->ctx, req, res);
}

/* A spread read no worker has taken yet, run here from the page cache:
 * false when there is none, or it must wait for the device (then it goes
 * back for a worker). */
static bool help_with_spread_read(struct caio_pool *pool)
{
	caio_req *req = NULL;
	int64_t res;

	pthread_mutex_lock(&pool->lock);
	if (pool->todo_head && pool->todo_head->nowait_first &&
	    pool->todo_head->nowait_first != SPREAD_BLOCKING) {
		req = pop_todo(pool);
		pool->running++;
	}
	pthread_mutex_unlock(&pool->lock);
	if (!req)
		return false;
	res = read_cached(req);
	if (res < 0) {
		if (res == -EOPNOTSUPP)
			caio__fd_note_refuses_nowait(pool->ctx, req->fd);
		give_back(pool, req, NULL);
		return false;
	}
	ran_here(pool, req, res, NULL);
	return true;
}

/*
 * The context's thread is about to sleep until a completion and no worker
 * has started on anything yet (at queue depth 1 the woken worker is still
 * on its way, 10-20 us on an idle CPU here): take the oldest waiting request
 * and run it on this thread instead of sleeping, as a worker would.
 * Spread reads waiting go first, all of them: copying them costs less than
 * the sleep.  Returns true when one or more ran; their completions are on
 * the context's done list.
 */
bool caio__pool_help(struct caio_pool *pool)
{
	struct serial_writes *sw = NULL;
	caio_req *req = NULL;

	if (help_with_spread_read(pool)) {
		while (help_with_spread_read(pool))
			;
		return true;
	}
	pthread_mutex_lock(&pool->lock);
	if (!pool->running && pool->todo_head) {
		req = pop_todo(pool);
		pool->running++;
		if (req->write_key) {
			/* hold its file as a worker would: none holds any now */
			sw = serial_find(pool, 0);
			sw->key = req->write_key;
		}
	}
	pthread_mutex_unlock(&pool->lock);
	if (!req) {
		caio__pool_kick(pool);
		return false;
	}
	pool->lazy = false;	/* the lone lazy request is this one */
	/* a buffered write to a regular file (write_key) is bounded */
	if (!req->write_key && !ends_in_bounded_time(req)) {
		give_back(pool, req, sw);
		return false;
	}
	ran_here(pool, req, execute_here(req), sw);
	return true;
}

/* Only a request no worker has started yet can be cancelled: one in todo,
 * in a spread reader's queue, or a write waiting for another to its file
 * (struct serial_writes). */
int caio__pool_cancel(struct caio_pool *pool, caio_req *req)
{
	bool found;

	pthread_mutex_lock(&pool->lock);
	found = list_remove(&pool->todo_head, &pool->todo_tail, req);
	for (unsigned i = 0; !found && i < pool->nreaders; i++)
		found = list_remove(&pool->readers[i].head, &pool->readers[i].tail, req);
	for (unsigned i = 0; !found && i <= pool->nthreads; i++)
		found = list_remove(&pool->serial[i].head, &pool->serial[i].tail, req);
	if (found && push_done(pool, req, -ECANCELED))
		caio__signal(pool->ctx);
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

/* How a buffered read of req's file is tried (its nowait_first), from what
 * caio__fd_nowait() knows of the file. */
static uint8_t read_mode(caio_ctx *ctx, const caio_req *req, struct caio_fd_verdict *seen)
{
	switch (caio__fd_nowait(ctx, req->fd, seen)) {
	case CAIO_NOWAIT_REFUSED:
		return SPREAD_BLOCKING;
	case CAIO_NOWAIT_IN_MEMORY:
		return SPREAD_MEMORY;
	default:
		return SPREAD_NOWAIT;
	}
}

/*
 * A read the page cache can satisfy costs less than a hand-off to a worker
 * (two context switches and a handful of futex calls): try it here without
 * blocking, as io_uring does before it punts to its workers.  Only a full
 * read counts; anything else goes to the pool.  O_DIRECT goes to the pool
 * too (RWF_NOWAIT still waits for the device), unless the caller is about
 * to sleep until a completion anyway (may_wait_for_device).  buffered: the
 * nowait_first spread_reads gave the read (0: not buffered), or -1 to look
 * here, which caio__fd_buffered() answers without a syscall for a
 * descriptor it saw buffered before; should that number now be an O_DIRECT
 * file, the read waits here for the device once, takes longer than
 * STALE_READ_NS, and the answer is forgotten.  A file noted to refuse
 * RWF_NOWAIT goes to the pool, unless it is in memory (tmpfs).
 */
static bool thread_read_inline(caio_ctx *ctx, caio_req *req, bool may_wait_for_device,
			       int buffered)
{
	int64_t res, start = 0;

	if (req->op != CAIO_OP_READ && req->op != CAIO_OP_READV)
		return false;
	if (buffered < 0)
		req->nowait_first = 0;	/* read_cached: RWF_NOWAIT */
	if (!may_wait_for_device) {
		if (buffered < 0) {
			struct caio_fd_verdict seen = { .fd = -1 };

			if (!caio__fd_buffered(ctx, req->fd))
				return false;
			req->nowait_first = read_mode(ctx, req, &seen);
			if (req->nowait_first == SPREAD_BLOCKING)
				return false;
			start = caio__now_ns();
		} else if (!buffered) {
			return false;
		} else if (buffered == SPREAD_NOWAIT && caio__fd_noted_refusing(ctx, req->fd)) {
			return false;	/* noted by an earlier read of this batch */
		}
	}
	res = read_cached(req);
	/* (a tmpfs read is verified by its fstat, and takes what it copies) */
	if (start && req->nowait_first != SPREAD_MEMORY && caio__now_ns() - start > STALE_READ_NS)
		caio__fd_forget(ctx, req->fd);
	if (res == -EOPNOTSUPP && (!may_wait_for_device || buffered > 0))
		caio__fd_note_refuses_nowait(ctx, req->fd);	/* known buffered */
	if (res < 0)
		return false;
	caio__finish(ctx, req, res);
	return true;
}

/* The home of req's buffer (struct buffer_home): 0 for this thread, else
 * a reader's index + 1.  A buffer not seen before, or whose entry another
 * took since, gets the next home in turn. */
static unsigned buffer_home(struct caio_pool *pool, const caio_req *req)
{
	uintptr_t buf = (uintptr_t)(req->op == CAIO_OP_READ ? req->u.rw.buf :
				    req->u.vec.iov[0].iov_base);
	struct buffer_home *h = &pool->homes[(buf >> 12) * 0x9E3779B97F4A7C15ull >> 56];

	if (h->buf != buf) {
		h->buf = buf;
		h->home = pool->next_home++ % (pool->nreaders + 1);
	}
	return h->home;
}

/* Queue req on its reader; the reader is woken by wake_readers(). */
static void give_to_reader(caio_ctx *ctx, struct spread_reader *r, caio_req *req)
{
	req->state = REQ_POOL;
	req->write_key = 0;
	ctx->pool_inflight++;
	pthread_mutex_lock(&ctx->pool->lock);
	list_append(&r->head, &r->tail, req);
	pthread_mutex_unlock(&ctx->pool->lock);
}

static void wake_readers(struct caio_pool *pool)
{
	pthread_mutex_lock(&pool->lock);
	for (unsigned i = 0; i < pool->nreaders; i++)
		if (pool->readers[i].sleeping && pool->readers[i].head)
			pthread_cond_signal(&pool->readers[i].wake);
	pthread_mutex_unlock(&pool->lock);
}

/*
 * Page-cached reads run inline use one CPU however many there are: of a
 * large batch's buffered reads keep one in spread_ways here and hand the
 * others to the workers first, so that they run alongside this thread (a
 * worker per other CPU; one whose read must wait for the device wakes
 * another).  A small batch stays here: waking a worker would cost more.
 * Reads of a file that refuses RWF_NOWAIT (tmpfs, FUSE: noted when an
 * inline read got EOPNOTSUPP) cannot be tried here without blocking: two
 * or more of them all go to the workers, which take them in runs as they
 * take the others (SPREAD_BLOCKING), instead of one hand-off each.
 * Large reads go by their buffer's home instead (struct spread_reader).
 * The kept requests stay at the front of reqs, buffered reads among them
 * marked with nowait_first; returns how many they are.
 */
static unsigned spread_reads(caio_ctx *ctx, caio_req **reqs, unsigned nr)
{
	unsigned ways = ctx->pool->spread_ways, reads = 0, blocking = 0, kept = 0, given = 0;
	struct caio_fd_verdict verdict = { .fd = -1 };
	caio_req *head = NULL, **tail = &head;
	struct fd_flags seen = { .fd = -1 };
	size_t bytes = 0;
	bool spread, large;

	for (unsigned i = 0; i < nr; i++) {
		size_t len = buffered_read(reqs[i], &seen);
		uint8_t how = len ? read_mode(ctx, reqs[i], &verdict) : 0;

		reqs[i]->nowait_first = how;
		blocking += how == SPREAD_BLOCKING;
		reads += len && how != SPREAD_BLOCKING;
		bytes += how != SPREAD_BLOCKING ? len : 0;
	}
	spread = reads >= 2 && bytes >= SPREAD_MIN_BYTES;
	if (!spread && blocking < 2) {
		/* a lone blocking read is a plain pool request */
		for (unsigned i = 0; blocking && i < nr; i++)
			if (reqs[i]->nowait_first == SPREAD_BLOCKING)
				reqs[i]->nowait_first = 0;
		return nr;
	}
	large = spread && bytes / reads >= READER_MIN_BYTES;
	if (large && !ctx->pool->readers_tried)
		start_readers(ctx->pool);
	large = large && ctx->pool->nreaders;
	reads = 0;
	for (unsigned i = 0; i < nr; i++) {
		caio_req *req = reqs[i];
		unsigned home;

		if (large && req->nowait_first && req->nowait_first != SPREAD_BLOCKING &&
		    (home = buffer_home(ctx->pool, req)) != 0) {
			give_to_reader(ctx, &ctx->pool->readers[home - 1], req);
			continue;
		}
		if (req->nowait_first != SPREAD_BLOCKING &&
		    (!req->nowait_first || !spread || large || reads++ % ways == 0)) {
			reqs[kept++] = req;
			continue;
		}
		*tail = req;
		tail = &req->next;
		given++;
	}
	*tail = NULL;
	if (large)
		wake_readers(ctx->pool);
	/* every slot from kept on is free now: line the given ones up there */
	for (unsigned i = kept; head; head = head->next)
		reqs[i++] = head;
	if (given)
		pool_enqueue(ctx->pool, reqs + kept, given, WAKE_SPREAD);
	return kept;
}

/*
 * When the caller is about to sleep until a completion with no deadline
 * and no worker is busy (queue depth 1), a hand-off only adds two wake-ups
 * to the request's latency (about 20 us here, a third of a 4 KiB O_DIRECT
 * read): run one request on the caller's thread, like the sync backend, and
 * hand the others, if any, to the pool first so that they overlap with it.
 */
static int thread_submit(caio_ctx *ctx, caio_req **reqs, unsigned nr,
			 unsigned wait_nr, const struct timespec *ts)
{
	bool caller_idle = wait_nr && !ts && !ctx->pool_inflight;
	bool spread = nr > 1 && ctx->pool->spread_ways > 1;
	unsigned here = spread ? spread_reads(ctx, reqs, nr) : nr;
	caio_req *on_caller = NULL;
	unsigned to_pool = 0, done_here = 0;

	for (unsigned i = 0; i < here; i++) {
		bool may_block = caller_idle && !done_here;

		if (thread_read_inline(ctx, reqs[i], may_block,
				       spread ? reqs[i]->nowait_first : -1))
			done_here++;
		else if (may_block && ends_in_bounded_time(reqs[i])) {
			on_caller = reqs[i];
			done_here++;
		} else
			reqs[to_pool++] = reqs[i];
	}
	/* A lone request from the flush caio_wait() makes for what its
	 * callbacks queued: the caller most likely waits again next and runs
	 * it itself (caio__pool_help), so waking a worker would only cost a
	 * futex wake and a worker that finds nothing to do.  Any other way
	 * back into the library kicks it (caio__pool_kick); a caller that
	 * polls the eventfd instead finds it readable and comes back through
	 * caio_reap(). */
	if (to_pool) {
		bool lazy = to_pool == 1 && ctx->flush_in_wait && !ctx->pool_inflight;

		pool_enqueue(ctx->pool, reqs, to_pool, lazy ? WAKE_LAZY : WAKE_EACH);
		if (lazy && ctx->efd_watched)
			caio__signal(ctx);
	}
	if (on_caller)
		caio__finish(ctx, on_caller, execute_here(on_caller));
	if (nr)
		caio__count_submit(ctx, nr);
	if (wait_nr && !done_here) {
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
