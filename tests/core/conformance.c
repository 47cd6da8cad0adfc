/* conformance.c - the libcaio behaviour suite, run once per backend: conformance BACKEND [CASE]. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "caio.h"

#define KIB		1024
#define MIB		(1024 * 1024)
#define MS_NS		1000000LL
/* complete() returns this when no callback came: never a real result. */
#define NO_CALLBACK	(-1000000)

static enum caio_backend backend;
static const char *backend_name;

/* ---- callbacks and reaping ------------------------------------------------ */

/* What one request's callback saw. */
struct result {
	int calls;
	int op;
	int64_t res;
	pthread_t thread;
	bool inside_reap;	/* ran inside this thread's reap/wait/destroy */
};

/* Set while this thread is inside caio_reap/caio_wait/caio_ctx_destroy:
 * those are the only places a callback may run. */
static __thread bool reaping;
static int stray_callbacks;	/* ran anywhere else */
static int repeated_callbacks;	/* ran twice for one request */

static void record_cb(caio_req *req, int64_t res, void *data)
{
	struct result *r = data;

	if (!reaping)
		__atomic_add_fetch(&stray_callbacks, 1, __ATOMIC_RELAXED);
	if (r->calls)
		__atomic_add_fetch(&repeated_callbacks, 1, __ATOMIC_RELAXED);
	r->calls++;
	r->res = res;
	r->op = caio_req_op(req);
	r->thread = pthread_self();
	r->inside_reap = reaping;
}

static int reap(caio_ctx *ctx, unsigned max)
{
	int n;

	reaping = true;
	n = caio_reap(ctx, max);
	reaping = false;
	return n;
}

static int wait_ns(caio_ctx *ctx, unsigned min_nr, int64_t timeout_ns)
{
	int n;

	reaping = true;
	n = caio_wait(ctx, min_nr, timeout_ns);
	reaping = false;
	return n;
}

static void destroy(caio_ctx *ctx)
{
	if (!ctx)
		return;
	reaping = true;
	caio_ctx_destroy(ctx);
	reaping = false;
}

/* Wait until *calls reaches target; a lost completion fails after T_LOST_MS. */
static int wait_for(caio_ctx *ctx, const int *calls, int target)
{
	int64_t deadline = t_now_ms() + T_LOST_MS;
	int64_t left;
	int n;

	while (*calls < target) {
		left = deadline - t_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = wait_ns(ctx, 1, left * MS_NS);
		if (n < 0 && n != -EINTR)
			return n;
		if (n == 0 && *calls < target && caio_ctx_pending(ctx) == 0)
			return -ENODATA;
	}
	return 0;
}

/* Wait until nothing holds a slot: every callback ran. */
static int wait_idle(caio_ctx *ctx)
{
	int64_t deadline = t_now_ms() + T_LOST_MS;
	int64_t left;
	int n;

	while (caio_ctx_pending(ctx)) {
		left = deadline - t_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		n = wait_ns(ctx, caio_ctx_pending(ctx), left * MS_NS);
		if (n < 0 && n != -EINTR)
			return n;
	}
	return 0;
}

/* The result of one request, waiting for its callback. */
static int64_t complete(caio_ctx *ctx, struct result *r)
{
	int err = wait_for(ctx, &r->calls, 1);

	if (err < 0) {
		t_note("no callback came (caio_wait loop: %s, pending %u)",
		       t_errno_name(err), caio_ctx_pending(ctx));
		return NO_CALLBACK;
	}
	return r->res;
}

/* ---- contexts and files --------------------------------------------------- */

static int ctx_new_params(caio_ctx **ctxp, struct caio_params *p)
{
	char error[256] = "";
	int err;

	p->size = sizeof(*p);
	p->flags |= CAIO_CTX_QUIET;
	p->backend = backend_name;
	p->error = error;
	p->error_len = sizeof(error);
	*ctxp = NULL;
	err = caio_ctx_new(ctxp, p);
	if (err < 0)
		t_note("caio_ctx_new(%s) failed: %s", backend_name, error);
	p->error = NULL;
	return err;
}

static int ctx_new(caio_ctx **ctxp, unsigned max_requests, unsigned batch)
{
	struct caio_params p = {
		.max_requests = max_requests,
		.batch = batch,
	};

	return ctx_new_params(ctxp, &p);
}

static int open_tmp(const char *name, int flags)
{
	return open(t_path(name), flags | O_CREAT | O_CLOEXEC, 0644);
}

static int64_t file_size(int fd)
{
	struct stat st;

	return fstat(fd, &st) < 0 ? -errno : st.st_size;
}

static int get_stats(caio_ctx *ctx, struct caio_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->size = sizeof(*st);
	return caio_ctx_stats(ctx, st);
}

static bool kernel_backend(void)
{
	return backend == CAIO_BACKEND_URING || backend == CAIO_BACKEND_LINUX;
}

/* Does fd's file refuse RWF_NOWAIT (no FMODE_NOWAIT: tmpfs, FUSE, procfs)?
 * The linux backend then sends its reads and writes to the pool. */
static bool refuses_nowait(int fd)
{
	char c;
	struct iovec iov = { &c, 1 };

	return preadv2(fd, &iov, 1, 0, RWF_NOWAIT) < 0 && errno == EOPNOTSUPP;
}

/* Write len pattern bytes at off with plain pwrite: test setup. */
static int setup_file(int fd, size_t len, unsigned seed)
{
	char *buf = malloc(len);
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	t_pattern(buf, len, seed);
	n = pwrite(fd, buf, len, 0);
	free(buf);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* ---- a request that stays in flight until released ------------------------ */

/*
 * io_uring: a read of an empty pipe waits in the kernel (poll armed) and
 * IORING_OP_ASYNC_CANCEL can stop it.  Thread pool (thread backend, and
 * linux, which routes openat to the pool): opening a FIFO for reading
 * blocks the worker until a writer opens it.  sync: nothing can be in flight.
 */
struct stuck {
	struct result r;
	caio_req *req;
	int pipefd[2];
	int release_fd;
	bool released;
	char byte;
	char fifo[PATH_MAX];
};

static bool stuck_possible(void)
{
	return backend != CAIO_BACKEND_SYNC;
}

static void stuck_init(struct stuck *s)
{
	memset(s, 0, sizeof(*s));
	s->pipefd[0] = s->pipefd[1] = s->release_fd = -1;
}

static int stuck_submit(caio_ctx *ctx, struct stuck *s, const char *name)
{
	if (backend == CAIO_BACKEND_URING) {
		if (pipe2(s->pipefd, O_CLOEXEC) < 0)
			return -errno;
		return caio_read(ctx, s->pipefd[0], &s->byte, 1, 0, record_cb,
				 &s->r, &s->req);
	}
	snprintf(s->fifo, sizeof(s->fifo), "%s", t_path(name));
	if (mkfifo(s->fifo, 0600) < 0 && errno != EEXIST)
		return -errno;
	return caio_openat(ctx, AT_FDCWD, s->fifo, O_RDONLY | O_CLOEXEC, 0,
			   record_cb, &s->r, &s->req);
}

/* Let the request finish; harmless if it already did or never started. */
static void stuck_release(struct stuck *s)
{
	if (s->released)
		return;
	s->released = true;
	if (s->pipefd[1] >= 0) {
		if (write(s->pipefd[1], "x", 1) != 1)
			t_note("cannot write to the release pipe");
	} else if (s->fifo[0]) {
		/* O_RDWR on a FIFO never blocks and counts as a writer. */
		s->release_fd = open(s->fifo, O_RDWR | O_CLOEXEC);
	}
}

/* The result a stuck request has when it was not cancelled. */
static bool stuck_result_ok(const struct stuck *s, int64_t res)
{
	return s->pipefd[0] >= 0 ? res == 1 : res >= 0;
}

static void stuck_cleanup(struct stuck *s)
{
	if (s->pipefd[0] >= 0)
		close(s->pipefd[0]);
	if (s->pipefd[1] >= 0)
		close(s->pipefd[1]);
	if (s->release_fd >= 0)
		close(s->release_fd);
	if (s->fifo[0] && s->r.calls && s->r.res >= 0)
		close((int)s->r.res);
	s->pipefd[0] = s->pipefd[1] = s->release_fd = -1;
}

/* ---- cases ---------------------------------------------------------------- */

static void case_roundtrip(void)
{
	const size_t len = 64 * KIB;
	const int64_t far = MIB + 123;
	struct result w1 = { 0 }, w2 = { 0 }, r1 = { 0 }, r2 = { 0 }, hole = { 0 };
	struct caio_stats st;
	char *wbuf = malloc(len), *rbuf = malloc(len);
	caio_ctx *ctx = NULL;
	int fd = -1;

	CHECK_SYS(wbuf && rbuf, "malloc");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(caio_ctx_backend(ctx), backend, "caio_ctx_backend");
	CHECK(strcmp(caio_ctx_backend_name(ctx), caio_backend_name(backend)) == 0,
	      "caio_ctx_backend_name: expected %s, got %s",
	      caio_backend_name(backend), caio_ctx_backend_name(ctx));
	CHECK_EQ(caio_ctx_max_requests(ctx), CAIO_MAX_REQUESTS_DEFAULT,
		 "caio_ctx_max_requests with max_requests = 0");
	fd = open_tmp("roundtrip", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");

	t_pattern(wbuf, len, 1);
	CHECK_EQ(caio_write(ctx, fd, wbuf, len, 0, record_cb, &w1, NULL), 0,
		 "caio_write at 0");
	CHECK_EQ(caio_write(ctx, fd, wbuf, len, far, record_cb, &w2, NULL), 0,
		 "caio_write at %lld", (long long)far);
	CHECK_EQ(complete(ctx, &w1), len, "write result at 0");
	CHECK_EQ(complete(ctx, &w2), len, "write result at %lld", (long long)far);
	CHECK_EQ(w1.op, CAIO_OP_WRITE, "caio_req_op() inside the write callback");
	CHECK_EQ(file_size(fd), far + len, "file size after the writes");

	CHECK_EQ(caio_read(ctx, fd, rbuf, len, far, record_cb, &r2, NULL), 0,
		 "caio_read at %lld", (long long)far);
	CHECK_EQ(complete(ctx, &r2), len, "read result at %lld", (long long)far);
	CHECK_EQ(r2.op, CAIO_OP_READ, "caio_req_op() inside the read callback");
	CHECK_EQ(t_pattern_mismatch(rbuf, len, 1), -1,
		 "first wrong byte read back at %lld", (long long)far);
	memset(rbuf, 0xee, len);
	CHECK_EQ(caio_read(ctx, fd, rbuf, len, 0, record_cb, &r1, NULL), 0,
		 "caio_read at 0");
	CHECK_EQ(complete(ctx, &r1), len, "read result at 0");
	CHECK_EQ(t_pattern_mismatch(rbuf, len, 1), -1, "first wrong byte read back at 0");

	/* The gap between the two writes reads as zeros. */
	memset(rbuf, 0xee, 4 * KIB);
	CHECK_EQ(caio_read(ctx, fd, rbuf, 4 * KIB, len, record_cb, &hole, NULL), 0,
		 "caio_read of the hole");
	CHECK_EQ(complete(ctx, &hole), 4 * KIB, "read result in the hole");
	CHECK(rbuf[0] == 0 && memcmp(rbuf, rbuf + 1, 4 * KIB - 1) == 0,
	      "the hole did not read as zeros");

	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.requests, 5, "stats.requests");
	CHECK_EQ(st.completions, 5, "stats.completions");
	CHECK_EQ(st.errors, 0, "stats.errors");
	CHECK_EQ(st.pending, 0, "stats.pending");
	CHECK_EQ(st.bytes_written, 2 * len, "stats.bytes_written");
	CHECK_EQ(st.bytes_read, 2 * len + 4 * KIB, "stats.bytes_read");
	CHECK_EQ(caio_ctx_pending(ctx), 0, "caio_ctx_pending after all callbacks");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(wbuf);
	free(rbuf);
}

static void case_eof(void)
{
	struct result whole = { 0 }, at_eof = { 0 }, past = { 0 }, tail = { 0 }, empty = { 0 };
	char buf[4096];
	caio_ctx *ctx = NULL;
	int fd = -1;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("eof", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 1000, 2), 0, "writing the 1000-byte file");

	CHECK_EQ(caio_read(ctx, fd, buf, sizeof(buf), 0, record_cb, &whole, NULL), 0,
		 "caio_read 4096 at 0");
	CHECK_EQ(caio_read(ctx, fd, buf + 2048, 100, 950, record_cb, &tail, NULL), 0,
		 "caio_read 100 at 950");
	CHECK_EQ(caio_read(ctx, fd, buf + 3000, 100, 1000, record_cb, &at_eof, NULL), 0,
		 "caio_read at EOF");
	CHECK_EQ(caio_read(ctx, fd, buf + 3500, 100, 5000, record_cb, &past, NULL), 0,
		 "caio_read past EOF");
	CHECK_EQ(caio_read(ctx, fd, buf, 0, 0, record_cb, &empty, NULL), 0,
		 "caio_read of 0 bytes");
	CHECK_EQ(complete(ctx, &whole), 1000, "short read of a 1000-byte file");
	CHECK_EQ(complete(ctx, &tail), 50, "read of 100 bytes at 950 (short at EOF)");
	CHECK_EQ(complete(ctx, &at_eof), 0, "read at EOF");
	CHECK_EQ(complete(ctx, &past), 0, "read past EOF");
	CHECK_EQ(complete(ctx, &empty), 0, "read of 0 bytes");
	CHECK_EQ(t_pattern_mismatch(buf, 1000, 2), -1, "first wrong byte of the short read");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

static void case_vectored(void)
{
	static char a[100], b[4000], c[5000], x[1], y[9098], z[100];
	struct iovec wv[] = {
		{ a, sizeof(a) }, { NULL, 0 }, { b, sizeof(b) }, { c, sizeof(c) },
	};
	struct iovec rv[] = { { x, sizeof(x) }, { y, sizeof(y) }, { z, sizeof(z) } };
	struct result w = { 0 }, r = { 0 };
	char *whole = malloc(9100), *back = malloc(9200);
	caio_ctx *ctx = NULL;
	int fd = -1;

	CHECK_SYS(whole && back, "malloc");
	t_pattern(whole, 9100, 3);
	memcpy(a, whole, 100);
	memcpy(b, whole + 100, 4000);
	memcpy(c, whole + 4100, 5000);
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("vectored", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");

	CHECK_EQ(caio_writev(ctx, fd, wv, 4, 7, record_cb, &w, NULL), 0, "caio_writev");
	CHECK_EQ(complete(ctx, &w), 9100, "writev result (100 + 0 + 4000 + 5000 bytes)");
	CHECK_EQ(w.op, CAIO_OP_WRITEV, "caio_req_op() inside the writev callback");
	CHECK_EQ(pread(fd, back, 9200, 7), 9100, "pread of what writev wrote");
	CHECK(memcmp(back, whole, 9100) == 0, "writev wrote the wrong bytes");

	/* 1 + 9098 + 100 bytes of room, 9100 in the file after offset 7. */
	CHECK_EQ(caio_readv(ctx, fd, rv, 3, 7, record_cb, &r, NULL), 0, "caio_readv");
	CHECK_EQ(complete(ctx, &r), 9100, "readv result (short at EOF)");
	CHECK_EQ(r.op, CAIO_OP_READV, "caio_req_op() inside the readv callback");
	memcpy(back, x, 1);
	memcpy(back + 1, y, 9098);
	memcpy(back + 9099, z, 1);
	CHECK(memcmp(back, whole, 9100) == 0, "readv scattered the wrong bytes");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(whole);
	free(back);
}

/* max_requests requests at once, all in flight together, data checked. */
static void case_many(void)
{
	enum { N = 1024, BLOCK = 4096 };
	struct result *res = calloc(N, sizeof(*res));
	char *wbuf = malloc((size_t)N * BLOCK), *rbuf = malloc((size_t)N * BLOCK);
	struct result extra = { 0 };
	caio_ctx *ctx = NULL;
	int fd = -1, i;

	CHECK_SYS(res && wbuf && rbuf, "malloc");
	CHECK_EQ(ctx_new(&ctx, N, 0), 0, "caio_ctx_new(max_requests=%d)", N);
	CHECK(caio_ctx_max_requests(ctx) >= N, "caio_ctx_max_requests %u < %d",
	      caio_ctx_max_requests(ctx), N);
	fd = open_tmp("many", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	for (i = 0; i < N; i++) {
		t_pattern(wbuf + (size_t)i * BLOCK, BLOCK, 1000 + i);
		CHECK_EQ(caio_write(ctx, fd, wbuf + (size_t)i * BLOCK, BLOCK,
				    (int64_t)i * BLOCK, record_cb, &res[i], NULL),
			 0, "caio_write #%d", i);
	}
	CHECK_EQ(caio_ctx_pending(ctx), N, "caio_ctx_pending with %d submitted", N);
	if (caio_ctx_max_requests(ctx) == N)
		CHECK_EQ(caio_read(ctx, fd, rbuf, 1, 0, record_cb, &extra, NULL),
			 -EAGAIN, "submit #%d with %d slots", N + 1, N);
	CHECK_EQ(wait_idle(ctx), 0, "waiting for %d writes", N);
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].res, BLOCK, "write #%d result", i);
	CHECK_EQ(pread(fd, rbuf, (size_t)N * BLOCK, 0), (int64_t)N * BLOCK, "pread of the file");
	for (i = 0; i < N; i++)
		CHECK_EQ(t_pattern_mismatch(rbuf + (size_t)i * BLOCK, BLOCK, 1000 + i), -1,
			 "first wrong byte of block %d in the file", i);

	/* Read back in reverse order, all in flight together. */
	memset(rbuf, 0, (size_t)N * BLOCK);
	memset(res, 0, N * sizeof(*res));
	for (i = N - 1; i >= 0; i--)
		CHECK_EQ(caio_read(ctx, fd, rbuf + (size_t)i * BLOCK, BLOCK,
				   (int64_t)i * BLOCK, record_cb, &res[i], NULL),
			 0, "caio_read #%d", i);
	CHECK_EQ(wait_idle(ctx), 0, "waiting for %d reads", N);
	for (i = 0; i < N; i++) {
		CHECK_EQ(res[i].calls, 1, "callbacks of read #%d", i);
		CHECK_EQ(res[i].res, BLOCK, "read #%d result", i);
		CHECK_EQ(t_pattern_mismatch(rbuf + (size_t)i * BLOCK, BLOCK, 1000 + i), -1,
			 "first wrong byte read back by request #%d", i);
	}
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(res);
	free(wbuf);
	free(rbuf);
}

static void case_fsync(void)
{
	struct result w = { 0 }, fs = { 0 }, fds = { 0 }, bad = { 0 };
	char buf[4096];
	caio_ctx *ctx = NULL;
	int fd = -1, closed_fd;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("fsync", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	t_pattern(buf, sizeof(buf), 4);
	CHECK_EQ(caio_write(ctx, fd, buf, sizeof(buf), 0, record_cb, &w, NULL), 0, "caio_write");
	CHECK_EQ(complete(ctx, &w), sizeof(buf), "write result");
	CHECK_EQ(caio_fsync(ctx, fd, record_cb, &fs, NULL), 0, "caio_fsync");
	CHECK_EQ(complete(ctx, &fs), 0, "fsync result");
	CHECK_EQ(fs.op, CAIO_OP_FSYNC, "caio_req_op() inside the fsync callback");
	CHECK_EQ(caio_fdsync(ctx, fd, record_cb, &fds, NULL), 0, "caio_fdsync");
	CHECK_EQ(complete(ctx, &fds), 0, "fdsync result");
	CHECK_EQ(fds.op, CAIO_OP_FDSYNC, "caio_req_op() inside the fdsync callback");

	closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(closed_fd >= 0, "open /dev/null");
	close(closed_fd);
	CHECK_EQ(caio_fsync(ctx, closed_fd, record_cb, &bad, NULL), 0, "caio_fsync of a closed fd");
	CHECK_EQ(complete(ctx, &bad), -EBADF, "fsync result of a closed fd");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/* One fallocate through caio; -EOPNOTSUPP is returned as is for the caller to skip. */
static int64_t fallocate_one(caio_ctx *ctx, int fd, int mode, int64_t off, int64_t len)
{
	struct result r = { 0 };
	int err = caio_fallocate(ctx, fd, mode, off, len, record_cb, &r, NULL);

	if (err < 0)
		return err;
	return complete(ctx, &r);
}

static void case_fallocate(void)
{
	struct caio_stats before, after;
	char *buf = malloc(64 * KIB);
	unsigned expected_fallback = 0;
	caio_ctx *ctx = NULL;
	struct stat st;
	int fd = -1, native, i;
	int64_t res;

	CHECK_SYS(buf, "malloc");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	native = caio_ctx_op_native(ctx, CAIO_OP_FALLOCATE);
	CHECK_EQ(get_stats(ctx, &before), 0, "caio_ctx_stats");
	fd = open_tmp("fallocate", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");

	res = fallocate_one(ctx, fd, 0, 0, MIB);
	expected_fallback++;
	if (res == -EOPNOTSUPP) {
		t_skip_case("fallocate is not supported on %s", t_path(""));
		goto out;
	}
	CHECK_EQ(res, 0, "fallocate(mode 0, 0, 1 MiB) result");
	CHECK_SYS(fstat(fd, &st) == 0, "fstat");
	CHECK_EQ(st.st_size, MIB, "size after fallocate(mode 0)");
	CHECK(st.st_blocks * 512 >= MIB, "fallocate allocated only %lld bytes",
	      (long long)st.st_blocks * 512);

	res = fallocate_one(ctx, fd, FALLOC_FL_KEEP_SIZE, MIB, MIB);
	expected_fallback++;
	if (res == -EOPNOTSUPP) {
		t_note("FALLOC_FL_KEEP_SIZE not supported here: not checked");
	} else {
		CHECK_EQ(res, 0, "fallocate(KEEP_SIZE, 1 MiB, 1 MiB) result");
		CHECK_SYS(fstat(fd, &st) == 0, "fstat");
		CHECK_EQ(st.st_size, MIB, "size after fallocate(KEEP_SIZE)");
		CHECK(st.st_blocks * 512 >= 2 * MIB,
		      "KEEP_SIZE allocated only %lld bytes in all",
		      (long long)st.st_blocks * 512);
	}

	CHECK_EQ(setup_file(fd, 64 * KIB, 5), 0, "writing 64 KiB of data");
	res = fallocate_one(ctx, fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			    4 * KIB, 8 * KIB);
	expected_fallback++;
	if (res == -EOPNOTSUPP) {
		t_note("FALLOC_FL_PUNCH_HOLE not supported here: not checked");
	} else {
		CHECK_EQ(res, 0, "fallocate(PUNCH_HOLE|KEEP_SIZE, 4 KiB, 8 KiB) result");
		CHECK_EQ(file_size(fd), MIB, "size after punching a hole");
		CHECK_EQ(pread(fd, buf, 64 * KIB, 0), 64 * KIB, "pread after the punch");
		CHECK_EQ(t_pattern_mismatch(buf, 4 * KIB, 5), -1, "data before the hole");
		for (i = 4 * KIB; i < 12 * KIB; i++)
			CHECK_EQ(buf[i], 0, "byte %d inside the punched hole", i);
	}

	CHECK_EQ(get_stats(ctx, &after), 0, "caio_ctx_stats");
	if (native == 0)
		CHECK_EQ(after.fallback_requests - before.fallback_requests, expected_fallback,
			 "stats.fallback_requests for fallocate routed to the pool");
	else if (kernel_backend())
		CHECK_EQ(after.fallback_requests - before.fallback_requests, 0,
			 "stats.fallback_requests for native fallocate");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(buf);
}

/* Submit n writes of 4 KiB each from buf to fd. */
static int submit_writes(caio_ctx *ctx, int fd, const char *buf, int n,
			 struct result *res)
{
	int i, err;

	for (i = 0; i < n; i++) {
		err = caio_write(ctx, fd, buf + (size_t)i * 4096, 4096,
				 (int64_t)i * 4096, record_cb, &res[i], NULL);
		if (err < 0)
			return err;
	}
	return 0;
}

/* A batch of BATCH_N 4 KiB writes for the batching cases. */
#define BATCH_N		64
#define BATCH_AUTO	16

struct batch_fixture {
	struct result res[BATCH_N];
	char *buf;
	int fd;
};

static int batch_setup(struct batch_fixture *f)
{
	memset(f->res, 0, sizeof(f->res));
	f->fd = -1;
	f->buf = malloc(BATCH_N * 4096);
	if (!f->buf)
		return -ENOMEM;
	t_pattern(f->buf, BATCH_N * 4096, 6);
	f->fd = open_tmp("batch", O_RDWR | O_TRUNC);
	return f->fd < 0 ? -errno : 0;
}

static void batch_cleanup(struct batch_fixture *f)
{
	if (f->fd >= 0)
		close(f->fd);
	free(f->buf);
}

/* Explicit flush: BATCH_N queued requests, one kernel submission. */
static void case_batch_flush(void)
{
	struct caio_stats before, mid, after;
	struct batch_fixture f;
	caio_ctx *ctx = NULL;
	int i;

	CHECK_EQ(batch_setup(&f), 0, "setting up the batch file");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(get_stats(ctx, &before), 0, "caio_ctx_stats");
	CHECK_EQ(submit_writes(ctx, f.fd, f.buf, BATCH_N, f.res), 0, "submitting %d writes", BATCH_N);
	CHECK_EQ(get_stats(ctx, &mid), 0, "caio_ctx_stats");
	CHECK_EQ(mid.requests - before.requests, BATCH_N, "stats.requests after %d submits", BATCH_N);
	CHECK_EQ(mid.flushes - before.flushes, 0, "stats.flushes before any flush");
	CHECK_EQ(mid.kernel_submits - before.kernel_submits, 0,
		 "stats.kernel_submits before any flush");
	CHECK_EQ(caio_flush(ctx), BATCH_N, "caio_flush of %d queued", BATCH_N);
	CHECK_EQ(get_stats(ctx, &after), 0, "caio_ctx_stats");
	CHECK_EQ(after.flushes - mid.flushes, 1, "stats.flushes after one flush");
	if (backend == CAIO_BACKEND_LINUX && refuses_nowait(f.fd)) {
		/* buffered writes AIO cannot take without blocking: the pool,
		 * after one refused io_submit, not one per request */
		CHECK_EQ(after.kernel_refusals - mid.kernel_refusals, 1,
			 "refused io_submit calls for a flush of %d (%s refuses RWF_NOWAIT)",
			 BATCH_N, t_path(""));
		CHECK_EQ(after.kernel_submits - mid.kernel_submits, 0,
			 "kernel submissions for a flush of %d", BATCH_N);
		CHECK_EQ(after.fallback_requests - mid.fallback_requests, BATCH_N,
			 "stats.fallback_requests for a flush of %d", BATCH_N);
	} else if (kernel_backend()) {
		CHECK_EQ(after.kernel_submits - mid.kernel_submits, 1,
			 "kernel submissions for a flush of %d", BATCH_N);
		CHECK_EQ(after.kernel_requests - mid.kernel_requests, BATCH_N,
			 "stats.kernel_requests for a flush of %d", BATCH_N);
		CHECK_EQ(after.max_batch, BATCH_N, "stats.max_batch");
	}
	CHECK_EQ(caio_flush(ctx), 0, "caio_flush with nothing queued");
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the batch");
	for (i = 0; i < BATCH_N; i++)
		CHECK_EQ(f.res[i].res, 4096, "write #%d of the batch", i);
out:
	destroy(ctx);
	batch_cleanup(&f);
}

/* params.batch: the queue flushes itself every BATCH_AUTO requests. */
static void case_batch_auto(void)
{
	struct caio_stats before, after;
	struct batch_fixture f;
	caio_ctx *ctx = NULL;
	int i;

	CHECK_EQ(batch_setup(&f), 0, "setting up the batch file");
	CHECK_EQ(ctx_new(&ctx, 0, BATCH_AUTO), 0, "caio_ctx_new(batch=%d)", BATCH_AUTO);
	CHECK_EQ(get_stats(ctx, &before), 0, "caio_ctx_stats");
	CHECK_EQ(submit_writes(ctx, f.fd, f.buf, BATCH_N, f.res), 0, "submitting %d writes", BATCH_N);
	CHECK_EQ(get_stats(ctx, &after), 0, "caio_ctx_stats");
	CHECK_EQ(after.flushes - before.flushes, BATCH_N / BATCH_AUTO,
		 "automatic flushes for %d submits with batch=%d", BATCH_N, BATCH_AUTO);
	if (backend == CAIO_BACKEND_LINUX && refuses_nowait(f.fd)) {
		/* see case_batch_flush: one refusal in all, then the pool */
		CHECK_EQ(after.kernel_refusals - before.kernel_refusals, 1,
			 "refused io_submit calls for %d submits with batch=%d", BATCH_N, BATCH_AUTO);
		CHECK_EQ(after.fallback_requests - before.fallback_requests, BATCH_N,
			 "stats.fallback_requests for %d submits with batch=%d", BATCH_N, BATCH_AUTO);
	} else if (kernel_backend()) {
		CHECK_EQ(after.kernel_submits - before.kernel_submits, BATCH_N / BATCH_AUTO,
			 "kernel submissions for %d submits with batch=%d", BATCH_N, BATCH_AUTO);
		CHECK_EQ(after.max_batch, BATCH_AUTO, "stats.max_batch with batch=%d", BATCH_AUTO);
	}
	CHECK_EQ(caio_flush(ctx), 0, "caio_flush after automatic flushes");
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the automatic batches");
	for (i = 0; i < BATCH_N; i++)
		CHECK_EQ(f.res[i].res, 4096, "write #%d with batch=%d", i, BATCH_AUTO);
out:
	destroy(ctx);
	batch_cleanup(&f);
}

static void case_bad_fd(void)
{
	struct result r = { 0 }, w = { 0 }, ro = { 0 }, wo = { 0 }, dir = { 0 };
	struct result a = { 0 }, mid = { 0 }, b = { 0 };
	char buf[4096] = { 0 };
	caio_ctx *ctx = NULL;
	int closed_fd, rdonly = -1, wronly = -1, dirfd = -1;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(closed_fd >= 0, "open /dev/null");
	close(closed_fd);

	/* A closed descriptor: the kernel finds out, the callback says so. */
	CHECK_EQ(caio_read(ctx, closed_fd, buf, 16, 0, record_cb, &r, NULL), 0,
		 "caio_read of a closed fd (submit)");
	CHECK_EQ(caio_write(ctx, closed_fd, buf, 16, 0, record_cb, &w, NULL), 0,
		 "caio_write of a closed fd (submit)");
	CHECK_EQ(complete(ctx, &r), -EBADF, "read result of a closed fd");
	CHECK_EQ(complete(ctx, &w), -EBADF, "write result of a closed fd");

	/* Wrong access mode and a directory, as pread/pwrite report them. */
	rdonly = open_tmp("badfd", O_RDONLY);
	wronly = open_tmp("badfd", O_WRONLY);
	dirfd = open(t_path(""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK_SYS(rdonly >= 0 && wronly >= 0 && dirfd >= 0, "open");
	CHECK_EQ(caio_write(ctx, rdonly, buf, 16, 0, record_cb, &ro, NULL), 0,
		 "caio_write to an O_RDONLY fd (submit)");
	CHECK_EQ(caio_read(ctx, wronly, buf, 16, 0, record_cb, &wo, NULL), 0,
		 "caio_read of an O_WRONLY fd (submit)");
	CHECK_EQ(caio_read(ctx, dirfd, buf, 16, 0, record_cb, &dir, NULL), 0,
		 "caio_read of a directory (submit)");
	CHECK_EQ(complete(ctx, &ro), -EBADF, "write result on an O_RDONLY fd");
	CHECK_EQ(complete(ctx, &wo), -EBADF, "read result on an O_WRONLY fd");
	CHECK_EQ(complete(ctx, &dir), -EISDIR, "read result on a directory (as pread)");

	/* One bad request in the middle of a batch spoils nothing else.  The
	 * opens above may have reused the old number: close a fresh one. */
	closed_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK_SYS(closed_fd >= 0, "open /dev/null");
	close(closed_fd);
	CHECK_EQ(caio_write(ctx, wronly, buf, 100, 0, record_cb, &a, NULL), 0, "caio_write A");
	CHECK_EQ(caio_read(ctx, closed_fd, buf, 16, 0, record_cb, &mid, NULL), 0,
		 "caio_read of a closed fd in a batch");
	CHECK_EQ(caio_write(ctx, wronly, buf, 200, 100, record_cb, &b, NULL), 0, "caio_write B");
	CHECK_EQ(caio_flush(ctx) < 0, 0, "caio_flush of a batch with a bad fd failed");
	CHECK_EQ(complete(ctx, &a), 100, "write A before the bad request");
	CHECK_EQ(complete(ctx, &mid), -EBADF, "closed fd in the middle of a batch");
	CHECK_EQ(complete(ctx, &b), 200, "write B after the bad request");
out:
	destroy(ctx);
	if (rdonly >= 0)
		close(rdonly);
	if (wronly >= 0)
		close(wronly);
	if (dirfd >= 0)
		close(dirfd);
}

/* fd < 0 is an argument error: refused by the submit, no callback. */
static void case_fd_negative(void)
{
	char buf[64] = { 0 };
	struct iovec iov = { buf, sizeof(buf) };
	struct result refused = { 0 };
	struct caio_stats st;
	caio_ctx *ctx = NULL;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(caio_read(ctx, -1, buf, 16, 0, record_cb, &refused, NULL), -EBADF, "caio_read(fd -1)");
	CHECK_EQ(caio_write(ctx, -1, buf, 16, 0, record_cb, &refused, NULL), -EBADF, "caio_write(fd -1)");
	CHECK_EQ(caio_readv(ctx, -1, &iov, 1, 0, record_cb, &refused, NULL), -EBADF, "caio_readv(fd -1)");
	CHECK_EQ(caio_writev(ctx, -1, &iov, 1, 0, record_cb, &refused, NULL), -EBADF, "caio_writev(fd -1)");
	CHECK_EQ(caio_fsync(ctx, -1, record_cb, &refused, NULL), -EBADF, "caio_fsync(fd -1)");
	CHECK_EQ(caio_fdsync(ctx, -1, record_cb, &refused, NULL), -EBADF, "caio_fdsync(fd -1)");
	CHECK_EQ(caio_fallocate(ctx, -7, 0, 0, 4096, record_cb, &refused, NULL), -EBADF,
		 "caio_fallocate(fd -7)");
	CHECK_EQ(caio_ftruncate(ctx, -1, 0, record_cb, &refused, NULL), -EBADF, "caio_ftruncate(fd -1)");
	CHECK_EQ(caio_ctx_pending(ctx), 0, "caio_ctx_pending after refused submits");
	CHECK_EQ(wait_ns(ctx, 0, 0), 0, "callbacks run by caio_wait after refused submits");
	CHECK_EQ(refused.calls, 0, "callbacks of refused requests");
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.requests, 0, "stats.requests after only refused submits");
out:
	destroy(ctx);
}

static void case_bad_args(void)
{
	struct iovec *many = calloc(IOV_MAX + 1, sizeof(*many));
	struct result refused = { 0 }, null0 = { 0 }, maxv = { 0 };
	struct iovec iov[2];
	char buf[IOV_MAX] = { 0 };
	struct caio_stats st;
	caio_ctx *ctx = NULL;
	int fd = -1, i;

	CHECK_SYS(many, "calloc");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("args", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 2 * IOV_MAX, 7), 0, "writing the file");
	iov[0] = (struct iovec){ buf, 16 };
	iov[1] = (struct iovec){ NULL, 16 };

	CHECK_EQ(caio_read(ctx, fd, buf, 16, -1, record_cb, &refused, NULL), -EINVAL,
		 "caio_read at offset -1");
	CHECK_EQ(caio_write(ctx, fd, buf, 16, -4096, record_cb, &refused, NULL), -EINVAL,
		 "caio_write at offset -4096");
	CHECK_EQ(caio_readv(ctx, fd, iov, 1, -1, record_cb, &refused, NULL), -EINVAL,
		 "caio_readv at offset -1");
	CHECK_EQ(caio_writev(ctx, fd, iov, 1, INT64_MIN, record_cb, &refused, NULL), -EINVAL,
		 "caio_writev at offset INT64_MIN");

	CHECK_EQ(caio_read(ctx, fd, NULL, 16, 0, record_cb, &refused, NULL), -EFAULT,
		 "caio_read into NULL");
	CHECK_EQ(caio_write(ctx, fd, NULL, 16, 0, record_cb, &refused, NULL), -EFAULT,
		 "caio_write from NULL");
	CHECK_EQ(caio_readv(ctx, fd, NULL, 1, 0, record_cb, &refused, NULL), -EFAULT,
		 "caio_readv with iov NULL");
	CHECK_EQ(caio_readv(ctx, fd, iov, 2, 0, record_cb, &refused, NULL), -EFAULT,
		 "caio_readv with an iov_base NULL");
	CHECK_EQ(caio_writev(ctx, fd, iov, 2, 0, record_cb, &refused, NULL), -EFAULT,
		 "caio_writev with an iov_base NULL");

	CHECK_EQ(caio_readv(ctx, fd, iov, -1, 0, record_cb, &refused, NULL), -EINVAL,
		 "caio_readv with iovcnt -1");
	for (i = 0; i <= IOV_MAX; i++)
		many[i] = (struct iovec){ buf + (i % IOV_MAX), 1 };
	CHECK_EQ(caio_readv(ctx, fd, many, IOV_MAX + 1, 0, record_cb, &refused, NULL), -EINVAL,
		 "caio_readv with iovcnt IOV_MAX + 1");
	CHECK_EQ(caio_writev(ctx, fd, many, IOV_MAX + 1, 0, record_cb, &refused, NULL), -EINVAL,
		 "caio_writev with iovcnt IOV_MAX + 1");
	CHECK_EQ(caio_ctx_pending(ctx), 0, "caio_ctx_pending after refused submits");
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.requests, 0, "stats.requests after only refused submits");

	/* The limits themselves are fine: NULL with 0 bytes, IOV_MAX iovecs. */
	CHECK_EQ(caio_read(ctx, fd, NULL, 0, 0, record_cb, &null0, NULL), 0,
		 "caio_read of 0 bytes into NULL");
	CHECK_EQ(complete(ctx, &null0), 0, "read of 0 bytes into NULL");
	CHECK_EQ(caio_readv(ctx, fd, many, IOV_MAX, 0, record_cb, &maxv, NULL), 0,
		 "caio_readv with iovcnt IOV_MAX");
	CHECK_EQ(complete(ctx, &maxv), IOV_MAX, "readv of IOV_MAX one-byte iovecs");
	CHECK_EQ(t_pattern_mismatch(buf, IOV_MAX, 7), -1, "first wrong byte of the IOV_MAX readv");
	CHECK_EQ(wait_ns(ctx, 0, 0), 0, "caio_wait(0, 0) with nothing pending");
	CHECK_EQ(refused.calls, 0, "callbacks of refused requests");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(many);
}

/* Every slot taken: each kind of submit says -EAGAIN at once. */
static int check_all_refused(caio_ctx *ctx, int fd, struct result *refused)
{
	static struct statx stx;
	char buf[16];

	CHECK_EQ(caio_read(ctx, fd, buf, 16, 0, record_cb, refused, NULL), -EAGAIN,
		 "caio_read with all slots taken");
	CHECK_EQ(caio_write(ctx, fd, buf, 16, 0, record_cb, refused, NULL), -EAGAIN,
		 "caio_write with all slots taken");
	CHECK_EQ(caio_fsync(ctx, fd, record_cb, refused, NULL), -EAGAIN,
		 "caio_fsync with all slots taken");
	CHECK_EQ(caio_fallocate(ctx, fd, 0, 0, 4096, record_cb, refused, NULL), -EAGAIN,
		 "caio_fallocate with all slots taken");
	CHECK_EQ(caio_statx(ctx, AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx, record_cb,
			    refused, NULL), -EAGAIN, "caio_statx with all slots taken");
	return 0;
out:
	return -1;
}

static void case_eagain(void)
{
	enum { MAX = 8 };
	struct result res[MAX], refused = { 0 }, again = { 0 };
	char buf[MAX][64];
	unsigned slots = 0, i;
	caio_ctx *ctx = NULL;
	int fd = -1, efd;

	memset(res, 0, sizeof(res));
	CHECK_EQ(ctx_new(&ctx, MAX, 0), 0, "caio_ctx_new(max_requests=%d)", MAX);
	slots = caio_ctx_max_requests(ctx);
	CHECK_EQ(slots, MAX, "caio_ctx_max_requests");
	fd = open_tmp("eagain", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 8), 0, "writing the file");
	efd = caio_ctx_eventfd(ctx);
	for (i = 0; i < slots; i++)
		CHECK_EQ(caio_read(ctx, fd, buf[i], 64, 64 * i, record_cb, &res[i], NULL), 0,
			 "caio_read #%u of %u", i, slots);
	CHECK_EQ(caio_ctx_pending(ctx), slots, "caio_ctx_pending with all slots taken");
	CHECK_EQ(check_all_refused(ctx, fd, &refused), 0, "refusals in flight");

	/* Completed but not reaped still holds the slot. */
	CHECK_EQ(caio_flush(ctx) < 0, 0, "caio_flush failed");
	CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1, "eventfd readable after completions");
	CHECK_EQ(check_all_refused(ctx, fd, &refused), 0, "refusals before reaping");
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the reads");
	for (i = 0; i < slots; i++)
		CHECK_EQ(res[i].res, 64, "read #%u result", i);
	CHECK_EQ(refused.calls, 0, "callbacks of refused requests");
	CHECK_EQ(caio_read(ctx, fd, buf[0], 64, 0, record_cb, &again, NULL), 0,
		 "caio_read once slots are free again");
	CHECK_EQ(complete(ctx, &again), 64, "read after the refusals");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

static void case_cancel_queued(void)
{
	struct result a = { 0 }, b = { 0 };
	caio_req *ra = NULL, *rb = NULL;
	struct caio_stats st;
	char buf[2][64], expect[128];
	caio_ctx *ctx = NULL;
	int fd = -1;

	CHECK_EQ(ctx_new(&ctx, 16, 16), 0, "caio_ctx_new");
	fd = open_tmp("cancel", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 9), 0, "writing the file");
	CHECK_EQ(caio_read(ctx, fd, buf[0], 64, 0, record_cb, &a, &ra), 0, "caio_read A");
	CHECK_EQ(caio_read(ctx, fd, buf[1], 64, 64, record_cb, &b, &rb), 0, "caio_read B");
	CHECK(ra && rb && ra != rb, "reqp not filled in (A %p, B %p)", (void *)ra, (void *)rb);
	CHECK_EQ(caio_req_op(ra), CAIO_OP_READ, "caio_req_op of a queued request");
	CHECK_EQ(caio_cancel(ctx, ra), 0, "caio_cancel of a queued, unflushed request");
	CHECK_EQ(a.calls, 0, "callbacks run by caio_cancel itself (must wait for a reap)");
	CHECK_EQ(caio_flush(ctx), 1, "caio_flush after cancelling 1 of 2 queued");
	CHECK_EQ(complete(ctx, &a), -ECANCELED, "result of the cancelled request");
	CHECK_EQ(complete(ctx, &b), 64, "result of the request next to it");
	t_pattern(expect, sizeof(expect), 9);
	CHECK(memcmp(buf[1], expect + 64, 64) == 0, "the other read returned the wrong data");
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.cancelled, 1, "stats.cancelled");
	CHECK_EQ(st.completions, 2, "stats.completions");
	CHECK_EQ(caio_ctx_pending(ctx), 0, "caio_ctx_pending");
	/* Both are finished now: nothing to cancel. */
	CHECK_EQ(caio_cancel(ctx, ra), -ENOENT, "caio_cancel of a cancelled, reaped request");
	CHECK_EQ(caio_cancel(ctx, rb), -ENOENT, "caio_cancel of a finished request");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/* Cancel right after the flush: whatever the answer, the callback agrees. */
static void case_cancel_flushed(void)
{
	struct caio_stats st;
	struct result r = { 0 };
	caio_req *req = NULL;
	char buf[4096];
	caio_ctx *ctx = NULL;
	int fd = -1, ret;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("cancel-flushed", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 10), 0, "writing the file");
	CHECK_EQ(caio_read(ctx, fd, buf, 4096, 0, record_cb, &r, &req), 0, "caio_read");
	CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
	ret = caio_cancel(ctx, req);
	/* 0 only from a pool that had not started it: the thread backend's,
	 * or linux's fallback (a file that refuses RWF_NOWAIT, like tmpfs) */
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK(ret == -EINPROGRESS || ret == -EALREADY || ret == -ENOENT ||
	      (ret == 0 && (backend == CAIO_BACKEND_THREAD || st.fallback_requests)),
	      "caio_cancel of a flushed read returned %d (%s)", ret, t_errno_name(ret));
	complete(ctx, &r);
	CHECK_EQ(r.calls, 1, "callbacks of the flushed read");
	if (ret == 0)
		CHECK_EQ(r.res, -ECANCELED, "result after caio_cancel returned 0");
	else if (ret == -EINPROGRESS)
		CHECK(r.res == -ECANCELED || r.res == 4096,
		      "result after -EINPROGRESS: expected -ECANCELED or 4096, got %lld",
		      (long long)r.res);
	else
		CHECK_EQ(r.res, 4096, "result after caio_cancel returned %s", t_errno_name(ret));
	CHECK_EQ(caio_cancel(ctx, req), -ENOENT, "caio_cancel after the callback ran");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/* Check a stuck request's callback against what caio_cancel answered. */
static int check_cancel_outcome(struct stuck *s, int ret)
{
	if (ret == 0)
		CHECK_EQ(s->r.res, -ECANCELED, "result after caio_cancel returned 0");
	else if (ret == -EALREADY)
		CHECK(stuck_result_ok(s, s->r.res),
		      "result after -EALREADY: expected the real result, got %lld (%s)",
		      (long long)s->r.res, t_errno_name(s->r.res));
	else
		CHECK(s->r.res == -ECANCELED || stuck_result_ok(s, s->r.res),
		      "result after -EINPROGRESS: expected -ECANCELED or the real "
		      "result, got %lld (%s)", (long long)s->r.res, t_errno_name(s->r.res));
	return 0;
out:
	return -1;
}

/* A callback that also numbers the callbacks in the order they ran. */
struct ordered {
	struct result r;
	unsigned seq;
};

static unsigned callbacks_run;

static void ordered_cb(caio_req *req, int64_t res, void *data)
{
	struct ordered *o = data;

	record_cb(req, res, &o->r);
	o->seq = ++callbacks_run;
}

/* Does the file hold at off the pattern seed wrote (seed 0: zeros)? */
static int check_block(int fd, int64_t off, size_t len, unsigned seed)
{
	char *buf = malloc(len);
	ssize_t n = buf ? pread(fd, buf, len, off) : -1;
	int bad = n != (ssize_t)len;

	if (!bad && seed)
		bad = t_pattern_mismatch(buf, len, seed) >= 0;
	for (size_t i = 0; !bad && !seed && i < len; i++)
		bad = buf[i] != 0;
	free(buf);
	return bad ? -1 : 0;
}

#define SMALL_WRITES	16
#define OTHER_WRITES	8

/*
 * A 64 MiB buffered write to file A, then 4 KiB writes to A through two
 * descriptors, and to file B, in one flush.  The pool runs one file's
 * buffered writes one at a time (backend-thread.c, struct serial_writes):
 * on the thread backend a small write to A waits for the large one
 * without a worker, so it can still be cancelled 2 ms later, and none
 * completes before it.  On every backend every byte lands.
 */
static void case_serial_writes(void)
{
	const size_t big_len = 64 * MIB, small = 4 * KIB;
	const unsigned victim = 5, nr = 1 + SMALL_WRITES + OTHER_WRITES;
	struct ordered big = { 0 }, a[SMALL_WRITES] = { { { 0 } } }, b[OTHER_WRITES] = { { { 0 } } };
	char *big_buf = malloc(big_len), *bufs = malloc(nr * small), proc[64];
	caio_req *victim_req = NULL;
	caio_ctx *ctx = NULL;
	int fa = -1, fa2 = -1, fb = -1, ret = 0;
	bool big_done_at_cancel;

	CHECK_SYS(big_buf && bufs, "malloc");
	CHECK_EQ(ctx_new(&ctx, 64, 0), 0, "caio_ctx_new");
	fa = open_tmp("serial-a", O_RDWR | O_TRUNC);
	fb = open_tmp("serial-b", O_RDWR | O_TRUNC);
	CHECK_SYS(fa >= 0 && fb >= 0, "open");
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fa);
	fa2 = open(proc, O_RDWR | O_CLOEXEC);
	CHECK_SYS(fa2 >= 0, "reopening A through /proc/self/fd");
	t_pattern(big_buf, big_len, 21);
	callbacks_run = 0;
	CHECK_EQ(caio_write(ctx, fa, big_buf, big_len, 0, ordered_cb, &big, NULL), 0,
		 "caio_write of 64 MiB");
	for (unsigned i = 0; i < SMALL_WRITES; i++) {
		char *p = bufs + i * small;

		t_pattern(p, small, 100 + i);
		CHECK_EQ(caio_write(ctx, i % 2 ? fa2 : fa, p, small, big_len + i * small,
				    ordered_cb, &a[i], i == victim ? &victim_req : NULL), 0,
			 "caio_write #%u to A", i);
	}
	for (unsigned i = 0; i < OTHER_WRITES; i++) {
		char *p = bufs + (SMALL_WRITES + i) * small;

		t_pattern(p, small, 200 + i);
		CHECK_EQ(caio_write(ctx, fb, p, small, i * small, ordered_cb, &b[i], NULL), 0,
			 "caio_write #%u to B", i);
	}
	CHECK_EQ(caio_flush(ctx), (int)nr, "caio_flush");
	/* Time for idle workers to wake and take what they would take. */
	usleep(2000);
	ret = caio_cancel(ctx, victim_req);
	CHECK(ret == 0 || ret == -EINPROGRESS || ret == -EALREADY || ret == -ENOENT,
	      "caio_cancel of a write to A returned %d (%s)", ret, t_errno_name(ret));
	/* The victim starts only once the large write is through: unless the
	 * large write had finished by now, the cancel must have worked. */
	reap(ctx, 0);
	big_done_at_cancel = big.r.calls;
	if (backend == CAIO_BACKEND_THREAD && !big_done_at_cancel)
		CHECK_EQ(ret, 0, "caio_cancel of a write waiting for the 64 MiB one to its file");
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the writes");

	CHECK_EQ(big.r.res, (int64_t)big_len, "the 64 MiB write");
	for (unsigned i = 0; i < SMALL_WRITES; i++) {
		if (i == victim && ret == 0)
			CHECK_EQ(a[i].r.res, -ECANCELED, "the cancelled write to A");
		else if (i == victim && ret == -EINPROGRESS)
			CHECK(a[i].r.res == -ECANCELED || a[i].r.res == (int64_t)small,
			      "the write to A being cancelled: %lld", (long long)a[i].r.res);
		else
			CHECK_EQ(a[i].r.res, (int64_t)small, "write #%u to A", i);
		if (backend == CAIO_BACKEND_THREAD && a[i].r.res >= 0)
			CHECK(a[i].seq > big.seq, "write #%u to A completed (callback %u) before "
			      "the 64 MiB write it was queued behind (callback %u)",
			      i, a[i].seq, big.seq);
	}
	for (unsigned i = 0; i < OTHER_WRITES; i++)
		CHECK_EQ(b[i].r.res, (int64_t)small, "write #%u to B", i);

	CHECK_EQ(check_block(fa, 0, big_len, 21), 0, "the 64 MiB in A");
	for (unsigned i = 0; i < SMALL_WRITES; i++)
		CHECK_EQ(check_block(fa, big_len + i * small, small,
				     a[i].r.res == -ECANCELED ? 0 : 100 + i), 0,
			 "block #%u of A%s", i, a[i].r.res == -ECANCELED ? " (cancelled: zeros)" : "");
	for (unsigned i = 0; i < OTHER_WRITES; i++)
		CHECK_EQ(check_block(fb, i * small, small, 200 + i), 0, "block #%u of B", i);
	if (backend == CAIO_BACKEND_THREAD && big_done_at_cancel)
		t_note("the 64 MiB write was through before the cancel: not a test of it");
out:
	destroy(ctx);
	if (fa >= 0)
		close(fa);
	if (fa2 >= 0)
		close(fa2);
	if (fb >= 0)
		close(fb);
	free(big_buf);
	free(bufs);
}

/* A request that really waits in the kernel or a worker, then cancel. */
static void case_cancel_inflight(void)
{
	struct caio_params p = { .threads = 1 };
	struct stuck s1, s2;
	struct caio_stats st;
	caio_ctx *ctx = NULL;
	int ret1 = 1, ret2 = 1;

	stuck_init(&s1);
	stuck_init(&s2);
	if (!stuck_possible()) {
		t_skip_case("sync runs each request inside the flush: none stays in flight");
		return;
	}
	CHECK_EQ(ctx_new_params(&ctx, &p), 0, "caio_ctx_new(threads=1)");
	CHECK_EQ(stuck_submit(ctx, &s1, "fifo1"), 0, "submitting a request that waits");
	CHECK_EQ(stuck_submit(ctx, &s2, "fifo2"), 0, "submitting a second one");
	CHECK_EQ(caio_flush(ctx), 2, "caio_flush");
	ret1 = caio_cancel(ctx, s1.req);
	ret2 = caio_cancel(ctx, s2.req);
	if (backend == CAIO_BACKEND_URING) {
		/* Poll-armed pipe reads: IORING_OP_ASYNC_CANCEL always stops them. */
		CHECK_EQ(ret1, -EINPROGRESS, "caio_cancel of a pipe read in the kernel");
		CHECK_EQ(ret2, -EINPROGRESS, "caio_cancel of a second pipe read");
		CHECK_EQ(complete(ctx, &s1.r), -ECANCELED, "result of the cancelled pipe read");
		CHECK_EQ(complete(ctx, &s2.r), -ECANCELED, "result of the second one");
	} else {
		CHECK(ret1 == 0 || ret1 == -EALREADY || ret1 == -EINPROGRESS,
		      "caio_cancel of a pool request returned %d (%s)", ret1, t_errno_name(ret1));
		CHECK(ret2 == 0 || ret2 == -EALREADY || ret2 == -EINPROGRESS,
		      "caio_cancel of a pool request returned %d (%s)", ret2, t_errno_name(ret2));
		/* One worker: at most one of the two can be running. */
		if (backend == CAIO_BACKEND_THREAD)
			CHECK(ret1 == 0 || ret2 == 0,
			      "with threads=1 one of two blocked requests must still be waiting "
			      "(cancel returned %s and %s)", t_errno_name(ret1), t_errno_name(ret2));
		stuck_release(&s1);
		stuck_release(&s2);
		complete(ctx, &s1.r);
		complete(ctx, &s2.r);
	}
	CHECK_EQ(s1.r.calls, 1, "callbacks of the first request");
	CHECK_EQ(s2.r.calls, 1, "callbacks of the second request");
	CHECK_EQ(check_cancel_outcome(&s1, ret1), 0, "first request");
	CHECK_EQ(check_cancel_outcome(&s2, ret2), 0, "second request");
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.cancelled, (s1.r.res == -ECANCELED) + (s2.r.res == -ECANCELED),
		 "stats.cancelled");
	CHECK_EQ(caio_cancel(ctx, s1.req), -ENOENT, "caio_cancel after the callback ran");
out:
	stuck_release(&s1);
	stuck_release(&s2);
	destroy(ctx);
	stuck_cleanup(&s1);
	stuck_cleanup(&s2);
}

/* Destroy with requests queued and in flight: every callback runs once. */
static void case_destroy_inflight(void)
{
	enum { N = 100, BATCH = 64 };
	struct result res[N];
	char *buf = malloc(N * 4096), *back = malloc(4096);
	caio_ctx *ctx = NULL;
	int fd = -1, i;

	memset(res, 0, sizeof(res));
	CHECK_SYS(buf && back, "malloc");
	t_pattern(buf, N * 4096, 11);
	fd = open_tmp("destroy", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(ctx_new(&ctx, 256, BATCH), 0, "caio_ctx_new(batch=%d)", BATCH);
	CHECK_EQ(submit_writes(ctx, fd, buf, N, res), 0, "submitting %d writes", N);
	CHECK_EQ(caio_ctx_pending(ctx), N, "caio_ctx_pending");
	destroy(ctx);
	ctx = NULL;
	for (i = 0; i < N; i++) {
		CHECK_EQ(res[i].calls, 1, "callbacks of write #%d after destroy", i);
		if (i >= BATCH) {
			CHECK_EQ(res[i].res, -ECANCELED, "queued write #%d after destroy", i);
			continue;
		}
		CHECK(res[i].res == 4096 || res[i].res == -ECANCELED,
		      "flushed write #%d after destroy: expected 4096 or -ECANCELED, got %lld",
		      i, (long long)res[i].res);
		if (res[i].res != 4096)
			continue;
		CHECK_EQ(pread(fd, back, 4096, (off_t)i * 4096), 4096, "pread of block %d", i);
		CHECK(memcmp(back, buf + (size_t)i * 4096, 4096) == 0,
		      "block %d: callback said written, file differs", i);
	}
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(buf);
	free(back);
}

struct reaper {
	caio_ctx *ctx;
	struct result *res;
	int n;
	int err;
	pthread_t self;
};

static void *reaper_main(void *arg)
{
	struct reaper *rp = arg;

	rp->self = pthread_self();
	rp->err = wait_idle(rp->ctx);
	return NULL;
}

/* Completions never run callbacks on workers or inside submit/flush. */
static void case_reap_thread(void)
{
	enum { N = 200 };
	struct result res[N];
	struct reaper rp = { 0 };
	char *buf = malloc(N * 4096);
	caio_ctx *ctx = NULL;
	pthread_t tid;
	int fd = -1, i, efd;

	memset(res, 0, sizeof(res));
	CHECK_SYS(buf, "malloc");
	t_pattern(buf, N * 4096, 12);
	fd = open_tmp("reap-thread", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(ctx_new(&ctx, 256, 0), 0, "caio_ctx_new");
	efd = caio_ctx_eventfd(ctx);
	CHECK(efd >= 0, "caio_ctx_eventfd returned %d", efd);
	CHECK_EQ(submit_writes(ctx, fd, buf, N, res), 0, "submitting %d writes", N);
	CHECK_EQ(caio_flush(ctx), N, "caio_flush");
	/* Completions are ready now, yet nothing may have called back. */
	CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1, "eventfd readable after the flush");
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].calls, 0, "callbacks of write #%d before any reap", i);

	rp.ctx = ctx;
	rp.res = res;
	rp.n = N;
	CHECK_SYS(pthread_create(&tid, NULL, reaper_main, &rp) == 0, "pthread_create");
	pthread_join(tid, NULL);
	CHECK_EQ(rp.err, 0, "the reaper thread's wait");
	for (i = 0; i < N; i++) {
		CHECK_EQ(res[i].calls, 1, "callbacks of write #%d", i);
		CHECK_EQ(res[i].res, 4096, "write #%d result", i);
		CHECK(pthread_equal(res[i].thread, rp.self),
		      "callback of write #%d ran on another thread than the reaper", i);
		CHECK(res[i].inside_reap, "callback of write #%d ran outside caio_wait", i);
	}
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(buf);
}

static void case_eventfd(void)
{
	enum { N = 3 };
	struct result res[N];
	char buf[N][512];
	caio_ctx *ctx = NULL;
	int fd = -1, efd = -1, i, round, done, n;
	int64_t deadline;

	memset(res, 0, sizeof(res));
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("eventfd", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 13), 0, "writing the file");
	efd = caio_ctx_eventfd(ctx);
	CHECK(efd >= 0, "caio_ctx_eventfd returned %d", efd);
	CHECK_EQ(caio_ctx_eventfd(ctx), efd, "caio_ctx_eventfd a second time");
	CHECK_EQ(t_poll_readable(efd, 0), 0, "eventfd readable with nothing submitted");

	for (round = 0; round < 3; round++) {
		memset(&res[0], 0, sizeof(res[0]));
		CHECK_EQ(caio_read(ctx, fd, buf[0], 512, 512 * round, record_cb, &res[0], NULL),
			 0, "caio_read (round %d)", round);
		CHECK_EQ(t_poll_readable(efd, 0), 0, "eventfd readable before the flush (round %d)",
			 round);
		CHECK_EQ(caio_flush(ctx), 1, "caio_flush (round %d)", round);
		CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1,
			 "poll() woken by the completion (round %d)", round);
		CHECK_EQ(res[0].calls, 0, "callbacks before caio_reap (round %d)", round);
		CHECK_EQ(reap(ctx, 0), 1, "caio_reap after the eventfd fired (round %d)", round);
		CHECK_EQ(res[0].res, 512, "read result (round %d)", round);
		CHECK_EQ(t_poll_readable(efd, 0), 0, "eventfd still readable after caio_reap "
			 "took everything (round %d)", round);
	}

	/* Reaping one at a time: the eventfd stays readable while any waits. */
	memset(res, 0, sizeof(res));
	for (i = 0; i < N; i++)
		CHECK_EQ(caio_read(ctx, fd, buf[i], 512, 512 * i, record_cb, &res[i], NULL), 0,
			 "caio_read #%d", i);
	CHECK_EQ(caio_flush(ctx), N, "caio_flush");
	deadline = t_now_ms() + T_LOST_MS;
	for (done = 0; done < N && t_now_ms() < deadline;) {
		CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1,
			 "eventfd readable with %d of %d completions not reaped", N - done, N);
		n = reap(ctx, 1);
		CHECK(n == 0 || n == 1, "caio_reap(max 1) returned %d", n);
		done += n;
	}
	CHECK_EQ(done, N, "completions reaped one at a time");
	CHECK_EQ(t_poll_readable(efd, 0), 0, "eventfd readable after everything was reaped");
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].res, 512, "read #%d result", i);
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/* CAIO_CTX_LAZY_EVENTFD: the eventfd may stay readable after a reap that
 * ran callbacks, but never loses a wakeup, and an empty reap clears it. */
static void case_eventfd_lazy(void)
{
	enum { N = 8, ROUNDS = 50 };
	struct caio_params p = { .flags = CAIO_CTX_LAZY_EVENTFD };
	struct caio_params bad = { .flags = 1u << 31 };
	struct result res[N];
	char buf[N][512];
	caio_ctx *ctx = NULL, *other = NULL;
	int fd = -1, efd, i, round, done, n;
	int64_t deadline;

	CHECK_EQ(ctx_new_params(&other, &bad), -EINVAL, "caio_ctx_new with an unknown flag");
	CHECK_EQ(ctx_new_params(&ctx, &p), 0, "caio_ctx_new(CAIO_CTX_LAZY_EVENTFD)");
	fd = open_tmp("eventfd-lazy", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 17), 0, "writing the file");
	efd = caio_ctx_eventfd(ctx);
	CHECK(efd >= 0, "caio_ctx_eventfd returned %d", efd);
	for (round = 0; round < ROUNDS; round++) {
		memset(res, 0, sizeof(res));
		for (i = 0; i < N; i++)
			CHECK_EQ(caio_read(ctx, fd, buf[i], 512, 512 * i, record_cb, &res[i], NULL),
				 0, "caio_read #%d (round %d)", i, round);
		CHECK_EQ(caio_flush(ctx), N, "caio_flush (round %d)", round);
		/* Reap at once, as an event loop does after its flush, then only
		 * when poll() says so: a lost wakeup leaves poll() timing out. */
		done = reap(ctx, round % 2 ? 1 : 0);
		CHECK(done >= 0, "caio_reap returned %d", done);
		deadline = t_now_ms() + T_LOST_MS;
		while (done < N && t_now_ms() < deadline) {
			CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1,
				 "eventfd not readable with %d of %d completions waiting (round %d)",
				 N - done, N, round);
			n = reap(ctx, round % 2 ? 1 : 0);
			CHECK(n >= 0, "caio_reap returned %d", n);
			done += n;
		}
		CHECK_EQ(done, N, "completions reaped (round %d)", round);
		for (i = 0; i < N; i++)
			CHECK_EQ(res[i].res, 512, "read #%d result (round %d)", i, round);
		/* Possibly readable still; the empty reap clears it. */
		CHECK_EQ(reap(ctx, 0), 0, "caio_reap with nothing left (round %d)", round);
		CHECK_EQ(t_poll_readable(efd, 0), 0,
			 "eventfd readable after an empty reap (round %d)", round);
	}
out:
	destroy(other);
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

static void case_wait_timeout(void)
{
	struct stuck s;
	caio_ctx *ctx = NULL;
	int64_t start, elapsed;

	stuck_init(&s);
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	start = t_now_ms();
	CHECK_EQ(wait_ns(ctx, 1, 5000 * MS_NS), 0, "caio_wait(1, 5 s) with nothing pending");
	CHECK(t_now_ms() - start < 2500, "caio_wait with nothing pending blocked %lld ms",
	      (long long)(t_now_ms() - start));
	CHECK_EQ(wait_ns(ctx, 0, 0), 0, "caio_wait(0, 0)");
	if (!stuck_possible()) {
		t_note("sync: nothing can stay in flight, only the empty waits were checked");
		goto out;
	}
	CHECK_EQ(stuck_submit(ctx, &s, "fifo"), 0, "submitting a request that waits");
	start = t_now_ms();
	CHECK_EQ(wait_ns(ctx, 1, 100 * MS_NS), 0, "caio_wait(1, 100 ms) with nothing completing");
	elapsed = t_now_ms() - start;
	CHECK(elapsed >= 90 && elapsed < 5000,
	      "caio_wait(1, 100 ms) returned after %lld ms", (long long)elapsed);
	CHECK_EQ(s.r.calls, 0, "callbacks of the waiting request");
	start = t_now_ms();
	CHECK_EQ(reap(ctx, 0), 0, "caio_reap with only a waiting request");
	CHECK_EQ(wait_ns(ctx, 1, 0), 0, "caio_wait(1, 0) polls");
	CHECK(t_now_ms() - start < 1000, "caio_wait(1, 0) blocked %lld ms",
	      (long long)(t_now_ms() - start));
	stuck_release(&s);
	CHECK(stuck_result_ok(&s, complete(ctx, &s.r)),
	      "result of the released request: %lld (%s)", (long long)s.r.res,
	      t_errno_name(s.r.res));
out:
	stuck_release(&s);
	destroy(ctx);
	stuck_cleanup(&s);
}

/* caio_wait flushes first and returns how many callbacks it ran. */
static void case_wait_count(void)
{
	enum { N = 5 };
	struct result res[N];
	char buf[N][100];
	caio_ctx *ctx = NULL;
	int fd = -1, i, n, got = 0;
	int64_t start;

	memset(res, 0, sizeof(res));
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	fd = open_tmp("wait-count", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 1000, 18), 0, "writing the file");
	for (i = 0; i < N; i++)
		CHECK_EQ(caio_read(ctx, fd, buf[i], 100, 100 * i, record_cb, &res[i], NULL), 0,
			 "caio_read #%d", i);
	/* Nothing was flushed: caio_wait must do it, or it would wait forever. */
	while (got < N) {
		n = wait_ns(ctx, N - got, (int64_t)T_LOST_MS * MS_NS);
		CHECK(n > 0, "caio_wait(%d) of unflushed requests returned %d (%s)", N - got, n,
		      t_errno_name(n));
		got += n;
	}
	CHECK_EQ(got, N, "callbacks counted by caio_wait");
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].res, 100, "read #%d result", i);

	/* min_nr above what is pending: return once those ran. */
	memset(res, 0, sizeof(res));
	for (i = 0; i < 2; i++)
		CHECK_EQ(caio_read(ctx, fd, buf[i], 100, 0, record_cb, &res[i], NULL), 0,
			 "caio_read #%d", i);
	start = t_now_ms();
	for (got = 0; got < 2;) {
		n = wait_ns(ctx, 10, (int64_t)T_LOST_MS * MS_NS);
		CHECK(n > 0, "caio_wait(10) with 2 pending returned %d (%s)", n, t_errno_name(n));
		got += n;
	}
	CHECK(t_now_ms() - start < T_LOST_MS / 2,
	      "caio_wait(10) with only 2 pending waited %lld ms for more",
	      (long long)(t_now_ms() - start));
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/* The metadata cases: a context, the temp dir and the ops sent to the pool. */
struct meta {
	caio_ctx *ctx;
	int dirfd;
	unsigned routed;	/* ops the backend does not run natively */
	struct caio_stats before;
};

static int meta_setup(struct meta *m)
{
	int err;

	memset(m, 0, sizeof(*m));
	m->dirfd = open(t_path(""), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (m->dirfd < 0)
		return -errno;
	err = ctx_new(&m->ctx, 0, 0);
	return err < 0 ? err : get_stats(m->ctx, &m->before);
}

/* Every op caio_ctx_op_native() calls routed must show in the stats. */
static int meta_check_routed(struct meta *m)
{
	struct caio_stats after;

	if (!kernel_backend())
		return 0;
	CHECK_EQ(get_stats(m->ctx, &after), 0, "caio_ctx_stats");
	CHECK_EQ(after.fallback_requests - m->before.fallback_requests, m->routed,
		 "stats.fallback_requests: ops with caio_ctx_op_native() == 0");
	return 0;
out:
	return -1;
}

static void meta_cleanup(struct meta *m)
{
	destroy(m->ctx);
	if (m->dirfd >= 0)
		close(m->dirfd);
}

/* Wait for a submitted metadata op; count it if it went to the pool. */
static int64_t meta_done(struct meta *m, int submit_ret, enum caio_op op, struct result *r)
{
	if (submit_ret < 0)
		return submit_ret;
	if (caio_ctx_op_native(m->ctx, op) == 0)
		m->routed++;
	return complete(m->ctx, r);
}

#define META(m, op, call, r) (memset((r), 0, sizeof(*(r))), meta_done((m), (call), (op), (r)))

/* mkdirat, openat, statx, ftruncate and close give the syscalls' results. */
static void case_metadata_files(void)
{
	struct meta m;
	struct result r;
	struct statx stx;
	struct stat st;
	int fd = -1;

	CHECK_EQ(meta_setup(&m), 0, "setting up");
	CHECK_EQ(META(&m, CAIO_OP_MKDIRAT, caio_mkdirat(m.ctx, m.dirfd, "files", 0750, record_cb,
							 &r, NULL), &r), 0, "mkdirat(files)");
	CHECK_EQ(r.op, CAIO_OP_MKDIRAT, "caio_req_op() in the mkdirat callback");
	CHECK_EQ(META(&m, CAIO_OP_MKDIRAT, caio_mkdirat(m.ctx, m.dirfd, "files", 0750, record_cb,
							 &r, NULL), &r), -EEXIST, "mkdirat(files) again");
	CHECK_SYS(fstatat(m.dirfd, "files", &st, 0) == 0, "fstatat(files)");
	CHECK(S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0750,
	      "files: expected a directory with mode 0750, got 0%o", st.st_mode);

	fd = (int)META(&m, CAIO_OP_OPENAT, caio_openat(m.ctx, m.dirfd, "files/f",
			 O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640, record_cb, &r, NULL), &r);
	CHECK(fd >= 0, "openat(files/f, O_CREAT|O_EXCL): expected an fd, got %d (%s)", fd,
	      t_errno_name(fd));
	CHECK_EQ(r.op, CAIO_OP_OPENAT, "caio_req_op() in the openat callback");
	CHECK_EQ(pwrite(fd, "hello", 5, 0), 5, "pwrite to the fd openat returned");
	CHECK_EQ(META(&m, CAIO_OP_OPENAT, caio_openat(m.ctx, m.dirfd, "files/f",
			 O_RDWR | O_CREAT | O_EXCL, 0640, record_cb, &r, NULL), &r),
		 -EEXIST, "openat(files/f, O_CREAT|O_EXCL) again");
	CHECK_EQ(META(&m, CAIO_OP_OPENAT, caio_openat(m.ctx, m.dirfd, "files/none", O_RDONLY, 0,
						       record_cb, &r, NULL), &r),
		 -ENOENT, "openat(files/none)");

	memset(&stx, 0, sizeof(stx));
	CHECK_EQ(META(&m, CAIO_OP_STATX, caio_statx(m.ctx, m.dirfd, "files/f", 0, STATX_BASIC_STATS,
						     &stx, record_cb, &r, NULL), &r),
		 0, "statx(files/f)");
	CHECK(stx.stx_mask & STATX_SIZE, "statx did not fill in the size");
	CHECK_EQ(stx.stx_size, 5, "statx size");
	CHECK(S_ISREG(stx.stx_mode) && (stx.stx_mode & 07777) == 0640,
	      "statx mode: expected a regular file 0640, got 0%o", stx.stx_mode);
	CHECK_EQ(META(&m, CAIO_OP_STATX, caio_statx(m.ctx, m.dirfd, "files/none", 0,
						     STATX_BASIC_STATS, &stx, record_cb, &r, NULL), &r),
		 -ENOENT, "statx(files/none)");

	CHECK_EQ(META(&m, CAIO_OP_FTRUNCATE, caio_ftruncate(m.ctx, fd, 12345, record_cb, &r, NULL),
		      &r), 0, "ftruncate(12345)");
	CHECK_EQ(file_size(fd), 12345, "size after ftruncate");
	CHECK_EQ(META(&m, CAIO_OP_CLOSE, caio_close(m.ctx, fd, record_cb, &r, NULL), &r), 0,
		 "close(fd)");
	CHECK(fcntl(fd, F_GETFD) < 0 && errno == EBADF, "fd %d still open after caio_close", fd);
	fd = -1;
	CHECK_EQ(meta_check_routed(&m), 0, "pool accounting");
out:
	meta_cleanup(&m);
	if (fd >= 0)
		close(fd);
}

/* symlinkat, linkat, renameat (RENAME_NOREPLACE) and unlinkat. */
static void case_metadata_names(void)
{
	struct meta m;
	struct result r;
	struct stat st;
	char link[64];
	ssize_t n;
	int fd = -1;

	CHECK_EQ(meta_setup(&m), 0, "setting up");
	CHECK_SYS(mkdirat(m.dirfd, "names", 0755) == 0, "mkdirat(names)");
	fd = openat(m.dirfd, "names/f", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	CHECK_SYS(fd >= 0, "openat(names/f)");

	CHECK_EQ(META(&m, CAIO_OP_SYMLINKAT, caio_symlinkat(m.ctx, "f", m.dirfd, "names/l",
							     record_cb, &r, NULL), &r),
		 0, "symlinkat(f, names/l)");
	n = readlinkat(m.dirfd, "names/l", link, sizeof(link) - 1);
	CHECK(n == 1 && link[0] == 'f', "readlink(names/l) did not give \"f\"");
	CHECK_EQ(META(&m, CAIO_OP_LINKAT, caio_linkat(m.ctx, m.dirfd, "names/f", m.dirfd, "names/h",
						       0, record_cb, &r, NULL), &r),
		 0, "linkat(names/f, names/h)");
	CHECK_SYS(fstat(fd, &st) == 0, "fstat");
	CHECK_EQ(st.st_nlink, 2, "link count after linkat");

	CHECK_EQ(META(&m, CAIO_OP_RENAMEAT, caio_renameat(m.ctx, m.dirfd, "names/h", m.dirfd,
			 "names/f", RENAME_NOREPLACE, record_cb, &r, NULL), &r),
		 -EEXIST, "renameat(names/h, names/f, RENAME_NOREPLACE)");
	CHECK_EQ(META(&m, CAIO_OP_RENAMEAT, caio_renameat(m.ctx, m.dirfd, "names/h", m.dirfd,
			 "names/g", RENAME_NOREPLACE, record_cb, &r, NULL), &r),
		 0, "renameat(names/h, names/g, RENAME_NOREPLACE)");
	CHECK(faccessat(m.dirfd, "names/h", F_OK, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
	      "names/h still exists after the rename");
	CHECK_SYS(faccessat(m.dirfd, "names/g", F_OK, AT_SYMLINK_NOFOLLOW) == 0,
		  "names/g after the rename");

	CHECK_EQ(META(&m, CAIO_OP_UNLINKAT, caio_unlinkat(m.ctx, m.dirfd, "names", AT_REMOVEDIR,
							   record_cb, &r, NULL), &r),
		 -ENOTEMPTY, "unlinkat(names, AT_REMOVEDIR) of a full directory");
	CHECK_EQ(META(&m, CAIO_OP_UNLINKAT, caio_unlinkat(m.ctx, m.dirfd, "names/g", 0, record_cb,
							   &r, NULL), &r),
		 0, "unlinkat(names/g)");
	CHECK_EQ(META(&m, CAIO_OP_UNLINKAT, caio_unlinkat(m.ctx, m.dirfd, "names/g", 0, record_cb,
							   &r, NULL), &r),
		 -ENOENT, "unlinkat(names/g) again");
	CHECK_EQ(meta_check_routed(&m), 0, "pool accounting");
out:
	meta_cleanup(&m);
	if (fd >= 0)
		close(fd);
}

/*
 * splice: a pipe's bytes into a file at an offset (how caiofs moves FUSE
 * write data), a file's into a pipe, a short count when the pipe holds
 * less, 0 at EOF, and the kernel's refusals as results.
 */
static void case_splice(void)
{
	enum { LEN = 3 * 4096 + 1000, AT = 4096 };
	char *data = NULL, *back = NULL;
	struct caio_stats st;
	struct result r;
	int pipefd[2] = { -1, -1 }, fd = -1, afd = -1;
	struct meta m;
	int i;

	CHECK_EQ(meta_setup(&m), 0, "setting up");
	data = malloc(LEN);
	back = malloc(LEN);
	CHECK(data && back, "malloc");
	for (i = 0; i < LEN; i++)
		data[i] = (char)(i * 7 + 3);
	CHECK_SYS(pipe2(pipefd, O_CLOEXEC) == 0, "pipe2");
	CHECK_SYS((fd = open_tmp("splice", O_RDWR | O_TRUNC)) >= 0, "open splice");
	CHECK_EQ(write(pipefd[1], data, LEN), LEN, "filling the pipe");

	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, pipefd[0], -1, fd, AT, LEN,
			SPLICE_F_MOVE, record_cb, &r, NULL), &r), LEN, "splice pipe -> file");
	CHECK_EQ(r.op, CAIO_OP_SPLICE, "caio_req_op() in the splice callback");
	CHECK_EQ(file_size(fd), AT + LEN, "file size after the splice");
	CHECK_EQ(pread(fd, back, LEN, AT), LEN, "reading the spliced bytes back");
	CHECK(memcmp(back, data, LEN) == 0, "the file holds other bytes than the pipe had");
	CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0, "the file position moved (an offset was given)");
	CHECK_EQ(get_stats(m.ctx, &st), 0, "caio_ctx_stats");
	CHECK_EQ(st.bytes_written - m.before.bytes_written, LEN, "stats.bytes_written");

	/* File to pipe, from an offset; then the pipe holds less than asked. */
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, fd, AT + 100, pipefd[1], -1, 500, 0,
			record_cb, &r, NULL), &r), 500, "splice file -> pipe");
	memset(back, 0, LEN);
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, pipefd[0], -1, fd, 0, 4096, 0,
			record_cb, &r, NULL), &r), 500, "splice of a pipe holding less: short");
	CHECK_EQ(pread(fd, back, 500, 0), 500, "reading them back");
	CHECK(memcmp(back, data + 100, 500) == 0, "file -> pipe -> file changed the bytes");
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, fd, AT + LEN, pipefd[1], -1, 100, 0,
			record_cb, &r, NULL), &r), 0, "splice from EOF");

	/* What the kernel refuses comes back as the result. */
	CHECK_SYS((afd = open_tmp("splice", O_WRONLY | O_APPEND)) >= 0, "open O_APPEND");
	CHECK_EQ(write(pipefd[1], "x", 1), 1, "write to the pipe");
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, pipefd[0], -1, afd, 0, 1, 0,
			record_cb, &r, NULL), &r), -EINVAL, "splice into an O_APPEND file");
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, fd, 0, afd, 0, 1, 0,
			record_cb, &r, NULL), &r), -EINVAL, "splice with no pipe");
	CHECK_EQ(META(&m, CAIO_OP_SPLICE, caio_splice(m.ctx, pipefd[0], -1, 1 << 20, 0, 1, 0,
			record_cb, &r, NULL), &r), -EBADF, "splice into a closed descriptor");
	CHECK_EQ(caio_splice(m.ctx, -1, -1, fd, 0, 1, 0, record_cb, &r, NULL), -EBADF,
		 "caio_splice(fd_in -1)");
	CHECK_EQ(caio_splice(m.ctx, pipefd[0], -1, fd, -2, 1, 0, record_cb, &r, NULL), -EINVAL,
		 "caio_splice(off_out -2)");
	CHECK_EQ(caio_ctx_pending(m.ctx), 0, "requests left after refused submissions");
	CHECK_EQ(meta_check_routed(&m), 0, "pool accounting");
out:
	meta_cleanup(&m);
	free(data);
	free(back);
	for (i = 0; i < 2; i++)
		if (pipefd[i] >= 0)
			close(pipefd[i]);
	if (fd >= 0)
		close(fd);
	if (afd >= 0)
		close(afd);
}

static void case_odirect(void)
{
	enum { N = 16, BLOCK = 4096 };
	struct result w = { 0 }, res[N];
	char *wbuf = NULL, *rbuf = NULL;
	caio_ctx *ctx = NULL;
	int fd = -1, i;

	memset(res, 0, sizeof(res));
	fd = open_tmp("odirect", O_RDWR | O_TRUNC | O_DIRECT);
	if (fd < 0 && errno == EINVAL) {
		t_skip_case("O_DIRECT is not supported on %s", t_path(""));
		return;
	}
	CHECK_SYS(fd >= 0, "open(O_DIRECT)");
	CHECK_SYS(posix_memalign((void **)&wbuf, BLOCK, N * BLOCK) == 0, "posix_memalign");
	CHECK_SYS(posix_memalign((void **)&rbuf, BLOCK, N * BLOCK) == 0, "posix_memalign");
	t_pattern(wbuf, N * BLOCK, 14);
	memset(rbuf, 0, N * BLOCK);
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");

	CHECK_EQ(caio_write(ctx, fd, wbuf, N * BLOCK, 0, record_cb, &w, NULL), 0,
		 "caio_write O_DIRECT");
	CHECK_EQ(complete(ctx, &w), N * BLOCK, "O_DIRECT write result");
	for (i = 0; i < N; i++)
		CHECK_EQ(caio_read(ctx, fd, rbuf + i * BLOCK, BLOCK, (int64_t)i * BLOCK,
				   record_cb, &res[i], NULL), 0, "caio_read O_DIRECT #%d", i);
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the O_DIRECT reads");
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].res, BLOCK, "O_DIRECT read #%d result", i);
	CHECK(memcmp(wbuf, rbuf, N * BLOCK) == 0, "O_DIRECT data read back differs");
	memset(&w, 0, sizeof(w));
	CHECK_EQ(caio_read(ctx, fd, rbuf, 2 * BLOCK, (N - 1) * BLOCK, record_cb, &w, NULL), 0,
		 "caio_read O_DIRECT across EOF");
	CHECK_EQ(complete(ctx, &w), BLOCK, "O_DIRECT read across EOF (short)");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(wbuf);
	free(rbuf);
}

/*
 * One descriptor number holds a buffered file, then (dup2) an O_DIRECT
 * one, then the buffered one again.  Backends remember the descriptors
 * they saw buffered (caio__fd_buffered): a stale memory may cost speed,
 * never a result.  Each read is flushed alone and then waited for, as a
 * callback's next request is, so that the thread backend tries it inline.
 */
static void case_fd_reuse(void)
{
	enum { BLOCK = 4096 };
	char *buf = NULL;
	caio_ctx *ctx = NULL;
	int num = -1, plain = -1, direct = -1, fd;

	plain = open_tmp("reuse-plain", O_RDWR | O_TRUNC);
	fd = open_tmp("reuse-direct", O_RDWR | O_TRUNC);
	CHECK_SYS(plain >= 0 && fd >= 0, "open");
	CHECK_EQ(setup_file(plain, BLOCK, 31), 0, "writing the buffered file");
	CHECK_EQ(setup_file(fd, BLOCK, 32), 0, "writing the O_DIRECT file");
	close(fd);
	direct = open_tmp("reuse-direct", O_RDWR | O_DIRECT);
	if (direct < 0 && errno == EINVAL) {
		t_skip_case("O_DIRECT is not supported on %s", t_path(""));
		goto out;
	}
	CHECK_SYS(direct >= 0, "open(O_DIRECT)");
	CHECK_SYS(posix_memalign((void **)&buf, BLOCK, 2 * BLOCK) == 0, "posix_memalign");
	num = dup(plain);
	CHECK_SYS(num >= 0, "dup");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	for (int round = 0; round < 3; round++) {
		bool is_direct = round == 1;
		unsigned seed = is_direct ? 32 : 31;
		struct result r;
		int64_t want;

		if (round)
			CHECK_SYS(dup2(is_direct ? direct : plain, num) == num, "dup2");
		for (int i = 0; i < 4; i++) {
			memset(&r, 0, sizeof(r));
			memset(buf, 0, BLOCK);
			CHECK_EQ(caio_read(ctx, num, buf, BLOCK, 0, record_cb, &r, NULL), 0,
				 "caio_read, round %d", round);
			CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
			CHECK_EQ(complete(ctx, &r), BLOCK, "read #%d of round %d (%s)", i, round,
				 is_direct ? "O_DIRECT" : "buffered");
			CHECK(t_pattern_mismatch(buf, BLOCK, seed) < 0,
			      "read #%d of round %d: another file's data", i, round);
		}
		/* misaligned: the answer of pread(2) on the same file, which
		 * O_DIRECT on ext4 or XFS refuses (tmpfs and FUSE take it) */
		want = pread(num, buf + 1, BLOCK, 0);
		want = want < 0 ? -errno : want;
		CHECK(!is_direct || want == -EINVAL || want == BLOCK,
		      "pread misaligned on the O_DIRECT file: %lld", (long long)want);
		CHECK(is_direct || want == BLOCK, "pread misaligned on the buffered file: %lld",
		      (long long)want);
		memset(&r, 0, sizeof(r));
		CHECK_EQ(caio_read(ctx, num, buf + 1, BLOCK, 0, record_cb, &r, NULL), 0,
			 "caio_read misaligned, round %d", round);
		CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
		CHECK_EQ(complete(ctx, &r), want, "misaligned read of round %d (%s)", round,
			 is_direct ? "O_DIRECT" : "buffered");
	}
out:
	destroy(ctx);
	if (num >= 0)
		close(num);
	if (plain >= 0)
		close(plain);
	if (direct >= 0)
		close(direct);
	free(buf);
}

/*
 * Files without FMODE_NOWAIT make RWF_NOWAIT fail with EOPNOTSUPP: procfs,
 * FUSE and tmpfs (a memfd here).  Linux AIO refuses such a request in
 * io_submit and stops there: the linux backend must send a batch of them to
 * the pool after one refused call, not one call per request, and none at
 * all the next time.  The thread backend notes the refusal too and then
 * reads such files in runs on its workers (procfs, FUSE: they may block),
 * or like page-cache hits (tmpfs, whose reads copy memory).  Every backend
 * reads what pread(2) reads.  When the descriptor number then holds a pipe,
 * its read is a stream read again (the pool's pread would say ESPIPE).
 */
static int nowait_refused_rounds(caio_ctx *ctx, int num, const char *what, size_t len,
				 size_t step, char *bufs)
{
	enum { N = 64 };
	struct caio_stats before, after;
	struct result res[N];
	char *expect = malloc(len);

	CHECK_SYS(expect != NULL, "malloc");
	for (int round = 0; round < 2; round++) {
		memset(res, 0, sizeof(res));
		memset(bufs, 0, N * len);
		CHECK_EQ(get_stats(ctx, &before), 0, "caio_ctx_stats");
		for (int i = 0; i < N; i++)
			CHECK_EQ(caio_read(ctx, num, bufs + i * len, len, i * step, record_cb,
					   &res[i], NULL), 0, "caio_read #%d of %s", i, what);
		CHECK_EQ(caio_flush(ctx), N, "caio_flush of %d reads of %s", N, what);
		CHECK_EQ(wait_idle(ctx), 0, "waiting for the reads of %s", what);
		CHECK_EQ(get_stats(ctx, &after), 0, "caio_ctx_stats");
		for (int i = 0; i < N; i++) {
			ssize_t want = pread(num, expect, len, i * step);

			CHECK(want >= 0, "pread %s: %s", what, strerror(errno));
			CHECK_EQ(res[i].res, want, "read #%d of %s, round %d", i, what, round);
			CHECK(memcmp(bufs + i * len, expect, want) == 0,
			      "read #%d of %s, round %d: not what pread read", i, what, round);
		}
		if (backend == CAIO_BACKEND_LINUX) {
			CHECK_EQ(after.kernel_refusals - before.kernel_refusals, round ? 0 : 1,
				 "refused io_submit calls for %s in round %d", what, round);
			CHECK_EQ(after.fallback_requests - before.fallback_requests, N,
				 "reads of %s sent to the pool in round %d", what, round);
		}
	}
	free(expect);
	return 0;
out:
	free(expect);
	return -1;
}

static void case_nowait_refused(void)
{
	enum { N = 64, BLOCK = 4096 };
	struct result r = { 0 };
	char *bufs = NULL, pipebuf[64];
	caio_ctx *ctx = NULL;
	int num = -1, mem = -1, p[2] = { -1, -1 };

	num = open("/proc/version", O_RDONLY | O_CLOEXEC);
	if (num < 0) {
		t_skip_case("/proc/version: %s", strerror(errno));
		goto out;
	}
	if (!refuses_nowait(num)) {
		t_skip_case("/proc/version takes RWF_NOWAIT on this kernel");
		goto out;
	}
	bufs = malloc(N * BLOCK);
	CHECK_SYS(bufs != NULL, "malloc");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	/* procfs: every read at offset 0 (later ones past the end read 0) */
	CHECK_EQ(nowait_refused_rounds(ctx, num, "/proc/version", 512, 0, bufs), 0,
		 "/proc/version");
	/* tmpfs: 64 reads of 4 KiB, the last ones short or past the end */
	mem = memfd_create("caio-nowait-refused", MFD_CLOEXEC);
	CHECK_SYS(mem >= 0, "memfd_create");
	CHECK_EQ(setup_file(mem, (N - 2) * BLOCK + 100, 41), 0, "writing the memfd");
	if (refuses_nowait(mem))
		CHECK_EQ(nowait_refused_rounds(ctx, mem, "a memfd", BLOCK, BLOCK, bufs), 0,
			 "memfd");
	else
		t_note("a memfd takes RWF_NOWAIT on this kernel: only /proc/version tested");
	/* the procfs file's number now holds a pipe */
	CHECK_SYS(pipe2(p, O_CLOEXEC) == 0, "pipe2");
	CHECK_SYS(write(p[1], "pipe!", 5) == 5, "write to the pipe");
	CHECK_SYS(dup2(p[0], num) == num, "dup2");
	CHECK_EQ(caio_read(ctx, num, pipebuf, sizeof(pipebuf), 0, record_cb, &r, NULL), 0,
		 "caio_read of the pipe");
	CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
	CHECK_EQ(complete(ctx, &r), kernel_backend() ? 5 : -ESPIPE,
		 "read of the pipe that took the descriptor number");
	if (kernel_backend())
		CHECK(memcmp(pipebuf, "pipe!", 5) == 0, "the pipe's data");
out:
	destroy(ctx);
	if (num >= 0)
		close(num);
	if (mem >= 0)
		close(mem);
	if (p[0] >= 0)
		close(p[0]);
	if (p[1] >= 0)
		close(p[1]);
	free(bufs);
}

/* ---- reads that would wait (Linux AIO: RWF_NOWAIT) ------------------------ */

/* A time limit that turns a hung flush into a failure: unless stopped
 * within T_LOST_MS, it unblocks the pipe the flush waits on (writes a byte
 * to a write end, or reads a pipeful from a read end). */
struct watchdog {
	pthread_t thread;
	int done[2];		/* written when the flush returned */
	int write_fd, read_fd;	/* what to unblock, or -1 */
	bool fired;
};

static void *watchdog_main(void *arg)
{
	struct watchdog *w = arg;
	char buf[65536];

	if (t_poll_readable(w->done[0], T_LOST_MS) != 0)
		return NULL;
	w->fired = true;
	if (w->write_fd >= 0 && write(w->write_fd, "w", 1) != 1)
		t_note("watchdog: cannot write to the pipe");
	if (w->read_fd >= 0 && read(w->read_fd, buf, sizeof(buf)) <= 0)
		t_note("watchdog: cannot read from the pipe");
	return NULL;
}

static int watchdog_start(struct watchdog *w, int write_fd, int read_fd)
{
	w->write_fd = write_fd;
	w->read_fd = read_fd;
	w->fired = false;
	if (pipe2(w->done, O_CLOEXEC) < 0)
		return -errno;
	if (pthread_create(&w->thread, NULL, watchdog_main, w)) {
		close(w->done[0]);
		close(w->done[1]);
		return -EAGAIN;
	}
	return 0;
}

static void watchdog_stop(struct watchdog *w)
{
	if (write(w->done[1], "d", 1) != 1)
		t_note("watchdog: cannot stop it");
	pthread_join(w->thread, NULL);
	close(w->done[0]);
	close(w->done[1]);
}

/*
 * A read of an empty pipe must not block the submitting call: Linux AIO
 * without RWF_NOWAIT waits inside io_submit until data arrives, which hangs
 * an event loop forever when the writer is that loop.  Both kernel backends
 * wait in the kernel instead (a poll), and the read completes once data is
 * written, with what read(2) returns on a pipe: the bytes available (the
 * offset is ignored).  A waiting read can be cancelled and consumes nothing.
 * The thread pool answers ESPIPE (pread on a pipe), so only uring and linux
 * run this case.
 */
static void case_pipe_read(void)
{
	struct result r = { 0 }, c = { 0 };
	struct watchdog w;
	bool watching = false;
	caio_req *req = NULL;
	caio_ctx *ctx = NULL;
	int fds[2] = { -1, -1 };
	char buf[16] = "", byte;
	int ret;

	if (!kernel_backend()) {
		t_skip_case("%s reads a pipe with pread, which answers ESPIPE", backend_name);
		return;
	}
	CHECK_SYS(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(caio_read(ctx, fds[0], buf, sizeof(buf), 0, record_cb, &r, NULL), 0,
		 "caio_read of an empty pipe");
	CHECK_EQ(watchdog_start(&w, fds[1], -1), 0, "starting the watchdog thread");
	watching = true;
	ret = caio_flush(ctx);
	watchdog_stop(&w);
	watching = false;
	CHECK(!w.fired, "caio_flush blocked for %d ms on a read of an empty pipe", T_LOST_MS);
	CHECK_EQ(ret, 1, "caio_flush");
	CHECK_EQ(wait_ns(ctx, 1, 0), 0, "callbacks before anything was written");
	CHECK_EQ(r.calls, 0, "the read completed before anything was written (res %lld)",
		 (long long)r.res);
	CHECK_EQ(caio_ctx_pending(ctx), 1, "pending while the pipe is empty");
	CHECK_SYS(write(fds[1], "hello", 5) == 5, "write to the pipe");
	CHECK_EQ(complete(ctx, &r), 5, "pipe read result: the bytes available");
	CHECK(memcmp(buf, "hello", 5) == 0, "pipe read data: '%.5s'", buf);

	/* Cancel a read that waits: -ECANCELED, and the next byte stays. */
	CHECK_EQ(caio_read(ctx, fds[0], buf, sizeof(buf), 0, record_cb, &c, &req), 0,
		 "caio_read of an empty pipe (to cancel)");
	CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
	CHECK_EQ(wait_ns(ctx, 1, 0), 0, "callbacks of the read to cancel");
	CHECK_EQ(caio_cancel(ctx, req), -EINPROGRESS, "caio_cancel of a waiting pipe read");
	CHECK_EQ(complete(ctx, &c), -ECANCELED, "result of the cancelled pipe read");
	CHECK_SYS(write(fds[1], "x", 1) == 1, "write to the pipe");
	CHECK_EQ(read(fds[0], &byte, 1), 1, "the byte after the cancelled read");
	CHECK_EQ(byte, 'x', "the byte after the cancelled read");
out:
	if (watching)
		watchdog_stop(&w);
	destroy(ctx);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

/*
 * linux: a write to a full pipe waits in the kernel (a poll for POLLOUT)
 * instead of blocking io_submit, even on an O_NONBLOCK descriptor: the
 * backend never reports RWF_NOWAIT's -EAGAIN (io_uring, by contrast,
 * returns -EAGAIN for O_NONBLOCK files, hence linux only).  It completes
 * once a reader makes room.
 */
static void case_pipe_write_full(void)
{
	struct result r = { 0 };
	struct watchdog w;
	bool watching = false;
	caio_ctx *ctx = NULL;
	int fds[2] = { -1, -1 };
	char chunk[4096], drain[4096];
	int ret;

	if (backend != CAIO_BACKEND_LINUX) {
		t_skip_case("RWF_NOWAIT handling of the linux backend");
		return;
	}
	memset(chunk, 'p', sizeof(chunk));
	CHECK_SYS(pipe2(fds, O_CLOEXEC | O_NONBLOCK) == 0, "pipe2");
	while (write(fds[1], chunk, sizeof(chunk)) > 0)
		;
	CHECK_SYS(errno == EAGAIN, "filling the pipe");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(caio_write(ctx, fds[1], "z", 1, 0, record_cb, &r, NULL), 0,
		 "caio_write to a full pipe");
	CHECK_EQ(watchdog_start(&w, -1, fds[0]), 0, "starting the watchdog thread");
	watching = true;
	ret = caio_flush(ctx);
	watchdog_stop(&w);
	watching = false;
	CHECK(!w.fired, "caio_flush blocked for %d ms on a write to a full pipe", T_LOST_MS);
	CHECK_EQ(ret, 1, "caio_flush");
	CHECK_EQ(wait_ns(ctx, 1, 0), 0, "callbacks while the pipe is full");
	CHECK_EQ(r.calls, 0, "the write completed while the pipe was full (res %lld)",
		 (long long)r.res);
	CHECK_SYS(read(fds[0], drain, sizeof(drain)) == sizeof(drain), "read from the pipe");
	CHECK_EQ(complete(ctx, &r), 1, "write result once there is room");
out:
	if (watching)
		watchdog_stop(&w);
	destroy(ctx);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
}

/* Pages of fd's first len bytes in the page cache, or -errno. */
static int64_t cached_pages(int fd, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t pages = (len + page - 1) / page;
	unsigned char *vec = malloc(pages);
	int64_t resident = 0;
	void *map;

	if (!vec)
		return -ENOMEM;
	map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED || mincore(map, len, vec) < 0) {
		resident = -errno;
	} else {
		for (size_t i = 0; i < pages; i++)
			resident += vec[i] & 1;
	}
	if (map != MAP_FAILED)
		munmap(map, len);
	free(vec);
	return resident;
}

/*
 * A buffered read of data that is not in the page cache returns the right
 * data.  On linux it must not run inside io_submit (where it would block
 * the caller for the device): the NOWAIT read comes back -EAGAIN or short
 * and the thread pool redoes it, which fallback_requests counts.
 */
static void case_uncached_read(void)
{
	enum { LEN = 8 * MIB, N = 8, SEED = 22 };
	struct result res[N];
	struct caio_stats st;
	caio_ctx *ctx = NULL;
	char *buf = NULL;
	int64_t cached;
	int fd = -1, i;

	memset(res, 0, sizeof(res));
	fd = open_tmp("uncached", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, LEN, SEED), 0, "writing the file");
	CHECK_SYS(fsync(fd) == 0, "fsync");
	CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0, "posix_fadvise(DONTNEED)");
	cached = cached_pages(fd, LEN);
	CHECK(cached >= 0, "mincore: %s", t_errno_name(cached));
	if (cached > LEN / 4096 / 2) {
		t_skip_case("%s keeps the file cached after POSIX_FADV_DONTNEED (%lld pages)",
			    t_path(""), (long long)cached);
		goto out;
	}
	buf = malloc(LEN);
	CHECK_SYS(buf != NULL, "malloc");
	memset(buf, 0, LEN);
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	for (i = 0; i < N; i++)
		CHECK_EQ(caio_read(ctx, fd, buf + i * (LEN / N), LEN / N, (int64_t)i * (LEN / N),
				   record_cb, &res[i], NULL), 0, "caio_read #%d", i);
	CHECK_EQ(wait_idle(ctx), 0, "waiting for the reads");
	for (i = 0; i < N; i++)
		CHECK_EQ(res[i].res, LEN / N, "uncached read #%d result", i);
	CHECK_EQ(t_pattern_mismatch(buf, LEN, SEED), -1, "first byte that differs");
	CHECK_EQ(get_stats(ctx, &st), 0, "caio_ctx_stats");
	if (backend == CAIO_BACKEND_LINUX)
		CHECK(st.fallback_requests > 0,
		      "no uncached read went to the pool (fallback_requests 0): "
		      "they ran inside io_submit");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(buf);
}

/*
 * One large batch of everything at once: page-cached reads (the thread
 * backend spreads a batch like this over its workers), reads of data that
 * is not cached, writes, O_DIRECT reads and a read of a pipe that waits
 * for data (the thread and sync backends answer ESPIPE: they pread).
 * Every request completes once with its own result and data, whether the
 * caller waits with a deadline or without one (then it may run waiting
 * requests itself), and cancelling the whole batch right after its flush
 * loses and repeats nothing.
 */
enum {
	MIX_HOT = 64, MIX_HOT_LEN = 16384,	/* 1 MiB of cached reads */
	MIX_COLD = 8, MIX_COLD_LEN = 131072,
	MIX_WRITES = 16, MIX_WRITE_LEN = 4096,
	MIX_DIRECT = 8, MIX_DIRECT_LEN = 4096,
	MIX_N = MIX_HOT + MIX_COLD + MIX_WRITES + MIX_DIRECT + 1,
	MIX_SEED_HOT = 31, MIX_SEED_COLD = 32, MIX_SEED_WRITE = 33,
};

struct mix {
	int hot_fd, cold_fd, direct_fd, write_fd, pipefd[2];
	char *hot, *cold, *cold_block0, *direct, *wdata, pipebuf[16];
	struct result res[MIX_N];
	caio_req *req[MIX_N];
};

/* Queue the whole batch; requests are numbered hot, cold, writes, direct, pipe. */
static int mix_submit(caio_ctx *ctx, struct mix *m)
{
	int i, n = 0, err = 0;

	memset(m->res, 0, sizeof(m->res));
	memset(m->hot, 0, MIX_HOT * MIX_HOT_LEN);
	memset(m->cold, 0, MIX_COLD * MIX_COLD_LEN);
	memset(m->direct, 0, MIX_DIRECT * MIX_DIRECT_LEN);
	for (i = 0; i < MIX_HOT && !err; i++, n++)
		err = caio_read(ctx, m->hot_fd, m->hot + (size_t)i * MIX_HOT_LEN, MIX_HOT_LEN,
				(int64_t)i * MIX_HOT_LEN, record_cb, &m->res[n], &m->req[n]);
	for (i = 0; i < MIX_COLD && !err; i++, n++)
		err = caio_read(ctx, m->cold_fd, m->cold + (size_t)i * MIX_COLD_LEN, MIX_COLD_LEN,
				(int64_t)i * MIX_COLD_LEN, record_cb, &m->res[n], &m->req[n]);
	for (i = 0; i < MIX_WRITES && !err; i++, n++)
		err = caio_write(ctx, m->write_fd, m->wdata + (size_t)i * MIX_WRITE_LEN,
				 MIX_WRITE_LEN, (int64_t)i * MIX_WRITE_LEN, record_cb, &m->res[n],
				 &m->req[n]);
	for (i = 0; i < MIX_DIRECT && !err; i++, n++) {
		if (m->direct_fd < 0) {
			m->res[n].calls = 1;	/* not on this filesystem */
			m->res[n].res = MIX_DIRECT_LEN;
			m->req[n] = NULL;
			continue;
		}
		err = caio_read(ctx, m->direct_fd, m->direct + (size_t)i * MIX_DIRECT_LEN,
				MIX_DIRECT_LEN, (int64_t)i * MIX_DIRECT_LEN, record_cb, &m->res[n],
				&m->req[n]);
	}
	if (!err)
		err = caio_read(ctx, m->pipefd[0], m->pipebuf, sizeof(m->pipebuf), 0, record_cb,
				&m->res[n], &m->req[n]);
	return err;
}

/* Check the batch's results; cancelled: -ECANCELED is a right answer too. */
static void mix_check(struct mix *m, bool cancelled)
{
	int64_t want[MIX_N];
	int i, n;

	for (n = 0; n < MIX_HOT; n++)
		want[n] = MIX_HOT_LEN;
	for (; n < MIX_HOT + MIX_COLD; n++)
		want[n] = MIX_COLD_LEN;
	for (; n < MIX_HOT + MIX_COLD + MIX_WRITES; n++)
		want[n] = MIX_WRITE_LEN;
	for (; n < MIX_N - 1; n++)
		want[n] = MIX_DIRECT_LEN;
	want[n] = kernel_backend() ? 5 : -ESPIPE;
	for (n = 0; n < MIX_N; n++) {
		CHECK_EQ(m->res[n].calls, 1, "callbacks of request #%d", n);
		if (cancelled && m->res[n].res == -ECANCELED)
			continue;
		CHECK_EQ(m->res[n].res, want[n], "result of request #%d", n);
		if (n < MIX_HOT)
			CHECK_EQ(t_pattern_mismatch(m->hot + (size_t)n * MIX_HOT_LEN, MIX_HOT_LEN,
						    MIX_SEED_HOT + n), -1,
				 "first wrong byte of cached read #%d", n);
		else if (n < MIX_HOT + MIX_COLD) {
			i = n - MIX_HOT;
			CHECK_EQ(t_pattern_mismatch(m->cold + (size_t)i * MIX_COLD_LEN,
						    MIX_COLD_LEN, MIX_SEED_COLD + i), -1,
				 "first wrong byte of uncached read #%d", i);
		} else if (n >= MIX_HOT + MIX_COLD + MIX_WRITES && n < MIX_N - 1 &&
			   m->direct_fd >= 0) {
			/* the O_DIRECT reads cover the cold file's first block */
			i = n - MIX_HOT - MIX_COLD - MIX_WRITES;
			CHECK(memcmp(m->direct + (size_t)i * MIX_DIRECT_LEN,
				     m->cold_block0 + (size_t)i * MIX_DIRECT_LEN,
				     MIX_DIRECT_LEN) == 0, "data of O_DIRECT read #%d", i);
		} else if (n == MIX_N - 1 && kernel_backend())
			CHECK(memcmp(m->pipebuf, "hello", 5) == 0, "pipe read data '%.5s'",
			      m->pipebuf);
	}
out:
	return;
}

/* A file of count blocks of len bytes, block b holding the pattern seed + b. */
static int mix_file(const char *name, int count, size_t len, unsigned seed)
{
	char *buf = malloc(len);
	int fd = buf ? open_tmp(name, O_RDWR | O_TRUNC) : -1;

	for (int b = 0; fd >= 0 && b < count; b++) {
		t_pattern(buf, len, seed + b);
		if (pwrite(fd, buf, len, (int64_t)b * len) != (ssize_t)len) {
			close(fd);
			fd = -1;
		}
	}
	free(buf);
	return fd;
}

static void case_mixed_batch(void)
{
	struct mix m = { .hot_fd = -1, .cold_fd = -1, .direct_fd = -1, .write_fd = -1,
			 .pipefd = { -1, -1 } };
	caio_ctx *ctx = NULL;
	int cancel_res[MIX_N];
	char *back = NULL;
	int round, i, n;

	m.hot = malloc(MIX_HOT * MIX_HOT_LEN);
	m.cold = malloc(MIX_COLD * MIX_COLD_LEN);
	m.cold_block0 = malloc(MIX_COLD_LEN);
	m.wdata = malloc(MIX_WRITES * MIX_WRITE_LEN);
	back = malloc(MIX_WRITES * MIX_WRITE_LEN);
	CHECK_SYS(m.hot && m.cold && m.cold_block0 && m.wdata && back, "malloc");
	CHECK_SYS(posix_memalign((void **)&m.direct, 4096, MIX_DIRECT * MIX_DIRECT_LEN) == 0,
		  "posix_memalign");
	t_pattern(m.cold_block0, MIX_COLD_LEN, MIX_SEED_COLD);
	m.hot_fd = mix_file("mix-hot", MIX_HOT, MIX_HOT_LEN, MIX_SEED_HOT);
	m.cold_fd = mix_file("mix-cold", MIX_COLD, MIX_COLD_LEN, MIX_SEED_COLD);
	m.write_fd = open_tmp("mix-write", O_RDWR | O_TRUNC);
	CHECK_SYS(m.hot_fd >= 0 && m.cold_fd >= 0 && m.write_fd >= 0, "creating the files");
	CHECK_SYS(fsync(m.cold_fd) == 0, "fsync");
	m.direct_fd = open(t_path("mix-cold"), O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (m.direct_fd < 0)
		t_note("no O_DIRECT on %s (%s): the batch goes without", t_path(""),
		       t_errno_name(errno));
	CHECK_SYS(pipe2(m.pipefd, O_CLOEXEC) == 0, "pipe2");
	CHECK_EQ(ctx_new(&ctx, 2 * MIX_N, 0), 0, "caio_ctx_new");

	/* 0: wait with a deadline; 1: without one; 2: cancel it all */
	for (round = 0; round < 3; round++) {
		for (i = 0; i < MIX_WRITES; i++)
			t_pattern(m.wdata + (size_t)i * MIX_WRITE_LEN, MIX_WRITE_LEN,
				  MIX_SEED_WRITE + 100 * round + i);
		CHECK_EQ(posix_fadvise(m.cold_fd, 0, 0, POSIX_FADV_DONTNEED), 0,
			 "posix_fadvise(DONTNEED)");
		CHECK_EQ(mix_submit(ctx, &m), 0, "round %d: queueing the batch", round);
		n = caio_flush(ctx);
		CHECK(n > 0, "round %d: caio_flush = %d", round, n);
		for (i = 0; i < MIX_N; i++)
			cancel_res[i] = -ENOENT;
		for (i = 0; round == 2 && i < MIX_N - 1; i++) {
			if (!m.req[i])
				continue;
			n = caio_cancel(ctx, m.req[i]);
			/* -ENOENT: done, its callback not yet run */
			CHECK(n == 0 || n == -EINPROGRESS || n == -EALREADY || n == -ENOENT,
			      "round 2: caio_cancel of request #%d = %s", i, t_errno_name(n));
			cancel_res[i] = n;
		}
		CHECK_SYS(write(m.pipefd[1], "hello", 5) == 5, "write to the pipe");
		if (round == 1) {
			/* the harness's time limit catches a wait that never ends */
			while (caio_ctx_pending(ctx)) {
				n = wait_ns(ctx, caio_ctx_pending(ctx), -1);
				CHECK(n >= 0 || n == -EINTR, "round 1: caio_wait = %s",
				      t_errno_name(n));
			}
		} else
			CHECK_EQ(wait_idle(ctx), 0, "round %d: waiting for the batch", round);
		mix_check(&m, round == 2);
		if (t_failures())
			goto out;
		/* 0 promises -ECANCELED; -EALREADY and -ENOENT promise the result */
		for (i = 0, n = 0; round == 2 && i < MIX_N; i++)
			n += m.res[i].res == -ECANCELED;
		if (round == 2)
			t_note("%d of %d requests cancelled", n, MIX_N);
		for (i = 0; i < MIX_N; i++) {
			if (cancel_res[i] == 0)
				CHECK_EQ(m.res[i].res, -ECANCELED, "request #%d, cancelled", i);
			else if (cancel_res[i] != -EINPROGRESS)
				CHECK(m.res[i].res != -ECANCELED,
				      "request #%d: -ECANCELED, but its cancel said %s", i,
				      t_errno_name(cancel_res[i]));
		}
		if (!kernel_backend() || m.res[MIX_N - 1].res != 5) {
			char drain[8];

			CHECK_EQ(read(m.pipefd[0], drain, sizeof(drain)), 5, "draining the pipe");
		}
		if (round < 2) {
			CHECK_EQ(pread(m.write_fd, back, MIX_WRITES * MIX_WRITE_LEN, 0),
				 MIX_WRITES * MIX_WRITE_LEN, "reading the written file back");
			CHECK(memcmp(back, m.wdata, MIX_WRITES * MIX_WRITE_LEN) == 0,
			      "round %d: the written file differs from what was written", round);
		}
	}
out:
	destroy(ctx);
	for (i = 0; i < 2; i++)
		if (m.pipefd[i] >= 0)
			close(m.pipefd[i]);
	if (m.hot_fd >= 0)
		close(m.hot_fd);
	if (m.cold_fd >= 0)
		close(m.cold_fd);
	if (m.direct_fd >= 0)
		close(m.direct_fd);
	if (m.write_fd >= 0)
		close(m.write_fd);
	free(m.hot);
	free(m.cold);
	free(m.cold_block0);
	free(m.direct);
	free(m.wdata);
	free(back);
}

/*
 * Batches of large page-cached reads into buffers used again and again (the
 * thread backend gives each buffer a home: its own thread or a spread
 * reader).  Every read returns its own block, also when the batch ends in a
 * short read at end of file, when the file has left the page cache (the
 * readers hand such reads on to the workers), when the whole batch is
 * cancelled right after its flush, and when the context is destroyed with
 * the batch in flight.
 */
enum { BIG_BLOCKS = 12, BIG_LEN = MIB, BIG_BUFS = 8, BIG_SEED = 41, BIG_TAIL = 5000 };

/* Queue reads of blocks first.. into every buffer; the last block of the
 * file is BIG_TAIL bytes, so a read of it is short. */
static int big_submit(caio_ctx *ctx, int fd, char **bufs, int first, struct result *res,
		      caio_req **reqs)
{
	int err = 0;

	memset(res, 0, BIG_BUFS * sizeof(*res));
	for (int i = 0; i < BIG_BUFS && !err; i++) {
		memset(bufs[i], 0, BIG_LEN);
		err = caio_read(ctx, fd, bufs[i], BIG_LEN, (int64_t)((first + i) % BIG_BLOCKS) * BIG_LEN,
				record_cb, &res[i], reqs ? &reqs[i] : NULL);
	}
	return err;
}

static void big_check(char **bufs, int first, struct result *res, bool cancelled)
{
	for (int i = 0; i < BIG_BUFS; i++) {
		int block = (first + i) % BIG_BLOCKS;
		int64_t want = block == BIG_BLOCKS - 1 ? BIG_TAIL : BIG_LEN;

		CHECK_EQ(res[i].calls, 1, "callbacks of the read of block %d", block);
		if (cancelled && res[i].res == -ECANCELED)
			continue;
		CHECK_EQ(res[i].res, want, "read of block %d", block);
		CHECK_EQ(t_pattern_mismatch(bufs[i], want, BIG_SEED + block), -1,
			 "first wrong byte of block %d (buffer %d)", block, i);
	}
out:
	return;
}

static void case_large_reads(void)
{
	struct result res[BIG_BUFS];
	caio_req *reqs[BIG_BUFS];
	char *bufs[BIG_BUFS] = { NULL }, *tail = NULL;
	caio_ctx *ctx = NULL;
	int fd = -1, round, i, n;

	for (i = 0; i < BIG_BUFS; i++) {
		bufs[i] = malloc(BIG_LEN);
		CHECK_SYS(bufs[i] != NULL, "malloc");
	}
	fd = mix_file("large", BIG_BLOCKS - 1, BIG_LEN, BIG_SEED);
	CHECK_SYS(fd >= 0, "creating the file");
	tail = malloc(BIG_TAIL);
	CHECK_SYS(tail != NULL, "malloc");
	t_pattern(tail, BIG_TAIL, BIG_SEED + BIG_BLOCKS - 1);
	CHECK_SYS(pwrite(fd, tail, BIG_TAIL, (off_t)(BIG_BLOCKS - 1) * BIG_LEN) == BIG_TAIL,
		  "pwrite of the last block");
	CHECK_EQ(ctx_new(&ctx, 64, 0), 0, "caio_ctx_new");

	/* 0-5: cached, each round other blocks into the same buffers;
	 * 6: the file dropped from the page cache first; 7: cancelled */
	for (round = 0; round < 8; round++) {
		int first = round * 5;

		if (round == 6) {
			CHECK_SYS(fsync(fd) == 0, "fsync");
			CHECK_EQ(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0,
				 "posix_fadvise(DONTNEED)");
		}
		CHECK_EQ(big_submit(ctx, fd, bufs, first, res, reqs), 0,
			 "round %d: queueing the reads", round);
		n = caio_flush(ctx);
		CHECK(n > 0, "round %d: caio_flush = %d", round, n);
		for (i = 0; round == 7 && i < BIG_BUFS; i++) {
			n = caio_cancel(ctx, reqs[i]);
			CHECK(n == 0 || n == -EINPROGRESS || n == -EALREADY || n == -ENOENT,
			      "round 7: caio_cancel of read %d = %s", i, t_errno_name(n));
			if (n == 0)
				reqs[i] = NULL;	/* promised -ECANCELED */
		}
		CHECK_EQ(wait_idle(ctx), 0, "round %d: waiting for the reads", round);
		big_check(bufs, first, res, round == 7);
		for (i = 0; round == 7 && i < BIG_BUFS; i++)
			if (!reqs[i])
				CHECK_EQ(res[i].res, -ECANCELED, "read %d, cancelled", i);
		if (t_failures())
			goto out;
	}

	/* destroyed with a batch in flight: every callback once, each
	 * result whole or -ECANCELED */
	CHECK_EQ(big_submit(ctx, fd, bufs, 3, res, NULL), 0, "queueing the last batch");
	CHECK(caio_flush(ctx) > 0, "caio_flush of the last batch");
	destroy(ctx);
	ctx = NULL;
	big_check(bufs, 3, res, true);
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < BIG_BUFS; i++)
		free(bufs[i]);
	free(tail);
}

/* 1 native, 0 through the pool, -1 either (decided by the backend). */
static int expected_native(enum caio_op op)
{
	switch (backend) {
	case CAIO_BACKEND_LINUX:
		/* AIO has read/write/fsync/fdsync (4.18+); nothing else. */
		return op <= CAIO_OP_FDSYNC ? 1 : 0;
	case CAIO_BACKEND_URING:
		/* All present since 5.6: read..fallocate, openat, close, statx. */
		return op <= CAIO_OP_STATX ? 1 : -1;
	default:
		/* The thread and sync backends run every op themselves. */
		return 1;
	}
}

static void case_op_native(void)
{
	caio_ctx *ctx = NULL;
	int op, got, want;

	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	for (op = 0; op < CAIO_OP_COUNT; op++) {
		got = caio_ctx_op_native(ctx, op);
		want = expected_native(op);
		CHECK(got == 0 || got == 1, "caio_ctx_op_native(%s) = %d", caio_op_name(op), got);
		if (want >= 0)
			CHECK_EQ(got, want, "caio_ctx_op_native(%s)", caio_op_name(op));
	}
	CHECK_EQ(caio_ctx_op_native(ctx, CAIO_OP_COUNT), -EINVAL, "caio_ctx_op_native(unknown op)");
	CHECK_EQ(caio_ctx_op_native(ctx, (enum caio_op)-1), -EINVAL, "caio_ctx_op_native(-1)");
out:
	destroy(ctx);
}

/* Each write's callback submits and flushes the next one. */
struct chain {
	caio_ctx *ctx;
	int fd;
	int next;
	int total;
	int done;
	int errors;
	char *buf;
	struct result tail;	/* submitted and cancelled from inside a callback */
	int tail_cancel;
};

static void chain_cb(caio_req *req, int64_t res, void *data)
{
	struct chain *c = data;
	int i = c->next, err;
	caio_req *tail = NULL;

	if (!reaping || res != 4096)
		c->errors++;
	c->done++;
	if (c->next >= c->total) {
		/* The last link queues one more request and cancels it. */
		err = caio_read(c->ctx, c->fd, c->buf, 1, 0, record_cb, &c->tail, &tail);
		c->tail_cancel = err < 0 ? err : caio_cancel(c->ctx, tail);
		return;
	}
	c->next++;
	err = caio_write(c->ctx, c->fd, c->buf + (size_t)i * 4096, 4096, (int64_t)i * 4096,
			 chain_cb, c, NULL);
	if (err < 0 || caio_flush(c->ctx) != 1)
		c->errors++;
}

static void case_callback_submit(void)
{
	enum { N = 100 };
	struct chain c = { 0 };
	char *back = malloc(N * 4096);
	caio_ctx *ctx = NULL;
	int fd = -1;

	c.buf = malloc(N * 4096);
	CHECK_SYS(c.buf && back, "malloc");
	t_pattern(c.buf, N * 4096, 15);
	fd = open_tmp("chain", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(ctx_new(&ctx, 4, 0), 0, "caio_ctx_new(max_requests=4)");
	c.ctx = ctx;
	c.fd = fd;
	c.total = N;
	c.next = 1;
	CHECK_EQ(caio_write(ctx, fd, c.buf, 4096, 0, chain_cb, &c, NULL), 0, "first write");
	CHECK_EQ(wait_for(ctx, &c.done, N), 0, "waiting for the chain of %d", N);
	CHECK_EQ(c.errors, 0, "failed links (bad result, submit or flush inside a callback)");
	CHECK_EQ(c.tail_cancel, 0, "caio_cancel from a callback of a request it queued");
	CHECK_EQ(complete(ctx, &c.tail), -ECANCELED, "result of that request");
	CHECK_EQ(pread(fd, back, N * 4096, 0), N * 4096, "pread of the file");
	CHECK(memcmp(back, c.buf, N * 4096) == 0, "the chained writes wrote the wrong data");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	free(c.buf);
	free(back);
}

/* A callback that queues a write, run inside caio_wait(): the write is
 * handed over by the flush at the end of that wait.  (A write, because
 * the thread backend completes a page-cached read inside that flush.) */
struct follow_up {
	struct result first, second;
	caio_ctx *ctx;
	int fd;
	char buf[2][512];
	int submit;
};

static void follow_up_cb(caio_req *req, int64_t res, void *data)
{
	struct follow_up *f = data;

	record_cb(req, res, &f->first);
	memset(f->buf[1], 'w', 512);
	f->submit = caio_write(f->ctx, f->fd, f->buf[1], 512, 512, record_cb, &f->second,
			       NULL);
}

enum leave_by { LEAVE_POLL, LEAVE_TIMED_WAIT, LEAVE_REAP, LEAVE_DESTROY };

static int leave_after_wait(enum leave_by how, int fd)
{
	static const char *const name[] = { "poll", "timed wait", "reap", "destroy" };
	struct follow_up f = { .fd = fd };
	struct result warm[8];
	int efd = -1, n, ret = -1;
	int64_t deadline;

	CHECK_EQ(ctx_new(&f.ctx, 0, 0), 0, "caio_ctx_new (%s)", name[how]);
	/* Let a thread pool's workers start and go to sleep: one still on
	 * its way would take the request whether or not anyone woke it. */
	memset(warm, 0, sizeof(warm));
	for (int i = 0; i < 8; i++)
		CHECK_EQ(caio_write(f.ctx, fd, f.buf[1], 512, 1024 + 512 * i, record_cb, &warm[i],
				    NULL), 0, "caio_write #%d", i);
	CHECK_EQ(wait_ns(f.ctx, 8, -1), 8, "caio_wait for the first writes (%s)", name[how]);
	usleep(20000);
	if (how == LEAVE_POLL)
		efd = caio_ctx_eventfd(f.ctx);
	CHECK_EQ(caio_read(f.ctx, fd, f.buf[0], 512, 0, follow_up_cb, &f, NULL), 0,
		 "caio_read (%s)", name[how]);
	CHECK_EQ(wait_ns(f.ctx, 1, -1), 1, "caio_wait for the first read (%s)", name[how]);
	CHECK_EQ(f.submit, 0, "caio_write inside the callback (%s)", name[how]);
	CHECK_EQ(f.second.calls, 0, "the write completed inside the first wait (%s)",
		 name[how]);
	deadline = t_now_ms() + T_LOST_MS;
	switch (how) {
	case LEAVE_POLL:
		while (!f.second.calls && t_now_ms() < deadline) {
			CHECK_EQ(t_poll_readable(efd, T_LOST_MS), 1,
				 "eventfd readable with the write pending");
			n = reap(f.ctx, 0);
			CHECK(n >= 0, "caio_reap returned %d", n);
		}
		break;
	case LEAVE_TIMED_WAIT:
		CHECK_EQ(wait_ns(f.ctx, 1, (int64_t)T_LOST_MS * 1000000), 1,
			 "caio_wait with a timeout for the write");
		break;
	case LEAVE_REAP:
		while (!f.second.calls && t_now_ms() < deadline) {
			n = reap(f.ctx, 0);
			CHECK(n >= 0, "caio_reap returned %d", n);
		}
		break;
	case LEAVE_DESTROY:
		destroy(f.ctx);
		f.ctx = NULL;
		CHECK(f.second.res == 512 || f.second.res == -ECANCELED,
		      "the write after destroy: %lld", (long long)f.second.res);
		break;
	}
	CHECK_EQ(f.second.calls, 1, "the write's callback (%s)", name[how]);
	if (how != LEAVE_DESTROY)
		CHECK_EQ(f.second.res, 512, "the write's result (%s)", name[how]);
	CHECK(f.second.inside_reap, "the write's callback ran outside reap/wait/destroy");
	ret = 0;
out:
	destroy(f.ctx);
	return ret;
}

/* After a wait whose callback queued a request, the caller may leave by
 * any door (an event loop's poll, a timed wait, plain reaping, destroy):
 * the request must still start and complete. */
static void case_wait_then_leave(void)
{
	int fd = open_tmp("wait-then-leave", O_RDWR | O_TRUNC), round;

	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 19), 0, "writing the file");
	for (round = 0; round < 5; round++)
		for (enum leave_by how = LEAVE_POLL; how <= LEAVE_DESTROY; how++)
			if (leave_after_wait(how, fd) < 0)
				goto out;
out:
	if (fd >= 0)
		close(fd);
}

/* Open descriptors of this process, or -errno. */
static int count_fds(void)
{
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	if (!dir)
		return -errno;
	while (readdir(dir))
		n++;
	closedir(dir);
	return n;
}

/* In the child: every call on the inherited context is refused, and
 * destroy closes the ctx_fds descriptors the context owns. */
static int fork_child(caio_ctx *ctx, int fd, struct stuck *s, int ctx_fds)
{
	struct result r = { 0 };
	int fds_before;
	char buf[16];

	alarm(20);
	CHECK_EQ(caio_read(ctx, fd, buf, sizeof(buf), 0, record_cb, &r, NULL), -EBADFD,
		 "child: caio_read on an inherited context");
	CHECK_EQ(caio_fsync(ctx, fd, record_cb, &r, NULL), -EBADFD,
		 "child: caio_fsync on an inherited context");
	CHECK_EQ(caio_flush(ctx), -EBADFD, "child: caio_flush");
	CHECK_EQ(reap(ctx, 0), -EBADFD, "child: caio_reap");
	CHECK_EQ(wait_ns(ctx, 1, 0), -EBADFD, "child: caio_wait");
	if (s->req)
		CHECK_EQ(caio_cancel(ctx, s->req), -EBADFD, "child: caio_cancel");
	fds_before = count_fds();
	destroy(ctx);
	CHECK_EQ(r.calls + s->r.calls, 0, "child: callbacks run in the child");
	CHECK_EQ(fds_before - count_fds(), ctx_fds,
		 "child: descriptors destroy closed (the context opened %d)", ctx_fds);
	return 0;
out:
	return 1;
}

static void case_fork(void)
{
	struct result before = { 0 }, after = { 0 };
	struct stuck s;
	char buf[4096];
	caio_ctx *ctx = NULL;
	int fd = -1, status, ctx_fds;
	pid_t pid;

	stuck_init(&s);
	memset(buf, 'f', sizeof(buf));
	fd = open_tmp("fork", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	ctx_fds = count_fds();
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");
	CHECK_EQ(caio_write(ctx, fd, buf, sizeof(buf), 0, record_cb, &before, NULL), 0, "caio_write");
	CHECK_EQ(complete(ctx, &before), sizeof(buf), "write before fork");
	CHECK_EQ(caio_ctx_eventfd(ctx) >= 0, 1, "caio_ctx_eventfd");
	ctx_fds = count_fds() - ctx_fds;
	if (stuck_possible()) {
		CHECK_EQ(stuck_submit(ctx, &s, "fifo"), 0, "submitting a request that waits");
		CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
	}
	fflush(NULL);
	pid = fork();
	CHECK_SYS(pid >= 0, "fork");
	/* exit(), not _exit(): under the sanitizers LeakSanitizer then checks
	 * that destroy in the child freed the child's memory. */
	if (pid == 0)
		exit(fork_child(ctx, fd, &s, ctx_fds));
	CHECK_SYS(waitpid(pid, &status, 0) == pid, "waitpid");
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	      "child failed (wait status 0x%x: exit 1 = a check failed or a leak was "
	      "found in the child, 99 = it hung)", status);

	/* The parent's context is untouched by the child. */
	if (s.req) {
		stuck_release(&s);
		CHECK(stuck_result_ok(&s, complete(ctx, &s.r)),
		      "parent: result of the request in flight across fork: %lld (%s)",
		      (long long)s.r.res, t_errno_name(s.r.res));
	}
	CHECK_EQ(caio_write(ctx, fd, buf, sizeof(buf), 4096, record_cb, &after, NULL), 0,
		 "parent: caio_write after fork");
	CHECK_EQ(complete(ctx, &after), sizeof(buf), "parent: write after fork");
out:
	stuck_release(&s);
	destroy(ctx);
	stuck_cleanup(&s);
	if (fd >= 0)
		close(fd);
}

/*
 * Transfers beyond CAIO_MAX_RW_COUNT complete short, like pwrite(2).
 * /dev/null accepts the write without touching the buffer, so a reserved
 * but never faulted-in mapping costs no memory.  5 GiB also catches a
 * length squeezed into 32 bits (io_uring's sqe->len).
 */
static void case_huge(void)
{
	const size_t over = (size_t)CAIO_MAX_RW_COUNT + 8192;
	const size_t five = (size_t)5 << 30;
	struct result w1 = { 0 }, w5 = { 0 }, wv = { 0 }, r = { 0 };
	struct iovec iov[2];
	void *map = MAP_FAILED;
	caio_ctx *ctx = NULL;
	int null = -1, fd = -1;

	if (sizeof(size_t) < 8) {
		t_skip_case("needs a 64-bit address space");
		return;
	}
	map = mmap(NULL, five, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (map == MAP_FAILED) {
		t_skip_case("cannot reserve 5 GiB of address space: %s", t_errno_name(errno));
		return;
	}
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	CHECK_SYS(null >= 0, "open /dev/null");
	fd = open_tmp("huge", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	CHECK_EQ(setup_file(fd, 4096, 16), 0, "writing the file");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");

	CHECK_EQ(caio_write(ctx, null, map, over, 0, record_cb, &w1, NULL), 0,
		 "caio_write of MAX_RW_COUNT + 8 KiB");
	CHECK_EQ(caio_write(ctx, null, map, five, 0, record_cb, &w5, NULL), 0,
		 "caio_write of 5 GiB");
	iov[0] = (struct iovec){ map, (size_t)3 << 29 };
	iov[1] = (struct iovec){ (char *)map + ((size_t)3 << 29), (size_t)3 << 29 };
	CHECK_EQ(caio_writev(ctx, null, iov, 2, 0, record_cb, &wv, NULL), 0,
		 "caio_writev of 2 x 1.5 GiB");
	CHECK_EQ(caio_read(ctx, fd, map, five, 0, record_cb, &r, NULL), 0,
		 "caio_read of 5 GiB from a 4 KiB file");
	CHECK_EQ(complete(ctx, &w1), CAIO_MAX_RW_COUNT, "write of MAX_RW_COUNT + 8 KiB");
	CHECK_EQ(complete(ctx, &w5), CAIO_MAX_RW_COUNT, "write of 5 GiB");
	CHECK_EQ(complete(ctx, &wv), CAIO_MAX_RW_COUNT, "writev of 3 GiB");
	CHECK_EQ(complete(ctx, &r), 4096, "read of 5 GiB from a 4 KiB file");
	CHECK_EQ(t_pattern_mismatch(map, 4096, 16), -1, "first wrong byte of the huge read");
out:
	destroy(ctx);
	if (null >= 0)
		close(null);
	if (fd >= 0)
		close(fd);
	if (map != MAP_FAILED)
		munmap(map, five);
}

/* CAIO_CTX_SQPOLL: a kernel thread submits for io_uring; ignored elsewhere. */
static void case_sqpoll(void)
{
	struct caio_params p = { .flags = CAIO_CTX_SQPOLL, .sqpoll_idle_ms = 10 };
	struct result w = { 0 }, r = { 0 };
	char wbuf[4096], rbuf[4096];
	caio_ctx *ctx = NULL;
	int fd = -1, err;

	err = ctx_new_params(&ctx, &p);
	if (err == -EPERM && backend == CAIO_BACKEND_URING) {
		t_skip_case("SQPOLL needs a privilege this process lacks");
		return;
	}
	CHECK_EQ(err, 0, "caio_ctx_new(CAIO_CTX_SQPOLL)");
	fd = open_tmp("sqpoll", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	t_pattern(wbuf, sizeof(wbuf), 17);
	CHECK_EQ(caio_write(ctx, fd, wbuf, sizeof(wbuf), 0, record_cb, &w, NULL), 0, "caio_write");
	CHECK_EQ(complete(ctx, &w), sizeof(wbuf), "write result with SQPOLL");
	CHECK_EQ(caio_read(ctx, fd, rbuf, sizeof(rbuf), 0, record_cb, &r, NULL), 0, "caio_read");
	CHECK_EQ(complete(ctx, &r), sizeof(rbuf), "read result with SQPOLL");
	CHECK(memcmp(wbuf, rbuf, sizeof(rbuf)) == 0, "data read back with SQPOLL differs");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
}

/*
 * Registered buffers: argument errors on every backend, -EOPNOTSUPP on
 * those without them.  On uring: a read or write wholly inside a region
 * runs as READ_FIXED/WRITE_FIXED (stats.fixed_requests counts exactly
 * those), one that crosses a region's end or lies outside runs as before,
 * every byte is right either way, on a buffered and an O_DIRECT file, and
 * the set can be dropped (not while a request is in the kernel) and
 * registered again.
 */
static int64_t fixed_requests(caio_ctx *ctx)
{
	struct caio_stats st;

	return get_stats(ctx, &st) < 0 ? -1 : (int64_t)st.fixed_requests;
}

/* Write blocks 0..3 of fd from mem + at[i], read them back into
 * mem + back[i], and check them. */
static int fixed_round(caio_ctx *ctx, int fd, char *mem, const size_t at[4],
		       const size_t back[4], unsigned seed)
{
	enum { BLOCK = 4096 };
	struct result r[8];
	int i;

	memset(r, 0, sizeof(r));
	for (i = 0; i < 4; i++) {
		t_pattern(mem + at[i], BLOCK, seed + i);
		if (caio_write(ctx, fd, mem + at[i], BLOCK, (int64_t)i * BLOCK, record_cb,
			       &r[i], NULL) < 0)
			return -1;
	}
	if (wait_idle(ctx) < 0)
		return -2;
	for (i = 0; i < 4; i++) {
		if (r[i].res != BLOCK)
			return -3;
		memset(mem + back[i], 0, BLOCK);
		if (caio_read(ctx, fd, mem + back[i], BLOCK, (int64_t)i * BLOCK, record_cb,
			      &r[4 + i], NULL) < 0)
			return -4;
	}
	if (wait_idle(ctx) < 0)
		return -5;
	for (i = 0; i < 4; i++)
		if (r[4 + i].res != BLOCK || t_pattern_mismatch(mem + back[i], BLOCK, seed + i) >= 0)
			return -6 - i;
	return 0;
}

static void case_registered_buffers(void)
{
	enum { BLOCK = 4096, AREA = 64 * BLOCK };
	/* Region 0 is [8 blocks, 16 blocks) of the area, region 1 the first
	 * 4 blocks: given out of order, so buf_index must follow the list. */
	const size_t inside[4] = { 8 * BLOCK, 15 * BLOCK, 0, 3 * BLOCK };
	const size_t inside_back[4] = { 3 * BLOCK, 9 * BLOCK, 12 * BLOCK, 1 * BLOCK };
	/* Crossing region 1's end (3.5 blocks in), between the regions, and
	 * past region 0. */
	const size_t outside[4] = { 3 * BLOCK + 2048, 5 * BLOCK, 16 * BLOCK, 40 * BLOCK };
	/* Region 1 alone. */
	const size_t first[4] = { 0, BLOCK, 2 * BLOCK, 3 * BLOCK };
	const size_t first_back[4] = { 3 * BLOCK, 2 * BLOCK, BLOCK, 0 };
	struct iovec set[2], bad[2];
	struct result pr = { 0 }, fs;
	caio_ctx *ctx = NULL;
	char *mem = NULL, byte = 'x';
	int fds[2] = { -1, -1 };
	int fd = -1, direct = -1, res, i;
	bool uring = backend == CAIO_BACKEND_URING;

	CHECK_SYS(posix_memalign((void **)&mem, BLOCK, AREA) == 0, "posix_memalign");
	memset(mem, 0, AREA);
	set[0] = (struct iovec){ mem + 8 * BLOCK, 8 * BLOCK };
	set[1] = (struct iovec){ mem, 4 * BLOCK };
	fd = open_tmp("fixed", O_RDWR | O_TRUNC);
	CHECK_SYS(fd >= 0, "open");
	direct = open_tmp("fixed-direct", O_RDWR | O_TRUNC | O_DIRECT);
	CHECK_SYS(direct >= 0 || errno == EINVAL, "open(O_DIRECT)");
	CHECK_EQ(ctx_new(&ctx, 0, 0), 0, "caio_ctx_new");

	CHECK_EQ(caio_ctx_register_buffers(ctx, NULL, 1), -EFAULT, "register NULL iov");
	CHECK_EQ(caio_ctx_register_buffers(ctx, set, 0), -EINVAL, "register 0 regions");
	CHECK_EQ(caio_ctx_register_buffers(ctx, set, CAIO_MAX_BUFFER_REGIONS + 1), -EINVAL,
		 "register too many regions");
	bad[0] = set[0];
	bad[1] = (struct iovec){ NULL, BLOCK };
	CHECK_EQ(caio_ctx_register_buffers(ctx, bad, 2), -EFAULT, "register a NULL base");
	bad[1] = (struct iovec){ mem, 0 };
	CHECK_EQ(caio_ctx_register_buffers(ctx, bad, 2), -EINVAL, "register an empty region");
	bad[1] = (struct iovec){ mem, ((size_t)1 << 30) + 1 };
	CHECK_EQ(caio_ctx_register_buffers(ctx, bad, 2), -EINVAL, "register a region over 1 GiB");
	if (!uring) {
		CHECK_EQ(caio_ctx_register_buffers(ctx, set, 2), -EOPNOTSUPP,
			 "register on %s", backend_name);
		CHECK_EQ(caio_ctx_unregister_buffers(ctx), -EOPNOTSUPP,
			 "unregister on %s", backend_name);
		CHECK_EQ(fixed_round(ctx, fd, mem, inside, inside_back, 40), 0,
			 "I/O from would-be regions");
		CHECK_EQ(fixed_requests(ctx), 0, "stats.fixed_requests on %s", backend_name);
		goto out;
	}
	bad[1] = (struct iovec){ mem + 12 * BLOCK, 8 * BLOCK };
	CHECK_EQ(caio_ctx_register_buffers(ctx, bad, 2), -EINVAL, "register overlapping regions");
	CHECK_EQ(caio_ctx_unregister_buffers(ctx), -ENXIO, "unregister with none registered");
	CHECK_EQ(caio_ctx_register_buffers(ctx, set, 2), 0, "caio_ctx_register_buffers");
	CHECK_EQ(caio_ctx_register_buffers(ctx, set, 2), -EBUSY, "register a second set");

	CHECK_EQ(fixed_round(ctx, fd, mem, inside, inside_back, 41), 0,
		 "buffered file, buffers inside the regions");
	CHECK_EQ(fixed_requests(ctx), 8, "stats.fixed_requests after 8 inside");
	/* Requests in the slots those used are not fixed ones. */
	for (i = 0; i < 8; i++) {
		memset(&fs, 0, sizeof(fs));
		CHECK_EQ(caio_fsync(ctx, fd, record_cb, &fs, NULL), 0, "caio_fsync");
		CHECK_EQ(complete(ctx, &fs), 0, "fsync result");
	}
	CHECK_EQ(fixed_requests(ctx), 8, "stats.fixed_requests after 8 fsyncs");
	CHECK_EQ(fixed_round(ctx, fd, mem, outside, outside, 42), 0,
		 "buffered file, buffers outside the regions");
	CHECK_EQ(fixed_requests(ctx), 8, "stats.fixed_requests after 8 outside");
	if (direct >= 0) {
		CHECK_EQ(fixed_round(ctx, direct, mem, inside, inside_back, 43), 0,
			 "O_DIRECT file, buffers inside the regions");
		CHECK_EQ(fixed_requests(ctx), 16, "stats.fixed_requests after O_DIRECT inside");
	} else {
		t_note("O_DIRECT is not supported on %s: buffered file only", t_path(""));
	}

	/* Not while a request is in the kernel: a read of an empty pipe. */
	CHECK_SYS(pipe2(fds, O_CLOEXEC) == 0, "pipe2");
	CHECK_EQ(caio_read(ctx, fds[0], mem, 1, 0, record_cb, &pr, NULL), 0, "caio_read of a pipe");
	CHECK_EQ(caio_flush(ctx), 1, "caio_flush");
	CHECK_EQ(caio_ctx_unregister_buffers(ctx), -EBUSY, "unregister with a read in the kernel");
	CHECK_SYS(write(fds[1], &byte, 1) == 1, "write to the pipe");
	CHECK_EQ(complete(ctx, &pr), 1, "pipe read into a region");
	CHECK_EQ(mem[0], 'x', "the byte read from the pipe");
	res = (int)fixed_requests(ctx);
	CHECK_EQ(caio_ctx_unregister_buffers(ctx), 0, "caio_ctx_unregister_buffers");
	CHECK_EQ(caio_ctx_unregister_buffers(ctx), -ENXIO, "unregister twice");
	CHECK_EQ(fixed_round(ctx, fd, mem, inside, inside_back, 44), 0,
		 "buffers in the dropped regions");
	CHECK_EQ(fixed_requests(ctx), res, "stats.fixed_requests after unregistering");
	/* A new set; destroy() drops it with the ring. */
	CHECK_EQ(caio_ctx_register_buffers(ctx, set + 1, 1), 0, "register again");
	CHECK_EQ(fixed_round(ctx, fd, mem, first, first_back, 45), 0, "the new set");
	CHECK_EQ(fixed_requests(ctx), res + 8, "stats.fixed_requests with the new set");
out:
	destroy(ctx);
	if (fd >= 0)
		close(fd);
	if (direct >= 0)
		close(direct);
	if (fds[0] >= 0)
		close(fds[0]);
	if (fds[1] >= 0)
		close(fds[1]);
	free(mem);
}

/* ---- main ----------------------------------------------------------------- */

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "roundtrip", case_roundtrip },
	{ "eof", case_eof },
	{ "vectored", case_vectored },
	{ "many", case_many },
	{ "fsync", case_fsync },
	{ "fallocate", case_fallocate },
	{ "batch-flush", case_batch_flush },
	{ "batch-auto", case_batch_auto },
	{ "bad-fd", case_bad_fd },
	{ "fd-negative", case_fd_negative },
	{ "bad-args", case_bad_args },
	{ "eagain", case_eagain },
	{ "cancel-queued", case_cancel_queued },
	{ "cancel-flushed", case_cancel_flushed },
	{ "cancel-inflight", case_cancel_inflight },
	{ "serial-writes", case_serial_writes },
	{ "destroy-inflight", case_destroy_inflight },
	{ "reap-thread", case_reap_thread },
	{ "eventfd", case_eventfd },
	{ "eventfd-lazy", case_eventfd_lazy },
	{ "wait-timeout", case_wait_timeout },
	{ "wait-count", case_wait_count },
	{ "wait-then-leave", case_wait_then_leave },
	{ "metadata-files", case_metadata_files },
	{ "metadata-names", case_metadata_names },
	{ "splice", case_splice },
	{ "odirect", case_odirect },
	{ "fd-reuse", case_fd_reuse },
	{ "nowait-refused", case_nowait_refused },
	{ "pipe-read", case_pipe_read },
	{ "pipe-write-full", case_pipe_write_full },
	{ "uncached-read", case_uncached_read },
	{ "mixed-batch", case_mixed_batch },
	{ "large-reads", case_large_reads },
	{ "op-native", case_op_native },
	{ "callback-submit", case_callback_submit },
	{ "fork", case_fork },
	{ "huge", case_huge },
	{ "sqpoll", case_sqpoll },
	{ "registered-buffers", case_registered_buffers },
};

static void run_case(unsigned i)
{
	int stray = stray_callbacks, repeated = repeated_callbacks;

	t_begin(cases[i].name);
	cases[i].run();
	/* Invariants every case must keep. */
	if (stray_callbacks != stray)
		t_fail(__FILE__, __LINE__, "%d callbacks ran outside caio_reap/caio_wait/"
		       "caio_ctx_destroy", stray_callbacks - stray);
	if (repeated_callbacks != repeated)
		t_fail(__FILE__, __LINE__, "%d callbacks ran more than once for one request",
		       repeated_callbacks - repeated);
	t_end();
}

static bool built_with_sanitizers(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return true;
#endif
#endif
	return false;
}

int main(int argc, char **argv)
{
	char reason[256] = "";
	unsigned i;
	int b, err;

	if (argc > 1 && strcmp(argv[1], "--sanitized") == 0)
		return built_with_sanitizers() ? 0 : 1;
	backend_name = argc > 1 ? argv[1] : getenv("CAIO_TEST_BACKEND");
	if (!backend_name) {
		fprintf(stderr, "usage: %s BACKEND [CASE]  (or CAIO_TEST_BACKEND=...)\n", argv[0]);
		return T_EXIT_HARD;
	}
	t_init("conformance", backend_name, 120);
	if (argc > 2)
		t_set_filter(argv[2]);
	b = caio_backend_from_name(backend_name);
	if (b < 0)
		t_hard_error("'%s' is not a backend name", backend_name);
	backend = b;
	err = caio_probe(backend, reason, sizeof(reason));
	if (err < 0) {
		printf("SKIP: backend %s is unavailable: %s (%s)\n", backend_name,
		       reason[0] ? reason : "no reason given", t_errno_name(err));
		return T_EXIT_SKIP;
	}
	umask(022);
	t_tmpdir_create();
	printf("libcaio %s, backend %s, temp dir %s\n", caio_version(), backend_name, t_path(""));
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (t_case_selected(cases[i].name))
			run_case(i);
	t_tmpdir_remove();
	return t_summary();
}
