/* stats.c - per-loop lock-free counters, their aggregation and the control socket caiofs-stat reads. */
#include "config.h"
#include "caiofs.h"
#include "control.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

/*
 * Every counter has one writer, its loop thread, which stores with relaxed
 * atomics; readers (the control socket, SIGUSR1) load them the same way
 * and sum over the loops.  No lock on the request path.
 */
#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define BUMP(x, v)	STORE(x, LOAD(x) + (v))

static const char *const op_names[CFS_NOPS] = {
	[FUSE_LOOKUP] = "lookup", [FUSE_FORGET] = "forget",
	[FUSE_GETATTR] = "getattr", [FUSE_SETATTR] = "setattr",
	[FUSE_READLINK] = "readlink", [FUSE_SYMLINK] = "symlink",
	[FUSE_MKNOD] = "mknod", [FUSE_MKDIR] = "mkdir",
	[FUSE_UNLINK] = "unlink", [FUSE_RMDIR] = "rmdir",
	[FUSE_RENAME] = "rename", [FUSE_LINK] = "link", [FUSE_OPEN] = "open",
	[FUSE_READ] = "read", [FUSE_WRITE] = "write", [FUSE_STATFS] = "statfs",
	[FUSE_RELEASE] = "release", [FUSE_FSYNC] = "fsync",
	[FUSE_SETXATTR] = "setxattr", [FUSE_GETXATTR] = "getxattr",
	[FUSE_LISTXATTR] = "listxattr", [FUSE_REMOVEXATTR] = "removexattr",
	[FUSE_FLUSH] = "flush", [FUSE_INIT] = "init", [FUSE_OPENDIR] = "opendir",
	[FUSE_READDIR] = "readdir", [FUSE_RELEASEDIR] = "releasedir",
	[FUSE_FSYNCDIR] = "fsyncdir", [FUSE_GETLK] = "getlk",
	[FUSE_SETLK] = "setlk", [FUSE_SETLKW] = "setlkw",
	[FUSE_ACCESS] = "access", [FUSE_CREATE] = "create",
	[FUSE_INTERRUPT] = "interrupt", [FUSE_BMAP] = "bmap",
	[FUSE_DESTROY] = "destroy", [FUSE_IOCTL] = "ioctl", [FUSE_POLL] = "poll",
	[FUSE_NOTIFY_REPLY] = "notify_reply", [FUSE_BATCH_FORGET] = "forget_multi",
	[FUSE_FALLOCATE] = "fallocate", [FUSE_READDIRPLUS] = "readdirplus",
	[FUSE_RENAME2] = "rename2", [FUSE_LSEEK] = "lseek",
	[FUSE_COPY_FILE_RANGE] = "copy_file_range", [50] = "syncfs",
	[51] = "tmpfile", [52] = "statx",
};

const char *cfs_op_name(unsigned opcode)
{
	if (opcode < CFS_NOPS && op_names[opcode])
		return op_names[opcode];
	return NULL;
}

static unsigned op_index(unsigned opcode)
{
	return opcode < CFS_NOPS ? opcode : 0;	/* 0: unknown opcodes */
}

void cfs_stats_start(struct cfs_loop_stats *st, unsigned opcode)
{
	BUMP(st->op[op_index(opcode)].started, 1);
}

static unsigned log2_bucket(uint64_t v, unsigned nbuckets)
{
	unsigned b = v ? 64 - __builtin_clzll(v) : 0;

	return b < nbuckets ? b : nbuckets - 1;
}

void cfs_stats_done(struct cfs_loop_stats *st, unsigned opcode, uint64_t ns,
		    int error, uint64_t bytes)
{
	struct cfs_op_stats *o = &st->op[op_index(opcode)];

	BUMP(o->done, 1);
	if (error)
		BUMP(o->errors, 1);
	BUMP(o->bytes, bytes);
	BUMP(o->hist[log2_bucket(ns, CFS_HIST)], 1);
	if (ns > LOAD(o->max_ns))
		STORE(o->max_ns, ns);
}

void cfs_stats_count(uint64_t *counter, unsigned n)
{
	BUMP(*counter, n);
}

void cfs_stats_flush(struct cfs_loop_stats *st, int nr)
{
	BUMP(st->flush_hist[log2_bucket(nr, 16)], 1);
}

void cfs_stats_publish_caio(struct cfs_loop_stats *st, caio_ctx *ctx)
{
	struct caio_stats cs;

	memset(&cs, 0, sizeof(cs));
	cs.size = sizeof(cs);
	if (caio_ctx_stats(ctx, &cs) < 0)
		return;
	STORE(st->caio.pending, cs.pending);
	STORE(st->caio.requests, cs.requests);
	STORE(st->caio.completions, cs.completions);
	STORE(st->caio.cancelled, cs.cancelled);
	STORE(st->caio.errors, cs.errors);
	STORE(st->caio.flushes, cs.flushes);
	STORE(st->caio.kernel_submits, cs.kernel_submits);
	STORE(st->caio.kernel_requests, cs.kernel_requests);
	STORE(st->caio.kernel_waits, cs.kernel_waits);
	if (cs.max_batch > LOAD(st->caio.max_batch))
		STORE(st->caio.max_batch, cs.max_batch);
	STORE(st->caio.fallback_requests, cs.fallback_requests);
	STORE(st->caio.fixed_requests, cs.fixed_requests);
	STORE(st->caio.bytes_read, cs.bytes_read);
	STORE(st->caio.bytes_written, cs.bytes_written);
}

/* ---- aggregation -------------------------------------------------------- */

struct totals {
	struct cfs_op_stats op[CFS_NOPS];
	struct caio_stats caio;
	uint64_t flush_hist[16];
	uint64_t deferred;
	uint64_t dev_requests, spliced_writes, ring_requests, ring_commands, ring_submits;
	uint64_t inodes, inode_bytes, table_bytes, cached_fds, fd_cache_size;
};

static void add_op(struct cfs_op_stats *t, struct cfs_op_stats *o)
{
	unsigned b;
	uint64_t m = LOAD(o->max_ns);

	t->started += LOAD(o->started);
	t->done += LOAD(o->done);
	t->errors += LOAD(o->errors);
	t->bytes += LOAD(o->bytes);
	if (m > t->max_ns)
		t->max_ns = m;
	for (b = 0; b < CFS_HIST; b++)
		t->hist[b] += LOAD(o->hist[b]);
}

static void add_caio(struct caio_stats *t, struct caio_stats *c)
{
	uint64_t m = LOAD(c->max_batch);

	t->pending += LOAD(c->pending);
	t->requests += LOAD(c->requests);
	t->completions += LOAD(c->completions);
	t->errors += LOAD(c->errors);
	t->flushes += LOAD(c->flushes);
	t->kernel_submits += LOAD(c->kernel_submits);
	t->kernel_requests += LOAD(c->kernel_requests);
	t->kernel_waits += LOAD(c->kernel_waits);
	if (m > t->max_batch)
		t->max_batch = m;
	t->fallback_requests += LOAD(c->fallback_requests);
	t->fixed_requests += LOAD(c->fixed_requests);
	t->bytes_read += LOAD(c->bytes_read);
	t->bytes_written += LOAD(c->bytes_written);
}

/* Loop i as published by cfs_loops_start(), or NULL before it is. */
static struct cfs_loop *loop_at(unsigned i)
{
	struct cfs_loop **loops = __atomic_load_n(&cfs.loops, __ATOMIC_ACQUIRE);

	return loops ? __atomic_load_n(&loops[i], __ATOMIC_ACQUIRE) : NULL;
}

static void totals_collect(struct totals *t)
{
	unsigned i, j;

	memset(t, 0, sizeof(*t));
	for (i = 0; i < cfs.nloops; i++) {
		struct cfs_loop *loop = loop_at(i);
		struct cfs_loop_stats *st;

		if (!loop)
			continue;
		st = cfs_loop_stats(loop);
		for (j = 0; j < CFS_NOPS; j++)
			add_op(&t->op[j], &st->op[j]);
		add_caio(&t->caio, &st->caio);
		for (j = 0; j < 16; j++)
			t->flush_hist[j] += LOAD(st->flush_hist[j]);
		t->deferred += LOAD(st->deferred);
		t->dev_requests += LOAD(st->dev_requests);
		t->spliced_writes += LOAD(st->spliced_writes);
		t->ring_requests += LOAD(st->ring_requests);
		t->ring_commands += LOAD(st->ring_commands);
		t->ring_submits += LOAD(st->ring_submits);
	}
	cfs_inode_counts(&t->inodes, &t->inode_bytes, &t->table_bytes, &t->cached_fds,
			 &t->fd_cache_size);
}

/* The latency below which a fraction q of the requests completed, from
 * the log2 histogram (linear inside a bucket), in microseconds. */
static double percentile_us(const struct cfs_op_stats *o, double q)
{
	uint64_t total = 0, seen = 0, target;
	unsigned b;

	for (b = 0; b < CFS_HIST; b++)
		total += o->hist[b];
	if (!total)
		return 0;
	target = (uint64_t)(q * total + 0.5);
	if (target < 1)
		target = 1;
	for (b = 0; b < CFS_HIST; b++) {
		if (seen + o->hist[b] >= target) {
			double lo = b ? (double)(1ull << (b - 1)) : 0;
			double hi = (double)(1ull << b);
			double v = lo + (hi - lo) * (target - seen) / o->hist[b];

			if (o->max_ns && v > o->max_ns)
				v = o->max_ns;
			return v / 1000.0;
		}
		seen += o->hist[b];
	}
	return o->max_ns / 1000.0;
}

static const char *op_label(unsigned i)
{
	const char *n = cfs_op_name(i);

	return n ? n : "other";
}

static double avg_batch(const struct caio_stats *c)
{
	return c->kernel_submits ? (double)c->kernel_requests / c->kernel_submits : 0;
}

static double uptime_s(void)
{
	return (cfs_now_ns() - cfs.start_ns) / 1e9;
}

static void text_header(FILE *f, const struct totals *t)
{
	uint64_t per = t->inodes ? t->inode_bytes / t->inodes : 0;

	fprintf(f, "caiofs %s  source %s  backend %s  loops %u  queue depth %u  up %.1f s\n",
		cfs.opt.mountpoint, cfs.opt.source_real, cfs.backend_name,
		cfs.nloops, cfs.opt.queue_depth, uptime_s());
	fprintf(f, "selection: %s\n", cfs.selection);
	fprintf(f, "caio: %llu requests, %llu kernel submissions, %.2f requests per submission (max %llu), %llu via thread pool, %llu with registered buffers, %llu waited for a slot, %u pending\n",
		(unsigned long long)t->caio.requests,
		(unsigned long long)t->caio.kernel_submits, avg_batch(&t->caio),
		(unsigned long long)t->caio.max_batch,
		(unsigned long long)t->caio.fallback_requests,
		(unsigned long long)t->caio.fixed_requests,
		(unsigned long long)t->deferred, t->caio.pending);
	fprintf(f, "inodes: %llu remembered, %llu bytes each and a %llu KiB table, %llu/%llu descriptors cached, file handles %s\n",
		(unsigned long long)t->inodes, (unsigned long long)per,
		(unsigned long long)(t->table_bytes >> 10),
		(unsigned long long)t->cached_fds,
		(unsigned long long)t->fd_cache_size, cfs.handles ? "yes" : "no");
	fprintf(f, "fuse: %llu requests from /dev/fuse, %llu writes spliced into the source (no copy through caiofs)\n",
		(unsigned long long)t->dev_requests, (unsigned long long)t->spliced_writes);
	if (cfs.opt.fuse_uring)
		fprintf(f, "fuse_uring: %llu requests from io_uring, %llu from /dev/fuse; %llu replies in %llu io_uring_enter calls (%.2f per call)\n",
			(unsigned long long)t->ring_requests,
			(unsigned long long)t->dev_requests,
			(unsigned long long)t->ring_commands,
			(unsigned long long)t->ring_submits,
			t->ring_submits ? (double)t->ring_commands / t->ring_submits : 0.0);
}

static void write_text(FILE *f)
{
	struct totals t;
	unsigned i;

	totals_collect(&t);
	text_header(f, &t);
	fprintf(f, "%-16s %12s %8s %8s %14s %10s %10s %10s\n", "op", "count",
		"errors", "inflight", "bytes", "p50 us", "p99 us", "max us");
	for (i = 0; i < CFS_NOPS; i++) {
		struct cfs_op_stats *o = &t.op[i];

		if (!o->started && !o->done)
			continue;
		fprintf(f, "%-16s %12llu %8llu %8lld %14llu %10.1f %10.1f %10.1f\n",
			op_label(i), (unsigned long long)o->done,
			(unsigned long long)o->errors,
			(long long)(o->started - o->done),
			(unsigned long long)o->bytes, percentile_us(o, 0.5),
			percentile_us(o, 0.99), o->max_ns / 1000.0);
	}
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; s && *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Requests loop i handed to libcaio: how the loops share the work. */
static uint64_t loop_requests(unsigned i)
{
	struct cfs_loop *loop = loop_at(i);

	return loop ? LOAD(cfs_loop_stats(loop)->caio.requests) : 0;
}

static void json_caio(FILE *f, const struct totals *t)
{
	const struct caio_stats *c = &t->caio;
	unsigned b, i;

	fprintf(f, "\"caio\":{\"requests\":%llu,\"completions\":%llu,\"errors\":%llu,"
		"\"pending\":%u,\"flushes\":%llu,\"kernel_submits\":%llu,"
		"\"kernel_requests\":%llu,\"avg_batch\":%.3f,\"max_batch\":%llu,"
		"\"kernel_waits\":%llu,\"fallback_requests\":%llu,\"fixed_requests\":%llu,\"deferred\":%llu,"
		"\"bytes_read\":%llu,\"bytes_written\":%llu,\"flush_batch_log2\":[",
		(unsigned long long)c->requests, (unsigned long long)c->completions,
		(unsigned long long)c->errors, c->pending,
		(unsigned long long)c->flushes, (unsigned long long)c->kernel_submits,
		(unsigned long long)c->kernel_requests, avg_batch(c),
		(unsigned long long)c->max_batch, (unsigned long long)c->kernel_waits,
		(unsigned long long)c->fallback_requests,
		(unsigned long long)c->fixed_requests,
		(unsigned long long)t->deferred, (unsigned long long)c->bytes_read,
		(unsigned long long)c->bytes_written);
	for (b = 0; b < 16; b++)
		fprintf(f, "%s%llu", b ? "," : "", (unsigned long long)t->flush_hist[b]);
	fprintf(f, "],\"loop_requests\":[");
	for (i = 0; i < cfs.nloops; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)loop_requests(i));
	fprintf(f, "]}");
}

static void json_inodes(FILE *f, const struct totals *t)
{
	fprintf(f, "\"inodes\":{\"count\":%llu,\"bytes\":%llu,\"bytes_per_inode\":%.1f,"
		"\"table_bytes\":%llu,\"cached_fds\":%llu,\"fd_cache_size\":%llu,"
		"\"file_handles\":%s}",
		(unsigned long long)t->inodes,
		(unsigned long long)(t->inode_bytes + t->table_bytes),
		t->inodes ? (double)t->inode_bytes / t->inodes : 0.0,
		(unsigned long long)t->table_bytes,
		(unsigned long long)t->cached_fds,
		(unsigned long long)t->fd_cache_size, cfs.handles ? "true" : "false");
}

static void json_ops(FILE *f, const struct totals *t)
{
	bool first = true;
	unsigned i, b;

	fprintf(f, "\"ops\":{");
	for (i = 0; i < CFS_NOPS; i++) {
		const struct cfs_op_stats *o = &t->op[i];

		if (!o->started && !o->done)
			continue;
		fprintf(f, "%s\"%s\":{\"count\":%llu,\"errors\":%llu,\"in_flight\":%lld,"
			"\"bytes\":%llu,\"p50_us\":%.3f,\"p99_us\":%.3f,\"max_us\":%.3f,"
			"\"latency_log2_ns\":[", first ? "" : ",", op_label(i),
			(unsigned long long)o->done, (unsigned long long)o->errors,
			(long long)(o->started - o->done), (unsigned long long)o->bytes,
			percentile_us(o, 0.5), percentile_us(o, 0.99), o->max_ns / 1000.0);
		for (b = 0; b < CFS_HIST; b++)
			fprintf(f, "%s%llu", b ? "," : "", (unsigned long long)o->hist[b]);
		fprintf(f, "]}");
		first = false;
	}
	fprintf(f, "}");
}

static void write_json(FILE *f)
{
	struct totals t;

	totals_collect(&t);
	fprintf(f, "{\"version\":\"%s\",\"pid\":%d,\"mountpoint\":", PACKAGE_VERSION,
		(int)getpid());
	json_string(f, cfs.opt.mountpoint);
	fprintf(f, ",\"source\":");
	json_string(f, cfs.opt.source_real);
	fprintf(f, ",\"backend\":");
	json_string(f, cfs.backend_name);
	fprintf(f, ",\"selection\":");
	json_string(f, cfs.selection);
	fprintf(f, ",\"loops\":%u,\"queue_depth\":%u,\"uptime_s\":%.3f,"
		"\"max_write\":%u,\"fuse_want\":%u,", cfs.nloops, cfs.opt.queue_depth,
		uptime_s(), cfs.max_write, cfs.conn_want);
	json_caio(f, &t);
	fputc(',', f);
	json_inodes(f, &t);
	fprintf(f, ",\"fuse\":{\"uring_requested\":%s,\"device_requests\":%llu,"
		"\"spliced_writes\":%llu,"
		"\"ring_requests\":%llu,\"ring_commands\":%llu,\"ring_submits\":%llu},",
		cfs.opt.fuse_uring ? "true" : "false",
		(unsigned long long)t.dev_requests, (unsigned long long)t.spliced_writes,
		(unsigned long long)t.ring_requests,
		(unsigned long long)t.ring_commands, (unsigned long long)t.ring_submits);
	json_ops(f, &t);
	fprintf(f, "}\n");
}

/* One line per item, numbers only: what caiofs-stat -i computes rates from. */
static void write_raw(FILE *f)
{
	struct totals t;
	unsigned i, b;

	totals_collect(&t);
	fprintf(f, "backend %s\n", cfs.backend_name);
	fprintf(f, "mount %s\n", cfs.opt.mountpoint);
	fprintf(f, "caio %llu %llu %llu %llu %u\n",
		(unsigned long long)t.caio.requests,
		(unsigned long long)t.caio.kernel_submits,
		(unsigned long long)t.caio.kernel_requests,
		(unsigned long long)t.caio.max_batch, t.caio.pending);
	for (i = 0; i < CFS_NOPS; i++) {
		struct cfs_op_stats *o = &t.op[i];

		if (!o->started && !o->done)
			continue;
		fprintf(f, "op %s %llu %llu %llu %llu %llu", op_label(i),
			(unsigned long long)o->started, (unsigned long long)o->done,
			(unsigned long long)o->errors, (unsigned long long)o->bytes,
			(unsigned long long)o->max_ns);
		for (b = 0; b < CFS_HIST; b++)
			fprintf(f, " %llu", (unsigned long long)o->hist[b]);
		fputc('\n', f);
	}
}

static char *render(void (*fn)(FILE *), size_t *len)
{
	char *buf = NULL;
	FILE *f = open_memstream(&buf, len);

	if (!f)
		return NULL;
	fn(f);
	fclose(f);
	return buf;
}

void cfs_stats_log_summary(const char *why)
{
	size_t len;
	char *text = render(write_text, &len), *line, *save = NULL;

	if (!text)
		return;
	cfs_log(LOG_INFO, "statistics (%s):", why);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		cfs_log(LOG_INFO, "  %s", line);
	free(text);
}

/* ---- the control socket -------------------------------------------------- */

/* Bind the mount point's control address and listen: 0 or -errno. */
static int control_bind(int fd)
{
	struct sockaddr_un sa;
	socklen_t len = cfs_control_address(cfs.opt.mountpoint, &sa);

	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 16) < 0)
		return -errno;
	return 0;
}

/* The address is taken; control_main binds it once it is free.  Written
 * by the control thread once it is running, read by the main thread. */
static bool control_waiting;

bool cfs_control_waiting(void)
{
	return __atomic_load_n(&control_waiting, __ATOMIC_RELAXED);
}

int cfs_control_open(void)
{
	int fd, res;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	res = control_bind(fd);
	if (res == -EADDRINUSE) {
		/* Most likely the daemon of the previous mount on this mount
		 * point, which holds the address until it has exited. */
		control_waiting = true;
		return fd;
	}
	if (res < 0) {
		close(fd);
		return res;
	}
	return fd;
}

static void send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n <= 0)
			return;
		buf += n;
		len -= n;
	}
}

/* Answer one client: it sends "json", "text" or "raw" and a newline. */
static void control_serve(int lfd)
{
	struct timeval tv = { .tv_sec = 1 };
	char cmd[32] = "";
	size_t len = 0;
	char *out = NULL;
	ssize_t n;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = recv(fd, cmd, sizeof(cmd) - 1, 0);
	if (n > 0) {
		cmd[n] = '\0';
		if (!strncmp(cmd, "raw", 3))
			out = render(write_raw, &len);
		else if (!strncmp(cmd, "text", 4))
			out = render(write_text, &len);
		else
			out = render(write_json, &len);
	}
	if (out)
		send_all(fd, out, len);
	free(out);
	close(fd);
}

/*
 * Its own thread, started before the loops: caiofs-stat works as soon as
 * the mount appears and while the main thread is busy unmounting.
 */
static pthread_t control_thread;
static int control_stop_fd = -1;

/* How often a taken address is tried again: often at first, when it is
 * an exiting daemon's, then rarely (another daemon lives there). */
#define CONTROL_RETRY_MS	50
#define CONTROL_RETRY_SLOW_MS	1000
#define CONTROL_RETRY_FAST_FOR	100

static void *control_main(void *arg)
{
	struct pollfd p[2] = {
		{ .fd = control_waiting ? -1 : cfs.control_fd, .events = POLLIN },
		{ .fd = control_stop_fd, .events = POLLIN },
	};
	unsigned tries = 0;

	for (;;) {
		int wait = !control_waiting ? -1 : tries < CONTROL_RETRY_FAST_FOR ?
			   CONTROL_RETRY_MS : CONTROL_RETRY_SLOW_MS;

		if (poll(p, 2, wait) < 0)
			continue;
		if (p[1].revents)
			return NULL;
		if (control_waiting) {
			/* an unbound socket polls as hung up: not watched until bound */
			tries++;
			if (control_bind(cfs.control_fd) == 0) {
				__atomic_store_n(&control_waiting, false, __ATOMIC_RELAXED);
				p[0].fd = cfs.control_fd;
				cfs_log(LOG_INFO, "control socket ready after %u tries: caiofs-stat sees this mount",
					tries);
			}
			continue;
		}
		if (p[0].revents)
			control_serve(cfs.control_fd);
	}
}

int cfs_control_start(void)
{
	sigset_t all, old;
	int res;

	if (cfs.control_fd < 0)
		return 0;
	control_stop_fd = eventfd(0, EFD_CLOEXEC);
	if (control_stop_fd < 0)
		return -errno;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	res = -pthread_create(&control_thread, NULL, control_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (res) {
		close(control_stop_fd);
		control_stop_fd = -1;
	}
	return res;
}

void cfs_control_stop(void)
{
	if (control_stop_fd < 0)
		return;
	eventfd_write(control_stop_fd, 1);
	pthread_join(control_thread, NULL);
	close(control_stop_fd);
	control_stop_fd = -1;
}
