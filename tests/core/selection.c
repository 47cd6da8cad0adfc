/* selection.c - how libcaio picks a backend: CAIO_IMPL, default_implementation, params.backend, probe failures. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caio.h"

static bool available[CAIO_BACKEND_COUNT];
static enum caio_backend automatic;	/* what automatic selection picks here */
static const char *file_path;		/* our default_implementation */

static const char *const accepted[] = { "uring", "linux", "thread", "sync", "python" };

/* Every case starts from: no CAIO_IMPL, no probe hook, no file. */
static void reset_env(void)
{
	unsetenv("CAIO_IMPL");
	unsetenv("CAIO_TEST_PROBE_FAIL");
	setenv("CAIO_DEFAULT_IMPLEMENTATION", file_path, 1);
	unlink(file_path);
}

static int write_default_file(const char *text)
{
	FILE *f = fopen(file_path, "w");

	if (!f)
		return -errno;
	fputs(text, f);
	return fclose(f) == 0 ? 0 : -EIO;
}

/* Create a context asking for name (NULL = automatic); the backend or -errno. */
static int backend_of(const char *name, unsigned flags, char *error, size_t len,
		      char *selection, size_t sel_len)
{
	struct caio_params p = {
		.size = sizeof(p),
		.flags = flags,
		.backend = name,
		.error = error,
		.error_len = len,
	};
	caio_ctx *ctx = NULL;
	int err, b;

	if (error && len)
		error[0] = '\0';
	err = caio_ctx_new(&ctx, &p);
	if (err < 0)
		return err;
	b = caio_ctx_backend(ctx);
	if (selection)
		snprintf(selection, sel_len, "%s", caio_ctx_selection(ctx));
	caio_ctx_destroy(ctx);
	return b;
}

static int simple_backend(const char *name, unsigned flags)
{
	return backend_of(name, flags | CAIO_CTX_QUIET, NULL, 0, NULL, 0);
}

/* Run backend_of() with stderr going to a file; the text lands in out. */
static int backend_capturing_stderr(const char *name, unsigned flags, char *out, size_t len)
{
	int saved, fd, b;
	ssize_t n;

	fflush(stderr);
	saved = dup(STDERR_FILENO);
	fd = open(t_path("stderr"), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (saved < 0 || fd < 0)
		t_hard_error("cannot redirect stderr: %s", t_errno_name(errno));
	dup2(fd, STDERR_FILENO);
	b = backend_of(name, flags, NULL, 0, NULL, 0);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, out, len - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	return b;
}

static void case_names(void)
{
	unsigned i;
	int b;

	for (i = 0; i < CAIO_BACKEND_COUNT; i++) {
		CHECK(caio_backend_name(i) != NULL, "caio_backend_name(%u) is NULL", i);
		CHECK(strcmp(caio_backend_name(i), accepted[i]) == 0,
		      "caio_backend_name(%u): expected %s, got %s", i, accepted[i],
		      caio_backend_name(i));
		CHECK_EQ(caio_backend_from_name(accepted[i]), i, "caio_backend_from_name(%s)",
			 accepted[i]);
	}
	CHECK_EQ(caio_backend_from_name("python"), CAIO_BACKEND_SYNC,
		 "caio_backend_from_name(python)");
	b = caio_backend_from_name("bogus");
	CHECK_EQ(b, -EINVAL, "caio_backend_from_name(bogus)");
	CHECK_EQ(caio_backend_from_name(""), -EINVAL, "caio_backend_from_name(\"\")");

	CHECK(strcmp(caio_op_name(CAIO_OP_READ), "read") == 0, "caio_op_name(READ) = %s",
	      caio_op_name(CAIO_OP_READ));
	CHECK(strcmp(caio_op_name(CAIO_OP_FDSYNC), "fdsync") == 0, "caio_op_name(FDSYNC) = %s",
	      caio_op_name(CAIO_OP_FDSYNC));
	for (i = 0; i < CAIO_OP_COUNT; i++)
		CHECK(caio_op_name(i) && caio_op_name(i)[0], "caio_op_name(%u) is empty", i);
	CHECK(caio_strerror(-ENOENT) && strstr(caio_strerror(-ENOENT), "No such file"),
	      "caio_strerror(-ENOENT) = %s", caio_strerror(-ENOENT));
	CHECK(caio_strerror(-99999) != NULL, "caio_strerror(-99999) is NULL");
	CHECK(strcmp(caio_version(), PACKAGE_VERSION) == 0,
	      "caio_version(): expected %s, got %s", PACKAGE_VERSION, caio_version());
out:
	;
}

static void case_probe(void)
{
	char reason[256];
	unsigned i;
	int err;

	for (i = 0; i < CAIO_BACKEND_COUNT; i++) {
		reason[0] = '\0';
		err = caio_probe(i, reason, sizeof(reason));
		t_note("%s: %s%s%s", accepted[i], err ? t_errno_name(err) : "available",
		       reason[0] ? ": " : "", reason);
		CHECK(err <= 0, "caio_probe(%s) returned %d", accepted[i], err);
		if (err < 0)
			CHECK(reason[0], "caio_probe(%s) failed without a reason", accepted[i]);
	}
	CHECK(available[CAIO_BACKEND_THREAD], "the thread backend must always be available");
	CHECK(available[CAIO_BACKEND_SYNC], "the sync backend must always be available");
	CHECK_EQ(caio_probe(CAIO_BACKEND_COUNT, reason, sizeof(reason)), -EINVAL,
		 "caio_probe(unknown backend)");
	CHECK_EQ(simple_backend(NULL, 0), automatic, "automatic selection with nothing set");
	CHECK_EQ(simple_backend("auto", 0), automatic, "params.backend = \"auto\"");
out:
	;
}

/* CAIO_IMPL=name for every name: that backend, or an error with a reason. */
static void case_env_each(void)
{
	char error[256], buf[256];
	unsigned i;
	int want, got;

	for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++) {
		reset_env();
		setenv("CAIO_IMPL", accepted[i], 1);
		want = caio_backend_from_name(accepted[i]);
		CHECK_EQ(caio_backend_requested(buf, sizeof(buf)), want,
			 "caio_backend_requested() with CAIO_IMPL=%s", accepted[i]);
		got = backend_of(NULL, CAIO_CTX_QUIET, error, sizeof(error), NULL, 0);
		if (available[want]) {
			CHECK_EQ(got, want, "context backend with CAIO_IMPL=%s", accepted[i]);
		} else {
			CHECK(got < 0, "CAIO_IMPL=%s is unavailable here but a context "
			      "was made with %s", accepted[i], caio_backend_name(got));
			CHECK(error[0], "CAIO_IMPL=%s unavailable: no reason in params.error",
			      accepted[i]);
			t_note("CAIO_IMPL=%s: %s", accepted[i], error);
		}
	}
out:
	reset_env();
}

static bool names_every_backend(const char *text)
{
	unsigned i;

	for (i = 0; i < sizeof(accepted) / sizeof(accepted[0]); i++)
		if (!strstr(text, accepted[i]))
			return false;
	return true;
}

static void case_env_invalid(void)
{
	char buf[512], err_text[2048];

	reset_env();
	setenv("CAIO_IMPL", "bogus", 1);
	buf[0] = '\0';
	CHECK_EQ(caio_backend_requested(buf, sizeof(buf)), -EINVAL,
		 "caio_backend_requested() with CAIO_IMPL=bogus");
	CHECK(strstr(buf, "bogus") && names_every_backend(buf),
	      "the warning must quote the value and name uring, linux, thread, sync, python: "
	      "\"%s\"", buf);

	CHECK_EQ(backend_capturing_stderr(NULL, 0, err_text, sizeof(err_text)), automatic,
		 "backend with CAIO_IMPL=bogus (must fall back to automatic)");
	CHECK(strstr(err_text, "bogus") && names_every_backend(err_text),
	      "stderr must warn about bogus naming the accepted values, got \"%s\"", err_text);
	CHECK_EQ(backend_capturing_stderr(NULL, CAIO_CTX_QUIET, err_text, sizeof(err_text)),
		 automatic, "backend with CAIO_IMPL=bogus and CAIO_CTX_QUIET");
	CHECK(err_text[0] == '\0', "CAIO_CTX_QUIET still printed \"%s\"", err_text);
out:
	reset_env();
}

static void case_default_file(void)
{
	static const struct {
		const char *text;
		int want;	/* what caio_backend_requested() says */
	} files[] = {
		{ "# the backend for this machine\n# second comment\nthread\nsync\n", CAIO_BACKEND_THREAD },
		{ "sync\n", CAIO_BACKEND_SYNC },
		{ "python\n", CAIO_BACKEND_SYNC },
		{ "#comment\nthread", CAIO_BACKEND_THREAD },
		{ "# only comments\n#thread\n", -ENOENT },
		{ "bogus\n", -EINVAL },
	};
	char buf[256];
	unsigned i;
	int want_ctx;

	reset_env();
	CHECK(strcmp(caio_default_implementation_path(), file_path) == 0,
	      "caio_default_implementation_path() ignores $CAIO_DEFAULT_IMPLEMENTATION: %s",
	      caio_default_implementation_path());
	CHECK_EQ(caio_backend_requested(buf, sizeof(buf)), -ENOENT,
		 "caio_backend_requested() with no file and no CAIO_IMPL");
	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		CHECK_EQ(write_default_file(files[i].text), 0, "writing %s", file_path);
		CHECK_EQ(caio_backend_requested(buf, sizeof(buf)), files[i].want,
			 "caio_backend_requested() for file #%u", i);
		want_ctx = files[i].want >= 0 ? files[i].want : (int)automatic;
		CHECK_EQ(simple_backend(NULL, 0), want_ctx, "context backend for file #%u", i);
	}

	unsetenv("CAIO_DEFAULT_IMPLEMENTATION");
	CHECK(strstr(caio_default_implementation_path(), "/caio/default_implementation"),
	      "default path without the variable: %s", caio_default_implementation_path());
out:
	reset_env();
}

static void case_precedence(void)
{
	char buf[256];

	reset_env();
	CHECK_EQ(write_default_file("sync\n"), 0, "writing %s", file_path);
	setenv("CAIO_IMPL", "thread", 1);
	CHECK_EQ(caio_backend_requested(buf, sizeof(buf)), CAIO_BACKEND_THREAD,
		 "caio_backend_requested(): CAIO_IMPL=thread over file sync");
	CHECK_EQ(simple_backend(NULL, 0), CAIO_BACKEND_THREAD, "CAIO_IMPL=thread over file sync");
	CHECK_EQ(simple_backend("auto", 0), CAIO_BACKEND_THREAD,
		 "params.backend=auto with CAIO_IMPL=thread");

	setenv("CAIO_IMPL", "sync", 1);
	CHECK_EQ(simple_backend("thread", 0), CAIO_BACKEND_THREAD,
		 "params.backend=thread over CAIO_IMPL=sync and file sync");
	CHECK_EQ(simple_backend("python", 0), CAIO_BACKEND_SYNC, "params.backend=python");
	CHECK_EQ(simple_backend(NULL, CAIO_CTX_NO_ENV), automatic,
		 "CAIO_CTX_NO_ENV ignores CAIO_IMPL=sync and file sync");
	CHECK_EQ(simple_backend("sync", CAIO_CTX_NO_ENV), CAIO_BACKEND_SYNC,
		 "params.backend=sync with CAIO_CTX_NO_ENV");

	CHECK_EQ(simple_backend("bogus", 0), -EINVAL, "params.backend=bogus");
out:
	reset_env();
}

/* What automatic selection picks when one more backend is broken. */
static int first_available_except(int broken)
{
	int b;

	for (b = 0; b < CAIO_BACKEND_COUNT; b++)
		if (available[b] && b != broken)
			return b;
	return -1;
}

/* A backend asked for by name that cannot run: an error with the reason. */
static void case_forced_unavailable(void)
{
	char error[256];

	reset_env();
	setenv("CAIO_TEST_PROBE_FAIL", "thread:EPERM", 1);
	CHECK(backend_of("thread", CAIO_CTX_QUIET, error, sizeof(error), NULL, 0) < 0,
		 "params.backend=thread with its probe failing");
	CHECK(strstr(error, "EPERM"), "params.error must give the reason, got \"%s\"", error);
	setenv("CAIO_IMPL", "thread", 1);
	CHECK(backend_of(NULL, CAIO_CTX_QUIET, error, sizeof(error), NULL, 0) < 0,
		 "CAIO_IMPL=thread with its probe failing");
	CHECK(strstr(error, "EPERM"), "params.error must give the reason, got \"%s\"", error);
	/* The caller's fallback: ask again without the environment. */
	CHECK_EQ(simple_backend(NULL, CAIO_CTX_NO_ENV), first_available_except(CAIO_BACKEND_THREAD),
		 "automatic selection after the forced backend failed");
	CHECK_EQ(simple_backend("sync", 0), CAIO_BACKEND_SYNC, "the hook spares other backends");
out:
	reset_env();
}

/* The first available backend after the ones the hook breaks. */
static int first_available_after(int first)
{
	int b;

	for (b = first; b < CAIO_BACKEND_COUNT; b++)
		if (available[b])
			return b;
	return -1;
}

static void case_probe_hook(void)
{
	char reason[256], selection[512], error[256];

	reset_env();
	setenv("CAIO_TEST_PROBE_FAIL", "uring:ENOSYS", 1);
	reason[0] = '\0';
	if (available[CAIO_BACKEND_URING]) {
		CHECK_EQ(caio_probe(CAIO_BACKEND_URING, reason, sizeof(reason)), -ENOSYS,
			 "caio_probe(uring) with CAIO_TEST_PROBE_FAIL=uring:ENOSYS");
		CHECK(strstr(reason, "ENOSYS"), "probe reason must name ENOSYS: \"%s\"", reason);
	}
	CHECK_EQ(caio_probe(CAIO_BACKEND_THREAD, reason, sizeof(reason)), 0,
		 "caio_probe(thread) with only uring broken");
	CHECK_EQ(backend_of(NULL, CAIO_CTX_QUIET, NULL, 0, selection, sizeof(selection)),
		 first_available_after(CAIO_BACKEND_LINUX), "automatic selection without uring");
	/* Where uring is not even built, that is the reason recorded instead. */
	CHECK(strstr(selection, "uring") &&
	      (strstr(selection, "ENOSYS") || !available[CAIO_BACKEND_URING]),
	      "caio_ctx_selection() must record why uring was skipped: \"%s\"", selection);
	t_note("selection: %s", selection);

	setenv("CAIO_TEST_PROBE_FAIL", "uring:ENOSYS,linux:EPERM", 1);
	if (available[CAIO_BACKEND_LINUX])
		CHECK_EQ(caio_probe(CAIO_BACKEND_LINUX, reason, sizeof(reason)), -EPERM,
			 "caio_probe(linux) with CAIO_TEST_PROBE_FAIL=...,linux:EPERM");
	CHECK_EQ(backend_of(NULL, CAIO_CTX_QUIET, NULL, 0, selection, sizeof(selection)),
		 CAIO_BACKEND_THREAD, "automatic selection without uring and linux");
	CHECK(strstr(selection, "uring") && strstr(selection, "linux") &&
	      (strstr(selection, "ENOSYS") || !available[CAIO_BACKEND_URING]) &&
	      (strstr(selection, "EPERM") || !available[CAIO_BACKEND_LINUX]),
	      "caio_ctx_selection() must record both reasons: \"%s\"", selection);
	t_note("selection: %s", selection);

	setenv("CAIO_TEST_PROBE_FAIL", "uring:ENOSYS,linux:ENOSYS,thread:EAGAIN,sync:ENOMEM", 1);
	CHECK(backend_of(NULL, CAIO_CTX_QUIET, error, sizeof(error), NULL, 0) < 0,
	      "automatic selection with every probe failing made a context");
	CHECK(error[0], "no reason in params.error when no backend works");
	t_note("no backend: %s", error);
out:
	reset_env();
}

/*
 * Structs carry their size so fields can be appended: the library must not
 * read params beyond params.size, nor write stats beyond st->size.  The
 * bytes after the declared size are 0xff/0xaa garbage here (a wild
 * backend pointer would crash).
 */
static void case_abi_sizes(void)
{
	union {
		struct caio_params p;
		unsigned char raw[sizeof(struct caio_params)];
	} params;
	union {
		struct caio_stats st;
		unsigned char raw[sizeof(struct caio_stats)];
	} stats;
	const size_t stats_size = offsetof(struct caio_stats, completions);
	caio_ctx *ctx = NULL;
	size_t i;

	reset_env();
	setenv("CAIO_IMPL", "thread", 1);
	memset(&params, 0xff, sizeof(params));
	params.p.size = offsetof(struct caio_params, backend);
	params.p.flags = CAIO_CTX_QUIET;
	params.p.max_requests = 16;
	params.p.batch = 0;
	params.p.threads = 2;
	params.p.sqpoll_idle_ms = 0;
	CHECK_EQ(caio_ctx_new(&ctx, &params.p), 0,
		 "caio_ctx_new with params.size ending before .backend");
	CHECK_EQ(caio_ctx_backend(ctx), CAIO_BACKEND_THREAD,
		 "backend with no .backend field declared and CAIO_IMPL=thread");
	CHECK_EQ(caio_ctx_max_requests(ctx), 16, "max_requests from the short params");

	memset(&stats, 0xaa, sizeof(stats));
	stats.st.size = stats_size;
	CHECK_EQ(caio_ctx_stats(ctx, &stats.st), 0, "caio_ctx_stats with a short size");
	CHECK_EQ(stats.st.requests, 0, "stats.requests inside the declared size");
	for (i = stats_size; i < sizeof(stats); i++)
		CHECK_EQ(stats.raw[i], 0xaa, "stats byte %zu, beyond the declared size %zu", i,
			 stats_size);
out:
	caio_ctx_destroy(ctx);
	reset_env();
}

static const struct {
	const char *name;
	void (*run)(void);
} cases[] = {
	{ "names", case_names },
	{ "probe", case_probe },
	{ "env-each", case_env_each },
	{ "env-invalid", case_env_invalid },
	{ "default-file", case_default_file },
	{ "precedence", case_precedence },
	{ "forced-unavailable", case_forced_unavailable },
	{ "probe-hook", case_probe_hook },
	{ "abi-sizes", case_abi_sizes },
};

int main(int argc, char **argv)
{
	char reason[256];
	unsigned i;

	t_init("selection", "selection", 60);
	if (argc > 1)
		t_set_filter(argv[1]);
	t_tmpdir_create();
	file_path = strdup(t_path("default_implementation"));
	if (!file_path)
		t_hard_error("out of memory");
	reset_env();
	for (i = CAIO_BACKEND_COUNT; i-- > 0;) {
		available[i] = caio_probe(i, reason, sizeof(reason)) == 0;
		if (available[i])
			automatic = i;
	}
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (!t_case_selected(cases[i].name))
			continue;
		t_begin(cases[i].name);
		cases[i].run();
		t_end();
	}
	t_tmpdir_remove();
	free((void *)file_path);
	return t_summary();
}
