/* harness.h - what the libcaio test programs share: checks, case bookkeeping, temp dirs, time limits. */
#ifndef CAIO_TEST_HARNESS_H
#define CAIO_TEST_HARNESS_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Automake's parallel harness: 0 pass, 77 skip, 99 hard error (setup broke). */
#define T_EXIT_PASS	0
#define T_EXIT_FAIL	1
#define T_EXIT_SKIP	77
#define T_EXIT_HARD	99

/* Failure detection only: how long a check waits for something that should
 * happen at once (a completion, a readable eventfd) before calling it lost.
 * Stretched like the suite's time limit by CAIO_TEST_TIME_SCALE (valgrind). */
#define T_LOST_MS	(10000 * t_time_scale())

/*
 * Checks.  Each case function has one cleanup label "out"; a failed check
 * reports file:line, the suite (the backend), the case and what was expected,
 * then jumps there so the case frees what it took.
 */
#define CHECK(cond, ...)							\
	do {									\
		if (!(cond)) {							\
			t_fail(__FILE__, __LINE__, __VA_ARGS__);		\
			goto out;						\
		}								\
	} while (0)

/* Compare two integers; negative values are shown as errno names too. */
#define CHECK_EQ(actual, expected, ...)						\
	do {									\
		int64_t actual_ = (int64_t)(actual);				\
		int64_t expected_ = (int64_t)(expected);			\
		if (actual_ != expected_) {					\
			t_fail_eq(__FILE__, __LINE__, expected_, actual_,	\
				  __VA_ARGS__);					\
			goto out;						\
		}								\
	} while (0)

/* A libc call in the test's own setup failed: say which, with errno. */
#define CHECK_SYS(cond, what)							\
	CHECK(cond, "%s failed: %s", what, t_errno_name(errno))

void t_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void t_fail_eq(const char *file, int line, int64_t expected, int64_t actual,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* "ENOENT" for 2 or -2, "-" when it is not an errno. */
const char *t_errno_name(int64_t err);

/* Suite and case bookkeeping.  t_init() also arms the time limit: seconds,
 * multiplied by $CAIO_TEST_TIME_SCALE (e.g. 10 under valgrind). */
void t_init(const char *program, const char *suite, unsigned seconds);
/* CAIO_TEST_TIME_SCALE, 1 if unset: how much slower than native the
 * suite runs (under valgrind). */
int t_time_scale(void);
bool t_case_selected(const char *name);	/* argv filter, see t_set_filter */
void t_set_filter(const char *name);
void t_begin(const char *name);
void t_skip_case(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_end(void);
int t_failures(void);
int t_summary(void);			/* prints totals, returns the exit code */
void t_hard_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* A private directory under $TMPDIR (or the current directory, which is the
 * build directory under make check), removed with everything in it. */
const char *t_tmpdir_create(void);
void t_tmpdir_remove(void);
/* dir/name in a static buffer (one of several, rotated). */
const char *t_path(const char *name);

/* Fill buf with a pattern that differs for each seed and offset. */
void t_pattern(void *buf, size_t len, unsigned seed);
/* Index of the first byte that differs from the pattern, or -1. */
ssize_t t_pattern_mismatch(const void *buf, size_t len, unsigned seed);

/* Monotonic milliseconds. */
int64_t t_now_ms(void);
/* Wait for fd to become readable for at most timeout_ms: 1, 0 or -errno. */
int t_poll_readable(int fd, int timeout_ms);

#endif
