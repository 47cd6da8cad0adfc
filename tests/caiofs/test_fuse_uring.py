# test_fuse_uring.py - -o fuse_uring: FUSE requests through io_uring, and its fallbacks to /dev/fuse.
import errno
import mmap
import os
import random

import pytest

from conftest import configured
from test_ops import read_file, write_file

ENABLE = '/sys/module/fuse/parameters/enable_uring'
MiB = 1 << 20

pytestmark = [
	pytest.mark.skipif(not os.path.exists(ENABLE) or os.geteuid() != 0,
			   reason='needs root and a kernel with FUSE over io_uring '
			   '(CONFIG_FUSE_IO_URING, 6.14+)'),
	# test_daemon.py checks that such a build refuses -o fuse_uring
	pytest.mark.skipif(not configured('HAVE_LIBURING'),
			   reason='caiofs was built without liburing'),
]


@pytest.fixture
def uring_param():
	"""set(value) writes the kernel's enable_uring switch; the old value
	comes back after the test."""
	with open(ENABLE) as f:
		old = f.read().strip()

	def set_value(on):
		with open(ENABLE, 'w') as f:
			f.write('1' if on else '0')

	yield set_value
	with open(ENABLE, 'w') as f:
		f.write('1' if old in ('Y', '1') else '0')


def fuse_counts(m):
	return m.stat_json()['fuse']


def direct_read(path, off, size):
	"""pread with O_DIRECT into a page-aligned buffer."""
	buf = mmap.mmap(-1, size)
	fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
	try:
		n = os.preadv(fd, [buf], off)
		return bytes(buf[:n])
	finally:
		os.close(fd)
		buf.close()


def test_requests_come_through_the_ring(mount_factory, backend, uring_param):
	"""Data of every size, O_DIRECT, metadata and directory listings arrive
	through ring entries, and every answer is right."""
	uring_param(True)
	m = mount_factory(backend, ['fuse_uring'])
	rnd = random.Random(42)
	data = rnd.randbytes(3 * MiB + 12345)
	write_file(m.path('big'), data)
	assert read_file(m.path('big')) == data
	assert read_file(m.spath('big')) == data
	# A write as large as the entry's payload, and reads across entries.
	with open(m.path('big'), 'r+b') as f:
		f.seek(MiB - 1)
		f.write(b'\xab' * MiB)
		f.flush()
	data = data[:MiB - 1] + b'\xab' * MiB + data[2 * MiB - 1:]
	assert read_file(m.spath('big')) == data
	for off, size in ((0, 4096), (MiB, 65536), (3 * MiB, 12288), (2 * MiB - 4096, MiB)):
		assert direct_read(m.path('big'), off, size) == data[off:off + size], (off, size)
	# Metadata: names, renames, links, xattrs and a listing of many entries.
	os.mkdir(m.path('d'))
	names = ['n%04d-%s' % (i, 'x' * (i % 200)) for i in range(600)]
	for n in names:
		write_file(m.path('d', n), n.encode())
	assert sorted(os.listdir(m.path('d'))) == sorted(names)
	os.rename(m.path('d', names[0]), m.path('d', 'renamed'))
	os.link(m.path('d', 'renamed'), m.path('d', 'hard'))
	assert os.stat(m.path('d', 'hard')).st_nlink == 2
	os.setxattr(m.path('big'), 'user.k', b'v' * 300)
	assert os.getxattr(m.path('big'), 'user.k') == b'v' * 300
	os.symlink('t' * 4000, m.path('long'))
	assert os.readlink(m.path('long')) == 't' * 4000
	with pytest.raises(FileNotFoundError):
		os.stat(m.path('missing'))
	with pytest.raises(OSError) as e:
		os.rmdir(m.path('d'))
	assert e.value.errno == errno.ENOTEMPTY
	counts = fuse_counts(m)
	assert counts['uring_requested'] is True
	# Over a thousand requests went to the daemon; nearly all must have
	# come through the ring (only FORGETs and the INIT use /dev/fuse).
	assert counts['ring_requests'] > 1000, counts
	assert counts['ring_requests'] > 10 * counts['device_requests'], counts
	assert counts['ring_commands'] >= counts['ring_requests'], counts
	assert 0 < counts['ring_submits'] <= counts['ring_commands'], counts
	assert 'does not offer' not in m.log() and 'no io_uring' not in m.log(), m.log()


def test_sigterm_while_requests_are_in_flight(mount_factory, uring_param):
	"""SIGTERM while readers keep ring entries busy: the mount is detached,
	the readers' data stays right until they close, and the daemon then
	exits cleanly (no entry left behind blocks it)."""
	import signal
	import threading
	import time
	uring_param(True)
	m = mount_factory('uring', ['fuse_uring'])
	data = random.Random(7).randbytes(4 * MiB)
	write_file(m.spath('f'), data)
	stop = threading.Event()
	errors, reads = [], [0]

	def reader(seed):
		rnd = random.Random(seed)
		buf = mmap.mmap(-1, 65536)
		fd = os.open(m.path('f'), os.O_RDONLY | os.O_DIRECT)
		try:
			while not stop.is_set():
				off = rnd.randrange(0, len(data) // 4096) * 4096
				n = os.preadv(fd, [buf], off)
				if bytes(buf[:n]) != data[off:off + n]:
					errors.append(off)
				reads[0] += 1
		except OSError as e:
			errors.append(e)
		finally:
			os.close(fd)
			buf.close()

	threads = [threading.Thread(target=reader, args=(i,)) for i in range(4)]
	for t in threads:
		t.start()
	deadline = time.monotonic() + 10
	while reads[0] < 200 and time.monotonic() < deadline:
		time.sleep(0.01)	# bounded: until the readers are busy
	m.proc.send_signal(signal.SIGTERM)
	time.sleep(0.3)
	stop.set()
	for t in threads:
		t.join()
	assert not errors, errors[:5]
	problems = m.stop()
	assert not problems, problems
	assert m.proc.returncode == 0


def test_falls_back_when_the_kernel_does_not_offer_it(mount_factory, uring_param):
	"""enable_uring off: a warning, then every request through /dev/fuse."""
	uring_param(False)
	m = mount_factory('uring', ['fuse_uring'])
	write_file(m.path('f'), b'through /dev/fuse')
	assert read_file(m.spath('f')) == b'through /dev/fuse'
	counts = fuse_counts(m)
	assert counts['ring_requests'] == 0, counts
	assert counts['device_requests'] > 0, counts
	assert 'does not offer FUSE over io_uring' in m.log(), m.log()


def test_falls_back_without_io_uring(mount_factory, uring_param):
	"""io_uring blocked by seccomp: the thread backend, /dev/fuse, a warning."""
	from cfsutil import deny_syscalls
	uring_param(True)
	m = mount_factory('thread', ['fuse_uring'], preexec_fn=deny_syscalls(425))
	write_file(m.path('f'), b'no ring')
	assert read_file(m.spath('f')) == b'no ring'
	assert fuse_counts(m)['ring_requests'] == 0
	assert 'no io_uring for FUSE requests' in m.log(), m.log()


def test_depth_option(mount_factory, uring_param):
	"""fuse_uring_depth=1 (one entry per CPU queue in all) still serves
	many concurrent clients, queued in the kernel."""
	import threading
	uring_param(True)
	m = mount_factory('uring', ['fuse_uring', 'fuse_uring_depth=1', 'threads=1'])
	errors = []

	def worker(i):
		try:
			for j in range(20):
				p = m.path('w%d-%d' % (i, j))
				write_file(p, b'%d' % (i * j) * 1000)
				if read_file(p) != b'%d' % (i * j) * 1000:
					errors.append(p)
		except OSError as e:
			errors.append(e)

	threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
	for t in threads:
		t.start()
	for t in threads:
		t.join()
	assert not errors, errors
	assert fuse_counts(m)['ring_requests'] > 8 * 20


def test_depth_out_of_range_is_refused(workdir):
	import subprocess
	from conftest import CAIOFS
	os.makedirs(os.path.join(workdir, 's'))
	os.makedirs(os.path.join(workdir, 'm'))
	res = subprocess.run([CAIOFS, '-f', '-o', 'fuse_uring_depth=5000',
			      os.path.join(workdir, 's'), os.path.join(workdir, 'm')],
			     capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
	assert res.returncode != 0
	assert 'fuse_uring_depth' in res.stderr, res.stderr
