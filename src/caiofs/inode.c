/* inode.c - the inode table keyed by backing (st_dev, st_ino), file handles and a bounded descriptor cache. */
#include "config.h"
#include "caiofs.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <sys/vfs.h>
#include <unistd.h>

/*
 * Why handles: a passthrough that keeps one O_PATH descriptor per inode the
 * kernel remembers runs out of descriptors (EMFILE) long before the kernel
 * forgets anything.  We keep the inode's file handle instead (a few bytes)
 * and open a descriptor from it when an operation needs one; the last
 * fd_cache_size descriptors stay open in LRU order so hot inodes cost no
 * open_by_handle_at().  An inode the filesystem cannot give a handle for
 * is pinned: it keeps its descriptor (and is reported at mount).
 */

#define CFS_MAX_DEVS	256
#define CFS_HANDLE_MAX	128	/* MAX_HANDLE_SZ */

struct cfs_dev {
	dev_t dev;
	int mount_fd;		/* any descriptor on that filesystem */
};

struct handle_buf {
	struct file_handle fh;
	unsigned char bytes[CFS_HANDLE_MAX];
};

static struct {
	pthread_mutex_t lock;
	struct cfs_inode **buckets;
	size_t nbuckets;
	size_t count;
	uint64_t bytes;			/* memory of the inodes themselves */
	struct cfs_inode lru;		/* list head: lru_next is the most recent */
	size_t lru_count;
	size_t lru_max;
	size_t victims;			/* removed inodes whose descriptor is pinned */
	struct cfs_dev devs[CFS_MAX_DEVS];
	unsigned ndevs;
} tab = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t hash_slot(uint32_t dev, uint64_t ino)
{
	uint64_t h = (ino ^ ((uint64_t)dev << 56)) * 0x9e3779b97f4a7c15ull;

	return (size_t)(h >> 20) & (tab.nbuckets - 1);
}

static struct cfs_inode *hash_find(uint32_t dev, uint64_t ino)
{
	struct cfs_inode *in = tab.buckets[hash_slot(dev, ino)];

	while (in && (in->ino != ino || in->dev != dev))
		in = in->hash_next;
	return in;
}

static void hash_grow(void)
{
	size_t old_n = tab.nbuckets, i;
	struct cfs_inode **old = tab.buckets, **nb;

	nb = calloc(old_n * 2, sizeof(*nb));
	if (!nb)
		return;		/* longer chains, still correct */
	tab.buckets = nb;
	tab.nbuckets = old_n * 2;
	for (i = 0; i < old_n; i++) {
		struct cfs_inode *in = old[i], *next;

		for (; in; in = next) {
			size_t s = hash_slot(in->dev, in->ino);

			next = in->hash_next;
			in->hash_next = nb[s];
			nb[s] = in;
		}
	}
	free(old);
}

static void hash_insert(struct cfs_inode *in)
{
	size_t s;

	if (tab.count >= tab.nbuckets)
		hash_grow();
	s = hash_slot(in->dev, in->ino);
	in->hash_next = tab.buckets[s];
	tab.buckets[s] = in;
	tab.count++;
	tab.bytes += sizeof(*in) + in->handle_bytes;
}

static void hash_remove(struct cfs_inode *in)
{
	struct cfs_inode **pp = &tab.buckets[hash_slot(in->dev, in->ino)];

	while (*pp && *pp != in)
		pp = &(*pp)->hash_next;
	if (*pp) {
		*pp = in->hash_next;
		tab.count--;
		tab.bytes -= sizeof(*in) + in->handle_bytes;
	}
}

static void lru_unlink(struct cfs_inode *in)
{
	if (!in->lru_next)
		return;
	in->lru_prev->lru_next = in->lru_next;
	in->lru_next->lru_prev = in->lru_prev;
	in->lru_prev = in->lru_next = NULL;
	tab.lru_count--;
}

static void lru_push(struct cfs_inode *in)
{
	in->lru_next = tab.lru.lru_next;
	in->lru_prev = &tab.lru;
	tab.lru.lru_next->lru_prev = in;
	tab.lru.lru_next = in;
	tab.lru_count++;
}

/* Only unpinned inodes with a descriptor live on the LRU list. */
static bool lru_eligible(const struct cfs_inode *in)
{
	return in->fd >= 0 && !in->pinned && !in->forgotten;
}

static void lru_touch(struct cfs_inode *in)
{
	lru_unlink(in);
	if (lru_eligible(in))
		lru_push(in);
}

/* Collect descriptors to close (outside the lock) until the cache has at
 * most keep entries.  Entries in use by a thread are skipped. */
static unsigned lru_evict(size_t keep, int *fds, unsigned max)
{
	struct cfs_inode *in = tab.lru.lru_prev, *prev;
	unsigned n = 0;

	while (in != &tab.lru && tab.lru_count > keep && n < max) {
		prev = in->lru_prev;
		if (!in->users) {
			lru_unlink(in);
			fds[n++] = in->fd;
			in->fd = -1;
		}
		in = prev;
	}
	return n;
}

static void close_all(const int *fds, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

static void inode_free_locked(struct cfs_inode *in, int *fdp)
{
	if (in->victim)
		tab.victims--;
	lru_unlink(in);
	*fdp = in->fd;
	free(in);
}

/* Free a forgotten inode once no thread and no open file uses it. */
static void maybe_free_locked(struct cfs_inode *in, int *fdp)
{
	*fdp = -1;
	if (in->forgotten && !in->users && !in->opened)
		inode_free_locked(in, fdp);
}

#define CFS_FUSE_SUPER_MAGIC	0x65735546

/* A FUSE filesystem without export support gives handles that stop
 * working once its kernel inode is evicted: pin its inodes instead. */
static bool handles_go_stale(int fd)
{
	struct statfs sfs;

	return fstatfs(fd, &sfs) == 0 && sfs.f_type == CFS_FUSE_SUPER_MAGIC;
}

/*
 * The index of st_dev in the device table.  open_by_handle_at() wants a
 * real (not O_PATH) descriptor on the filesystem: the first inode met on a
 * new device is normally its mount root, a directory we can open.  If not,
 * the device gets no mount descriptor and its inodes are pinned.
 */
static int dev_index_locked(dev_t dev, int fd, mode_t mode)
{
	unsigned i;
	int mfd = -1;

	for (i = 0; i < tab.ndevs; i++)
		if (tab.devs[i].dev == dev)
			return i;
	if (tab.ndevs == CFS_MAX_DEVS)
		return -EMFILE;
	if (S_ISDIR(mode) && !handles_go_stale(fd))
		mfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	tab.devs[tab.ndevs].dev = dev;
	tab.devs[tab.ndevs].mount_fd = mfd;
	return tab.ndevs++;
}

int cfs_proc_path(int fd, char *buf, size_t len)
{
	int n = snprintf(buf, len, "/proc/self/fd/%d", fd);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* Retry an open that failed with EMFILE/ENFILE after shrinking the cache:
 * our own descriptors must never be the reason a user sees EMFILE. */
bool cfs_retry_emfile(int err, int *tries)
{
	if ((err != EMFILE && err != ENFILE) || (*tries)++ >= 2)
		return false;
	cfs_inode_shrink();
	return true;
}

static int open_by_handle(const struct cfs_inode *in, int flags)
{
	struct handle_buf hb;
	int mfd, fd, tries = 0;

	hb.fh.handle_bytes = in->handle_bytes;
	hb.fh.handle_type = in->handle_type;
	memcpy(hb.fh.f_handle, in->handle, in->handle_bytes);
	pthread_mutex_lock(&tab.lock);
	mfd = tab.devs[in->dev].mount_fd;
	pthread_mutex_unlock(&tab.lock);
	do
		fd = open_by_handle_at(mfd, &hb.fh, flags | O_CLOEXEC);
	while (fd < 0 && cfs_retry_emfile(errno, &tries));
	if (fd < 0)
		return errno == ESTALE ? -ENOENT : -errno;
	return fd;
}

struct cfs_inode *cfs_inode(fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return cfs.root;
	return (struct cfs_inode *)(uintptr_t)ino;
}

/* An O_PATH descriptor through an open file of the inode (under the lock,
 * so the file cannot be closed and its number reused meanwhile). */
static int reopen_through_file(struct cfs_inode *in)
{
	char proc[64];
	int fd = -ENOENT;

	pthread_mutex_lock(&tab.lock);
	if (in->files) {
		cfs_proc_path(in->files->fd, proc, sizeof(proc));
		fd = open(proc, O_PATH | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&tab.lock);
	return fd;
}

/* A descriptor for *at() calls on the inode (O_PATH, or the pinned one);
 * the caller gives it back with cfs_inode_put_fd(). */
int cfs_inode_fd(struct cfs_inode *in)
{
	int fd, spare = -1, fds[8];
	unsigned n;

	pthread_mutex_lock(&tab.lock);
	if (in->fd >= 0) {
		in->users++;
		if (in->lru_next)
			lru_touch(in);
		fd = in->fd;
		pthread_mutex_unlock(&tab.lock);
		return fd;
	}
	pthread_mutex_unlock(&tab.lock);
	if (!in->handle_bytes)
		return -ESTALE;		/* pinned inodes always have fd */
	fd = open_by_handle(in, O_PATH | O_NOFOLLOW);
	if (fd == -ENOENT)
		fd = reopen_through_file(in);
	if (fd < 0)
		return fd;
	pthread_mutex_lock(&tab.lock);
	if (in->fd >= 0)
		spare = fd;		/* another thread won the race */
	else
		in->fd = fd;
	in->users++;
	lru_touch(in);
	n = lru_evict(tab.lru_max, fds, 8);
	fd = in->fd;
	pthread_mutex_unlock(&tab.lock);
	close_all(fds, n);
	if (spare >= 0)
		close(spare);
	return fd;
}

void cfs_inode_put_fd(struct cfs_inode *in)
{
	int fd;

	pthread_mutex_lock(&tab.lock);
	in->users--;
	maybe_free_locked(in, &fd);
	pthread_mutex_unlock(&tab.lock);
	if (fd >= 0)
		close(fd);
}

static int handle_of(int fd, struct handle_buf *hb)
{
	int mount_id;

	hb->fh.handle_bytes = CFS_HANDLE_MAX;
	if (name_to_handle_at(fd, "", &hb->fh, &mount_id, AT_EMPTY_PATH) < 0)
		return -errno;
	return 0;
}

static void fill_entry(struct fuse_entry_param *e, struct cfs_inode *in,
		       const struct stat *st)
{
	memset(e, 0, sizeof(*e));
	e->ino = (fuse_ino_t)(uintptr_t)in;
	e->attr = *st;
	e->attr_timeout = cfs.opt.attr_timeout;
	e->entry_timeout = cfs.opt.entry_timeout;
}

/* An inode the kernel met again: count the lookup and, when it has no
 * cached descriptor, adopt ours. */
static bool inode_again_locked(struct cfs_inode *in, int fd, bool is_path)
{
	in->nlookup++;
	if (!is_path || in->fd >= 0)
		return false;
	in->fd = fd;
	lru_touch(in);
	return true;
}

/*
 * The inode number of a file that was deleted while the kernel still
 * remembers it can be reused by a new file (no descriptor of ours kept the
 * old one alive).  Different handles tell them apart: the new file gets a
 * new record, hence a new node ID, instead of the old, dead kernel inode.
 */
static bool inode_number_reused(const struct cfs_inode *in,
				const struct handle_buf *hb)
{
	return hb && in->fd < 0 && in->handle_bytes &&
	       (hb->fh.handle_bytes != in->handle_bytes ||
		hb->fh.handle_type != in->handle_type ||
		memcmp(hb->fh.f_handle, in->handle, in->handle_bytes));
}

static struct cfs_inode *inode_new(const struct stat *st, const struct handle_buf *hb)
{
	size_t hlen = hb ? hb->fh.handle_bytes : 0;
	struct cfs_inode *in = calloc(1, sizeof(*in) + hlen);

	if (!in)
		return NULL;
	in->ino = st->st_ino;
	in->mode = st->st_mode & S_IFMT;
	in->nlookup = 1;
	in->fd = -1;
	if (hb) {
		in->handle_type = hb->fh.handle_type;
		in->handle_bytes = hlen;
		memcpy(in->handle, hb->fh.f_handle, hlen);
	}
	return in;
}

/* A descriptor a pinned inode can keep: O_PATH, never an open file. */
static int path_fd_of(int fd, bool is_path)
{
	char proc[64];

	if (is_path)
		return fd;
	/* No O_NOFOLLOW: that would open the /proc link, not the file. */
	cfs_proc_path(fd, proc, sizeof(proc));
	fd = open(proc, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * Find or create the inode of fd (whose stat is st), count one lookup and
 * fill e.  is_path: fd is an O_PATH descriptor the cache may keep;
 * otherwise it is the caller's (an open file).  Consumes nothing: the caller
 * closes fd unless *kept says the cache took it.
 */
static int inode_install(int fd, bool is_path, const struct stat *st,
			 struct fuse_entry_param *e, bool *kept)
{
	struct handle_buf hb, *hbp = NULL;
	struct cfs_inode *in, *fresh;
	int dev, pfd, fds[8];
	unsigned n;

	*kept = false;
	if (cfs.handles && handle_of(fd, &hb) == 0)
		hbp = &hb;
	fresh = inode_new(st, hbp);
	if (!fresh)
		return -ENOMEM;
	pthread_mutex_lock(&tab.lock);
	dev = dev_index_locked(st->st_dev, fd, st->st_mode);
	if (dev < 0) {
		pthread_mutex_unlock(&tab.lock);
		free(fresh);
		return dev;
	}
	if (tab.devs[dev].mount_fd < 0 && hbp) {
		hbp = NULL;	/* nothing to open the handle with: pin */
		fresh->handle_bytes = 0;
	}
	in = hash_find(dev, st->st_ino);
	if (in && inode_number_reused(in, hbp)) {
		hash_remove(in);	/* lives on until the kernel forgets it */
		in = NULL;
	}
	if (in) {
		*kept = inode_again_locked(in, fd, is_path);
		n = lru_evict(tab.lru_max, fds, 8);
		pthread_mutex_unlock(&tab.lock);
		free(fresh);
		close_all(fds, n);
		fill_entry(e, in, st);
		return 0;
	}
	fresh->dev = dev;
	if (!hbp) {
		/* No handle: the inode keeps a descriptor for its lifetime. */
		pthread_mutex_unlock(&tab.lock);
		pfd = path_fd_of(fd, is_path);
		if (pfd < 0) {
			free(fresh);
			return pfd;
		}
		pthread_mutex_lock(&tab.lock);
		in = hash_find(dev, st->st_ino);
		if (in) {	/* lost a race: use the winner */
			in->nlookup++;
			pthread_mutex_unlock(&tab.lock);
			if (pfd != fd)
				close(pfd);
			free(fresh);
			fill_entry(e, in, st);
			return 0;
		}
		fresh->pinned = 1;
		fresh->fd = pfd;
		*kept = pfd == fd;
	} else if (is_path) {
		fresh->fd = fd;
		*kept = true;
		lru_push(fresh);
	}
	hash_insert(fresh);
	n = lru_evict(tab.lru_max, fds, 8);
	pthread_mutex_unlock(&tab.lock);
	close_all(fds, n);
	fill_entry(e, fresh, st);
	return 0;
}

int cfs_inode_lookup(struct cfs_inode *parent, const char *name,
		     struct fuse_entry_param *e)
{
	struct stat st;
	int pfd, fd, res, tries = 0;
	bool kept;

	pfd = cfs_inode_fd(parent);
	if (pfd < 0)
		return pfd;
	do
		fd = openat(pfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	while (fd < 0 && cfs_retry_emfile(errno, &tries));
	res = fd < 0 ? -errno : 0;
	cfs_inode_put_fd(parent);
	if (res)
		return res;
	if (fstat(fd, &st) < 0) {
		res = -errno;
		close(fd);
		return res;
	}
	res = inode_install(fd, true, &st, e, &kept);
	if (!kept)
		close(fd);
	return res;
}

/* The inode of a file we just created and opened (fd stays the caller's). */
int cfs_inode_from_fd(int fd, struct fuse_entry_param *e)
{
	struct stat st;
	bool kept;

	if (fstat(fd, &st) < 0)
		return -errno;
	return inode_install(fd, false, &st, e, &kept);
}

void cfs_inode_forget(struct cfs_inode *in, uint64_t nlookup)
{
	int fd = -1;

	if (in == cfs.root)
		return;
	pthread_mutex_lock(&tab.lock);
	in->nlookup = in->nlookup > nlookup ? in->nlookup - nlookup : 0;
	if (!in->nlookup && !in->forgotten) {
		hash_remove(in);
		in->forgotten = 1;
		lru_unlink(in);
		maybe_free_locked(in, &fd);
	}
	pthread_mutex_unlock(&tab.lock);
	if (fd >= 0)
		close(fd);
}

/*
 * Open files are listed on their inode, and keep no extra descriptor: an
 * application may open as many files as our limit allows.  They matter
 * when the handle no longer opens (the file was unlinked while open):
 * then the inode's descriptor is reopened through one of them.
 */
void cfs_inode_file_add(struct cfs_inode *in, struct cfs_file *f)
{
	pthread_mutex_lock(&tab.lock);
	f->next_open = in->files;
	in->files = f;
	in->opened++;
	pthread_mutex_unlock(&tab.lock);
}

/* Before f->fd is closed: nobody may reopen through it afterwards. */
void cfs_inode_file_remove(struct cfs_inode *in, struct cfs_file *f)
{
	struct cfs_file **pp;
	int fd = -1;

	pthread_mutex_lock(&tab.lock);
	for (pp = &in->files; *pp && *pp != f; pp = &(*pp)->next_open)
		;
	if (*pp)
		*pp = f->next_open;
	in->opened--;
	maybe_free_locked(in, &fd);
	pthread_mutex_unlock(&tab.lock);
	if (fd >= 0)
		close(fd);
}

/*
 * cache=auto: may the kernel keep the pages it cached of this file at an
 * earlier open?  Yes while the backing file's change time and size are
 * those recorded then: only writes through this mount, which go through
 * those pages, can have happened since.  (Close-to-open consistency, as
 * NFS gives.)  Records st for the next open.
 */
bool cfs_inode_cache_unchanged(struct cfs_inode *in, const struct stat *st)
{
	int64_t ctime_ns = st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec;
	bool same;

	pthread_mutex_lock(&tab.lock);
	same = in->cache_ctime_ns == ctime_ns && in->cache_size == st->st_size;
	in->cache_ctime_ns = ctime_ns;
	in->cache_size = st->st_size;
	pthread_mutex_unlock(&tab.lock);
	return same;
}

/* A new open file of the inode, with the backing open flags. */
int cfs_inode_open(struct cfs_inode *in, int flags)
{
	char proc[64];
	int pfd, fd, tries = 0;

	flags &= ~(O_CREAT | O_EXCL | O_NOCTTY);
	if (!S_ISDIR(in->mode) && in->handle_bytes && cfs.handles)
		return open_by_handle(in, flags);
	pfd = cfs_inode_fd(in);
	if (pfd < 0)
		return pfd;
	do {
		if (S_ISDIR(in->mode)) {
			fd = openat(pfd, ".", flags | O_CLOEXEC);
		} else {
			cfs_proc_path(pfd, proc, sizeof(proc));
			fd = open(proc, flags | O_CLOEXEC);
		}
	} while (fd < 0 && cfs_retry_emfile(errno, &tries));
	if (fd < 0)
		fd = -errno;
	cfs_inode_put_fd(in);
	return fd;
}

static int dev_find_locked(dev_t dev)
{
	unsigned i;

	for (i = 0; i < tab.ndevs; i++)
		if (tab.devs[i].dev == dev)
			return i;
	return -1;
}

/*
 * name in pfd is about to be removed.  If the kernel remembers its inode
 * and this is its last name, the handle will stop working, yet a process
 * holding it (an O_PATH descriptor, a cwd) may still fstat it: keep its
 * descriptor until the kernel forgets it.  Bounded, so a huge rm -rf
 * whose forgets lag behind cannot run us out of descriptors.
 */
struct cfs_inode *cfs_inode_pin_victim(int pfd, const char *name)
{
	struct cfs_inode *in = NULL;
	struct stat st;
	int dev, fd;

	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (!S_ISDIR(st.st_mode) && st.st_nlink > 1))
		return NULL;
	pthread_mutex_lock(&tab.lock);
	dev = dev_find_locked(st.st_dev);
	if (dev >= 0)
		in = hash_find(dev, st.st_ino);
	if (!in || in->pinned || tab.victims >= tab.lru_max / 2)
		in = NULL;
	else
		in->users++;
	pthread_mutex_unlock(&tab.lock);
	if (!in)
		return NULL;
	fd = cfs_inode_fd(in);
	pthread_mutex_lock(&tab.lock);
	if (fd >= 0 && !in->pinned) {
		lru_unlink(in);
		in->pinned = in->victim = 1;
		tab.victims++;
	}
	pthread_mutex_unlock(&tab.lock);
	if (fd >= 0)
		cfs_inode_put_fd(in);
	cfs_inode_put_fd(in);
	return fd >= 0 ? in : NULL;
}

/* The removal failed: the inode lives on, its descriptor is cache again. */
void cfs_inode_unpin_victim(struct cfs_inode *in)
{
	int fd = -1;

	if (!in)
		return;
	pthread_mutex_lock(&tab.lock);
	if (in->victim) {
		in->pinned = in->victim = 0;
		tab.victims--;
		lru_touch(in);
	}
	maybe_free_locked(in, &fd);
	pthread_mutex_unlock(&tab.lock);
	if (fd >= 0)
		close(fd);
}

/* Halve the descriptor cache now (someone met EMFILE). */
void cfs_inode_shrink(void)
{
	int fds[256];
	unsigned n;

	do {
		pthread_mutex_lock(&tab.lock);
		n = lru_evict(tab.lru_count / 2, fds, 256);
		pthread_mutex_unlock(&tab.lock);
		close_all(fds, n);
	} while (n == 256);
}

void cfs_inode_counts(uint64_t *inodes, uint64_t *record_bytes, uint64_t *table_bytes,
		      uint64_t *cached_fds, uint64_t *fd_cache_size)
{
	pthread_mutex_lock(&tab.lock);
	*inodes = tab.count;
	*record_bytes = tab.bytes;
	*table_bytes = tab.nbuckets * sizeof(*tab.buckets);
	*cached_fds = tab.lru_count;
	*fd_cache_size = tab.lru_max;
	pthread_mutex_unlock(&tab.lock);
}

/* Probe handle support on the source and set up the table and the root. */
int cfs_inode_init(int source_fd, unsigned fd_cache_size)
{
	struct handle_buf hb;
	struct stat st;
	int res, fd;

	tab.nbuckets = 1024;
	tab.buckets = calloc(tab.nbuckets, sizeof(*tab.buckets));
	if (!tab.buckets)
		return -ENOMEM;
	tab.lru.lru_next = tab.lru.lru_prev = &tab.lru;
	tab.lru_max = fd_cache_size;
	if (fstat(source_fd, &st) < 0)
		return -errno;
	cfs.root = inode_new(&st, NULL);
	if (!cfs.root)
		return -ENOMEM;
	res = dev_index_locked(st.st_dev, source_fd, st.st_mode);
	if (res < 0)
		return res;
	cfs.root->dev = res;
	res = tab.devs[cfs.root->dev].mount_fd < 0 ? -ESTALE : handle_of(source_fd, &hb);
	if (res == -ESTALE)
		snprintf(cfs.handles_reason, sizeof(cfs.handles_reason),
			 "a FUSE source: its handles go stale");
	else if (res == 0) {
		fd = open_by_handle_at(tab.devs[cfs.root->dev].mount_fd, &hb.fh,
				       O_PATH | O_CLOEXEC);
		if (fd >= 0)
			close(fd);
		else
			res = -errno;
	}
	cfs.handles = res == 0;
	if (res && res != -ESTALE)
		snprintf(cfs.handles_reason, sizeof(cfs.handles_reason),
			 "%s", caio_strerror(res));
	cfs.root->fd = source_fd;
	cfs.root->pinned = 1;
	cfs.root->nlookup = 2;
	hash_insert(cfs.root);
	return 0;
}

void cfs_inode_exit(void)
{
	size_t i;
	unsigned d;

	for (i = 0; i < tab.nbuckets; i++) {
		struct cfs_inode *in = tab.buckets[i], *next;

		for (; in; in = next) {
			next = in->hash_next;
			if (in->fd >= 0 && in != cfs.root)
				close(in->fd);
			if (in != cfs.root)
				free(in);
		}
	}
	free(cfs.root);
	cfs.root = NULL;
	free(tab.buckets);
	tab.buckets = NULL;
	for (d = 0; d < tab.ndevs; d++)
		if (tab.devs[d].mount_fd >= 0)
			close(tab.devs[d].mount_fd);
	tab.ndevs = 0;
}
