# test_links.py - hard links are one inode; files unlinked or renamed over while open keep working, with no placeholders.
import os

from test_ops import read_file, write_file


def test_hard_link_is_one_inode(mnt):
	write_file(mnt.path('a'), b'first')
	os.mkdir(mnt.path('d'))
	os.link(mnt.path('a'), mnt.path('d', 'b'))
	sa, sb = os.stat(mnt.path('a')), os.stat(mnt.path('d', 'b'))
	assert sa.st_ino == sb.st_ino
	assert sa.st_nlink == sb.st_nlink == 2
	assert os.stat(mnt.spath('a')).st_nlink == 2
	os.link(mnt.path('d', 'b'), mnt.path('c'))
	for name in ('a', 'd/b', 'c'):
		assert os.stat(mnt.path(name)).st_nlink == 3, name
	os.unlink(mnt.path('a'))
	assert os.stat(mnt.path('c')).st_nlink == 2
	assert os.stat(mnt.path('d', 'b')).st_nlink == 2
	os.unlink(mnt.path('c'))
	assert os.stat(mnt.path('d', 'b')).st_nlink == 1
	assert read_file(mnt.path('d', 'b')) == b'first'


def test_hard_link_data_and_size_seen_at_once(mnt):
	write_file(mnt.path('a'), b'')
	os.link(mnt.path('a'), mnt.path('b'))
	fa = os.open(mnt.path('a'), os.O_RDWR)
	fb = os.open(mnt.path('b'), os.O_RDWR)
	try:
		assert os.fstat(fb).st_size == 0
		assert os.read(fb, 10) == b''	# the page cache of b is now populated
		os.pwrite(fa, b'written through a', 0)
		assert os.fstat(fb).st_size == len(b'written through a')
		assert os.pread(fb, 100, 0) == b'written through a'
		assert os.stat(mnt.path('b')).st_size == len(b'written through a')
		os.pwrite(fb, b'B', 0)
		assert os.pread(fa, 100, 0) == b'Britten through a'
		os.ftruncate(fb, 4)
		assert os.fstat(fa).st_size == 4
		assert os.pread(fa, 100, 0) == b'Brit'
		os.fchmod(fa, 0o600)
		assert os.stat(mnt.path('b')).st_mode & 0o777 == 0o600
		os.setxattr(mnt.path('a'), 'user.shared', b'1')
		assert os.getxattr(mnt.path('b'), 'user.shared') == b'1'
	finally:
		os.close(fa)
		os.close(fb)
	assert read_file(mnt.spath('b')) == b'Brit'


def test_hard_link_after_rename_and_forget(mnt):
	"""The inode table stays keyed by the backing inode across renames and
	kernel forgets (drop_caches makes the kernel forget every unused inode)."""
	write_file(mnt.path('a'), b'x')
	os.link(mnt.path('a'), mnt.path('b'))
	ino = os.stat(mnt.path('a')).st_ino
	os.rename(mnt.path('a'), mnt.path('renamed'))
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('2')
	assert os.stat(mnt.path('renamed')).st_ino == os.stat(mnt.path('b')).st_ino
	assert os.stat(mnt.path('b')).st_nlink == 2
	fd = os.open(mnt.path('renamed'), os.O_WRONLY | os.O_APPEND)
	os.write(fd, b'yz')
	os.close(fd)
	assert read_file(mnt.path('b')) == b'xyz'
	assert os.stat(mnt.path('b')).st_ino in (ino, os.stat(mnt.path('renamed')).st_ino)


def test_unlink_while_open(mnt):
	fd = os.open(mnt.path('f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.write(fd, b'before unlink;')
		os.unlink(mnt.path('f'))
		assert os.listdir(mnt.path()) == []
		assert os.listdir(mnt.spath()) == []
		assert not os.path.exists(mnt.path('f'))
		os.write(fd, b'after unlink;')
		os.fsync(fd)
		assert os.pread(fd, 100, 0) == b'before unlink;after unlink;'
		assert os.fstat(fd).st_nlink == 0
		assert os.fstat(fd).st_size == 27
		os.ftruncate(fd, 6)
		assert os.pread(fd, 100, 0) == b'before'
		write_file(mnt.path('f'), b'new file, same name')
		assert os.pread(fd, 100, 0) == b'before'
		assert read_file(mnt.path('f')) == b'new file, same name'
		assert sorted(os.listdir(mnt.spath())) == ['f']
	finally:
		os.close(fd)
	assert sorted(os.listdir(mnt.spath())) == ['f']
	assert sorted(os.listdir(mnt.path())) == ['f']


def test_unlink_while_open_many(mnt):
	"""No hidden placeholder files, whatever the number of open unlinked files."""
	fds = []
	try:
		for i in range(50):
			fd = os.open(mnt.path('f%d' % i), os.O_RDWR | os.O_CREAT, 0o644)
			fds.append(fd)
			os.write(fd, b'%d' % i)
			os.unlink(mnt.path('f%d' % i))
		assert os.listdir(mnt.spath()) == [] and os.listdir(mnt.path()) == []
		for i, fd in enumerate(fds):
			assert os.pread(fd, 10, 0) == b'%d' % i
	finally:
		for fd in fds:
			os.close(fd)
	assert os.listdir(mnt.spath()) == []


def test_unlink_open_directory(mnt):
	os.mkdir(mnt.path('d'))
	fd = os.open(mnt.path('d'), os.O_RDONLY | os.O_DIRECTORY)
	try:
		os.rmdir(mnt.path('d'))
		assert os.listdir(fd) == []
		assert os.listdir(mnt.spath()) == []
	finally:
		os.close(fd)


def test_rename_over_open_file(mnt):
	write_file(mnt.path('old'), b'old content')
	write_file(mnt.path('new'), b'replacement')
	fd = os.open(mnt.path('old'), os.O_RDWR)
	try:
		assert os.pread(fd, 100, 0) == b'old content'
		os.rename(mnt.path('new'), mnt.path('old'))
		assert read_file(mnt.path('old')) == b'replacement'
		assert sorted(os.listdir(mnt.spath())) == ['old']
		assert sorted(os.listdir(mnt.path())) == ['old']
		assert os.pread(fd, 100, 0) == b'old content'
		os.pwrite(fd, b'OLD', 0)
		assert os.pread(fd, 100, 0) == b'OLD content'
		assert read_file(mnt.path('old')) == b'replacement'
		assert os.fstat(fd).st_nlink == 0
	finally:
		os.close(fd)
	assert read_file(mnt.spath('old')) == b'replacement'
	assert sorted(os.listdir(mnt.spath())) == ['old']


def test_open_file_survives_rename(mnt):
	os.mkdir(mnt.path('d1'))
	os.mkdir(mnt.path('d2'))
	fd = os.open(mnt.path('d1', 'f'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.write(fd, b'one ')
		os.rename(mnt.path('d1', 'f'), mnt.path('d2', 'g'))
		os.rename(mnt.path('d2'), mnt.path('d3'))
		os.write(fd, b'two')
		os.fsync(fd)
	finally:
		os.close(fd)
	assert read_file(mnt.spath('d3', 'g')) == b'one two'
	assert read_file(mnt.path('d3', 'g')) == b'one two'
