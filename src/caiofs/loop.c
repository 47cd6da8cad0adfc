/* loop.c - the event loops: each reads the FUSE device and reaps its own caio context. */
#include "config.h"
#include "caiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

/*
 * Threading model: N loops (two per CPU by default, eight with the sync
 * backend), each one thread with its own caio context, polling the FUSE
 * device (shared, or its own clone with clone_fd) and the context's
 * eventfd.  A loop that wakes for the device reads every request
 * available (up to a bound; one with the sync backend), runs the handlers
 * (metadata synchronously, data by submitting to its context), then calls
 * caio_flush() once: requests that arrived together reach the kernel in
 * one io_uring_enter/io_submit.  Completions are reaped by the same
 * thread, so a request, its caio context and its reply never cross
 * threads and the context needs no lock.  With -o fuse_uring a loop also
 * polls its own io_uring, where the kernel puts requests (ring.c).
 */

#define CFS_DRAIN_MAX	64		/* requests per device wake-up */
#define CFS_REQ_DATA	(1u << 20)	/* largest write payload (max_write) */
#define CFS_REQ_ROOM	(CFS_REQ_DATA + 8192)
#define CFS_NCLASS	9		/* pool buffers 4 KiB .. 1 MiB */
#define CFS_SPARE_REQ	4
#define CFS_TRACK	8192		/* requests tracked for the counters */
/* Registered with the uring backend (fixed buffers): the small data
 * buffers, 4 KiB to 128 KiB, where pinning the pages of each O_DIRECT
 * request costs most relative to the transfer; and in ring mode the
 * start of every ring entry's payload. */
#define CFS_ARENA_SIZE	(1u << 20)
#define CFS_ARENA_CLASSES 6
#define CFS_RING_FIXED	(128u << 10)
#define CFS_RING_FIXED_ENTRIES 64	/* at most 8 MiB pinned per loop for them */
/* Spliced writes (see device_splice()): from this size, with this many
 * pipes per loop, for this many requests after the last such write. */
#define CFS_SPLICE_MIN	(128u << 10)
#define CFS_SPLICE_PIPES 8
#define CFS_SPLICE_CREDIT 64

enum { TAG_DEV = 1, TAG_CAIO, TAG_STOP, TAG_RING, TAG_RING_START };

struct track_entry {
	uint64_t unique;		/* 0 = free */
	uint64_t start_ns;
	uint32_t opcode;
};

struct cfs_loop {
	unsigned index;
	pthread_t thread;
	bool started;
	int epfd;
	int devfd;
	bool own_devfd;
	caio_ctx *ctx;
	struct cfs_ring *ring;		/* -o fuse_uring: requests from io_uring */
	bool dev_gone;
	bool stopping;
	unsigned drain_max;		/* requests read per device wake-up */
	bool flush_failed;
	bool stay_on_cpu;		/* do not poll after this iteration */
	/* The current request buffer: data payloads of writes land page
	 * aligned at reqbuf + 4096 (see buf_mem()). */
	void *reqbuf;
	bool reqbuf_taken;
	void *spare_req[CFS_SPARE_REQ];
	unsigned nspare_req;
	void *pool[CFS_NCLASS][32];
	unsigned npool[CFS_NCLASS];
	/* The registered arena, carved on demand; freed buffers of each
	 * class are kept on a list threaded through them.  NULL when the
	 * backend has no registered buffers. */
	char *arena;
	size_t arena_used;
	void *arena_free[CFS_ARENA_CLASSES];
	struct cfs_io *defer_head, *defer_tail;
	struct track_entry track[CFS_TRACK];
	unsigned ntrack;
	/* Spliced writes: free pipes, how many exist (free or held by a
	 * write) and may exist, the requests left to splice, and the pipe holding the data
	 * of the write being processed, which a read would have put at
	 * spliced_data (NULL when none). */
	struct cfs_pipe pipes[CFS_SPLICE_PIPES];
	unsigned npipes, pipes_made, pipes_max;
	unsigned splice_credit;
	struct cfs_pipe spliced;
	const char *spliced_data;
	struct cfs_loop_stats stats;
};

static __thread struct cfs_loop *current_loop;

struct cfs_loop *cfs_current_loop(void)
{
	return current_loop;
}

caio_ctx *cfs_loop_ctx(struct cfs_loop *loop)
{
	return loop->ctx;
}

struct cfs_loop_stats *cfs_loop_stats(struct cfs_loop *loop)
{
	return &loop->stats;
}

/* ---- buffers -------------------------------------------------------- */

static unsigned size_class(size_t size)
{
	unsigned c = 0;

	while (c < CFS_NCLASS - 1 && ((size_t)4096 << c) < size)
		c++;
	return c;
}

static unsigned class_keep(unsigned c)
{
	return c < 6 ? 32 : 4;		/* keep few of the big ones */
}

static bool in_arena(const struct cfs_loop *loop, const void *p)
{
	return loop->arena && (const char *)p >= loop->arena &&
	       (const char *)p < loop->arena + CFS_ARENA_SIZE;
}

static void *arena_get(struct cfs_loop *loop, unsigned c)
{
	size_t size = (size_t)4096 << c;
	void *p = loop->arena_free[c];

	if (p) {
		memcpy(&loop->arena_free[c], p, sizeof(void *));
		return p;
	}
	if (loop->arena_used + size > CFS_ARENA_SIZE)
		return NULL;
	p = loop->arena + loop->arena_used;	/* classes are carved in order of need */
	loop->arena_used += size;
	return p;
}

void *cfs_loop_buf_get(struct cfs_loop *loop, size_t size)
{
	unsigned c = size_class(size);
	void *p;

	if (size > ((size_t)4096 << (CFS_NCLASS - 1)))
		return posix_memalign(&p, 4096, size) ? NULL : p;
	if (loop->arena && c < CFS_ARENA_CLASSES && (p = arena_get(loop, c)))
		return p;
	if (loop->npool[c])
		return loop->pool[c][--loop->npool[c]];
	return posix_memalign(&p, 4096, (size_t)4096 << c) ? NULL : p;
}

void cfs_loop_buf_put(struct cfs_loop *loop, void *buf, size_t size)
{
	unsigned c = size_class(size);

	if (in_arena(loop, buf)) {
		memcpy(buf, &loop->arena_free[c], sizeof(void *));
		loop->arena_free[c] = buf;
		return;
	}
	if (size <= ((size_t)4096 << (CFS_NCLASS - 1)) &&
	    loop->npool[c] < class_keep(c)) {
		loop->pool[c][loop->npool[c]++] = buf;
		return;
	}
	free(buf);
}

/*
 * Fixed buffers: with the uring backend, register the arena (and in ring
 * mode the start of each entry's payload), so that O_DIRECT requests into
 * them skip pinning their pages each time.  Other backends decline, and
 * the loop then works as before without an arena.  The arena's pages
 * stay resident while the loop lives.
 */
static void arena_setup(struct cfs_loop *loop)
{
	struct iovec iov = { NULL, CFS_ARENA_SIZE };
	void *mem = mmap(NULL, CFS_ARENA_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int res;

	if (mem == MAP_FAILED)
		return;
	iov.iov_base = mem;
	res = caio_ctx_register_buffers(loop->ctx, &iov, 1);
	if (res < 0) {
		if (res != -EOPNOTSUPP)
			cfs_log(LOG_INFO, "loop %u: no registered buffers: %s", loop->index,
				caio_strerror(res));
		munmap(mem, CFS_ARENA_SIZE);
		return;
	}
	loop->arena = mem;
}

/* Once the ring's entries exist: register them with the arena (the
 * first CFS_RING_FIXED_ENTRIES of them, with a deep -o fuse_uring_depth). */
static void ring_register_payloads(struct cfs_loop *loop)
{
	unsigned entries = cfs_ring_entries(loop->ring), max, n;
	struct iovec arena = { loop->arena, CFS_ARENA_SIZE };
	struct iovec *iov;
	int res = -ENOMEM;

	if (!loop->arena || caio_ctx_unregister_buffers(loop->ctx) < 0)
		return;		/* requests in flight: the arena stays as it was */
	max = 1 + (entries < CFS_RING_FIXED_ENTRIES ? entries : CFS_RING_FIXED_ENTRIES);
	iov = calloc(max, sizeof(*iov));
	if (iov) {
		iov[0] = arena;
		n = cfs_ring_payloads(loop->ring, iov + 1, max - 1, CFS_RING_FIXED);
		res = caio_ctx_register_buffers(loop->ctx, iov, n + 1);
		free(iov);
	}
	if (res < 0) {
		cfs_log(LOG_INFO, "loop %u: ring payloads not registered: %s", loop->index,
			caio_strerror(res));
		/* Should even this fail, the arena stays plain memory. */
		caio_ctx_register_buffers(loop->ctx, &arena, 1);
	}
}

/* The request is read at reqbuf + 4096 - 80 so that a write's payload,
 * which follows fuse_in_header and fuse_write_in, is page aligned. */
static char *buf_mem(void *reqbuf)
{
	return (char *)reqbuf + 4096 - CFS_WRITE_DATA_OFFSET;
}

static size_t buf_room(void)
{
	return CFS_REQ_ROOM - (4096 - CFS_WRITE_DATA_OFFSET);
}

static void *reqbuf_new(struct cfs_loop *loop)
{
	void *p;

	if (loop->nspare_req)
		return loop->spare_req[--loop->nspare_req];
	return posix_memalign(&p, 4096, CFS_REQ_ROOM) ? NULL : p;
}

/* A write keeps the current request buffer until it completes. */
void *cfs_loop_take_request_buffer(struct cfs_loop *loop, const void *data)
{
	const char *mem = buf_mem(loop->reqbuf);

	if (loop->reqbuf_taken || (const char *)data < mem ||
	    (const char *)data >= mem + buf_room())
		return NULL;
	loop->reqbuf_taken = true;
	return loop->reqbuf;
}

void cfs_loop_return_request_buffer(struct cfs_loop *loop, void *buf)
{
	if (loop->nspare_req < CFS_SPARE_REQ)
		loop->spare_req[loop->nspare_req++] = buf;
	else
		free(buf);
}

/* ---- per-request counters --------------------------------------------- */

static unsigned track_slot(uint64_t unique)
{
	return (unsigned)((unique * 0x9e3779b97f4a7c15ull) >> 40) & (CFS_TRACK - 1);
}

static void track_start(struct cfs_loop *loop, const struct fuse_in_header *in)
{
	unsigned s;

	if (in->opcode == FUSE_FORGET || in->opcode == FUSE_BATCH_FORGET ||
	    in->opcode == FUSE_INTERRUPT) {
		cfs_stats_start(&loop->stats, in->opcode);
		cfs_stats_done(&loop->stats, in->opcode, 0, 0, 0);
		return;
	}
	if (loop->ntrack >= CFS_TRACK * 3 / 4)
		return;		/* too many in flight to time: count nothing */
	for (s = track_slot(in->unique); loop->track[s].unique; s = (s + 1) & (CFS_TRACK - 1))
		;
	loop->track[s].unique = in->unique;
	loop->track[s].opcode = in->opcode;
	loop->track[s].start_ns = cfs_now_ns();
	loop->ntrack++;
	cfs_stats_start(&loop->stats, in->opcode);
}

/* Remove slot s from the linear-probing table without tombstones. */
static void track_delete(struct cfs_loop *loop, unsigned s)
{
	unsigned j = s, home;

	loop->track[s].unique = 0;
	loop->ntrack--;
	for (;;) {
		j = (j + 1) & (CFS_TRACK - 1);
		if (!loop->track[j].unique)
			return;
		home = track_slot(loop->track[j].unique);
		/* Move j back to s if s lies cyclically in [home, j). */
		if (((j - home) & (CFS_TRACK - 1)) >= ((j - s) & (CFS_TRACK - 1))) {
			loop->track[s] = loop->track[j];
			loop->track[j].unique = 0;
			s = j;
		}
	}
}

static uint64_t reply_bytes(unsigned opcode, const struct iovec *iov, int count,
			    const struct fuse_out_header *out)
{
	if (out->error)
		return 0;
	if (opcode == FUSE_READ)
		return out->len - sizeof(*out);
	if ((opcode == FUSE_WRITE || opcode == FUSE_COPY_FILE_RANGE) &&
	    count > 1 && iov[1].iov_len >= sizeof(struct fuse_write_out))
		return ((const struct fuse_write_out *)iov[1].iov_base)->size;
	return 0;
}

/*
 * libfuse 3.14 cannot set FOPEN_PARALLEL_DIRECT_WRITES: without it the
 * kernel takes the inode lock exclusively for every direct write and
 * serialises O_DIRECT writers of one file.  Our writes need no such
 * lock, so add the flag to successful open and create replies.
 */
#ifndef FOPEN_PARALLEL_DIRECT_WRITES
#define FOPEN_PARALLEL_DIRECT_WRITES	(1 << 6)
#endif

static void allow_parallel_direct_writes(unsigned opcode, struct iovec *iov,
					 int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_open_out *open_out;
	size_t at;

	if (out->error || count < 2 || !cfs.parallel_direct_writes)
		return;
	if (opcode == FUSE_OPEN)
		at = 0;
	else if (opcode == FUSE_CREATE || opcode == FUSE_TMPFILE)
		at = sizeof(struct fuse_entry_out);
	else
		return;
	if (iov[1].iov_len < at + sizeof(*open_out))
		return;
	open_out = (struct fuse_open_out *)((char *)iov[1].iov_base + at);
	open_out->open_flags |= FOPEN_PARALLEL_DIRECT_WRITES;
}

/*
 * FUSE_HANDLE_KILLPRIV_V2 (which libfuse 3.14 cannot negotiate) tells the
 * kernel that the daemon clears set-user/group-ID bits itself, which
 * cfs_kill_priv() does; the kernel then marks inodes without privileges
 * (S_NOSEC) instead of asking for security.capability before every write,
 * a round trip that halves small-write throughput.  The backing
 * filesystem removes security.capability on our writes itself.
 */
/*
 * FUSE_DIRECT_IO_ALLOW_MMAP (flags2, kernel 6.6): shared mappings of
 * direct_io files (cache=never, -o direct_io) work, through the page
 * cache; without it mmap fails with ENODEV and SQLite's WAL with it.
 */
#define CFS_INIT_ALLOW_MMAP2	(1u << (36 - 32))

/* FUSE_OVER_IO_URING (flags2, kernel 6.14): see ring.c. */
#define CFS_INIT_OVER_IO_URING2	(1u << (41 - 32))

static void negotiate_init(const struct fuse_in_header *in)
{
	const struct fuse_init_in *init = (const void *)(in + 1);

	if (in->opcode != FUSE_INIT || in->len < sizeof(*in) + 16)
		return;
	cfs.kernel_killpriv_v2 = !!(init->flags & FUSE_HANDLE_KILLPRIV_V2);
	if ((init->flags & FUSE_INIT_EXT) && in->len >= sizeof(*in) + 20) {
		cfs.kernel_allow_mmap = !!(init->flags2 & CFS_INIT_ALLOW_MMAP2);
		cfs.kernel_fuse_uring = !!(init->flags2 & CFS_INIT_OVER_IO_URING2);
	}
}

static void add_init_flags(unsigned opcode, struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out *init;

	if (opcode != FUSE_INIT || out->error || count < 2 || iov[1].iov_len < 16)
		return;
	init = iov[1].iov_base;
	if (cfs.kernel_killpriv_v2)
		init->flags |= FUSE_HANDLE_KILLPRIV_V2;
	if (cfs.kernel_allow_mmap && iov[1].iov_len >= 36) {
		init->flags |= FUSE_INIT_EXT;
		init->flags2 |= CFS_INIT_ALLOW_MMAP2;
	}
	if (!cfs.ring_enabled)
		return;
	if (!cfs.kernel_fuse_uring || iov[1].iov_len < 36) {
		cfs_log(LOG_WARNING, "-o fuse_uring: the kernel does not offer FUSE over io_uring "
			"(Linux 6.14 or later, with /sys/module/fuse/parameters/enable_uring set to 1); "
			"using /dev/fuse");
		return;
	}
	init->flags |= FUSE_INIT_EXT;
	init->flags2 |= CFS_INIT_OVER_IO_URING2;
	/* The kernel wants buffers for its largest request or reply. */
	cfs.ring_payload = init->max_write;
	if (cfs.ring_payload < (size_t)init->max_pages * 4096)
		cfs.ring_payload = (size_t)init->max_pages * 4096;
	if (cfs.ring_payload < FUSE_MIN_READ_BUFFER)
		cfs.ring_payload = FUSE_MIN_READ_BUFFER;
	cfs.ring_negotiated = 1;
}

static void track_reply(struct cfs_loop *loop, struct iovec *iov, int count)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	unsigned s;

	if (!out->unique)
		return;		/* a notification */
	for (s = track_slot(out->unique); loop->track[s].unique;
	     s = (s + 1) & (CFS_TRACK - 1)) {
		struct track_entry *t = &loop->track[s];

		if (t->unique != out->unique)
			continue;
		allow_parallel_direct_writes(t->opcode, iov, count);
		add_init_flags(t->opcode, iov, count);
		cfs_stats_done(&loop->stats, t->opcode, cfs_now_ns() - t->start_ns,
			       out->error, reply_bytes(t->opcode, iov, count, out));
		track_delete(loop, s);
		return;
	}
}

/* ---- the device --------------------------------------------------------- */

/* libfuse writes every reply through here: send it on the ring entry or
 * the descriptor the request came from (a clone_fd clone) and count it. */
static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct cfs_loop *loop = current_loop;
	ssize_t n;

	if (!loop)
		return writev(fd, iov, count);
	track_reply(loop, iov, count);
	if (loop->ring && cfs_ring_reply(loop->ring, iov, count, &n))
		return n;
	n = writev(loop->devfd, iov, count);
	/* The kernel has taken FUSE_INIT's reply: the loops may now
	 * register their ring entries (ring.c). */
	if (n > 0 && cfs.ring_negotiated && !cfs.ring_started) {
		cfs.ring_started = 1;
		eventfd_write(cfs.ring_start_fd, 1);
	}
	return n;
}

static ssize_t dev_read(int fd, void *buf, size_t len, void *userdata)
{
	return read(fd, buf, len);
}

const struct fuse_custom_io cfs_custom_io = {
	.writev = dev_writev,
	.read = dev_read,
};

static int clone_device(int master)
{
	uint32_t m = master;
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return -errno;
	if (ioctl(fd, FUSE_DEV_IOC_CLONE, &m) < 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/*
 * O_TMPFILE (FUSE_TMPFILE, Linux 6.1) has no handler in libfuse 3.14, which
 * would answer ENOSYS and make the kernel refuse every later O_TMPFILE open
 * with EOPNOTSUPP.  The request is a FUSE_CREATE in all but its opcode, with
 * the name "/", which no real create can carry, and the reply is the same:
 * libfuse hands it to cfs_create(), which opens a tmpfile for that name.
 * The stats still count it as tmpfile (track_start ran first).
 */
static void tmpfile_as_create(struct fuse_in_header *in)
{
	if (in->opcode == FUSE_TMPFILE)
		in->opcode = FUSE_CREATE;
}

/* Answer the request unique with -err on the device descriptor fd, without
 * libfuse: 0, or -errno (-ENOENT when fd did not read that request). */
static int write_raw_error(int fd, uint64_t unique, int err)
{
	struct fuse_out_header out = {
		.len = sizeof(out), .error = -err, .unique = unique,
	};

	return write(fd, &out, sizeof(out)) < 0 ? -errno : 0;
}

static void reply_raw_error(struct cfs_loop *loop, uint64_t unique, int err)
{
	int res = write_raw_error(loop->devfd, unique, err);

	if (res < 0 && res != -ENOENT)
		cfs_log(LOG_DEBUG, "answering request %llu: %s", (unsigned long long)unique,
			strerror(-res));
}

/*
 * No caiofs operation waits on anything but the backing filesystem (locks
 * stay in the kernel), so an interrupt has nothing to stop.  libfuse 3.14
 * would keep one that arrives after its request was answered until the next
 * request, and leak it at unmount; ENOSYS instead tells the kernel to send no
 * more (fatal signals still abort requests not yet read).  The kernel finds
 * the request only on the descriptor that read it: with clone_fd the loop
 * busy with it is seldom the one that reads the interrupt, so the refusal
 * goes to each clone in turn until one knows the request.  ENOENT on all
 * means it was answered already or came by the io_uring, and dropping an
 * interrupt unanswered is allowed.  (The loops and their descriptors live
 * until every loop has stopped.)
 */
static bool refuse_interrupt(struct cfs_loop *loop, const struct fuse_in_header *in)
{
	unsigned i;
	int res;

	if (in->opcode != FUSE_INTERRUPT)
		return false;
	res = write_raw_error(loop->devfd, in->unique, ENOSYS);
	for (i = 0; res == -ENOENT && i < cfs.nloops; i++)
		if (cfs.loops[i]->devfd != loop->devfd)
			res = write_raw_error(cfs.loops[i]->devfd, in->unique, ENOSYS);
	return true;
}

static unsigned submit_and_reap(struct cfs_loop *loop);
static void loop_flush(struct cfs_loop *loop);
static void ring_submit(struct cfs_loop *loop, bool get_events);

/* The requests whose handler only submits to caio; the others run to the
 * end in the handler. */
static bool is_caio_request(unsigned opcode)
{
	switch (opcode) {
	case FUSE_READ: case FUSE_WRITE: case FUSE_FSYNC: case FUSE_FSYNCDIR:
	case FUSE_FALLOCATE:
		return true;
	}
	return false;
}

/*
 * Before a handler that runs synchronously: it may take long (a create on
 * ext4 here takes 0.3-0.8 ms), so first hand the kernel what this drain
 * queued and answer what has completed.  Otherwise a write read earlier in
 * the drain waits for every metadata request after it.  dbench, 4 clients,
 * four alternating runs: its writes took 0.38-0.47 ms on average before,
 * 0.20-0.32 ms after (passthrough_ll, which writes inline: 0.10 ms).
 */
static void before_sync_handler(struct cfs_loop *loop, const struct fuse_in_header *in)
{
	if (is_caio_request(in->opcode) || !caio_ctx_pending(loop->ctx))
		return;
	if (submit_and_reap(loop) && loop->ring)
		ring_submit(loop, false);
}

static void process_request(struct cfs_loop *loop, struct fuse_buf *fbuf)
{
	before_sync_handler(loop, fbuf->mem);
	negotiate_init(fbuf->mem);
	track_start(loop, fbuf->mem);
	if (refuse_interrupt(loop, fbuf->mem))
		return;
	tmpfile_as_create(fbuf->mem);
	fuse_session_process_buf(cfs.se, fbuf);
	if (fuse_session_exited(cfs.se))
		loop->stopping = true;
}

/* ---- spliced writes ------------------------------------------------------ */

/*
 * Reading a write from /dev/fuse copies its data once more than the
 * kernel needs: splicing the request into a pipe instead only takes
 * references to the pages that hold it (the page cache of the FUSE
 * file), and a splice from that pipe into the source file is then the
 * only copy.  Small requests would pay a splice and two reads of the
 * pipe for one read, so a loop splices only for a while after it saw a
 * large write.  A pipe must take the largest request whole: the kernel
 * fails (EIO) or loses a request that does not fit, so pipes are made
 * CFS_SPLICE_PIPE_SIZE large or not used at all; more than pipe-max-size
 * needs CAP_SYS_RESOURCE, which a user's daemon lacks, and root in many
 * containers too.
 */
#define CFS_SPLICE_PIPE_SIZE	(2u << 20)

static int splice_disabled;	/* the first pipe could not be made large enough */
static int pipes_alive;		/* in all loops */

/* A failure after others succeeded is a limit (open files, the user's
 * pipe pages): the loop makes no more, the others keep theirs. */
static bool pipe_new(struct cfs_loop *loop, struct cfs_pipe *p)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
		loop->pipes_max = loop->pipes_made;
		return false;
	}
	if (fcntl(fds[1], F_SETPIPE_SZ, CFS_SPLICE_PIPE_SIZE) < (int)CFS_SPLICE_PIPE_SIZE) {
		if (!__atomic_load_n(&pipes_alive, __ATOMIC_RELAXED) &&
		    !__atomic_exchange_n(&splice_disabled, 1, __ATOMIC_RELAXED))
			cfs_log(LOG_INFO, "writes are read, not spliced: a pipe of %u KiB: %m",
				CFS_SPLICE_PIPE_SIZE >> 10);
		loop->pipes_max = loop->pipes_made;
		close(fds[0]);
		close(fds[1]);
		return false;
	}
	__atomic_fetch_add(&pipes_alive, 1, __ATOMIC_RELAXED);
	p->rd = fds[0];
	p->wr = fds[1];
	return true;
}

static void pipe_close(struct cfs_pipe p)
{
	close(p.rd);
	close(p.wr);
	__atomic_fetch_sub(&pipes_alive, 1, __ATOMIC_RELAXED);
}

/* An empty pipe back to the loop; one that may still hold data is closed. */
void cfs_loop_pipe_done(struct cfs_loop *loop, struct cfs_pipe pipe, bool empty)
{
	if (empty && loop->npipes < CFS_SPLICE_PIPES) {
		loop->pipes[loop->npipes++] = pipe;
		return;
	}
	pipe_close(pipe);
	loop->pipes_made--;
}

static bool splice_wanted(struct cfs_loop *loop)
{
	if (!loop->splice_credit || cfs.opt.no_splice || loop->ring ||
	    __atomic_load_n(&splice_disabled, __ATOMIC_RELAXED))
		return false;
	if (!loop->npipes && loop->pipes_made < loop->pipes_max &&
	    pipe_new(loop, &loop->pipes[0])) {
		loop->npipes = 1;
		loop->pipes_made++;
	}
	return loop->npipes > 0;
}

static bool is_large_write(const struct fuse_in_header *in, size_t n)
{
	const struct fuse_write_in *w = (const void *)(in + 1);

	return n >= CFS_WRITE_DATA_OFFSET && in->opcode == FUSE_WRITE &&
	       w->size >= CFS_SPLICE_MIN && in->len == n &&
	       (size_t)n - CFS_WRITE_DATA_OFFSET == w->size;
}

/* Read exactly len bytes the pipe holds. */
static int pipe_read_all(int fd, char *mem, size_t len)
{
	while (len) {
		ssize_t r = read(fd, mem, len);

		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		mem += r;
		len -= r;
	}
	return 0;
}

/*
 * Splice one request into a free pipe and read its headers into mem.  A
 * large write leaves its data in the pipe, which the loop then holds as
 * loop->spliced until cfs_write() takes it; anything else is read whole.
 * Returns the request's length, 0 for one that could not be read back,
 * or -1 with errno like read(2).
 */
static ssize_t device_splice(struct cfs_loop *loop, char *mem)
{
	struct cfs_pipe *p = &loop->pipes[loop->npipes - 1];
	const struct fuse_in_header *in = (const void *)mem;
	ssize_t n = splice(loop->devfd, NULL, p->wr, NULL, buf_room(), 0);
	bool header_read = false;
	size_t head;
	int res;

	if (n < 0)
		return -1;
	head = (size_t)n < CFS_WRITE_DATA_OFFSET ? (size_t)n : CFS_WRITE_DATA_OFFSET;
	res = pipe_read_all(p->rd, mem, head);
	if (!res && is_large_write((const void *)mem, n)) {
		loop->spliced = *p;
		loop->spliced_data = mem + CFS_WRITE_DATA_OFFSET;
		loop->npipes--;
		return n;
	}
	if (!res) {
		header_read = head >= sizeof(*in);
		res = pipe_read_all(p->rd, mem + head, n - head);
	}
	if (res < 0) {
		/* Cannot happen with an intact pipe: the request fails rather
		 * than waits for an answer forever, if its header came back. */
		cfs_log(LOG_ERR, "reading a request back from its pipe: %s", strerror(-res));
		if (header_read && in->opcode != FUSE_FORGET && in->opcode != FUSE_BATCH_FORGET)
			reply_raw_error(loop, in->unique, EIO);
		loop->npipes--;
		cfs_loop_pipe_done(loop, *p, false);
		return 0;	/* nothing to process */
	}
	return n;
}

/* cfs_write(): whether the data at data waits in a pipe; if so, the
 * caller takes the pipe and gives it back with cfs_loop_pipe_done(). */
bool cfs_loop_take_spliced(struct cfs_loop *loop, const void *data, struct cfs_pipe *pipe)
{
	if (loop->spliced_data != data || loop->spliced_data == NULL)
		return false;
	*pipe = loop->spliced;
	loop->spliced_data = NULL;
	return true;
}

/* Or it cannot splice (O_DIRECT, O_APPEND): the data into memory, where
 * a read would have put it. */
int cfs_loop_fetch_spliced(struct cfs_loop *loop, const void *data, size_t size)
{
	struct cfs_pipe pipe;
	int res;

	if (!cfs_loop_take_spliced(loop, data, &pipe))
		return 0;
	res = pipe_read_all(pipe.rd, (char *)data, size);
	cfs_loop_pipe_done(loop, pipe, res == 0);
	return res;
}

/* Nothing to read now, or a request that went away: not the device's end. */
static bool device_error_is_transient(int err)
{
	return err == EAGAIN || err == EINTR || err == ENOENT || err == ENODEV;
}

/* A kernel that will not splice /dev/fuse: read it from now on. */
static void splice_refused(int err)
{
	if (!__atomic_exchange_n(&splice_disabled, 1, __ATOMIC_RELAXED))
		cfs_log(LOG_WARNING, "splicing /dev/fuse: %s; writes are read from now on",
			strerror(err));
}

/* The next request into mem, spliced when that pays; like read(2). */
static ssize_t device_read(struct cfs_loop *loop, char *mem)
{
	if (splice_wanted(loop)) {
		ssize_t n = device_splice(loop, mem);

		if (n >= 0) {
			loop->splice_credit--;
			return n;
		}
		if (device_error_is_transient(errno))
			return n;
		splice_refused(errno);	/* and read instead */
	}
	return read(loop->devfd, mem, buf_room());
}

/* After the request was processed: data nobody took is dropped. */
static void spliced_leftover(struct cfs_loop *loop)
{
	if (loop->spliced_data) {
		loop->spliced_data = NULL;
		cfs_loop_pipe_done(loop, loop->spliced, false);
	}
}

/* Process one request; false when the device has nothing more for now. */
static bool device_one(struct cfs_loop *loop)
{
	struct fuse_buf fbuf;
	ssize_t n;

	if (loop->reqbuf_taken) {
		loop->reqbuf = reqbuf_new(loop);
		if (!loop->reqbuf)
			return false;	/* retried at the next wake-up */
		loop->reqbuf_taken = false;
	}
	n = device_read(loop, buf_mem(loop->reqbuf));
	if (n < 0) {
		if (errno == EINTR || errno == ENOENT)
			return true;	/* ENOENT: the request was interrupted */
		if (errno != EAGAIN) {
			if (errno != ENODEV)
				cfs_log(LOG_ERR, "reading the FUSE device: %m");
			loop->dev_gone = true;
		}
		return false;
	}
	if ((size_t)n < sizeof(struct fuse_in_header))
		return true;
	memset(&fbuf, 0, sizeof(fbuf));
	fbuf.mem = buf_mem(loop->reqbuf);
	fbuf.size = n;
	cfs_stats_count(&loop->stats.dev_requests, 1);
	if (is_large_write(fbuf.mem, n))
		loop->splice_credit = CFS_SPLICE_CREDIT;
	process_request(loop, &fbuf);
	spliced_leftover(loop);
	return true;
}

/* Returns the number of requests read. */
static unsigned device_drain(struct cfs_loop *loop)
{
	unsigned i;

	for (i = 0; i < loop->drain_max && !loop->stopping; i++)
		if (!device_one(loop))
			break;
	return i;
}

/* The same for the requests the ring has delivered. */
static unsigned ring_drain(struct cfs_loop *loop)
{
	struct fuse_buf fbuf;
	unsigned i;

	/* All of them: no other loop can take this ring's requests. */
	for (i = 0; i < CFS_DRAIN_MAX && !loop->stopping; i++) {
		if (!cfs_ring_next(loop->ring, &fbuf))
			break;
		cfs_stats_count(&loop->stats.ring_requests, 1);
		process_request(loop, &fbuf);
		cfs_ring_done_current(loop->ring);
		/* The sync backend runs a request inside the flush: run and
		 * answer each at once rather than all after the last. */
		if (loop->drain_max == 1) {
			loop_flush(loop);
			caio_reap(loop->ctx, 0);
			ring_submit(loop, false);
		}
	}
	return i;
}

static void ring_start(struct cfs_loop *loop)
{
	int res = cfs_ring_start(loop->ring, cfs.ring_payload);

	if (res < 0)
		cfs_log(LOG_WARNING, "loop %u: FUSE over io_uring: %s", loop->index,
			strerror(-res));
	else
		ring_register_payloads(loop);
}

/* Send the ring's replies of this iteration, and take what the kernel
 * has for us, in one io_uring_enter. */
static void ring_submit(struct cfs_loop *loop, bool get_events)
{
	int n = cfs_ring_submit(loop->ring, get_events);

	if (n > 0) {
		cfs_stats_count(&loop->stats.ring_commands, (unsigned)n);
		cfs_stats_count(&loop->stats.ring_submits, 1);
	}
}

/* Where a read of size bytes for the request being processed should land:
 * its ring entry's payload (no copy for the reply), or NULL. */
void *cfs_loop_read_buffer(struct cfs_loop *loop, size_t size)
{
	return loop->ring ? cfs_ring_read_buffer(loop->ring, size) : NULL;
}

/* Whether request data at p stays valid until the reply (ring entries). */
bool cfs_loop_data_is_stable(struct cfs_loop *loop, const void *p)
{
	return loop->ring && cfs_ring_owns(loop->ring, p);
}

/* ---- requests waiting for a caio slot ----------------------------------- */

void cfs_loop_defer(struct cfs_loop *loop, struct cfs_io *io)
{
	io->next = NULL;
	if (loop->defer_tail)
		loop->defer_tail->next = io;
	else
		loop->defer_head = io;
	loop->defer_tail = io;
	loop->stats.deferred++;
}

static void resubmit_deferred(struct cfs_loop *loop)
{
	struct cfs_io *io;

	while ((io = loop->defer_head)) {
		int res = cfs_io_submit(io);

		if (res == -EAGAIN)
			return;
		loop->defer_head = io->next;
		if (!loop->defer_head)
			loop->defer_tail = NULL;
		if (res < 0) {
			/* An argument error: reply it as the kernel would. */
			io->next = NULL;
			cfs_io_fail(io, res);
		}
	}
}

/* A flush the backend refused (-EAGAIN, -EBUSY...) leaves the requests
 * queued: the loop then wakes up again shortly to retry it. */
static void loop_flush(struct cfs_loop *loop)
{
	int n = caio_flush(loop->ctx);

	loop->flush_failed = n < 0;
	if (n > 0)
		cfs_stats_flush(&loop->stats, n);
}

/*
 * Hand the kernel what is queued, deferred requests first, then answer what
 * has completed: cached reads often complete inside the submission itself,
 * and are better answered now than after another trip through epoll.
 * Returns the completions run.
 */
static unsigned submit_and_reap(struct cfs_loop *loop)
{
	int res;

	resubmit_deferred(loop);
	loop_flush(loop);
	if (!caio_ctx_pending(loop->ctx) || (res = caio_reap(loop->ctx, 0)) <= 0)
		return 0;
	resubmit_deferred(loop);
	loop_flush(loop);
	return res;
}

/* ---- the loop ------------------------------------------------------------ */

static void loop_finish(struct cfs_loop *loop)
{
	while (loop->defer_head || caio_ctx_pending(loop->ctx)) {
		resubmit_deferred(loop);
		loop_flush(loop);
		caio_wait(loop->ctx, 1, 100 * 1000000ll);
	}
	if (loop->ring)
		ring_submit(loop, false);
	cfs_stats_publish_caio(&loop->stats, loop->ctx);
}

/* The loop polling for a lone client (spin_us), if any. */
static struct cfs_loop *cfs_spinner;

/* More requests in flight than this are polled for as I/O in flight. */
#define CFS_SPIN_MAX_PENDING	2

static void spin_release(struct cfs_loop *loop)
{
	struct cfs_loop *self = loop;

	__atomic_compare_exchange_n(&cfs_spinner, &self, NULL, false,
				    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * Whether to poll, after an iteration that read got requests and reaped
 * reaped completions, for spin_us more.  Two kinds of work gain:
 *  - a client that waits for each reply before it sends the next request
 *    (tar, cp, one psync writer): one loop at a time polls for it, which
 *    saves a wake-up per request;
 *  - a loop with more requests in flight (an O_DIRECT reader at queue
 *    depth 32): each such loop polls for its completions.  Otherwise a
 *    wake-up stands between every completion and its reply, and the
 *    request's slot stays away from the device meanwhile (QD 32 O_DIRECT
 *    on ext4 on a loop device here, uring backend: 55-63k IOPS without,
 *    62-66k with, the raw device about 70k).  Not with -o fuse_uring:
 *    there it gained nothing for twice the CPU per request.
 * Never after a large buffered write: see cfs_loop_stay_on_cpu().
 * A polling loop yields its CPU to any other runnable thread at each
 * empty look, so it only takes time nobody else wants, and it sleeps
 * spin_us after its last request or completion: slow I/O in flight
 * (an fsync of seconds) costs no polling.
 */
static bool spin_after(struct cfs_loop *loop, unsigned got, unsigned reaped, bool spinning,
		       uint64_t *busy_at)
{
	unsigned pending = caio_ctx_pending(loop->ctx);
	struct cfs_loop *none = NULL;

	if (!got && !reaped)
		return spinning;
	*busy_at = cfs_now_ns();
	if (loop->stay_on_cpu) {
		loop->stay_on_cpu = false;
		spin_release(loop);
		return false;
	}
	if (pending > CFS_SPIN_MAX_PENDING && !loop->ring)
		return true;		/* I/O in flight */
	if (got > 1 || pending > CFS_SPIN_MAX_PENDING) {
		/* A burst of requests: they came together, so the next ones
		 * will wake a loop anyway. */
		spin_release(loop);
		return false;
	}
	return __atomic_load_n(&cfs_spinner, __ATOMIC_RELAXED) == loop ||
	       __atomic_compare_exchange_n(&cfs_spinner, &none, loop, false,
					   __ATOMIC_RELAXED, __ATOMIC_RELAXED);
}

/*
 * The iteration submitted or completed a large buffered write: do not
 * poll after it.  Its data, just read from the device into this CPU's
 * cache, is copied into the page cache by a worker (io_uring's io-wq, the
 * thread pool).  If this loop sleeps, the worker runs here, on the CPU
 * whose cache holds the data; a polling loop sends it to another CPU, and
 * the client's next request with it.  dd bs=1M count=1024 onto tmpfs
 * through the uring backend, six alternating runs each: 1.0-1.3 GB/s
 * when the loop sleeps; when it polls, four runs at 0.7-0.9 GB/s, the
 * io-wq worker spending up to three times the CPU time on the same copies.
 */
void cfs_loop_stay_on_cpu(struct cfs_loop *loop)
{
	loop->stay_on_cpu = true;
}

static void *loop_main(void *arg)
{
	struct cfs_loop *loop = arg;
	struct epoll_event ev[8];
	int n, i;

	current_loop = loop;
	if (cfs_creds_thread_init() < 0) {
		/* umask stays per process: let the kernel apply it */
		cfs_log(LOG_WARNING, "loop %u: unshare(CLONE_FS): %m", loop->index);
		cfs.dont_mask = 0;
	}
	uint64_t spin_ns = (uint64_t)cfs.opt.spin_us * 1000, busy_at = 0;
	bool spinning = false, ring_ready = false;

	/* The kernel holds every request until each CPU queue has an entry:
	 * a loop that cannot register its entries must not leave the mount
	 * hanging.  Enabling a ring the loop created cannot really fail. */
	if (loop->ring && (errno = -cfs_ring_enable(loop->ring)) > 0) {
		cfs_log(LOG_CRIT, "loop %u: enabling its io_uring: %m; aborting", loop->index);
		abort();
	}

	while (!loop->dev_gone && !loop->stopping) {
		/* After work, poll instead of sleeping for spin_us: waking a
		 * sleeping thread on an idle CPU costs tens of microseconds,
		 * more than many empty epoll_wait calls when the next request
		 * of a single-threaded client (tar, a build) is that close.
		 * Who polls, and for how long: spin_after(). */
		n = epoll_wait(loop->epfd, ev, 8,
			       spinning || ring_ready ? 0 : loop->flush_failed ? 1 : -1);
		/* Requests the last iteration's io_uring_enter brought. */
		if (n <= 0 && ring_ready) {
			ev[0].data.u32 = TAG_RING;
			n = 1;
		}
		ring_ready = false;
		if (n <= 0) {
			if (loop->flush_failed)
				loop_flush(loop);
			if (spinning && cfs_now_ns() - busy_at > spin_ns) {
				spinning = false;
				spin_release(loop);
			} else if (spinning) {
				/* Poll only a CPU nobody else wants: a thread
				 * woken here would otherwise wait for the end of
				 * this one's time slice at every wake-up (a writer
				 * next to a chmod loop, both on the mount, fell
				 * from 6,000 writes a second to none). */
				sched_yield();
			}
			continue;
		}
		unsigned got = 0, reaped = 0;
		int res;

		for (i = 0; i < n; i++) {
			if (ev[i].data.u32 == TAG_DEV)
				got += device_drain(loop);
			else if (ev[i].data.u32 == TAG_CAIO)
				reaped += (res = caio_reap(loop->ctx, 0)) > 0 ? res : 0;
			else if (ev[i].data.u32 == TAG_RING) {
				ring_submit(loop, true);
				got += ring_drain(loop);
			}
			else if (ev[i].data.u32 == TAG_RING_START)
				ring_start(loop);
			else
				loop->stopping = true;
		}
		reaped += submit_and_reap(loop);
		/* Every reply of this iteration in one io_uring_enter, which
		 * also brings the requests that came meanwhile. */
		if (loop->ring) {
			ring_submit(loop, true);
			ring_ready = cfs_ring_ready(loop->ring);
		}
		cfs_stats_publish_caio(&loop->stats, loop->ctx);
		if (spin_ns)
			spinning = spin_after(loop, got, reaped, spinning, &busy_at);
	}
	spin_release(loop);
	loop_finish(loop);
	eventfd_write(cfs.loops_done_fd, 1);
	return NULL;
}

static int epoll_watch(int epfd, int fd, uint32_t events, uint32_t tag)
{
	struct epoll_event ev = { .events = events, .data.u32 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int cfs_loop_new_ctx(caio_ctx **ctxp, char *err, size_t errlen)
{
	struct caio_params p;

	memset(&p, 0, sizeof(p));
	p.size = sizeof(p);
	p.flags = CAIO_CTX_QUIET;
	p.max_requests = cfs.opt.queue_depth;
	p.batch = cfs.opt.batch;
	p.backend = cfs.opt.backend;
	p.error = err;
	p.error_len = errlen;
	return caio_ctx_new(ctxp, &p);
}

static int loop_setup(struct cfs_loop *loop, int master)
{
	char err[256] = "";
	int res;

	loop->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epfd < 0)
		return -errno;
	loop->devfd = master;
	if (cfs.opt.clone_fd && loop->index > 0) {
		res = clone_device(master);
		if (res < 0)
			return res;
		loop->devfd = res;
		loop->own_devfd = true;
	}
	res = cfs_loop_new_ctx(&loop->ctx, err, sizeof(err));
	if (res < 0) {
		cfs_log(LOG_ERR, "loop %u: caio_ctx_new: %s", loop->index, err);
		return res;
	}
	/* The sync backend runs each request inside the flush: a loop that
	 * read several would serve them one after the other while the idle
	 * loops, which the other requests' arrivals woke, find nothing. */
	loop->drain_max = caio_ctx_backend(loop->ctx) == CAIO_BACKEND_SYNC ? 1 : CFS_DRAIN_MAX;
	loop->pipes_max = CFS_SPLICE_PIPES;
	arena_setup(loop);
	loop->reqbuf = reqbuf_new(loop);
	if (!loop->reqbuf)
		return -ENOMEM;
	/* EPOLLEXCLUSIVE: one request wakes one idle loop, not all of them. */
	res = epoll_watch(loop->epfd, loop->devfd, EPOLLIN | EPOLLEXCLUSIVE, TAG_DEV);
	if (!res)
		res = epoll_watch(loop->epfd, caio_ctx_eventfd(loop->ctx), EPOLLIN, TAG_CAIO);
	if (!res)
		res = epoll_watch(loop->epfd, cfs.stop_fd, EPOLLIN, TAG_STOP);
	return res;
}

static void loop_free(struct cfs_loop *loop)
{
	unsigned c, i;

	if (loop->ctx)
		caio_ctx_destroy(loop->ctx);
	/* After the context: its ring held the arena's pages. */
	if (loop->arena)
		munmap(loop->arena, CFS_ARENA_SIZE);
	cfs_ring_free(loop->ring);
	if (loop->epfd >= 0)
		close(loop->epfd);
	if (loop->own_devfd)
		close(loop->devfd);
	if (!loop->reqbuf_taken)
		free(loop->reqbuf);	/* else a write gave it back to the spares */
	for (i = 0; i < loop->nspare_req; i++)
		free(loop->spare_req[i]);
	for (c = 0; c < CFS_NCLASS; c++)
		for (i = 0; i < loop->npool[c]; i++)
			free(loop->pool[c][i]);
	for (i = 0; i < loop->npipes; i++)
		pipe_close(loop->pipes[i]);
	free(loop);
}

/*
 * Every loop gets a ring, or none does: a kernel queue whose loop has no
 * ring would get no entries, and the kernel holds every request until
 * each queue has one.
 */
static void rings_setup(void)
{
	unsigned i;
	int res = 0;

	for (i = 0; i < cfs.nloops && res >= 0; i++)
		res = cfs_ring_new(&cfs.loops[i]->ring, cfs.loops[i]->devfd, i,
				   cfs.nloops, cfs.opt.fuse_uring_depth);
	for (i = 0; i < cfs.nloops && res >= 0; i++) {
		struct cfs_loop *loop = cfs.loops[i];

		/* Edge triggered: the one write after FUSE_INIT wakes every loop once. */
		res = epoll_watch(loop->epfd, cfs.ring_start_fd, EPOLLIN | EPOLLET,
				  TAG_RING_START);
		if (!res)
			res = epoll_watch(loop->epfd, cfs_ring_fd(loop->ring),
					  EPOLLIN | EPOLLET, TAG_RING);
	}
	if (res >= 0) {
		cfs.ring_enabled = 1;
		return;
	}
	cfs_log(LOG_WARNING, "-o fuse_uring: no io_uring for FUSE requests (%s); using /dev/fuse",
		strerror(-res));
	for (i = 0; i < cfs.nloops; i++) {
		struct cfs_loop *loop = cfs.loops[i];

		if (loop->ring) {
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, cfs.ring_start_fd, NULL);
			epoll_ctl(loop->epfd, EPOLL_CTL_DEL, cfs_ring_fd(loop->ring), NULL);
		}
		cfs_ring_free(loop->ring);
		loop->ring = NULL;
	}
}

/* Create the loops (their contexts first: a failure leaves none running). */
int cfs_loops_start(void)
{
	int master = fuse_session_fd(cfs.se), res;
	struct cfs_loop **loops;
	unsigned i;

	if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) < 0)
		return -errno;
	loops = calloc(cfs.nloops, sizeof(*loops));
	if (!loops)
		return -ENOMEM;
	__atomic_store_n(&cfs.loops, loops, __ATOMIC_RELEASE);
	for (i = 0; i < cfs.nloops; i++) {
		struct cfs_loop *loop = calloc(1, sizeof(*loop));

		if (!loop)
			return -ENOMEM;
		loop->index = i;
		loop->epfd = -1;
		__atomic_store_n(&cfs.loops[i], loop, __ATOMIC_RELEASE);
		res = loop_setup(loop, master);
		if (res < 0)
			return res;
		if (i == 0 && strcmp(cfs.backend_name, caio_ctx_backend_name(loop->ctx))) {
			cfs_log(LOG_WARNING, "backend changed since the check: %s (%s)",
				caio_ctx_backend_name(loop->ctx), caio_ctx_selection(loop->ctx));
			snprintf(cfs.selection, sizeof(cfs.selection), "%s",
				 caio_ctx_selection(loop->ctx));
			cfs.backend_name = caio_ctx_backend_name(loop->ctx);
		}
	}
	if (cfs.opt.fuse_uring)
		rings_setup();
	for (i = 0; i < cfs.nloops; i++) {
		res = pthread_create(&cfs.loops[i]->thread, NULL, loop_main, cfs.loops[i]);
		if (res)
			return -res;
		cfs.loops[i]->started = true;
	}
	return 0;
}

void cfs_loops_join(void)
{
	unsigned i;

	if (!cfs.loops)
		return;
	for (i = 0; i < cfs.nloops; i++) {
		if (cfs.loops[i] && cfs.loops[i]->started)
			pthread_join(cfs.loops[i]->thread, NULL);
	}
}

void cfs_loops_free(void)
{
	unsigned i;

	if (!cfs.loops)
		return;
	for (i = 0; i < cfs.nloops; i++)
		if (cfs.loops[i])
			loop_free(cfs.loops[i]);
	free(cfs.loops);
	cfs.loops = NULL;
}
