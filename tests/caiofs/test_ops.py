# test_ops.py - every passthrough operation through a caiofs mount, checked against the source directory.
import errno
import fcntl
import os
import stat
import socket
import struct
import subprocess
import time

import pytest

from conftest import mounted
from cfsutil import (FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, RENAME_EXCHANGE,
		     RENAME_NOREPLACE, UTIME_NOW, UTIME_OMIT, XATTR_CREATE,
		     XATTR_REPLACE, errname, errno_of, fallocate, futimens, link_follow,
		     getxattr_raw, listxattr_raw, renameat2, utimensat)


def write_file(path, data, mode=0o644):
	fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
	try:
		assert os.write(fd, data) == len(data)
	finally:
		os.close(fd)


def read_file(path):
	with open(path, 'rb') as f:
		return f.read()


def same_attrs(a, b, what):
	"""The attributes a passthrough must show unchanged (inode numbers may differ)."""
	for field in ('st_mode', 'st_nlink', 'st_uid', 'st_gid', 'st_size',
		      'st_mtime_ns', 'st_ctime_ns', 'st_rdev', 'st_blocks'):
		assert getattr(a, field) == getattr(b, field), \
			'%s: %s mount %r != source %r' % (what, field, getattr(a, field),
							  getattr(b, field))


def assert_errno(expected, fn, *args, **kwargs):
	got = errno_of(fn, *args, **kwargs)
	assert got == expected, '%s%r: expected %s, got %s' % (
		getattr(fn, '__name__', fn), args, errname(expected), errname(got))


# --- lookup / getattr -------------------------------------------------------

def test_getattr_matches_source(mnt):
	write_file(mnt.path('f'), b'x' * 12345)
	os.mkdir(mnt.path('d'))
	os.mkdir(mnt.path('d', 'sub'))
	os.symlink('f', mnt.path('l'))
	for name in ('f', 'd', 'd/sub', 'l', '.'):
		same_attrs(os.lstat(mnt.path(name)), os.lstat(mnt.spath(name)), name)
	assert os.stat(mnt.path('d')).st_nlink == 3
	assert stat.S_ISLNK(os.lstat(mnt.path('l')).st_mode)
	assert os.stat(mnt.path('l')).st_size == 12345


def test_lookup_sees_files_created_in_source(mnt):
	write_file(mnt.spath('made-in-source'), b'hello')
	assert read_file(mnt.path('made-in-source')) == b'hello'
	assert sorted(os.listdir(mnt.path())) == ['made-in-source']


def test_distinct_files_have_distinct_inodes(mnt):
	for i in range(20):
		write_file(mnt.path('f%d' % i), b'')
	inos = {os.stat(mnt.path('f%d' % i)).st_ino for i in range(20)}
	assert len(inos) == 20
	assert os.stat(mnt.path('f3')).st_ino == os.stat(mnt.path('f3')).st_ino


# --- setattr ----------------------------------------------------------------

def test_chmod_chown(mnt):
	write_file(mnt.path('f'), b'data')
	for mode in (0o600, 0o755, 0o4711, 0o2750, 0o1777, 0):
		os.chmod(mnt.path('f'), mode)
		assert stat.S_IMODE(os.stat(mnt.path('f')).st_mode) == mode
		assert stat.S_IMODE(os.stat(mnt.spath('f')).st_mode) == mode
	os.chown(mnt.path('f'), 1234, 5678)
	for p in (mnt.path('f'), mnt.spath('f')):
		st = os.stat(p)
		assert (st.st_uid, st.st_gid) == (1234, 5678)
	os.chown(mnt.path('f'), -1, 42)
	assert (os.stat(mnt.spath('f')).st_uid, os.stat(mnt.spath('f')).st_gid) == (1234, 42)
	os.symlink('f', mnt.path('l'))
	os.chown(mnt.path('l'), 77, 88, follow_symlinks=False)
	st = os.lstat(mnt.spath('l'))
	assert (st.st_uid, st.st_gid) == (77, 88)
	assert os.stat(mnt.spath('f')).st_uid == 1234


def test_truncate_path(mnt):
	write_file(mnt.path('f'), b'0123456789')
	os.truncate(mnt.path('f'), 4)
	assert read_file(mnt.path('f')) == b'0123'
	os.truncate(mnt.path('f'), 3 << 20)
	assert os.stat(mnt.path('f')).st_size == 3 << 20
	assert os.stat(mnt.spath('f')).st_size == 3 << 20
	data = read_file(mnt.path('f'))
	assert data[:4] == b'0123' and data[4:] == bytes((3 << 20) - 4)
	os.truncate(mnt.path('f'), 0)
	assert read_file(mnt.spath('f')) == b''


def test_utime_ns(mnt):
	write_file(mnt.path('f'), b'')
	os.utime(mnt.path('f'), ns=(1_000_000_123, 2_000_000_456))
	for p in (mnt.path('f'), mnt.spath('f')):
		st = os.stat(p)
		assert (st.st_atime_ns, st.st_mtime_ns) == (1_000_000_123, 2_000_000_456)


def test_utimensat_now_and_omit(mnt):
	write_file(mnt.path('f'), b'')
	utimensat(mnt.path('f'), (100, 5), (200, 7))
	utimensat(mnt.path('f'), UTIME_OMIT, (300, 9))
	st = os.stat(mnt.spath('f'))
	assert (st.st_atime_ns, st.st_mtime_ns) == (100_000_000_005, 300_000_000_009)
	assert os.stat(mnt.path('f')).st_atime_ns == 100_000_000_005
	utimensat(mnt.path('f'), (400, 0), UTIME_OMIT)
	st = os.stat(mnt.spath('f'))
	assert (st.st_atime_ns, st.st_mtime_ns) == (400_000_000_000, 300_000_000_009)
	before = time.time_ns()
	utimensat(mnt.path('f'), UTIME_OMIT, UTIME_NOW)
	for p in (mnt.path('f'), mnt.spath('f')):
		st = os.stat(p)
		assert st.st_atime_ns == 400_000_000_000
		# file timestamps are taken from the coarse clock: allow one tick
		assert before - 20_000_000 <= st.st_mtime_ns <= time.time_ns() + 20_000_000
	utimensat(mnt.path('f'), UTIME_NOW, UTIME_OMIT)
	st = os.stat(mnt.spath('f'))
	assert st.st_atime_ns >= before - 20_000_000


def test_utime_symlink_nofollow(mnt):
	write_file(mnt.path('f'), b'')
	os.symlink('f', mnt.path('l'))
	os.utime(mnt.path('f'), ns=(5, 5))
	os.utime(mnt.path('l'), ns=(10 ** 9, 3 * 10 ** 9), follow_symlinks=False)
	assert os.lstat(mnt.spath('l')).st_mtime_ns == 3 * 10 ** 9
	assert os.stat(mnt.spath('f')).st_mtime_ns == 5


def test_setattr_through_open_fd(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.write(fd, b'abcdefgh')
		os.ftruncate(fd, 3)
		assert os.fstat(fd).st_size == 3
		os.fchmod(fd, 0o640)
		os.fchown(fd, 11, 22)
		os.utime(fd, ns=(7_000_000_001, 8_000_000_002))
		futimens(fd, UTIME_OMIT, (9, 3))
		st = os.fstat(fd)
		assert stat.S_IMODE(st.st_mode) == 0o640
		assert (st.st_uid, st.st_gid) == (11, 22)
		assert (st.st_atime_ns, st.st_mtime_ns) == (7_000_000_001, 9_000_000_003)
		os.fsync(fd)
	finally:
		os.close(fd)
	st = os.stat(mnt.spath('f'))
	assert st.st_size == 3 and stat.S_IMODE(st.st_mode) == 0o640
	assert (st.st_uid, st.st_gid) == (11, 22)
	assert (st.st_atime_ns, st.st_mtime_ns) == (7_000_000_001, 9_000_000_003)
	assert read_file(mnt.spath('f')) == b'abc'


def test_ftruncate_after_chmod_000(mnt):
	"""A descriptor keeps its access after chmod: the setattr must use the open fh."""
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.fchmod(fd, 0)
		os.write(fd, b'1234567')
		os.ftruncate(fd, 5)
		assert os.pread(fd, 100, 0) == b'12345'
	finally:
		os.close(fd)
	assert read_file(mnt.spath('f')) == b'12345'


def test_ctime_changes(mnt):
	write_file(mnt.path('f'), b'a')
	os.utime(mnt.spath('f'), ns=(0, 0))
	ct = os.stat(mnt.path('f')).st_ctime_ns
	time.sleep(0.01)	# ctime granularity, not synchronisation
	os.chmod(mnt.path('f'), 0o600)
	assert os.stat(mnt.path('f')).st_ctime_ns > ct


# --- symlink / readlink -------------------------------------------------------

def test_symlink_readlink(mnt):
	targets = ['plain', '../up/and/over', '/absolute/path', 'x' * 255,
		   '/'.join(['y' * 200] * 20), 'dangling']
	for i, t in enumerate(targets):
		os.symlink(t, mnt.path('l%d' % i))
		assert os.readlink(mnt.path('l%d' % i)) == t
		assert os.readlink(mnt.spath('l%d' % i)) == t
		assert os.lstat(mnt.path('l%d' % i)).st_size == len(t)
	write_file(mnt.path('target'), b'through the link')
	os.symlink('target', mnt.path('good'))
	assert read_file(mnt.path('good')) == b'through the link'
	assert_errno(errno.ENOENT, os.stat, mnt.path('l5'))
	assert_errno(errno.EEXIST, os.symlink, 'x', mnt.path('good'))
	assert_errno(errno.EINVAL, os.readlink, mnt.path('target'))


def test_symlink_loop(mnt):
	os.symlink('b', mnt.path('a'))
	os.symlink('a', mnt.path('b'))
	assert_errno(errno.ELOOP, os.stat, mnt.path('a'))
	os.symlink('target', mnt.path('l'))
	write_file(mnt.path('target'), b'')
	assert_errno(errno.ELOOP, os.open, mnt.path('l'), os.O_RDONLY | os.O_NOFOLLOW)


# --- mknod --------------------------------------------------------------------

def test_mknod_fifo_roundtrip(mnt):
	os.mkfifo(mnt.path('fifo'), 0o640)
	for p in (mnt.path('fifo'), mnt.spath('fifo')):
		st = os.lstat(p)
		assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o640
	fd = os.open(mnt.path('fifo'), os.O_RDWR | os.O_NONBLOCK)
	try:
		os.write(fd, b'through the pipe')
		assert os.read(fd, 100) == b'through the pipe'
	finally:
		os.close(fd)


def test_mknod_socket(mnt):
	os.mknod(mnt.path('sock'), stat.S_IFSOCK | 0o600)
	assert stat.S_ISSOCK(os.lstat(mnt.spath('sock')).st_mode)
	assert stat.S_ISSOCK(os.lstat(mnt.path('sock')).st_mode)
	# a unix socket bound on the mount is reachable through it
	srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	cli = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	try:
		srv.bind(mnt.path('bound'))
		srv.listen(1)
		assert stat.S_ISSOCK(os.lstat(mnt.spath('bound')).st_mode)
		cli.connect(mnt.path('bound'))
		conn, _ = srv.accept()
		cli.sendall(b'ping')
		assert conn.recv(4) == b'ping'
		conn.close()
	finally:
		cli.close()
		srv.close()


def test_mknod_devices(mnt):
	os.mknod(mnt.path('null'), stat.S_IFCHR | 0o666, os.makedev(1, 3))
	os.mknod(mnt.path('blk'), stat.S_IFBLK | 0o600, os.makedev(7, 200))
	os.mknod(mnt.path('reg'), stat.S_IFREG | 0o600)
	for name, kind, dev in (('null', stat.S_ISCHR, os.makedev(1, 3)),
				('blk', stat.S_ISBLK, os.makedev(7, 200))):
		for p in (mnt.path(name), mnt.spath(name)):
			st = os.lstat(p)
			assert kind(st.st_mode), p
			assert st.st_rdev == dev, p
	assert stat.S_ISREG(os.lstat(mnt.spath('reg')).st_mode)
	assert_errno(errno.EEXIST, os.mknod, mnt.path('null'), stat.S_IFCHR | 0o666,
		     os.makedev(1, 3))


# --- mkdir / rmdir / unlink --------------------------------------------------

def test_mkdir_rmdir_unlink(mnt):
	os.mkdir(mnt.path('d'), 0o750)
	assert stat.S_IMODE(os.stat(mnt.spath('d')).st_mode) == 0o750
	os.makedirs(mnt.path('d', 'a', 'b', 'c'))
	assert os.path.isdir(mnt.spath('d', 'a', 'b', 'c'))
	write_file(mnt.path('d', 'a', 'file'), b'x')
	assert_errno(errno.ENOTEMPTY, os.rmdir, mnt.path('d', 'a'))
	os.unlink(mnt.path('d', 'a', 'file'))
	assert not os.path.exists(mnt.spath('d', 'a', 'file'))
	assert_errno(errno.ENOENT, os.stat, mnt.path('d', 'a', 'file'))
	os.rmdir(mnt.path('d', 'a', 'b', 'c'))
	os.rmdir(mnt.path('d', 'a', 'b'))
	os.rmdir(mnt.path('d', 'a'))
	assert os.listdir(mnt.spath('d')) == []
	assert os.stat(mnt.path('d')).st_nlink == 2
	os.rmdir(mnt.path('d'))
	assert os.listdir(mnt.spath()) == [] and os.listdir(mnt.path()) == []


def test_recreate_same_name(mnt):
	"""A new file under an old name is a new inode with the new content."""
	for i in range(5):
		write_file(mnt.path('f'), b'round %d' % i)
		assert read_file(mnt.path('f')) == b'round %d' % i
		os.unlink(mnt.path('f'))
		os.mkdir(mnt.path('f'))
		assert os.path.isdir(mnt.path('f'))
		os.rmdir(mnt.path('f'))


# --- rename -------------------------------------------------------------------

def test_rename_plain_and_over(mnt):
	write_file(mnt.path('a'), b'A')
	write_file(mnt.path('b'), b'B')
	ino = os.stat(mnt.path('a')).st_ino
	os.rename(mnt.path('a'), mnt.path('c'))
	assert os.stat(mnt.path('c')).st_ino == ino
	assert_errno(errno.ENOENT, os.stat, mnt.path('a'))
	os.rename(mnt.path('c'), mnt.path('b'))
	assert read_file(mnt.path('b')) == b'A'
	assert read_file(mnt.spath('b')) == b'A'
	assert sorted(os.listdir(mnt.spath())) == ['b']
	os.mkdir(mnt.path('d1'))
	os.mkdir(mnt.path('d2'))
	os.rename(mnt.path('b'), mnt.path('d1', 'moved'))
	os.rename(mnt.path('d1'), mnt.path('d2', 'inner'))
	assert read_file(mnt.path('d2', 'inner', 'moved')) == b'A'
	assert read_file(mnt.spath('d2', 'inner', 'moved')) == b'A'
	os.mkdir(mnt.path('empty'))
	os.rename(mnt.path('d2', 'inner'), mnt.path('empty'))
	assert os.listdir(mnt.path('empty')) == ['moved']


def test_rename_noreplace(mnt):
	write_file(mnt.path('a'), b'A')
	write_file(mnt.path('b'), b'B')
	assert_errno(errno.EEXIST, renameat2, mnt.path('a'), mnt.path('b'),
		     RENAME_NOREPLACE)
	assert read_file(mnt.spath('b')) == b'B' and read_file(mnt.spath('a')) == b'A'
	renameat2(mnt.path('a'), mnt.path('c'), RENAME_NOREPLACE)
	assert read_file(mnt.path('c')) == b'A'
	assert sorted(os.listdir(mnt.spath())) == ['b', 'c']


def test_rename_exchange(mnt):
	write_file(mnt.path('a'), b'A')
	os.mkdir(mnt.path('d'))
	write_file(mnt.path('d', 'inside'), b'I')
	ino_a, ino_d = os.stat(mnt.path('a')).st_ino, os.stat(mnt.path('d')).st_ino
	renameat2(mnt.path('a'), mnt.path('d'), RENAME_EXCHANGE)
	assert os.path.isdir(mnt.path('a')) and os.path.isdir(mnt.spath('a'))
	assert read_file(mnt.path('a', 'inside')) == b'I'
	assert read_file(mnt.path('d')) == b'A' and read_file(mnt.spath('d')) == b'A'
	assert os.stat(mnt.path('a')).st_ino == ino_d
	assert os.stat(mnt.path('d')).st_ino == ino_a
	assert_errno(errno.ENOENT, renameat2, mnt.path('a'), mnt.path('nope'),
		     RENAME_EXCHANGE)
	assert_errno(errno.EINVAL, renameat2, mnt.path('a'), mnt.path('d'),
		     RENAME_EXCHANGE | RENAME_NOREPLACE)


def test_rename_errors(mnt):
	os.makedirs(mnt.path('d', 'sub'))
	os.mkdir(mnt.path('full'))
	write_file(mnt.path('full', 'x'), b'')
	write_file(mnt.path('f'), b'')
	assert_errno(errno.EINVAL, os.rename, mnt.path('d'), mnt.path('d', 'sub', 'in'))
	assert_errno(errno.ENOTEMPTY, os.rename, mnt.path('d'), mnt.path('full'))
	assert_errno(errno.EISDIR, os.rename, mnt.path('f'), mnt.path('d'))
	assert_errno(errno.ENOTDIR, os.rename, mnt.path('d'), mnt.path('f'))
	assert_errno(errno.ENOENT, os.rename, mnt.path('missing'), mnt.path('x'))


# --- link ---------------------------------------------------------------------

def test_link_basic(mnt):
	write_file(mnt.path('a'), b'one')
	os.link(mnt.path('a'), mnt.path('b'))
	assert os.stat(mnt.spath('a')).st_ino == os.stat(mnt.spath('b')).st_ino
	assert_errno(errno.EEXIST, os.link, mnt.path('a'), mnt.path('b'))
	os.mkdir(mnt.path('d'))
	assert_errno(errno.EPERM, os.link, mnt.path('d'), mnt.path('d2'))
	assert_errno(errno.ENOENT, os.link, mnt.path('missing'), mnt.path('c'))


# --- O_TMPFILE (more cases, as other users, in test_posix_diff.py) ------------

def test_tmpfile_unnamed_then_linked(mnt):
	os.mkdir(mnt.path('d'))
	fd = os.open(mnt.path('d'), os.O_TMPFILE | os.O_RDWR, 0o600)
	try:
		assert os.write(fd, b'x' * 70000) == 70000
		st = os.fstat(fd)
		assert (st.st_nlink, stat.S_IMODE(st.st_mode), st.st_size) == (0, 0o600, 70000)
		assert os.listdir(mnt.path('d')) == [] and os.listdir(mnt.spath('d')) == []
		os.fsync(fd)
		assert os.pread(fd, 10, 69995) == b'x' * 5
		link_follow('/proc/self/fd/%d' % fd, mnt.path('d', 'kept'))
		assert os.fstat(fd).st_nlink == 1
		assert os.pwrite(fd, b'tail', 70000) == 4
	finally:
		os.close(fd)
	assert read_file(mnt.spath('d', 'kept')) == b'x' * 70000 + b'tail'


def test_tmpfile_leaves_nothing_behind(mount_factory, backend, workdir):
	"""Unnamed files that are closed vanish: no entry in the source, and
	the daemon drops their descriptors once the kernel forgets them."""
	# A source of its own: free space elsewhere moves with other tests.
	src = os.path.join(workdir, 'tmpfile-src')
	os.mkdir(src)
	subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'caiofs-tmpfile', src], check=True)
	try:
		mnt = mount_factory(backend, src=src)
		fds_before = len(os.listdir('/proc/%d/fd' % mnt.pid))
		free_before = os.statvfs(src).f_bfree
		for _ in range(300):
			fd = os.open(mnt.path(), os.O_TMPFILE | os.O_WRONLY, 0o644)
			os.write(fd, b'y' * 65536)
			os.close(fd)
		assert os.listdir(src) == []
		deadline = time.monotonic() + 10
		while len(os.listdir('/proc/%d/fd' % mnt.pid)) > fds_before + 8:
			assert time.monotonic() < deadline, 'daemon kept the descriptors of closed tmpfiles'
			time.sleep(0.05)
		# 300 x 64 KiB would be 4,800 blocks of 4 KiB if they were kept
		assert free_before - os.statvfs(src).f_bfree < 100
		mnt.stop()
	finally:
		if mounted(src):
			subprocess.run(['umount', '-l', src])


def test_tmpfile_errors(mnt):
	write_file(mnt.path('f'), b'')
	assert_errno(errno.ENOTDIR, os.open, mnt.path('f'), os.O_TMPFILE | os.O_RDWR, 0o600)
	assert_errno(errno.ENOENT, os.open, mnt.path('missing'), os.O_TMPFILE | os.O_RDWR, 0o600)
	assert_errno(errno.EINVAL, os.open, mnt.path(), os.O_TMPFILE | os.O_RDONLY, 0o600)
	fd = os.open(mnt.path(), os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
	try:
		assert_errno(errno.ENOENT, link_follow, '/proc/self/fd/%d' % fd, mnt.path('never'))
	finally:
		os.close(fd)
	assert not os.path.lexists(mnt.spath('never'))


# --- open / create flags -------------------------------------------------------

def test_create_excl(mnt):
	fd = os.open(mnt.path('f'), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
	os.close(fd)
	assert stat.S_IMODE(os.stat(mnt.spath('f')).st_mode) == 0o600
	assert_errno(errno.EEXIST, os.open, mnt.path('f'),
		     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
	os.symlink('dangling-target', mnt.path('l'))
	assert_errno(errno.EEXIST, os.open, mnt.path('l'),
		     os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
	assert not os.path.lexists(mnt.spath('dangling-target'))
	fd = os.open(mnt.path('f'), os.O_CREAT | os.O_WRONLY, 0o777)
	os.close(fd)
	assert stat.S_IMODE(os.stat(mnt.path('f')).st_mode) == 0o600


def test_create_applies_umask(mnt):
	old = os.umask(0o027)
	try:
		os.close(os.open(mnt.path('f'), os.O_CREAT | os.O_WRONLY, 0o666))
		os.mkdir(mnt.path('d'), 0o777)
		os.mkfifo(mnt.path('p'), 0o666)
	finally:
		os.umask(old)
	assert stat.S_IMODE(os.stat(mnt.spath('f')).st_mode) == 0o640
	assert stat.S_IMODE(os.stat(mnt.spath('d')).st_mode) == 0o750
	assert stat.S_IMODE(os.stat(mnt.spath('p')).st_mode) == 0o640


def test_open_trunc(mnt):
	write_file(mnt.path('f'), b'long old content')
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_TRUNC)
	try:
		assert os.fstat(fd).st_size == 0
		assert os.read(fd, 100) == b''
		os.write(fd, b'new')
	finally:
		os.close(fd)
	assert read_file(mnt.spath('f')) == b'new'
	assert read_file(mnt.path('f')) == b'new'


def test_open_append(mnt):
	write_file(mnt.path('f'), b'start;')
	fd1 = os.open(mnt.path('f'), os.O_WRONLY | os.O_APPEND)
	fd2 = os.open(mnt.path('f'), os.O_WRONLY | os.O_APPEND)
	try:
		os.write(fd1, b'one;')
		os.lseek(fd2, 0, os.SEEK_SET)
		os.write(fd2, b'two;')
		os.lseek(fd1, 0, os.SEEK_SET)
		os.write(fd1, b'three;')
		assert os.lseek(fd1, 0, os.SEEK_CUR) == len(b'start;one;two;three;')
	finally:
		os.close(fd1)
		os.close(fd2)
	assert read_file(mnt.path('f')) == b'start;one;two;three;'
	assert read_file(mnt.spath('f')) == b'start;one;two;three;'


def test_append_after_other_writer_extends(mnt):
	"""O_APPEND must use the current size, even when another fd just grew it."""
	write_file(mnt.path('f'), b'')
	wfd = os.open(mnt.path('f'), os.O_WRONLY)
	afd = os.open(mnt.path('f'), os.O_WRONLY | os.O_APPEND)
	try:
		for i in range(50):
			os.pwrite(wfd, b'w' * 10, os.fstat(wfd).st_size)
			os.write(afd, b'a%02d' % i)
	finally:
		os.close(wfd)
		os.close(afd)
	expected = b''.join(b'w' * 10 + b'a%02d' % i for i in range(50))
	assert read_file(mnt.spath('f')) == expected


def test_open_errors(mnt):
	os.mkdir(mnt.path('d'))
	write_file(mnt.path('f'), b'')
	assert_errno(errno.ENOENT, os.open, mnt.path('missing'), os.O_RDONLY)
	assert_errno(errno.ENOENT, os.open, mnt.path('nodir', 'f'), os.O_CREAT | os.O_WRONLY)
	assert_errno(errno.EISDIR, os.open, mnt.path('d'), os.O_WRONLY)
	assert_errno(errno.EISDIR, os.open, mnt.path('d'), os.O_RDWR)
	assert_errno(errno.ENOTDIR, os.open, mnt.path('f'), os.O_RDONLY | os.O_DIRECTORY)
	assert_errno(errno.ENOTDIR, os.open, mnt.path('f', 'x'), os.O_RDONLY)
	assert_errno(errno.ENOTDIR, os.mkdir, mnt.path('f', 'x'))


def test_read_write_sizes(mnt):
	import random
	rnd = random.Random(7)
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	model = bytearray()
	try:
		offset = 0
		for size in (1, 7, 4095, 4096, 4097, 65536, 131071, 1 << 20, (1 << 20) + 13, 3 << 20):
			data = rnd.randbytes(size)
			assert os.pwrite(fd, data, offset) == size
			model.extend(bytes(offset - len(model)))
			model[offset:offset + size] = data
			assert os.pread(fd, size, offset) == data
			offset += size + rnd.randrange(5000)
		assert os.fstat(fd).st_size == len(model)
		assert os.pread(fd, 100, len(model)) == b''
		assert os.pread(fd, 100, len(model) - 10) == model[-10:]
		bufs = [bytearray(3), bytearray(5000), bytearray(1 << 16)]
		n = os.preadv(fd, bufs, 10)
		assert n == 3 + 5000 + (1 << 16)
		assert b''.join(bufs) == model[10:10 + n]
		assert os.pwritev(fd, [b'abc', b'defg'], 2) == 7
		model[2:9] = b'abcdefg'
		os.lseek(fd, 0, os.SEEK_SET)
		assert os.read(fd, 9) == model[:9]
	finally:
		os.close(fd)
	assert read_file(mnt.spath('f')) == model
	assert read_file(mnt.path('f')) == model


def test_close_flushes_to_source(mnt):
	fd = os.open(mnt.path('f'), os.O_WRONLY | os.O_CREAT, 0o644)
	os.write(fd, b'z' * 100000)
	os.close(fd)
	assert read_file(mnt.spath('f')) == b'z' * 100000


def test_fsync_fdatasync_fsyncdir(mnt):
	os.mkdir(mnt.path('d'))
	fd = os.open(mnt.path('d', 'f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.write(fd, b'durable')
		os.fsync(fd)
		assert read_file(mnt.spath('d', 'f')) == b'durable'
		os.write(fd, b' and more')
		os.fdatasync(fd)
		assert read_file(mnt.spath('d', 'f')) == b'durable and more'
	finally:
		os.close(fd)
	dfd = os.open(mnt.path('d'), os.O_RDONLY | os.O_DIRECTORY)
	try:
		os.fsync(dfd)
		os.fdatasync(dfd)
	finally:
		os.close(dfd)
	rfd = os.open(mnt.path('d', 'f'), os.O_RDONLY)
	try:
		os.fsync(rfd)	# fsync on a read-only fd is allowed
	finally:
		os.close(rfd)


# --- statfs -------------------------------------------------------------------

def test_statfs_matches_source(mnt):
	a, b = os.statvfs(mnt.path()), os.statvfs(mnt.spath())
	for field in ('f_bsize', 'f_frsize', 'f_blocks', 'f_files', 'f_namemax'):
		assert getattr(a, field) == getattr(b, field), field
	# other writers share the disk: free counts may move a little
	for field in ('f_bfree', 'f_bavail'):
		assert abs(getattr(a, field) - getattr(b, field)) <= max(b.f_blocks // 100, 4096), field
	assert abs(a.f_ffree - b.f_ffree) <= max(b.f_files // 100, 4096)
	os.mkdir(mnt.path('d'))
	assert os.statvfs(mnt.path('d')).f_blocks == b.f_blocks


# --- xattrs -------------------------------------------------------------------

def test_xattr_set_get_list_remove(mnt):
	write_file(mnt.path('f'), b'')
	os.setxattr(mnt.path('f'), 'user.one', b'1')
	os.setxattr(mnt.path('f'), 'user.two', b'\0binary\xff' * 100)
	os.setxattr(mnt.path('f'), 'user.empty', b'')
	assert os.getxattr(mnt.path('f'), 'user.one') == b'1'
	assert os.getxattr(mnt.path('f'), 'user.two') == b'\0binary\xff' * 100
	assert os.getxattr(mnt.path('f'), 'user.empty') == b''
	assert os.getxattr(mnt.spath('f'), 'user.two') == b'\0binary\xff' * 100
	names = sorted(os.listxattr(mnt.path('f')))
	assert names == sorted(os.listxattr(mnt.spath('f')))
	assert {'user.one', 'user.two', 'user.empty'} <= set(names)
	os.removexattr(mnt.path('f'), 'user.one')
	assert 'user.one' not in os.listxattr(mnt.spath('f'))
	assert_errno(errno.ENODATA, os.getxattr, mnt.path('f'), 'user.one')
	assert_errno(errno.ENODATA, os.removexattr, mnt.path('f'), 'user.one')


def test_xattr_flags(mnt):
	write_file(mnt.path('f'), b'')
	os.setxattr(mnt.path('f'), 'user.a', b'first', XATTR_CREATE)
	assert_errno(errno.EEXIST, os.setxattr, mnt.path('f'), 'user.a', b'x', XATTR_CREATE)
	os.setxattr(mnt.path('f'), 'user.a', b'second', XATTR_REPLACE)
	assert os.getxattr(mnt.spath('f'), 'user.a') == b'second'
	assert_errno(errno.ENODATA, os.setxattr, mnt.path('f'), 'user.b', b'x', XATTR_REPLACE)
	assert 'user.b' not in os.listxattr(mnt.spath('f'))


def test_xattr_size_query_and_erange(mnt):
	write_file(mnt.path('f'), b'')
	os.setxattr(mnt.path('f'), 'user.v', b'v' * 3000)
	assert getxattr_raw(mnt.path('f'), 'user.v', 0)[0] == 3000
	assert getxattr_raw(mnt.path('f'), 'user.v', 3000) == (3000, b'v' * 3000)
	assert_errno(errno.ERANGE, getxattr_raw, mnt.path('f'), 'user.v', 10)
	size, _ = listxattr_raw(mnt.path('f'), 0)
	assert size == len(b'user.v\0')
	assert listxattr_raw(mnt.path('f'), size) == (size, b'user.v\0')
	assert_errno(errno.ERANGE, listxattr_raw, mnt.path('f'), 2)


# --- inode flags (chattr, lsattr, xfs_io's fsxattr) -----------------------

FS_IOC_GETFLAGS, FS_IOC_SETFLAGS = 0x80086601, 0x40086602
FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR = 0x801c581f, 0x401c5820
FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL, FS_NOATIME_FL = 0x10, 0x20, 0x40, 0x80
FS_XFLAG_NODUMP, FS_XFLAG_NOATIME = 0x80, 0x40
FSXATTR = struct.Struct('=IIIII8x')	# xflags, extsize, nextents, projid, cowextsize


def inode_flags(path, new=None):
	"""FS_IOC_GETFLAGS on path, or FS_IOC_SETFLAGS to new."""
	fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
	try:
		if new is not None:
			fcntl.ioctl(fd, FS_IOC_SETFLAGS, struct.pack('I', new))
		buf = bytearray(4)
		fcntl.ioctl(fd, FS_IOC_GETFLAGS, buf)
		return struct.unpack('I', buf)[0]
	finally:
		os.close(fd)


def fsxattr(path, xflags=None):
	"""FS_IOC_FSGETXATTR on path, after FS_IOC_FSSETXATTR of xflags if given."""
	fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
	try:
		buf = bytearray(FSXATTR.size)
		if xflags is not None:
			fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
			old = list(FSXATTR.unpack(buf))
			fcntl.ioctl(fd, FS_IOC_FSSETXATTR, FSXATTR.pack(xflags, *old[1:]))
		fcntl.ioctl(fd, FS_IOC_FSGETXATTR, buf)
		return FSXATTR.unpack(buf)
	finally:
		os.close(fd)


def test_inode_flags_match_source(mnt):
	"""lsattr/chattr through the mount read and change the source file's flags,
	for files (the open file's handle) and directories (FUSE_IOCTL_DIR)."""
	write_file(mnt.path('f'), b'data')
	os.mkdir(mnt.path('d'))
	for name in ('f', 'd'):
		base = inode_flags(mnt.spath(name))
		assert inode_flags(mnt.path(name)) == base
		assert inode_flags(mnt.path(name), base | FS_NOATIME_FL) == base | FS_NOATIME_FL
		assert inode_flags(mnt.spath(name)) == base | FS_NOATIME_FL
		assert fsxattr(mnt.path(name)) == fsxattr(mnt.spath(name))
		assert fsxattr(mnt.path(name))[0] & FS_XFLAG_NOATIME
		assert fsxattr(mnt.path(name), fsxattr(mnt.path(name))[0] & ~FS_XFLAG_NOATIME)[0] \
			& FS_XFLAG_NOATIME == 0
		assert inode_flags(mnt.spath(name)) == base
		inode_flags(mnt.spath(name), base | FS_NODUMP_FL)	# changed in the source
		assert inode_flags(mnt.path(name)) == base | FS_NODUMP_FL
		assert fsxattr(mnt.path(name))[0] & FS_XFLAG_NODUMP
	# Other ioctls stay unknown, as on the source.
	for path in (mnt.path('f'), mnt.spath('f')):
		fd = os.open(path, os.O_RDONLY)
		try:
			assert_errno(errno.ENOTTY, fcntl.ioctl, fd, 0x80047877, bytearray(4))
		finally:
			os.close(fd)


def test_immutable_and_append_only_flags_hold(mnt):
	if os.geteuid() != 0:
		pytest.skip('needs CAP_LINUX_IMMUTABLE')
	write_file(mnt.path('f'), b'old')
	os.mkdir(mnt.path('d'))
	write_file(mnt.path('d', 'g'), b'in d')
	base = inode_flags(mnt.path('f'))
	try:
		inode_flags(mnt.path('f'), base | FS_IMMUTABLE_FL)
		assert inode_flags(mnt.spath('f')) & FS_IMMUTABLE_FL
		assert_errno(errno.EPERM, os.open, mnt.path('f'), os.O_WRONLY)
		assert_errno(errno.EPERM, os.unlink, mnt.path('f'))
		assert_errno(errno.EPERM, os.rename, mnt.path('f'), mnt.path('f2'))
		assert_errno(errno.EPERM, os.chmod, mnt.path('f'), 0o600)
		assert_errno(errno.EPERM, os.truncate, mnt.path('f'), 0)
		assert read_file(mnt.path('f')) == b'old'
		inode_flags(mnt.path('f'), base | FS_APPEND_FL)
		assert_errno(errno.EPERM, os.open, mnt.path('f'), os.O_WRONLY)
		fd = os.open(mnt.path('f'), os.O_WRONLY | os.O_APPEND)
		try:
			assert os.write(fd, b'+new') == 4
		finally:
			os.close(fd)
		assert read_file(mnt.spath('f')) == b'old+new'
		inode_flags(mnt.path('d'), inode_flags(mnt.path('d')) | FS_IMMUTABLE_FL)
		assert_errno(errno.EPERM, os.unlink, mnt.path('d', 'g'))
		assert_errno(errno.EPERM, os.mkdir, mnt.path('d', 'sub'))
		assert os.listdir(mnt.spath('d')) == ['g']
	finally:
		for name in ('f', 'd'):
			inode_flags(mnt.spath(name), inode_flags(mnt.spath(name)) &
				    ~(FS_IMMUTABLE_FL | FS_APPEND_FL))
	os.unlink(mnt.path('f'))
	assert not os.path.exists(mnt.spath('f'))


def test_xattr_on_dir_and_symlink(mnt):
	os.mkdir(mnt.path('d'))
	os.setxattr(mnt.path('d'), 'user.dir', b'yes')
	assert os.getxattr(mnt.spath('d'), 'user.dir') == b'yes'
	write_file(mnt.path('f'), b'')
	os.symlink('f', mnt.path('l'))
	os.setxattr(mnt.path('l'), 'user.through', b'link')	# follows to f
	assert os.getxattr(mnt.spath('f'), 'user.through') == b'link'
	expected = errno_of(os.setxattr, mnt.spath('l'), 'user.x', b'1',
			    follow_symlinks=False)
	got = errno_of(os.setxattr, mnt.path('l'), 'user.x', b'1',
		       follow_symlinks=False)
	assert got == expected, 'user xattr on a symlink: source %s, mount %s' % (
		errname(expected), errname(got))


def test_xattr_trusted_as_root(mnt):
	write_file(mnt.path('f'), b'')
	os.setxattr(mnt.path('f'), 'trusted.caiofs', b'root only')
	assert os.getxattr(mnt.spath('f'), 'trusted.caiofs') == b'root only'
	assert os.getxattr(mnt.path('f'), 'trusted.caiofs') == b'root only'


# --- access -------------------------------------------------------------------

def test_access_modes(mnt):
	write_file(mnt.path('rw'), b'', 0o644)
	write_file(mnt.path('x'), b'', 0o744)
	write_file(mnt.path('none'), b'', 0o000)
	assert os.access(mnt.path('rw'), os.F_OK)
	assert os.access(mnt.path('rw'), os.R_OK | os.W_OK)
	assert not os.access(mnt.path('rw'), os.X_OK)	# root needs one x bit
	assert os.access(mnt.path('x'), os.X_OK)
	assert os.access(mnt.path('none'), os.R_OK | os.W_OK)	# root
	assert not os.access(mnt.path('none'), os.X_OK)
	assert not os.access(mnt.path('missing'), os.F_OK)
	assert os.access(mnt.path(), os.R_OK | os.W_OK | os.X_OK)


# --- fallocate / copy_file_range / lseek ------------------------------------------

def test_fallocate_modes(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		fallocate(fd, 0, 0, 1 << 20)
		assert os.fstat(fd).st_size == 1 << 20
		assert os.stat(mnt.spath('f')).st_blocks * 512 >= 1 << 20
		fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20)
		assert os.fstat(fd).st_size == 1 << 20
		assert os.stat(mnt.spath('f')).st_blocks * 512 >= 2 << 20
		os.pwrite(fd, b'\xaa' * (1 << 20), 0)
		blocks = os.stat(mnt.spath('f')).st_blocks
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 65536, 131072)
		assert os.fstat(fd).st_size == 1 << 20
		data = os.pread(fd, 1 << 20, 0)
		assert data[:65536] == b'\xaa' * 65536
		assert data[65536:196608] == bytes(131072)
		assert data[196608:] == b'\xaa' * ((1 << 20) - 196608)
		assert os.stat(mnt.spath('f')).st_blocks <= blocks - 131072 // 512
		# unaligned punch zeroes exactly the range
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 300001, 7)
		assert os.pread(fd, 9, 300000) == b'\xaa' + bytes(7) + b'\xaa'
		assert_errno(errno.EOPNOTSUPP, fallocate, fd, FALLOC_FL_PUNCH_HOLE, 0, 4096)
	finally:
		os.close(fd)
	with open(mnt.spath('f'), 'rb') as f:
		src = f.read()
	assert src[65536:196608] == bytes(131072) and src[300001:300008] == bytes(7)


def test_copy_file_range(mnt):
	import random
	data = random.Random(3).randbytes(3 << 20)
	write_file(mnt.path('a'), data)
	src = os.open(mnt.path('a'), os.O_RDONLY)
	dst = os.open(mnt.path('b'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		done = 0
		while done < len(data):
			n = os.copy_file_range(src, dst, len(data) - done, done, done)
			assert n > 0
			done += n
		n = os.copy_file_range(src, dst, 1000, 12345, (4 << 20) + 1)
		assert n == 1000
		assert os.copy_file_range(src, dst, 100, len(data), 0) == 0	# at EOF
		assert os.fstat(dst).st_size == (4 << 20) + 1001
		assert os.pread(dst, 1000, (4 << 20) + 1) == data[12345:13345]
	finally:
		os.close(src)
		os.close(dst)
	got = read_file(mnt.spath('b'))
	assert got[:len(data)] == data
	assert got[len(data):(4 << 20) + 1] == bytes((4 << 20) + 1 - len(data))
	assert got[(4 << 20) + 1:] == data[12345:13345]


def seek_map(fd, size):
	"""Every SEEK_DATA/SEEK_HOLE answer at 4 KiB steps (errno for ENXIO)."""
	out = []
	for off in range(0, size + 8192, 4096):
		for whence in (os.SEEK_DATA, os.SEEK_HOLE):
			try:
				out.append(os.lseek(fd, off, whence))
			except OSError as e:
				out.append(-e.errno)
	return out


def all_data_seek_map(size):
	"""seek_map of a file the kernel sees as data from 0 to size, no holes."""
	out = []
	for off in range(0, size + 8192, 4096):
		out += [off, size] if off < size else [-errno.ENXIO, -errno.ENXIO]
	return out


def test_seek_data_hole_matches_source(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.pwrite(fd, b'a' * 4096, 0)
		os.pwrite(fd, b'b' * 8192, 256 << 10)
		os.pwrite(fd, b'c' * 100, 1 << 20)
		os.ftruncate(fd, 2 << 20)
		if mnt.writeback:
			# the kernel answers (see test_seek_sees_unflushed_writes)
			assert seek_map(fd, 2 << 20) == all_data_seek_map(2 << 20)
			return
		os.fsync(fd)
		assert os.lseek(fd, 0, os.SEEK_DATA) == 0
		assert os.lseek(fd, 4096, os.SEEK_DATA) == 256 << 10
		assert os.lseek(fd, 0, os.SEEK_HOLE) == 4096
		assert os.lseek(fd, (1 << 20) + 4096, os.SEEK_HOLE) == (1 << 20) + 4096
		assert_errno(errno.ENXIO, os.lseek, fd, (1 << 20) + 4096, os.SEEK_DATA)
		assert_errno(errno.ENXIO, os.lseek, fd, 2 << 20, os.SEEK_HOLE)
		sfd = os.open(mnt.spath('f'), os.O_RDONLY)
		try:
			assert seek_map(fd, 2 << 20) == seek_map(sfd, 2 << 20)
		finally:
			os.close(sfd)
		assert os.lseek(fd, 0, os.SEEK_END) == 2 << 20
		assert os.lseek(fd, -10, os.SEEK_END) == (2 << 20) - 10
	finally:
		os.close(fd)


@pytest.mark.one_backend
def test_seek_sees_unflushed_writes(mount_factory, backend):
	"""With the kernel's writeback cache, data not yet written back is still
	data to SEEK_DATA/SEEK_HOLE, and its end of file is theirs: a sparse
	copy made right after the writes must not leave them out."""
	mnt = mount_factory(backend, ['writeback_cache'])
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.pwrite(fd, b'a' * 4096, 0)
		os.pwrite(fd, b'b' * 4096, 1 << 20)
		size = (1 << 20) + 4096
		assert os.fstat(fd).st_size == size
		for off in (4096, 1 << 20):
			data = os.lseek(fd, off, os.SEEK_DATA)
			assert data <= max(off, 1 << 20)
			assert os.lseek(fd, data, os.SEEK_HOLE) >= (1 << 20) + 4096
		assert os.lseek(fd, 0, os.SEEK_DATA) == 0
		assert_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA)
		assert_errno(errno.ENXIO, os.lseek, fd, size, os.SEEK_HOLE)
		# and after the data reached the source, still the kernel's answers
		os.fsync(fd)
		assert seek_map(fd, size) == all_data_seek_map(size)
	finally:
		os.close(fd)


# --- the mount root and the control channel ---------------------------------------

def test_no_control_file_in_listings(mnt):
	assert os.listdir(mnt.path()) == []
	write_file(mnt.path('f'), b'data')
	assert os.listdir(mnt.path()) == ['f']
	assert os.listdir(mnt.spath()) == ['f']
	with os.scandir(mnt.path()) as it:
		assert [e.name for e in it] == ['f']
	os.unlink(mnt.path('f'))
	assert os.listdir(mnt.path()) == [] and os.listdir(mnt.spath()) == []


# --- names, timestamps, limits ---------------------------------------------------

def test_odd_names(mnt):
	"""Names are bytes: non-UTF-8, newlines, spaces, leading dashes, NFC vs NFD."""
	names = [b'bad\xffname', b'new\nline', b' spaced ', b'-dash', b'back\\slash',
		 b'caf\xc3\xa9', b'cafe\xcc\x81', b'*?[]', b'.hidden', b'...', b'\x01ctl']
	root = os.fsencode(mnt.path())
	for n in names:
		write_file(os.path.join(root, n), n)
	assert sorted(os.listdir(root)) == sorted(names)
	assert sorted(os.listdir(os.fsencode(mnt.spath()))) == sorted(names)
	for n in names:
		assert read_file(os.path.join(root, n)) == n
		os.rename(os.path.join(root, n), os.path.join(root, n + b'.r'))
	assert sorted(os.listdir(os.fsencode(mnt.spath()))) == sorted(n + b'.r' for n in names)


def test_write_updates_mtime(mnt):
	write_file(mnt.path('f'), b'old')
	os.utime(mnt.path('f'), ns=(10 ** 9, 10 ** 9))
	assert os.stat(mnt.path('f')).st_mtime_ns == 10 ** 9
	before = time.time_ns() - 20_000_000
	fd = os.open(mnt.path('f'), os.O_WRONLY | os.O_APPEND)
	try:
		os.write(fd, b' new')
	finally:
		os.close(fd)
	for p in (mnt.path('f'), mnt.spath('f')):
		assert os.stat(p).st_mtime_ns >= before, p
	os.utime(mnt.path('f'), ns=(10 ** 9, 10 ** 9))
	os.truncate(mnt.path('f'), 1)
	assert os.stat(mnt.path('f')).st_mtime_ns >= before


def test_directory_times_follow_changes(mnt):
	os.mkdir(mnt.path('d'))
	old = 10 ** 9
	for op in (lambda: write_file(mnt.path('d', 'f'), b''),
		   lambda: os.rename(mnt.path('d', 'f'), mnt.path('d', 'g')),
		   lambda: os.link(mnt.path('d', 'g'), mnt.path('d', 'h')),
		   lambda: os.unlink(mnt.path('d', 'g')),
		   lambda: os.mkdir(mnt.path('d', 'sub')),
		   lambda: os.rmdir(mnt.path('d', 'sub'))):
		os.utime(mnt.path('d'), ns=(old, old))
		assert os.stat(mnt.path('d')).st_mtime_ns == old
		before = time.time_ns() - 20_000_000
		op()
		st = os.stat(mnt.path('d'))
		assert st.st_mtime_ns >= before and st.st_ctime_ns >= before
		assert st.st_mtime_ns == os.stat(mnt.spath('d')).st_mtime_ns


def test_link_count_and_ctime_after_link(mnt):
	write_file(mnt.path('f'), b'')
	os.utime(mnt.path('f'), ns=(1, 1))
	ctime = os.stat(mnt.path('f')).st_ctime_ns
	time.sleep(0.01)	# ctime granularity, not synchronisation
	os.link(mnt.path('f'), mnt.path('g'))
	st = os.stat(mnt.path('f'))
	assert st.st_nlink == 2 and st.st_ctime_ns > ctime


def test_efbig_matches_source(mnt):
	"""Beyond the backing filesystem's maximum file size: its error, unchanged."""
	huge = 1 << 44		# 16 TiB: beyond ext4's limit with 4 KiB blocks
	results = []
	for path in (mnt.spath('raw'), mnt.path('via')):
		fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
		try:
			results.append((errno_of(os.pwrite, fd, b'x', huge),
					errno_of(os.ftruncate, fd, huge + 1)))
		finally:
			os.close(fd)
	assert results[1] == results[0], 'source %s, mount %s' % (
		[errname(e) for e in results[0]], [errname(e) for e in results[1]])


def test_erofs_from_read_only_source(mount_factory, backend, workdir):
	"""A read-only backing filesystem's EROFS reaches the application."""
	import subprocess
	src = os.path.join(workdir, 'ro-src')
	os.mkdir(src)
	write_file(os.path.join(src, 'f'), b'frozen')
	subprocess.run(['mount', '--bind', src, src], check=True)
	try:
		subprocess.run(['mount', '-o', 'remount,bind,ro', src], check=True)
		m = mount_factory(backend, src=src)
		assert read_file(m.path('f')) == b'frozen'
		assert_errno(errno.EROFS, os.open, m.path('f'), os.O_WRONLY)
		assert_errno(errno.EROFS, os.mkdir, m.path('d'))
		assert_errno(errno.EROFS, os.unlink, m.path('f'))
		assert_errno(errno.EROFS, os.utime, m.path('f'), None)
		m.stop()
	finally:
		subprocess.run(['umount', '-l', src])


def test_xattr_on_special_files_matches_source(mnt):
	os.mkfifo(mnt.path('fifo'))
	os.mknod(mnt.path('chr'), stat.S_IFCHR | 0o600, os.makedev(1, 3))
	for name in ('fifo', 'chr'):
		want = errno_of(os.setxattr, mnt.spath(name), 'user.x', b'1')
		got = errno_of(os.setxattr, mnt.path(name), 'user.y', b'1')
		assert got == want, '%s: source %s, mount %s' % (name, errname(want), errname(got))
		os.setxattr(mnt.path(name), 'trusted.t', b'2')
		assert os.getxattr(mnt.spath(name), 'trusted.t') == b'2'
