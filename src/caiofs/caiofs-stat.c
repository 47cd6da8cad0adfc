/* caiofs-stat.c - print a caiofs mount's counters once, or every interval like iostat. */
#include "config.h"
#include "control.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NOPS	64
#define NHIST	48

struct op_snap {
	char name[32];
	uint64_t started, done, errors, bytes, max_ns;
	uint64_t hist[NHIST];
};

struct snap {
	char backend[64];
	char mount[PATH_MAX];
	uint64_t caio_requests, submits, kernel_requests, max_batch;
	unsigned pending;
	unsigned nops;
	struct op_snap ops[NOPS];
	double t;
};

static int connect_path(const char *path)
{
	struct sockaddr_un sa;
	socklen_t len = cfs_control_address(path, &sa);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, len) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The daemon serving path: its mount point, or the nearest ancestor that is one. */
static int connect_mount(const char *given)
{
	char *path = realpath(given, NULL), *slash;
	int fd = -ENOENT;

	if (!path)
		return -errno;
	for (;;) {
		fd = connect_path(path);
		if (fd >= 0 || !strcmp(path, "/"))
			break;
		slash = strrchr(path, '/');
		if (slash == path)
			slash[1] = '\0';
		else
			*slash = '\0';
	}
	free(path);
	return fd;
}

/* Send cmd, read the whole answer (NUL terminated, malloc'ed). */
static char *query(const char *mount, const char *cmd)
{
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0, cap = 65536;
	char *buf;
	ssize_t n;
	int fd = connect_mount(mount);

	if (fd < 0) {
		fprintf(stderr, "caiofs-stat: no caiofs daemon serves %s: %s\n",
			mount, strerror(-fd));
		return NULL;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	buf = malloc(cap);
	if (!buf || send(fd, cmd, strlen(cmd), MSG_NOSIGNAL) < 0)
		goto fail;
	while ((n = recv(fd, buf + len, cap - len - 1, 0)) > 0) {
		len += n;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap *= 2);

			if (!nb)
				goto fail;
			buf = nb;
		}
	}
	if (n < 0 || len == 0)
		goto fail;
	buf[len] = '\0';
	close(fd);
	return buf;
fail:
	fprintf(stderr, "caiofs-stat: reading from the daemon of %s failed\n", mount);
	free(buf);
	close(fd);
	return NULL;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void parse_op(struct snap *s, char *line)
{
	struct op_snap *o;
	char *tok, *save = NULL;
	unsigned i;

	if (s->nops == NOPS)
		return;
	o = &s->ops[s->nops++];
	memset(o, 0, sizeof(*o));
	tok = strtok_r(line + 3, " ", &save);
	snprintf(o->name, sizeof(o->name), "%s", tok ? tok : "?");
	uint64_t *fields[] = { &o->started, &o->done, &o->errors, &o->bytes, &o->max_ns };
	for (i = 0; i < 5 + NHIST && (tok = strtok_r(NULL, " ", &save)); i++) {
		uint64_t v = strtoull(tok, NULL, 10);

		if (i < 5)
			*fields[i] = v;
		else
			o->hist[i - 5] = v;
	}
}

static int parse_raw(char *text, struct snap *s)
{
	char *line, *save = NULL;

	memset(s, 0, sizeof(*s));
	s->t = now_s();
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, "backend ", 8))
			snprintf(s->backend, sizeof(s->backend), "%s", line + 8);
		else if (!strncmp(line, "mount ", 6))
			snprintf(s->mount, sizeof(s->mount), "%s", line + 6);
		else if (!strncmp(line, "caio ", 5))
			sscanf(line + 5, "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %u", &s->caio_requests,
			       &s->submits, &s->kernel_requests, &s->max_batch,
			       &s->pending);
		else if (!strncmp(line, "op ", 3))
			parse_op(s, line);
	}
	return s->backend[0] ? 0 : -1;
}

static const struct op_snap *find_op(const struct snap *s, const char *name)
{
	unsigned i;

	for (i = 0; i < s->nops; i++)
		if (!strcmp(s->ops[i].name, name))
			return &s->ops[i];
	return NULL;
}

static double percentile_us(const uint64_t *hist, uint64_t max_ns, double q)
{
	uint64_t total = 0, seen = 0, target;
	unsigned b;

	for (b = 0; b < NHIST; b++)
		total += hist[b];
	if (!total)
		return 0;
	target = (uint64_t)(q * total + 0.5);
	if (target < 1)
		target = 1;
	for (b = 0; b < NHIST; b++) {
		if (seen + hist[b] >= target) {
			double lo = b ? (double)(1ull << (b - 1)) : 0, hi = (double)(1ull << b);
			double v = lo + (hi - lo) * (target - seen) / hist[b];

			return (max_ns && v > max_ns ? max_ns : v) / 1000.0;
		}
		seen += hist[b];
	}
	return max_ns / 1000.0;
}

/* One iostat-like report of what happened between prev and cur. */
static void print_interval(const struct snap *prev, const struct snap *cur)
{
	double dt = cur->t - prev->t;
	uint64_t submits = cur->submits - prev->submits;
	uint64_t kreq = cur->kernel_requests - prev->kernel_requests;
	char when[32];
	time_t t = time(NULL);
	unsigned i, b;

	strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
	if (dt <= 0)
		dt = 1e-9;
	printf("\n%s  %s  backend %s  caio %.0f req/s  %.2f per submission  pending %u\n",
	       when, cur->mount, cur->backend,
	       (cur->caio_requests - prev->caio_requests) / dt,
	       submits ? (double)kreq / submits : 0.0, cur->pending);
	printf("%-16s %10s %10s %8s %8s %10s %10s\n", "op", "ops/s", "MB/s",
	       "errors", "inflight", "p50 us", "p99 us");
	for (i = 0; i < cur->nops; i++) {
		const struct op_snap *c = &cur->ops[i], *p = find_op(prev, c->name);
		struct op_snap zero = { .name = "" };
		uint64_t hist[NHIST];

		if (!p)
			p = &zero;
		if (!c->done && !c->started)
			continue;	/* like iostat: every op ever seen, idle or not */
		for (b = 0; b < NHIST; b++)
			hist[b] = c->hist[b] - p->hist[b];
		printf("%-16s %10.1f %10.2f %8llu %8lld %10.1f %10.1f\n", c->name,
		       (c->done - p->done) / dt, (c->bytes - p->bytes) / dt / 1e6,
		       (unsigned long long)(c->errors - p->errors),
		       (long long)(c->started - c->done),
		       percentile_us(hist, c->max_ns, 0.5),
		       percentile_us(hist, c->max_ns, 0.99));
	}
	fflush(stdout);
}

static void usage(FILE *f)
{
	fprintf(f, "usage: caiofs-stat [--json] [-i SECONDS [-c COUNT]] MOUNTPOINT\n\n"
		"Prints the counters of the caiofs daemon serving MOUNTPOINT: per operation\n"
		"count, errors, requests in flight, bytes and latency (p50/p99/max), and the\n"
		"libcaio backend with its requests per kernel submission.\n\n"
		"  -j, --json         machine-readable JSON (one object per line)\n"
		"  -i, --interval S   report every S seconds what happened in the interval\n"
		"  -c, --count N      stop after N reports\n"
		"  -h, --help         this text\n");
}

static int once(const char *mount, bool json)
{
	char *out = query(mount, json ? "json\n" : "text\n");

	if (!out)
		return 1;
	fputs(out, stdout);
	free(out);
	return 0;
}

static int sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s,
			       .tv_nsec = (long)((s - (time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0)
		if (errno != EINTR)
			return -1;
	return 0;
}

static int every(const char *mount, bool json, double interval, long count)
{
	struct snap *snaps = calloc(2, sizeof(*snaps)), *prev, *cur, *tmp;
	char *out;
	long n;

	if (!snaps)
		return 1;
	prev = snaps;
	cur = snaps + 1;
	for (n = 0; count <= 0 || n < count; n++) {
		out = query(mount, json ? "json\n" : "raw\n");
		if (!out)
			break;
		if (json)
			fputs(out, stdout), fflush(stdout);
		else if (parse_raw(out, cur) == 0 && n > 0)
			print_interval(prev, cur);
		else if (n == 0)
			printf("caiofs-stat: %s, backend %s, every %g s\n", cur->mount,
			       cur->backend, interval);
		free(out);
		tmp = prev, prev = cur, cur = tmp;
		if ((count <= 0 || n + 1 < count) && sleep_s(interval) < 0)
			break;
	}
	free(snaps);
	return n > 0 ? 0 : 1;
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "interval", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	double interval = 0;
	long count = 0;
	bool json = false;
	int c;

	while ((c = getopt_long(argc, argv, "ji:c:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'i':
			interval = strtod(optarg, NULL);
			if (interval <= 0) {
				fprintf(stderr, "caiofs-stat: bad interval '%s'\n", optarg);
				return 2;
			}
			break;
		case 'c':
			count = strtol(optarg, NULL, 10);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("caiofs-stat %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return 2;
	}
	if (interval > 0)
		return every(argv[optind], json, interval, count);
	return once(argv[optind], json);
}
