/* ops.c - the fuse_lowlevel_ops handlers: metadata runs here, data goes to data.c. */
#include "config.h"
#include "caiofs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <linux/fs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <unistd.h>

/* copy_file_range runs in the loop thread: bound how long one call may hold it. */
#define CFS_COPY_RANGE_MAX	(64u << 20)
#define CFS_DIR_BUF		32768

/* An open directory (fi->fh): a getdents64 stream that can resume at an offset. */
struct cfs_dir {
	int fd;
	struct cfs_dir *prev, *next;	/* every open directory, for the exit */
	off_t pos;		/* offset of the next entry to return */
	size_t len, cur;	/* bytes in buf, position of the next entry */
	char buf[CFS_DIR_BUF];
};

struct linux_dirent64 {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

/*
 * Every open file and directory, so that what the kernel never released
 * (a lazily detached mount, an aborted connection) is closed at exit.
 */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cfs_file *open_files;
static struct cfs_dir *open_dirs;

static void track_file(struct cfs_file *f, bool add)
{
	pthread_mutex_lock(&open_lock);
	if (add) {
		f->all_prev = NULL;
		f->all_next = open_files;
		if (open_files)
			open_files->all_prev = f;
		open_files = f;
	} else {
		if (f->all_prev)
			f->all_prev->all_next = f->all_next;
		else
			open_files = f->all_next;
		if (f->all_next)
			f->all_next->all_prev = f->all_prev;
	}
	pthread_mutex_unlock(&open_lock);
}

static void track_dir(struct cfs_dir *d, bool add)
{
	pthread_mutex_lock(&open_lock);
	if (add) {
		d->prev = NULL;
		d->next = open_dirs;
		if (open_dirs)
			open_dirs->prev = d;
		open_dirs = d;
	} else {
		if (d->prev)
			d->prev->next = d->next;
		else
			open_dirs = d->next;
		if (d->next)
			d->next->prev = d->prev;
	}
	pthread_mutex_unlock(&open_lock);
}

static struct cfs_file *file_of(struct fuse_file_info *fi)
{
	return (struct cfs_file *)(uintptr_t)fi->fh;
}

static struct cfs_dir *dir_of(struct fuse_file_info *fi)
{
	return (struct cfs_dir *)(uintptr_t)fi->fh;
}

int cfs_dir_fd(struct fuse_file_info *fi)
{
	return dir_of(fi)->fd;
}

/*
 * Credentials.  Creating operations run with the caller's fsuid, fsgid,
 * supplementary groups and umask so that what they create belongs to the
 * caller and the backing filesystem applies set-group-ID directories,
 * default ACLs and its own permission checks exactly as for a local
 * process.  fsuid/fsgid and the groups are per thread in the kernel; the
 * raw syscalls keep glibc from broadcasting them to every thread.
 */
static bool creds_possible;

int cfs_creds_thread_init(void)
{
	creds_possible = geteuid() == 0;
	/* A private umask per thread: creating ops set the caller's. */
	if (cfs.dont_mask && unshare(CLONE_FS) < 0)
		return -errno;
	umask(0);
	return 0;
}

struct cfs_creds {
	bool switched;
	bool groups;
};

static int set_caller_groups(fuse_req_t req)
{
	gid_t small[64], *list = small;
	int n = fuse_req_getgroups(req, 64, small), res;

	if (n > 64) {
		list = malloc(n * sizeof(*list));
		if (!list)
			return -ENOMEM;
		n = fuse_req_getgroups(req, n, list);
	}
	if (n < 0)
		n = 0;		/* no /proc: primary group only */
	res = syscall(SYS_setgroups, n, list) < 0 ? -errno : 0;
	if (list != small)
		free(list);
	return res;
}

static int creds_enter(fuse_req_t req, struct cfs_creds *c)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int res;

	c->switched = c->groups = false;
	if (cfs.dont_mask)
		umask(ctx->umask);
	if (!creds_possible || (ctx->uid == geteuid() && ctx->gid == getegid()))
		return 0;	/* already ours: skip four syscalls */
	if (ctx->uid != 0) {
		res = set_caller_groups(req);
		if (res)
			return res;
		c->groups = true;
	}
	syscall(SYS_setfsgid, ctx->gid);
	syscall(SYS_setfsuid, ctx->uid);
	c->switched = true;
	if ((uid_t)syscall(SYS_setfsuid, -1) != ctx->uid ||
	    (gid_t)syscall(SYS_setfsgid, -1) != ctx->gid)
		return -EPERM;
	return 0;
}

static void creds_leave(struct cfs_creds *c)
{
	if (c->switched) {
		syscall(SYS_setfsuid, geteuid());
		syscall(SYS_setfsgid, getegid());
	}
	if (c->groups)
		syscall(SYS_setgroups, cfs.daemon_ngroups, cfs.daemon_groups);
}

static bool caller_in_group(fuse_req_t req, gid_t gid)
{
	gid_t small[64], *list = small;
	int n, i;
	bool found = false;

	if (fuse_req_ctx(req)->gid == gid)
		return true;
	n = fuse_req_getgroups(req, 64, small);
	if (n > 64) {
		list = malloc(n * sizeof(*list));
		n = list ? fuse_req_getgroups(req, n, list) : -ENOMEM;
	}
	for (i = 0; i < n && i >= 0 && !found; i++)
		found = list[i] == gid;
	if (list != small)
		free(list);
	return found;
}

/*
 * Writes and truncations by a user other than root clear the file's
 * set-user-ID bit, and its set-group-ID bit when group execution is on or
 * the writer is not in the file's group, as a local filesystem does.  Our
 * own writes run as root and would keep them; the kernel's FUSE client only
 * clears set-group-ID together with group execution.  So the daemon does it.
 */
int cfs_kill_priv(fuse_req_t req, int fd)
{
	mode_t kill = 0;
	struct stat st;

	if (fuse_req_ctx(req)->uid == 0 || fstat(fd, &st) < 0 ||
	    !S_ISREG(st.st_mode) || !(st.st_mode & (S_ISUID | S_ISGID)))
		return 0;
	if (st.st_mode & S_ISUID)
		kill |= S_ISUID;
	if ((st.st_mode & S_ISGID) && ((st.st_mode & S_IXGRP) ||
				       !caller_in_group(req, st.st_gid)))
		kill |= S_ISGID;
	if (!kill)
		return 0;
	return fchmod(fd, st.st_mode & ~kill & 07777) < 0 ? -errno : 0;
}

static void reply_entry_or_err(fuse_req_t req, int res,
			       const struct fuse_entry_param *e)
{
	if (res)
		fuse_reply_err(req, -res);
	else if (fuse_reply_entry(req, e) == -ENOENT)
		cfs_inode_forget(cfs_inode(e->ino), 1);	/* interrupted: undo */
}

static void cfs_init(void *userdata, struct fuse_conn_info *conn)
{
	unsigned want = FUSE_CAP_ASYNC_READ | FUSE_CAP_ASYNC_DIO |
			FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ATOMIC_O_TRUNC |
			FUSE_CAP_AUTO_INVAL_DATA | FUSE_CAP_READDIRPLUS |
			FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_IOCTL_DIR;

	if (cfs.opt.writeback_cache)
		want |= FUSE_CAP_WRITEBACK_CACHE;
	if (cfs.opt.cache_mode == CFS_CACHE_ALWAYS)
		want |= FUSE_CAP_CACHE_SYMLINKS;
	if (cfs.dont_mask)
		want |= FUSE_CAP_DONT_MASK;
	/* With default_permissions the kernel checks access itself: let it
	 * see ACLs, or a "user:x:---" entry would not deny. */
	if (cfs.opt.default_permissions && cfs.dont_mask)
		want |= FUSE_CAP_POSIX_ACL;
	conn->want |= want & conn->capable;
	if (cfs.dont_mask && !(conn->want & FUSE_CAP_DONT_MASK))
		cfs.dont_mask = 0;
	/* The kernel clears set-user-ID bits itself: our writes run as root. */
	conn->want &= ~(FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_SPLICE_READ |
			FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
	/* 12 background requests (the kernel default) serialise readahead
	 * and asynchronous direct I/O: allow as many as the loops can hold. */
	conn->max_background = cfs.nloops * cfs.opt.queue_depth;
	if (conn->max_background > 65535)
		conn->max_background = 65535;
	conn->congestion_threshold = conn->max_background * 3 / 4;
	conn->max_read = cfs.opt.max_read;
	cfs_apply_conn_opts(conn);
	cfs.max_write = conn->max_write;
	cfs.parallel_direct_writes = conn->proto_major == 7 && conn->proto_minor >= 36;
	cfs.conn_want = conn->want;
}

static void cfs_destroy(void *userdata)
{
}

static void cfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int res = cfs_inode_lookup(cfs_inode(parent), name, &e);

	if (res == -ENOENT && cfs.opt.negative_timeout > 0) {
		memset(&e, 0, sizeof(e));
		e.entry_timeout = cfs.opt.negative_timeout;
		fuse_reply_entry(req, &e);
		return;
	}
	reply_entry_or_err(req, res, &e);
}

static void cfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	cfs_inode_forget(cfs_inode(ino), nlookup);
	fuse_reply_none(req);
}

static void cfs_forget_multi(fuse_req_t req, size_t count,
			     struct fuse_forget_data *forgets)
{
	size_t i;

	for (i = 0; i < count; i++)
		cfs_inode_forget(cfs_inode(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static int stat_inode(struct cfs_inode *in, struct fuse_file_info *fi,
		      struct stat *st)
{
	int fd, res;

	if (fi && fi->fh)
		return fstat(file_of(fi)->fd, st) < 0 ? -errno : 0;
	fd = cfs_inode_fd(in);
	if (fd < 0)
		return fd;
	res = fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	res = res < 0 ? -errno : 0;
	cfs_inode_put_fd(in);
	return res;
}

static void cfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int res = stat_inode(cfs_inode(ino), fi, &st);

	if (res)
		fuse_reply_err(req, -res);
	else
		fuse_reply_attr(req, &st, cfs.opt.attr_timeout);
}

static int set_mode(int ifd, struct fuse_file_info *fi, mode_t mode)
{
	char proc[64];

	if (fi)
		return fchmod(file_of(fi)->fd, mode) < 0 ? -errno : 0;
	cfs_proc_path(ifd, proc, sizeof(proc));
	return chmod(proc, mode) < 0 ? -errno : 0;
}

static int set_size(fuse_req_t req, struct cfs_inode *in,
		    struct fuse_file_info *fi, off_t size)
{
	int fd, res;

	if (fi) {
		fd = file_of(fi)->fd;
		res = ftruncate(fd, size) < 0 ? -errno : 0;
		return res ? res : cfs_kill_priv(req, fd);
	}
	fd = cfs_inode_open(in, O_WRONLY);
	if (fd < 0)
		return fd;
	res = ftruncate(fd, size) < 0 ? -errno : 0;
	if (!res)
		res = cfs_kill_priv(req, fd);
	close(fd);
	return res;
}

static void times_of(const struct stat *attr, int valid, struct timespec ts[2])
{
	ts[0].tv_nsec = UTIME_OMIT;
	ts[1].tv_nsec = UTIME_OMIT;
	if (valid & FUSE_SET_ATTR_ATIME_NOW)
		ts[0].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_ATIME)
		ts[0] = attr->st_atim;
	if (valid & FUSE_SET_ATTR_MTIME_NOW)
		ts[1].tv_nsec = UTIME_NOW;
	else if (valid & FUSE_SET_ATTR_MTIME)
		ts[1] = attr->st_mtim;
}

static int set_times(int ifd, struct fuse_file_info *fi, const struct stat *attr,
		     int valid)
{
	struct timespec ts[2];

	times_of(attr, valid, ts);
	if (fi)
		return futimens(file_of(fi)->fd, ts) < 0 ? -errno : 0;
	return utimensat(ifd, "", ts, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0 ?
		-errno : 0;
}

static int do_setattr(fuse_req_t req, struct cfs_inode *in, int ifd,
		      struct stat *attr, int valid, struct fuse_file_info *fi)
{
	int res = 0;

	if (valid & FUSE_SET_ATTR_MODE)
		res = set_mode(ifd, fi, attr->st_mode);
	/* chown(f, -1, -1) only changes ctime: the kernel sends nothing
	 * else (CTIME itself only with writeback_cache). */
	if (!res && ((valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) ||
		     !(valid & ~FUSE_SET_ATTR_CTIME))) {
		uid_t uid = valid & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1;
		gid_t gid = valid & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1;

		res = fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		res = res < 0 ? -errno : 0;
	}
	if (!res && (valid & FUSE_SET_ATTR_SIZE))
		res = set_size(req, in, fi, attr->st_size);
	if (!res && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
			      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW)))
		res = set_times(ifd, fi, attr, valid);
	return res;
}

static void cfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
			int valid, struct fuse_file_info *fi)
{
	struct cfs_inode *in = cfs_inode(ino);
	struct stat st;
	int ifd, res;

	if (fi && !fi->fh)
		fi = NULL;
	ifd = cfs_inode_fd(in);
	if (ifd < 0) {
		fuse_reply_err(req, -ifd);
		return;
	}
	res = do_setattr(req, in, ifd, attr, valid, fi);
	cfs_inode_put_fd(in);
	if (!res)
		res = stat_inode(in, fi, &st);
	if (res)
		fuse_reply_err(req, -res);
	else
		fuse_reply_attr(req, &st, cfs.opt.attr_timeout);
}

static void cfs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs_inode *in = cfs_inode(ino);
	char buf[PATH_MAX + 1];
	ssize_t n;
	int fd = cfs_inode_fd(in);

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	n = readlinkat(fd, "", buf, sizeof(buf));
	if (n < 0)
		n = -errno;
	cfs_inode_put_fd(in);
	if (n < 0) {
		fuse_reply_err(req, -n);
		return;
	}
	if (n == sizeof(buf)) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

/* What make_node() creates. */
struct cfs_node {
	mode_t mode;
	dev_t rdev;
	const char *link;	/* symlink target, or NULL */
};

static int make_node_at(int pfd, const char *name, const struct cfs_node *n)
{
	int res;

	if (n->link)
		res = symlinkat(n->link, pfd, name);
	else if (S_ISDIR(n->mode))
		res = mkdirat(pfd, name, n->mode & ~S_IFMT);
	else
		res = mknodat(pfd, name, n->mode, n->rdev);
	return res < 0 ? -errno : 0;
}

/* mknod, mkdir and symlink: create as the caller, then look it up. */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name,
		      const struct cfs_node *n)
{
	struct cfs_inode *p = cfs_inode(parent);
	struct fuse_entry_param e;
	struct cfs_creds c;
	int pfd, res;

	pfd = cfs_inode_fd(p);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	res = creds_enter(req, &c);
	if (!res)
		res = make_node_at(pfd, name, n);
	creds_leave(&c);
	cfs_inode_put_fd(p);
	if (!res)
		res = cfs_inode_lookup(p, name, &e);
	reply_entry_or_err(req, res, &e);
}

static void cfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode, dev_t rdev)
{
	struct cfs_node n = { .mode = mode, .rdev = rdev };

	make_node(req, parent, name, &n);
}

static void cfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
		      mode_t mode)
{
	struct cfs_node n = { .mode = S_IFDIR | mode };

	make_node(req, parent, name, &n);
}

static void cfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
			const char *name)
{
	struct cfs_node n = { .mode = S_IFLNK | 0777, .link = link };

	make_node(req, parent, name, &n);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name,
			 int flags)
{
	struct cfs_inode *p = cfs_inode(parent), *victim;
	int pfd = cfs_inode_fd(p), res;

	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	victim = cfs_inode_pin_victim(pfd, name);
	res = unlinkat(pfd, name, flags) < 0 ? errno : 0;
	if (res)
		cfs_inode_unpin_victim(victim);
	cfs_inode_put_fd(p);
	fuse_reply_err(req, res);
}

static void cfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, 0);
}

static void cfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, AT_REMOVEDIR);
}

static void cfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
		       fuse_ino_t newparent, const char *newname,
		       unsigned int flags)
{
	struct cfs_inode *p = cfs_inode(parent), *np = cfs_inode(newparent);
	struct cfs_inode *victim;
	struct cfs_creds c = { 0 };
	int pfd, npfd, res;

	pfd = cfs_inode_fd(p);
	if (pfd < 0) {
		fuse_reply_err(req, -pfd);
		return;
	}
	npfd = cfs_inode_fd(np);
	if (npfd < 0) {
		cfs_inode_put_fd(p);
		fuse_reply_err(req, -npfd);
		return;
	}
	/* A plain rename may replace (remove) the target. */
	victim = flags & RENAME_EXCHANGE ? NULL : cfs_inode_pin_victim(npfd, newname);
	/* RENAME_WHITEOUT creates a whiteout node: it belongs to the caller. */
	res = flags & RENAME_WHITEOUT ? creds_enter(req, &c) : 0;
	if (!res)
		res = syscall(SYS_renameat2, pfd, name, npfd, newname, flags) < 0 ?
			-errno : 0;
	if (flags & RENAME_WHITEOUT)
		creds_leave(&c);
	if (res)
		cfs_inode_unpin_victim(victim);
	res = -res;
	cfs_inode_put_fd(np);
	cfs_inode_put_fd(p);
	fuse_reply_err(req, res);
}

/* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; without it, follow the fd's link. */
static int link_at(int fd, int npfd, const char *newname)
{
	char proc[64];

	if (linkat(fd, "", npfd, newname, AT_EMPTY_PATH) == 0)
		return 0;
	if (errno != ENOENT || creds_possible)
		return -errno;
	cfs_proc_path(fd, proc, sizeof(proc));
	return linkat(AT_FDCWD, proc, npfd, newname, AT_SYMLINK_FOLLOW) < 0 ?
		-errno : 0;
}

static void cfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
		     const char *newname)
{
	struct cfs_inode *in = cfs_inode(ino), *np = cfs_inode(newparent);
	struct fuse_entry_param e;
	int fd, npfd, res;

	fd = cfs_inode_fd(in);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	npfd = cfs_inode_fd(np);
	if (npfd < 0) {
		cfs_inode_put_fd(in);
		fuse_reply_err(req, -npfd);
		return;
	}
	res = link_at(fd, npfd, newname);
	cfs_inode_put_fd(np);
	cfs_inode_put_fd(in);
	if (!res)
		res = cfs_inode_lookup(np, newname, &e);
	reply_entry_or_err(req, res, &e);
}

/* The flags the backing file is opened with. */
static int backing_flags(int flags)
{
	if (cfs.conn_want & FUSE_CAP_WRITEBACK_CACHE) {
		/* The kernel reads pages of write-only files and computes
		 * append offsets itself. */
		if ((flags & O_ACCMODE) == O_WRONLY)
			flags = (flags & ~O_ACCMODE) | O_RDWR;
		flags &= ~O_APPEND;
	}
	return flags & ~O_NOFOLLOW;
}

/* st: the open file's attributes when the caller has them, or NULL. */
static void set_cache_flags(struct fuse_file_info *fi, struct cfs_inode *in, int fd,
			    const struct stat *st)
{
	struct stat own;

	if (cfs.opt.direct_io || cfs.opt.cache_mode == CFS_CACHE_NEVER)
		fi->direct_io = 1;
	if (cfs.opt.keep_cache || cfs.opt.cache_mode == CFS_CACHE_ALWAYS)
		fi->keep_cache = 1;
	else if (!fi->direct_io) {
		if (!st && !fstat(fd, &own))
			st = &own;
		if (st)
			fi->keep_cache = cfs_inode_cache_unchanged(in, st);
	}
}

static struct cfs_file *file_new(struct cfs_inode *in, int fd, int flags)
{
	struct cfs_file *f = malloc(sizeof(*f));

	if (!f)
		return NULL;
	f->fd = fd;
	f->buffered_fd = -1;
	f->flags = flags;
	f->inode = in;
	cfs_inode_file_add(in, f);
	track_file(f, true);
	return f;
}

static void file_free(struct cfs_file *f)
{
	track_file(f, false);
	cfs_inode_file_remove(f->inode, f);
	close(f->fd);
	if (f->buffered_fd >= 0)
		close(f->buffered_fd);
	free(f);
}

static void cfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_inode *in = cfs_inode(ino);
	int flags = backing_flags(fi->flags);
	struct cfs_file *f;
	int fd;

	fd = cfs_inode_open(in, flags);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	if (flags & O_TRUNC)
		cfs_kill_priv(req, fd);	/* the kernel leaves O_TRUNC to us */
	f = file_new(in, fd, flags);
	if (!f) {
		close(fd);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)f;
	set_cache_flags(fi, in, fd, NULL);
	if (fuse_reply_open(req, fi) == -ENOENT)
		file_free(f);		/* interrupted: no release will come */
}

static int create_at(fuse_req_t req, struct cfs_inode *p, const char *name,
		     mode_t mode, int flags)
{
	struct cfs_creds c;
	int pfd, fd, tries = 0;

	pfd = cfs_inode_fd(p);
	if (pfd < 0)
		return pfd;
	/* loop.c's tmpfile_as_create(): an unnamed file in p (O_TMPFILE) */
	if (!strcmp(name, "/")) {
		flags = (flags & ~O_CREAT) | O_TMPFILE;
		name = ".";
	} else {
		flags |= O_CREAT;
	}
	fd = creds_enter(req, &c);
	if (!fd) {
		do
			fd = openat(pfd, name, flags | O_CLOEXEC, mode);
		while (fd < 0 && cfs_retry_emfile(errno, &tries));
		if (fd < 0)
			fd = -errno;
	}
	creds_leave(&c);
	cfs_inode_put_fd(p);
	return fd;
}

static void cfs_create(fuse_req_t req, fuse_ino_t parent, const char *name,
		       mode_t mode, struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int flags = backing_flags(fi->flags);
	struct cfs_file *f;
	int fd, res;

	fd = create_at(req, cfs_inode(parent), name, mode, flags);
	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	res = cfs_inode_from_fd(fd, &e);
	f = res ? NULL : file_new(cfs_inode(e.ino), fd, flags);
	if (!f) {
		if (!res)
			cfs_inode_forget(cfs_inode(e.ino), 1);
		close(fd);
		fuse_reply_err(req, res ? -res : ENOMEM);
		return;
	}
	fi->fh = (uintptr_t)f;
	set_cache_flags(fi, f->inode, fd, &e.attr);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		file_free(f);
		cfs_inode_forget(cfs_inode(e.ino), 1);
	}
}

/* Like close() of one of the application's descriptors: lets the backing
 * filesystem flush (NFS) without closing ours. */
static void cfs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int fd = dup(file_of(fi)->fd);

	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fuse_reply_err(req, close(fd) < 0 ? errno : 0);
}

static void cfs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	file_free(file_of(fi));
	fuse_reply_err(req, 0);
}

static void dir_free(struct cfs_dir *d)
{
	track_dir(d, false);
	close(d->fd);
	free(d);
}

static void cfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct cfs_inode *in = cfs_inode(ino);
	struct cfs_dir *d = malloc(sizeof(*d));
	int fd;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = cfs_inode_open(in, O_RDONLY | O_DIRECTORY);
	if (fd < 0) {
		free(d);
		fuse_reply_err(req, -fd);
		return;
	}
	d->fd = fd;
	d->pos = 0;
	d->len = d->cur = 0;
	fi->fh = (uintptr_t)d;
	if (cfs.opt.cache_mode == CFS_CACHE_ALWAYS)
		fi->cache_readdir = 1;
	track_dir(d, true);
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_free(d);
}

static int dir_seek(struct cfs_dir *d, off_t off)
{
	if (off == d->pos)
		return 0;
	if (lseek(d->fd, off, SEEK_SET) < 0)
		return -errno;
	d->pos = off;
	d->len = d->cur = 0;
	return 0;
}

/* The next entry of the stream, reading more when needed; NULL at the end. */
static struct linux_dirent64 *dir_next(struct cfs_dir *d, int *err)
{
	long n;

	*err = 0;
	if (d->cur >= d->len) {
		n = syscall(SYS_getdents64, d->fd, d->buf, sizeof(d->buf));
		if (n <= 0) {
			*err = n < 0 ? -errno : 0;
			return NULL;
		}
		d->len = n;
		d->cur = 0;
	}
	return (struct linux_dirent64 *)(d->buf + d->cur);
}

static bool is_dot_or_dotdot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

/* Add one entry to the reply; 0 when it does not fit (nothing consumed). */
static size_t add_entry(fuse_req_t req, struct cfs_inode *dir, bool plus,
			struct linux_dirent64 *ent, char *buf, size_t room,
			int *skip)
{
	struct fuse_entry_param e;
	size_t len;

	*skip = 0;
	memset(&e, 0, sizeof(e));
	e.attr.st_ino = ent->d_ino;
	e.attr.st_mode = (mode_t)ent->d_type << 12;
	/* fuse_add_direntry*() return the size even when it does not fit. */
	if (!plus) {
		if (fuse_add_direntry(req, NULL, 0, ent->d_name, NULL, 0) > room)
			return 0;
		return fuse_add_direntry(req, buf, room, ent->d_name, &e.attr,
					 ent->d_off);
	}
	if (fuse_add_direntry_plus(req, NULL, 0, ent->d_name, NULL, 0) > room)
		return 0;
	if (!is_dot_or_dotdot(ent->d_name) &&
	    cfs_inode_lookup(dir, ent->d_name, &e) < 0) {
		*skip = 1;	/* vanished since getdents */
		return 0;
	}
	len = fuse_add_direntry_plus(req, buf, room, ent->d_name, &e, ent->d_off);
	return len;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi, bool plus)
{
	struct cfs_dir *d = dir_of(fi);
	struct linux_dirent64 *ent;
	size_t used = 0, len;
	int err, skip;
	char *buf = malloc(size);

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	err = dir_seek(d, off);
	while (!err && (ent = dir_next(d, &err))) {
		len = add_entry(req, cfs_inode(ino), plus, ent, buf + used,
				size - used, &skip);
		if (!len && !skip)
			break;
		used += len;
		d->cur += ent->d_reclen;
		d->pos = ent->d_off;
	}
	if (err && !used)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void cfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, false);
}

static void cfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			    off_t off, struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, fi, true);
}

static void cfs_releasedir(fuse_req_t req, fuse_ino_t ino,
			   struct fuse_file_info *fi)
{
	dir_free(dir_of(fi));
	fuse_reply_err(req, 0);
}

static void cfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct cfs_inode *in = cfs_inode(ino);
	struct statvfs sv;
	int fd = cfs_inode_fd(in), res;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	res = fstatvfs(fd, &sv) < 0 ? errno : 0;
	cfs_inode_put_fd(in);
	if (res)
		fuse_reply_err(req, res);
	else
		fuse_reply_statfs(req, &sv);
}

/*
 * Extended attributes.  An O_PATH descriptor takes no f*xattr() calls, so
 * these go through its /proc/self/fd link, which names the inode itself
 * (a symlink included) without any path walk in the source.
 */
static int xattr_path(struct cfs_inode *in, char *proc, size_t len)
{
	int fd = cfs_inode_fd(in);

	if (fd < 0)
		return fd;
	cfs_proc_path(fd, proc, len);
	return 0;
}

/*
 * An access ACL holds the mode's group bits, so setting or removing one can
 * change the mode.  The kernel then marks only ctime stale, which with
 * writeback caching it keeps itself: a stat would show the old mode until
 * attr_timeout.  Mark every attribute stale before the reply.
 */
static void access_acl_changed(fuse_ino_t ino, const char *name)
{
	if ((cfs.conn_want & FUSE_CAP_WRITEBACK_CACHE) &&
	    !strcmp(name, "system.posix_acl_access"))
		fuse_lowlevel_notify_inval_inode(cfs.se, ino, -1, 0);
}

static void cfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 const char *value, size_t size, int flags)
{
	struct cfs_inode *in = cfs_inode(ino);
	char proc[64];
	int res = xattr_path(in, proc, sizeof(proc));

	if (res) {
		fuse_reply_err(req, -res);
		return;
	}
	res = setxattr(proc, name, value, size, flags) < 0 ? errno : 0;
	cfs_inode_put_fd(in);
	if (!res)
		access_acl_changed(ino, name);
	fuse_reply_err(req, res);
}

/* getxattr and listxattr: the size query, or the value. */
static void reply_xattr_value(fuse_req_t req, ssize_t n, const char *buf,
			      size_t size)
{
	if (n < 0)
		fuse_reply_err(req, -n);
	else if (size == 0)
		fuse_reply_xattr(req, n);
	else
		fuse_reply_buf(req, buf, n);
}

static void cfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
			 size_t size)
{
	struct cfs_inode *in = cfs_inode(ino);
	char proc[64], *buf = NULL;
	int res = xattr_path(in, proc, sizeof(proc));
	ssize_t n;

	if (res) {
		fuse_reply_err(req, -res);
		return;
	}
	if (size && !(buf = malloc(size)))
		n = -ENOMEM;
	else if ((n = getxattr(proc, name, buf, size)) < 0)
		n = -errno;
	cfs_inode_put_fd(in);
	reply_xattr_value(req, n, buf, size);
	free(buf);
}

static ssize_t list_xattrs(const char *proc, size_t size, char **bufp)
{
	ssize_t n;

	*bufp = NULL;
	if (size && !(*bufp = malloc(size)))
		return -ENOMEM;
	n = listxattr(proc, *bufp, size);
	return n < 0 ? -errno : n;
}

/* Without CAP_SYS_ADMIN a process does not see trusted.* names: list
 * them all (as root), then drop those for an unprivileged caller. */
static ssize_t list_visible_xattrs(const char *proc, size_t size, char **bufp)
{
	ssize_t n, len;
	char *all, *p, *out;

	*bufp = NULL;
	n = list_xattrs(proc, 0, &all);
	if (n <= 0)
		return n;
	n = list_xattrs(proc, n + 256, &all);
	if (n < 0)
		return n;
	out = all;
	for (p = all; p < all + n; p += len) {
		len = strlen(p) + 1;
		if (strncmp(p, "trusted.", 8)) {
			memmove(out, p, len);
			out += len;
		}
	}
	len = out - all;
	if (size && len > (ssize_t)size) {
		free(all);
		return -ERANGE;
	}
	*bufp = all;
	return len;
}

static void cfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct cfs_inode *in = cfs_inode(ino);
	char proc[64], *buf;
	int res = xattr_path(in, proc, sizeof(proc));
	ssize_t n;

	if (res) {
		fuse_reply_err(req, -res);
		return;
	}
	n = fuse_req_ctx(req)->uid ? list_visible_xattrs(proc, size, &buf) :
		list_xattrs(proc, size, &buf);
	cfs_inode_put_fd(in);
	reply_xattr_value(req, n, buf, size);
	free(buf);
}

static void cfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct cfs_inode *in = cfs_inode(ino);
	char proc[64];
	int res = xattr_path(in, proc, sizeof(proc));

	if (res) {
		fuse_reply_err(req, -res);
		return;
	}
	res = removexattr(proc, name) < 0 ? errno : 0;
	cfs_inode_put_fd(in);
	if (!res)
		access_acl_changed(ino, name);
	fuse_reply_err(req, res);
}

/* access(2) asks about the caller: check with the caller's credentials. */
static void cfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct cfs_inode *in = cfs_inode(ino);
	struct cfs_creds c;
	int fd = cfs_inode_fd(in), res;

	if (fd < 0) {
		fuse_reply_err(req, -fd);
		return;
	}
	res = creds_enter(req, &c);
	if (!res)
		res = faccessat(fd, "", mask, AT_EMPTY_PATH | AT_EACCESS) < 0 ?
			-errno : 0;
	creds_leave(&c);
	cfs_inode_put_fd(in);
	fuse_reply_err(req, -res);
}

/*
 * The kernel asks only for SEEK_DATA and SEEK_HOLE.  With its writeback
 * cache, written data may still be only in its page cache, which it does not
 * write back before asking: the backing file would answer ENXIO before the
 * kernel's end of file, or a hole where that data is, and a sparse copy
 * (cp, tar) would leave the data out.  ENOSYS makes the kernel answer from
 * its own size for the rest of the mount, the whole file being data.
 */
static void cfs_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		      struct fuse_file_info *fi)
{
	off_t res;

	if (cfs.conn_want & FUSE_CAP_WRITEBACK_CACHE) {
		fuse_reply_err(req, ENOSYS);
		return;
	}
	res = lseek(file_of(fi)->fd, off, whence);

	if (res < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_lseek(req, res);
}

static void cfs_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
				struct fuse_file_info *fi_in, fuse_ino_t ino_out,
				off_t off_out, struct fuse_file_info *fi_out,
				size_t len, int flags)
{
	ssize_t n;

	if (len > CFS_COPY_RANGE_MAX)
		len = CFS_COPY_RANGE_MAX;	/* a short copy: the caller loops */
	n = copy_file_range(file_of(fi_in)->fd, &off_in, file_of(fi_out)->fd,
			    &off_out, len, flags);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_write(req, n);
}

/*
 * The inode attribute flags of chattr(1) and xfs_io's fsxattr: the only
 * ioctls the kernel forwards to a FUSE filesystem that a passthrough can
 * answer for the source file.  The kernel has already checked the caller
 * (owner or CAP_FOWNER, CAP_LINUX_IMMUTABLE for the immutable and append
 * flags) against this mount's inode, so the source file is changed with
 * the daemon's rights.  Anything else stays ENOTTY, as for files of a
 * filesystem without that ioctl.
 */
static void cfs_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		      struct fuse_file_info *fi, unsigned flags,
		      const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	/* FUSE_IOCTL_DIR: fi is from opendir. */
	int fd = flags & FUSE_IOCTL_DIR ? dir_of(fi)->fd : file_of(fi)->fd;
	union {
		unsigned int flags;
		struct fsxattr fsx;
	} val;
	size_t size;

	memset(&val, 0, sizeof(val));
	switch (cmd) {
	case FS_IOC_GETFLAGS:
	case FS_IOC_SETFLAGS:
		size = sizeof(val.flags);
		break;
	case FS_IOC_FSGETXATTR:
	case FS_IOC_FSSETXATTR:
		size = sizeof(val.fsx);
		break;
	default:
		fuse_reply_err(req, ENOTTY);
		return;
	}
	if (_IOC_DIR(cmd) & _IOC_WRITE) {	/* a set: the command says which way its data goes */
		if (in_bufsz < size) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		memcpy(&val, in_buf, size);
		out_bufsz = 0;
	} else if (out_bufsz < size || out_bufsz > sizeof(val)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (ioctl(fd, cmd, &val) < 0)
		fuse_reply_err(req, errno);
	else	/* the kernel takes exactly the size it asked for */
		fuse_reply_ioctl(req, 0, out_bufsz ? &val : NULL, out_bufsz);
}

/* After the loops stopped: close what the kernel never released. */
void cfs_ops_exit(void)
{
	while (open_files)
		file_free(open_files);
	while (open_dirs)
		dir_free(open_dirs);
}

const struct fuse_lowlevel_ops cfs_ops = {
	.init = cfs_init,
	.destroy = cfs_destroy,
	.lookup = cfs_lookup,
	.forget = cfs_forget,
	.forget_multi = cfs_forget_multi,
	.getattr = cfs_getattr,
	.setattr = cfs_setattr,
	.readlink = cfs_readlink,
	.mknod = cfs_mknod,
	.mkdir = cfs_mkdir,
	.symlink = cfs_symlink,
	.unlink = cfs_unlink,
	.rmdir = cfs_rmdir,
	.rename = cfs_rename,
	.link = cfs_link,
	.open = cfs_open,
	.create = cfs_create,
	.read = cfs_read,
	.write = cfs_write,
	.flush = cfs_flush,
	.release = cfs_release,
	.fsync = cfs_fsync,
	.opendir = cfs_opendir,
	.readdir = cfs_readdir,
	.readdirplus = cfs_readdirplus,
	.releasedir = cfs_releasedir,
	.fsyncdir = cfs_fsyncdir,
	.statfs = cfs_statfs,
	.setxattr = cfs_setxattr,
	.getxattr = cfs_getxattr,
	.listxattr = cfs_listxattr,
	.removexattr = cfs_removexattr,
	.access = cfs_access,
	.fallocate = cfs_fallocate,
	.lseek = cfs_lseek,
	.copy_file_range = cfs_copy_file_range,
	.ioctl = cfs_ioctl,
};
