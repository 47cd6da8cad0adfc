/* caiofs.h - caiofs internals shared by the daemon's files: options, inodes, loops, stats. */
#ifndef CAIOFS_H
#define CAIOFS_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include "caio.h"

#define CFS_NAME "caiofs"

/* -o cache= presets */
enum cfs_cache {
	CFS_CACHE_AUTO = 0,
	CFS_CACHE_NEVER,
	CFS_CACHE_ALWAYS,
};

struct cfs_options {
	char *source;			/* as given */
	char *source_real;		/* realpath() */
	char *mountpoint;		/* realpath() of the mount point */
	char *backend;			/* NULL = auto */
	char *cache;			/* never|auto|always */
	unsigned threads;		/* event loops; 0 = two per CPU (at most 64) */
	unsigned queue_depth;		/* caio slots per loop */
	unsigned batch;			/* most requests per kernel submission; 0 = all ready */
	double attr_timeout;
	double entry_timeout;
	double negative_timeout;
	int attr_timeout_set, entry_timeout_set, negative_timeout_set;
	int keep_cache;
	int writeback_cache;
	int no_writeback_cache;
	int direct_io;
	int no_splice;			/* read write data from /dev/fuse, never splice it */
	unsigned max_read;		/* also given to fuse_session_new */
	unsigned spin_us;		/* loops poll this long after work before sleeping */
	unsigned read_ahead_kb;		/* the mount's bdi readahead; 0 = kernel's */
	int read_ahead_kb_set;
	int spin_us_set;
	int default_permissions;
	int allow_other;
	int read_only;
	int foreground;
	int debug;
	int clone_fd;
	int fuse_uring;			/* take requests through io_uring (ring.c) */
	unsigned fuse_uring_depth;	/* ring entries per kernel queue (per CPU) */
	enum cfs_cache cache_mode;
};

/*
 * One remembered inode.  The kernel refers to it by its address (the
 * fuse_ino_t), except the root.  It keeps no descriptor of its own: the
 * descriptor cache (inode.c) opens one from the file handle when needed,
 * so a million remembered inodes cost memory, not descriptors.
 */
struct cfs_inode {
	struct cfs_inode *hash_next;
	struct cfs_inode *lru_prev, *lru_next;	/* in the cache while fd >= 0 */
	uint64_t ino;
	uint32_t dev;				/* index into the device table */
	uint32_t users;				/* threads using fd right now */
	uint64_t nlookup;			/* kernel references */
	int fd;					/* cached O_PATH descriptor or -1 */
	uint32_t mode;				/* S_IFMT bits */
	uint16_t opened;			/* open files (the list below) */
	uint8_t pinned;				/* never close fd (root, no handle) */
	uint8_t forgotten;			/* out of the table, free when unused */
	uint8_t victim;				/* pinned because its last name went */
	int32_t handle_type;
	uint8_t handle_bytes;			/* 0: no handle (pinned) */
	struct cfs_file *files;			/* open files, for when the handle is stale */
	int64_t cache_ctime_ns, cache_size;	/* backing file at the last open (cache=auto) */
	unsigned char handle[];
};

/* An open file (fi->fh). */
struct cfs_file {
	int fd;					/* first, like struct cfs_dir's */
	int buffered_fd;			/* O_DIRECT files: the same without O_DIRECT, or -1 */
	int flags;				/* open flags given to the backing open */
	struct cfs_inode *inode;
	struct cfs_file *next_open;		/* the inode's list */
	struct cfs_file *all_prev, *all_next;	/* every open file */
};

struct cfs_loop;

/* One asynchronous data request: what it needs to be (re)submitted and replied. */
/* A pipe /dev/fuse was spliced into (loop.c). */
struct cfs_pipe {
	int rd, wr;
};

struct cfs_io {
	struct cfs_io *next;		/* the loop's queue of requests waiting for a slot */
	struct cfs_loop *loop;
	fuse_req_t req;
	int fd;
	uint8_t op;			/* enum caio_op */
	int mode;			/* fallocate mode */
	void *buf;			/* data */
	size_t size;			/* bytes to read or write */
	size_t bufsize;			/* size class of buf when it is a pool buffer */
	int64_t off;
	int64_t len;			/* fallocate length */
	void *request_buffer;		/* a FUSE request buffer held until completion */
	struct cfs_pipe pipe;		/* CAIO_OP_SPLICE: the pipe holding the data */
	bool bulk;			/* a large buffered write: cfs_loop_stay_on_cpu() */
};

/* The daemon. */
struct cfs_fs {
	struct cfs_options opt;
	struct fuse_session *se;
	int source_fd;
	struct cfs_inode *root;
	unsigned nloops;
	struct cfs_loop **loops;
	int control_fd;			/* caiofs-stat's socket, or -1 */
	int stop_fd;			/* eventfd: loops stop reading the device */
	int loops_done_fd;		/* eventfd: a loop exited */
	char selection[512];		/* caio_ctx_selection() of the first loop */
	const char *backend_name;
	int handles;			/* source supports file handles */
	char handles_reason[128];
	int dont_mask;			/* threads apply the caller's umask */
	gid_t *daemon_groups;
	int daemon_ngroups;
	unsigned max_write;		/* negotiated */
	unsigned conn_want;		/* negotiated FUSE_CAP_* */
	int parallel_direct_writes;	/* the kernel knows FOPEN_PARALLEL_DIRECT_WRITES */
	int kernel_killpriv_v2;		/* the kernel offered FUSE_HANDLE_KILLPRIV_V2 */
	int kernel_allow_mmap;		/* ... and FUSE_DIRECT_IO_ALLOW_MMAP */
	int kernel_fuse_uring;		/* ... and FUSE_OVER_IO_URING */
	int ring_enabled;		/* -o fuse_uring and every loop has a ring */
	int ring_negotiated;		/* FUSE_INIT's reply asks for the ring */
	int ring_started;		/* ... and the loops were told to register */
	size_t ring_payload;		/* bytes per ring entry payload */
	int ring_start_fd;		/* eventfd: register ring entries now */
	struct fuse_conn_info_opts *conn_opts;	/* -o max_write=, max_background=... */
	uint64_t start_ns;
};

extern struct cfs_fs cfs;

/* main.c */
void cfs_apply_conn_opts(struct fuse_conn_info *conn);
void cfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t cfs_now_ns(void);

/* inode.c */
int cfs_inode_init(int source_fd, unsigned fd_cache_size);
void cfs_inode_exit(void);
struct cfs_inode *cfs_inode(fuse_ino_t ino);
int cfs_inode_fd(struct cfs_inode *in);
void cfs_inode_put_fd(struct cfs_inode *in);
int cfs_inode_lookup(struct cfs_inode *parent, const char *name,
		     struct fuse_entry_param *e);
int cfs_inode_from_fd(int fd, struct fuse_entry_param *e);
void cfs_inode_forget(struct cfs_inode *in, uint64_t nlookup);
int cfs_inode_open(struct cfs_inode *in, int flags);
void cfs_inode_file_add(struct cfs_inode *in, struct cfs_file *f);
void cfs_inode_file_remove(struct cfs_inode *in, struct cfs_file *f);
bool cfs_inode_cache_unchanged(struct cfs_inode *in, const struct stat *st);
void cfs_inode_shrink(void);
struct cfs_inode *cfs_inode_pin_victim(int pfd, const char *name);
void cfs_inode_unpin_victim(struct cfs_inode *in);
bool cfs_retry_emfile(int err, int *tries);
/* record_bytes: the inodes' own records; table_bytes: the hash table's. */
void cfs_inode_counts(uint64_t *inodes, uint64_t *record_bytes, uint64_t *table_bytes,
		      uint64_t *cached_fds, uint64_t *fd_cache_size);
int cfs_proc_path(int fd, char *buf, size_t len);

/* ops.c */
extern const struct fuse_lowlevel_ops cfs_ops;
int cfs_creds_thread_init(void);
int cfs_kill_priv(fuse_req_t req, int fd);
void cfs_ops_exit(void);

/* data.c: the asynchronous data path */
void cfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
	      struct fuse_file_info *fi);
void cfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size,
	       off_t off, struct fuse_file_info *fi);
void cfs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
	       struct fuse_file_info *fi);
void cfs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
		  struct fuse_file_info *fi);
void cfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
		   off_t length, struct fuse_file_info *fi);
int cfs_dir_fd(struct fuse_file_info *fi);
int cfs_io_submit(struct cfs_io *io);
void cfs_io_start(struct cfs_io *io);
void cfs_io_fail(struct cfs_io *io, int res);

/* loop.c */
#define CFS_WRITE_DATA_OFFSET 80	/* fuse_in_header + fuse_write_in */
struct cfs_loop *cfs_current_loop(void);
int cfs_loops_start(void);
void cfs_loops_join(void);
void cfs_loops_free(void);
extern const struct fuse_custom_io cfs_custom_io;
caio_ctx *cfs_loop_ctx(struct cfs_loop *loop);
void *cfs_loop_take_request_buffer(struct cfs_loop *loop, const void *data);
void cfs_loop_return_request_buffer(struct cfs_loop *loop, void *buf);
void *cfs_loop_buf_get(struct cfs_loop *loop, size_t size);
void cfs_loop_buf_put(struct cfs_loop *loop, void *buf, size_t size);
void cfs_loop_defer(struct cfs_loop *loop, struct cfs_io *io);
int cfs_loop_new_ctx(caio_ctx **ctxp, char *err, size_t errlen);
void *cfs_loop_read_buffer(struct cfs_loop *loop, size_t size);
bool cfs_loop_data_is_stable(struct cfs_loop *loop, const void *p);
bool cfs_loop_take_spliced(struct cfs_loop *loop, const void *data, struct cfs_pipe *pipe);
int cfs_loop_fetch_spliced(struct cfs_loop *loop, const void *data, size_t size);
void cfs_loop_pipe_done(struct cfs_loop *loop, struct cfs_pipe pipe, bool empty);
void cfs_loop_stay_on_cpu(struct cfs_loop *loop);

/* ring.c */
struct cfs_ring;
int cfs_ring_new(struct cfs_ring **ringp, int devfd, unsigned index,
		 unsigned nloops, unsigned depth);
int cfs_ring_fd(struct cfs_ring *r);
int cfs_ring_start(struct cfs_ring *r, size_t payload_size);
bool cfs_ring_next(struct cfs_ring *r, struct fuse_buf *fbuf);
bool cfs_ring_ready(struct cfs_ring *r);
void cfs_ring_done_current(struct cfs_ring *r);
void *cfs_ring_read_buffer(struct cfs_ring *r, size_t size);
bool cfs_ring_owns(struct cfs_ring *r, const void *p);
unsigned cfs_ring_entries(struct cfs_ring *r);
unsigned cfs_ring_payloads(struct cfs_ring *r, struct iovec *iov, unsigned max, size_t len);
bool cfs_ring_reply(struct cfs_ring *r, const struct iovec *iov, int count,
		    ssize_t *sent);
int cfs_ring_submit(struct cfs_ring *r, bool get_events);
int cfs_ring_enable(struct cfs_ring *r);
void cfs_ring_free(struct cfs_ring *r);

/* stats.c */
#define CFS_NOPS 64			/* FUSE opcodes we count */
#define CFS_HIST 48			/* log2 latency buckets (ns) */
struct cfs_op_stats {
	uint64_t started;
	uint64_t done;
	uint64_t errors;
	uint64_t bytes;
	uint64_t max_ns;
	uint64_t hist[CFS_HIST];
};
struct cfs_loop_stats {
	struct cfs_op_stats op[CFS_NOPS];
	struct caio_stats caio;		/* published copy of the loop's context */
	uint64_t flush_hist[16];	/* requests per caio_flush(), log2 */
	uint64_t deferred;		/* waited for a free caio slot */
	uint64_t dev_requests;		/* FUSE requests read from /dev/fuse */
	uint64_t spliced_writes;	/* ... of them writes whose data was spliced */
	uint64_t ring_requests;		/* ... taken from ring entries (fuse_uring) */
	uint64_t ring_commands;		/* replies sent on the ring */
	uint64_t ring_submits;		/* ... in this many io_uring_enter calls */
};
const char *cfs_op_name(unsigned opcode);
void cfs_stats_start(struct cfs_loop_stats *st, unsigned opcode);
void cfs_stats_done(struct cfs_loop_stats *st, unsigned opcode,
		    uint64_t ns, int error, uint64_t bytes);
void cfs_stats_publish_caio(struct cfs_loop_stats *st, caio_ctx *ctx);
void cfs_stats_flush(struct cfs_loop_stats *st, int nr);
void cfs_stats_count(uint64_t *counter, unsigned n);
struct cfs_loop_stats *cfs_loop_stats(struct cfs_loop *loop);
int cfs_control_open(void);
bool cfs_control_waiting(void);	/* its address was taken: bound later */
int cfs_control_start(void);
void cfs_control_stop(void);
void cfs_stats_log_summary(const char *why);

#endif
