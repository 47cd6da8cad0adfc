# test_posix_diff.py - differential POSIX checks: each scenario runs on a raw directory and through caiofs (allow_other,default_permissions) as several uids; outcomes must match.
"""
pjdfstest-style checks without a table of expected kernel answers: every
scenario runs twice, once in a plain directory on the root filesystem and
once in a caiofs mount whose source lives next to it on that same
filesystem.  Each operation runs in a forked child as root or another uid
(with supplementary groups and a umask); after it the parent records, as
root, every entry of the scenario's directory: type and mode, owner, link
count, size, symlink target, explicitly set times, and whether mtime and
ctime moved.  The two records must be identical.  The raw side is also
checked against the answer written in the table, so a scenario that tests
nothing (both sides failing alike for a reason the author did not mean)
fails too.

Timestamps: the kernel gives a changed ctime/mtime a fine-grained value when
the old one was read since the last change (multigrain timestamps, Linux
6.13, ext4/xfs/btrfs), so the parent reads every entry (and, for the mount,
its backing file) before each operation; no sleep is needed for "changed" to
be visible.  Where the scratch fs lacks them, only the rest is compared.

Mounts: one per backend for the module, plus one (thread backend) whose
daemon may hold only 256 descriptors, so its inode descriptor cache (64)
turns over all the time and every scenario also runs through re-opened
handles.

Add a case: append an S(...) to SCENARIOS.  CAIOFS_TEST_REFERENCE=bind runs
the table over a bind mount, which must pass: use it to check a new case.
"""
import ctypes
import mmap
import os
import resource
import shutil
import stat
import struct
import sys
import tempfile
from collections import namedtuple

import pytest

from cfsutil import (AT_FDCWD, AT_SYMLINK_NOFOLLOW, RENAME_EXCHANGE,
		     RENAME_NOREPLACE, UTIME_NOW, UTIME_OMIT, XATTR_CREATE,
		     XATTR_REPLACE, as_user, errname, link_follow,
		     libc, renameat2, utimensat, futimens)
from conftest import (REFERENCE, BindMount, Mount, Watchdog,
		      backends_under_test, skip_if_unavailable)

AT_EACCESS = 0x200
OP_TIMEOUT = 20
# Times (seconds) outside [EXPLICIT_BEFORE, EXPLICIT_AFTER) were set by a
# scenario and are compared as values; the others are only "changed or not".
EXPLICIT_BEFORE = 1000000000
EXPLICIT_AFTER = 4000000000

# effective: only the effective ids change (pjdfstest's fstest does that), so
# the real uid stays root; otherwise setuid/setgid change them all.
Cred = namedtuple('Cred', 'name uid gid groups umask effective', defaults=(False,))
ROOT = Cred('root', 0, 0, (), 0o022)
U1 = Cred('u1', 1000, 1000, (1000, 2000), 0o022)	# also in group G1
U2 = Cred('u2', 2001, 2001, (), 0o022)
NOBODY = Cred('nobody', 65534, 65534, (), 0o022)
MANY = Cred('many', 3001, 3001, tuple(range(5000, 5100)), 0o022)	# 100 groups
EUSER = Cred('euid65534', 65534, 65533, (65533, 2000), 0o022, True)
ROOTG = Cred('root-gid1000', 0, 1000, (1000,), 0o027)
G1 = 2000	# U1's supplementary group
G3 = 3000	# a group none of the test users is in
ANY = object()	# a table answer meaning "whatever the raw fs says"
EXT4_SUPER_MAGIC = 0xef53
# Filesystems that stamp a directory with its own (multigrain) time when an
# entry changes; tmpfs copies the child's time, which may be coarse.
DIR_TIMES_FROM_DIR = (EXT4_SUPER_MAGIC, 0x58465342, 0x9123683e)	# ext4, xfs, btrfs


class OnExt4:
	"""A table answer that holds for ext4 (the usual root fs) only: limits
	such as the largest file size differ elsewhere."""

	def __init__(self, value):
		self.value = value


def fs_magic(path):
	buf = ctypes.create_string_buffer(128)	# struct statfs; f_type comes first
	libc.statfs.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
	if libc.statfs(os.fsencode(path), buf) < 0:
		return None
	return struct.unpack_from('l', buf.raw)[0]


def fine_grained_ctime(path):
	"""Does this fs give a change made just after a stat a new ctime
	(multigrain timestamps, Linux 6.13)?  Without them a change within the
	same clock tick can keep the old ctime, and "changed" cannot be checked."""
	probe = os.path.join(path, '.ctime-probe')
	with open(probe, 'wb'):
		pass
	try:
		for i in range(20):
			old = os.stat(probe).st_ctime_ns
			os.chmod(probe, 0o600 if i % 2 else 0o644)
			if os.stat(probe).st_ctime_ns == old:
				return False
		return True
	finally:
		os.unlink(probe)


def um(cred, mask):
	return cred._replace(umask=mask)


# ---- what a scenario is made of ------------------------------------------

def F(name, mode=0o644, owner=ROOT, gid=None, data=b'data'):
	return ('file', name, mode, owner.uid, owner.gid if gid is None else gid, data)


def D(name, mode=0o755, owner=ROOT, gid=None):
	return ('dir', name, mode, owner.uid, owner.gid if gid is None else gid)


def L(name, target, owner=ROOT):
	return ('symlink', name, target, owner.uid, owner.gid)


def HL(src, dst):
	return ('link', src, dst)


def FIFO(name, mode=0o644, owner=ROOT):
	return ('fifo', name, mode, owner.uid, owner.gid)


def TOP(mode):
	return ('top', mode)


def XA(name, key, value):
	return ('xattr', name, key, value)


ACL_ACCESS = 'system.posix_acl_access'
ACL_DEFAULT = 'system.posix_acl_default'
ACL_TAGS = {'u': 0x01, 'U': 0x02, 'g': 0x04, 'G': 0x08, 'm': 0x10, 'o': 0x20}


def acl(*entries):
	"""The xattr form of an ACL: entries like ('u', 'rw'), ('U', 'r', 1000)
	(U and G name a user or group, lower case are the owner/group/mask/other)."""
	out = struct.pack('<I', 2)
	for e in sorted(entries, key=lambda e: (ACL_TAGS[e[0]], e[2] if len(e) > 2 else 0)):
		perm = sum(bit for c, bit in (('r', 4), ('w', 2), ('x', 1)) if c in e[1])
		out += struct.pack('<HHI', ACL_TAGS[e[0]], perm, e[2] if len(e) > 2 else 0xffffffff)
	return out


class S:
	"""A scenario: setup entries (made by root), then ops, each
	(cred, answer on the raw fs, op name, *args)."""

	def __init__(self, name, setup, ops):
		self.name = name
		self.setup = setup
		self.ops = ops


def apply_setup(top, entries):
	"""Build the scenario's tree as root (through the mount on that side)."""
	os.chmod(top, 0o777)
	for e in entries:
		kind, rest = e[0], e[1:]
		if kind == 'top':
			os.chmod(top, rest[0])
			continue
		path = os.path.join(top, rest[0])
		if kind == 'file':
			mode, uid, gid, data = rest[1:]
			with open(path, 'wb') as f:
				f.write(data)
			os.chown(path, uid, gid)
			os.chmod(path, mode)
		elif kind == 'dir':
			mode, uid, gid = rest[1:]
			os.mkdir(path)
			os.chown(path, uid, gid)
			os.chmod(path, mode)
		elif kind == 'symlink':
			target, uid, gid = rest[1:]
			os.symlink(target, path)
			os.lchown(path, uid, gid)
		elif kind == 'fifo':
			mode, uid, gid = rest[1:]
			os.mkfifo(path)
			os.chown(path, uid, gid)
			os.chmod(path, mode)
		elif kind == 'link':
			os.link(path, os.path.join(top, rest[1]))
		elif kind == 'xattr':
			os.setxattr(path, rest[1], rest[2], follow_symlinks=False)
		else:
			raise ValueError(kind)


# ---- the operations, run in the child ------------------------------------

def _fd_op(path, flags, fn, *args):
	fd = os.open(path, flags)
	try:
		return fn(fd, *args)
	finally:
		os.close(fd)


libc.faccessat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]


def op_access(path, mode, flags=0):
	if libc.faccessat(AT_FDCWD, os.fsencode(path), mode, flags) < 0:
		err = ctypes.get_errno()
		raise OSError(err, os.strerror(err))


SYS_fchmodat2 = 452


def op_lchmod(path, mode):
	"""fchmodat2(AT_SYMLINK_NOFOLLOW): Python's chmod refuses to try."""
	if libc.syscall(SYS_fchmodat2, AT_FDCWD, os.fsencode(path), mode,
			AT_SYMLINK_NOFOLLOW) < 0:
		err = ctypes.get_errno()
		raise OSError(err, os.strerror(err))


def op_open(path, flags, mode=0o644):
	fd = os.open(path, flags, mode)
	os.close(fd)


def op_write(path, data, flags=os.O_WRONLY):
	return _fd_op(path, flags, os.write, data)


def op_pwrite_trunc(path, data, flags=os.O_WRONLY):
	"""open + write at 0 + ftruncate to the data's length."""
	def work(fd):
		os.pwrite(fd, data, 0)
		os.ftruncate(fd, len(data))
	return _fd_op(path, flags, work)


def op_read(path, flags=os.O_RDONLY):
	return _fd_op(path, flags, os.read, 4096)


def op_stat(path):
	st = os.stat(path)
	return '%o %d:%d' % (st.st_mode, st.st_uid, st.st_gid)


def op_mknod(path, mode, major=0, minor=0):
	os.mknod(path, mode, os.makedev(major, minor))


def op_unlinked(path):
	"""Open, unlink, then use the open file: what fstat says at each step."""
	fd = os.open(path, os.O_RDWR)
	try:
		os.unlink(path)
		first = os.fstat(fd).st_nlink
		os.pwrite(fd, b'xyz', 0)
		os.fchmod(fd, 0o600)
		os.ftruncate(fd, 2)
		st = os.fstat(fd)
		return (first, st.st_nlink, st.st_size, '%o' % st.st_mode, os.pread(fd, 10, 0))
	finally:
		os.close(fd)


def op_mmap_write(path, data):
	"""Write through a shared mapping, msync, unmap."""
	fd = os.open(path, os.O_RDWR)
	try:
		m = mmap.mmap(fd, len(data))
		m[:] = data
		m.flush()
		m.close()
	finally:
		os.close(fd)


def op_renamed_over(src, dst):
	"""Rename over a file this process has open: the open file lives on."""
	fd = os.open(dst, os.O_RDONLY)
	try:
		os.rename(src, dst)
		st = os.fstat(fd)
		return (st.st_nlink, os.pread(fd, 100, 0))
	finally:
		os.close(fd)


def op_pwrite_append(path, data):
	"""pwrite on an O_APPEND descriptor appends, whatever the offset."""
	return _fd_op(path, os.O_WRONLY | os.O_APPEND, os.pwrite, data, 0)


def op_fsync_dir(path):
	return _fd_op(path, os.O_RDONLY | os.O_DIRECTORY, os.fsync)


def crowd_stat(crowd):
	"""Look up many other inodes: pushes earlier ones out of a small
	descriptor cache in the daemon."""
	for name in sorted(os.listdir(crowd)):
		os.stat(os.path.join(crowd, name))


def op_removed_dir(path, crowd):
	"""An open directory is removed; the process keeps using it."""
	fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
	try:
		os.rmdir(path)
		crowd_stat(crowd)
		out = [os.fstat(fd).st_nlink]
		os.fchmod(fd, 0o700)
		out.append('%o' % os.fstat(fd).st_mode)
		out.append(os.listdir(fd))
		return tuple(out)
	finally:
		os.close(fd)


def op_open_unlinked_crowd(path, crowd):
	"""An open file is unlinked; after a crowd of lookups every f*() call
	on it still works."""
	fd = os.open(path, os.O_RDWR)
	try:
		os.unlink(path)
		crowd_stat(crowd)
		os.fchown(fd, -1, G1)
		os.fchmod(fd, 0o640)
		os.utime(fd, ns=(1000, 2000))
		os.pwrite(fd, b'late', 1)
		os.fsync(fd)
		os.ftruncate(fd, 4)
		os.setxattr(fd, 'user.u', b'v')
		st = os.fstat(fd)
		return (st.st_nlink, '%o' % st.st_mode, st.st_gid, st.st_atime_ns, st.st_size,
			os.pread(fd, 10, 0), os.getxattr(fd, 'user.u'))
	finally:
		os.close(fd)


def op_opath_unlinked(path, crowd):
	"""fstat on an O_PATH descriptor of a file unlinked since."""
	fd = os.open(path, os.O_PATH)
	try:
		os.unlink(path)
		crowd_stat(crowd)
		st = os.fstat(fd)
		return (st.st_nlink, st.st_size)
	finally:
		os.close(fd)


def op_reuse_after_unlink(kind, crowd, count=40):
	"""Hold an O_PATH descriptor on a file or directory, remove it, then
	create entries (with content) that may get its inode number; the old
	descriptor must still describe the removed object, every new entry must
	work and no live entry may share its inode number."""
	victim = 'victim-' + kind
	if kind == 'dir':
		os.mkdir(victim)
	else:
		with open(victim, 'wb') as f:
			f.write(b'old data')
	fd = os.open(victim, os.O_PATH)
	try:
		ino = os.fstat(fd).st_ino
		os.rmdir(victim) if kind == 'dir' else os.unlink(victim)
		crowd_stat(crowd)
		shared = []
		for i in range(count):
			name = '%s%02d' % (kind, i)
			if kind == 'dir':
				os.mkdir(name)
				name_inside = os.path.join(name, 'inside')
			else:
				name_inside = name
			os.close(os.open(name_inside, os.O_CREAT | os.O_WRONLY, 0o644))
			if os.stat(name).st_ino == ino:
				shared.append(name)
		st = os.fstat(fd)
		return ('names sharing the removed inode: %r' % shared, st.st_nlink,
			stat.S_IFMT(st.st_mode) == (stat.S_IFDIR if kind == 'dir' else stat.S_IFREG))
	finally:
		os.close(fd)


def op_tmpfile(path, flags, mode, data, link_as=None, crowd=None):
	"""open(O_TMPFILE) in the directory path, write data, optionally look
	up a crowd (the daemon's descriptor cache turns over) and give the file
	a name with linkat(AT_SYMLINK_FOLLOW) of /proc/self/fd/N: what fstat
	says before and after, and what the name reads."""
	fd = os.open(path, os.O_TMPFILE | flags, mode)
	try:
		os.write(fd, data)
		st = os.fstat(fd)
		before = (st.st_nlink, '%o' % st.st_mode, st.st_uid, st.st_gid, st.st_size)
		if crowd:
			crowd_stat(crowd)
		if link_as is None:
			return before
		link_follow('/proc/self/fd/%d' % fd, link_as)
		with open(link_as, 'rb') as f:
			return before + (os.fstat(fd).st_nlink, f.read())
	finally:
		os.close(fd)


def op_getxattr(path, key):
	return os.getxattr(path, key, follow_symlinks=False)


OPS = {
	'access': op_access,
	'chmod': os.chmod,
	'lchmod': op_lchmod,
	'fchmod': lambda p, m, fl=os.O_RDONLY: _fd_op(p, fl, os.fchmod, m),
	'chown': os.chown,
	'lchown': os.lchown,
	'fchown': lambda p, u, g, fl=os.O_RDONLY: _fd_op(p, fl, os.fchown, u, g),
	'link': os.link,
	'link_follow': link_follow,
	'mkdir': os.mkdir,
	'mkfifo': os.mkfifo,
	'mknod': op_mknod,
	'open': op_open,
	'opendir': lambda p: os.listdir(p) and None,
	'read': op_read,
	'readlink': os.readlink,
	'rename': os.rename,
	'renameat2': renameat2,
	'rmdir': os.rmdir,
	'stat': op_stat,
	'symlink': os.symlink,
	'truncate': os.truncate,
	'ftruncate': lambda p, n, fl=os.O_WRONLY: _fd_op(p, fl, os.ftruncate, n),
	'unlink': os.unlink,
	'utimensat': utimensat,
	'futimens': lambda p, a, m, fl=os.O_RDONLY: _fd_op(p, fl, futimens, a, m),
	'write': op_write,
	'pwrite_trunc': op_pwrite_trunc,
	'unlinked': op_unlinked,
	'renamed_over': op_renamed_over,
	'pwrite_append': op_pwrite_append,
	'fsync_dir': op_fsync_dir,
	'removed_dir': op_removed_dir,
	'opath_unlinked': op_opath_unlinked,
	'open_unlinked_crowd': op_open_unlinked_crowd,
	'reuse_after_unlink': op_reuse_after_unlink,
	'tmpfile': op_tmpfile,
	'posix_fallocate': lambda p, o, n, fl=os.O_WRONLY: _fd_op(p, fl, os.posix_fallocate, o, n),
	'mmap_write': op_mmap_write,
	'setxattr': os.setxattr,
	'lsetxattr': lambda p, k, v, fl=0: os.setxattr(p, k, v, fl, follow_symlinks=False),
	'getxattr': op_getxattr,
	'listxattr': lambda p: sorted(os.listxattr(p, follow_symlinks=False)),
	'removexattr': os.removexattr,
}


def child_op(dirfd, cred, name, args):
	"""In the forked child: switch to the op's ids, run it."""
	os.fchdir(dirfd)
	os.setgroups(list(cred.groups))
	if cred.effective:
		os.setegid(cred.gid)
		os.seteuid(cred.uid)
	else:
		os.setgid(cred.gid)
		os.setuid(cred.uid)
	os.umask(cred.umask)
	try:
		res = OPS[name](*args)
	except OSError as e:
		return errname(e.errno)
	if res is None or res is True:
		return 0
	return res


# ---- the record of what happened -----------------------------------------

def tree(top):
	"""Every entry below top (top itself is '.'), without following links."""
	out = ['.']
	for dirpath, dirs, files in os.walk(top):
		rel = os.path.relpath(dirpath, top)
		for name in dirs + files:
			out.append(os.path.normpath(os.path.join(rel, name)))
	return sorted(out)


def times_by_inode(top):
	"""inode -> (mtime, ctime) of every entry; reading them arms
	fine-grained timestamps.  By inode, not name: renames move names."""
	out = {}
	for rel in tree(top):
		st = os.lstat(os.path.join(top, rel))
		out[st.st_ino] = (st.st_mtime_ns, st.st_ctime_ns)
	return out


def explicit(ns):
	"""A time a scenario set (far from now), compared as a value."""
	return not EXPLICIT_BEFORE * 10**9 <= ns < EXPLICIT_AFTER * 10**9


def describe(path, st, times_before, check_times):
	"""One entry: what must be equal on both sides."""
	before = times_before.get(st.st_ino)
	mode = st.st_mode
	desc = ['%o' % mode, 'uid=%d' % st.st_uid, 'gid=%d' % st.st_gid,
		'nlink=%d' % st.st_nlink, 'size=%d' % st.st_size]
	if stat.S_ISLNK(mode):
		desc.append('->' + os.readlink(path))
	if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
		desc.append('rdev=%d,%d' % (os.major(st.st_rdev), os.minor(st.st_rdev)))
	# relatime and our own directory walks move directory atimes: only
	# explicitly set atimes of non-directories are compared.
	if not stat.S_ISDIR(mode) and explicit(st.st_atime_ns):
		desc.append('atime=%d' % st.st_atime_ns)
	if explicit(st.st_mtime_ns):
		desc.append('mtime=%d' % st.st_mtime_ns)
	xattrs = sorted(os.listxattr(path, follow_symlinks=False))
	for key in xattrs:
		desc.append('%s=%s' % (key, os.getxattr(path, key, follow_symlinks=False).hex()))
	# An inherited ACL is stored after the new inode's times were set, and
	# storing it moves ctime again (ext4): whether that reaches the next
	# clock tick is chance, on the raw filesystem as much as through caiofs.
	if before is None and not stat.S_ISDIR(mode) and not stat.S_ISLNK(mode) and \
	   'system.posix_acl_access' not in xattrs:
		# just created: mtime and ctime are the same instant.  Not atime:
		# a read moves it (relatime) to the clock's next tick or not,
		# depending on how fast the steps ran.
		same = st.st_mtime_ns == st.st_ctime_ns
		desc.append('new times ' + ('equal' if same else 'differ'))
	if before is not None and check_times:
		old_m, old_c = before
		desc.append('mtime ' + ('changed' if st.st_mtime_ns != old_m else 'same'))
		desc.append('ctime ' + ('changed' if st.st_ctime_ns != old_c else 'same'))
	return ' '.join(desc)


class Side:
	"""One place a scenario runs: a raw directory, or the mount (whose
	backing directory is read too, to arm fine-grained timestamps)."""

	def __init__(self, label, root, backing=None, check_times=True):
		self.label = label
		self.root = root
		self.backing = backing
		self.check_times = check_times

	def arm_backing(self, name):
		"""The mount may answer from its attribute cache: read the
		backing entries too, so their next change is fine-grained."""
		if self.backing:
			times_by_inode(os.path.join(self.backing, name))

	def run(self, sc):
		top = os.path.join(self.root, sc.name)
		os.mkdir(top)
		apply_setup(top, sc.setup)
		record = []
		dirfd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
		try:
			before = times_by_inode(top)
			for i, (cred, answer, name, *args) in enumerate(sc.ops):
				self.arm_backing(sc.name)
				# as_user as root: child_op switches ids itself
				res = as_user(0, 0, child_op, dirfd, cred, name, tuple(args),
					      timeout=OP_TIMEOUT)
				what = 'op %d: %s %s%r' % (i, cred.name, name, tuple(args))
				record.append((what, 'result', res, answer))
				after = {}
				names = {}	# inode -> first name: hard links are one inode
				for rel in tree(top):
					path = os.path.join(top, rel)
					st = os.lstat(path)
					desc = describe(path, st, before, self.check_times)
					if st.st_ino in names:
						desc += ' same inode as ' + names[st.st_ino]
					names.setdefault(st.st_ino, rel)
					record.append((what, rel, desc, ANY))
					after[st.st_ino] = (st.st_mtime_ns, st.st_ctime_ns)
				before = after
		finally:
			os.close(dirfd)
		return record


def shorten(value):
	text = repr(value)
	return text if len(text) < 80 else text[:60] + '...' + text[-12:]


def compare(sc, raw, got, raw_is_ext4):
	"""The mount's record must be the raw one; the raw one must answer as
	the table says."""
	problems = []
	for what, key, value, answer in raw:
		if isinstance(answer, OnExt4):
			answer = answer.value if raw_is_ext4 else ANY
		if key == 'result' and answer is not ANY and value != answer:
			problems.append('%s: the raw fs answered %s, the table expects %s '
					'(fix the scenario)' % (shorten(what), shorten(value), shorten(answer)))
	raw_d = dict(((w, k), v) for w, k, v, a in raw)
	got_d = dict(((w, k), v) for w, k, v, a in got)
	shown = set()	# each entry's first difference is enough to read
	for key in [(w, k) for w, k, v, a in raw] + [k for k in got_d if k not in raw_d]:
		r, g = raw_d.get(key, '<absent>'), got_d.get(key, '<absent>')
		if r != g and (key[1] == 'result' or key[1] not in shown):
			shown.add(key[1])
			problems.append('%s [%s]:\n      raw    %s\n      caiofs %s' % (
				shorten(key[0]), key[1], r, g))
	assert not problems, 'scenario %s:\n  %s' % (sc.name, '\n  '.join(problems))


# ---- the table -----------------------------------------------------------

LONG = 'n' * 256		# one more than NAME_MAX
DEEP = 'a/' * 2100		# longer than PATH_MAX
T1 = (100000, 123456789)
T2 = (200000, 5)
OLD = ((10, 1), (20, 2))	# explicit old times given in setup ops

RO, WO, RW = os.O_RDONLY, os.O_WRONLY, os.O_RDWR
CREAT, EXCL, TRUNC, APPEND = os.O_CREAT, os.O_EXCL, os.O_TRUNC, os.O_APPEND


def loop_links():
	return [L('l1', 'l2'), L('l2', 'l1')]


def chain(n):
	"""n symlinks c1 -> c2 -> ... -> cn -> f."""
	links = [L('c%d' % i, 'c%d' % (i + 1)) for i in range(1, n)]
	return [F('f')] + links + [L('c%d' % n, 'f')]


SCENARIOS = [
	# chmod
	S('chmod_owner', [F('f', 0o644, U1)], [
		(U1, 0, 'chmod', 'f', 0o600),
		(U1, 0, 'chmod', 'f', 0o7777)]),
	S('chmod_not_owner', [F('f', 0o666)], [
		(U1, 'EPERM', 'chmod', 'f', 0o644),
		(NOBODY, 'EPERM', 'chmod', 'f', 0o777)]),
	S('chmod_root_any', [F('f', 0o600, U1)], [
		(ROOT, 0, 'chmod', 'f', 0o4755),
		(ROOT, 0, 'chmod', 'f', 0o2711)]),
	S('chmod_sgid_not_member', [F('f', 0o644, U1, G3)], [
		(U1, 0, 'chmod', 'f', 0o2755)]),
	S('chmod_sgid_member', [F('f', 0o644, U1, G1)], [
		(U1, 0, 'chmod', 'f', 0o2755)]),
	S('chmod_sticky_file_and_dir', [F('f', 0o644, U1), D('d', 0o755, U1)], [
		(U1, 0, 'chmod', 'f', 0o1644),
		(U1, 0, 'chmod', 'd', 0o1777)]),
	S('chmod_through_symlink', [F('f', 0o644, U1), L('l', 'f', U1)], [
		(U1, 0, 'chmod', 'l', 0o600)]),
	S('chmod_symlink_nofollow', [F('f', 0o644), L('l', 'f')], [
		(ROOT, 'ENOTSUP', 'lchmod', 'l', 0o600),
		(ROOT, 0, 'lchmod', 'f', 0o640)]),
	S('fchmod_owner_rdonly_fd', [F('f', 0o644, U1)], [
		(U1, 0, 'fchmod', 'f', 0o640)]),
	S('chmod_path_errors', [D('d', 0o700), F('d/f', 0o644, U1), F('f')] + loop_links(), [
		(U1, 'EACCES', 'chmod', 'd/f', 0o600),
		(ROOT, 'ENOTDIR', 'chmod', 'f/x', 0o600),
		(ROOT, 'ENAMETOOLONG', 'chmod', LONG, 0o600),
		(ROOT, 'ENAMETOOLONG', 'chmod', DEEP, 0o600),
		(ROOT, 'ELOOP', 'chmod', 'l1', 0o600),
		(ROOT, 'ENOENT', 'chmod', 'missing', 0o600)]),

	# chown
	S('chown_root', [F('f', 0o644)], [
		(ROOT, 0, 'chown', 'f', U1.uid, U1.gid),
		(ROOT, 0, 'chown', 'f', -1, G3),
		(ROOT, 0, 'chown', 'f', U2.uid, -1)]),
	S('chown_give_away', [F('f', 0o644, U1)], [
		(U1, 'EPERM', 'chown', 'f', U2.uid, -1),
		(U1, 'EPERM', 'chown', 'f', 0, 0),
		(U1, 0, 'chown', 'f', U1.uid, -1),
		(U1, 0, 'chown', 'f', -1, -1)]),
	S('chown_group', [F('f', 0o644, U1)], [
		(U1, 0, 'chown', 'f', -1, G1),
		(U1, 'EPERM', 'chown', 'f', -1, G3),
		(U1, 0, 'chown', 'f', U1.uid, U1.gid)]),
	S('chown_not_owner', [F('f', 0o666, U1)], [
		(U2, 'EPERM', 'chown', 'f', -1, U2.gid),
		(U2, 'EPERM', 'chown', 'f', U2.uid, -1),
		(U2, ANY, 'chown', 'f', -1, -1)]),
	S('chown_clears_suid_by_owner', [F('f', 0o6755, U1), F('g', 0o2745, U1)], [
		(U1, 0, 'chown', 'f', -1, G1),
		(U1, 0, 'chown', 'g', -1, G1)]),
	S('chown_minus_one_keeps_suid', [F('f', 0o6755, U1, G1), F('g', 0o6555, U1, G1)], [
		(U1, 0, 'chown', 'f', -1, -1),
		(U1, 0, 'chown', 'g', U1.uid, G1)]),
	S('chown_clears_suid_by_root', [F('f', 0o6755), F('g', 0o4644), F('h', 0o2755)], [
		(ROOT, 0, 'chown', 'f', U1.uid, -1),
		(ROOT, 0, 'chown', 'g', -1, G1),
		(ROOT, 0, 'chown', 'h', -1, -1)]),
	S('chown_dir_keeps_sgid', [D('d', 0o6755, U1)], [
		(U1, 0, 'chown', 'd', -1, G1),
		(ROOT, 0, 'chown', 'd', U2.uid, U2.gid)]),
	S('chown_symlinks', [F('f', 0o644), L('l', 'f')], [
		(ROOT, 0, 'lchown', 'l', U1.uid, U1.gid),
		(ROOT, 0, 'chown', 'l', U2.uid, U2.gid),
		(U1, 0, 'lchown', 'l', -1, G1)]),
	S('fchown_owner', [F('f', 0o4755, U1)], [
		(U1, 0, 'fchown', 'f', -1, G1),
		(U1, 'EPERM', 'fchown', 'f', U2.uid, -1)]),

	# link
	S('link_basic', [D('d', 0o777), F('f', 0o644, U1)], [
		(U1, 0, 'link', 'f', 'd/g'),
		(U1, 0, 'link', 'd/g', 'h'),
		(U1, 'EEXIST', 'link', 'f', 'h'),
		(U1, 0, 'unlink', 'f')]),
	S('link_errors', [D('d'), D('ro', 0o755), F('f', 0o644, U1), F('x')] + loop_links(), [
		(ROOT, 'EPERM', 'link', 'd', 'd2'),
		(U1, 'ENOENT', 'link', 'missing', 'n'),
		(U1, 'EACCES', 'link', 'f', 'ro/g'),
		(U1, 'ENOTDIR', 'link', 'f', 'x/g'),
		(U1, 'ENOTDIR', 'link', 'x/f', 'g'),
		(U1, 'ENAMETOOLONG', 'link', 'f', LONG),
		(U1, 'EEXIST', 'link', 'f', 'l1'),
		(U1, 'ELOOP', 'link_follow', 'l1', 'g')]),
	S('link_protected_hardlinks', [F('secret', 0o600), F('pub', 0o644), F('open', 0o666)], [
		(U1, 'EPERM', 'link', 'secret', 's2'),
		(U1, 'EPERM', 'link', 'pub', 'p2'),
		(U1, 0, 'link', 'open', 'o2')]),
	S('link_symlink_itself', [F('f'), L('l', 'f')], [
		(ROOT, 0, 'link', 'l', 'l2'),
		(ROOT, 0, 'link_follow', 'l', 'f2')]),

	# mkdir, mkfifo, mknod
	S('mkdir_modes_umask', [], [
		(U1, 0, 'mkdir', 'a', 0o777),
		(um(U1, 0o077), 0, 'mkdir', 'b', 0o777),
		(um(U1, 0), 0, 'mkdir', 'c', 0o7777),
		(um(U1, 0o027), 0, 'mkdir', 'd', 0o751),
		(ROOT, 0, 'mkdir', 'e', 0o1777)]),
	S('mkdir_errors', [D('ro', 0o755), F('f'), D('x', 0o600, U1)], [
		(U1, 'EEXIST', 'mkdir', 'f', 0o755),
		(U1, 'EACCES', 'mkdir', 'ro/new', 0o755),
		(U1, 'EACCES', 'mkdir', 'x/new', 0o755),
		(U1, 'ENOENT', 'mkdir', 'missing/new', 0o755),
		(U1, 'ENOTDIR', 'mkdir', 'f/new', 0o755),
		(U1, 'ENAMETOOLONG', 'mkdir', LONG, 0o755)]),
	S('mkdir_in_sgid_dir', [D('sg', 0o2777, ROOT, G3)], [
		(U1, 0, 'mkdir', 'sg/d', 0o777),
		(U1, 0, 'open', 'sg/f', CREAT | WO, 0o2777),
		(NOBODY, 0, 'open', 'sg/g', CREAT | WO, 0o2777)]),
	S('many_supplementary_groups', [D('g', 0o770, ROOT, 5090), D('sg', 0o2770, ROOT, 5099),
					F('g/f', 0o640, ROOT, 5095)], [
		(MANY, 0, 'open', 'g/new', CREAT | WO, 0o666),
		(MANY, 0, 'mkdir', 'sg/d', 0o777),
		(MANY, 0, 'mknod', 'sg/p', stat.S_IFIFO | 0o666),
		(MANY, b'data', 'read', 'g/f'),
		(MANY, 0, 'chown', 'g/new', -1, 5077),
		(MANY, 'EPERM', 'chown', 'g/new', -1, 4999)]),
	S('root_with_other_gid', [D('sg', 0o2777, U2)], [
		(ROOTG, 0, 'open', 'f', CREAT | WO, 0o666),
		(ROOTG, 0, 'mkdir', 'd', 0o777),
		(ROOTG, 0, 'symlink', 'f', 'l'),
		(ROOTG, 0, 'mkfifo', 'p', 0o666),
		(ROOTG, 0, 'open', 'sg/f', CREAT | WO, 0o2777)]),
	S('mkfifo_modes', [D('ro', 0o755)], [
		(U1, 0, 'mkfifo', 'p', 0o666),
		(um(U1, 0o077), 0, 'mkfifo', 'q', 0o4777),
		(U1, 'EEXIST', 'mkfifo', 'p', 0o666),
		(U1, 'EACCES', 'mkfifo', 'ro/p', 0o666)]),
	S('mknod_types', [], [
		(U1, 0, 'mknod', 'fifo', stat.S_IFIFO | 0o640),
		(U1, 0, 'mknod', 'reg', stat.S_IFREG | 0o666),
		(U1, 0, 'mknod', 'sock', stat.S_IFSOCK | 0o777),
		(U1, 'EPERM', 'mknod', 'chr', stat.S_IFCHR | 0o666, 1, 3),
		(U1, 'EPERM', 'mknod', 'blk', stat.S_IFBLK | 0o666, 7, 0),
		(ROOT, 0, 'mknod', 'chr', stat.S_IFCHR | 0o620, 1, 3),
		(ROOT, 0, 'mknod', 'blk', stat.S_IFBLK | 0o660, 7, 9),
		(ROOT, 'EEXIST', 'mknod', 'reg', stat.S_IFREG | 0o666)]),

	S('mknod_device_numbers', [], [
		(ROOT, 0, 'mknod', 'big', stat.S_IFCHR | 0o600, 4095, 1048575),
		(ROOT, 0, 'mknod', 'mid', stat.S_IFBLK | 0o600, 300, 70000),
		(ROOT, 0, 'mknod', 'zero', stat.S_IFCHR | 0o600, 0, 0)]),

	# open
	S('open_trunc_rdonly', [F('ro', 0o444, U1, data=b'abc'), F('rw', 0o666, data=b'abc')], [
		(U1, 'EACCES', 'open', 'ro', RO | TRUNC),
		(U2, 0, 'open', 'rw', RO | TRUNC)]),
	S('open_socket_node', [], [
		(um(U1, 0), 0, 'mknod', 's', stat.S_IFSOCK | 0o666),
		(U1, 'ENXIO', 'open', 's', RO),
		(U2, 'ENXIO', 'open', 's', WO)]),
	S('open_creat_excl', [F('f'), L('dangling', 'nowhere')], [
		(U1, 'EEXIST', 'open', 'f', CREAT | EXCL | WO),
		(U1, 0, 'open', 'new', CREAT | EXCL | WO, 0o666),
		(um(U1, 0o077), 0, 'open', 'new2', CREAT | EXCL | RW, 0o777),
		(U1, 'EEXIST', 'open', 'dangling', CREAT | EXCL | WO),
		(U1, 0, 'open', 'dangling', CREAT | WO, 0o640),
		(U1, 'EEXIST', 'open', 'dangling', CREAT | EXCL | WO)]),
	S('open_creat_suid_modes', [], [
		(U1, 0, 'open', 'a', CREAT | WO, 0o4777),
		(U1, 0, 'open', 'b', CREAT | WO, 0o2777),
		(ROOT, 0, 'open', 'c', CREAT | WO, 0o6777)]),
	S('open_trunc', [F('f', 0o666, U1, data=b'hello'), F('empty', 0o666, U1, data=b'')], [
		(U1, 0, 'open', 'f', WO | TRUNC),
		(U1, 0, 'open', 'empty', WO | TRUNC),
		(U2, 0, 'open', 'f', RW | TRUNC)]),
	S('open_trunc_kills_suid', [F('f', 0o6777, U1, data=b'x'), F('g', 0o4766, U1, data=b''),
				    F('h', 0o2777, U1, data=b'y')], [
		(U2, 0, 'open', 'f', WO | TRUNC),
		(U2, 0, 'open', 'g', WO | TRUNC),
		(U2, 0, 'open', 'h', RW | TRUNC),
		(ROOT, 0, 'chmod', 'f', 0o6777),
		(ROOT, 0, 'open', 'f', WO | TRUNC)]),
	S('open_permissions', [F('r600', 0o600), F('r644', 0o644), F('own000', 0o000, U1),
			       F('grp060', 0o060, ROOT, G1), F('owner_denied', 0o066, U1, G1),
			       F('other006', 0o006)], [
		(U1, 'EACCES', 'open', 'r600', RO),
		(U1, 0, 'open', 'r644', RO),
		(U1, 'EACCES', 'open', 'r644', WO),
		(U1, 'EACCES', 'open', 'own000', RO),
		(U1, 0, 'open', 'grp060', RW),
		(NOBODY, 'EACCES', 'open', 'grp060', RO),
		(U1, 'EACCES', 'open', 'owner_denied', RO),
		(U2, 0, 'open', 'owner_denied', RW),
		(NOBODY, 0, 'open', 'other006', RW),
		(ROOT, 0, 'open', 'own000', RW)]),
	S('open_search_permission', [D('noexec', 0o644), F('noexec/f', 0o666),
				     D('xonly', 0o711), F('xonly/f', 0o644),
				     D('a', 0o755), D('a/b', 0o700, U2), F('a/b/f', 0o666),
				     D('grp', 0o710, ROOT, G1), F('grp/f', 0o644)], [
		(U1, 'EACCES', 'open', 'noexec/f', RO),
		(U1, 0, 'open', 'xonly/f', RO),
		(U1, 'EACCES', 'opendir', 'xonly'),
		(U1, 'EACCES', 'open', 'a/b/f', RO),
		(U2, 0, 'open', 'a/b/f', RO),
		(U1, 0, 'open', 'grp/f', RO),
		(NOBODY, 'EACCES', 'open', 'grp/f', RO),
		(U1, 'EACCES', 'open', 'xonly/new', CREAT | WO)]),
	S('open_symlink_chain', chain(41), [
		(U1, 'ELOOP', 'open', 'c1', RO),
		(U1, 0, 'open', 'c2', RO)]),
	S('open_path_errors', [F('f'), D('d'), L('lf', 'f'), L('ld', 'd')] + loop_links(), [
		(U1, 'ENOTDIR', 'open', 'f/x', RO),
		(U1, 'ENOTDIR', 'open', 'f', RO | os.O_DIRECTORY),
		(U1, 'ELOOP', 'open', 'l1', RO),
		(U1, 'ELOOP', 'open', 'l1/x', RO),
		(U1, 'ELOOP', 'open', 'lf', RO | os.O_NOFOLLOW),
		(U1, 'ENOTDIR', 'open', 'ld', RO | os.O_NOFOLLOW | os.O_DIRECTORY),
		(U1, 0, 'open', 'ld/', RO | os.O_NOFOLLOW),
		(U1, 0, 'open', 'f', RO | os.O_NOFOLLOW),
		(U1, 'ENAMETOOLONG', 'open', LONG, RO),
		(U1, 'ENAMETOOLONG', 'open', LONG, CREAT | WO),
		(U1, 'ENAMETOOLONG', 'open', DEEP, RO),
		(U1, 'ENOENT', 'open', 'missing', RO),
		(U1, 'ENOENT', 'open', 'missing/f', CREAT | WO)]),
	S('open_eisdir', [D('d', 0o777)], [
		(U1, 'EISDIR', 'open', 'd', WO),
		(U1, 'EISDIR', 'open', 'd', RW),
		(U1, 0, 'open', 'd', RO),
		(U1, 'EISDIR', 'open', 'd', CREAT | WO),
		(U1, 'EEXIST', 'open', 'd', CREAT | EXCL | RO),
		(ROOT, 'EISDIR', 'open', 'd', RW)]),
	S('open_fifo_nonblock', [FIFO('p', 0o666)], [
		(U1, 'ENXIO', 'open', 'p', WO | os.O_NONBLOCK),
		(U1, 0, 'open', 'p', RO | os.O_NONBLOCK)]),

	# rename
	S('rename_file_over_file', [F('a', 0o644, U1, data=b'aaa'), F('b', 0o600, U1, data=b'bb'),
				    HL('b', 'b2')], [
		(U1, 0, 'rename', 'a', 'b'),
		(U1, 0, 'rename', 'b', 'b'),
		(U1, 0, 'rename', 'b2', 'b2')]),
	S('rename_over_open_file', [F('a', 0o644, U1, data=b'new'), F('b', 0o644, U1, data=b'old'),
				    F('c', 0o644, U1, data=b'cc'), HL('c', 'c2'), F('d', data=b'dd')], [
		(U1, (0, b'old'), 'renamed_over', 'a', 'b'),
		(U1, (1, b'cc'), 'renamed_over', 'd', 'c'),
		(U1, b'new', 'read', 'b')]),
	S('trailing_slashes', [F('f'), D('d'), D('e')], [
		(ROOT, 'ENOTDIR', 'unlink', 'f/'),
		(ROOT, 'ENOTDIR', 'rename', 'f', 'g/'),
		(ROOT, 'ENOTDIR', 'open', 'f/', RO),
		(ROOT, 0, 'mkdir', 'n/', 0o755),
		(ROOT, 0, 'rename', 'd/', 'd2/'),
		(ROOT, 0, 'rmdir', 'e/'),
		(ROOT, 'ENOENT', 'symlink', 'x', 'l/')]),
	# the whiteout (a 0/0 character device) belongs to the caller
	S('rename_whiteout', [F('a', 0o644, U1), F('b', 0o644, U1)], [
		(U1, 0, 'renameat2', 'b', 'b2', 4),
		(ROOT, 0, 'renameat2', 'a', 'a2', 4)]),
	S('rename_symlinks', [F('f'), D('d'), L('lf', 'f'), L('ld', 'd'), L('dangling', 'nowhere')], [
		(ROOT, 0, 'rename', 'lf', 'lf2'),
		(ROOT, 0, 'rename', 'ld', 'd/ld'),
		(ROOT, 0, 'rename', 'dangling', 'f'),
		(ROOT, 'ENOENT', 'rename', 'd', 'd/ld/x')]),
	S('rename_hardlinks_same_inode', [F('a', 0o644, U1), HL('a', 'b')], [
		(U1, 0, 'rename', 'a', 'b')]),
	S('rename_across_dirs', [D('d1', 0o777), D('d2', 0o777), F('d1/f', 0o644, U1),
				 D('d1/sub', 0o755, U1), F('d1/sub/x')], [
		(U1, 0, 'rename', 'd1/f', 'd2/f'),
		(U1, 0, 'rename', 'd1/sub', 'd2/sub')]),
	S('rename_dirs', [D('a'), F('a/x'), D('b'), D('c'), F('c/x'), F('f'), D('a/sub')], [
		(ROOT, 'EISDIR', 'rename', 'f', 'b'),
		(ROOT, 'ENOTDIR', 'rename', 'b', 'f'),
		(ROOT, 'ENOTEMPTY', 'rename', 'b', 'c'),
		(ROOT, 'EINVAL', 'rename', 'a', 'a/sub/inside'),
		(ROOT, 'EINVAL', 'rename', 'a', 'a/sub'),
		(ROOT, 0, 'rename', 'a', 'b'),
		(ROOT, 'ENOTEMPTY', 'rename', 'b/sub', 'b'),
		(ROOT, 'EBUSY', 'rename', '.', 'dot'),
		(ROOT, 'ENOENT', 'rename', 'missing', 'x'),
		(ROOT, 'ENOTDIR', 'rename', 'f/x', 'y'),
		(ROOT, 'ENAMETOOLONG', 'rename', 'f', LONG)]),
	S('rename_permissions', [D('ro', 0o755), F('ro/f', 0o666), D('rw', 0o777),
				 D('rw/rootdir', 0o755), D('rw/mine', 0o755, U1), D('rw/to', 0o777)], [
		(U1, 'EACCES', 'rename', 'ro/f', 'rw/f'),
		(U1, 'EACCES', 'rename', 'rw/rootdir', 'rw/to/rootdir'),
		(U1, 0, 'rename', 'rw/rootdir', 'rw/rootdir2'),
		(U1, 0, 'rename', 'rw/mine', 'rw/to/mine')]),
	S('rename_sticky', [TOP(0o1777), F('u1f', 0o644, U1), F('u2f', 0o666, U2),
			    F('rootf', 0o666), D('u2d', 0o777, U2)], [
		(U1, 'EPERM', 'rename', 'u2f', 'stolen'),
		(U1, 'EPERM', 'rename', 'u1f', 'u2f'),
		(U1, 'EPERM', 'rename', 'rootf', 'x'),
		(U1, 0, 'rename', 'u1f', 'u1g'),
		(U1, 'EPERM', 'renameat2', 'u1g', 'u2f', RENAME_EXCHANGE),
		(U2, 0, 'rename', 'u2f', 'u2d/f'),
		(ROOT, 0, 'rename', 'u1g', 'rootf')]),
	S('rename_sticky_dir_owner', [D('t', 0o1777, U1), F('t/u2f', 0o644, U2), F('t/u2g', 0o644, U2)], [
		(U1, 0, 'rename', 't/u2f', 't/moved'),
		(U1, 0, 'unlink', 't/u2g')]),
	S('renameat2_noreplace', [F('a', data=b'a'), F('b', data=b'b'), D('d')], [
		(ROOT, 'EEXIST', 'renameat2', 'a', 'b', RENAME_NOREPLACE),
		(ROOT, 'EEXIST', 'renameat2', 'a', 'd', RENAME_NOREPLACE),
		(ROOT, 0, 'renameat2', 'a', 'c', RENAME_NOREPLACE)]),
	S('renameat2_exchange', [F('a', 0o600, data=b'aaaa'), D('d'), F('d/x'), D('e', 0o700)], [
		(ROOT, 0, 'renameat2', 'a', 'd', RENAME_EXCHANGE),
		(ROOT, 0, 'renameat2', 'e', 'a/x', RENAME_EXCHANGE),
		(ROOT, 'ENOENT', 'renameat2', 'e', 'missing', RENAME_EXCHANGE),
		(ROOT, 'EINVAL', 'renameat2', 'e', 'a', RENAME_EXCHANGE | RENAME_NOREPLACE)]),

	# rmdir
	S('rmdir_basic', [D('d'), D('e'), F('e/f'), F('f')], [
		(ROOT, 0, 'rmdir', 'd'),
		(ROOT, 'ENOTEMPTY', 'rmdir', 'e'),
		(ROOT, 'ENOTDIR', 'rmdir', 'f'),
		(ROOT, 'EINVAL', 'rmdir', '.'),
		(ROOT, 'ENOTEMPTY', 'rmdir', 'e/..'),
		(ROOT, 'ENOENT', 'rmdir', 'missing'),
		(ROOT, 'ENOTDIR', 'rmdir', 'f/x')]),
	S('rmdir_permissions', [D('ro', 0o755), D('ro/d'), D('rw', 0o777), D('rw/d'),
				D('t', 0o1777), D('t/u2', 0o755, U2), D('t/u1', 0o755, U1)], [
		(U1, 'EACCES', 'rmdir', 'ro/d'),
		(U1, 0, 'rmdir', 'rw/d'),
		(U1, 'EPERM', 'rmdir', 't/u2'),
		(U1, 0, 'rmdir', 't/u1')]),

	# symlink
	S('symlink_basic', [D('ro', 0o755)], [
		(U1, 0, 'symlink', 'target', 'l'),
		(um(U1, 0o077), 0, 'symlink', '../' * 10 + 'x', 'l2'),
		(U1, 'EEXIST', 'symlink', 'x', 'l'),
		(U1, 'EACCES', 'symlink', 'x', 'ro/l'),
		(U1, 'ENAMETOOLONG', 'symlink', 'x', LONG),
		(U1, 'ENAMETOOLONG', 'symlink', 'x' * 4096, 'toolong'),
		(U1, 0, 'symlink', 'y' * 4095, 'longest'),
		(U1, 'y' * 4095, 'readlink', 'longest'),
		(U1, 'EINVAL', 'readlink', 'ro')]),

	# truncate
	S('truncate_sizes', [F('f', 0o644, U1, data=b'0123456789')], [
		(U1, 0, 'truncate', 'f', 4),
		(U1, 0, 'truncate', 'f', 4),
		(U1, 0, 'truncate', 'f', 100000),
		(U1, 0, 'ftruncate', 'f', 100000),
		(U1, 0, 'ftruncate', 'f', 0)]),
	S('truncate_errors', [F('f', 0o644, U1), D('d', 0o777), F('ro', 0o644)], [
		(U1, 'EINVAL', 'truncate', 'f', -1),
		(U1, 'EINVAL', 'ftruncate', 'f', -1),
		(U1, OnExt4('EFBIG'), 'truncate', 'f', 1 << 50),
		(U1, OnExt4('EFBIG'), 'ftruncate', 'f', 1 << 50),
		(U1, 'EISDIR', 'truncate', 'd', 0),
		(U1, 'EACCES', 'truncate', 'ro', 0),
		(U1, 'EINVAL', 'ftruncate', 'f', 0, RO),
		(ROOT, 0, 'truncate', 'ro', 0)]),
	S('truncate_kills_suid', [F('f', 0o6777, U1), F('g', 0o4777, U1), F('h', 0o2777, U1)], [
		(U2, 0, 'truncate', 'f', 1),
		(U2, 0, 'ftruncate', 'g', 3),
		(U2, 0, 'truncate', 'h', 0),
		(ROOT, 0, 'chmod', 'f', 0o6777),
		(ROOT, 0, 'truncate', 'f', 2)]),

	# unlink
	S('unlink_basic', [F('f', 0o644, U1), HL('f', 'g'), L('l', 'f'), FIFO('p'), D('d')], [
		(U1, 0, 'unlink', 'f'),
		(U1, 0, 'unlink', 'l'),
		(U1, 0, 'unlink', 'p'),
		(U1, 'EISDIR', 'unlink', 'd'),
		(U1, 'ENOENT', 'unlink', 'f'),
		(U1, 'ENOTDIR', 'unlink', 'g/x')]),
	S('unlink_permissions', [D('ro', 0o755), F('ro/f', 0o666), D('t', 0o1777),
				 F('t/u2', 0o666, U2), F('t/u1', 0o600, U1), F('t/root', 0o777),
				 D('t2', 0o1777, U1), F('t2/u2', 0o644, U2)], [
		(U1, 'EACCES', 'unlink', 'ro/f'),
		(U1, 'EPERM', 'unlink', 't/u2'),
		(U1, 'EPERM', 'unlink', 't/root'),
		(U1, 0, 'unlink', 't/u1'),
		(U1, 0, 'unlink', 't2/u2'),
		(U2, 0, 'unlink', 't/u2'),
		(ROOT, 0, 'unlink', 't/root')]),

	# utimensat
	S('utimensat_owner', [F('f', 0o644, U1)], [
		(U1, 0, 'utimensat', 'f', T1, T2),
		(U1, 0, 'utimensat', 'f', UTIME_OMIT, UTIME_OMIT),
		(U1, 0, 'utimensat', 'f', T2, UTIME_OMIT),
		(U1, 0, 'utimensat', 'f', UTIME_OMIT, T1),
		(U1, 0, 'utimensat', 'f', UTIME_NOW, UTIME_OMIT),
		(U1, 0, 'utimensat', 'f', T1, T1),
		(U1, 0, 'utimensat', 'f', UTIME_NOW, UTIME_NOW)]),
	S('utimensat_not_owner', [F('w', 0o666), F('r', 0o644)], [
		(ROOT, 0, 'utimensat', 'w', T1, T1),
		(ROOT, 0, 'utimensat', 'r', T1, T1),
		(U1, 'EPERM', 'utimensat', 'w', T2, T2),
		(U1, 'EPERM', 'utimensat', 'w', UTIME_OMIT, T2),
		(U1, 'EACCES', 'utimensat', 'r', UTIME_NOW, UTIME_NOW),
		(U1, 'EPERM', 'utimensat', 'r', T2, T2),
		(U1, 0, 'utimensat', 'w', UTIME_NOW, UTIME_NOW),
		(ROOT, 0, 'utimensat', 'w', T1, T1),
		(U1, 'EPERM', 'utimensat', 'w', UTIME_NOW, UTIME_OMIT),
		(U1, 0, 'utimensat', 'r', UTIME_OMIT, UTIME_OMIT),
		(ROOT, 0, 'utimensat', 'r', T2, T2)]),
	S('utimensat_extreme_values', [F('f', 0o644, U1), F('g', 0o644, U1)], [
		(U1, 0, 'utimensat', 'f', (-1, 500), (-100000, 0)),
		(U1, 0, 'utimensat', 'g', (1 << 33, 999999999), (5000000000, 1)),
		(U1, 'EINVAL', 'utimensat', 'f', (1, 1000000000), UTIME_OMIT),
		(U1, 'EINVAL', 'utimensat', 'f', UTIME_OMIT, (1, -5))]),
	S('utimensat_symlink_and_fd', [F('f', 0o666), L('l', 'f'), F('mine', 0o444, U1)], [
		(ROOT, 0, 'utimensat', 'l', T1, T2, AT_SYMLINK_NOFOLLOW),
		(ROOT, 0, 'utimensat', 'l', T2, T1),
		(U1, 0, 'futimens', 'f', UTIME_NOW, UTIME_NOW, WO),
		(U1, 'EPERM', 'futimens', 'f', T1, T1, WO),
		(U1, 0, 'futimens', 'mine', T2, T2, RO),
		(ROOT, 0, 'utimensat', 'f', T1, T1)]),
	S('utimensat_dir', [D('d', 0o755, U1), D('w', 0o777)], [
		(U1, 0, 'utimensat', 'd', T1, T2),
		(U1, 0, 'utimensat', 'w', UTIME_NOW, UTIME_NOW),
		(U1, 'EPERM', 'utimensat', 'w', T1, T1)]),

	# access / faccessat
	S('access_other_uids', [F('r600', 0o600), F('r644', 0o644), F('x755', 0o755),
				F('own000', 0o000, U1), F('g070', 0o070, ROOT, G1), F('r666', 0o666),
				D('noexec', 0o666), F('noexec/f', 0o777)], [
		(U1, 'EACCES', 'access', 'r600', os.R_OK),
		(U1, 0, 'access', 'r644', os.R_OK),
		(U1, 'EACCES', 'access', 'r644', os.W_OK),
		(U1, 'EACCES', 'access', 'r644', os.X_OK),
		(U1, 0, 'access', 'x755', os.R_OK | os.X_OK),
		(U1, 'EACCES', 'access', 'own000', os.R_OK),
		(U1, 0, 'access', 'own000', os.F_OK),
		(U1, 0, 'access', 'g070', os.R_OK | os.W_OK | os.X_OK, AT_EACCESS),
		(NOBODY, 'EACCES', 'access', 'g070', os.R_OK, AT_EACCESS),
		(NOBODY, 0, 'access', 'r666', os.W_OK, AT_EACCESS),
		(U1, 'EACCES', 'access', 'noexec/f', os.F_OK),
		(U1, 'ENOENT', 'access', 'missing', os.F_OK),
		(ROOT, 0, 'access', 'own000', os.R_OK | os.W_OK),
		(ROOT, 'EACCES', 'access', 'r644', os.X_OK),
		(ROOT, 0, 'access', 'x755', os.X_OK, AT_EACCESS),
		(ROOT, 0, 'access', 'noexec/f', os.X_OK)]),

	# write and times
	S('write_times_and_suid', [F('f', 0o644, U1, data=b''), F('s', 0o6777, U1),
				   F('sgx', 0o2776, U1), F('mine', 0o4755, U1)], [
		(U1, 4, 'write', 'f', b'abcd'),
		(U1, 2, 'write', 'f', b'xy', WO | APPEND),
		(U1, b'abcdxy', 'read', 'f'),
		(U2, 1, 'write', 's', b'!'),
		(U2, 1, 'write', 'sgx', b'!'),
		(U1, 1, 'write', 'mine', b'!'),
		(U1, 0, 'pwrite_trunc', 'f', b'z')]),
	# Without group execute, set-group-ID is dropped only for a caller
	# outside the file's group (the kernel's rule since Linux 6.2); U1 is
	# in G1, U2 is not.
	S('sgid_without_group_exec', [F('w', 0o2766, U1, G1), F('t', 0o2766, U1, G1),
				      F('o', 0o2766, U1, G1), F('m', 0o2766, ROOT, G1)], [
		(U2, 1, 'write', 'w', b'!'),
		(U2, 0, 'truncate', 't', 0),
		(U2, 0, 'open', 'o', WO | TRUNC),
		(U1, 1, 'write', 'm', b'!'),
		(U1, 0, 'truncate', 'm', 0)]),
	S('open_noatime', [F('f', 0o644), F('mine', 0o644, U1)], [
		(U1, 'EPERM', 'open', 'f', RO | os.O_NOATIME),
		(U1, 0, 'open', 'mine', RO | os.O_NOATIME),
		(ROOT, 0, 'open', 'mine', RO | os.O_NOATIME)]),
	S('open_creat_existing', [D('ro', 0o755), F('ro/f', 0o666, data=b'abc')], [
		(U1, 0, 'open', 'ro/f', CREAT | WO),
		(U1, 'EACCES', 'open', 'ro/g', CREAT | WO),
		(U1, 0, 'open', 'ro/f', CREAT | WO | TRUNC)]),
	S('unlink_while_open', [F('f', 0o666, U1, data=b'hello'), F('g', 0o644, U1), HL('g', 'g2')], [
		(U1, (0, 0, 2, '100600', b'xy'), 'unlinked', 'f'),
		(U1, (1, 1, 2, '100600', b'xy'), 'unlinked', 'g')]),
	S('mmap_write_times', [F('f', 0o666, U1, data=b'0123456789')], [
		(U2, 0, 'mmap_write', 'f', b'abcdefghij'),
		(U2, b'abcdefghij', 'read', 'f')]),
	S('special_files_metadata', [FIFO('p', 0o644, U1)], [
		(ROOT, 0, 'mknod', 'c', stat.S_IFCHR | 0o644, 1, 3),
		(ROOT, 0, 'mknod', 's', stat.S_IFSOCK | 0o644),
		(U1, 0, 'chmod', 'p', 0o600),
		(ROOT, 0, 'chown', 'c', U1.uid, G1),
		(U1, 0, 'chmod', 'c', 0o640),
		(U1, 0, 'utimensat', 'c', T1, T2),
		(ROOT, 0, 'chown', 's', U2.uid, -1),
		(U2, 0, 'utimensat', 's', T2, T1),
		(ROOT, 'EINVAL', 'truncate', 'p', 0),
		(U1, 0, 'link', 'p', 'p2'),
		(U1, 0, 'rename', 'p2', 'p3'),
		(ROOT, 0, 'setxattr', 'c', 'trusted.t', b'v')]),

	# extended attributes and ACLs
	S('xattr_permissions', [F('r644', 0o644), F('r666', 0o666), F('r600', 0o600),
				L('l', 'r666'), FIFO('p', 0o666), D('d', 0o777), D('t', 0o1777),
				XA('r600', 'user.a', b'1')], [
		(U1, 'EACCES', 'setxattr', 'r644', 'user.x', b'1'),
		(U1, 0, 'setxattr', 'r666', 'user.x', b'1'),
		(U1, 'EACCES', 'getxattr', 'r600', 'user.a'),
		(U1, ['user.a'], 'listxattr', 'r600'),
		(U1, 'EPERM', 'setxattr', 'r666', 'trusted.x', b'1'),
		(ROOT, 0, 'setxattr', 'r644', 'trusted.x', b'2'),
		(U1, [], 'listxattr', 'r644'),
		(U1, 'ENODATA', 'getxattr', 'r644', 'trusted.x'),
		(U1, 'EPERM', 'lsetxattr', 'l', 'user.x', b'1'),
		(U1, 'EPERM', 'setxattr', 'p', 'user.x', b'1'),
		(U1, 0, 'setxattr', 'd', 'user.x', b'1'),
		(U1, 'EPERM', 'setxattr', 't', 'user.x', b'1'),
		(U1, 'EEXIST', 'setxattr', 'r666', 'user.x', b'2', XATTR_CREATE),
		(U1, 'ENODATA', 'setxattr', 'r666', 'user.y', b'2', XATTR_REPLACE),
		(U1, 0, 'setxattr', 'r666', 'user.x', b'', XATTR_REPLACE),
		(U1, b'', 'getxattr', 'r666', 'user.x'),
		(U1, 0, 'removexattr', 'r666', 'user.x'),
		(U1, 'ENODATA', 'removexattr', 'r666', 'user.x')]),
	S('acl_set_permissions', [F('f', 0o644), F('mine', 0o640, U1)], [
		(U1, 'EPERM', 'setxattr', 'f', ACL_ACCESS,
		 acl(('u', 'rw'), ('U', 'rw', U1.uid), ('g', 'r'), ('m', 'rw'), ('o', 'r'))),
		(U1, 0, 'setxattr', 'mine', ACL_ACCESS,
		 acl(('u', 'rw'), ('U', 'rw', U2.uid), ('g', 'r'), ('m', 'rw'), ('o', ''))),
		(U2, b'data', 'read', 'mine'),
		(U1, 0, 'chmod', 'mine', 0o600),
		(U2, 'EACCES', 'read', 'mine'),
		(U1, 0, 'removexattr', 'mine', ACL_ACCESS)]),
	S('acl_enforced', [F('grant', 0o600), F('deny', 0o644), F('grp', 0o600),
			   XA('grant', ACL_ACCESS, acl(('u', 'rw'), ('U', 'r', U1.uid), ('g', ''),
							('m', 'r'), ('o', ''))),
			   XA('deny', ACL_ACCESS, acl(('u', 'rw'), ('U', '', U1.uid), ('g', 'r'),
						       ('m', 'r'), ('o', 'r'))),
			   XA('grp', ACL_ACCESS, acl(('u', 'rw'), ('g', ''), ('G', 'rw', G1),
						      ('m', 'rw'), ('o', '')))], [
		(U1, b'data', 'read', 'grant'),
		(U2, 'EACCES', 'read', 'grant'),
		(U1, 'EACCES', 'open', 'grant', WO),
		(U1, 'EACCES', 'read', 'deny'),
		(U2, b'data', 'read', 'deny'),
		(U1, 1, 'write', 'grp', b'!'),
		(NOBODY, 'EACCES', 'read', 'grp'),
		(U1, 0, 'access', 'grant', os.R_OK),
		(U1, 'EACCES', 'access', 'grant', os.W_OK),
		(U1, 'EACCES', 'access', 'deny', os.R_OK)]),
	S('acl_default_inherited', [D('d', 0o777),
				    XA('d', ACL_DEFAULT, acl(('u', 'rwx'), ('U', 'rx', U2.uid),
							     ('g', 'rx'), ('m', 'rwx'), ('o', '')))], [
		(um(U1, 0o077), 0, 'open', 'd/f', CREAT | WO, 0o666),
		(um(U1, 0o077), 0, 'mkdir', 'd/sub', 0o777),
		(um(U1, 0o077), 0, 'mkfifo', 'd/p', 0o640),
		(U2, b'', 'read', 'd/f'),
		(NOBODY, 'EACCES', 'read', 'd/f')]),
	S('append_and_fsync', [F('f', 0o666, data=b'head'), D('d', 0o755)], [
		(U1, 3, 'pwrite_append', 'f', b'END'),
		(U1, b'headEND', 'read', 'f'),
		(U1, 0, 'fsync_dir', 'd'),
		(U1, 0, 'fsync_dir', '.')]),
	S('posix_fallocate', [F('f', 0o666, data=b'abc'), FIFO('p', 0o666)], [
		(U1, 0, 'posix_fallocate', 'f', 0, 100000),
		(U1, 0, 'posix_fallocate', 'f', 10, 5),
		(U1, 'EINVAL', 'posix_fallocate', 'f', 0, 0),
		(U1, 'EINVAL', 'posix_fallocate', 'f', -1, 10),
		(U1, 'EBADF', 'posix_fallocate', 'f', 0, 10, RO),
		(U1, OnExt4('EFBIG'), 'posix_fallocate', 'f', 1 << 50, 4096),
		(U1, 'ESPIPE', 'posix_fallocate', 'p', 0, 10, RW)]),
	# The daemon keeps a bounded cache of descriptors: looking up a crowd of
	# other inodes in between must not change what a process sees.
	S('removed_but_still_used', [D('d', 0o755), F('f', 0o644, data=b'12345'),
				     F('g', 0o644, data=b'12345'), D('crowd')] +
	  [F('crowd/%02d' % i) for i in range(80)], [
		(ROOT, (0, '40700', []), 'removed_dir', 'd', 'crowd'),
		(ROOT, (0, 5), 'opath_unlinked', 'f', 'crowd'),
		(ROOT, (0, '100640', G1, 1000, 4, b'1lat', b'v'), 'open_unlinked_crowd', 'g', 'crowd')]),
	# pjdfstest switches only the effective ids: the real uid stays root
	S('effective_ids_only', [D('d', 0o777), F('r600', 0o600), F('mine', 0o644, EUSER)], [
		(EUSER, 0, 'open', 'd/new', CREAT | WO, 0o640),
		(EUSER, 0, 'mkdir', 'd/dir', 0o755),
		(EUSER, 'EACCES', 'open', 'r600', RO),
		(EUSER, 0, 'access', 'r600', os.R_OK),
		(EUSER, 'EACCES', 'access', 'r600', os.R_OK, AT_EACCESS),
		(EUSER, 'EPERM', 'chown', 'mine', 0, -1),
		(EUSER, 0, 'chown', 'mine', -1, G1),
		(EUSER, 0, 'chmod', 'mine', 0o2755),
		(EUSER, 0, 'utimensat', 'mine', T1, T2),
		(EUSER, 0, 'setxattr', 'mine', 'user.e', b'1')]),
	# A removed inode the kernel still references must not be taken for a
	# new file that the backing fs gave the same inode number.
	S('inode_number_reuse', [D('crowd')] + [F('crowd/%02d' % i) for i in range(80)], [
		(ROOT, ('names sharing the removed inode: []', 0, True),
		 'reuse_after_unlink', 'file', 'crowd'),
		(ROOT, ('names sharing the removed inode: []', 0, True),
		 'reuse_after_unlink', 'dir', 'crowd')]),
	# O_TMPFILE (FUSE_TMPFILE): an unnamed file owned by its creator, with
	# the umask and the directory's set-group-ID applied, that linkat()
	# names unless it was opened O_EXCL
	S('tmpfile', [D('d', 0o777), D('sg', 0o2777, gid=G1), D('ro', 0o755),
		      F('f'), D('crowd')] + [F('crowd/%02d' % i) for i in range(80)], [
		(U1, (0, '100644', 1000, 1000, 5, 1, b'hello'),
		 'tmpfile', 'd', RW, 0o666, b'hello', 'd/named', 'crowd'),
		(um(U1, 0o077), (0, '100600', 1000, 1000, 3), 'tmpfile', 'd', WO, 0o666, b'abc'),
		(U2, (0, '100644', 2001, G1, 2, 1, b'sg'), 'tmpfile', 'sg', RW, 0o644, b'sg', 'sg/n'),
		(ROOT, 'ENOENT', 'tmpfile', 'd', RW | os.O_EXCL, 0o644, b'x', 'd/excl'),
		(U1, 'EACCES', 'tmpfile', 'ro', RW, 0o644, b'x'),
		(U1, 'EINVAL', 'tmpfile', 'd', RO, 0o644, b'x'),
		(U1, 'ENOTDIR', 'tmpfile', 'f', RW, 0o644, b'x'),
		(U1, 'ENOENT', 'tmpfile', 'missing', RW, 0o644, b'x'),
		(U1, 'EEXIST', 'tmpfile', 'd', RW, 0o644, b'x', 'd/named')]),
	S('stat_through_links', [D('d', 0o755, U1, G1), L('l', 'd')], [
		(U1, '40755 1000:2000', 'stat', 'l'),
		(NOBODY, '40755 1000:2000', 'stat', 'l/.')]),
]


# ---- running it ----------------------------------------------------------

def tiny_descriptor_limit():
	"""In the daemon (before exec): 256 descriptors, so that it keeps only
	64 inodes' descriptors and re-opens the others from their handles."""
	resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def mount_configs():
	"""Every backend, plus one with a tiny descriptor cache."""
	configs = [pytest.param((b, None), id=b) for b in backends_under_test()]
	if 'thread' in backends_under_test():
		configs.append(pytest.param(('thread', tiny_descriptor_limit),
					    id='thread-fdcache64'))
	return configs


@pytest.fixture(scope='module', params=mount_configs())
def posix_sides(request):
	"""One caiofs mount per configuration for the whole module, and the raw
	directory next to its source."""
	backend, preexec = request.param
	root = os.environ.get('CAIOFS_TEST_TMPDIR') or tempfile.gettempdir()
	base = tempfile.mkdtemp(prefix='caiofs-posix.', dir=root)
	os.chmod(base, 0o755)
	cls = BindMount if REFERENCE == 'bind' else Mount
	m = cls(base, backend, ['allow_other', 'default_permissions'], preexec_fn=preexec)
	raw = os.path.join(base, 'raw')
	os.mkdir(raw)
	try:
		failure = m.start()
		if failure is not None:
			skip_if_unavailable(backend, failure)
			pytest.fail(failure)
		os.chmod(m.path(), 0o755)
		magic = fs_magic(raw)
		times = magic in DIR_TIMES_FROM_DIR and fine_grained_ctime(raw)
		if not times:
			sys.stderr.write('%s (fs magic %#x): no fine-grained ctime: mtime/ctime '
					 'changes are not compared\n' % (raw, magic or 0))
		yield (m, Side('raw', raw, check_times=times),
		       Side('caiofs', m.path(), m.spath(), check_times=times),
		       magic == EXT4_SUPER_MAGIC)
	finally:
		problems = m.stop()
		m.kill()
		shutil.rmtree(base, ignore_errors=True)
		if problems:
			pytest.fail('\n'.join(problems))


@pytest.fixture
def watched(posix_sides):
	"""Aborts the connection if one scenario hangs (pytest-timeout cannot
	interrupt a process stuck in a FUSE request)."""
	dog = Watchdog(60)
	dog.mounts.append(posix_sides[0])
	try:
		yield posix_sides
	finally:
		dog.cancel()


@pytest.mark.timeout(90)
@pytest.mark.parametrize('sc', SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_posix_diff(watched, sc):
	m, raw, mount, raw_is_ext4 = watched
	want = raw.run(sc)
	got = mount.run(sc)
	compare(sc, want, got, raw_is_ext4)
