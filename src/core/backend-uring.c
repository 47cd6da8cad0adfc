/* backend-uring.c - the io_uring backend: one SQE per request, one io_uring_enter per flush (fused with the wait). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "internal.h"

/* liburing >= 2.6 (kernel 6.9) has IORING_OP_FTRUNCATE; it is an enum, so
 * go by the version header that liburing >= 2.4 installs. */
#if defined(IO_URING_VERSION_MAJOR) && \
	(IO_URING_VERSION_MAJOR > 2 || IO_URING_VERSION_MINOR >= 6)
#define URING_HAVE_FTRUNCATE 1
#endif

/* IORING_MAX_ENTRIES of kernels that cannot clamp (before 5.6). */
#define URING_OLD_MAX_ENTRIES	4096u
/* CQ slack for liburing's timeout CQEs (timed waits before 5.11). */
#define URING_SPARE_CQES	8u

struct uring {
	struct io_uring ring;
	/* Per request slot: read/write as a one-element readv/writev on
	 * kernels before 5.6, which lack IORING_OP_READ/WRITE.  NULL when
	 * the kernel has them. */
	struct iovec *one_iov;
	bool can_cancel;	/* IORING_OP_ASYNC_CANCEL is supported */
	/* Registered buffers, sorted by start, for find_region(). */
	struct uring_region {
		uintptr_t start, end;	/* [start, end) */
		unsigned index;		/* buf_index for READ_FIXED/WRITE_FIXED */
	} *regions;
	unsigned nregions;
};

/* user_data of our cancel SQEs: an address no request can have.
 * LIBURING_UDATA_TIMEOUT marks liburing's own timeout SQEs (timed waits
 * before 5.11); both kinds of CQE are consumed silently. */
static const char uring_cancel_tag;
#define URING_CANCEL_TAG	((uint64_t)(uintptr_t)&uring_cancel_tag)

/* caio operation -> io_uring opcode, for the probe. */
static const struct {
	uint8_t op;
	uint8_t opcode;
} uring_opcodes[] = {
	{ CAIO_OP_READ, IORING_OP_READ },
	{ CAIO_OP_WRITE, IORING_OP_WRITE },
	{ CAIO_OP_READV, IORING_OP_READV },
	{ CAIO_OP_WRITEV, IORING_OP_WRITEV },
	{ CAIO_OP_FSYNC, IORING_OP_FSYNC },
	{ CAIO_OP_FDSYNC, IORING_OP_FSYNC },	/* with IORING_FSYNC_DATASYNC */
	{ CAIO_OP_FALLOCATE, IORING_OP_FALLOCATE },
	{ CAIO_OP_OPENAT, IORING_OP_OPENAT },
	{ CAIO_OP_CLOSE, IORING_OP_CLOSE },
	{ CAIO_OP_STATX, IORING_OP_STATX },
	{ CAIO_OP_UNLINKAT, IORING_OP_UNLINKAT },
	{ CAIO_OP_RENAMEAT, IORING_OP_RENAMEAT },
	{ CAIO_OP_MKDIRAT, IORING_OP_MKDIRAT },
	{ CAIO_OP_SYMLINKAT, IORING_OP_SYMLINKAT },
	{ CAIO_OP_LINKAT, IORING_OP_LINKAT },
#ifdef URING_HAVE_FTRUNCATE
	{ CAIO_OP_FTRUNCATE, IORING_OP_FTRUNCATE },
#endif
	{ CAIO_OP_SPLICE, IORING_OP_SPLICE },
};

/*
 * Setup flags we want when the kernel has them, newest first: an older
 * kernel rejects an unknown flag with EINVAL, so each is dropped in turn.
 *   COOP_TASKRUN (5.19): completions that need task_work (O_DIRECT) do not
 *     IPI the submitter; they run at its next kernel entry (a syscall, a
 *     sleep in poll(), which they wake, or at worst the next tick), as fio
 *     sets it up.  TASKRUN_FLAG makes liburing's peek enter the kernel for
 *     them, so a busy-polling caio_reap() still sees them.
 *   SUBMIT_ALL (5.18): a request that fails at submission (bad fd on old
 *     kernels) does not stop the rest of the batch.
 *   CLAMP (5.6): a huge max_requests gets the largest ring instead of EINVAL.
 * Not SINGLE_ISSUER/DEFER_TASKRUN: caio.h lets any thread use a context (one
 * at a time), and those make submissions from a second thread fail.
 */
static const unsigned uring_optional_flags[] = {
	IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
	IORING_SETUP_SUBMIT_ALL,
	IORING_SETUP_CLAMP,
};

static struct uring *uring_of(const caio_ctx *ctx)
{
	return ctx->backend_data;
}

/* ---- setup ---- */

static int read_io_uring_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "re");
	int value = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &value) != 1)
		value = -1;
	fclose(f);
	return value;
}

static const char *eperm_reason(bool sqpoll)
{
	switch (read_io_uring_disabled()) {
	case 2:
		return "kernel.io_uring_disabled=2: io_uring is disabled for every process";
	case 1:
		return "kernel.io_uring_disabled=1 and the process is neither in kernel.io_uring_group nor CAP_SYS_ADMIN";
	}
	if (sqpoll)
		return "SQPOLL needs CAP_SYS_ADMIN before Linux 5.11, or a seccomp/LSM policy blocks io_uring";
	return "blocked by seccomp (Docker's default profile answers EPERM) or an LSM policy";
}

static void setup_reason(const caio_ctx *ctx, int err, char *reason, size_t len)
{
	const char *name = caio__errno_name(err);
	struct rlimit rl;

	switch (-err) {
	case ENOSYS:
		snprintf(reason, len, "io_uring_setup: %s (blocked by seccomp? allow io_uring_setup/io_uring_enter/io_uring_register in the container's seccomp profile; or a kernel without io_uring)",
			 name);
		return;
	case EPERM:
		snprintf(reason, len, "io_uring_setup: %s (%s)", name,
			 eperm_reason(ctx->flags & CAIO_CTX_SQPOLL));
		return;
	case ENOMEM:
		if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
			snprintf(reason, len, "io_uring_setup: %s (kernels before 5.12 charge the rings to RLIMIT_MEMLOCK, now %llu KiB: raise ulimit -l or lower max_requests)",
				 name, (unsigned long long)rl.rlim_cur / 1024);
			return;
		}
		break;
	}
	snprintf(reason, len, "io_uring_setup: %s (%s)", name, caio_strerror(err));
}

/* io_uring_queue_init_params, dropping optional flags the kernel rejects. */
static int uring_queue_init(caio_ctx *ctx, struct uring *u,
			    struct io_uring_params *p)
{
	unsigned entries = 2 * ctx->max_requests;	/* room for cancel SQEs */
	unsigned flags = 0;
	unsigned i;
	int ret;

	for (i = 0; i < sizeof(uring_optional_flags) / sizeof(uring_optional_flags[0]); i++)
		flags |= uring_optional_flags[i];
	/* The SQPOLL thread issues the requests: no IPI to avoid, and the
	 * kernel refuses COOP_TASKRUN with it. */
	if (ctx->flags & CAIO_CTX_SQPOLL)
		flags = (flags & ~uring_optional_flags[0]) | IORING_SETUP_SQPOLL;
	for (i = 0;; i++) {
		memset(p, 0, sizeof(*p));
		p->flags = flags;
		p->sq_thread_idle = ctx->sqpoll_idle_ms;
		ret = io_uring_queue_init_params(entries, &u->ring, p);
		if (ret != -EINVAL || i == sizeof(uring_optional_flags) / sizeof(uring_optional_flags[0]))
			return ret;
		flags &= ~uring_optional_flags[i];
		if (!(flags & IORING_SETUP_CLAMP) && entries > URING_OLD_MAX_ENTRIES)
			entries = URING_OLD_MAX_ENTRIES;
	}
}

/* Why a ring that was set up cannot serve this context, or NULL. */
static const char *uring_unusable(const caio_ctx *ctx, const struct io_uring_params *p)
{
	if ((ctx->flags & CAIO_CTX_SQPOLL) && !(p->features & IORING_FEAT_SQPOLL_NONFIXED))
		return "io_uring SQPOLL needs registered files before Linux 5.11 (no IORING_FEAT_SQPOLL_NONFIXED): drop CAIO_CTX_SQPOLL";
	/* CQEs outstanding: max_requests requests, one cancel each, and a
	 * few liburing timeouts.  Since 5.5 (NODROP) an overflow waits in
	 * the kernel until reap flushes it; before, it would be lost. */
	if (!(p->features & IORING_FEAT_NODROP) &&
	    p->cq_entries < 2 * ctx->max_requests + URING_SPARE_CQES)
		return "io_uring CQ ring too small for max_requests on a kernel without IORING_FEAT_NODROP (before 5.5): lower max_requests";
	return NULL;
}

static int uring_setup(caio_ctx *ctx, struct uring *u, char *reason, size_t len)
{
	struct io_uring_params p;
	const char *why;
	int ret = uring_queue_init(ctx, u, &p);

	if (ret < 0) {
		setup_reason(ctx, ret, reason, len);
		return ret;
	}
	why = uring_unusable(ctx, &p);
	if (why) {
		snprintf(reason, len, "%s", why);
		io_uring_queue_exit(&u->ring);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Without a probe (before 5.6) the kernel has at least what 5.1 had. */
static uint32_t uring_ops_without_probe(struct uring *u)
{
	u->can_cancel = false;
	return CAIO_OP_BIT(CAIO_OP_READV) | CAIO_OP_BIT(CAIO_OP_WRITEV) |
	       CAIO_OP_BIT(CAIO_OP_FSYNC) | CAIO_OP_BIT(CAIO_OP_FDSYNC);
}

static uint32_t uring_probe_ops(struct uring *u)
{
	struct io_uring_probe *probe = io_uring_get_probe_ring(&u->ring);
	uint32_t native = 0;

	if (!probe)
		return uring_ops_without_probe(u);
	for (unsigned i = 0; i < sizeof(uring_opcodes) / sizeof(uring_opcodes[0]); i++)
		if (io_uring_opcode_supported(probe, uring_opcodes[i].opcode))
			native |= CAIO_OP_BIT(uring_opcodes[i].op);
	u->can_cancel = io_uring_opcode_supported(probe, IORING_OP_ASYNC_CANCEL);
	io_uring_free_probe(probe);
	return native;
}

/* Which operations run in the ring; the core sends the rest to its pool. */
static int uring_set_native_ops(caio_ctx *ctx, struct uring *u)
{
	const uint32_t rw = CAIO_OP_BIT(CAIO_OP_READ) | CAIO_OP_BIT(CAIO_OP_WRITE);
	const uint32_t vec = CAIO_OP_BIT(CAIO_OP_READV) | CAIO_OP_BIT(CAIO_OP_WRITEV);
	uint32_t native = uring_probe_ops(u);

	if ((native & rw) != rw && (native & vec) == vec) {
		u->one_iov = calloc(ctx->max_requests, sizeof(*u->one_iov));
		if (!u->one_iov)
			return -ENOMEM;
		native |= rw;
	}
	ctx->native_ops = native;
	return 0;
}

static int uring_init(caio_ctx *ctx, char *reason, size_t len)
{
	struct uring *u = calloc(1, sizeof(*u));
	int err;

	if (!u)
		return -ENOMEM;
	err = uring_setup(ctx, u, reason, len);
	if (err)
		goto fail_free;
	/* Every CQE posted signals the eventfd, for poll/epoll/asyncio. */
	if (ctx->efd >= 0) {
		err = io_uring_register_eventfd(&u->ring, ctx->efd);
		if (err) {
			snprintf(reason, len, "io_uring_register(EVENTFD): %s",
				 caio__errno_name(err));
			goto fail_exit;
		}
	}
	err = uring_set_native_ops(ctx, u);
	if (err)
		goto fail_exit;
	ctx->backend_data = u;
	return 0;
fail_exit:
	io_uring_queue_exit(&u->ring);
fail_free:
	free(u);
	return err;
}

/* ---- submission ---- */

static unsigned rw_len(const caio_req *req)
{
	return req->u.rw.len > CAIO_MAX_RW_COUNT ? CAIO_MAX_RW_COUNT : req->u.rw.len;
}

/* The registered buffer holding [buf, buf + len) wholly, or -1: the last
 * region starting at or before buf (they do not overlap) or none. */
static int find_region(const struct uring *u, const void *buf, size_t len)
{
	uintptr_t start = (uintptr_t)buf;
	unsigned lo = 0, hi = u->nregions;
	const struct uring_region *r;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		if (u->regions[mid].start <= start)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -1;
	r = &u->regions[lo - 1];
	return start < r->end && len <= r->end - start ? (int)r->index : -1;
}

static void prep_rw(struct uring *u, struct io_uring_sqe *sqe, caio_req *req)
{
	bool write = req->op == CAIO_OP_WRITE;
	struct iovec *iov;
	int region;

	if (u->nregions && (region = find_region(u, req->u.rw.buf, rw_len(req))) >= 0) {
		if (write)
			io_uring_prep_write_fixed(sqe, req->fd, req->u.rw.buf, rw_len(req),
						  req->offset, region);
		else
			io_uring_prep_read_fixed(sqe, req->fd, req->u.rw.buf, rw_len(req),
						 req->offset, region);
		req->fixed_buf = 1;
		return;
	}
	if (!u->one_iov) {
		if (write)
			io_uring_prep_write(sqe, req->fd, req->u.rw.buf, rw_len(req), req->offset);
		else
			io_uring_prep_read(sqe, req->fd, req->u.rw.buf, rw_len(req), req->offset);
		return;
	}
	iov = &u->one_iov[req->index];
	iov->iov_base = req->u.rw.buf;
	iov->iov_len = rw_len(req);
	if (write)
		io_uring_prep_writev(sqe, req->fd, iov, 1, req->offset);
	else
		io_uring_prep_readv(sqe, req->fd, iov, 1, req->offset);
}

static void prep_meta(struct io_uring_sqe *sqe, caio_req *req)
{
	switch (req->op) {
	case CAIO_OP_OPENAT:
		io_uring_prep_openat(sqe, req->fd, req->u.open.path,
				     req->u.open.flags, req->u.open.mode);
		break;
	case CAIO_OP_CLOSE:
		io_uring_prep_close(sqe, req->fd);
		break;
	case CAIO_OP_STATX:
		io_uring_prep_statx(sqe, req->fd, req->u.statx.path, req->u.statx.flags,
				    req->u.statx.mask, req->u.statx.buf);
		break;
	case CAIO_OP_UNLINKAT:
		io_uring_prep_unlinkat(sqe, req->fd, req->u.open.path, req->u.open.flags);
		break;
	case CAIO_OP_RENAMEAT:
		io_uring_prep_renameat(sqe, req->fd, req->u.two.oldpath,
				       req->u.two.newdirfd, req->u.two.newpath,
				       req->u.two.flags);
		break;
	case CAIO_OP_MKDIRAT:
		io_uring_prep_mkdirat(sqe, req->fd, req->u.open.path, req->u.open.mode);
		break;
	case CAIO_OP_SYMLINKAT:
		io_uring_prep_symlinkat(sqe, req->u.two.oldpath, req->u.two.newdirfd,
					req->u.two.newpath);
		break;
	case CAIO_OP_LINKAT:
		io_uring_prep_linkat(sqe, req->fd, req->u.two.oldpath,
				     req->u.two.newdirfd, req->u.two.newpath,
				     req->u.two.flags);
		break;
#ifdef URING_HAVE_FTRUNCATE
	case CAIO_OP_FTRUNCATE:
		io_uring_prep_ftruncate(sqe, req->fd, req->u.length);
		break;
#endif
	case CAIO_OP_SPLICE:
		io_uring_prep_splice(sqe, req->u.splice.fd_in, req->u.splice.off_in,
				     req->fd, req->offset, req->u.splice.len,
				     req->u.splice.flags);
		break;
	}
}

static void prep_request(struct uring *u, struct io_uring_sqe *sqe, caio_req *req)
{
	req->fixed_buf = 0;	/* the slot may have held a fixed read */
	switch (req->op) {
	case CAIO_OP_READ:
	case CAIO_OP_WRITE:
		prep_rw(u, sqe, req);
		break;
	case CAIO_OP_READV:
		io_uring_prep_readv(sqe, req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
		break;
	case CAIO_OP_WRITEV:
		io_uring_prep_writev(sqe, req->fd, req->u.vec.iov, req->u.vec.cnt, req->offset);
		break;
	case CAIO_OP_FSYNC:
		io_uring_prep_fsync(sqe, req->fd, 0);
		break;
	case CAIO_OP_FDSYNC:
		io_uring_prep_fsync(sqe, req->fd, IORING_FSYNC_DATASYNC);
		break;
	case CAIO_OP_FALLOCATE:
		io_uring_prep_fallocate(sqe, req->fd, req->u.alloc.mode, req->offset,
					req->u.alloc.len);
		break;
	default:
		prep_meta(sqe, req);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
}

/* One SQE per request, in order, until the SQ is full or a request the
 * ring cannot run (the core routes those to its pool; this is a guard). */
static unsigned prep_batch(caio_ctx *ctx, struct uring *u, caio_req **reqs,
			   unsigned nr)
{
	unsigned i;

	for (i = 0; i < nr; i++) {
		struct io_uring_sqe *sqe;

		if (!(ctx->native_ops & CAIO_OP_BIT(reqs[i]->op)))
			break;
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			break;
		prep_request(u, sqe, reqs[i]);
	}
	return i;
}

/*
 * Give back the SQEs the kernel did not consume (it stops at an -EAGAIN
 * allocation failure, or, before SUBMIT_ALL, after a request that failed
 * at submission), so that the core can requeue their requests instead of
 * having them surface at some later io_uring_enter.  Without SQPOLL the
 * kernel reads the SQ only inside io_uring_enter, so the unconsumed tail
 * is still ours: moving the tail back to the kernel's head drops it.
 */
static void uring_take_back(struct io_uring *ring)
{
	unsigned head = *ring->sq.khead;

	ring->sq.sqe_tail = head;
	ring->sq.sqe_head = head;
	io_uring_smp_store_release(ring->sq.ktail, head);
}

/* How many of the `prepared` SQEs at the tail the kernel took. */
static unsigned uring_consumed(struct io_uring *ring, unsigned queued,
			       unsigned prepared)
{
	unsigned left, taken;

	/* The SQPOLL thread takes them asynchronously: handing over is all. */
	if (ring->flags & IORING_SETUP_SQPOLL)
		return prepared;
	left = io_uring_sq_ready(ring);
	if (left)
		uring_take_back(ring);
	taken = queued - left;			/* oldest first */
	if (taken < queued - prepared)		/* older leftovers went first */
		return 0;
	return taken - (queued - prepared);
}

/* A timed wait with no EXT_ARG (before 5.11): liburing adds a timeout SQE,
 * so submit first and wait in a second call. */
static int uring_wait_old(struct io_uring *ring, unsigned wait_nr,
			  struct __kernel_timespec *kts)
{
	struct io_uring_cqe *cqe;

	return io_uring_wait_cqes(ring, &cqe, wait_nr, kts, NULL);
}

/*
 * Submit what the SQ holds and, if wait_nr, wait for that many CQEs, in
 * ONE io_uring_enter (IORING_ENTER_GETEVENTS, with the timeout passed via
 * IORING_ENTER_EXT_ARG).  *taken says how many of the `prepared` newest
 * SQEs the kernel consumed; the rest were taken back.  Returns the
 * kernel's answer: a count, or -ETIME/-EINTR from the wait, or an error.
 */
static int uring_enter(struct uring *u, unsigned prepared, unsigned wait_nr,
		       const struct timespec *ts, unsigned *taken)
{
	struct io_uring *ring = &u->ring;
	unsigned queued = io_uring_sq_ready(ring);
	struct __kernel_timespec kts;
	struct io_uring_cqe *cqe;
	int ret;

	if (ts) {
		kts.tv_sec = ts->tv_sec;
		kts.tv_nsec = ts->tv_nsec;
	}
	if (!wait_nr)
		ret = io_uring_submit(ring);
	else if (!ts)
		ret = io_uring_submit_and_wait(ring, wait_nr);
	else if (ring->features & IORING_FEAT_EXT_ARG)
		ret = io_uring_submit_and_wait_timeout(ring, &cqe, wait_nr, &kts, NULL);
	else
		ret = io_uring_submit(ring);
	*taken = uring_consumed(ring, queued, prepared);
	if (wait_nr && ts && !(ring->features & IORING_FEAT_EXT_ARG) && ret >= 0)
		ret = uring_wait_old(ring, wait_nr, &kts);
	return ret;
}

static int uring_submit(caio_ctx *ctx, caio_req **reqs, unsigned nr,
			unsigned wait_nr, const struct timespec *ts)
{
	struct uring *u = uring_of(ctx);
	unsigned prepared, taken;
	int ret;

	if (nr && !(ctx->native_ops & CAIO_OP_BIT(reqs[0]->op))) {
		caio__finish(ctx, reqs[0], -EOPNOTSUPP);
		return 1;
	}
	prepared = prep_batch(ctx, u, reqs, nr);
	ret = uring_enter(u, prepared, wait_nr, ts, &taken);
	for (unsigned i = 0; i < taken; i++)
		reqs[i]->state = REQ_KERNEL;
	ctx->kernel_inflight += taken;
	if (taken) {
		caio__count_submit(ctx, taken);
		return taken;
	}
	/* Nothing went in: -ETIME/-EINTR tell the core how the wait ended,
	 * -EAGAIN/-EBUSY that the kernel is short of memory or CQ space. */
	return ret < 0 ? ret : 0;
}

/* ---- completion ---- */

static int uring_complete(caio_ctx *ctx, struct io_uring *ring,
			  struct io_uring_cqe *cqe)
{
	uint64_t tag = cqe->user_data;
	int res = cqe->res;

	/* Seen before the callback runs: it may submit into this ring. */
	io_uring_cqe_seen(ring, cqe);
	if (tag == URING_CANCEL_TAG || tag == LIBURING_UDATA_TIMEOUT)
		return 0;
	ctx->kernel_inflight--;
	if (((caio_req *)(uintptr_t)tag)->fixed_buf)
		ctx->stats.fixed_requests++;
	caio__complete(ctx, (caio_req *)(uintptr_t)tag, res);
	return 1;
}

static int uring_reap(caio_ctx *ctx, unsigned max)
{
	struct io_uring *ring = &uring_of(ctx)->ring;
	unsigned budget = io_uring_cq_ready(ring);
	struct io_uring_cqe *cqe;
	int done = 0;

	/* Nothing visible: peek once anyway, it makes the kernel post CQEs
	 * it holds back (overflow list, COOP_TASKRUN task_work), never
	 * blocking.  Then only the CQEs present now: callbacks that submit
	 * again cannot keep this loop going. */
	if (!budget) {
		if (io_uring_peek_cqe(ring, &cqe))
			return 0;
		budget = io_uring_cq_ready(ring);
	}
	while (budget-- && done < max && !io_uring_peek_cqe(ring, &cqe))
		done += uring_complete(ctx, ring, cqe);
	/* The core may have drained the eventfd before this reap; CQEs left
	 * behind by max must keep it readable, as poll() users expect. */
	if (done == max && ctx->efd_watched && io_uring_cq_ready(ring))
		caio__signal(ctx);
	return done;
}

/* ---- cancel ---- */

static int uring_cancel(caio_ctx *ctx, caio_req *req)
{
	struct uring *u = uring_of(ctx);
	struct io_uring_sqe *sqe;
	unsigned taken;

	if (req->state != REQ_KERNEL)
		return -ENOENT;
	if (req->cancel_requested)
		return -EINPROGRESS;
	if (!u->can_cancel)
		return -EALREADY;
	sqe = io_uring_get_sqe(&u->ring);
	if (!sqe)
		return -EALREADY;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	io_uring_sqe_set_data64(sqe, URING_CANCEL_TAG);
	/* Not counted in kernel_submits: a cancel is not a request. */
	uring_enter(u, 1, 0, NULL, &taken);
	if (!taken)
		return -EALREADY;
	req->cancel_requested = 1;
	return -EINPROGRESS;
}

/* ---- registered buffers ---- */

static int region_cmp(const void *a, const void *b)
{
	const struct uring_region *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

static int uring_register_buffers(caio_ctx *ctx, const struct iovec *iov, unsigned nr)
{
	struct uring *u = uring_of(ctx);
	struct uring_region *regions;
	unsigned i;
	int res;

	if (!nr) {
		if (!u->nregions)
			return -ENXIO;
		res = io_uring_unregister_buffers(&u->ring);
		if (res < 0)
			return res;
		free(u->regions);
		u->regions = NULL;
		u->nregions = 0;
		return 0;
	}
	if (u->nregions)
		return -EBUSY;
	regions = malloc(nr * sizeof(*regions));
	if (!regions)
		return -ENOMEM;
	for (i = 0; i < nr; i++) {
		regions[i].start = (uintptr_t)iov[i].iov_base;
		regions[i].end = regions[i].start + iov[i].iov_len;
		regions[i].index = i;
	}
	qsort(regions, nr, sizeof(*regions), region_cmp);
	for (i = 1; i < nr; i++) {
		if (regions[i].start < regions[i - 1].end) {
			free(regions);
			return -EINVAL;		/* overlapping: find_region() needs them apart */
		}
	}
	res = io_uring_register_buffers(&u->ring, iov, nr);
	if (res < 0) {
		free(regions);
		return res;
	}
	u->regions = regions;
	u->nregions = nr;
	return 0;
}

/* ---- teardown ---- */

/* The core waits before exit; this only guards against a request left in
 * the ring, whose memory the kernel could otherwise write after free. */
static void uring_drain(caio_ctx *ctx, struct uring *u)
{
	while (ctx->kernel_inflight) {
		int ret = io_uring_submit_and_wait(&u->ring, 1);

		if (ret < 0 && ret != -EINTR)
			break;
		uring_reap(ctx, UINT32_MAX);
	}
}

static void uring_exit(caio_ctx *ctx)
{
	struct uring *u = uring_of(ctx);

	if (!u)
		return;
	/* A forked child must not wait for its parent's requests. */
	if (!caio__forked(ctx))
		uring_drain(ctx, u);
	io_uring_queue_exit(&u->ring);
	free(u->one_iov);
	free(u->regions);
	free(u);
	ctx->backend_data = NULL;
}

const struct caio_backend_ops caio__backend_uring = {
	.name = "uring",
	.init = uring_init,
	.exit = uring_exit,
	.submit = uring_submit,
	.reap = uring_reap,
	.cancel = uring_cancel,
	.register_buffers = uring_register_buffers,
};
