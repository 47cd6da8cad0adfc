/* ring.c - FUSE over io_uring (-o fuse_uring): requests arrive as io_uring completions. */
#include "config.h"
#include "caiofs.h"

#include <errno.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <syslog.h>
#include <unistd.h>

/*
 * Linux 6.14 can hand FUSE requests to the daemon through io_uring instead
 * of read() on /dev/fuse (when /sys/module/fuse/parameters/enable_uring is
 * set).  After FUSE_INIT each loop registers ring entries: a header area
 * and a payload buffer, each for one of the kernel's per-CPU queues.  A
 * request made on CPU n goes into a free entry of queue n and completes
 * that entry's command on the io_uring of the loop that registered it.
 * The reply is written into the same entry and goes back with the command
 * that also waits for the entry's next request (COMMIT_AND_FETCH), so the
 * replies of one loop iteration cost one io_uring_enter, where /dev/fuse
 * takes a read and a writev per request.  FORGET, INTERRUPT and
 * notifications still use /dev/fuse.
 *
 * An entry's memory holds the kernel's header area at its start and the
 * payload at +4096.  libfuse wants a request laid out as /dev/fuse delivers
 * it (in header, operation arguments, payload); copying the two small
 * headers just in front of the payload gives that layout, so a write's
 * data stays page aligned and is never copied, and a read is done straight
 * into the payload (cfs_ring_read_buffer()).
 */

#ifdef HAVE_LIBURING
#include <liburing.h>

/* The kernel's ABI (include/uapi/linux/fuse.h, protocol 7.42); Debian 12's
 * headers predate it. */
#define RING_HDR_SIZE		128
#define RING_OP_IN_SIZE		128
#define RING_CMD_REGISTER	1
#define RING_CMD_COMMIT_AND_FETCH 2

struct ring_ent_in_out {
	uint64_t flags;
	uint64_t commit_id;
	uint32_t payload_sz;
	uint32_t padding;
	uint64_t reserved;
};

struct ring_req_header {
	char in_out[RING_HDR_SIZE];	/* fuse_in_header, then fuse_out_header */
	char op_in[RING_OP_IN_SIZE];	/* the operation's first argument */
	struct ring_ent_in_out ent_in_out;
};

struct ring_cmd_req {
	uint64_t flags;
	uint64_t commit_id;
	uint16_t qid;
	uint8_t padding[6];
};

_Static_assert(sizeof(struct ring_req_header) == 288, "fuse_uring_req_header");
_Static_assert(sizeof(struct ring_cmd_req) == 24, "fuse_uring_cmd_req");

#define ENT_PAYLOAD_OFFSET	4096

struct ring_ent {
	struct ring_req_header *hdr;	/* start of the entry's memory */
	char *payload;			/* hdr + ENT_PAYLOAD_OFFSET */
	struct iovec iov[2];		/* what REGISTER hands the kernel */
	uint64_t unique;		/* request being served; 0 = none */
	uint16_t qid;
	bool dead;
};

struct cfs_ring {
	struct io_uring uring;
	int efd;			/* signalled when the kernel has work for us */
	int devfd;
	unsigned nents;
	struct ring_ent *ents;
	struct ring_ent *current;	/* request being processed now */
	/* A reply the handler of the current request sent before returning:
	 * held here until it has returned, since the handler may still use
	 * the request's payload (a name, xattr value) the reply would overwrite. */
	char *stage;			/* payload_size bytes */
	size_t staged;
	bool stage_pending;
	size_t payload_size;
	size_t map_size;		/* bytes mapped per entry */
	bool registered;
};

/* The kernel keeps one queue per possible CPU, not per online one. */
static unsigned possible_cpus(void)
{
	char buf[256];
	unsigned max = 0;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "re");
	char *p, *end;

	if (!f)
		return (unsigned)get_nprocs_conf();
	if (!fgets(buf, sizeof(buf), f)) {
		fclose(f);
		return (unsigned)get_nprocs_conf();
	}
	fclose(f);
	/* "0-3,8-11": the highest number ends the last range */
	for (p = buf; *p; p = end) {
		unsigned long v;

		if (*p < '0' || *p > '9') {	/* strtoul would take "-1" */
			end = p + 1;
			continue;
		}
		v = strtoul(p, &end, 10);
		if (v + 1 > max)
			max = (unsigned)v + 1;
	}
	return max ? max : 1;
}

/*
 * Which kernel queues a loop serves.  With at least as many loops as
 * queues, loop i serves queue i % nqueues and shares its depth with the
 * other loops of that queue; with fewer, each loop serves every
 * nloops-th queue at full depth.
 */
static unsigned plan_entries(unsigned index, unsigned nloops, unsigned nqueues,
			     unsigned depth, uint16_t *qids, unsigned max)
{
	unsigned n = 0, q, i, share, sharers;

	if (nloops >= nqueues) {
		q = index % nqueues;
		sharers = nloops / nqueues + (q < nloops % nqueues);
		share = (depth + sharers - 1) / sharers;
		for (i = 0; i < share && n < max; i++)
			qids[n++] = (uint16_t)q;
		return n;
	}
	for (q = index; q < nqueues; q += nloops)
		for (i = 0; i < depth && n < max; i++)
			qids[n++] = (uint16_t)q;
	return n;
}

int cfs_ring_new(struct cfs_ring **ringp, int devfd, unsigned index,
		 unsigned nloops, unsigned depth)
{
	unsigned nqueues = possible_cpus(), max, n, i;
	struct io_uring_params p;
	struct cfs_ring *r;
	uint16_t *qids;
	int res;

	/* A loop never serves more than every queue at full depth. */
	max = depth * nqueues;
	qids = calloc(max ? max : 1, sizeof(*qids));
	if (!qids)
		return -ENOMEM;
	n = plan_entries(index, nloops, nqueues, depth, qids, max);
	r = calloc(1, sizeof(*r));
	if (r)
		r->ents = calloc(n ? n : 1, sizeof(*r->ents));
	if (!r || !r->ents) {
		free(qids);
		free(r);
		return -ENOMEM;
	}
	r->nents = n;
	r->devfd = devfd;
	for (i = 0; i < n; i++)
		r->ents[i].qid = qids[i];
	free(qids);
	/*
	 * Every entry has at most one command queued at a time.  The kernel
	 * copies a request into its entry in task work of the ring's thread:
	 * DEFER_TASKRUN runs it only when the loop asks (io_uring_enter), and
	 * signals the eventfd when there is some, instead of interrupting
	 * the loop wherever it is (epoll_wait() would return EINTR).  The
	 * loop thread enables the ring (cfs_ring_enable()) and so becomes
	 * its single issuer.
	 */
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SQE128 | IORING_SETUP_SINGLE_ISSUER |
		  IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_R_DISABLED;
	res = io_uring_queue_init_params(n, &r->uring, &p);
	if (res < 0)
		goto free_ring;
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		res = -errno;
		goto exit_uring;
	}
	res = io_uring_register_eventfd(&r->uring, r->efd);
	if (res < 0)
		goto close_efd;
	*ringp = r;
	return 0;

close_efd:
	close(r->efd);
exit_uring:
	io_uring_queue_exit(&r->uring);
free_ring:
	free(r->ents);
	free(r);
	return res;
}

/* From the loop's own thread, before anything else touches the ring.
 * (liburing 2.3 declares io_uring_enable_rings() but does not export it.) */
int cfs_ring_enable(struct cfs_ring *r)
{
	if (syscall(__NR_io_uring_register, r->uring.ring_fd,
		    IORING_REGISTER_ENABLE_RINGS, NULL, 0) < 0)
		return -errno;
	return 0;
}

/* Readable (edge) when the kernel has requests or completions for us. */
int cfs_ring_fd(struct cfs_ring *r)
{
	return r->efd;
}

static void queue_cmd(struct cfs_ring *r, struct ring_ent *ent, unsigned op)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->uring);
	struct ring_cmd_req *cmd;

	if (!sqe) {
		/* Cannot happen (one command per entry), but never lose one. */
		io_uring_submit(&r->uring);
		sqe = io_uring_get_sqe(&r->uring);
		if (!sqe) {
			ent->dead = true;
			return;
		}
	}
	memset(sqe, 0, 128);
	sqe->opcode = IORING_OP_URING_CMD;
	sqe->fd = r->devfd;
	sqe->cmd_op = op;
	if (op == RING_CMD_REGISTER) {
		sqe->addr = (uintptr_t)ent->iov;
		sqe->len = 2;
	}
	cmd = (struct ring_cmd_req *)sqe->cmd;
	cmd->qid = ent->qid;
	cmd->commit_id = ent->unique;
	io_uring_sqe_set_data(sqe, ent);
	ent->unique = 0;
}

/* After FUSE_INIT: give the kernel every entry.  payload_size is the
 * largest request or reply payload the connection allows. */
int cfs_ring_start(struct cfs_ring *r, size_t payload_size)
{
	unsigned i;
	int res;

	if (r->registered)
		return 0;
	r->registered = true;
	r->payload_size = payload_size;
	r->map_size = ENT_PAYLOAD_OFFSET + payload_size;
	/* Anonymous memory costs nothing until a request touches it. */
	r->stage = mmap(NULL, payload_size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->stage == MAP_FAILED)
		r->stage = NULL;
	for (i = 0; i < r->nents; i++) {
		struct ring_ent *ent = &r->ents[i];
		void *mem = !r->stage ? MAP_FAILED :
			mmap(NULL, r->map_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (mem == MAP_FAILED) {
			/* Register it anyway, with no payload: the kernel refuses
			 * that and turns the ring off for the whole connection,
			 * where a queue left without entries would block every
			 * request. */
			static char none;

			ent->iov[0].iov_base = ent->iov[1].iov_base = &none;
			ent->iov[0].iov_len = ent->iov[1].iov_len = 0;
			queue_cmd(r, ent, RING_CMD_REGISTER);
			continue;
		}
		ent->hdr = mem;
		ent->payload = (char *)mem + ENT_PAYLOAD_OFFSET;
		ent->iov[0].iov_base = ent->hdr;
		ent->iov[0].iov_len = sizeof(*ent->hdr);
		ent->iov[1].iov_base = ent->payload;
		ent->iov[1].iov_len = payload_size;
		queue_cmd(r, ent, RING_CMD_REGISTER);
	}
	res = io_uring_submit(&r->uring);
	if (cfs.opt.debug)
		cfs_log(LOG_DEBUG, "ring: %u entries registered, %zu byte payloads: %d",
			r->nents, payload_size, res);
	return res < 0 ? res : 0;
}

/* A command ended without a request: the connection is going away, or
 * the kernel refused the command. */
static void ent_failed(struct cfs_ring *r, struct ring_ent *ent, int res)
{
	static bool warned;

	if (ent->dead)
		return;
	ent->unique = 0;
	if (res == -ENOTCONN || res == -ECONNABORTED || res == -ECANCELED ||
	    res == -EOPNOTSUPP || res == -EINVAL || !ent->hdr) {
		if (res == -EOPNOTSUPP || res == -EINVAL) {
			if (!__atomic_exchange_n(&warned, true, __ATOMIC_RELAXED))
				cfs_log(LOG_WARNING, "FUSE over io_uring refused (%s): "
					"requests keep coming through /dev/fuse",
					strerror(-res));
		}
		ent->dead = true;
		return;
	}
	/* Say -ENOENT, a commit for a request the kernel no longer knows:
	 * the kernel forgot this entry, register it again. */
	queue_cmd(r, ent, RING_CMD_REGISTER);
}

/* Lay the entry's request out as /dev/fuse would deliver it. */
static bool request_to_buf(struct cfs_ring *r, struct ring_ent *ent,
			   struct fuse_buf *fbuf)
{
	const struct fuse_in_header *in = (const void *)ent->hdr->in_out;
	size_t payload = ent->hdr->ent_in_out.payload_sz, oplen;
	char *start;

	ent->unique = in->unique;
	if (in->len < sizeof(*in) + payload || payload > r->payload_size ||
	    in->len - sizeof(*in) - payload > RING_OP_IN_SIZE) {
		struct fuse_out_header *out = (void *)ent->hdr->in_out;
		uint64_t unique = in->unique;

		cfs_log(LOG_ERR, "FUSE over io_uring: malformed request (opcode %u, len %u, payload %zu)",
			in->opcode, in->len, payload);
		out->unique = unique;
		out->error = -EIO;
		out->len = sizeof(*out);
		ent->hdr->ent_in_out.payload_sz = 0;
		queue_cmd(r, ent, RING_CMD_COMMIT_AND_FETCH);
		return false;
	}
	oplen = in->len - sizeof(*in) - payload;
	start = ent->payload - oplen - sizeof(*in);
	memcpy(start + sizeof(*in), ent->hdr->op_in, oplen);
	memcpy(start, in, sizeof(*in));
	memset(fbuf, 0, sizeof(*fbuf));
	fbuf->mem = start;
	fbuf->size = in->len;
	return true;
}

bool cfs_ring_next(struct cfs_ring *r, struct fuse_buf *fbuf)
{
	struct io_uring_cqe *cqe;

	cfs_ring_done_current(r);
	while (io_uring_peek_cqe(&r->uring, &cqe) == 0) {
		struct ring_ent *ent = io_uring_cqe_get_data(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->uring, cqe);
		if (res < 0) {
			ent_failed(r, ent, res);
			continue;
		}
		if (request_to_buf(r, ent, fbuf)) {
			r->current = ent;
			return true;
		}
	}
	return false;
}

bool cfs_ring_ready(struct cfs_ring *r)
{
	return io_uring_cq_ready(&r->uring) > 0;
}

/* The current request's handler has returned: send its reply, if any. */
void cfs_ring_done_current(struct cfs_ring *r)
{
	struct ring_ent *ent = r->current;

	r->current = NULL;
	if (!r->stage_pending)
		return;
	r->stage_pending = false;
	memcpy(ent->payload, r->stage, r->staged);
	queue_cmd(r, ent, RING_CMD_COMMIT_AND_FETCH);
}

unsigned cfs_ring_entries(struct cfs_ring *r)
{
	return r->nents;
}

/* The first len bytes of every entry's payload (all of it if smaller),
 * for libcaio to register: up to max, and none before cfs_ring_start(). */
unsigned cfs_ring_payloads(struct cfs_ring *r, struct iovec *iov, unsigned max, size_t len)
{
	unsigned i, n = 0;

	for (i = 0; i < r->nents && n < max; i++) {
		if (!r->ents[i].payload)
			continue;	/* its mapping failed */
		iov[n].iov_base = r->ents[i].payload;
		iov[n].iov_len = len < r->payload_size ? len : r->payload_size;
		n++;
	}
	return n;
}

/* The payload of the request being processed, to read its data into. */
void *cfs_ring_read_buffer(struct cfs_ring *r, size_t size)
{
	if (!r->current || size > r->payload_size)
		return NULL;
	return r->current->payload;
}

/* Whether p lies in an entry's payload, which stays put until the reply. */
bool cfs_ring_owns(struct cfs_ring *r, const void *p)
{
	const char *c = p;
	unsigned i;

	if (!r->registered)
		return false;
	for (i = 0; i < r->nents; i++) {
		const struct ring_ent *ent = &r->ents[i];

		if (ent->unique && c >= ent->payload && c < ent->payload + r->payload_size)
			return true;
	}
	return false;
}

/*
 * Send a reply if it answers a request of this ring: true, and *sent is
 * the reply's length.  The commit goes to the kernel at the next
 * cfs_ring_submit() with the other replies of the iteration.
 */
bool cfs_ring_reply(struct cfs_ring *r, const struct iovec *iov, int count,
		    ssize_t *sent)
{
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_out_header *h;
	struct ring_ent *ent = NULL;
	size_t total = 0;
	unsigned i;
	int k;

	if (!out->unique || !r->registered)
		return false;
	for (i = 0; i < r->nents; i++) {
		if (r->ents[i].unique == out->unique) {
			ent = &r->ents[i];
			break;
		}
	}
	if (!ent)
		return false;
	h = (struct fuse_out_header *)ent->hdr->in_out;
	*h = *out;
	for (k = 1; k < count; k++)
		total += iov[k].iov_len;
	if (total > r->payload_size) {
		/* Larger than the connection allows: /dev/fuse would refuse
		 * it too. */
		h->error = -EIO;
		total = 0;
	}
	if (total) {
		/* The handler of the current request may still read its
		 * payload: its reply waits in stage until the handler returns. */
		char *dst = ent == r->current ? r->stage : ent->payload;
		size_t at = 0;

		for (k = 1; k < count; k++) {
			/* A read's data already sits in the payload. */
			if (iov[k].iov_base != dst + at)
				memmove(dst + at, iov[k].iov_base, iov[k].iov_len);
			at += iov[k].iov_len;
		}
		if (dst == r->stage) {
			r->stage_pending = true;
			r->staged = total;
		}
	}
	h->len = (uint32_t)(sizeof(*h) + total);
	ent->hdr->ent_in_out.payload_sz = (uint32_t)total;
	if (!(total && ent == r->current))
		queue_cmd(r, ent, RING_CMD_COMMIT_AND_FETCH);
	*sent = (ssize_t)(sizeof(*out) + total);
	return true;
}

/* Sends the queued commands; with get_events also lets the kernel hand
 * over what it has for us (the deferred task work).  Returns the number
 * of commands sent, or a negative errno. */
int cfs_ring_submit(struct cfs_ring *r, bool get_events)
{
	if (get_events)
		return io_uring_submit_and_get_events(&r->uring);
	if (!io_uring_sq_ready(&r->uring))
		return 0;
	return io_uring_submit(&r->uring);
}

void cfs_ring_free(struct cfs_ring *r)
{
	unsigned i;

	if (!r)
		return;
	/* Closing the ring cancels the commands still waiting in the kernel;
	 * only then may their memory go. */
	io_uring_queue_exit(&r->uring);
	close(r->efd);
	for (i = 0; i < r->nents; i++)
		if (r->ents[i].hdr)
			munmap(r->ents[i].hdr, r->map_size);
	if (r->stage)
		munmap(r->stage, r->payload_size);
	free(r->ents);
	free(r);
}

#else /* !HAVE_LIBURING */

int cfs_ring_new(struct cfs_ring **ringp, int devfd, unsigned index,
		 unsigned nloops, unsigned depth)
{
	*ringp = NULL;
	return -ENOSYS;
}

int cfs_ring_fd(struct cfs_ring *r) { return -1; }
int cfs_ring_start(struct cfs_ring *r, size_t payload_size) { return -ENOSYS; }
bool cfs_ring_next(struct cfs_ring *r, struct fuse_buf *fbuf) { return false; }
bool cfs_ring_ready(struct cfs_ring *r) { return false; }
void cfs_ring_done_current(struct cfs_ring *r) { }
void *cfs_ring_read_buffer(struct cfs_ring *r, size_t size) { return NULL; }
bool cfs_ring_owns(struct cfs_ring *r, const void *p) { return false; }
unsigned cfs_ring_entries(struct cfs_ring *r) { return 0; }
unsigned cfs_ring_payloads(struct cfs_ring *r, struct iovec *iov, unsigned max,
			   size_t len) { return 0; }
bool cfs_ring_reply(struct cfs_ring *r, const struct iovec *iov, int count,
		    ssize_t *sent) { return false; }
int cfs_ring_submit(struct cfs_ring *r, bool get_events) { return 0; }
int cfs_ring_enable(struct cfs_ring *r) { return -ENOSYS; }
void cfs_ring_free(struct cfs_ring *r) { }

#endif
