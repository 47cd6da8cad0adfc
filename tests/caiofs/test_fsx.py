# test_fsx.py - fsx-style random operations (write, read, truncate, punch, mmap, O_DIRECT...) checked against a model.
import errno
import mmap
import os
import random
import tempfile

import pytest

from cfsutil import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, fallocate

PAGE = mmap.PAGESIZE


class FsxFailure(AssertionError):
	pass


class Fsx:
	"""One file, one in-memory model of its content, random operations."""

	def __init__(self, path, source_path, seed, max_len, use_mmap=True, max_write=65536):
		self.path = path
		self.source_path = source_path
		self.seed = seed
		self.rnd = random.Random(seed)
		self.max_len = max_len
		self.max_write = max_write
		self.use_mmap = use_mmap
		self.model = bytearray()
		self.log = []
		self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
		self.dfd = os.open(path, os.O_RDWR | os.O_DIRECT)
		self.afd = os.open(path, os.O_WRONLY | os.O_APPEND)
		self.dbuf = mmap.mmap(-1, 256 * 1024)
		# an unnamed file outside the mount for sendfile in and out
		self.side_file = tempfile.TemporaryFile()
		self.side = self.side_file.fileno()
		self.side_data = self.rnd.randbytes(256 * 1024)
		os.pwrite(self.side, self.side_data, 0)

	def close(self):
		self.dbuf.close()
		os.close(self.dfd)
		os.close(self.afd)
		os.close(self.fd)
		self.side_file.close()

	def fail(self, what):
		tail = '\n'.join(self.log[-25:])
		raise FsxFailure('fsx seed %d (set CAIOFS_FSX_SEED=%d to replay), op %d: %s\n'
				 'last operations:\n%s' % (self.seed, self.seed, len(self.log),
							   what, tail))

	def compare(self, got, off, what):
		want = bytes(self.model[off:off + len(got)])
		if got != want:
			common = min(len(got), len(want))
			bad = next((i for i in range(common) if got[i] != want[i]), common)
			self.fail('%s: data differs at offset %d (file %r, model %r); '
				  'lengths %d/%d' % (what, off + bad, got[bad:bad + 8],
						     want[bad:bad + 8], len(got), len(want)))

	def span(self, limit, max_size=65536):
		off = self.rnd.randrange(max(limit, 1))
		return off, self.rnd.randrange(1, max_size + 1)

	def op_read(self):
		off, size = self.span(len(self.model) + 4096)
		self.log.append('read %d+%d' % (off, size))
		got = os.pread(self.fd, size, off)
		expect = max(0, min(size, len(self.model) - off))
		if len(got) != expect:
			self.fail('read %d+%d returned %d bytes, expected %d' % (off, size, len(got), expect))
		self.compare(got, off, 'read')

	def op_write(self):
		off, size = self.span(self.max_len - self.max_write, self.max_write)
		data = self.rnd.randbytes(size)
		self.log.append('write %d+%d' % (off, size))
		if os.pwrite(self.fd, data, off) != size:
			self.fail('short write')
		self.store(off, data)

	def store(self, off, data):
		if off > len(self.model):
			self.model.extend(bytes(off - len(self.model)))
		self.model[off:off + len(data)] = data

	def op_truncate(self):
		size = self.rnd.randrange(self.max_len)
		self.log.append('truncate %d' % size)
		os.ftruncate(self.fd, size)
		self.resize(size)

	def resize(self, size):
		if size < len(self.model):
			del self.model[size:]
		else:
			self.model.extend(bytes(size - len(self.model)))

	def op_punch(self):
		if not self.model:
			return
		off, size = self.span(len(self.model), 200000)
		self.log.append('punch %d+%d' % (off, size))
		fallocate(self.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, size)
		end = min(off + size, len(self.model))
		if end > off:
			self.model[off:end] = bytes(end - off)

	def op_falloc(self):
		off, size = self.span(self.max_len - 200000, 200000)
		keep = self.rnd.random() < 0.5
		self.log.append('fallocate%s %d+%d' % (' keep_size' if keep else '', off, size))
		fallocate(self.fd, FALLOC_FL_KEEP_SIZE if keep else 0, off, size)
		if not keep and off + size > len(self.model):
			self.resize(off + size)

	def op_mapwrite(self):
		if not self.use_mmap or not self.model:
			return self.op_write()
		off, size = self.span(len(self.model))
		size = min(size, len(self.model) - off)
		data = self.rnd.randbytes(size)
		self.log.append('mapwrite %d+%d' % (off, size))
		m = mmap.mmap(self.fd, len(self.model))
		try:
			m[off:off + size] = data
			if self.rnd.random() < 0.5:
				m.flush()
		finally:
			m.close()
		self.model[off:off + size] = data

	def op_mapread(self):
		if not self.use_mmap or not self.model:
			return self.op_read()
		off, size = self.span(len(self.model))
		size = min(size, len(self.model) - off)
		self.log.append('mapread %d+%d' % (off, size))
		m = mmap.mmap(self.fd, len(self.model), prot=mmap.PROT_READ)
		try:
			got = m[off:off + size]
		finally:
			m.close()
		self.compare(got, off, 'mapread')

	def op_copy_range(self):
		if len(self.model) < 2:
			return
		size = self.rnd.randrange(1, min(len(self.model), 131072) // 2 + 1)
		src = self.rnd.randrange(len(self.model) - size + 1)
		dst = self.rnd.randrange(self.max_len - size)
		if src < dst + size and dst < src + size:
			return			# overlapping ranges are EINVAL
		self.log.append('copy_range %d+%d -> %d' % (src, size, dst))
		n = os.copy_file_range(self.fd, self.fd, size, src, dst)
		if n <= 0 or n > size:
			self.fail('copy_file_range %d+%d returned %d' % (src, size, n))
		self.store(dst, bytes(self.model[src:src + n]))

	def direct_span(self, limit):
		blocks = max(limit // 4096, 1)
		off = self.rnd.randrange(blocks) * 4096
		size = self.rnd.randrange(1, len(self.dbuf) // 4096 + 1) * 4096
		return off, size

	def op_direct_write(self):
		off, size = self.direct_span(self.max_len - len(self.dbuf))
		data = self.rnd.randbytes(size)
		self.log.append('direct write %d+%d' % (off, size))
		view = memoryview(self.dbuf)[:size]
		view[:] = data
		n = os.pwritev(self.dfd, [view], off)
		view.release()
		if n != size:
			self.fail('short O_DIRECT write %d of %d' % (n, size))
		self.store(off, data)

	def op_direct_read(self):
		off, size = self.direct_span(len(self.model) + 8192)
		self.log.append('direct read %d+%d' % (off, size))
		view = memoryview(self.dbuf)[:size]
		n = os.preadv(self.dfd, [view], off)
		got = bytes(view[:n])
		view.release()
		expect = max(0, min(size, len(self.model) - off))
		if n != expect:
			self.fail('O_DIRECT read %d+%d returned %d, expected %d' % (off, size, n, expect))
		self.compare(got, off, 'direct read')

	def op_append(self):
		data = self.rnd.randbytes(self.rnd.randrange(1, 20000))
		if len(self.model) + len(data) > self.max_len:
			return
		self.log.append('append %d at %d' % (len(data), len(self.model)))
		if os.write(self.afd, data) != len(data):
			self.fail('short append')
		self.store(len(self.model), data)

	def op_sendfile_in(self):
		"""sendfile(2) into the mounted file (the splice write path)."""
		off = self.rnd.randrange(self.max_len - 65536)
		src = self.rnd.randrange(len(self.side_data) - 65536)
		size = self.rnd.randrange(1, 65536)
		self.log.append('sendfile in %d+%d' % (off, size))
		os.lseek(self.fd, off, os.SEEK_SET)
		done = 0
		while done < size:
			n = os.sendfile(self.fd, self.side, src + done, size - done)
			if n <= 0:
				self.fail('sendfile into the file returned %d' % n)
			done += n
		self.store(off, self.side_data[src:src + size])

	def op_sendfile_out(self):
		"""sendfile(2) out of the mounted file (the splice read path)."""
		if not self.model:
			return
		off, size = self.span(len(self.model))
		size = min(size, len(self.model) - off)
		self.log.append('sendfile out %d+%d' % (off, size))
		os.lseek(self.side, 0, os.SEEK_SET)
		os.ftruncate(self.side, 0)
		done = 0
		while done < size:
			n = os.sendfile(self.side, self.fd, off + done, size - done)
			if n <= 0:
				self.fail('sendfile out of the file returned %d at %d' % (n, off + done))
			done += n
		got = os.pread(self.side, size, 0)
		os.pwrite(self.side, self.side_data, 0)
		self.compare(got, off, 'sendfile out')

	def op_fsync(self):
		self.log.append('fsync')
		os.fsync(self.fd)
		if self.rnd.random() < 0.3:
			self.check_source()

	def op_reopen(self):
		self.log.append('close+reopen')
		os.close(self.fd)
		self.fd = os.open(self.path, os.O_RDWR)

	def op_stat(self):
		self.log.append('stat')
		size = os.fstat(self.fd).st_size
		if size != len(self.model):
			self.fail('fstat size %d, model %d' % (size, len(self.model)))

	def check_source(self):
		"""After fsync the backing file holds exactly the model."""
		with open(self.source_path, 'rb') as f:
			got = f.read()
		if len(got) != len(self.model):
			self.fail('source file size %d, model %d' % (len(got), len(self.model)))
		self.compare(got, 0, 'source after fsync')

	OPS = (('read', 20), ('write', 22), ('truncate', 5), ('punch', 6),
	       ('falloc', 3), ('mapwrite', 8), ('mapread', 8), ('copy_range', 5),
	       ('direct_write', 6), ('direct_read', 6), ('fsync', 3),
	       ('reopen', 2), ('stat', 6), ('append', 3), ('sendfile_in', 3),
	       ('sendfile_out', 3))

	def run(self, count):
		names = [n for n, w in self.OPS for _ in range(w)]
		for _ in range(count):
			name = self.rnd.choice(names)
			try:
				getattr(self, 'op_' + name)()
			except OSError as e:
				self.fail('%s raised %s' % (self.log[-1] if self.log else name, e))
		os.fsync(self.fd)
		self.op_stat()
		whole = os.pread(self.fd, len(self.model) + 1, 0)
		if len(whole) != len(self.model):
			self.fail('final read returned %d bytes, model %d' % (len(whole), len(self.model)))
		self.compare(whole, 0, 'final read')
		self.check_source()


def fsx_seed():
	env = os.environ.get('CAIOFS_FSX_SEED')
	return int(env) if env else random.SystemRandom().randrange(1 << 31)


def run_fsx(m, ops, max_len, name='fsx', seed=None, use_mmap=True, max_write=65536):
	seed = fsx_seed() if seed is None else seed
	print('fsx seed %d on %s' % (seed, m.mnt))
	fsx = Fsx(m.path(name), m.spath(name), seed, max_len, use_mmap, max_write)
	try:
		fsx.run(ops)
	finally:
		fsx.close()


@pytest.mark.timeout(240)
def test_fsx(mnt):
	run_fsx(mnt, int(os.environ.get('CAIOFS_FSX_OPS', 3000)), 4 << 20)


@pytest.mark.one_backend
@pytest.mark.timeout(240)
def test_fsx_two_files_in_parallel(mnt):
	"""Two fsx runs at once on different files: the daemon interleaves them."""
	import threading
	errors = []
	seed = fsx_seed()

	def one(i):
		try:
			run_fsx(mnt, 1500, 2 << 20, 'fsx%d' % i, seed + i)
		except BaseException as e:	# reported by the main thread
			errors.append(e)

	threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
	for t in threads:
		t.start()
	for t in threads:
		t.join(200)
	assert not errors, '\n'.join(str(e) for e in errors)


@pytest.mark.one_backend
@pytest.mark.timeout(240)
@pytest.mark.parametrize('options', [['writeback_cache'], ['cache=never'],
				     ['cache=always']])
def test_fsx_cache_modes(mount_factory, backend, options):
	m = mount_factory(backend, options)
	use_mmap = True
	fd = os.open(m.path('probe'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.ftruncate(fd, PAGE)
		mmap.mmap(fd, PAGE).close()
	except OSError as e:
		# the kernel refuses shared mmap of direct_io files unless the
		# daemon negotiates FUSE_DIRECT_IO_ALLOW_MMAP
		if 'cache=never' not in options or e.errno != errno.ENODEV:
			raise
		use_mmap = False
	finally:
		os.close(fd)
	run_fsx(m, 2000, 2 << 20, use_mmap=use_mmap)


@pytest.mark.timeout(240)
def test_fsx_as_other_user(mount_factory, backend):
	"""The external suites' setting: allow_other,default_permissions, random
	operations with O_DIRECT as another uid, in a directory it owns."""
	from cfsutil import as_user
	m = mount_factory(backend, ['allow_other', 'default_permissions'])
	os.mkdir(m.path('home'))
	os.chown(m.path('home'), 23456, 12345)
	seed = fsx_seed()
	as_user(23456, 12345, run_fsx, m, 1500, 2 << 20, 'home/fsx', seed, timeout=200)
	st = os.stat(m.spath('home', 'fsx'))
	assert (st.st_uid, st.st_gid) == (23456, 12345)
