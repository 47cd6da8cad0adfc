/* execute.c - run one request with the plain syscall: the thread pool's and the sync backend's engine. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

static size_t clamp_rw(size_t len)
{
	return len > CAIO_MAX_RW_COUNT ? CAIO_MAX_RW_COUNT : len;
}

/* The offsets are copies: the request may run again after EINTR. */
static int64_t run_splice(const caio_req *req)
{
	loff_t in = req->u.splice.off_in, out = req->offset;

	return splice(req->u.splice.fd_in, in < 0 ? NULL : &in, req->fd,
		      out < 0 ? NULL : &out, req->u.splice.len, req->u.splice.flags);
}

static int64_t run(const caio_req *req)
{
	switch (req->op) {
	case CAIO_OP_READ:
		return pread(req->fd, req->u.rw.buf, clamp_rw(req->u.rw.len), req->offset);
	case CAIO_OP_WRITE:
		return pwrite(req->fd, req->u.rw.buf, clamp_rw(req->u.rw.len), req->offset);
	case CAIO_OP_READV:
		return preadv(req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
	case CAIO_OP_WRITEV:
		return pwritev(req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
	case CAIO_OP_FSYNC:
		return fsync(req->fd);
	case CAIO_OP_FDSYNC:
		return fdatasync(req->fd);
	case CAIO_OP_FALLOCATE:
		return fallocate(req->fd, req->u.alloc.mode, req->offset, req->u.alloc.len);
	case CAIO_OP_OPENAT:
		return openat(req->fd, req->u.open.path, req->u.open.flags, req->u.open.mode);
	case CAIO_OP_CLOSE:
		return close(req->fd);
	case CAIO_OP_STATX:
		return statx(req->fd, req->u.statx.path, req->u.statx.flags,
			     req->u.statx.mask, req->u.statx.buf);
	case CAIO_OP_UNLINKAT:
		return unlinkat(req->fd, req->u.open.path, req->u.open.flags);
	case CAIO_OP_RENAMEAT:
		return renameat2(req->fd, req->u.two.oldpath, req->u.two.newdirfd,
				 req->u.two.newpath, req->u.two.flags);
	case CAIO_OP_MKDIRAT:
		return mkdirat(req->fd, req->u.open.path, req->u.open.mode);
	case CAIO_OP_SYMLINKAT:
		return symlinkat(req->u.two.oldpath, req->u.two.newdirfd, req->u.two.newpath);
	case CAIO_OP_LINKAT:
		return linkat(req->fd, req->u.two.oldpath, req->u.two.newdirfd,
			      req->u.two.newpath, req->u.two.flags);
	case CAIO_OP_FTRUNCATE:
		return ftruncate(req->fd, req->u.length);
	case CAIO_OP_SPLICE:
		return run_splice(req);
	default:
		errno = EINVAL;
		return -1;
	}
}

int64_t caio__execute(const caio_req *req)
{
	int64_t res;

	do
		res = run(req);
	while (res < 0 && errno == EINTR && req->op != CAIO_OP_CLOSE);
	return res < 0 ? -errno : res;
}
