# test_readdir.py - readdir and readdirplus: offsets, d_type/d_ino, 10,000 entries, concurrent modification.
import collections
import os
import random
import stat
import threading

import pytest

from cfsutil import DT_NAMES, Dir, getdents, getdents_all
from test_ops import write_file

DT_OF_MODE = {stat.S_IFREG: 8, stat.S_IFDIR: 4, stat.S_IFLNK: 10,
	      stat.S_IFIFO: 1, stat.S_IFSOCK: 12, stat.S_IFCHR: 2}


def populate(m, count):
	for i in range(count):
		write_file(m.path('file-%05d' % i), b'')


def list_getdents(path, bufsize):
	fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
	try:
		return getdents_all(fd, bufsize)
	finally:
		os.close(fd)


def test_getdents_types_and_inodes(mnt):
	populate(mnt, 30)
	os.mkdir(mnt.path('dir'))
	os.symlink('file-00000', mnt.path('link'))
	os.mkfifo(mnt.path('fifo'))
	os.mknod(mnt.path('sock'), stat.S_IFSOCK | 0o600)
	os.mknod(mnt.path('chr'), stat.S_IFCHR | 0o600, os.makedev(1, 3))
	entries = list_getdents(mnt.path(), 1024)
	names = [e[3] for e in entries]
	assert sorted(names) == sorted(os.listdir(mnt.spath()) + ['.', '..'])
	assert len(names) == len(set(names))
	for ino, off, dtype, name in entries:
		st = os.lstat(mnt.path(name))
		if name not in ('.', '..'):
			assert dtype == DT_OF_MODE[stat.S_IFMT(st.st_mode)], \
				'%s: d_type %s' % (name, DT_NAMES.get(dtype))
			# readdir and lookup must agree on the inode number
			assert ino == st.st_ino, '%s: d_ino %d, st_ino %d' % (name, ino, st.st_ino)


def test_getdents_offsets_resume(mnt):
	populate(mnt, 200)
	fd = os.open(mnt.path(), os.O_RDONLY | os.O_DIRECTORY)
	try:
		entries = getdents_all(fd, 512)
		names = [e[3] for e in entries]
		assert len(names) == len(set(names)) == 202
		rnd = random.Random(1)
		for k in rnd.sample(range(len(entries) - 1), 25) + [0, len(entries) - 2]:
			assert os.lseek(fd, entries[k][1], os.SEEK_SET) == entries[k][1]
			rest = getdents_all(fd, 700)
			assert [e[3] for e in rest] == names[k + 1:], 'resume after entry %d' % k
		os.lseek(fd, entries[-1][1], os.SEEK_SET)
		assert getdents(fd) == []
		os.lseek(fd, 0, os.SEEK_SET)
		assert [e[3] for e in getdents_all(fd, 32768)] == names
	finally:
		os.close(fd)


def test_libc_telldir_seekdir(mnt):
	populate(mnt, 300)
	with Dir(mnt.path()) as d:
		positions, names = [], []
		while True:
			pos = d.tell()
			name = d.read()
			if name is None:
				break
			positions.append(pos)
			names.append(name)
		assert sorted(names) == sorted(['.', '..'] + os.listdir(mnt.spath()))
		rnd = random.Random(2)
		for k in rnd.sample(range(len(names)), 40):
			d.seek(positions[k])
			assert d.read() == names[k]
			assert d.read() == (names[k + 1] if k + 1 < len(names) else None)
		d.rewind()
		again = []
		while True:
			name = d.read()
			if name is None:
				break
			again.append(name)
		assert again == names


def test_readdirplus_attributes(mnt):
	for i in range(100):
		write_file(mnt.path('f%03d' % i), b'x' * i, 0o600 + (i % 8))
	with os.scandir(mnt.path()) as it:
		seen = {e.name: e.stat(follow_symlinks=False) for e in it}
	assert len(seen) == 100
	for name, st in seen.items():
		src = os.lstat(mnt.spath(name))
		assert (st.st_mode, st.st_size, st.st_mtime_ns, st.st_nlink) == \
			(src.st_mode, src.st_size, src.st_mtime_ns, src.st_nlink), name


def test_readdir_of_empty_and_root(mnt):
	os.mkdir(mnt.path('empty'))
	assert sorted(e[3] for e in list_getdents(mnt.path('empty'), 4096)) == ['.', '..']
	assert sorted(e[3] for e in list_getdents(mnt.path(), 4096)) == ['.', '..', 'empty']


@pytest.mark.one_backend
@pytest.mark.timeout(180)
def test_ten_thousand_entries(mnt):
	count = 10000
	populate(mnt, count)
	expected = sorted(['.', '..'] + ['file-%05d' % i for i in range(count)])
	for bufsize in (1024, 32768):
		names = [e[3] for e in list_getdents(mnt.path(), bufsize)]
		assert len(names) == len(set(names)), 'duplicates with %d-byte buffers' % bufsize
		assert sorted(names) == expected
	with Dir(mnt.path()) as d:
		positions, names = [], []
		while True:
			pos = d.tell()
			name = d.read()
			if name is None:
				break
			positions.append(pos)
			names.append(name)
		for k in random.Random(5).sample(range(len(names)), 100):
			d.seek(positions[k])
			assert d.read() == names[k]
	# let the kernel forget every inode, then list with attributes again
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('2')
	with os.scandir(mnt.path()) as it:
		sizes = collections.Counter(e.stat().st_size for e in it)
	assert sizes == {0: count}
	assert len(os.listdir(mnt.spath())) == count


@pytest.mark.one_backend
@pytest.mark.timeout(180)
def test_readdir_during_concurrent_changes(mnt):
	"""Entries that exist throughout are seen exactly once per pass, while
	other entries come and go; nothing crashes."""
	stable = ['keep-%05d' % i for i in range(10000)]
	for name in stable:
		os.close(os.open(mnt.spath(name), os.O_CREAT | os.O_WRONLY, 0o644))
	stop = threading.Event()
	errors = []

	def churn():
		i = 0
		try:
			while not stop.is_set():
				name = mnt.path('tmp-%06d' % i)
				os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
				if i >= 20:
					os.unlink(mnt.path('tmp-%06d' % (i - 20)))
				if i % 50 == 0:
					os.mkdir(name + '.d')
					os.rmdir(name + '.d')
				i += 1
		except Exception as e:	# reported by the main thread
			errors.append(e)

	workers = [threading.Thread(target=churn)]
	workers[0].start()
	try:
		for bufsize in (2048, 8192, 65536):
			names = [e[3] for e in list_getdents(mnt.path(), bufsize)]
			counts = collections.Counter(n for n in names if n.startswith('keep-'))
			missing = [n for n in stable if counts[n] == 0]
			doubled = [n for n, c in counts.items() if c > 1]
			assert not missing, '%d stable entries missing, e.g. %s' % (len(missing), missing[:5])
			assert not doubled, 'stable entries seen twice: %s' % doubled[:5]
	finally:
		stop.set()
		for w in workers:
			w.join(60)
	assert not errors, 'create/unlink during readdir failed: %r' % errors
	assert sorted(n for n in os.listdir(mnt.path()) if n.startswith('keep-')) == stable
