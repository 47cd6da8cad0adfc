# test_integrity.py - data integrity through caiofs on every backend: fio verify, stress-ng's file system stressors, a multi-process fsx-like stress, mmap vs read(), O_DIRECT alignment against the raw fs.
import errno
import json
import mmap
import os
import pickle
import random
import select
import shutil
import signal
import stat
import subprocess
import tempfile

import pytest

from cfsutil import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, errname, fallocate
from conftest import (REFERENCE, BindMount, Mount, Watchdog, backends_under_test,
		      kernel_has_aio, kernel_has_uring, skip_if_unavailable)
from test_ops import FS_APPEND_FL, FS_IMMUTABLE_FL, inode_flags

MiB = 1 << 20
FALLOC_FL_ZERO_RANGE = 0x10
FIO = shutil.which('fio')
USER = (1000, 1000)


def mount_configs():
	"""Every backend, plus the kernel's writeback cache on one of them."""
	configs = [pytest.param((b, ()), id=b) for b in backends_under_test()]
	if 'thread' in backends_under_test():
		configs.append(pytest.param(('thread', ('writeback_cache',)),
					    id='thread-writeback'))
	return configs


@pytest.fixture(scope='module', params=mount_configs())
def shared(request):
	"""One caiofs mount per configuration (allow_other,default_permissions,
	as the external suites use it) and a raw directory next to its source."""
	backend, extra = request.param
	root = os.environ.get('CAIOFS_TEST_TMPDIR') or tempfile.gettempdir()
	base = tempfile.mkdtemp(prefix='caiofs-integrity.', dir=root)
	os.chmod(base, 0o755)
	cls = BindMount if REFERENCE == 'bind' else Mount
	m = cls(base, backend, ['allow_other', 'default_permissions'] + list(extra))
	raw = os.path.join(base, 'raw')
	os.mkdir(raw)
	try:
		failure = m.start()
		if failure is not None:
			skip_if_unavailable(backend, failure)
			pytest.fail(failure)
		os.chmod(m.path(), 0o777)
		yield m, raw
	finally:
		problems = m.stop()
		m.kill()
		shutil.rmtree(base, ignore_errors=True)
		if problems:
			pytest.fail('\n'.join(problems))


@pytest.fixture
def mnt_dir(shared, request):
	"""A fresh directory in the mount for one test, and a watchdog that
	aborts the connection if the test hangs in a FUSE request."""
	m, raw = shared
	name = request.node.name.replace('/', '_')
	os.mkdir(m.path(name), 0o777)
	os.chmod(m.path(name), 0o777)
	dog = Watchdog(80)
	dog.mounts.append(m)
	try:
		yield m, m.path(name), m.spath(name), raw
	finally:
		dog.cancel()


# ---- fio with verification -----------------------------------------------

FIO_CASES = [('psync', 0), ('psync', 1), ('libaio', 0), ('libaio', 1), ('io_uring', 1)]


@pytest.mark.timeout(100)
@pytest.mark.parametrize('engine,direct', FIO_CASES,
			 ids=['%s-%s' % (e, 'direct' if d else 'buffered') for e, d in FIO_CASES])
def test_fio_verify(mnt_dir, engine, direct):
	"""Random writes by two jobs, then every block read back and checked
	(crc32c header per block, first mismatch fatal)."""
	if FIO is None:
		pytest.skip('fio is not installed (apt-get install fio)')
	if engine == 'io_uring' and not kernel_has_uring():
		pytest.skip('io_uring is disabled in this kernel')
	if engine == 'libaio' and not kernel_has_aio():
		pytest.skip('Linux AIO is disabled in this kernel')
	m, path, spath, raw = mnt_dir
	# O_DIRECT reaches the disk, one 4 KiB block at a time for psync: keep it short
	size = (16 if not direct else 8 if engine != 'psync' else 4) * MiB
	args = [FIO, '--name=integrity', '--directory=' + path, '--rw=randwrite',
		'--size=%d' % size, '--numjobs=2', '--ioengine=' + engine,
		'--direct=%d' % direct, '--verify=crc32c', '--do_verify=1',
		'--verify_fatal=1', '--verify_dump=0', '--output-format=json',
		# no local-integrity-N-verify.state left in the current directory
		'--verify_state_save=0',
		'--group_reporting=0', '--randseed=%d' % random.randrange(1 << 30)]
	args += ['--bs=4k'] if direct else ['--bsrange=1k-64k', '--bs_unaligned=1']
	if engine != 'psync':
		args += ['--iodepth=16', '--iodepth_batch_submit=8']
	res = subprocess.run(args, capture_output=True, text=True, timeout=90)
	assert res.returncode == 0, 'fio failed (%d): %s\n%s\n%s' % (
		res.returncode, ' '.join(args), res.stdout[-3000:], res.stderr[-3000:])
	report = json.loads(res.stdout[res.stdout.index('{'):])
	for job in report['jobs']:
		assert job['error'] == 0, job
		written = job['write']['io_bytes']
		# with random block sizes the random map leaves a few gaps
		assert size * 0.95 < written <= size, job['write']
		# the verify pass read every block written
		assert job['read']['io_bytes'] == written, job['read']
	assert len(os.listdir(spath)) == 2
	for name in os.listdir(spath):
		assert os.stat(os.path.join(spath, name)).st_size == size


# ---- stress-ng's file system stressors ---------------------------------

STRESS_NG = shutil.which('stress-ng')
# Each group runs its stressors side by side, one process each, with
# stress-ng's own verification on.  Left out: fiemap (FUSE has no
# FS_IOC_FIEMAP), io-uring (its STATX of a relative name fails on ext4 too),
# inode-flags (it counts no bogo op on ext4 either).
STRESS_GROUPS = {
	'data': ['hdd', 'iomix', 'aiol', 'copy-file', 'fallocate'],
	'holes': ['fpunch', 'revio', 'sync-file'],
	# readahead writes its file at setup, one 4 KiB pwrite after the other:
	# among CPU-bound stressors each round trip through the daemon waits
	# for a CPU, and the setup outlasts the run
	'seek': ['seek', 'readahead'],
	'names': ['dentry', 'dir', 'dirdeep', 'dirmany', 'rename', 'link', 'symlink'],
	# filename probes which characters names may hold before it starts:
	# among 13 others, under a sanitizer build, that took the whole run
	'files': ['open', 'mknod', 'filename', 'getdent', 'handle', 'touch', 'utime'],
	'attrs': ['chmod', 'chown', 'access', 'fstat', 'xattr', 'chattr', 'dnotify',
		  'inotify', 'fanotify'],
	'locks': ['flock', 'lockf', 'lockofd', 'locka', 'fcntl', 'lease'],
}
# Their files default to 1 GiB each, which setup would still be writing when
# the run ends (and which would fill a small /tmp).
STRESS_SIZES = ['--hdd-bytes', '64M', '--iomix-bytes', '64M', '--readahead-bytes', '64M']


def unprotect_tree(top):
	"""Take the immutable and append-only flags off every file and directory
	below top: stress-ng's chattr stressor, stopped at its timeout between
	setting a flag and clearing it, can leave a file that nobody could then
	remove."""
	protect = FS_IMMUTABLE_FL | FS_APPEND_FL
	for dirpath, dirnames, filenames in os.walk(top):
		for name in [dirpath] + [os.path.join(dirpath, n) for n in filenames]:
			try:
				if not stat.S_ISREG(os.lstat(name).st_mode) and name != dirpath:
					continue
				flags = inode_flags(name)
				if flags & protect:
					inode_flags(name, flags & ~protect)
			except OSError:
				pass	# gone, or a file system without inode flags


def stress_ng(directory, stressors, seconds=3):
	"""Run the stressors in directory: (exit status, output, the stressors
	that reported a failure, those that did no bogo op and reported none)."""
	args = [STRESS_NG, '--timeout', '%ds' % seconds, '--verify', '--metrics-brief',
		'--temp-path', directory] + STRESS_SIZES
	for name in stressors:
		args += ['--' + name, '1']
	try:
		res = subprocess.run(args, cwd=directory, capture_output=True, text=True,
				     timeout=seconds + 60)
	finally:
		if 'chattr' in stressors:
			unprotect_tree(directory)
	out = res.stdout + res.stderr
	ops, failed = {}, set()
	for line in out.splitlines():
		f = line.split()
		# "stress-ng: metrc: [pid] NAME BOGO-OPS REAL USR SYS RATE RATE"
		if len(f) == 10 and f[1] == 'metrc:' and f[3] in stressors:
			ops[f[3]] = int(f[4])
		# "stress-ng: fail:  [pid] NAME: what went wrong"
		elif len(f) > 3 and f[1] == 'fail:':
			failed.add(f[3].rstrip(':'))
	idle = {name for name in stressors if ops.get(name, 0) <= 0} - failed
	return res.returncode, out, failed, idle


def stress_ng_checked(directory, stressors):
	"""stress_ng() of a group, then each stressor that did nothing there
	alone: (exit status, output, the stressors that failed or did nothing,
	or None when the output does not say).  Side by side, a stressor can
	lose every race it runs: lease's F_SETLEASE needs a moment when its
	breaker has the file closed, and among five other lock stressors on two
	CPUs it got 0 ops in 3 s through the mount (1-20 per run there, about
	15,000/s alone; on raw ext4 about 40/s in the group, 70,000/s alone).
	A failure is never retried."""
	rc, out, bad, idle = stress_ng(directory, stressors)
	for name in sorted(idle):
		rc1, out1, failed1, idle1 = stress_ng(directory, [name])
		out += '\n(%s again, alone)\n%s' % (name, out1)
		rc = rc or rc1
		bad |= failed1 | idle1
	if rc != 0 and not bad:
		return rc, out, None
	return rc, out, bad


@pytest.mark.timeout(150)
@pytest.mark.parametrize('group', sorted(STRESS_GROUPS))
def test_stress_ng(mnt_dir, group):
	"""stress-ng's file system stressors, with verification, through the
	mount: each must run (bogo ops > 0) and none may fail.  A stressor's
	failure is only caiofs's if it passes on the raw file system."""
	if STRESS_NG is None:
		pytest.skip('stress-ng is not installed (apt-get install stress-ng)')
	m, path, spath, raw = mnt_dir
	stressors = STRESS_GROUPS[group]
	rc, out, bad = stress_ng_checked(path, stressors)
	if bad or bad is None:
		where = os.path.join(raw, group)
		os.makedirs(where, exist_ok=True)
		raw_rc, raw_out, raw_bad = stress_ng_checked(where, stressors)
		if raw_bad is None or (bad is not None and bad <= raw_bad):
			pytest.skip('stress-ng fails on the raw file system too (%d, %s): %s' %
				    (raw_rc, sorted(raw_bad or ()), raw_out[-2000:]))
	assert rc == 0 and not bad, 'stress-ng exited %d, failed or idle: %s\n%s' % (
		rc, sorted(bad or ()), out[-4000:])


# ---- several processes, random operations, in-memory models --------------

FILE_MAX = 768 * 1024
REGION = 256 * 1024


class Model:
	"""A file region and what it must contain."""

	def __init__(self, fd, base, limit, can_resize, direct=False, initial=b''):
		self.fd = fd
		self.base = base
		self.limit = limit
		self.can_resize = can_resize
		self.direct = direct
		self.data = bytearray(initial)

	def set(self, off, data):
		if off > len(self.data):
			self.data.extend(bytes(off - len(self.data)))
		self.data[off:off + len(data)] = data


class StressFailure(Exception):
	pass


def supports_zero_range(directory):
	"""tmpfs has no FALLOC_FL_ZERO_RANGE: probe the raw fs."""
	probe = os.path.join(directory, '.zero-range-probe')
	fd = os.open(probe, os.O_RDWR | os.O_CREAT, 0o600)
	try:
		fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, 4096)
		return True
	except OSError as e:
		if e.errno != errno.EOPNOTSUPP:
			raise
		return False
	finally:
		os.close(fd)
		os.unlink(probe)


def stress_worker(seed, mine_path, shared_path, index, initial, nops, zero_range):
	"""Random pwrite/pread/ftruncate/punch/zero on a private file and on this
	worker's region of the shared file; every read checked at once."""
	rnd = random.Random(seed)
	direct = index == 0		# one worker uses O_DIRECT on its own file
	flags = os.O_RDWR | os.O_CREAT | (os.O_DIRECT if direct else 0)
	mine = Model(os.open(mine_path, flags, 0o644), 0, FILE_MAX, True, direct)
	region = Model(os.open(shared_path, os.O_RDWR), index * REGION, REGION, False,
		       initial=initial)
	abuf = mmap.mmap(-1, 128 * 1024)	# page aligned, for O_DIRECT
	log = []

	def fail(what):
		raise StressFailure('worker %d seed %d op %d: %s\nlast ops:\n  %s' % (
			index, seed, len(log), what, '\n  '.join(log[-20:])))

	def span(mdl, limit):
		if mdl.direct:
			off = rnd.randrange(max(limit // 4096, 1)) * 4096
			return off, rnd.randrange(1, 33) * 4096
		off = rnd.randrange(max(limit, 1))
		return off, rnd.randrange(1, 65537)

	def do_write(mdl):
		off, size = span(mdl, mdl.limit)
		size = min(size, mdl.limit - off)
		if size <= 0:
			return
		data = rnd.randbytes(size)
		log.append('%s write %d+%d' % ('shared' if not mdl.can_resize else 'own', off, size))
		if mdl.direct:
			view = memoryview(abuf)[:size]
			view[:] = data
			n = os.pwritev(mdl.fd, [view], off)
			view.release()
		else:
			n = os.pwrite(mdl.fd, data, mdl.base + off)
		if n != size:
			fail('short write %d of %d' % (n, size))
		mdl.set(off, data)

	def do_read(mdl):
		off, size = span(mdl, len(mdl.data) + 8192)
		if not mdl.can_resize:
			size = max(0, min(size, mdl.limit - off))
		log.append('%s read %d+%d' % ('shared' if not mdl.can_resize else 'own', off, size))
		if mdl.direct:
			view = memoryview(abuf)[:size]
			n = os.preadv(mdl.fd, [view], off)
			got = bytes(view[:n])
			view.release()
		else:
			got = os.pread(mdl.fd, size, mdl.base + off)
		want = bytes(mdl.data[off:off + size])
		if got != want:
			bad = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
				   min(len(got), len(want)))
			fail('read %d+%d: %d bytes, expected %d; first difference at %d' % (
				off, size, len(got), len(want), off + bad))

	def do_truncate(mdl):
		size = rnd.randrange(mdl.limit)
		if mdl.direct:
			size &= ~4095
		log.append('own truncate %d' % size)
		os.ftruncate(mdl.fd, size)
		if size < len(mdl.data):
			del mdl.data[size:]
		else:
			mdl.data.extend(bytes(size - len(mdl.data)))

	def do_punch(mdl):
		off, size = span(mdl, max(len(mdl.data), 1))
		log.append('%s punch %d+%d' % ('shared' if not mdl.can_resize else 'own', off, size))
		if not mdl.can_resize:
			size = min(size, mdl.limit - off)
		if size <= 0:
			return
		fallocate(mdl.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, mdl.base + off, size)
		end = min(off + size, len(mdl.data))
		if end > off:
			mdl.data[off:end] = bytes(end - off)

	def do_zero(mdl):
		off, size = span(mdl, max(len(mdl.data), 1))
		keep = not mdl.can_resize or rnd.random() < 0.5
		if not mdl.can_resize:
			size = min(size, mdl.limit - off)
		if size <= 0:
			return
		log.append('%s zero_range%s %d+%d' % ('shared' if not mdl.can_resize else 'own',
						       ' keep_size' if keep else '', off, size))
		fallocate(mdl.fd, FALLOC_FL_ZERO_RANGE | (FALLOC_FL_KEEP_SIZE if keep else 0),
			  mdl.base + off, size)
		end = off + size if not keep else min(off + size, len(mdl.data))
		if end > off:
			mdl.set(off, bytes(end - off))

	def do_fsync(mdl):
		log.append('fsync')
		os.fdatasync(mdl.fd) if rnd.random() < 0.5 else os.fsync(mdl.fd)

	choices = [(do_write, 30), (do_read, 30), (do_truncate, 8), (do_punch, 6),
		   (do_zero, 4 if zero_range else 0), (do_fsync, 2)]
	ops = [fn for fn, weight in choices for _ in range(weight)]
	try:
		for _ in range(nops):
			fn = rnd.choice(ops)
			mdl = region if rnd.random() < 0.4 else mine
			if fn is do_truncate and not mdl.can_resize:
				fn = do_write
			fn(mdl)
		for mdl in (mine, region):
			st = os.fstat(mdl.fd)
			if mdl.can_resize and st.st_size != len(mdl.data):
				fail('size %d, model %d' % (st.st_size, len(mdl.data)))
		return bytes(mine.data), bytes(region.data)
	finally:
		os.close(mine.fd)
		os.close(region.fd)
		abuf.close()


def spawn(fn, args, ids=None, cwd=None, timeout=60):
	"""Start fn(*args) in a forked child (in cwd, entered before switching
	to ids: the test's private temp dir is not searchable by others);
	returns a handle for collect()."""
	rfd, wfd = os.pipe()
	pid = os.fork()
	if pid == 0:
		os.close(rfd)
		try:
			if cwd:
				os.chdir(cwd)
			if ids:
				os.setgroups([])
				os.setgid(ids[1])
				os.setuid(ids[0])
			result = (True, fn(*args))
		except BaseException as e:
			result = (False, '%s: %s' % (type(e).__name__, e))
		os.write(wfd, pickle.dumps(result))
		os._exit(0)
	os.close(wfd)
	return pid, rfd, timeout


def collect(handle):
	pid, rfd, timeout = handle
	chunks = []
	try:
		while True:
			ready, _, _ = select.select([rfd], [], [], timeout)
			if not ready:
				os.kill(pid, signal.SIGKILL)
				raise TimeoutError('worker %d timed out' % pid)
			chunk = os.read(rfd, 1 << 20)
			if not chunk:
				break
			chunks.append(chunk)
	finally:
		os.close(rfd)
		os.waitpid(pid, 0)
	ok, value = pickle.loads(b''.join(chunks))
	if not ok:
		raise AssertionError(value)
	return value


def read_all(path):
	with open(path, 'rb') as f:
		return f.read()


@pytest.mark.timeout(90)
def test_multiprocess_stress(mnt_dir):
	"""Four processes (root and another uid, one using O_DIRECT) on their
	own files and on disjoint regions of one shared file; afterwards the
	files read through the mount and from the source equal the models."""
	m, path, spath, raw = mnt_dir
	nworkers = 4
	zero_range = supports_zero_range(raw)
	seed = int(os.environ.get('CAIOFS_FSX_SEED') or random.randrange(1 << 30))
	shared_name = os.path.join(path, 'shared')
	with open(shared_name, 'wb') as f:
		f.write(os.urandom(nworkers * REGION))
	os.chmod(shared_name, 0o666)
	initial = read_all(shared_name)
	handles = []
	for i in range(nworkers):
		ids = USER if i % 2 else None
		args = (seed + i, 'own%d' % i, 'shared', i, initial[i * REGION:(i + 1) * REGION],
			700, zero_range)
		handles.append(spawn(stress_worker, args, ids, cwd=path))
	results = []
	errors = []
	for h in handles:
		try:
			results.append(collect(h))
		except (AssertionError, TimeoutError) as e:
			errors.append(str(e))
	assert not errors, 'seed %d (CAIOFS_FSX_SEED to replay):\n%s' % (seed, '\n'.join(errors))
	expect_shared = bytearray(initial)
	for i, (own, region) in enumerate(results):
		expect_shared[i * REGION:(i + 1) * REGION] = region
		for where in (os.path.join(path, 'own%d' % i), os.path.join(spath, 'own%d' % i)):
			assert read_all(where) == own, 'own%d differs from the model (%s)' % (i, where)
		st = os.stat(os.path.join(spath, 'own%d' % i))
		assert st.st_uid == (USER[0] if i % 2 else 0)
	assert read_all(shared_name) == expect_shared
	assert read_all(os.path.join(spath, 'shared')) == expect_shared


def appender(path, tag, count):
	fd = os.open(path, os.O_WRONLY | os.O_APPEND)
	try:
		for i in range(count):
			rec = b'<%s %06d %s>' % (tag, i, tag * (17 + i % 50))
			if os.write(fd, rec) != len(rec):
				raise AssertionError('short append')
	finally:
		os.close(fd)


@pytest.mark.timeout(60)
def test_concurrent_o_append(mnt_dir):
	"""Two processes appending records: none lost, none torn or overlapped."""
	m, path, spath, raw = mnt_dir
	name = os.path.join(path, 'log')
	open(name, 'wb').close()
	os.chmod(name, 0o666)
	count = 400
	handles = [spawn(appender, ('log', b'A', count), cwd=path),
		   spawn(appender, ('log', b'B', count), USER, cwd=path)]
	for h in handles:
		collect(h)
	data = read_all(name)
	want = {}
	for tag in (b'A', b'B'):
		for i in range(count):
			want[b'<%s %06d %s>' % (tag, i, tag * (17 + i % 50))] = True
	records = data.split(b'>')
	assert records[-1] == b''
	got = [r + b'>' for r in records[:-1]]
	assert len(got) == len(want) and all(r in want for r in got), 'torn or lost records'
	assert len(data) == sum(len(r) for r in want)
	assert read_all(os.path.join(spath, 'log')) == data


@pytest.mark.timeout(60)
def test_large_unaligned_write_beyond_4g(mnt_dir):
	"""A write larger than one FUSE request, at an odd offset past 4 GiB."""
	m, path, spath, raw = mnt_dir
	name = os.path.join(path, 'far')
	data = random.randbytes(3 * MiB + 333)
	off = (4 << 30) + 12345
	fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o644)
	try:
		assert os.pwrite(fd, data, off) == len(data)
		assert os.fstat(fd).st_size == off + len(data)
		assert os.pread(fd, len(data) + 10, off) == data
		assert os.pread(fd, 4096, off - 4096) == bytes(4096)
		os.fsync(fd)
	finally:
		os.close(fd)
	with open(os.path.join(spath, 'far'), 'rb') as f:
		f.seek(off - 1)
		assert f.read() == b'\0' + data


# ---- mmap MAP_SHARED writer, read() reader --------------------------------

def wait_byte(fd):
	ready, _, _ = select.select([fd], [], [], 30)
	assert ready, 'peer did not answer'
	return os.read(fd, 1)


def mmap_writer(path, go_r, done_w, pattern):
	"""Writes pattern through a shared mapping; tells the reader; on its
	word writes more, msyncs and reports."""
	fd = os.open(path, os.O_RDWR)
	try:
		mp = mmap.mmap(fd, len(pattern), mmap.MAP_SHARED)
		try:
			mp[:] = pattern
			os.write(done_w, b'1')		# not msynced yet
			wait_byte(go_r)
			mp[4096:8192] = b'\xa5' * 4096
			mp.flush()			# msync(MS_SYNC)
			os.write(done_w, b'2')
			wait_byte(go_r)			# the reader wrote with write()
			return bytes(mp[:])
		finally:
			mp.close()
	finally:
		os.close(fd)


@pytest.mark.timeout(60)
def test_mmap_shared_write_seen_by_read(mnt_dir):
	m, path, spath, raw = mnt_dir
	size = 256 * 1024
	name = os.path.join(path, 'mapped')
	with open(name, 'wb') as f:
		f.truncate(size)
	pattern = random.randbytes(size)
	go_r, go_w = os.pipe()
	done_r, done_w = os.pipe()
	reader_fd = os.open(name, os.O_RDWR)
	try:
		h = spawn(mmap_writer, (name, go_r, done_w, pattern))
		assert wait_byte(done_r) == b'1'
		# another process, plain read(): the mapping's dirty pages are seen
		assert os.pread(reader_fd, size, 0) == pattern
		os.write(go_w, b'g')
		assert wait_byte(done_r) == b'2'
		expect = bytearray(pattern)
		expect[4096:8192] = b'\xa5' * 4096
		assert os.pread(reader_fd, size, 0) == expect
		# after msync the data is in the source file
		assert read_all(os.path.join(spath, 'mapped')) == expect
		# and write() by this process is seen through the other's mapping
		os.pwrite(reader_fd, b'\x5a' * 100, 10000)
		expect[10000:10100] = b'\x5a' * 100
		os.write(go_w, b'g')
		assert collect(h) == expect
	finally:
		os.close(reader_fd)
		for fd in (go_r, go_w, done_r, done_w):
			os.close(fd)


@pytest.mark.timeout(60)
@pytest.mark.parametrize('how', ['append', 'direct'])
def test_mmap_through_append_or_direct_fd(mnt_dir, how):
	"""A shared mapping of a file opened O_APPEND or O_DIRECT: page
	writeback must land at the mapped offsets (not appended, not refused
	for a partial last page), exactly as on the raw fs."""
	m, path, spath, raw = mnt_dir
	rawdir = os.path.join(raw, os.path.basename(path))
	os.mkdir(rawdir)
	size = 3 * 4096 + 904		# a partial last page
	initial = random.randbytes(size)
	flags = os.O_RDWR | (os.O_APPEND if how == 'append' else os.O_DIRECT)
	outcome = []
	for d in (rawdir, path):
		name = os.path.join(d, 'f')
		with open(name, 'wb') as f:
			f.write(initial)
		fd = os.open(name, flags)
		try:
			mp = mmap.mmap(fd, size)
			mp[100:200] = b'\x11' * 100
			mp[size - 50:] = b'\x22' * 50
			mp.flush()
			mp.close()
		finally:
			os.close(fd)
		outcome.append(read_all(name))
	expect = bytearray(initial)
	expect[100:200] = b'\x11' * 100
	expect[size - 50:] = b'\x22' * 50
	assert outcome[0] == expect, 'the raw fs did not behave as the test assumes'
	assert outcome[1] == expect
	assert read_all(os.path.join(spath, 'f')) == expect


def coherence_run(name):
	"""Buffered, O_DIRECT and mapped views of one file, each checked after
	the others write; returns the list of views that saw stale data."""
	size = MiB
	with open(name, 'wb') as f:
		f.write(random.randbytes(size))
	stale = []
	fb = os.open(name, os.O_RDWR)
	fd = os.open(name, os.O_RDWR | os.O_DIRECT)
	buf = mmap.mmap(-1, 65536)
	try:
		mp = mmap.mmap(fb, size)
		os.pread(fb, size, 0)		# everything in the page cache
		mp[:]				# and mapped
		buf[:] = b'\x33' * 65536
		os.pwritev(fd, [buf], 131072)	# O_DIRECT write
		if os.pread(fb, 65536, 131072) != b'\x33' * 65536:
			stale.append('buffered read after O_DIRECT write')
		if mp[131072:196608] != b'\x33' * 65536:
			stale.append('mapping after O_DIRECT write')
		os.pwrite(fb, b'\x44' * 65536, 262144)	# buffered write
		os.preadv(fd, [buf], 262144)
		if bytes(buf) != b'\x44' * 65536:
			stale.append('O_DIRECT read after buffered write')
		mp[393216:458752] = b'\x55' * 65536	# mapped write, not synced
		os.preadv(fd, [buf], 393216)
		if bytes(buf) != b'\x55' * 65536:
			stale.append('O_DIRECT read after mapped write')
		mp.close()
	finally:
		buf.close()
		os.close(fd)
		os.close(fb)
	return stale


@pytest.mark.timeout(60)
def test_buffered_direct_mapped_coherence(mnt_dir):
	"""Whatever the raw fs keeps coherent between page cache, O_DIRECT and
	mappings of one file, the mount keeps coherent too."""
	m, path, spath, raw = mnt_dir
	rawdir = os.path.join(raw, os.path.basename(path))
	os.mkdir(rawdir)
	assert coherence_run(os.path.join(rawdir, 'f')) == []
	assert coherence_run(os.path.join(path, 'f')) == []


def direct_eof_run(name):
	"""O_DIRECT reads across and beyond the end of a file whose size is not
	block aligned, then an aligned O_DIRECT write that extends it."""
	data = random.Random(7).randbytes(3 * 4096 + 904)
	with open(name, 'wb') as f:
		f.write(data)
	out = []
	fd = os.open(name, os.O_RDWR | os.O_DIRECT)
	buf = mmap.mmap(-1, 65536)
	try:
		for off, length in ((0, 65536), (8192, 8192), (12288, 4096), (16384, 4096)):
			n = os.preadv(fd, [memoryview(buf)[:length]], off)
			out.append((off, length, n, bytes(buf[:n]) == data[off:off + n]))
		buf[:8192] = b'\x77' * 8192
		out.append(os.pwritev(fd, [memoryview(buf)[:8192]], 16384))
		out.append(os.fstat(fd).st_size)
	finally:
		buf.close()
		os.close(fd)
	out.append(read_all(name)[12288:] == data[12288:] + bytes(4096 - 904) + b'\x77' * 8192)
	return out


@pytest.mark.timeout(60)
def test_odirect_eof_like_raw(mnt_dir):
	m, path, spath, raw = mnt_dir
	rawdir = os.path.join(raw, os.path.basename(path))
	os.mkdir(rawdir)
	want = direct_eof_run(os.path.join(rawdir, 'f'))
	assert want[0] == (0, 65536, 3 * 4096 + 904, True)	# the raw fs as expected
	assert direct_eof_run(os.path.join(path, 'f')) == want


# ---- O_DIRECT with unaligned user buffers, offsets, lengths ----------------

# (label, buffer misalignment, file offset, length)
DIRECT_CASES = [
	('aligned', 0, 0, 4096),
	('buffer+1', 1, 0, 4096),
	('buffer+512', 512, 4096, 8192),
	('offset+1', 0, 1, 4096),
	('offset+512', 0, 512, 4096),
	('length 100', 0, 8192, 100),
	('buffer+1 1MiB', 1, 65536, MiB),
	('buffer+3 offset+5 length 777', 3, 5, 777),
]


def direct_io(path, kind, misalign, off, length, data):
	"""One O_DIRECT pwrite or pread: returns the count or the errno name,
	and the data read."""
	fd = os.open(path, (os.O_RDWR if kind == 'write' else os.O_RDONLY) | os.O_DIRECT)
	buf = mmap.mmap(-1, length + 8192)
	view = memoryview(buf)[misalign:misalign + length]
	try:
		if kind == 'write':
			view[:] = data
			res = os.pwritev(fd, [view], off)
			return res, None
		res = os.preadv(fd, [view], off)
		return res, bytes(view[:res])
	except OSError as e:
		return errname(e.errno), None
	finally:
		view.release()
		buf.close()
		os.close(fd)


@pytest.mark.timeout(60)
@pytest.mark.parametrize('kind', ['write', 'read'])
def test_odirect_alignment_like_raw(mnt_dir, kind):
	"""Unaligned O_DIRECT: the mount answers like the raw fs, or succeeds
	with exactly the right data (FUSE copies user buffers, so a misaligned
	buffer may work); it never returns a short count, EIO or bad data."""
	m, path, spath, raw = mnt_dir
	rawdir = os.path.join(raw, os.path.basename(path))
	os.mkdir(rawdir)
	initial = random.randbytes(3 * MiB)
	problems = []
	for i, (label, misalign, off, length) in enumerate(DIRECT_CASES):
		data = random.randbytes(length)
		outcome = {}
		for side, d in (('raw', rawdir), ('caiofs', path)):
			name = os.path.join(d, 'f%d' % i)
			with open(name, 'wb') as f:
				f.write(initial)
			res, got = direct_io(name, kind, misalign, off, length, data)
			outcome[side] = (res, got, read_all(name))
		raw_res, raw_got, raw_after = outcome['raw']
		res, got, after = outcome['caiofs']
		if kind == 'write':
			expect_after = bytearray(initial)
			expect_after[off:off + length] = data
			if raw_res not in (length, 'EINVAL'):
				problems.append('%s: the raw fs answered %r' % (label, raw_res))
			if res == raw_res:
				ok = after == raw_after
			else:
				ok = raw_res == 'EINVAL' and res == length and after == expect_after
			if not ok or after not in (initial, expect_after):
				problems.append('%s write: raw %r, caiofs %r%s' % (
					label, raw_res, res, '' if after in (initial, expect_after)
					else ' and the file content is wrong'))
		else:
			want = initial[off:off + length]
			if res == raw_res:
				ok = got == raw_got
			else:
				ok = raw_res == 'EINVAL' and res == length and got == want
			if not ok:
				problems.append('%s read: raw %r, caiofs %r%s' % (
					label, raw_res, res, '' if got in (None, want) else ' with wrong data'))
	assert not problems, '\n'.join(problems)
