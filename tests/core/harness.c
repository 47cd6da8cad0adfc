/* harness.c - the shared side of the libcaio tests: reporting, time limit, temp dirs, patterns. */
#include "harness.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PATH_SLOTS	4

static const char *program_name = "test";
static const char *suite_name = "";
static const char *volatile case_name = "(setup)";
static const char *filter;
static int case_failures;
static int failed_cases, passed_cases, skipped_cases;
static bool case_skipped;
static char tmpdir[PATH_MAX];
static char path_buf[PATH_SLOTS][PATH_MAX];
static unsigned path_next;

const char *t_errno_name(int64_t err)
{
	const char *name;

	if (err < 0)
		err = -err;
	if (err == 0 || err > 4095)
		return "-";
	name = strerrorname_np((int)err);
	return name ? name : "E?";
}

static void report_prefix(const char *file, int line)
{
	fprintf(stderr, "FAIL [%s] %s: %s:%d: ", suite_name, case_name,
		file, line);
}

void t_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	report_prefix(file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	case_failures++;
}

static void print_value(int64_t v)
{
	if (v < 0 && v >= -4095)
		fprintf(stderr, "%lld (%s)", (long long)v, t_errno_name(v));
	else
		fprintf(stderr, "%lld", (long long)v);
}

void t_fail_eq(const char *file, int line, int64_t expected, int64_t actual,
	       const char *fmt, ...)
{
	va_list ap;

	report_prefix(file, line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(": expected ", stderr);
	print_value(expected);
	fputs(", got ", stderr);
	print_value(actual);
	fputc('\n', stderr);
	case_failures++;
}

/* Only async-signal-safe calls: the process may be stuck anywhere. */
static void on_time_limit(int sig)
{
	const char *parts[] = { "TIMEOUT [", suite_name, "] ", case_name,
				": time limit reached; temp dir left at ",
				tmpdir, "\n" };
	size_t i;

	for (i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
		if (write(STDERR_FILENO, parts[i], strlen(parts[i])) < 0)
			break;
	_exit(T_EXIT_HARD);
}

static int time_scale = 1;	/* set by t_init, before any thread */

int t_time_scale(void)
{
	return time_scale;
}

void t_init(const char *program, const char *suite, unsigned seconds)
{
	const char *scale = getenv("CAIO_TEST_TIME_SCALE");
	struct sigaction sa;

	program_name = program;
	suite_name = suite;
	if (scale && atoi(scale) > 0)
		time_scale = atoi(scale);
	seconds *= (unsigned)time_scale;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_time_limit;
	sigaction(SIGALRM, &sa, NULL);
	alarm(seconds);
	/* Line-buffered progress so the log shows where a hang happened. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
}

void t_set_filter(const char *name)
{
	filter = name;
}

bool t_case_selected(const char *name)
{
	return !filter || strcmp(filter, name) == 0;
}

void t_begin(const char *name)
{
	case_name = name;
	case_failures = 0;
	case_skipped = false;
}

void t_skip_case(const char *fmt, ...)
{
	va_list ap;

	printf("SKIP [%s] %s: ", suite_name, case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	case_skipped = true;
}

void t_note(const char *fmt, ...)
{
	va_list ap;

	printf("note [%s] %s: ", suite_name, case_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

void t_end(void)
{
	fflush(stderr);
	if (case_failures) {
		printf("FAIL [%s] %s\n", suite_name, case_name);
		failed_cases++;
	} else if (case_skipped) {
		skipped_cases++;
	} else {
		printf("PASS [%s] %s\n", suite_name, case_name);
		passed_cases++;
	}
	case_name = "(between cases)";
}

int t_failures(void)
{
	return case_failures;
}

int t_summary(void)
{
	printf("%s [%s]: %d passed, %d failed, %d skipped\n", program_name,
	       suite_name, passed_cases, failed_cases, skipped_cases);
	if (failed_cases)
		return T_EXIT_FAIL;
	if (!passed_cases && filter) {
		fprintf(stderr, "no case named '%s'\n", filter);
		return T_EXIT_HARD;
	}
	return passed_cases ? T_EXIT_PASS : T_EXIT_SKIP;
}

void t_hard_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "ERROR [%s] %s: ", suite_name, case_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	t_tmpdir_remove();
	exit(T_EXIT_HARD);
}

const char *t_tmpdir_create(void)
{
	const char *base = getenv("TMPDIR");

	if (!base || !*base)
		base = ".";
	snprintf(tmpdir, sizeof(tmpdir), "%s/caio-%s-%s-XXXXXX", base,
		 program_name, suite_name);
	if (!mkdtemp(tmpdir)) {
		int err = errno;

		tmpdir[0] = '\0';
		t_hard_error("mkdtemp under %s: %s", base, t_errno_name(err));
	}
	return tmpdir;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	if (remove(path) < 0 && errno != ENOENT)
		fprintf(stderr, "cannot remove %s: %s\n", path,
			t_errno_name(errno));
	return 0;
}

void t_tmpdir_remove(void)
{
	if (!tmpdir[0])
		return;
	nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

const char *t_path(const char *name)
{
	char *buf = path_buf[path_next++ % PATH_SLOTS];

	if (snprintf(buf, PATH_MAX, "%s/%s", tmpdir, name) >= PATH_MAX)
		t_hard_error("path too long: %s/%s", tmpdir, name);
	return buf;
}

static unsigned char pattern_byte(size_t i, unsigned seed)
{
	uint32_t x = (uint32_t)i * 2654435761u + seed * 40503u + 17;

	return (unsigned char)(x >> 13 ^ x >> 3);
}

void t_pattern(void *buf, size_t len, unsigned seed)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pattern_byte(i, seed);
}

ssize_t t_pattern_mismatch(const void *buf, size_t len, unsigned seed)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pattern_byte(i, seed))
			return (ssize_t)i;
	return -1;
}

int64_t t_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int t_poll_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t deadline = t_now_ms() + timeout_ms;
	int n;

	for (;;) {
		n = poll(&pfd, 1, timeout_ms);
		if (n >= 0)
			return n > 0 && (pfd.revents & POLLIN) ? 1 : 0;
		if (errno != EINTR)
			return -errno;
		timeout_ms = (int)(deadline - t_now_ms());
		if (timeout_ms < 0)
			timeout_ms = 0;
	}
}
