# test_scale.py - more remembered inodes than the daemon may open descriptors: no EMFILE, ever.
import os
import resource

import pytest

from test_ops import write_file


def drop_inode_cache():
	"""The kernel forgets unused inodes: the daemon gets FORGETs, then fresh lookups."""
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('2')


def open_fds(pid):
	return len(os.listdir('/proc/%d/fd' % pid))


def check_inode_memory(m, created):
	"""caiofs-stat reports the remembered inodes and their (small) memory."""
	inodes = m.stat_json()['inodes']
	# the kernel may already have forgotten some: count is at most created + root
	assert 1 <= inodes['count'] <= created + 1 + 64, inodes
	# a record is the inode's fields and its file handle (at most 128 bytes)
	assert 64 <= inodes['bytes_per_inode'] <= 512, inodes
	assert inodes['table_bytes'] > 0, inodes
	assert inodes['bytes'] == pytest.approx(
		inodes['bytes_per_inode'] * inodes['count'] + inodes['table_bytes'], abs=inodes['count']), inodes


def tree_roundtrip(m, dirs, per_dir):
	"""Create, stat (twice, with a forget between), list and unlink every file."""
	names = []
	for d in range(dirs):
		os.mkdir(m.path('d%03d' % d))
		for i in range(per_dir):
			name = m.path('d%03d' % d, 'f%05d' % i)
			fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
			os.write(fd, b'%d' % i)
			os.close(fd)
			names.append(name)
	peak_fds = open_fds(m.pid)
	check_inode_memory(m, len(names))
	for name in names:
		assert os.stat(name).st_size >= 1
	drop_inode_cache()
	for i, name in enumerate(names):
		assert os.lstat(name).st_nlink == 1
	for d in range(dirs):
		listing = os.listdir(m.path('d%03d' % d))
		assert len(listing) == per_dir
	assert sum(len(os.listdir(m.spath('d%03d' % d))) for d in range(dirs)) == len(names)
	peak_fds = max(peak_fds, open_fds(m.pid))
	os.mkdir(m.path('still-works'))
	write_file(m.path('still-works', 'f'), b'ok')
	for name in names:
		os.unlink(name)
	for d in range(dirs):
		os.rmdir(m.path('d%03d' % d))
	assert sorted(os.listdir(m.spath())) == ['still-works']
	return peak_fds


@pytest.mark.one_backend
@pytest.mark.timeout(300)
def test_thirty_thousand_files(mnt):
	"""30,000 files with the default descriptor limit (20,000 here)."""
	limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
	count = max(30000, limit + 10000)
	per_dir = 1000
	peak = tree_roundtrip(mnt, count // per_dir, per_dir)
	assert peak < limit, 'the daemon had %d descriptors open' % peak


def lower_fd_limit():
	resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


@pytest.mark.timeout(200)
def test_low_descriptor_limit(mount_factory, backend):
	"""With a 1024-descriptor limit (a common default) the daemon still serves
	4,000 remembered inodes: its bookkeeping never costs the user EMFILE."""
	m = mount_factory(backend, preexec_fn=lower_fd_limit)
	with open('/proc/%d/limits' % m.pid) as f:
		assert any(line.startswith('Max open files') and '1024' in line for line in f)
	peak = tree_roundtrip(m, 4, 1000)
	assert peak < 1024


@pytest.mark.one_backend
@pytest.mark.timeout(200)
def test_many_open_files_at_once(mnt):
	"""Hundreds of files held open at once through the mount all work."""
	fds = []
	try:
		for i in range(500):
			fds.append(os.open(mnt.path('f%d' % i), os.O_RDWR | os.O_CREAT, 0o644))
		for i, fd in enumerate(fds):
			os.write(fd, b'%d' % i)
		for i, fd in enumerate(fds):
			assert os.pread(fd, 10, 0) == b'%d' % i
	finally:
		for fd in fds:
			os.close(fd)
	assert len(os.listdir(mnt.spath())) == 500
