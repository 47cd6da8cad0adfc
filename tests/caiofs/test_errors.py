# test_errors.py - error codes reach the application unchanged; NAME_MAX and PATH_MAX limits behave as on the source.
import errno
import os
import subprocess

import pytest

from cfsutil import errname, errno_of
from conftest import skip_if_unavailable
from test_ops import assert_errno, read_file, write_file

NAME_MAX = 255
PATH_MAX = 4096


def test_enoent(mnt):
	for fn, args in ((os.stat, ()), (os.unlink, ()), (os.rmdir, ()),
			 (os.readlink, ()), (os.chmod, (0o644,)), (os.listdir, ()),
			 (os.getxattr, ('user.x',)), (os.truncate, (0,))):
		assert_errno(errno.ENOENT, fn, mnt.path('missing'), *args)
	assert_errno(errno.ENOENT, os.mkdir, mnt.path('missing', 'sub'))
	assert_errno(errno.ENOENT, os.symlink, 'x', mnt.path('missing', 'l'))


def test_eexist(mnt):
	os.mkdir(mnt.path('d'))
	write_file(mnt.path('f'), b'')
	assert_errno(errno.EEXIST, os.mkdir, mnt.path('d'))
	assert_errno(errno.EEXIST, os.mkdir, mnt.path('f'))
	assert_errno(errno.EEXIST, os.mkfifo, mnt.path('f'))
	assert_errno(errno.EEXIST, os.symlink, 'x', mnt.path('d'))
	assert_errno(errno.EEXIST, os.link, mnt.path('f'), mnt.path('d'))


def test_enotempty_eisdir_enotdir(mnt):
	os.makedirs(mnt.path('d', 'sub'))
	write_file(mnt.path('f'), b'')
	assert_errno(errno.ENOTEMPTY, os.rmdir, mnt.path('d'))
	assert_errno(errno.EISDIR, os.unlink, mnt.path('d', 'sub'))
	assert_errno(errno.ENOTDIR, os.rmdir, mnt.path('f'))
	assert_errno(errno.ENOTDIR, os.listdir, mnt.path('f'))
	assert_errno(errno.ENOTDIR, os.stat, mnt.path('f', 'x'))
	assert_errno(errno.EISDIR, os.truncate, mnt.path('d'), 0)
	fd = os.open(mnt.path('d'), os.O_RDONLY)
	try:
		assert_errno(errno.EISDIR, os.read, fd, 10)
	finally:
		os.close(fd)


def test_ebadf_and_einval(mnt):
	write_file(mnt.path('f'), b'data')
	fd = os.open(mnt.path('f'), os.O_RDONLY)
	try:
		assert_errno(errno.EBADF, os.write, fd, b'x')
		assert_errno(errno.EINVAL, os.ftruncate, fd, 0)	# not open for writing
		assert_errno(errno.EINVAL, os.lseek, fd, -1, os.SEEK_SET)
	finally:
		os.close(fd)
	fd = os.open(mnt.path('f'), os.O_WRONLY)
	try:
		assert_errno(errno.EBADF, os.read, fd, 1)
		assert_errno(errno.EINVAL, os.ftruncate, fd, -1)
	finally:
		os.close(fd)
	assert read_file(mnt.spath('f')) == b'data'


def test_exdev_out_of_the_mount(mnt, workdir):
	write_file(mnt.path('f'), b'')
	outside = os.path.join(workdir, 'outside')
	assert_errno(errno.EXDEV, os.rename, mnt.path('f'), outside)
	assert_errno(errno.EXDEV, os.link, mnt.path('f'), outside)


def test_exdev_across_a_source_submount(mount_factory, backend, workdir):
	"""The backing filesystem's EXDEV (a mount inside the source) is passed on."""
	src = os.path.join(workdir, 'exdev-src')
	os.makedirs(os.path.join(src, 'inner'))
	subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=1m', 'caiofs-test',
			os.path.join(src, 'inner')], check=True)
	try:
		m = mount_factory(backend, src=src)
		write_file(m.path('f'), b'x')
		assert_errno(errno.EXDEV, os.rename, m.path('f'), m.path('inner', 'f'))
		assert_errno(errno.EXDEV, os.link, m.path('f'), m.path('inner', 'f'))
		write_file(m.path('inner', 'g'), b'on tmpfs')
		assert read_file(os.path.join(src, 'inner', 'g')) == b'on tmpfs'
		m.stop()
	finally:
		subprocess.run(['umount', '-l', os.path.join(src, 'inner')])


def test_erofs_with_ro_option(mount_factory, backend):
	m = mount_factory(backend, ['ro'], start=False)
	write_file(m.spath('f'), b'read only')
	failure = m.start()
	if failure is not None:
		skip_if_unavailable(backend, failure)
	assert failure is None, failure
	assert read_file(m.path('f')) == b'read only'
	assert_errno(errno.EROFS, os.open, m.path('f'), os.O_WRONLY)
	assert_errno(errno.EROFS, os.open, m.path('new'), os.O_WRONLY | os.O_CREAT)
	assert_errno(errno.EROFS, os.mkdir, m.path('d'))
	assert_errno(errno.EROFS, os.unlink, m.path('f'))
	assert_errno(errno.EROFS, os.chmod, m.path('f'), 0o600)
	assert_errno(errno.EROFS, os.setxattr, m.path('f'), 'user.x', b'1')
	assert os.listdir(m.spath()) == ['f']


def test_name_max(mnt):
	ok = 'n' * NAME_MAX
	write_file(mnt.path(ok), b'longest name')
	assert read_file(mnt.spath(ok)) == b'longest name'
	assert ok in os.listdir(mnt.path())
	os.mkdir(mnt.path('d' * NAME_MAX))
	os.symlink(ok, mnt.path('s' * NAME_MAX))
	assert os.readlink(mnt.path('s' * NAME_MAX)) == ok
	os.rename(mnt.path(ok), mnt.path('r' * NAME_MAX))
	os.link(mnt.path('r' * NAME_MAX), mnt.path('h' * NAME_MAX))
	too_long = 'x' * (NAME_MAX + 1)
	assert_errno(errno.ENAMETOOLONG, os.open, mnt.path(too_long),
		     os.O_CREAT | os.O_WRONLY)
	assert_errno(errno.ENAMETOOLONG, os.stat, mnt.path(too_long))
	assert_errno(errno.ENAMETOOLONG, os.mkdir, mnt.path(too_long))
	assert_errno(errno.ENAMETOOLONG, os.symlink, 'x', mnt.path(too_long))
	assert_errno(errno.ENAMETOOLONG, os.rename, mnt.path('r' * NAME_MAX),
		     mnt.path(too_long))
	assert_errno(errno.ENAMETOOLONG, os.link, mnt.path('r' * NAME_MAX),
		     mnt.path(too_long))
	multibyte = '\u00e9' * (NAME_MAX // 2)	# 254 bytes of UTF-8
	write_file(mnt.path(multibyte), b'utf8')
	assert multibyte in os.listdir(mnt.spath())
	assert sorted(os.listdir(mnt.path())) == sorted(os.listdir(mnt.spath()))


def walk_deep(root_fd, names):
	"""Open the directory chain names below root_fd, creating it; return its fd."""
	fd = os.dup(root_fd)
	for name in names:
		try:
			os.mkdir(name, dir_fd=fd)
		except FileExistsError:
			pass
		nfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
		os.close(fd)
		fd = nfd
	return fd


def test_deep_paths_beyond_path_max(mnt):
	"""Below PATH_MAX by absolute path; beyond it relative to directory fds
	(the daemon must never build absolute paths)."""
	names = ['%02d' % i + 'p' * (NAME_MAX - 2) for i in range(24)]	# ~6 KiB deep
	near = mnt.path()
	i = 0
	while len(near) < PATH_MAX - 200:
		room = min(NAME_MAX, PATH_MAX - 200 - len(near))
		near = os.path.join(near, ('%02d' % i + 'p' * NAME_MAX)[:room])
		i += 1
	os.makedirs(near)
	leaf = os.path.join(near, 'q' * (PATH_MAX - len(near) - 2))
	assert len(leaf) == PATH_MAX - 1
	write_file(leaf, b'near PATH_MAX')
	assert read_file(leaf) == b'near PATH_MAX'
	assert_errno(errno.ENAMETOOLONG, os.stat, leaf + 'zz')
	root = os.open(mnt.path(), os.O_RDONLY | os.O_DIRECTORY)
	try:
		deep = walk_deep(root, names)
	finally:
		os.close(root)
	try:
		fd = os.open('file', os.O_RDWR | os.O_CREAT, 0o644, dir_fd=deep)
		os.write(fd, b'deeper than PATH_MAX')
		os.close(fd)
		os.mkdir('sub', dir_fd=deep)
		os.symlink('renamed', 'link', dir_fd=deep)
		os.rename('file', 'renamed', src_dir_fd=deep, dst_dir_fd=deep)
		os.link('renamed', 'hard', src_dir_fd=deep, dst_dir_fd=deep)
		os.setxattr('/proc/self/fd/%d/renamed' % deep, 'user.deep', b'yes')
		assert os.getxattr('/proc/self/fd/%d/renamed' % deep, 'user.deep') == b'yes'
		assert os.stat('hard', dir_fd=deep).st_nlink == 2
		assert sorted(os.listdir(deep)) == ['hard', 'link', 'renamed', 'sub']
		fd = os.open('link', os.O_RDONLY, dir_fd=deep)
		assert os.read(fd, 100) == b'deeper than PATH_MAX'
		os.close(fd)
	finally:
		os.close(deep)
	sroot = os.open(mnt.spath(), os.O_RDONLY | os.O_DIRECTORY)
	try:
		sdeep = walk_deep(sroot, names)
	finally:
		os.close(sroot)
	try:
		assert sorted(os.listdir(sdeep)) == ['hard', 'link', 'renamed', 'sub']
		fd = os.open('renamed', os.O_RDONLY, dir_fd=sdeep)
		assert os.read(fd, 100) == b'deeper than PATH_MAX'
		os.close(fd)
	finally:
		os.close(sdeep)


def test_deep_chdir_relative(mnt):
	"""A process whose cwd is deeper than PATH_MAX keeps working (relative paths)."""
	code = r'''
import os, sys
os.chdir(sys.argv[1])
for i in range(20):
	name = '%02d' % i + 'c' * 250
	os.mkdir(name)
	os.chdir(name)
with open('leaf', 'w') as f:
	f.write('leaf data')
os.rename('leaf', 'leaf2')
assert open('leaf2').read() == 'leaf data'
os.chdir('..')
assert os.path.isdir('19' + 'c' * 250)
print('ok')
'''
	res = subprocess.run(['/usr/bin/python3', '-c', code, mnt.path()],
			     capture_output=True, text=True, timeout=60)
	assert res.returncode == 0 and res.stdout.strip() == 'ok', res.stderr
	depth = 0
	found = False
	for dirpath, dirs, files, dfd in os.fwalk(mnt.spath()):
		depth += 1
		if 'leaf2' in files:
			fd = os.open('leaf2', os.O_RDONLY, dir_fd=dfd)
			try:
				assert os.read(fd, 100) == b'leaf data'
			finally:
				os.close(fd)
			found = True
	assert found, 'leaf2 not found in the source'
	assert depth == 21
