# test_splice.py - large writes spliced from /dev/fuse into the source: their data, the fallbacks, the pipe pool.
import errno
import mmap
import os
import random
import subprocess
import threading

import pytest

from conftest import mounted
from test_fsx import run_fsx

MiB = 1 << 20
PIPE_MAX = '/proc/sys/fs/pipe-max-size'
SPLICE_PIPE = 2 * MiB		# CFS_SPLICE_PIPE_SIZE in loop.c


@pytest.fixture(scope='module')
def big_pipes():
	"""caiofs splices only into pipes that hold the largest request (2 MiB):
	beyond the default pipe-max-size for a daemon without CAP_SYS_RESOURCE,
	as in many containers.  Raise the limit for these tests and put it back."""
	try:
		with open(PIPE_MAX) as f:
			old = int(f.read())
	except OSError as e:
		pytest.skip('no %s: %s' % (PIPE_MAX, e))
	if old < SPLICE_PIPE:
		try:
			with open(PIPE_MAX, 'w') as f:
				f.write(str(SPLICE_PIPE))
		except OSError as e:
			pytest.skip('cannot raise %s to %d: %s' % (PIPE_MAX, SPLICE_PIPE, e))
	try:
		yield
	finally:
		if old < SPLICE_PIPE:
			with open(PIPE_MAX, 'w') as f:
				f.write(str(old))


def spliced(m):
	return m.stat_json()['fuse']['spliced_writes']


def splices_here(m):
	"""With -o fuse_uring requests come from io_uring, never spliced."""
	return not m.stat_json()['fuse']['ring_requests']


def source_bytes(m, name):
	with open(m.spath(name), 'rb') as f:
		return f.read()


def test_spliced_writes_land_intact(mount_factory, backend, big_pipes):
	"""Sequential 1 MiB writes, then large ones at odd offsets and sizes
	(data not page aligned in the kernel either): every byte lands, and
	all but the first of each loop went by splice."""
	m = mount_factory(backend)
	rnd = random.Random(7)
	model = bytearray()
	fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		for i in range(24):
			block = rnd.randbytes(MiB)
			assert os.pwrite(fd, block, i * MiB) == MiB
			model[i * MiB:(i + 1) * MiB] = block
		for _ in range(24):
			off = rnd.randrange(20 * MiB)
			block = rnd.randbytes(rnd.randrange(128 << 10, MiB + 1))
			assert os.pwrite(fd, block, off) == len(block)
			model[off:off + len(block)] = block
		os.fsync(fd)
	finally:
		os.close(fd)
	assert source_bytes(m, 'f') == bytes(model)
	if splices_here(m):
		assert spliced(m) >= 24, 'only %d of 48 large writes were spliced' % spliced(m)


@pytest.mark.one_backend
def test_no_splice_option(mount_factory, backend, big_pipes):
	m = mount_factory(backend, ['no_splice'])
	data = os.urandom(8 * MiB)
	with open(m.path('f'), 'wb') as f:
		for i in range(0, len(data), MiB):
			f.write(data[i:i + MiB])
	assert source_bytes(m, 'f') == data
	assert spliced(m) == 0


def test_append_and_direct_writes_are_not_spliced(mount_factory, backend, big_pipes):
	"""splice(2) refuses an O_APPEND file and O_DIRECT wants aligned memory:
	their large writes are read out of the pipe and written as before."""
	m = mount_factory(backend)
	with open(m.path('warm'), 'wb') as f:	# every loop splicing
		for _ in range(16):
			f.write(os.urandom(MiB))
	before = spliced(m)
	data = os.urandom(6 * MiB + 12345)
	fd = os.open(m.path('app'), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
	try:
		os.write(fd, b'head')
		for i in range(0, len(data), MiB):
			assert os.write(fd, data[i:i + MiB]) == len(data[i:i + MiB])
	finally:
		os.close(fd)
	assert source_bytes(m, 'app') == b'head' + data
	buf = mmap.mmap(-1, MiB)
	fd = os.open(m.path('direct'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
	try:
		for i in range(6):
			buf[:] = data[i * MiB:(i + 1) * MiB]
			assert os.pwritev(fd, [buf], i * MiB) == MiB
	finally:
		os.close(fd)
	assert source_bytes(m, 'direct') == data[:6 * MiB]
	assert spliced(m) == before, 'an O_APPEND or O_DIRECT write was spliced'


@pytest.mark.timeout(180)
def test_parallel_large_writers_outnumber_pipes(mount_factory, backend, big_pipes):
	"""More large writes in flight than a loop has pipes (8): the others
	are read as usual, and all the data lands."""
	m = mount_factory(backend)
	errors = []
	blocks = {i: os.urandom(MiB) for i in range(32)}

	def writer(i):
		try:
			fd = os.open(m.path('w%d' % i), os.O_WRONLY | os.O_CREAT, 0o644)
			try:
				for j in range(8):
					os.pwrite(fd, blocks[(i + j) % 32], j * MiB)
				os.fsync(fd)
			finally:
				os.close(fd)
		except OSError as e:
			errors.append(e)

	threads = [threading.Thread(target=writer, args=(i,)) for i in range(32)]
	for t in threads:
		t.start()
	for t in threads:
		t.join(150)
	assert not errors, errors
	for i in range(32):
		want = b''.join(blocks[(i + j) % 32] for j in range(8))
		assert source_bytes(m, 'w%d' % i) == want, 'w%d differs' % i
	if splices_here(m):
		assert spliced(m) > 0


@pytest.mark.timeout(240)
def test_fsx_with_large_writes(mnt, big_pipes):
	"""Random operations with writes up to 1.1 MiB (spliced or not, at any
	offset) between O_DIRECT, O_APPEND, mmap, truncate and copy_file_range."""
	run_fsx(mnt, int(os.environ.get('CAIOFS_FSX_OPS', 3000)) // 2, 8 << 20,
		max_write=MiB + 100000)


def test_enospc_in_a_spliced_write(mount_factory, backend, workdir, big_pipes):
	"""A full source ends a spliced write short or with ENOSPC: what the
	writer was told was written is what the source holds."""
	src = os.path.join(workdir, 'tiny')
	os.mkdir(src)
	subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=6m', 'caiofs-splice', src], check=True)
	try:
		m = mount_factory(backend, src=src)
		data = os.urandom(12 * MiB)
		done, err = 0, None
		fd = os.open(m.path('fill'), os.O_WRONLY | os.O_CREAT, 0o644)
		try:
			while done < len(data):
				done += os.write(fd, data[done:done + MiB])
		except OSError as e:
			err = e
		finally:
			os.close(fd)
		assert err is not None and err.errno == errno.ENOSPC, \
			'expected ENOSPC, got %r after %d bytes' % (err, done)
		assert 0 < done <= 6 * MiB
		with open(os.path.join(src, 'fill'), 'rb') as f:
			assert f.read(done) == data[:done]
		os.unlink(m.path('fill'))
		m.stop()
		assert not m.problems, m.problems
	finally:
		if mounted(src):
			subprocess.run(['umount', '-l', src])
