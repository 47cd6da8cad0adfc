/* caio-cp.c - copy a file through libcaio, many reads and writes in flight, and show what it cost. */
#define _GNU_SOURCE	/* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "caio.h"

#define DEFAULT_QUEUE_DEPTH	32u
#define DEFAULT_BLOCK_SIZE	(128u * 1024)
#define DIRECT_ALIGN		4096	/* O_DIRECT buffer, offset and length alignment */

/*
 * One slot is one chunk of the file moving through read -> write.  A chunk
 * is [offset, offset + want); with O_DIRECT the I/O covers io_len >= want
 * bytes (rounded up to DIRECT_ALIGN) and the file is truncated at the end.
 */
struct slot {
	struct copy *copy;
	char *buf;
	int64_t offset;
	size_t want;		/* file bytes in this chunk */
	size_t io_len;		/* bytes each read/write covers */
	size_t done;		/* read so far, then written so far */
	bool writing;
	struct slot *retry_next;	/* on copy->retry: submit again after the wait */
};

struct copy {
	caio_ctx *ctx;
	int in, out;
	const char *src, *dst;
	int64_t size;
	int64_t next_offset;	/* first byte no slot has claimed yet */
	size_t block_size;
	bool direct;
	unsigned active;	/* slots with a request pending */
	struct slot *retry;	/* slots whose submit hit -EAGAIN */
	int error;		/* first error, negative errno */
	const char *error_what;
	const char *error_path;
};

struct options {
	const char *backend;
	unsigned queue_depth;
	size_t block_size;
	bool direct;
	bool quiet;
	bool probe;
	const char *src, *dst;
};

static void slot_submit(struct slot *slot);

static void copy_fail(struct copy *copy, int err, const char *what, const char *path)
{
	if (copy->error)
		return;
	copy->error = err;
	copy->error_what = what;
	copy->error_path = path;
}

static size_t round_up(size_t n, size_t align)
{
	return (n + align - 1) / align * align;
}

/* Give the slot the next chunk of the file; false when none is left. */
static bool slot_claim(struct slot *slot)
{
	struct copy *copy = slot->copy;
	int64_t left = copy->size - copy->next_offset;

	if (left <= 0 || copy->error)
		return false;
	slot->offset = copy->next_offset;
	slot->want = left < (int64_t)copy->block_size ? (size_t)left : copy->block_size;
	slot->io_len = copy->direct ? round_up(slot->want, DIRECT_ALIGN) : slot->want;
	slot->done = 0;
	slot->writing = false;
	copy->next_offset += slot->want;
	return true;
}

static void slot_idle(struct slot *slot)
{
	slot->copy->active--;
}

static void slot_next_chunk(struct slot *slot)
{
	if (slot_claim(slot))
		slot_submit(slot);
	else
		slot_idle(slot);
}

static void on_read(caio_req *req, int64_t res, void *data)
{
	struct slot *slot = data;
	struct copy *copy = slot->copy;

	if (res < 0)
		copy_fail(copy, (int)res, "read", copy->src);
	else if (res == 0)
		copy_fail(copy, -EIO, "read (the source shrank during the copy)", copy->src);
	if (copy->error) {
		slot_idle(slot);
		return;
	}
	slot->done += res;
	if (slot->done >= slot->want) {
		/* O_DIRECT: the tail past EOF is written, then truncated away. */
		memset(slot->buf + slot->want, 0, slot->io_len - slot->want);
		slot->done = 0;
		slot->writing = true;
	}
	slot_submit(slot);	/* the rest of a short read, or the write */
}

static void on_write(caio_req *req, int64_t res, void *data)
{
	struct slot *slot = data;
	struct copy *copy = slot->copy;

	if (res < 0)
		copy_fail(copy, (int)res, "write", copy->dst);
	else if (res == 0)
		copy_fail(copy, -EIO, "write (no progress)", copy->dst);
	if (copy->error) {
		slot_idle(slot);
		return;
	}
	slot->done += res;
	if (slot->done < slot->io_len)
		slot_submit(slot);	/* a short write: write the rest */
	else
		slot_next_chunk(slot);
}

/* Queue the slot's next request; flushed by the next caio_wait(). */
static void slot_submit(struct slot *slot)
{
	struct copy *copy = slot->copy;
	char *buf = slot->buf + slot->done;
	int64_t offset = slot->offset + slot->done;
	size_t len = slot->io_len - slot->done;
	int ret;

	if (slot->writing)
		ret = caio_write(copy->ctx, copy->out, buf, len, offset, on_write, slot, NULL);
	else
		ret = caio_read(copy->ctx, copy->in, buf, len, offset, on_read, slot, NULL);
	if (ret == -EAGAIN) {
		/* Every request slot is taken: try again once some completed. */
		slot->retry_next = copy->retry;
		copy->retry = slot;
	} else if (ret < 0) {
		copy_fail(copy, ret, slot->writing ? "write" : "read",
			  slot->writing ? copy->dst : copy->src);
		slot_idle(slot);
	}
}

static void copy_retry(struct copy *copy)
{
	struct slot *list = copy->retry;

	copy->retry = NULL;
	while (list) {
		struct slot *slot = list;

		list = slot->retry_next;
		slot_submit(slot);
	}
}

/* Run until every slot is idle; errors stop new chunks, not pending ones. */
static int copy_drain(struct copy *copy)
{
	while (copy->active) {
		int ret = caio_wait(copy->ctx, 1, -1);

		if (ret < 0 && ret != -EINTR) {
			copy_fail(copy, ret, "wait", copy->src);
			return ret;
		}
		copy_retry(copy);
	}
	return copy->error;
}

static int copy_data(struct copy *copy, unsigned queue_depth)
{
	struct slot *slots;
	size_t align = copy->direct ? DIRECT_ALIGN : 64;
	unsigned i;
	int ret = -ENOMEM;

	slots = calloc(queue_depth, sizeof(*slots));
	if (!slots)
		goto out;
	for (i = 0; i < queue_depth; i++) {
		slots[i].copy = copy;
		if (posix_memalign((void **)&slots[i].buf, align, copy->block_size))
			goto out_free;
	}
	for (i = 0; i < queue_depth && slot_claim(&slots[i]); i++) {
		copy->active++;
		slot_submit(&slots[i]);
	}
	ret = copy_drain(copy);
	if (copy->active) {
		/* The wait failed with requests still out: let destroy run
		 * their callbacks while the slots they point to still exist. */
		caio_ctx_destroy(copy->ctx);
		copy->ctx = NULL;
	}
out_free:
	for (i = 0; i < queue_depth; i++)
		free(slots[i].buf);
	free(slots);
out:
	if (ret == -ENOMEM)
		copy_fail(copy, ret, "allocate buffers", copy->src);
	return ret;
}

static void on_done(caio_req *req, int64_t res, void *data)
{
	*(int64_t *)data = res;
}

/* Run one request that takes no buffer (ftruncate, fsync) and wait for it. */
static int copy_finish_op(struct copy *copy, bool truncate)
{
	int64_t res = 1;
	int ret;

	if (truncate)
		ret = caio_ftruncate(copy->ctx, copy->out, copy->size, on_done, &res, NULL);
	else
		ret = caio_fsync(copy->ctx, copy->out, on_done, &res, NULL);
	while (ret >= 0 && res == 1) {
		ret = caio_wait(copy->ctx, 1, -1);
		if (ret == -EINTR)
			ret = 0;
	}
	if (ret < 0)
		res = ret;
	if (res < 0)
		copy_fail(copy, (int)res, truncate ? "ftruncate" : "fsync", copy->dst);
	return res < 0 ? (int)res : 0;
}

/* O_TRUNC on the source itself would destroy it before the first read. */
static bool same_file(const struct stat *src, const char *dst)
{
	struct stat st;

	return stat(dst, &st) == 0 && st.st_dev == src->st_dev && st.st_ino == src->st_ino;
}

static int open_files(struct copy *copy, mode_t *mode)
{
	int direct = copy->direct ? O_DIRECT : 0;
	struct stat st;

	copy->in = open(copy->src, O_RDONLY | O_CLOEXEC | direct);
	if (copy->in < 0 || fstat(copy->in, &st) < 0) {
		copy_fail(copy, -errno, "open", copy->src);
		return copy->error;
	}
	if (!S_ISREG(st.st_mode)) {
		copy_fail(copy, -EINVAL, "open (not a regular file)", copy->src);
		return copy->error;
	}
	copy->size = st.st_size;
	*mode = st.st_mode & 07777;
	if (same_file(&st, copy->dst)) {
		copy_fail(copy, -EINVAL, "refusing to copy onto the source", copy->dst);
		return copy->error;
	}
	copy->out = open(copy->dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | direct, 0600);
	if (copy->out < 0) {
		copy_fail(copy, -errno, "open", copy->dst);
		return copy->error;
	}
	/* The mode, not filtered by the umask, like cp --preserve=mode. */
	if (fchmod(copy->out, *mode) < 0) {
		copy_fail(copy, -errno, "fchmod", copy->dst);
		return copy->error;
	}
	return 0;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void print_stats(const struct copy *copy, double seconds)
{
	struct caio_stats st = { .size = sizeof(st) };
	double avg_batch = 0;

	caio_ctx_stats(copy->ctx, &st);
	if (st.kernel_submits)
		avg_batch = (double)st.kernel_requests / st.kernel_submits;
	printf("caio-cp: backend=%s bytes=%lld seconds=%.3f requests=%llu "
	       "kernel_submits=%llu kernel_requests=%llu avg_batch=%.1f max_batch=%llu "
	       "kernel_waits=%llu fallback_requests=%llu\n",
	       caio_ctx_backend_name(copy->ctx), (long long)copy->size, seconds,
	       (unsigned long long)st.requests, (unsigned long long)st.kernel_submits,
	       (unsigned long long)st.kernel_requests, avg_batch,
	       (unsigned long long)st.max_batch, (unsigned long long)st.kernel_waits,
	       (unsigned long long)st.fallback_requests);
}

static int make_context(struct copy *copy, const struct options *opt)
{
	char reason[256] = "";
	struct caio_params params = {
		.size = sizeof(params),
		/* One request per slot, plus one: a callback submits the
		 * slot's next request before its own request slot is freed. */
		.max_requests = opt->queue_depth + 1,
		.backend = opt->backend,
		.error = reason,
		.error_len = sizeof(reason),
	};
	int ret = caio_ctx_new(&copy->ctx, &params);

	if (ret < 0)
		fprintf(stderr, "caio-cp: backend %s: %s%s%s\n", opt->backend ? opt->backend : "auto",
			caio_strerror(ret), reason[0] ? ": " : "", reason);
	return ret;
}

static int run_copy(const struct options *opt)
{
	struct copy copy = { .in = -1, .out = -1, .src = opt->src, .dst = opt->dst,
			     .block_size = opt->block_size, .direct = opt->direct };
	double start = now_seconds();
	mode_t mode;
	int ret;

	if (make_context(&copy, opt) < 0)
		return 1;
	ret = open_files(&copy, &mode);
	if (!ret)
		ret = copy_data(&copy, opt->queue_depth);
	if (!ret && copy.direct && copy.size % DIRECT_ALIGN)
		ret = copy_finish_op(&copy, true);
	if (!ret)
		ret = copy_finish_op(&copy, false);
	if (!ret && !opt->quiet)
		print_stats(&copy, now_seconds() - start);
	if (ret)
		fprintf(stderr, "caio-cp: %s %s: %s\n", copy.error_what, copy.error_path,
			caio_strerror(copy.error));
	caio_ctx_destroy(copy.ctx);
	if (copy.in >= 0)
		close(copy.in);
	if (copy.out >= 0 && close(copy.out) < 0 && !ret) {
		ret = -errno;
		fprintf(stderr, "caio-cp: close %s: %s\n", copy.dst, caio_strerror(ret));
	}
	return ret ? 1 : 0;
}

/* One line per backend: "NAME ok" or "NAME unavailable: REASON". */
static int run_probe(void)
{
	int b;

	for (b = 0; b < CAIO_BACKEND_COUNT; b++) {
		char reason[256] = "";
		int ret = caio_probe(b, reason, sizeof(reason));

		if (ret == 0)
			printf("%s ok\n", caio_backend_name(b));
		else
			printf("%s unavailable: %s\n", caio_backend_name(b),
			       reason[0] ? reason : caio_strerror(ret));
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: caio-cp [-b BACKEND] [-q DEPTH] [-s BLOCK_SIZE] [-d] [-Q] SOURCE DEST\n"
		"       caio-cp --probe\n"
		"  -b, --backend=NAME      uring, linux, thread, sync (or python) or auto (default)\n"
		"  -q, --queue-depth=N     requests in flight (default %u)\n"
		"  -s, --block-size=BYTES  bytes per request, suffix k/m allowed (default %u)\n"
		"  -d, --direct            open both files with O_DIRECT (block size: a multiple of 4096)\n"
		"  -Q, --quiet             do not print the statistics line\n"
		"      --probe             try every backend and print why it is unavailable\n",
		DEFAULT_QUEUE_DEPTH, DEFAULT_BLOCK_SIZE);
}

/* "4096", "64k", "1m" -> bytes; 0 on a malformed or zero size. */
static size_t parse_size(const char *arg)
{
	char *end;
	unsigned long long n = strtoull(arg, &end, 10);

	if (end == arg)
		return 0;
	if (*end == 'k' || *end == 'K')
		n <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		n <<= 20, end++;
	if (*end || n > CAIO_MAX_RW_COUNT)
		return 0;
	return n;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "queue-depth", required_argument, NULL, 'q' },
		{ "block-size", required_argument, NULL, 's' },
		{ "direct", no_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "probe", no_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "b:q:s:dQh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b': opt->backend = optarg; break;
		case 'q': opt->queue_depth = strtoul(optarg, NULL, 10); break;
		case 's': opt->block_size = parse_size(optarg); break;
		case 'd': opt->direct = true; break;
		case 'Q': opt->quiet = true; break;
		case 'P': opt->probe = true; break;
		case 'h': usage(stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (opt->probe)
		return 0;
	if (argc - optind != 2 || opt->queue_depth == 0 || opt->queue_depth > 65536 ||
	    opt->block_size == 0 || (opt->direct && opt->block_size % DIRECT_ALIGN))
		return -EINVAL;
	opt->src = argv[optind];
	opt->dst = argv[optind + 1];
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt = { .queue_depth = DEFAULT_QUEUE_DEPTH,
			       .block_size = DEFAULT_BLOCK_SIZE };

	if (parse_options(argc, argv, &opt) < 0) {
		usage(stderr);
		return 1;
	}
	if (opt.probe)
		return run_probe();
	return run_copy(&opt);
}
