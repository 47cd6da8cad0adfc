/* data.c - read, write, fsync and fallocate: submitted to libcaio, replied from the completion. */
#include "config.h"
#include "caiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * A handler takes a caio slot and returns at once; the loop flushes every
 * request queued while it processed one batch of FUSE requests in a single
 * kernel submission, and the callback (run by caio_reap() in the same
 * loop thread) replies.  When all slots are taken the request waits on
 * the loop's queue and is submitted again after the next completions.
 */

/* Writes up to this size are copied into a pool buffer; larger ones keep
 * the FUSE request buffer until they complete (no copy). */
#define CFS_WRITE_COPY_MAX	(64u << 10)

/* Buffered writes from this size are copied by a worker thread (io-wq, the
 * pool) that had better run where the data is cached: see
 * cfs_loop_stay_on_cpu(). */
#define CFS_BULK_WRITE		(64u << 10)

static struct cfs_io *io_new(fuse_req_t req, enum caio_op op, int fd)
{
	struct cfs_io *io = calloc(1, sizeof(*io));

	if (!io)
		return NULL;
	io->loop = cfs_current_loop();
	io->req = req;
	io->op = op;
	io->fd = fd;
	return io;
}

static void io_free(struct cfs_io *io)
{
	if (io->op == CAIO_OP_SPLICE)
		cfs_loop_pipe_done(io->loop, io->pipe, false);
	else if (io->request_buffer)
		cfs_loop_return_request_buffer(io->loop, io->request_buffer);
	else if (io->bufsize)
		cfs_loop_buf_put(io->loop, io->buf, io->bufsize);
	free(io);
}

static void io_reply(struct cfs_io *io, int64_t res)
{
	if (res < 0) {
		fuse_reply_err(io->req, (int)-res);
		return;
	}
	switch (io->op) {
	case CAIO_OP_READ:
		fuse_reply_buf(io->req, io->buf, (size_t)res);
		break;
	case CAIO_OP_WRITE:
	case CAIO_OP_SPLICE:
		fuse_reply_write(io->req, (size_t)res);
		break;
	default:
		fuse_reply_err(io->req, 0);
		break;
	}
}

static void io_done(caio_req *r, int64_t res, void *data)
{
	struct cfs_io *io = data;

	io_reply(io, res);
	if (io->bulk)
		cfs_loop_stay_on_cpu(io->loop);
	if (io->op == CAIO_OP_SPLICE && res == (int64_t)io->size) {
		/* All of it went: the pipe is empty, for the next write. */
		cfs_loop_pipe_done(io->loop, io->pipe, true);
		free(io);
		return;
	}
	io_free(io);
}

/* Hand io to libcaio: 0, -EAGAIN (no free slot) or an argument error. */
int cfs_io_submit(struct cfs_io *io)
{
	caio_ctx *ctx = cfs_loop_ctx(io->loop);

	switch (io->op) {
	case CAIO_OP_READ:
		return caio_read(ctx, io->fd, io->buf, io->size, io->off,
				 io_done, io, NULL);
	case CAIO_OP_WRITE:
		return caio_write(ctx, io->fd, io->buf, io->size, io->off,
				  io_done, io, NULL);
	case CAIO_OP_SPLICE:
		return caio_splice(ctx, io->pipe.rd, -1, io->fd, io->off, io->size,
				   SPLICE_F_MOVE, io_done, io, NULL);
	case CAIO_OP_FSYNC:
		return caio_fsync(ctx, io->fd, io_done, io, NULL);
	case CAIO_OP_FDSYNC:
		return caio_fdsync(ctx, io->fd, io_done, io, NULL);
	case CAIO_OP_FALLOCATE:
		return caio_fallocate(ctx, io->fd, io->mode, io->off, io->len,
				      io_done, io, NULL);
	default:
		return -EINVAL;
	}
}

void cfs_io_fail(struct cfs_io *io, int res)
{
	io_reply(io, res);
	io_free(io);
}

/* Called by the loop for a deferred request, and by handlers. */
void cfs_io_start(struct cfs_io *io)
{
	int res;

	if (io->bulk)
		cfs_loop_stay_on_cpu(io->loop);
	res = cfs_io_submit(io);

	if (res == -EAGAIN) {
		cfs_loop_defer(io->loop, io);
	} else if (res < 0) {
		cfs_io_fail(io, res);
	}
}

static struct cfs_file *file_of(struct fuse_file_info *fi)
{
	return (struct cfs_file *)(uintptr_t)fi->fh;
}

void cfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi)
{
	struct cfs_io *io = io_new(req, CAIO_OP_READ, file_of(fi)->fd);

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Straight into the ring entry that carries the reply, or a pool
	 * buffer; both are page aligned, fine for O_DIRECT backing files. */
	io->buf = cfs_loop_read_buffer(io->loop, size);
	if (!io->buf) {
		io->buf = cfs_loop_buf_get(io->loop, size ? size : 1);
		if (!io->buf) {
			free(io);
			fuse_reply_err(req, ENOMEM);
			return;
		}
		io->bufsize = size ? size : 1;
	}
	io->size = size;
	io->off = off;
	cfs_io_start(io);
}

/* Where the data of a write comes from: the request itself when a ring
 * entry holds it, or when it is large (its payload is page aligned, see
 * loop.c); else a copy.  O_DIRECT needs an aligned buffer either way. */
static int write_buffer(struct cfs_io *io, const char *buf, size_t size,
			bool direct)
{
	bool aligned = ((uintptr_t)buf & 4095) == 0;

	if (aligned || !direct) {
		/* A ring entry's payload stays ours until the reply. */
		if (cfs_loop_data_is_stable(io->loop, buf)) {
			io->buf = (void *)buf;
			return 0;
		}
		if (size > CFS_WRITE_COPY_MAX) {
			io->request_buffer = cfs_loop_take_request_buffer(io->loop, buf);
			if (io->request_buffer) {
				io->buf = (void *)buf;
				return 0;
			}
		}
	}
	io->buf = cfs_loop_buf_get(io->loop, size ? size : 1);
	if (!io->buf)
		return -ENOMEM;
	io->bufsize = size ? size : 1;
	memcpy(io->buf, buf, size);
	return 0;
}

/*
 * The kernel writes back its page cache (mmap, writeback_cache) through
 * any writable open file of the inode, at page offsets and with lengths
 * that need not be aligned: through an O_DIRECT descriptor they would fail
 * and through an O_APPEND one land at the end.  They go through a second
 * descriptor of the same file without those flags.
 */
static int writepage_fd(struct cfs_file *f)
{
	char proc[64];
	int fd;

	int none = -1;

	fd = __atomic_load_n(&f->buffered_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		return fd;
	cfs_proc_path(f->fd, proc, sizeof(proc));
	fd = open(proc, (f->flags & ~(O_DIRECT | O_APPEND | O_TRUNC | O_CREAT |
				      O_EXCL)) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	/* Two loops may get here for one file: the first one wins. */
	if (!__atomic_compare_exchange_n(&f->buffered_fd, &none, fd, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		close(fd);
		return none;
	}
	return fd;
}

static void write_spliced(fuse_req_t req, int fd, struct cfs_pipe pipe,
			  size_t size, off_t off)
{
	struct cfs_io *io = io_new(req, CAIO_OP_SPLICE, fd);

	if (!io) {
		cfs_loop_pipe_done(cfs_current_loop(), pipe, false);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	io->pipe = pipe;
	io->size = size;
	io->off = off;
	cfs_stats_count(&cfs_loop_stats(io->loop)->spliced_writes, 1);
	cfs_io_start(io);
}

void cfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi)
{
	struct cfs_file *f = file_of(fi);
	bool direct = f->flags & O_DIRECT;
	struct cfs_io *io;
	int fd = f->fd;

	if (fi->writepage && (f->flags & (O_DIRECT | O_APPEND))) {
		fd = writepage_fd(f);
		if (fd < 0) {
			fuse_reply_err(req, -fd);
			return;
		}
		direct = false;
	}
	if (!fi->writepage)
		cfs_kill_priv(req, fd);
	/* Data the loop spliced into a pipe goes from there into the file,
	 * which splice(2) refuses for O_APPEND and which O_DIRECT would want
	 * aligned: those read it out of the pipe first. */
	if (!direct && (fd != f->fd || !(f->flags & O_APPEND))) {
		struct cfs_pipe pipe;

		if (cfs_loop_take_spliced(cfs_current_loop(), buf, &pipe)) {
			write_spliced(req, fd, pipe, size, off);
			return;
		}
	} else if (cfs_loop_fetch_spliced(cfs_current_loop(), buf, size) < 0) {
		fuse_reply_err(req, EIO);
		return;
	}
	io = io_new(req, CAIO_OP_WRITE, fd);
	if (!io || write_buffer(io, buf, size, direct) < 0) {
		free(io);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	io->size = size;
	io->off = off;
	io->bulk = !direct && size >= CFS_BULK_WRITE;
	cfs_io_start(io);
}

static void sync_fd(fuse_req_t req, int fd, int datasync)
{
	struct cfs_io *io = io_new(req, datasync ? CAIO_OP_FDSYNC : CAIO_OP_FSYNC,
				   fd);

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	cfs_io_start(io);
}

void cfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi)
{
	sync_fd(req, file_of(fi)->fd, datasync);
}

void cfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi)
{
	sync_fd(req, cfs_dir_fd(fi), datasync);
}

void cfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi)
{
	struct cfs_io *io = io_new(req, CAIO_OP_FALLOCATE, file_of(fi)->fd);

	if (!io) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	io->mode = mode;
	io->off = offset;
	io->len = length;
	cfs_io_start(io);
}
