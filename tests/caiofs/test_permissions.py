# test_permissions.py - allow_other + default_permissions as root: other uids get exactly what the source fs gives them.
import errno
import os
import stat

import pytest

from cfsutil import as_user, errname, errno_of
from test_ops import read_file, write_file

NOBODY = (65534, 65534)
USER1 = (23456, 12345)
USER2 = (23457, 12346)
EXTRA_GROUP = 5000


def build_tree(root):
	"""The same tree, made by root, in the mount and in a raw reference dir."""
	def d(name, mode, uid=0, gid=0):
		os.mkdir(os.path.join(root, name))
		os.chown(os.path.join(root, name), uid, gid)
		os.chmod(os.path.join(root, name), mode)

	def f(name, mode, uid=0, gid=0, data=None):
		path = os.path.join(root, name)
		write_file(path, data if data is not None else name.encode())
		os.chown(path, uid, gid)
		os.chmod(path, mode)

	os.chmod(root, 0o755)
	d('d755', 0o755)
	for mode in (0o600, 0o640, 0o644, 0o666, 0o700, 0o755, 0o000):
		f('d755/r%03o' % mode, mode)
	f('d755/g660', 0o660, 0, USER1[1])
	f('d755/o604', 0o604, USER1[0], 0)	# owner bits deny the owner
	d('d700', 0o700)
	f('d700/f644', 0o644)
	d('d711', 0o711)
	f('d711/f644', 0o644)
	d('d777', 0o777)
	d('t1777', 0o1777)
	f('t1777/u2file', 0o666, *USER2)
	f('t1777/u1file', 0o644, *USER1)
	d('own', 0o755, *USER1)
	f('own/f', 0o600, *USER1)
	d('grp', 0o770, 0, USER1[1])
	f('grp/f', 0o660, 0, USER1[1])
	d('extra', 0o775, 0, EXTRA_GROUP)
	os.symlink('d755/r600', os.path.join(root, 'l600'))
	os.symlink('d755/r644', os.path.join(root, 'l644'))


def battery(root):
	"""Run as the switched user: every result is an errno (0 = success) or data."""
	P = lambda *parts: os.path.join(root, *parts)	# noqa: E731
	out = []

	def attempt(label, fn, *args, **kwargs):
		try:
			res = fn(*args, **kwargs)
			if isinstance(res, list):
				out.append((label, 0, sorted(res)))
			elif isinstance(res, (bytes, str, bool)):
				out.append((label, 0, res))
			else:
				out.append((label, 0))
		except OSError as e:
			out.append((label, errname(e.errno)))

	def read(path):
		with open(path, 'rb') as fh:
			return fh.read()

	def append(path):
		fd = os.open(path, os.O_WRONLY | os.O_APPEND)
		os.write(fd, b'+')
		os.close(fd)

	def create(path, flags=0):
		os.close(os.open(path, os.O_WRONLY | os.O_CREAT | flags, 0o644))

	def owner(path):
		st = os.lstat(path)
		return '%d:%d:%o' % (st.st_uid, st.st_gid, st.st_mode)

	for mode in ('600', '640', '644', '666', '700', '755', '000'):
		attempt('read r' + mode, read, P('d755', 'r' + mode))
		attempt('append r' + mode, append, P('d755', 'r' + mode))
		for bit, name in ((os.R_OK, 'R'), (os.W_OK, 'W'), (os.X_OK, 'X')):
			attempt('access %s r%s' % (name, mode), os.access, P('d755', 'r' + mode), bit)
	attempt('read g660', read, P('d755', 'g660'))
	attempt('append g660', append, P('d755', 'g660'))
	attempt('read o604 (owner denied)', read, P('d755', 'o604'))
	attempt('read via symlink to r600', read, P('l600'))
	attempt('read via symlink to r644', read, P('l644'))
	attempt('listdir d700', os.listdir, P('d700'))
	attempt('stat d700/f644', os.stat, P('d700', 'f644'))
	attempt('listdir d711', os.listdir, P('d711'))
	attempt('read d711/f644', read, P('d711', 'f644'))
	attempt('create in d755', create, P('d755', 'new'))
	attempt('mkdir in d755', os.mkdir, P('d755', 'newdir'))
	attempt('unlink d755/r666', os.unlink, P('d755', 'r666'))
	attempt('rename d755/r666', os.rename, P('d755', 'r666'), P('d777', 'stolen'))
	attempt('chmod r644', os.chmod, P('d755', 'r644'), 0o666)
	attempt('chown r666 to self', os.chown, P('d755', 'r666'), os.getuid(), -1)
	attempt('truncate r666', os.truncate, P('d755', 'r666'), 1)
	attempt('truncate r644', os.truncate, P('d755', 'r644'), 1)
	attempt('utime now r666', os.utime, P('d755', 'r666'), None)
	attempt('utime now r644', os.utime, P('d755', 'r644'), None)
	attempt('utime set r666', os.utime, P('d755', 'r666'), ns=(1, 1))
	attempt('setxattr r644', os.setxattr, P('d755', 'r644'), 'user.u', b'1')
	attempt('setxattr r666', os.setxattr, P('d755', 'r666'), 'user.u', b'1')
	attempt('getxattr r600', os.getxattr, P('d755', 'r600'), 'user.nothing')
	attempt('create in d777', create, P('d777', 'mine'))
	attempt('owner of created file', owner, P('d777', 'mine'))
	attempt('create excl again', create, P('d777', 'mine'), os.O_EXCL)
	attempt('mkdir in d777', os.mkdir, P('d777', 'mydir'), 0o777)
	attempt('owner of created dir', owner, P('d777', 'mydir'))
	attempt('symlink in d777', os.symlink, 'target', P('d777', 'mylink'))
	attempt('owner of symlink', owner, P('d777', 'mylink'))
	attempt('mkfifo in d777', os.mkfifo, P('d777', 'myfifo'), 0o666)
	attempt('owner of fifo', owner, P('d777', 'myfifo'))
	attempt('mknod chr as user', os.mknod, P('d777', 'mychr'), stat.S_IFCHR | 0o666,
		os.makedev(1, 3))
	attempt('hardlink own file', os.link, P('d777', 'mine'), P('d777', 'mine2'))
	attempt('hardlink root r644', os.link, P('d755', 'r644'), P('d777', 'r644link'))
	attempt('hardlink root r666', os.link, P('d755', 'r666'), P('d777', 'r666link'))
	attempt('chown own to root', os.chown, P('d777', 'mine'), 0, -1)
	attempt('chgrp own to root group', os.chown, P('d777', 'mine'), -1, 0)
	attempt('chgrp own to extra group', os.chown, P('d777', 'mine'), -1, EXTRA_GROUP)
	attempt('owner after chgrp', owner, P('d777', 'mine'))
	attempt('chmod own setgid', os.chmod, P('d777', 'mine'), 0o2755)
	attempt('mode after chmod', owner, P('d777', 'mine'))
	attempt('utime set own', os.utime, P('d777', 'mine'), ns=(5, 5))
	attempt('unlink other user in sticky dir', os.unlink, P('t1777', 'u2file'))
	attempt('rename other user in sticky dir', os.rename, P('t1777', 'u2file'),
		P('t1777', 'moved'))
	attempt('O_CREAT other user file in sticky dir', create, P('t1777', 'u2file'))
	attempt('unlink own in sticky dir', os.unlink, P('t1777', 'u1file'))
	attempt('read own/f', read, P('own', 'f'))
	attempt('chmod own/f', os.chmod, P('own', 'f'), 0o644)
	attempt('read grp/f', read, P('grp', 'f'))
	attempt('create in grp', create, P('grp', 'new'))
	attempt('owner in grp', owner, P('grp', 'new'))
	attempt('create in extra (via supplementary group)', create, P('extra', 'new'))
	attempt('owner in extra', owner, P('extra', 'new'))
	return out


def compare_battery(mount_root, raw_root, uid, gid, groups):
	got = as_user(uid, gid, battery, mount_root, groups=groups)
	want = as_user(uid, gid, battery, raw_root, groups=groups)
	diffs = ['%s: mount %r, source fs %r' % (w[0], g[1:], w[1:])
		 for g, w in zip(got, want) if g != w]
	assert len(got) == len(want)
	assert not diffs, 'as uid %d gid %d:\n  %s' % (uid, gid, '\n  '.join(diffs))
	return got


@pytest.mark.parametrize('who', ['nobody', 'user1'])
@pytest.mark.parametrize('checks', ['default_permissions', 'daemon'])
def test_permissions_match_source_fs(mount_factory, backend, workdir, who, checks):
	"""With default_permissions the kernel checks; without it the daemon must
	(acting as the caller): either way the outcome is the source fs's."""
	options = ['allow_other'] + (['default_permissions'] if checks == 'default_permissions' else [])
	mnt_shared = mount_factory(backend, options)
	uid, gid = NOBODY if who == 'nobody' else USER1
	groups = [EXTRA_GROUP] if who == 'user1' else []
	raw = os.path.join(workdir, 'raw-reference')
	os.mkdir(raw)
	build_tree(mnt_shared.path())
	build_tree(raw)
	results = dict((r[0], r[1:]) for r in compare_battery(mnt_shared.path(), raw, uid, gid, groups))
	# the essentials, stated explicitly as well
	assert results['read r600'] == ('EACCES',)
	assert results['read r644'] == (0, b'd755/r644')
	assert results['owner of created file'] == (0, '%d:%d:100644' % (uid, gid))
	assert results['owner of created dir'] == (0, '%d:%d:40755' % (uid, gid))
	# the files as the source sees them: owned by the caller
	for name in ('mydir', 'mylink', 'myfifo'):
		st = os.lstat(mnt_shared.spath('d777', name))
		assert (st.st_uid, st.st_gid) == (uid, gid), name


def test_setgid_directory_inheritance(mnt_shared, workdir):
	"""A setgid directory gives new entries its group, as on a local fs."""
	raw = os.path.join(workdir, 'raw-sgid')
	os.mkdir(raw)
	for root in (mnt_shared.path(), raw):
		os.mkdir(os.path.join(root, 'sg'))
		os.chown(os.path.join(root, 'sg'), 0, 4242)
		os.chmod(os.path.join(root, 'sg'), 0o2777)

	def make(root):
		os.close(os.open(os.path.join(root, 'sg', 'f'), os.O_CREAT | os.O_WRONLY, 0o666))
		os.mkdir(os.path.join(root, 'sg', 'sub'), 0o777)
		out = []
		for name in ('f', 'sub'):
			st = os.stat(os.path.join(root, 'sg', name))
			out.append((name, st.st_uid, st.st_gid, oct(st.st_mode)))
		return out

	got = as_user(*USER1, make, mnt_shared.path())
	want = as_user(*USER1, make, raw)
	assert got == want
	assert got[0][2] == 4242 and got[1][3] == oct(stat.S_IFDIR | 0o2755)
	st = os.stat(mnt_shared.spath('sg', 'sub'))
	assert st.st_gid == 4242 and st.st_mode & stat.S_ISGID


def test_write_clears_setuid(mnt_shared):
	"""Writing to a setuid file as another user drops the setuid bit."""
	write_file(mnt_shared.path('suid'), b'prog', 0o4777)
	os.chmod(mnt_shared.path('suid'), 0o4777)

	def scribble(path):
		fd = os.open(path, os.O_WRONLY | os.O_APPEND)
		os.write(fd, b'!')
		os.close(fd)

	as_user(*USER1, scribble, mnt_shared.path('suid'))
	assert not os.stat(mnt_shared.spath('suid')).st_mode & stat.S_ISUID
	assert not os.stat(mnt_shared.path('suid')).st_mode & stat.S_ISUID
	assert read_file(mnt_shared.spath('suid')) == b'prog!'


def test_user_fd_keeps_access_after_chmod(mnt_shared):
	os.chmod(mnt_shared.path(), 0o777)

	def work(root):
		path = os.path.join(root, 'f')
		fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
		os.fchmod(fd, 0)
		os.write(fd, b'abcdef')
		os.ftruncate(fd, 4)
		os.utime(fd, ns=(3, 3))
		data = os.pread(fd, 10, 0)
		os.close(fd)
		denied = errno_of(os.open, path, os.O_RDONLY)
		return data, denied

	data, denied = as_user(*USER1, work, mnt_shared.path())
	assert data == b'abcd'
	assert denied == errno.EACCES
	st = os.stat(mnt_shared.spath('f'))
	assert (st.st_uid, st.st_size, st.st_mtime_ns) == (USER1[0], 4, 3)


def test_root_file_not_readable_with_allow_other_alone(mount_factory, backend):
	"""Even without default_permissions, allow_other must not let a user read
	what the source filesystem denies them."""
	m = mount_factory(backend, ['allow_other'])
	os.chmod(m.path(), 0o755)
	write_file(m.path('secret'), b'secret', 0o600)
	write_file(m.path('public'), b'public', 0o644)

	def probe(root):
		return (errno_of(os.open, os.path.join(root, 'secret'), os.O_RDONLY),
			errno_of(os.open, os.path.join(root, 'public'), os.O_WRONLY),
			errno_of(os.open, os.path.join(root, 'new'), os.O_WRONLY | os.O_CREAT))

	assert as_user(*NOBODY, probe, m.path()) == (errno.EACCES, errno.EACCES, errno.EACCES)
	assert sorted(os.listdir(m.spath())) == ['public', 'secret']


@pytest.mark.parametrize('options', [['allow_other', 'default_permissions'], ['allow_other']])
def test_inode_flags_as_other_user(mount_factory, backend, workdir, options):
	"""chattr through the mount as a user: the owner may change the ordinary
	flags but not immutable or append-only, nobody else may change any,
	exactly as on the source filesystem (the daemon itself is root)."""
	from test_ops import FS_APPEND_FL, FS_IMMUTABLE_FL, FS_NOATIME_FL, inode_flags
	m = mount_factory(backend, options)
	raw = os.path.join(workdir, 'raw-flags')
	os.mkdir(raw)
	for root in (m.path(), raw):
		os.chmod(root, 0o755)
		write_file(os.path.join(root, 'mine'), b'mine', 0o644)
		os.chown(os.path.join(root, 'mine'), *USER1)
		write_file(os.path.join(root, 'roots'), b'roots', 0o644)

	def attempt(root):
		out = []
		for name in ('mine', 'roots'):
			path = os.path.join(root, name)
			base = inode_flags(path)
			for flag in (FS_NOATIME_FL, FS_IMMUTABLE_FL, FS_APPEND_FL):
				out.append((name, flag, errno_of(inode_flags, path, base | flag)))
				errno_of(inode_flags, path, base)
		return out

	got = as_user(*USER1, attempt, m.path())
	assert got == as_user(*USER1, attempt, raw)
	assert got == [('mine', FS_NOATIME_FL, 0), ('mine', FS_IMMUTABLE_FL, errno.EPERM),
		       ('mine', FS_APPEND_FL, errno.EPERM), ('roots', FS_NOATIME_FL, errno.EPERM),
		       ('roots', FS_IMMUTABLE_FL, errno.EPERM), ('roots', FS_APPEND_FL, errno.EPERM)]
	for name in ('mine', 'roots'):
		assert inode_flags(m.spath(name)) & (FS_IMMUTABLE_FL | FS_APPEND_FL) == 0
