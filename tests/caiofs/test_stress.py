# test_stress.py - racing metadata operations from several processes: only the errors a local fs gives, and a consistent tree after.
import collections
import errno
import json
import os
import stat
import subprocess

import pytest

# What racing processes may legitimately see on a local filesystem.
EXPECTED = {errno.ENOENT, errno.EEXIST, errno.ENOTEMPTY, errno.ENOTDIR,
	    errno.EISDIR, errno.EINVAL, errno.EPERM}

WORKER = r'''
import errno, json, os, random, sys
root, seed, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
names = ['n%d' % i for i in range(12)]
dirs = ['', 'd0', 'd1', 'd0/e']
errors = {}

def path():
	return os.path.join(root, rnd.choice(dirs), rnd.choice(names))

def create():
	fd = os.open(path(), os.O_WRONLY | os.O_CREAT, 0o644)
	os.write(fd, b'x' * rnd.randrange(5000))
	os.close(fd)

def readback():
	fd = os.open(path(), os.O_RDONLY)
	try:
		os.read(fd, 10000)
		os.fstat(fd)
	finally:
		os.close(fd)

def listing():
	os.listdir(os.path.join(root, rnd.choice(dirs)))

ops = [create, create, readback, listing,
       lambda: os.link(path(), path()),
       lambda: os.unlink(path()),
       lambda: os.rename(path(), path()),
       lambda: os.mkdir(path()),
       lambda: os.rmdir(path()),
       lambda: os.symlink('target', path()),
       lambda: os.stat(path()),
       lambda: os.truncate(path(), rnd.randrange(3000)),
       lambda: os.chmod(path(), 0o600 | rnd.randrange(0o100))]
for i in range(count):
	try:
		rnd.choice(ops)()
	except OSError as e:
		key = errno.errorcode.get(e.errno, str(e.errno))
		errors[key] = errors.get(key, 0) + 1
print(json.dumps(errors))
'''


def snapshot(root):
	"""{relative path: (type, mode, nlink, size, symlink target)} of a tree."""
	out = {}
	for dirpath, dirs, files in os.walk(root):
		for name in dirs + files:
			p = os.path.join(dirpath, name)
			st = os.lstat(p)
			target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
			size = st.st_size if stat.S_ISREG(st.st_mode) else None
			out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
							  st.st_nlink, size, target)
	return out


@pytest.mark.timeout(180)
def test_racing_metadata_operations(mnt):
	os.makedirs(mnt.path('d0', 'e'))
	os.mkdir(mnt.path('d1'))
	seed = int.from_bytes(os.urandom(3), 'little')
	procs = [subprocess.Popen(['/usr/bin/python3', '-c', WORKER, mnt.path(), str(seed + i), '4000'],
				  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
		 for i in range(4)]
	totals = collections.Counter()
	for p in procs:
		out, err = p.communicate(timeout=150)
		assert p.returncode == 0, err
		totals.update(json.loads(out))
	unexpected = {k: v for k, v in totals.items() if getattr(errno, k, None) not in EXPECTED}
	assert not unexpected, 'seed %d: errors a local fs would not give: %r' % (seed, unexpected)
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('2')
	through, source = snapshot(mnt.path()), snapshot(mnt.spath())
	diff = {k: (through.get(k), source.get(k)) for k in set(through) | set(source)
		if through.get(k) != source.get(k)}
	assert not diff, 'seed %d: mount and source differ: %r' % (seed, diff)
	# every hard-link group is one inode through the mount as well
	groups = collections.defaultdict(set)
	for dirpath, dirs, files in os.walk(mnt.spath()):
		for name in files:
			st = os.lstat(os.path.join(dirpath, name))
			if stat.S_ISREG(st.st_mode):
				groups[st.st_ino].add(os.path.relpath(os.path.join(dirpath, name), mnt.spath()))
	for names in groups.values():
		inos = {os.lstat(mnt.path(n)).st_ino for n in names}
		assert len(inos) == 1, 'hard links %s are %d inodes through the mount' % (names, len(inos))


@pytest.mark.timeout(120)
def test_two_rm_rf_race(mnt):
	"""Two rm -rf of one tree at once: each sees only ENOENT-type races, the tree goes."""
	for d in range(20):
		os.makedirs(mnt.path('tree', 'd%d' % d, 'sub'))
		for f in range(25):
			os.close(os.open(mnt.path('tree', 'd%d' % d, 'f%d' % f), os.O_CREAT | os.O_WRONLY))
	procs = [subprocess.Popen(['rm', '-rf', mnt.path('tree')], stderr=subprocess.PIPE, text=True)
		 for _ in range(2)]
	for p in procs:
		_, err = p.communicate(timeout=100)
		bad = [l for l in err.splitlines() if 'No such file' not in l
		       and 'Directory not empty' not in l]
		assert not bad, bad
	assert os.listdir(mnt.spath()) == [] or os.listdir(mnt.spath()) == ['tree']
	subprocess.run(['rm', '-rf', mnt.path('tree')], check=True)
	assert os.listdir(mnt.spath()) == []


@pytest.mark.timeout(120)
def test_lookups_racing_forgets(mnt):
	"""Readers keep looking up names (and hard links of them) while the kernel
	forgets inodes (drop_caches): lookup counts stay right, nothing fails."""
	import threading
	os.mkdir(mnt.path('d'))
	for i in range(200):
		with open(mnt.path('d', 'f%d' % i), 'wb') as f:
			f.write(b'%d' % i)
		if i % 4 == 0:
			os.link(mnt.path('d', 'f%d' % i), mnt.path('d', 'h%d' % i))
	stop = threading.Event()
	errors = []

	def reader(seed):
		import random
		rnd = random.Random(seed)
		try:
			while not stop.is_set():
				i = rnd.randrange(200)
				name = 'h%d' % i if i % 4 == 0 and rnd.random() < 0.5 else 'f%d' % i
				with open(mnt.path('d', name), 'rb') as f:
					if f.read() != b'%d' % i:
						errors.append('wrong data in %s' % name)
				st = os.stat(mnt.path('d', name))
				if st.st_nlink != (2 if i % 4 == 0 else 1):
					errors.append('%s: nlink %d' % (name, st.st_nlink))
				if rnd.random() < 0.05:
					os.listdir(mnt.path('d'))
		except Exception as e:	# reported by the main thread
			errors.append(repr(e))

	threads = [threading.Thread(target=reader, args=(i,)) for i in range(3)]
	for t in threads:
		t.start()
	try:
		import time
		end = time.monotonic() + 1.5	# a fixed amount of racing
		while time.monotonic() < end:
			with open('/proc/sys/vm/drop_caches', 'w') as f:
				f.write('2')
	finally:
		stop.set()
		for t in threads:
			t.join(60)
	assert not errors, errors[:10]
	inodes = mnt.stat_json()['inodes']['count']
	assert inodes <= 200 + 2 + 64, 'more inodes remembered than exist: %d' % inodes
