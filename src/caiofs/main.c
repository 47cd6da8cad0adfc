/* main.c - caiofs: options, checks, mount, signals and the clean unmount. */
#include "config.h"
#include "caiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

struct cfs_fs cfs;

static bool log_to_stderr = true;

void cfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (log_to_stderr) {
		fputs(CFS_NAME ": ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	} else {
		vsyslog(level, fmt, ap);
	}
	va_end(ap);
}

uint64_t cfs_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void cfs_apply_conn_opts(struct fuse_conn_info *conn)
{
	if (cfs.conn_opts)
		fuse_apply_conn_info_opts(cfs.conn_opts, conn);
	cfs_log(LOG_INFO, "kernel protocol %u.%u: max_write %u, max_read %u, max_readahead %u, max_background %u, capabilities 0x%x of 0x%x",
		conn->proto_major, conn->proto_minor, conn->max_write,
		conn->max_read, conn->max_readahead, conn->max_background,
		conn->want, conn->capable);
}

/* ---- options -------------------------------------------------------------- */

enum {
	KEY_MAX_READ,
	KEY_DEFAULT_PERMISSIONS,
	KEY_ALLOW_OTHER,
	KEY_RO,
	KEY_FSNAME,
	KEY_SUBTYPE,
};

#define CFS_OPT(t, field, v) { t, offsetof(struct cfs_options, field), v }

static const struct fuse_opt cfs_opt_spec[] = {
	CFS_OPT("backend=%s", backend, 0),
	CFS_OPT("cache=%s", cache, 0),
	CFS_OPT("threads=%u", threads, 0),
	CFS_OPT("queue_depth=%u", queue_depth, 0),
	CFS_OPT("batch=%u", batch, 0),
	CFS_OPT("attr_timeout=%lf", attr_timeout, 0),
	CFS_OPT("attr_timeout=", attr_timeout_set, 1),
	CFS_OPT("entry_timeout=%lf", entry_timeout, 0),
	CFS_OPT("entry_timeout=", entry_timeout_set, 1),
	CFS_OPT("negative_timeout=%lf", negative_timeout, 0),
	CFS_OPT("negative_timeout=", negative_timeout_set, 1),
	CFS_OPT("keep_cache", keep_cache, 1),
	CFS_OPT("writeback_cache", writeback_cache, 1),
	CFS_OPT("no_writeback_cache", no_writeback_cache, 1),
	CFS_OPT("direct_io", direct_io, 1),
	CFS_OPT("read_ahead_kb=%u", read_ahead_kb, 0),
	CFS_OPT("spin_us=%u", spin_us, 0),
	CFS_OPT("spin_us=", spin_us_set, 1),
	CFS_OPT("read_ahead_kb=", read_ahead_kb_set, 1),
	CFS_OPT("no_splice", no_splice, 1),
	CFS_OPT("fuse_uring", fuse_uring, 1),
	CFS_OPT("fuse_uring_depth=%u", fuse_uring_depth, 0),
	FUSE_OPT_KEY("max_read=", KEY_MAX_READ),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("ro", KEY_RO),
	FUSE_OPT_KEY("fsname=", KEY_FSNAME),
	FUSE_OPT_KEY("subtype=", KEY_SUBTYPE),
	FUSE_OPT_END
};

static int fsname_given, subtype_given;

/* The first non-option is the source; the second is left for
 * fuse_parse_cmdline() as the mount point.  Kept options return 1. */
static int opt_proc(void *data, const char *arg, int key, struct fuse_args *out)
{
	struct cfs_options *o = data;

	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->source) {
			o->source = strdup(arg);
			return 0;
		}
		return 1;
	case KEY_MAX_READ:
		o->max_read = strtoul(arg + strlen("max_read="), NULL, 0);
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		o->default_permissions = 1;
		return 1;
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_RO:
		o->read_only = 1;
		return 1;
	case KEY_FSNAME:
		fsname_given = 1;
		return 1;
	case KEY_SUBTYPE:
		subtype_given = 1;
		return 1;
	default:
		return 1;
	}
}

static void usage(void)
{
	printf("usage: caiofs [options] SOURCE MOUNTPOINT\n\n"
	       "Shows the directory SOURCE at MOUNTPOINT; file data goes through libcaio.\n\n"
	       "caiofs options:\n"
	       "    -o backend=NAME        auto|uring|linux|thread|sync (default: auto, honours CAIO_IMPL)\n"
	       "    -o threads=N           event loops, each with its own caio context (default: 2 x CPUs, 8 x with sync)\n"
	       "    -o queue_depth=N       caio requests in flight per loop (default: 256)\n"
	       "    -o batch=N             most requests per kernel submission (default: 0, all that are ready)\n"
	       "    -o spin_us=N           a loop polls this long after its last request or completion (default: 100)\n"
	       "    -o cache=MODE          never|auto|always: kernel caching preset (default: auto)\n"
	       "    -o attr_timeout=S      attribute cache timeout in seconds (default: 1)\n"
	       "    -o entry_timeout=S     name lookup cache timeout in seconds (default: 1)\n"
	       "    -o negative_timeout=S  cache of failed lookups in seconds (default: 0)\n"
	       "    -o keep_cache          keep the page cache across opens\n"
	       "    -o writeback_cache     let the kernel cache writes (writeback)\n"
	       "    -o direct_io           bypass the kernel page cache\n"
	       "    -o max_read=N          largest read request (default: as large as the kernel allows)\n"
	       "    -o max_write=N         largest write request (default: 1 MiB)\n"
	       "    -o max_background=N    asynchronous requests the kernel may queue (default: threads x queue_depth)\n"
	       "    -o clone_fd            one FUSE device descriptor per loop\n"
	       "    -o no_splice           read the data of large writes from /dev/fuse instead of\n"
	       "                           splicing it into the source file (one more copy)\n"
	       "    -o read_ahead_kb=N     kernel readahead of the mount (default: 1024)\n"
	       "    -o fuse_uring          take FUSE requests through io_uring (Linux 6.14+, needs\n"
	       "                           /sys/module/fuse/parameters/enable_uring = 1)\n"
	       "    -o fuse_uring_depth=N  ring entries per CPU queue with fuse_uring (default: 32)\n\n"
	       "Security: with -o allow_other also give -o default_permissions, so that the\n"
	       "kernel checks every access against the owner, mode and ACLs of the source\n"
	       "files; caiofs creates files as the calling user (see caiofs(1)).\n"
	       "Standard mount options: allow_other, default_permissions, ro, fsname=NAME, ...\n\n");
}

static void print_version(void)
{
	printf("caiofs %s (libcaio %s, FUSE library %s)\n", PACKAGE_VERSION,
	       caio_version(), fuse_pkgversion());
}

static int apply_cache_preset(struct cfs_options *o)
{
	double timeout = 1.0;

	if (!o->cache || !strcmp(o->cache, "auto"))
		o->cache_mode = CFS_CACHE_AUTO;
	else if (!strcmp(o->cache, "never"))
		o->cache_mode = CFS_CACHE_NEVER, timeout = 0;
	else if (!strcmp(o->cache, "always"))
		o->cache_mode = CFS_CACHE_ALWAYS, timeout = 86400;
	else
		return -EINVAL;
	if (!o->attr_timeout_set)
		o->attr_timeout = timeout;
	if (!o->entry_timeout_set)
		o->entry_timeout = timeout;
	if (o->no_writeback_cache)
		o->writeback_cache = 0;
	/* With every file opened for direct I/O there is nothing to write
	 * back, and writeback caching would make the kernel keep mtime and
	 * size itself, which its direct writes never update. */
	if (o->writeback_cache && (o->direct_io || o->cache_mode == CFS_CACHE_NEVER)) {
		fprintf(stderr, "caiofs: writeback_cache ignored: %s bypasses the page cache\n",
			o->direct_io ? "direct_io" : "cache=never");
		o->writeback_cache = 0;
	}
	return 0;
}

/* Add -o name=value with the value escaped for fuse_opt. */
static int add_escaped_opt(struct fuse_args *args, const char *name,
			   const char *value)
{
	char *buf = malloc(strlen(name) + 2 * strlen(value) + 2), *p;
	int res;

	if (!buf)
		return -1;
	p = buf + sprintf(buf, "%s=", name);
	for (; *value; value++) {
		if (*value == ',' || *value == '\\')
			*p++ = '\\';
		*p++ = *value;
	}
	*p = '\0';
	res = fuse_opt_add_arg(args, "-o");
	if (!res)
		res = fuse_opt_add_arg(args, buf);
	free(buf);
	return res;
}

/* ---- checks that give a clear message instead of a failed mount ------------ */

static int check_source(struct cfs_options *o)
{
	struct stat st;

	if (!o->source) {
		fprintf(stderr, "caiofs: missing source directory\n");
		return -1;
	}
	if (stat(o->source, &st) < 0) {
		fprintf(stderr, "caiofs: source '%s': %s\n", o->source, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "caiofs: source '%s' is not a directory\n", o->source);
		return -1;
	}
	o->source_real = realpath(o->source, NULL);
	if (!o->source_real) {
		fprintf(stderr, "caiofs: source '%s': %s\n", o->source, strerror(errno));
		return -1;
	}
	return 0;
}

static bool is_mount_root(const char *path)
{
	struct statx stx;

	if (statx(AT_FDCWD, path, AT_NO_AUTOMOUNT, STATX_BASIC_STATS, &stx) < 0)
		return false;
	return (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	       (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
}

static bool path_within(const char *inner, const char *outer)
{
	size_t n = strlen(outer);

	if (!strcmp(outer, "/"))
		return true;
	return !strncmp(inner, outer, n) && (inner[n] == '/' || !inner[n]);
}

static int check_mountpoint(struct cfs_options *o, const char *given)
{
	struct stat st;
	char *real;

	if (!given) {
		fprintf(stderr, "caiofs: missing mount point\n");
		return -1;
	}
	if (!strncmp(given, "/dev/fd/", 8)) {	/* mounted by a privileged helper */
		o->mountpoint = strdup(given);
		return 0;
	}
	if (stat(given, &st) < 0) {
		fprintf(stderr, "caiofs: mount point '%s': %s%s\n", given, strerror(errno),
			errno == ENOTCONN ? " (a dead FUSE mount: fusermount3 -u it)" : "");
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "caiofs: mount point '%s' is not a directory\n", given);
		return -1;
	}
	real = realpath(given, NULL);
	if (!real) {
		fprintf(stderr, "caiofs: mount point '%s': %s\n", given, strerror(errno));
		return -1;
	}
	o->mountpoint = real;
	if (is_mount_root(real)) {
		fprintf(stderr, "caiofs: mount point '%s' is busy: a filesystem is already mounted there\n", real);
		return -1;
	}
	if (path_within(real, o->source_real)) {
		fprintf(stderr, "caiofs: mount point '%s' is inside the source '%s'\n",
			real, o->source_real);
		return -1;
	}
	return 0;
}

/*
 * Two loops per CPU: while one loop replies to a batch of completions (a
 * write to the device each), another reads and submits the next requests.
 * Measured with 4 KiB O_DIRECT reads at queue depth 32 on 2 CPUs: 0.70x
 * raw against 0.61x with one loop per CPU (the disk saw twice as few
 * requests in flight).  The sync backend blocks its loop for each
 * request, so there the loops are the only concurrency: eight per CPU,
 * 0.40-0.52x against 0.31x with two (same test; passthrough_ll 0.40-0.48).
 */
static unsigned default_loops(enum caio_backend backend)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned per_cpu = backend == CAIO_BACKEND_SYNC ? 8 : 2;

	if (cpus <= 0)
		cpus = 1;
	return cpus * per_cpu > 64 ? 64 : cpus * per_cpu;
}

/* Create one context now, before mounting: an unknown or unavailable
 * backend is an error on the command line, not a broken mount. */
static int check_backend(struct cfs_options *o)
{
	char err[256] = "";
	caio_ctx *ctx;
	int res;

	if (o->backend && !strcmp(o->backend, "auto")) {
		free(o->backend);
		o->backend = NULL;
	}
	if (o->backend && caio_backend_from_name(o->backend) < 0) {
		fprintf(stderr, "caiofs: unknown backend '%s' (expected auto, uring, linux, thread or sync)\n",
			o->backend);
		return -1;
	}
	res = cfs_loop_new_ctx(&ctx, err, sizeof(err));
	if (res < 0) {
		fprintf(stderr, "caiofs: backend '%s' is not available: %s\n",
			o->backend ? o->backend : "auto", err[0] ? err : caio_strerror(res));
		return -1;
	}
	/* The loops' contexts are made after daemonizing (a context belongs
	 * to its process); they select the same way. */
	cfs.backend_name = caio_backend_name(caio_ctx_backend(ctx));
	snprintf(cfs.selection, sizeof(cfs.selection), "%s", caio_ctx_selection(ctx));
	if (!o->threads)
		o->threads = default_loops(caio_ctx_backend(ctx));
	caio_ctx_destroy(ctx);
	return 0;
}

static int check_numbers(struct cfs_options *o)
{
	if (o->threads > 1024) {
		fprintf(stderr, "caiofs: threads=%u is too many\n", o->threads);
		return -1;
	}
	if (!o->fuse_uring_depth)
		o->fuse_uring_depth = 32;
	if (o->fuse_uring_depth > 1024) {
		fprintf(stderr, "caiofs: fuse_uring_depth=%u is too large (at most 1024)\n",
			o->fuse_uring_depth);
		return -1;
	}
#ifndef HAVE_LIBURING
	if (o->fuse_uring) {
		fprintf(stderr, "caiofs: -o fuse_uring: this caiofs was built without liburing\n");
		return -1;
	}
#endif
	if (!o->queue_depth)
		o->queue_depth = 256;
	if (!o->read_ahead_kb_set)
		o->read_ahead_kb = 1024;
	/* Measured with tar -x of /usr/include: 2x faster with a spinner
	 * (each request of a one-at-a-time client skips the loop's wake-up),
	 * for 5% less at queue depth 32 where spinning steals CPU. */
	if (!o->spin_us_set)
		o->spin_us = 100;
	if (o->queue_depth > 65536) {
		fprintf(stderr, "caiofs: queue_depth=%u is too large (at most 65536)\n",
			o->queue_depth);
		return -1;
	}
	if (apply_cache_preset(o) < 0) {
		fprintf(stderr, "caiofs: unknown cache mode '%s' (expected never, auto or always)\n",
			o->cache);
		return -1;
	}
	return 0;
}

/* ---- process set-up ---------------------------------------------------------- */

/* Raise the descriptor limit to its hard maximum and size the descriptor
 * cache to a quarter of it: the rest belongs to the files users open. */
static unsigned setup_fd_limit(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	n = rl.rlim_cur / 4;
	if (n < 64)
		n = 64;
	if (n > 65536)
		n = 65536;
	return (unsigned)n;
}

static int setup_groups(void)
{
	int n = getgroups(0, NULL);

	if (n < 0)
		return -errno;
	cfs.daemon_groups = calloc(n + 1, sizeof(gid_t));
	if (!cfs.daemon_groups)
		return -ENOMEM;
	cfs.daemon_ngroups = getgroups(n, cfs.daemon_groups);
	if (cfs.daemon_ngroups < 0)
		cfs.daemon_ngroups = 0;
	return 0;
}

static int setup_signals(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	/* Blocked before the loops start: only the main thread takes them. */
	if (pthread_sigmask(SIG_BLOCK, &set, NULL))
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* ---- unmount ------------------------------------------------------------------ */

static int run_fusermount(const char *mnt, bool lazy)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (lazy)
			execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt, (char *)NULL);
		else
			execlp("fusermount3", "fusermount3", "-u", "--", mnt, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EBUSY;
}

/*
 * Unmount while the loops keep serving: the kernel writes back dirty pages
 * and finishes every request before the device reports ENODEV, which is
 * what ends the loops.  A busy mount is detached instead; it goes away
 * (and the daemon exits) when its last user closes it.
 */
static void unmount_now(void)
{
	const char *mnt = cfs.opt.mountpoint;
	int res;

	if (geteuid() == 0) {
		res = umount2(mnt, UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
		if (res == -EBUSY) {
			cfs_log(LOG_WARNING, "%s is busy: detached it, exiting when its last user is gone", mnt);
			res = umount2(mnt, MNT_DETACH | UMOUNT_NOFOLLOW) < 0 ? -errno : 0;
		}
	} else {
		res = run_fusermount(mnt, false);
		if (res)
			res = run_fusermount(mnt, true);
	}
	if (res && res != -EINVAL) {
		cfs_log(LOG_ERR, "unmounting %s: %s; stopping", mnt, caio_strerror(res));
		eventfd_write(cfs.stop_fd, 1);
	}
}

static void handle_signal(int sfd, unsigned *terms)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			cfs_stats_log_summary("SIGUSR1");
			continue;
		}
		if ((*terms)++ == 0) {
			cfs_log(LOG_INFO, "%s: unmounting %s", strsignal(si.ssi_signo),
				cfs.opt.mountpoint);
			unmount_now();
		} else {
			cfs_log(LOG_WARNING, "%s again: stopping now", strsignal(si.ssi_signo));
			eventfd_write(cfs.stop_fd, 1);
		}
	}
}

/* The main thread: signals and the loops ending. */
static void main_wait(int sfd)
{
	struct pollfd p[2] = {
		{ .fd = sfd, .events = POLLIN },
		{ .fd = cfs.loops_done_fd, .events = POLLIN },
	};
	unsigned terms = 0;
	uint64_t done = 0, v;

	while (done < cfs.nloops) {
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents)
			handle_signal(sfd, &terms);
		if (p[1].revents && eventfd_read(cfs.loops_done_fd, &v) == 0)
			done += v;
	}
}

/* ---- start -------------------------------------------------------------------- */

static int parse_args(struct fuse_args *args, struct fuse_cmdline_opts *co)
{
	if (fuse_opt_parse(args, &cfs.opt, cfs_opt_spec, opt_proc) < 0)
		return -1;
	if (fuse_parse_cmdline(args, co) != 0)
		return -1;
	cfs.opt.foreground = co->foreground;
	cfs.opt.debug = co->debug;
	cfs.opt.clone_fd = co->clone_fd;
	if (co->singlethread)
		cfs.opt.threads = 1;
	cfs.conn_opts = fuse_parse_conn_info_opts(args);
	return cfs.conn_opts ? 0 : -1;
}

static int open_source(unsigned fd_cache)
{
	int res;

	cfs.source_fd = open(cfs.opt.source_real, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cfs.source_fd < 0) {
		fprintf(stderr, "caiofs: source '%s': %s\n", cfs.opt.source_real, strerror(errno));
		return -1;
	}
	res = cfs_inode_init(cfs.source_fd, fd_cache);
	if (res < 0) {
		fprintf(stderr, "caiofs: %s\n", caio_strerror(res));
		return -1;
	}
	return 0;
}

/*
 * allow_other without default_permissions would let every user open what
 * only the daemon (root) may: the kernel must check each access against
 * the source's owners, modes and ACLs, so allow_other implies it.
 */
static int add_implied_opts(struct fuse_args *args)
{
	if (!cfs.opt.allow_other || cfs.opt.default_permissions)
		return 0;
	cfs.opt.default_permissions = 1;
	return fuse_opt_add_arg(args, "-odefault_permissions");
}

static int add_name_opts(struct fuse_args *args)
{
	if (!fsname_given && add_escaped_opt(args, "fsname", cfs.opt.source_real))
		return -1;
	if (!subtype_given && add_escaped_opt(args, "subtype", CFS_NAME))
		return -1;
	return 0;
}

/*
 * The kernel offers FUSE at most its default readahead (128 KiB) at INIT;
 * sequential reads then arrive in 128 KiB requests.  The mount's bdi
 * accepts more once mounted: 1 MiB lets one request carry max_write.
 * stat() of the root waits for INIT, which the loops are serving.
 */
static void tune_read_ahead(void)
{
	char path[96], value[32];
	struct stat st;
	int fd, n;

	if (!cfs.opt.read_ahead_kb || strncmp(cfs.opt.mountpoint, "/", 1) ||
	    stat(cfs.opt.mountpoint, &st) < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(st.st_dev), minor(st.st_dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = snprintf(value, sizeof(value), "%u", cfs.opt.read_ahead_kb);
	if (write(fd, value, n) != n)
		cfs_log(LOG_WARNING, "setting %s: %m", path);
	close(fd);
}

static void log_mounted(unsigned fd_cache, int control_fd)
{
	cfs_log(LOG_INFO, "mounted %s on %s: backend %s, %u loops, queue depth %u, clone_fd %s, descriptor cache %u",
		cfs.opt.source_real, cfs.opt.mountpoint, cfs.backend_name,
		cfs.nloops, cfs.opt.queue_depth, cfs.opt.clone_fd ? "yes" : "no",
		fd_cache);
	if (!cfs.handles)
		cfs_log(LOG_WARNING, "the source has no file handles (%s): every remembered inode keeps a descriptor, large trees may hit the open-file limit",
			cfs.handles_reason);
	if (control_fd < 0)
		cfs_log(LOG_WARNING, "no control socket: caiofs-stat will not see this mount");
	else if (cfs_control_waiting())
		cfs_log(LOG_WARNING, "the control address of %s is taken (by the daemon of a previous mount, still exiting?): caiofs-stat sees this mount once it is free",
			cfs.opt.mountpoint);
	if (cfs.opt.allow_other)
		cfs_log(LOG_INFO, "allow_other: the kernel checks permissions (default_permissions)");
	if (cfs.opt.fuse_uring)
		cfs_log(LOG_INFO, "fuse_uring: FUSE requests through io_uring, %u entries per CPU queue",
			cfs.opt.fuse_uring_depth);
}

/* Everything after the mount: loops, the main wait, the clean exit. */
static int serve(unsigned fd_cache)
{
	int sfd, control_fd, res;

	sfd = setup_signals();
	cfs.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cfs.loops_done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cfs.ring_start_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sfd < 0 || cfs.stop_fd < 0 || cfs.loops_done_fd < 0 || cfs.ring_start_fd < 0) {
		cfs_log(LOG_ERR, "setting up: %m");
		return 1;
	}
	cfs.start_ns = cfs_now_ns();
	if (cfs_control_start() < 0)
		cfs_log(LOG_WARNING, "no control thread: caiofs-stat will not answer");
	res = cfs_loops_start();
	if (res < 0) {
		cfs_log(LOG_ERR, "starting the loops: %s", caio_strerror(res));
		eventfd_write(cfs.stop_fd, 1);
		cfs_loops_join();
		cfs_control_stop();
		cfs_loops_free();
		return 1;
	}
	control_fd = cfs.control_fd;
	tune_read_ahead();
	log_mounted(fd_cache, control_fd);
	main_wait(sfd);
	cfs_loops_join();
	cfs_log(LOG_INFO, "unmounted %s", cfs.opt.mountpoint);
	cfs_stats_log_summary("unmount");
	cfs_control_stop();
	cfs_loops_free();
	close(sfd);
	return 0;
}

static int mount_and_serve(struct fuse_args *args, unsigned fd_cache)
{
	int res = 1;

	/* Ready before the mount appears: the log says which backend, and
	 * caiofs-stat connects as soon as the mount point is mounted. */
	cfs_log(LOG_INFO, "backend %s; selection: %s", cfs.backend_name, cfs.selection);
	cfs.control_fd = cfs_control_open();
	cfs.se = fuse_session_new(args, &cfs_ops, sizeof(cfs_ops), NULL);
	if (!cfs.se)
		return 1;
	if (fuse_session_mount(cfs.se, cfs.opt.mountpoint) != 0)
		goto out_destroy;
	if (fuse_session_custom_io(cfs.se, &cfs_custom_io, fuse_session_fd(cfs.se)) != 0)
		goto out_unmount;
	if (fuse_daemonize(cfs.opt.foreground) != 0)
		goto out_unmount;
	if (!cfs.opt.foreground) {
		log_to_stderr = false;
		openlog(CFS_NAME, LOG_PID, LOG_DAEMON);
	}
	res = serve(fd_cache);
out_unmount:
	fuse_session_unmount(cfs.se);
out_destroy:
	fuse_session_destroy(cfs.se);
	if (cfs.control_fd >= 0)
		close(cfs.control_fd);
	return res;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts co;
	unsigned fd_cache;
	int res = 1;

	memset(&co, 0, sizeof(co));
	umask(0);	/* modes arrive masked by the kernel (or with the caller's umask) */
	if (parse_args(&args, &co) < 0)
		goto out;
	if (co.show_help) {
		usage();
		fuse_cmdline_help();
		fuse_lowlevel_help();
		res = 0;
		goto out;
	}
	if (co.show_version) {
		print_version();
		res = 0;
		goto out;
	}
	if (check_numbers(&cfs.opt) || check_source(&cfs.opt) ||
	    check_mountpoint(&cfs.opt, co.mountpoint) || check_backend(&cfs.opt))
		goto out;
	cfs.nloops = cfs.opt.threads;
	cfs.dont_mask = 1;
	fd_cache = setup_fd_limit();
	if (setup_groups() < 0 || open_source(fd_cache) < 0 ||
	    add_name_opts(&args) < 0 || add_implied_opts(&args) < 0)
		goto out;
	res = mount_and_serve(&args, fd_cache);
	cfs_ops_exit();
	cfs_inode_exit();
out:
	free(co.mountpoint);
	fuse_opt_free_args(&args);
	return res;
}
