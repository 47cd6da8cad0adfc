/* caio-bench.c - drive one libcaio backend like a fio job and print IOPS, bandwidth and latency. */
#define _GNU_SOURCE	/* O_DIRECT */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "caio.h"

#define DIRECT_ALIGN	4096

/*
 * Latency histogram, log-linear like HdrHistogram: values below 64 ns get
 * their own bucket, above that every power of two is split into 64
 * buckets, so a percentile is within 1/64 (1.6%) of the true value and
 * recording one sample is a few instructions.
 */
#define HIST_SUB_BITS	6
#define HIST_SUB	(1u << HIST_SUB_BITS)
#define HIST_BUCKETS	((64 - HIST_SUB_BITS + 1) * HIST_SUB)

enum pattern { RW_READ, RW_WRITE, RW_RANDREAD, RW_RANDWRITE };

static const char *const pattern_names[] = {
	[RW_READ] = "read", [RW_WRITE] = "write",
	[RW_RANDREAD] = "randread", [RW_RANDWRITE] = "randwrite",
};

struct options {
	const char *backend;
	const char *file;
	enum pattern rw;
	size_t bs;
	unsigned qd;
	unsigned threads;
	unsigned batch;
	bool direct;
	bool sqpoll;
	bool hugepages;
	bool fixed;
	bool json;
	uint64_t size;		/* region of the file used; 0 = the file's size */
	uint64_t io_size;	/* bytes to transfer; 0 = size, or unlimited with a runtime */
	double runtime;		/* seconds; 0 = until io_size */
};

/* One I/O unit: a buffer that is always in flight until the run stops. */
struct io_unit {
	struct bench *bench;
	char *buf;
	int64_t submitted_ns;
	struct io_unit *retry_next;
};

struct bench {
	const struct options *opt;
	caio_ctx *ctx;
	int fd;
	bool is_write;
	bool is_random;
	uint64_t blocks;	/* bs-sized blocks in the region */
	uint64_t next_block;	/* sequential patterns */
	uint64_t rng;		/* xorshift64* state for random patterns */
	uint64_t bytes_issued;
	uint64_t bytes_limit;
	int64_t deadline_ns;
	bool stopping;
	unsigned inflight;
	struct io_unit *retry;	/* units whose submit hit -EAGAIN */
	uint64_t ios;
	uint64_t bytes_done;
	int error;
	uint64_t lat_count, lat_sum_ns, lat_max_ns;
	uint64_t hist[HIST_BUCKETS];
};

struct result {
	double seconds;
	double usr_cpu, sys_cpu;	/* percent of one CPU */
	struct caio_stats stats;
};

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static unsigned hist_index(uint64_t v)
{
	unsigned msb;

	if (v < HIST_SUB)
		return v;
	msb = 63 - __builtin_clzll(v);
	return (msb - HIST_SUB_BITS + 1) * HIST_SUB + ((v >> (msb - HIST_SUB_BITS)) & (HIST_SUB - 1));
}

/* The middle of a bucket's range. */
static uint64_t hist_value(unsigned index)
{
	unsigned group = index / HIST_SUB, sub = index % HIST_SUB, shift;

	if (group == 0)
		return index;
	shift = group - 1;
	return ((uint64_t)(HIST_SUB + sub) << shift) + ((1ull << shift) >> 1);
}

static uint64_t hist_percentile(const struct bench *b, double pct)
{
	uint64_t want = (uint64_t)(b->lat_count * pct / 100.0 + 0.5), seen = 0;
	unsigned i;

	if (want == 0)
		want = 1;
	for (i = 0; i < HIST_BUCKETS; i++) {
		seen += b->hist[i];
		if (seen >= want)
			return hist_value(i);
	}
	return b->lat_max_ns;
}

static void record_latency(struct bench *b, uint64_t ns)
{
	b->hist[hist_index(ns)]++;
	b->lat_count++;
	b->lat_sum_ns += ns;
	if (ns > b->lat_max_ns)
		b->lat_max_ns = ns;
}

static uint64_t next_random(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 0x2545F4914F6CDD1Dull;
}

static int64_t next_offset(struct bench *b)
{
	uint64_t block;

	if (b->is_random)
		return (int64_t)(next_random(b) % b->blocks * b->opt->bs);
	block = b->next_block++;
	if (b->next_block == b->blocks)
		b->next_block = 0;
	return (int64_t)(block * b->opt->bs);
}

static void on_complete(caio_req *req, int64_t res, void *data);

/* Queue the unit's next request; the next caio_wait() flushes the batch. */
static void unit_submit(struct io_unit *u, int64_t now)
{
	struct bench *b = u->bench;
	int64_t offset = next_offset(b);
	int ret;

	u->submitted_ns = now;
	if (b->is_write)
		ret = caio_write(b->ctx, b->fd, u->buf, b->opt->bs, offset, on_complete, u, NULL);
	else
		ret = caio_read(b->ctx, b->fd, u->buf, b->opt->bs, offset, on_complete, u, NULL);
	if (ret == 0) {
		b->bytes_issued += b->opt->bs;
		return;
	}
	if (ret == -EAGAIN) {
		u->retry_next = b->retry;
		b->retry = u;
		return;
	}
	b->error = ret;
	b->stopping = true;
	b->inflight--;
}

static bool should_stop(struct bench *b, int64_t now)
{
	if (b->stopping)
		return true;
	if ((b->deadline_ns && now >= b->deadline_ns) ||
	    (b->bytes_limit && b->bytes_issued >= b->bytes_limit))
		b->stopping = true;
	return b->stopping;
}

/* Keep exactly qd requests in flight: each completion resubmits its unit. */
static void on_complete(caio_req *req, int64_t res, void *data)
{
	struct io_unit *u = data;
	struct bench *b = u->bench;
	int64_t now = now_ns();

	if (res != (int64_t)b->opt->bs) {
		if (!b->error)
			b->error = res < 0 ? (int)res : -EIO;	/* short: the region passes EOF */
		b->stopping = true;
	} else {
		record_latency(b, now - u->submitted_ns);
		b->ios++;
		b->bytes_done += res;
	}
	if (should_stop(b, now)) {
		b->inflight--;
		return;
	}
	unit_submit(u, now);
}

static void retry_units(struct bench *b)
{
	struct io_unit *list = b->retry;
	int64_t now = now_ns();

	b->retry = NULL;
	while (list) {
		struct io_unit *u = list;

		list = u->retry_next;
		if (b->stopping)
			b->inflight--;
		else
			unit_submit(u, now);
	}
}

static int run_loop(struct bench *b)
{
	while (b->inflight) {
		int ret = caio_wait(b->ctx, 1, -1);

		if (ret < 0 && ret != -EINTR) {
			b->stopping = true;	/* destroy runs the callbacks left */
			return ret;
		}
		if (b->retry)
			retry_units(b);
	}
	return b->error;
}

static double cpu_seconds(const struct timeval *tv)
{
	return tv->tv_sec + tv->tv_usec / 1e6;
}

static int run_bench(struct bench *b, struct io_unit *units, struct result *r)
{
	const struct options *opt = b->opt;
	struct rusage ru0, ru1;
	int64_t start;
	unsigned i;
	int ret;

	getrusage(RUSAGE_SELF, &ru0);
	start = now_ns();
	if (opt->runtime > 0)
		b->deadline_ns = start + (int64_t)(opt->runtime * 1e9);
	for (i = 0; i < opt->qd && !should_stop(b, start); i++) {
		b->inflight++;
		unit_submit(&units[i], start);
	}
	ret = run_loop(b);
	r->seconds = (now_ns() - start) / 1e9;
	getrusage(RUSAGE_SELF, &ru1);
	r->usr_cpu = 100 * (cpu_seconds(&ru1.ru_utime) - cpu_seconds(&ru0.ru_utime)) / r->seconds;
	r->sys_cpu = 100 * (cpu_seconds(&ru1.ru_stime) - cpu_seconds(&ru0.ru_stime)) / r->seconds;
	r->stats.size = sizeof(r->stats);
	caio_ctx_stats(b->ctx, &r->stats);
	return ret;
}

static void fill_random(struct bench *b, char *buf, size_t len)
{
	size_t i;

	for (i = 0; i + sizeof(uint64_t) <= len; i += sizeof(uint64_t)) {
		uint64_t v = next_random(b);

		memcpy(buf + i, &v, sizeof(v));
	}
}

/* The default huge page size from /proc/meminfo, 2 MiB if it does not say. */
static size_t huge_page_size(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[128];
	size_t kib = 2048;

	if (!f)
		return kib << 10;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Hugepagesize: %zu kB", &kib) == 1)
			break;
	fclose(f);
	return kib << 10;
}

/*
 * Every unit's buffer lives in one mapping, faulted in up front.  Where the
 * buffer's pages lie in physical memory matters to a large O_DIRECT
 * request: each run of contiguous pages is one DMA segment, and a virtio
 * disk here takes at most 254 per request, so a 1 MiB read into 256
 * scattered pages is split in two, and the disk's speed follows the number
 * of segments.  fio's buffers are 4 KiB pages with the same luck;
 * --hugepages (fio's --mem=mmaphuge) takes it out of the comparison.
 */
static size_t unit_stride(const struct options *opt)
{
	return (opt->bs + DIRECT_ALIGN - 1) / DIRECT_ALIGN * DIRECT_ALIGN;
}

static size_t units_mapping_size(const struct options *opt)
{
	size_t len = unit_stride(opt) * opt->qd;
	size_t huge = opt->hugepages ? huge_page_size() : 0;

	return huge ? (len + huge - 1) / huge * huge : len;
}

static struct io_unit *units_new(struct bench *b)
{
	const struct options *opt = b->opt;
	struct io_unit *units = calloc(opt->qd, sizeof(*units));
	size_t stride = unit_stride(opt);
	int flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
	char *region;
	unsigned i;

	if (!units)
		return NULL;
	if (opt->hugepages)
		flags |= MAP_HUGETLB;
	region = mmap(NULL, units_mapping_size(opt), PROT_READ | PROT_WRITE, flags, -1, 0);
	if (region == MAP_FAILED) {
		if (opt->hugepages)
			fprintf(stderr, "caio-bench: --hugepages: no free huge pages "
				"(see /proc/sys/vm/nr_hugepages)\n");
		return units;	/* units_complete() says no */
	}
	for (i = 0; i < opt->qd; i++) {
		units[i].bench = b;
		units[i].buf = region + i * stride;
		fill_random(b, units[i].buf, opt->bs);
	}
	return units;
}

static bool units_complete(const struct io_unit *units, unsigned qd)
{
	return units && units[qd - 1].buf;
}

static void units_free(struct io_unit *units, const struct options *opt)
{
	if (!units)
		return;
	if (units[0].buf)
		munmap(units[0].buf, units_mapping_size(opt));
	free(units);
}

/* Like fio's layout step: make sure the region exists with real data. */
static int lay_out_file(struct bench *b, uint64_t have)
{
	const size_t chunk = 1 << 20;
	uint64_t size = b->opt->size;
	int fd = open(b->opt->file, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	char *buf = malloc(chunk);
	int ret = 0;

	if (fd < 0 || !buf) {
		ret = fd < 0 ? -errno : -ENOMEM;
		goto out;
	}
	fill_random(b, buf, chunk);
	while (have < size && ret == 0) {
		size_t len = size - have < chunk ? size - have : chunk;
		ssize_t n = pwrite(fd, buf, len, have);

		if (n <= 0)
			ret = n < 0 ? -errno : -EIO;
		have += n > 0 ? n : 0;
	}
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

static int open_file(struct bench *b, struct options *opt)
{
	struct stat st;
	int flags = (b->is_write ? O_RDWR : O_RDONLY) | O_CLOEXEC | (opt->direct ? O_DIRECT : 0);
	int ret;

	if (stat(opt->file, &st) < 0) {
		if (errno != ENOENT)
			return -errno;
		st.st_size = 0;
	}
	if (opt->size == 0)
		opt->size = st.st_size;
	if (opt->size < opt->bs) {
		fprintf(stderr, "caio-bench: %s: give --size (the file is smaller than one block)\n",
			opt->file);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size < opt->size) {
		ret = lay_out_file(b, st.st_size);
		if (ret < 0)
			return ret;
	}
	b->fd = open(opt->file, flags);
	return b->fd < 0 ? -errno : 0;
}

static int make_context(struct bench *b)
{
	const struct options *opt = b->opt;
	char reason[256] = "";
	struct caio_params params = {
		.size = sizeof(params),
		.flags = opt->sqpoll ? CAIO_CTX_SQPOLL : 0,
		/* qd units in flight, plus one: a callback resubmits its
		 * unit before the completed request's slot is recycled. */
		.max_requests = opt->qd + 1,
		.batch = opt->batch,
		.threads = opt->threads,
		.backend = opt->backend,
		.error = reason,
		.error_len = sizeof(reason),
	};
	int ret = caio_ctx_new(&b->ctx, &params);

	if (ret < 0)
		fprintf(stderr, "caio-bench: backend %s: %s%s%s\n", opt->backend,
			caio_strerror(ret), reason[0] ? ": " : "", reason);
	return ret;
}

static void print_result(const struct bench *b, const struct result *r)
{
	const struct options *opt = b->opt;
	const struct caio_stats *st = &r->stats;
	double iops = b->ios / r->seconds;
	double mib_s = b->bytes_done / r->seconds / (1 << 20);
	double avg_batch = st->kernel_submits ? (double)st->kernel_requests / st->kernel_submits : 0;
	double mean_us = b->lat_count ? b->lat_sum_ns / 1e3 / b->lat_count : 0;
	const char *fmt = opt->json ?
		"{\"backend\": \"%s\", \"rw\": \"%s\", \"bs\": %zu, \"qd\": %u, \"direct\": %d, \"hugepages\": %d, "
		"\"seconds\": %.3f, \"ios\": %llu, \"bytes\": %llu, \"iops\": %.1f, \"mib_s\": %.2f, "
		"\"lat_mean_us\": %.2f, \"lat_p50_us\": %.2f, \"lat_p99_us\": %.2f, \"lat_max_us\": %.2f, "
		"\"usr_cpu\": %.1f, \"sys_cpu\": %.1f, \"kernel_submits\": %llu, \"avg_batch\": %.2f, "
		"\"kernel_waits\": %llu, \"fallback_requests\": %llu, \"fixed_requests\": %llu}\n" :
		"caio-bench backend=%s rw=%s bs=%zu qd=%u direct=%d hugepages=%d "
		"seconds=%.3f ios=%llu bytes=%llu iops=%.1f mib_s=%.2f "
		"lat_mean_us=%.2f lat_p50_us=%.2f lat_p99_us=%.2f lat_max_us=%.2f "
		"usr_cpu=%.1f sys_cpu=%.1f kernel_submits=%llu avg_batch=%.2f "
		"kernel_waits=%llu fallback_requests=%llu fixed_requests=%llu\n";

	printf(fmt, caio_ctx_backend_name(b->ctx), pattern_names[opt->rw], opt->bs, opt->qd,
	       opt->direct, opt->hugepages, r->seconds, (unsigned long long)b->ios,
	       (unsigned long long)b->bytes_done, iops, mib_s, mean_us,
	       hist_percentile(b, 50) / 1e3, hist_percentile(b, 99) / 1e3, b->lat_max_ns / 1e3,
	       r->usr_cpu, r->sys_cpu, (unsigned long long)st->kernel_submits, avg_batch,
	       (unsigned long long)st->kernel_waits, (unsigned long long)st->fallback_requests,
	       (unsigned long long)st->fixed_requests);
}

static int bench_main(struct options *opt)
{
	struct bench *b = calloc(1, sizeof(*b));	/* the histogram is 30 KiB */
	struct io_unit *units = NULL;
	struct result r;
	int ret = -ENOMEM;

	if (!b)
		goto out;
	b->opt = opt;
	b->fd = -1;
	b->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)now_ns();
	b->is_write = opt->rw == RW_WRITE || opt->rw == RW_RANDWRITE;
	b->is_random = opt->rw == RW_RANDREAD || opt->rw == RW_RANDWRITE;
	ret = open_file(b, opt);
	if (ret < 0) {
		fprintf(stderr, "caio-bench: %s: %s\n", opt->file, caio_strerror(ret));
		goto out;
	}
	b->blocks = opt->size / opt->bs;
	b->bytes_limit = opt->io_size ? opt->io_size : opt->runtime > 0 ? 0 : opt->size;
	ret = make_context(b);
	if (ret < 0)
		goto out_close;
	units = units_new(b);
	ret = -ENOMEM;
	if (!units_complete(units, opt->qd))
		goto out_destroy;
	if (opt->fixed) {
		/* All buffers are one mapping: one region (fio's fixedbufs). */
		struct iovec all = { units[0].buf, units_mapping_size(opt) };

		ret = caio_ctx_register_buffers(b->ctx, &all, 1);
		if (ret < 0) {
			fprintf(stderr, "caio-bench: --fixed: %s\n", caio_strerror(ret));
			goto out_destroy;
		}
	}
	ret = run_bench(b, units, &r);
	if (ret < 0)
		fprintf(stderr, "caio-bench: %s: %s\n", opt->file, caio_strerror(ret));
	else
		print_result(b, &r);
out_destroy:
	caio_ctx_destroy(b->ctx);
	units_free(units, opt);
out_close:
	close(b->fd);
out:
	free(b);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: caio-bench --file=PATH [options]\n"
		"  --backend=NAME    uring, linux, thread, sync or auto (default auto)\n"
		"  --rw=PATTERN      randread (default), read, randwrite, write\n"
		"  --bs=SIZE         block size, suffix k/m/g (default 4k)\n"
		"  --qd=N            requests kept in flight (default 1; alias --iodepth)\n"
		"  --direct          O_DIRECT (bs, and so offsets, must be multiples of 4096)\n"
		"  --size=SIZE       region of the file to use (default: the file's size);\n"
		"                    a shorter file is first filled to this size\n"
		"  --io-size=SIZE    bytes to transfer (default: --size, unlimited with --runtime)\n"
		"  --runtime=SECS    stop after this long (may be fractional)\n"
		"  --threads=N       thread backend: pool size (default: the library's)\n"
		"  --batch=N         auto-flush after N queued requests (default: the library's)\n"
		"  --sqpoll          uring: kernel submission polling thread\n"
		"  --hugepages       buffers in huge pages (MAP_HUGETLB, like fio's --mem=mmaphuge)\n"
		"  --fixed           uring: registered buffers (like fio's --fixedbufs)\n"
		"  --json            print one JSON object instead of one key=value line\n");
}

/* "4096", "4k", "1m", "1g" -> bytes; 0 if malformed. */
static uint64_t parse_size(const char *arg)
{
	char *end;
	uint64_t n = strtoull(arg, &end, 10);

	if (end == arg)
		return 0;
	switch (*end) {
	case 'k': case 'K': n <<= 10; end++; break;
	case 'm': case 'M': n <<= 20; end++; break;
	case 'g': case 'G': n <<= 30; end++; break;
	}
	if (*end == 'i' && end[1] == 'B')	/* "4KiB" */
		end += 2;
	return *end ? 0 : n;
}

static int parse_pattern(const char *arg)
{
	unsigned i;

	for (i = 0; i < sizeof(pattern_names) / sizeof(pattern_names[0]); i++)
		if (strcmp(arg, pattern_names[i]) == 0)
			return i;
	return -EINVAL;
}

enum { OPT_BACKEND = 256, OPT_RW, OPT_BS, OPT_QD, OPT_DIRECT, OPT_SIZE, OPT_IO_SIZE,
       OPT_RUNTIME, OPT_FILE, OPT_THREADS, OPT_BATCH, OPT_SQPOLL, OPT_HUGEPAGES, OPT_FIXED,
       OPT_JSON, OPT_HELP };

static const struct option longopts[] = {
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "rw", required_argument, NULL, OPT_RW },
	{ "bs", required_argument, NULL, OPT_BS },
	{ "qd", required_argument, NULL, OPT_QD },
	{ "iodepth", required_argument, NULL, OPT_QD },
	{ "direct", optional_argument, NULL, OPT_DIRECT },
	{ "size", required_argument, NULL, OPT_SIZE },
	{ "io-size", required_argument, NULL, OPT_IO_SIZE },
	{ "runtime", required_argument, NULL, OPT_RUNTIME },
	{ "file", required_argument, NULL, OPT_FILE },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "sqpoll", no_argument, NULL, OPT_SQPOLL },
	{ "hugepages", no_argument, NULL, OPT_HUGEPAGES },
	{ "fixed", no_argument, NULL, OPT_FIXED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NULL, 0, NULL, 0 }
};

static int parse_option(struct options *opt, int c, const char *arg)
{
	int rw;

	switch (c) {
	case OPT_BACKEND: opt->backend = arg; break;
	case OPT_RW:
		rw = parse_pattern(arg);
		if (rw < 0)
			return rw;
		opt->rw = rw;
		break;
	case OPT_BS: opt->bs = parse_size(arg); break;
	case OPT_QD: opt->qd = strtoul(arg, NULL, 10); break;
	case OPT_DIRECT: opt->direct = !arg || strcmp(arg, "0") != 0; break;
	case OPT_SIZE: opt->size = parse_size(arg); break;
	case OPT_IO_SIZE: opt->io_size = parse_size(arg); break;
	case OPT_RUNTIME: opt->runtime = strtod(arg, NULL); break;
	case OPT_FILE: opt->file = arg; break;
	case OPT_THREADS: opt->threads = strtoul(arg, NULL, 10); break;
	case OPT_BATCH: opt->batch = strtoul(arg, NULL, 10); break;
	case OPT_SQPOLL: opt->sqpoll = true; break;
	case OPT_HUGEPAGES: opt->hugepages = true; break;
	case OPT_FIXED: opt->fixed = true; break;
	case OPT_JSON: opt->json = true; break;
	default: return -EINVAL;
	}
	return 0;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	int c;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == OPT_HELP) {
			usage(stdout);
			exit(0);
		}
		if (parse_option(opt, c, optarg) < 0)
			return -EINVAL;
	}
	if (optind != argc || !opt->file || opt->bs == 0 || opt->bs > CAIO_MAX_RW_COUNT ||
	    opt->qd == 0 || opt->qd > 65536 || opt->runtime < 0 ||
	    (opt->direct && opt->bs % DIRECT_ALIGN))
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct options opt = { .backend = "auto", .rw = RW_RANDREAD, .bs = 4096, .qd = 1 };

	if (parse_options(argc, argv, &opt) < 0) {
		usage(stderr);
		return 2;
	}
	return bench_main(&opt) < 0 ? 1 : 0;
}
