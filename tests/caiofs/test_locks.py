# test_locks.py - flock and POSIX locks conflict between processes; SQLite used by two processes on the mount.
import errno
import fcntl
import json
import os
import sqlite3
import subprocess

import pytest

from cfsutil import getlk
from test_ops import write_file

PY = '/usr/bin/python3'

LOCKER = r'''
import errno, fcntl, json, os, struct, sys
path, kind, start, length = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
fd = os.open(path, os.O_RDWR)
out = {}
try:
	if kind == 'flock':
		fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
	elif kind == 'flock-sh':
		fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
	elif kind == 'posix':
		fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, length, start)
	elif kind == 'getlk':
		req = struct.pack('hhqqi', fcntl.F_WRLCK, 0, start, length, 0) + bytes(4)
		t, w, s, l, pid = struct.unpack('hhqqi', fcntl.fcntl(fd, fcntl.F_GETLK, req)[:28])
		out.update(type=t, start=s, len=l, pid=pid)
	out['errno'] = 0
except OSError as e:
	out['errno'] = e.errno
print(json.dumps(out))
'''


def other_process(path, kind, start=0, length=0):
	res = subprocess.run([PY, '-c', LOCKER, path, kind, str(start), str(length)],
			     capture_output=True, text=True, timeout=60)
	assert res.returncode == 0, res.stderr
	return json.loads(res.stdout)


def test_flock_conflict(mnt):
	write_file(mnt.path('f'), b'lock me')
	fd = os.open(mnt.path('f'), os.O_RDWR)
	try:
		fcntl.flock(fd, fcntl.LOCK_EX)
		assert other_process(mnt.path('f'), 'flock')['errno'] == errno.EWOULDBLOCK
		assert other_process(mnt.path('f'), 'flock-sh')['errno'] == errno.EWOULDBLOCK
		fcntl.flock(fd, fcntl.LOCK_SH)
		assert other_process(mnt.path('f'), 'flock-sh')['errno'] == 0
		assert other_process(mnt.path('f'), 'flock')['errno'] == errno.EWOULDBLOCK
		fcntl.flock(fd, fcntl.LOCK_UN)
		assert other_process(mnt.path('f'), 'flock')['errno'] == 0
		fcntl.flock(fd, fcntl.LOCK_EX)
	finally:
		os.close(fd)	# closing the last fd releases a flock
	assert other_process(mnt.path('f'), 'flock')['errno'] == 0


def test_posix_lock_conflict(mnt):
	write_file(mnt.path('f'), bytes(1000))
	fd = os.open(mnt.path('f'), os.O_RDWR)
	try:
		fcntl.lockf(fd, fcntl.LOCK_EX, 100, 0)		# bytes 0..99
		assert other_process(mnt.path('f'), 'posix', 50, 100)['errno'] in (errno.EAGAIN, errno.EACCES)
		assert other_process(mnt.path('f'), 'posix', 100, 100)['errno'] == 0
		lk = other_process(mnt.path('f'), 'getlk', 0, 1000)
		assert lk['type'] == fcntl.F_WRLCK, 'F_GETLK does not see the lock: %r' % lk
		assert (lk['start'], lk['len'], lk['pid']) == (0, 100, os.getpid()), lk
		assert getlk(fd, fcntl.F_WRLCK, 0, 1000)[0] == fcntl.F_UNLCK	# own lock
		fcntl.lockf(fd, fcntl.LOCK_UN, 100, 0)
		assert other_process(mnt.path('f'), 'posix', 0, 100)['errno'] == 0
		assert other_process(mnt.path('f'), 'getlk', 0, 1000)['type'] == fcntl.F_UNLCK
		fcntl.lockf(fd, fcntl.LOCK_SH, 0, 0)		# whole file, shared
		assert other_process(mnt.path('f'), 'posix', 999, 1)['errno'] in (errno.EAGAIN, errno.EACCES)
	finally:
		os.close(fd)
	assert other_process(mnt.path('f'), 'posix', 0, 0)['errno'] == 0


def test_posix_lock_released_when_any_fd_closes(mnt):
	write_file(mnt.path('f'), bytes(10))
	fd1 = os.open(mnt.path('f'), os.O_RDWR)
	fd2 = os.open(mnt.path('f'), os.O_RDONLY)
	try:
		fcntl.lockf(fd1, fcntl.LOCK_EX, 0, 0)
		assert other_process(mnt.path('f'), 'posix', 0, 0)['errno'] in (errno.EAGAIN, errno.EACCES)
		os.close(fd2)
		fd2 = -1
		assert other_process(mnt.path('f'), 'posix', 0, 0)['errno'] == 0
	finally:
		os.close(fd1)
		if fd2 >= 0:
			os.close(fd2)


def test_posix_lock_blocking_wait(mnt):
	"""F_SETLKW waits for the holder, then gets the lock and sees its writes."""
	write_file(mnt.path('f'), bytes(10))
	fd = os.open(mnt.path('f'), os.O_RDWR)
	fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
	code = r'''
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
	fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
	print('not-blocked', flush=True)
except OSError as e:
	print('waiting' if e.errno in (errno.EAGAIN, errno.EACCES) else e, flush=True)
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
print(os.pread(fd, 6, 0).decode(errors='replace'), flush=True)
'''
	child = subprocess.Popen([PY, '-c', code, mnt.path('f')], stdout=subprocess.PIPE, text=True)
	try:
		assert child.stdout.readline().strip() == 'waiting'
		os.pwrite(fd, b'parent', 0)
		fcntl.lockf(fd, fcntl.LOCK_UN, 0, 0)
		assert child.stdout.readline().strip() == 'parent'
		assert child.wait(timeout=60) == 0
	finally:
		os.close(fd)
		if child.poll() is None:
			child.kill()
			child.wait()
		child.stdout.close()


SQLITE_WORKER = r'''
import sqlite3, sys
path, mode, who, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
db = sqlite3.connect(path, timeout=60, isolation_level=None)
db.execute('PRAGMA journal_mode=' + mode)
for i in range(count):
	db.execute('BEGIN IMMEDIATE')
	n = db.execute('SELECT COUNT(*) FROM t').fetchone()[0]
	db.execute('INSERT INTO t(who, seq, seen) VALUES (?, ?, ?)', (who, i, n))
	db.execute('COMMIT')
db.close()
'''

SQLITE_TRY = r'''
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=0, isolation_level=None)
try:
	db.execute("INSERT INTO t(who, seq, seen) VALUES ('try', 0, 0)")
	print('ok')
except sqlite3.OperationalError as e:
	print('locked' if 'locked' in str(e) else 'error: %s' % e)
try:
	print(db.execute('SELECT COUNT(*) FROM t').fetchone()[0])
except sqlite3.OperationalError:
	print(-1)
db.close()
'''


def try_write(path):
	res = subprocess.run([PY, '-c', SQLITE_TRY, path], capture_output=True,
			     text=True, timeout=60)
	assert res.returncode == 0, res.stderr
	status, count = res.stdout.split()
	return status, int(count)


@pytest.mark.parametrize('journal', ['delete', 'wal'])
def test_sqlite_two_processes(mnt, journal):
	path = mnt.path('test.db')
	db = sqlite3.connect(path, timeout=60, isolation_level=None)
	try:
		assert db.execute('PRAGMA journal_mode=' + journal).fetchone()[0] == journal
		db.execute('CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT, seq INT, seen INT)')
		db.execute('BEGIN EXCLUSIVE' if journal == 'delete' else 'BEGIN IMMEDIATE')
		db.execute("INSERT INTO t(who, seq, seen) VALUES ('main', -1, 0)")
		status, count = try_write(path)
		assert status == 'locked', 'a second process wrote into a locked database'
		db.execute('COMMIT')
		assert try_write(path) == ('ok', 2)
		procs = [subprocess.Popen([PY, '-c', SQLITE_WORKER, path, journal, 'p%d' % i, '150'])
			 for i in range(2)]
		for i in range(150):
			db.execute('BEGIN IMMEDIATE')
			n = db.execute('SELECT COUNT(*) FROM t').fetchone()[0]
			db.execute('INSERT INTO t(who, seq, seen) VALUES (?, ?, ?)', ('main', i, n))
			db.execute('COMMIT')
		for p in procs:
			assert p.wait(timeout=120) == 0
		rows = db.execute('SELECT who, seq, seen FROM t ORDER BY id').fetchall()
		assert len(rows) == 2 + 3 * 150
		seens = sorted(r[2] for r in rows if r[1] >= 0 and r[0] != 'try')
		# each transaction saw every earlier commit: the counts are 2..451, no repeats
		assert seens == list(range(2, 2 + 3 * 150)), 'lost or interleaved transactions'
		assert db.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
	finally:
		db.close()
	src = sqlite3.connect(mnt.spath('test.db'))
	try:
		assert src.execute('SELECT COUNT(*) FROM t').fetchone()[0] == 2 + 3 * 150
		assert src.execute('PRAGMA integrity_check').fetchone()[0] == 'ok'
	finally:
		src.close()
