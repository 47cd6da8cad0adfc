/* select.c - backend names, CAIO_IMPL / default_implementation, probing and automatic selection. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#ifndef CAIO_SYSCONFDIR
#define CAIO_SYSCONFDIR "/etc"
#endif

#define ACCEPTED_NAMES	"uring, linux, thread, sync (alias: python)"

static const char *const backend_names[CAIO_BACKEND_COUNT] = {
	[CAIO_BACKEND_URING] = "uring",
	[CAIO_BACKEND_LINUX] = "linux",
	[CAIO_BACKEND_THREAD] = "thread",
	[CAIO_BACKEND_SYNC] = "sync",
};

/* The call each backend's probe makes, for simulated failures. */
static const char *const probe_calls[CAIO_BACKEND_COUNT] = {
	[CAIO_BACKEND_URING] = "io_uring_setup",
	[CAIO_BACKEND_LINUX] = "io_setup",
	[CAIO_BACKEND_THREAD] = "pthread_create",
	[CAIO_BACKEND_SYNC] = "sync",
};

const char *caio_backend_name(enum caio_backend backend)
{
	if ((unsigned)backend >= CAIO_BACKEND_COUNT)
		return "unknown";
	return backend_names[backend];
}

int caio_backend_from_name(const char *name)
{
	if (!name)
		return -EINVAL;
	for (int i = 0; i < CAIO_BACKEND_COUNT; i++)
		if (!strcmp(name, backend_names[i]))
			return i;
	if (!strcmp(name, "python"))
		return CAIO_BACKEND_SYNC;
	return -EINVAL;
}

const struct caio_backend_ops *caio__backend_ops(enum caio_backend backend)
{
	switch (backend) {
#ifdef HAVE_LIBURING
	case CAIO_BACKEND_URING:
		return &caio__backend_uring;
#endif
#ifdef HAVE_LIBAIO
	case CAIO_BACKEND_LINUX:
		return &caio__backend_linux;
#endif
	case CAIO_BACKEND_THREAD:
		return &caio__backend_thread;
	case CAIO_BACKEND_SYNC:
		return &caio__backend_sync;
	default:
		return NULL;
	}
}

const char *caio__errno_name(int err)
{
	const char *name;

	if (err < 0)
		err = -err;
	name = strerrorname_np(err);
	return name ? name : "EUNKNOWN";
}

const char *caio_strerror(int negative_errno)
{
	const char *desc = strerrordesc_np(negative_errno < 0 ? -negative_errno : negative_errno);

	return desc ? desc : "Unknown error";
}

const char *caio_version(void)
{
	return PACKAGE_VERSION;
}

const char *caio_default_implementation_path(void)
{
	const char *env = getenv("CAIO_DEFAULT_IMPLEMENTATION");

	if (env && *env)
		return env;
	return CAIO_SYSCONFDIR "/caio/default_implementation";
}

static char *strip(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* The first line that is neither blank nor a '#' comment, or -ENOENT. */
static int read_first_line(const char *path, char *out, size_t len)
{
	char line[256];
	FILE *f = fopen(path, "re");
	int err = -ENOENT;

	if (!f)
		return -ENOENT;
	while (fgets(line, sizeof(line), f)) {
		char *s = strip(line);

		if (!*s || *s == '#')
			continue;
		snprintf(out, len, "%s", s);
		err = 0;
		break;
	}
	fclose(f);
	return err;
}

static void append(char *buf, size_t len, const char *fmt, ...)
{
	size_t used;
	va_list ap;

	if (!buf || !len)
		return;
	used = strnlen(buf, len);
	if (used + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + used, len - used, fmt, ap);
	va_end(ap);
}

int caio_backend_requested(char *buf, size_t len)
{
	const char *env = getenv("CAIO_IMPL");
	const char *path = caio_default_implementation_path();
	char name[128];
	int id, err = -ENOENT;

	if (buf && len)
		buf[0] = '\0';
	if (env && *env) {
		id = caio_backend_from_name(env);
		if (id >= 0)
			return id;
		append(buf, len, "CAIO_IMPL=%s is not a backend; accepted values: "
		       ACCEPTED_NAMES "; choosing automatically", env);
		err = -EINVAL;
	}
	if (read_first_line(path, name, sizeof(name)) < 0)
		return err;
	id = caio_backend_from_name(name);
	if (id >= 0)
		return id;
	append(buf, len, "%s%s names '%s', not a backend; accepted values: "
	       ACCEPTED_NAMES, buf && *buf ? "; " : "", path, name);
	return -EINVAL;
}

/* CAIO_TEST_PROBE_FAIL="uring:ENOSYS,linux:EPERM" makes those probes fail:
 * the only way to test fallback on a machine where everything works. */
int caio__probe_hook(enum caio_backend backend, char *reason, size_t len)
{
	const char *spec = getenv("CAIO_TEST_PROBE_FAIL");
	const char *name = caio_backend_name(backend);
	size_t nlen = strlen(name);

	for (const char *p = spec; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		char errname[32] = "";
		int err = ENOSYS;

		if (strncmp(p, name, nlen) || (p[nlen] != ':' && p[nlen] != ',' && p[nlen]))
			continue;
		if (p[nlen] == ':')
			sscanf(p + nlen + 1, "%31[A-Z0-9]", errname);
		for (int e = 1; e < 134 && *errname; e++) {
			const char *n = strerrorname_np(e);

			if (n && !strcmp(n, errname)) {
				err = e;
				break;
			}
		}
		snprintf(reason, len, "%s: %s%s (simulated by CAIO_TEST_PROBE_FAIL)",
			 probe_calls[backend], caio__errno_name(err),
			 backend == CAIO_BACKEND_URING && err == ENOSYS ?
			 " (blocked by seccomp?)" : "");
		return -err;
	}
	return 0;
}

static int try_backend(caio_ctx *ctx, enum caio_backend backend, char *reason,
		       size_t len)
{
	const struct caio_backend_ops *ops = caio__backend_ops(backend);
	int err;

	reason[0] = '\0';
	if (!ops) {
		snprintf(reason, len, "not built in (configure did not find %s)",
			 backend == CAIO_BACKEND_URING ? "liburing" : "libaio");
		return -ENOTSUP;
	}
	err = caio__probe_hook(backend, reason, len);
	if (err)
		return err;
	ctx->ops = ops;
	ctx->backend = backend;
	ctx->native_ops = 0;
	err = ops->init(ctx, reason, len);
	if (err && !reason[0])
		snprintf(reason, len, "init: %s", caio__errno_name(err));
	return err;
}

/* A backend named by the caller or CAIO_IMPL: that one or an error. */
static int select_forced(caio_ctx *ctx, enum caio_backend backend,
			 const char *who, char *err_buf, size_t err_len)
{
	char reason[256];
	int err = try_backend(ctx, backend, reason, sizeof(reason));

	if (err) {
		if (err_buf && err_len)
			snprintf(err_buf, err_len, "backend %s (%s) is unavailable: %s",
				 caio_backend_name(backend), who, reason);
		return err;
	}
	append(ctx->selection, sizeof(ctx->selection), "%s (%s)",
	       caio_backend_name(backend), who);
	return 0;
}

static int select_auto(caio_ctx *ctx, int preferred, char *err_buf, size_t err_len)
{
	char reason[256];
	int err = -ENOSYS;

	if (preferred >= 0) {
		err = try_backend(ctx, preferred, reason, sizeof(reason));
		if (!err) {
			append(ctx->selection, sizeof(ctx->selection), "%s (%s)",
			       caio_backend_name(preferred), caio_default_implementation_path());
			return 0;
		}
		append(ctx->selection, sizeof(ctx->selection), "%s from %s: %s; ",
		       caio_backend_name(preferred), caio_default_implementation_path(), reason);
	}
	for (int b = 0; b < CAIO_BACKEND_COUNT; b++) {
		if (b == preferred)
			continue;
		err = try_backend(ctx, b, reason, sizeof(reason));
		if (!err) {
			append(ctx->selection, sizeof(ctx->selection), "%s (automatic)",
			       caio_backend_name(b));
			return 0;
		}
		append(ctx->selection, sizeof(ctx->selection), "%s: %s; ",
		       caio_backend_name(b), reason);
	}
	if (err_buf && err_len)
		snprintf(err_buf, err_len, "no backend works: %s", ctx->selection);
	return err;
}

int caio__select(caio_ctx *ctx, const char *requested, char *err_buf, size_t err_len)
{
	char warning[512] = "";
	int id;

	if (requested && *requested && strcmp(requested, "auto")) {
		id = caio_backend_from_name(requested);
		if (id < 0) {
			if (err_buf && err_len)
				snprintf(err_buf, err_len, "unknown backend '%s'; accepted values: "
					 ACCEPTED_NAMES ", auto", requested);
			return -EINVAL;
		}
		return select_forced(ctx, id, "requested", err_buf, err_len);
	}
	if (ctx->flags & CAIO_CTX_NO_ENV)
		return select_auto(ctx, -1, err_buf, err_len);

	id = caio_backend_requested(warning, sizeof(warning));
	if (warning[0]) {
		if (!(ctx->flags & CAIO_CTX_QUIET))
			fprintf(stderr, "libcaio: warning: %s\n", warning);
		append(ctx->selection, sizeof(ctx->selection), "warning: %s; ", warning);
	}
	/* CAIO_IMPL forces; the default_implementation file only prefers. */
	if (id >= 0 && getenv("CAIO_IMPL") && caio_backend_from_name(getenv("CAIO_IMPL")) == id)
		return select_forced(ctx, id, "CAIO_IMPL", err_buf, err_len);
	return select_auto(ctx, id, err_buf, err_len);
}

int caio_probe(enum caio_backend backend, char *buf, size_t len)
{
	struct caio_params params = {
		.size = sizeof(params),
		.flags = CAIO_CTX_NO_ENV | CAIO_CTX_QUIET,
		.max_requests = 8,
		.threads = 1,
		.backend = caio_backend_name(backend),
		.error = buf,
		.error_len = len,
	};
	caio_ctx *ctx;
	int err;

	if ((unsigned)backend >= CAIO_BACKEND_COUNT)
		return -EINVAL;
	err = caio_ctx_new(&ctx, &params);
	if (err)
		return err;
	if (buf && len)
		snprintf(buf, len, "ok");
	caio_ctx_destroy(ctx);
	return 0;
}

const char *caio_op_name(enum caio_op op)
{
	static const char *const names[CAIO_OP_COUNT] = {
		[CAIO_OP_READ] = "read", [CAIO_OP_WRITE] = "write",
		[CAIO_OP_READV] = "readv", [CAIO_OP_WRITEV] = "writev",
		[CAIO_OP_FSYNC] = "fsync", [CAIO_OP_FDSYNC] = "fdsync",
		[CAIO_OP_FALLOCATE] = "fallocate", [CAIO_OP_OPENAT] = "openat",
		[CAIO_OP_CLOSE] = "close", [CAIO_OP_STATX] = "statx",
		[CAIO_OP_UNLINKAT] = "unlinkat", [CAIO_OP_RENAMEAT] = "renameat",
		[CAIO_OP_MKDIRAT] = "mkdirat", [CAIO_OP_SYMLINKAT] = "symlinkat",
		[CAIO_OP_LINKAT] = "linkat", [CAIO_OP_FTRUNCATE] = "ftruncate",
		[CAIO_OP_SPLICE] = "splice",
	};

	if ((unsigned)op >= CAIO_OP_COUNT)
		return "unknown";
	return names[op];
}
