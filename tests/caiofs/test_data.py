# test_data.py - the data path: sparse and > 4 GiB files, O_DIRECT, mmap, concurrent writers (threads and processes).
import hashlib
import mmap
import os
import random
import subprocess
import threading

import pytest

from cfsutil import FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, fallocate
from test_ops import read_file, write_file

GiB = 1 << 30
MiB = 1 << 20


def aligned(size):
	"""A page-aligned buffer (anonymous mmap), as O_DIRECT needs."""
	return mmap.mmap(-1, size)


def test_sparse_file(mnt):
	fd = os.open(mnt.path('sparse'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.ftruncate(fd, 64 * MiB)
		os.pwrite(fd, b'middle', 32 * MiB)
		os.fsync(fd)
		assert os.fstat(fd).st_size == 64 * MiB
		assert os.pread(fd, 4096, 16 * MiB) == bytes(4096)
		assert os.pread(fd, 6, 32 * MiB) == b'middle'
		assert os.lseek(fd, 0, os.SEEK_DATA) == 32 * MiB - (32 * MiB) % 4096
		assert os.lseek(fd, 0, os.SEEK_HOLE) == 0
	finally:
		os.close(fd)
	assert os.stat(mnt.spath('sparse')).st_blocks * 512 <= 1 * MiB
	assert os.stat(mnt.path('sparse')).st_blocks == os.stat(mnt.spath('sparse')).st_blocks


def test_large_file_offsets(mnt):
	"""Offsets beyond 4 GiB (and across the 32-bit boundary) in a sparse file."""
	fd = os.open(mnt.path('big'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		edge = 4 * GiB - 4096
		data = random.Random(4).randbytes(16384)
		assert os.pwrite(fd, data, edge) == len(data)
		assert os.pwrite(fd, b'tail', 6 * GiB + 17) == 4
		assert os.fstat(fd).st_size == 6 * GiB + 21
		assert os.pread(fd, len(data), edge) == data
		assert os.pread(fd, 100, 6 * GiB + 17) == b'tail'
		assert os.pread(fd, 8, 5 * GiB) == bytes(8)
		if mnt.writeback:
			# the kernel answers, with the whole file as data
			assert os.lseek(fd, 0, os.SEEK_DATA) == 0
			assert os.lseek(fd, edge, os.SEEK_HOLE) == 6 * GiB + 21
		else:
			assert os.lseek(fd, 0, os.SEEK_DATA) == edge
			assert os.lseek(fd, edge, os.SEEK_HOLE) == edge + len(data)
			assert os.lseek(fd, edge + len(data), os.SEEK_DATA) == 6 * GiB
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4 * GiB, 4096)
		assert os.pread(fd, 4096, 4 * GiB) == bytes(4096)
		assert os.pread(fd, 4096, 4 * GiB + 4096) == data[8192:12288]
		os.ftruncate(fd, 5 * GiB)
		assert os.pread(fd, 10, 5 * GiB - 5) == bytes(5)
		os.fsync(fd)
	finally:
		os.close(fd)
	sfd = os.open(mnt.spath('big'), os.O_RDONLY)
	try:
		assert os.fstat(sfd).st_size == 5 * GiB
		assert os.pread(sfd, 4096, edge) == data[:4096]
		assert os.pread(sfd, 4096, 4 * GiB) == bytes(4096)
	finally:
		os.close(sfd)
	assert os.stat(mnt.spath('big')).st_blocks * 512 < 4 * MiB


def direct_roundtrip(fd, size, offset, rnd):
	"""Write size random bytes at offset of an O_DIRECT fd and read them back."""
	buf, back = aligned(size), aligned(size)
	try:
		payload = rnd.randbytes(size)
		buf[:] = payload
		assert os.pwritev(fd, [buf], offset) == size
		assert os.preadv(fd, [back], offset) == size
		assert back[:] == payload, 'O_DIRECT %d bytes at %d' % (size, offset)
	finally:
		buf.close()
		back.close()


def test_o_direct_aligned(mnt):
	fd = os.open(mnt.path('direct'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
	rnd = random.Random(11)
	try:
		for size, offset in ((4096, 0), (65536, 65536), (MiB, 2 * MiB), (4096, 8192),
				     (128 * 1024, 3 * MiB + 4096)):
			direct_roundtrip(fd, size, offset, rnd)
		os.fsync(fd)
	finally:
		os.close(fd)
	assert os.stat(mnt.spath('direct')).st_size == 3 * MiB + 4096 + 128 * 1024


def test_o_direct_registered_buffers(mnt):
	"""With the uring backend, O_DIRECT reads of up to 128 KiB and writes of
	up to 64 KiB (128 KiB with fuse_uring) reach the source through buffers
	registered with io_uring (no page pinning per request); 1 MiB ones
	through plain buffers.  Either way every byte is right, and the other
	backends report none."""
	small = (4096, 16384, 65536, 128 * 1024)
	rnd = random.Random(12)
	fd = os.open(mnt.path('direct'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
	before = mnt.stat_json()['caio']['fixed_requests']
	try:
		for rounds, sizes in ((8, small), (2, (MiB,))):
			for i in range(rounds):
				for size in sizes:
					direct_roundtrip(fd, size, rnd.randrange(16) * MiB, rnd)
	finally:
		os.close(fd)
	stats = mnt.stat_json()
	fixed = stats['caio']['fixed_requests'] - before
	if stats['backend'] != 'uring':
		assert fixed == 0, stats['caio']
		return
	n_small = 8 * len(small) * 2
	# Over 64 KiB, a write's data stays in the /dev/fuse request buffer.
	assert n_small - 8 <= fixed <= n_small, stats['caio']


def test_o_direct_coherent_with_buffered(mnt):
	write_file(mnt.path('f'), b'\x01' * (256 * 1024))
	bfd = os.open(mnt.path('f'), os.O_RDWR)
	dfd = os.open(mnt.path('f'), os.O_RDWR | os.O_DIRECT)
	buf = aligned(65536)
	try:
		assert os.pread(bfd, 65536, 65536) == b'\x01' * 65536	# cache it
		buf[:] = b'\x02' * 65536
		assert os.pwritev(dfd, [buf], 65536) == 65536
		assert os.pread(bfd, 65536, 65536) == b'\x02' * 65536
		os.pwrite(bfd, b'\x03' * 65536, 131072)
		assert os.preadv(dfd, [buf], 131072) == 65536
		assert buf[:] == b'\x03' * 65536
	finally:
		buf.close()
		os.close(bfd)
		os.close(dfd)
	data = read_file(mnt.spath('f'))
	assert data[65536:131072] == b'\x02' * 65536
	assert data[131072:196608] == b'\x03' * 65536


def test_o_direct_short_read_at_eof(mnt):
	write_file(mnt.path('f'), b'e' * 5000)
	fd = os.open(mnt.path('f'), os.O_RDONLY | os.O_DIRECT)
	buf = aligned(16384)
	try:
		assert os.preadv(fd, [buf], 0) == 5000
		assert buf[:5000] == b'e' * 5000
		assert os.preadv(fd, [buf], 8192) == 0
	finally:
		buf.close()
		os.close(fd)


def test_o_direct_many_in_flight(mnt):
	"""Several threads doing O_DIRECT at once: requests overlap in the daemon."""
	size = 8 * MiB
	write_file(mnt.path('f'), bytes(size))
	errors = []

	def worker(seed):
		rnd = random.Random(seed)
		fd = os.open(mnt.path('f'), os.O_RDWR | os.O_DIRECT)
		buf = aligned(16384)
		try:
			for _ in range(150):
				block = rnd.randrange(size // 16384)
				if block % 8 != seed:
					continue
				buf[:] = bytes([seed + 1]) * 16384
				assert os.pwritev(fd, [buf], block * 16384) == 16384
				assert os.preadv(fd, [buf], block * 16384) == 16384
				assert buf[:] == bytes([seed + 1]) * 16384
		except Exception as e:	# reported by the main thread
			errors.append(e)
		finally:
			buf.close()
			os.close(fd)

	threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
	for t in threads:
		t.start()
	for t in threads:
		t.join(120)
	assert not errors, errors


def test_mmap_shared_write_then_read(mnt):
	write_file(mnt.path('f'), bytes(3 * 4096 + 100))
	fd = os.open(mnt.path('f'), os.O_RDWR)
	try:
		m = mmap.mmap(fd, 3 * 4096 + 100, mmap.MAP_SHARED,
			      mmap.PROT_READ | mmap.PROT_WRITE)
		m[0:5] = b'hello'
		m[4096 * 3:4096 * 3 + 100] = b'z' * 100
		m.flush()
		rfd = os.open(mnt.path('f'), os.O_RDONLY)
		assert os.pread(rfd, 5, 0) == b'hello'
		assert os.pread(rfd, 100, 4096 * 3) == b'z' * 100
		os.close(rfd)
		os.pwrite(fd, b'WRITE', 4096)
		assert m[4096:4101] == b'WRITE'
		m.close()
	finally:
		os.close(fd)
	data = read_file(mnt.spath('f'))
	assert data[:5] == b'hello' and data[4096:4101] == b'WRITE'
	assert data[-100:] == b'z' * 100


def test_mmap_extend_and_private(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.ftruncate(fd, 8192)
		m = mmap.mmap(fd, 8192)
		m[8000:8010] = b'0123456789'
		m.flush()
		m.close()
		p = mmap.mmap(fd, 8192, mmap.MAP_PRIVATE)
		p[0:4] = b'PRIV'
		p.close()
		assert os.pread(fd, 4, 0) == bytes(4)
		assert os.pread(fd, 10, 8000) == b'0123456789'
	finally:
		os.close(fd)
	assert read_file(mnt.spath('f'))[8000:8010] == b'0123456789'


def test_mmap_written_data_reaches_source_without_msync(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.ftruncate(fd, MiB)
		m = mmap.mmap(fd, MiB)
		for off in range(0, MiB, 4096):
			m[off:off + 4] = (off // 4096).to_bytes(4, 'little')
		m.close()
		os.fsync(fd)
	finally:
		os.close(fd)
	data = read_file(mnt.spath('f'))
	for off in range(0, MiB, 4096):
		assert data[off:off + 4] == (off // 4096).to_bytes(4, 'little'), off


def pattern(writer, block, size):
	return hashlib.sha256(b'%d:%d' % (writer, block)).digest() * (size // 32)


def test_concurrent_writers_threads(mnt):
	writers, blocks, bsize = 6, 48, 16384
	os.close(os.open(mnt.path('f'), os.O_CREAT | os.O_WRONLY, 0o644))
	shared_fd = os.open(mnt.path('f'), os.O_RDWR)
	errors = []

	def worker(w):
		own = os.open(mnt.path('f'), os.O_RDWR)
		try:
			for b in range(blocks):
				fd = own if b % 2 else shared_fd
				off = (b * writers + w) * bsize
				assert os.pwrite(fd, pattern(w, b, bsize), off) == bsize
		except Exception as e:	# reported by the main thread
			errors.append(e)
		finally:
			os.close(own)

	threads = [threading.Thread(target=worker, args=(w,)) for w in range(writers)]
	try:
		for t in threads:
			t.start()
		for t in threads:
			t.join(120)
	finally:
		os.close(shared_fd)
	assert not errors, errors
	for path in (mnt.path('f'), mnt.spath('f')):
		data = read_file(path)
		assert len(data) == writers * blocks * bsize
		for b in range(blocks):
			for w in range(writers):
				off = (b * writers + w) * bsize
				assert data[off:off + bsize] == pattern(w, b, bsize), (path, w, b)


WRITER = r'''
import hashlib, os, sys
path, w, writers, blocks, bsize = sys.argv[1], *map(int, sys.argv[2:])
fd = os.open(path, os.O_RDWR)
for b in range(blocks):
	off = (b * writers + w) * bsize
	data = hashlib.sha256(b'%d:%d' % (w, b)).digest() * (bsize // 32)
	assert os.pwrite(fd, data, off) == bsize
os.fsync(fd)
os.close(fd)
'''


def test_concurrent_writers_processes(mnt):
	writers, blocks, bsize = 4, 64, 65536
	os.close(os.open(mnt.path('f'), os.O_CREAT | os.O_WRONLY, 0o644))
	procs = [subprocess.Popen(['/usr/bin/python3', '-c', WRITER, mnt.path('f'),
				   str(w), str(writers), str(blocks), str(bsize)])
		 for w in range(writers)]
	for p in procs:
		assert p.wait(timeout=120) == 0
	for path in (mnt.path('f'), mnt.spath('f')):
		data = read_file(path)
		assert len(data) == writers * blocks * bsize
		for b in range(blocks):
			for w in range(writers):
				off = (b * writers + w) * bsize
				assert data[off:off + bsize] == pattern(w, b, bsize), (path, w, b)


def test_big_sequential_roundtrip(mnt):
	"""Large requests (max_write/max_read) carry data intact."""
	data = random.Random(9).randbytes(24 * MiB)
	fd = os.open(mnt.path('f'), os.O_WRONLY | os.O_CREAT, 0o644)
	try:
		for off in range(0, len(data), 4 * MiB):
			assert os.write(fd, data[off:off + 4 * MiB]) == 4 * MiB
	finally:
		os.close(fd)
	assert hashlib.sha256(read_file(mnt.spath('f'))).digest() == hashlib.sha256(data).digest()
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('1')
	assert hashlib.sha256(read_file(mnt.path('f'))).digest() == hashlib.sha256(data).digest()


def test_o_direct_bypasses_the_source_page_cache(mnt):
	"""O_DIRECT through the mount stays O_DIRECT on the backing file: neither
	reads nor writes leave the source's pages in its page cache."""
	from cfsutil import evict, resident_pages
	with open(mnt.spath('f'), 'wb') as f:
		f.write(os.urandom(4 * MiB))
	evict(mnt.spath('f'))
	if resident_pages(mnt.spath('f')):
		# tmpfs: the page cache is where the file lives, nothing bypasses it
		pytest.skip('the source file system cannot drop its page cache (tmpfs?)')
	buf = aligned(MiB)
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_DIRECT)
	try:
		for off in range(0, 4 * MiB, MiB):
			assert os.preadv(fd, [buf], off) == MiB
		assert resident_pages(mnt.spath('f')) == 0, 'O_DIRECT reads went through the page cache'
		buf[:] = b'w' * MiB
		for off in range(0, 4 * MiB, MiB):
			assert os.pwritev(fd, [buf], off) == MiB
		assert resident_pages(mnt.spath('f')) == 0, 'O_DIRECT writes went through the page cache'
	finally:
		os.close(fd)
		buf.close()
	assert read_file(mnt.spath('f')) == b'w' * (4 * MiB)
