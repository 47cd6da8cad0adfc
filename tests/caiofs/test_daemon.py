# test_daemon.py - the daemon itself: arguments, options, signals, clean unmount, ENOSPC, caiofs-stat.
import errno
import json
import mmap
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import (CAIOFS, CAIOFS_STAT, backend_expected, build_dir, configured,
		      fusermount_u, mounted, unmount)
from test_ops import read_file, write_file

MiB = 1 << 20
# config.h's symbol for the library each kernel backend is built on
BUILT_WITH = {'uring': 'HAVE_LIBURING', 'linux': 'HAVE_LIBAIO'}


def run_caiofs(args, timeout=20, env=None):
	return subprocess.run([CAIOFS] + args, capture_output=True, text=True,
			      timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def test_version_and_help():
	res = run_caiofs(['--version'])
	assert res.returncode == 0, res.stderr
	assert 'caiofs' in (res.stdout + res.stderr).lower()
	assert any(c.isdigit() for c in res.stdout + res.stderr)
	res = run_caiofs(['--help'])
	assert res.returncode == 0, res.stderr
	text = res.stdout + res.stderr
	for word in ('backend', 'threads', 'queue_depth', 'allow_other', 'default_permissions'):
		assert word in text, '--help does not mention %s' % word


def refuses(workdir, args, must_mention, env=None, status=None):
	"""caiofs given args exits non-zero (status, if given) at once, naming the
	problem, mounting nothing."""
	try:
		res = run_caiofs(['-f'] + args, env=env)
	except subprocess.TimeoutExpired:
		pytest.fail('caiofs %s did not exit: it should refuse' % ' '.join(args))
	finally:
		for dirpath, dirs, files in os.walk(workdir):
			if mounted(dirpath):
				fusermount_u(dirpath, lazy=True)
				pytest.fail('caiofs %s mounted %s' % (' '.join(args), dirpath))
	assert res.returncode != 0, 'caiofs %s exited 0' % ' '.join(args)
	assert res.returncode < 128, 'caiofs crashed: status %d\n%s' % (res.returncode, res.stderr)
	if status is not None:
		assert res.returncode == status, 'caiofs %s exited %d, not %d\n%s' % (
			' '.join(args), res.returncode, status, res.stderr)
	text = res.stderr.lower()
	for word in must_mention:
		choices = word if isinstance(word, tuple) else (word,)
		assert any(c.lower() in text for c in choices), \
			'message %r does not mention %s' % (res.stderr, ' or '.join(map(repr, choices)))
	return res.stderr


def test_bad_source_missing(workdir):
	mnt = os.path.join(workdir, 'mnt')
	os.mkdir(mnt)
	missing = os.path.join(workdir, 'no-such-source')
	refuses(workdir, [missing, mnt], [missing, ('no such file', 'does not exist', 'not found')])


def test_bad_source_not_a_directory(workdir):
	mnt = os.path.join(workdir, 'mnt')
	os.mkdir(mnt)
	src = os.path.join(workdir, 'plain-file')
	write_file(src, b'')
	refuses(workdir, [src, mnt], [src, 'not a directory'])


def test_bad_mount_point_missing(workdir):
	src = os.path.join(workdir, 'src')
	os.mkdir(src)
	missing = os.path.join(workdir, 'no-such-mnt')
	refuses(workdir, [src, missing], [missing])


@pytest.mark.parametrize('option', ['backend=bogus', 'backend='])
def test_bad_backend(workdir, option):
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	words = ['backend'] + ([option.split('=')[1]] if option != 'backend=' else [])
	refuses(workdir, ['-o', option, src, mnt], words)


@pytest.mark.parametrize('option', ['queue_depth=abc', 'threads=-3', 'no_such_option'])
def test_bad_option_values(workdir, option):
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	refuses(workdir, ['-o', option, src, mnt], [option.split('=')[0]])


@pytest.mark.one_backend
def test_invalid_caio_impl_is_reported(mount_factory, backend):
	"""libcaio treats an unknown CAIO_IMPL as a hint it cannot follow: it
	chooses automatically, and the daemon's log must say so."""
	m = mount_factory(backend, env=dict(os.environ, CAIO_IMPL='bogus'))
	assert 'bogus' in m.log(), 'CAIO_IMPL=bogus ignored silently:\n' + m.log()
	write_file(m.path('f'), b'works')
	assert read_file(m.spath('f')) == b'works'


def test_missing_arguments(workdir):
	res = run_caiofs([])
	assert res.returncode not in (0, None) and res.returncode < 128
	assert res.stderr.strip(), 'no usage message'
	res = run_caiofs([os.path.join(workdir)])
	assert res.returncode != 0 and res.returncode < 128 and res.stderr.strip()


def mount_count(path):
	path = os.path.realpath(path)
	with open('/proc/self/mountinfo') as f:
		return sum(1 for line in f if line.split()[4] == path)


def test_mount_point_busy(mount_factory, workdir):
	first = mount_factory('auto')
	other_src = os.path.join(workdir, 'other-src')
	os.mkdir(other_src)
	proc = subprocess.Popen([CAIOFS, '-f', other_src, first.mnt], stdin=subprocess.DEVNULL,
				stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	try:
		out, err = proc.communicate(timeout=20)
	except subprocess.TimeoutExpired:
		proc.kill()
		proc.communicate()
		pytest.fail('a second caiofs mounted over a busy mount point')
	finally:
		# whatever a wrong second mount stacked on top goes away
		while mount_count(first.mnt) > 1:
			fusermount_u(first.mnt, lazy=True)
	assert proc.returncode != 0 and proc.returncode < 128, err
	assert first.mnt in err and ('busy' in err.lower() or 'mounted' in err.lower()), err
	write_file(first.path('still-works'), b'yes')
	assert read_file(first.spath('still-works')) == b'yes'


@pytest.mark.parametrize('signum', [signal.SIGTERM, signal.SIGINT])
def test_signal_unmounts_cleanly(mount_factory, backend, signum):
	m = mount_factory(backend)
	data = os.urandom(3 * MiB + 123)
	write_file(m.path('kept'), data)
	os.mkdir(m.path('dir'))
	write_file(m.path('dir', 'small'), b'small')
	m.proc.send_signal(signum)
	rc = m.wait_exit()
	assert rc == 0, 'caiofs exited %d on %s:\n%s' % (rc, signum.name, m.log())
	assert not mounted(m.mnt), 'still mounted after the daemon exited'
	assert read_file(m.spath('kept')) == data
	assert read_file(m.spath('dir', 'small')) == b'small'
	assert sorted(os.listdir(m.spath())) == ['dir', 'kept']


def test_sigterm_with_busy_file(mount_factory, backend):
	"""SIGTERM while a file is open: the mount leaves the namespace at once,
	the open file keeps working until it is closed, then the daemon exits 0
	and every byte written is in the source."""
	m = mount_factory(backend)
	fd = os.open(m.path('open'), os.O_RDWR | os.O_CREAT, 0o644)
	try:
		os.write(fd, b'a' * MiB)
		m.proc.send_signal(signal.SIGTERM)
		end = time.monotonic() + 20
		while mounted(m.mnt) and time.monotonic() < end:
			time.sleep(0.02)	# bounded poll for the detach
		assert not mounted(m.mnt), 'still mounted 20 s after SIGTERM'
		os.write(fd, b'b' * MiB)
		assert os.pread(fd, 4, MiB - 2) == b'aabb'
		os.fsync(fd)
	finally:
		os.close(fd)
	rc = m.wait_exit()
	assert rc == 0, m.log()
	assert read_file(m.spath('open')) == b'a' * MiB + b'b' * MiB


def log_grows(m, before, deadline=10.0):
	end = time.monotonic() + deadline
	while time.monotonic() < end:
		text = m.log()
		if len(text) > before and text.endswith('\n'):
			return text[before:]
		time.sleep(0.05)	# bounded poll of the daemon's log
	return ''


def test_sigusr1_prints_summary(mount_factory, backend):
	m = mount_factory(backend)
	write_file(m.path('f'), b'x' * MiB)
	read_file(m.path('f'))
	before = len(m.log())
	m.proc.send_signal(signal.SIGUSR1)
	added = log_grows(m, before)
	assert added, 'nothing logged after SIGUSR1'
	assert 'write' in added.lower() and 'read' in added.lower(), added
	assert m.proc.poll() is None, 'SIGUSR1 killed the daemon'
	assert read_file(m.path('f')) == b'x' * MiB


def test_unmount_prints_summary(mount_factory, backend):
	m = mount_factory(backend)
	write_file(m.path('f'), b'x' * MiB)
	before = len(m.log())
	rc, err = unmount(m.mnt)
	assert rc == 0, err
	assert m.wait_exit() == 0, m.log()
	added = m.log()[before:]
	assert 'write' in added.lower(), 'no summary at unmount: %r' % added


def test_backend_logged_at_mount(mount_factory, backend):
	m = mount_factory(backend)
	first_lines = m.log()
	name = backend if backend != 'auto' else None
	if name:
		assert name in first_lines, 'backend %s not logged at mount:\n%s' % (name, first_lines)
	else:
		assert any(b in first_lines for b in ('uring', 'linux', 'thread', 'sync')), first_lines


@pytest.mark.one_backend
def test_caio_impl_environment(mount_factory, backend):
	m = mount_factory(backend, env=dict(os.environ, CAIO_IMPL='thread'))
	assert backend_in_stats(m.stat_json()) == 'thread'


def flatten(obj, prefix=''):
	"""{'a': {'b': 1}} -> {'a.b': 1}; lists are indexed."""
	out = {}
	if isinstance(obj, dict):
		for k, v in obj.items():
			out.update(flatten(v, '%s%s.' % (prefix, k)))
	elif isinstance(obj, list):
		for i, v in enumerate(obj):
			out.update(flatten(v, '%s%d.' % (prefix, i)))
	else:
		out[prefix.rstrip('.')] = obj
	return out


def backend_in_stats(stats):
	flat = flatten(stats)
	names = [v for k, v in flat.items() if k.split('.')[-1] == 'backend']
	assert names, 'no "backend" field in caiofs-stat --json: %r' % stats
	return names[0]


def deltas(before, after, *words):
	"""Numeric fields whose path contains every word, and how much they grew."""
	a, b = flatten(before), flatten(after)
	out = {}
	for k, v in b.items():
		low = k.lower()
		if all(w in low for w in words) and isinstance(v, (int, float)) \
				and not isinstance(v, bool):
			out[k] = v - a.get(k, 0)
	return out


def direct_io(m, size):
	buf = mmap.mmap(-1, size)
	buf[:] = b'd' * size
	fd = os.open(m.path('direct'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
	try:
		assert os.pwritev(fd, [buf], 0) == size
		os.fsync(fd)
		assert os.preadv(fd, [buf], 0) == size
	finally:
		os.close(fd)
		buf.close()


def test_stat_counters(mount_factory, backend):
	m = mount_factory(backend)
	before = m.stat_json()
	if backend != 'auto':
		assert backend_in_stats(before) == backend
	direct_io(m, 4 * MiB)
	after = m.stat_json()
	wbytes = deltas(before, after, 'write', 'bytes')
	rbytes = deltas(before, after, 'read', 'bytes')
	assert any(d >= 4 * MiB for d in wbytes.values()), 'write bytes did not grow: %r' % wbytes
	assert any(d >= 4 * MiB for d in rbytes.values()), 'read bytes did not grow: %r' % rbytes
	wcount = deltas(before, after, 'write', 'count')
	assert any(d >= 1 for d in wcount.values()), 'write count did not grow: %r' % wcount
	fsyncs = deltas(before, after, 'fsync')
	assert any(d >= 1 for d in fsyncs.values()), 'fsync not counted: %r' % fsyncs
	keys = ' '.join(flatten(after)).lower()
	for word in ('batch', 'p50', 'p99', 'max', 'flight', 'error'):
		assert word in keys, 'caiofs-stat --json has no %r field: %s' % (word, keys)


@pytest.mark.one_backend
def test_stat_text_and_interval(mnt):
	if CAIOFS_STAT is None:
		pytest.skip('caiofs-stat was not built')
	write_file(mnt.path('f'), b'x' * 100000)
	assert read_file(mnt.path('f')) == b'x' * 100000
	res = subprocess.run([CAIOFS_STAT, mnt.mnt], capture_output=True, text=True, timeout=30)
	assert res.returncode == 0, res.stderr
	assert 'read' in res.stdout.lower() and 'write' in res.stdout.lower(), res.stdout
	proc = subprocess.Popen([CAIOFS_STAT, '-i', '1', mnt.mnt], stdout=subprocess.PIPE,
				stderr=subprocess.PIPE, text=True)
	try:
		lines = []
		reports = lambda: sum(1 for x in lines if re.match(r'\d\d:\d\d:\d\d ', x))	# noqa: E731
		while len(lines) < 200 and reports() < 3:
			line = proc.stdout.readline()	# the test's time limit bounds this
			if not line:
				break
			lines.append(line)
			if reports() == 1:
				write_file(mnt.path('f'), b'y' * 100000)
		assert reports() >= 3, '-i 1 did not print repeated reports: %r' % lines
	finally:
		proc.kill()
		proc.wait()
		proc.stdout.close()
		proc.stderr.close()


def test_stat_bad_mount_point(workdir):
	if CAIOFS_STAT is None:
		pytest.skip('caiofs-stat was not built')
	res = subprocess.run([CAIOFS_STAT, workdir], capture_output=True, text=True, timeout=30)
	assert res.returncode != 0 and res.stderr.strip()


@pytest.mark.one_backend
def test_options_threads_queue_depth(mount_factory, backend):
	m = mount_factory(backend, ['threads=2', 'queue_depth=8'])
	direct_io(m, 2 * MiB)
	data = os.urandom(5 * MiB)
	write_file(m.path('f'), data)
	assert read_file(m.spath('f')) == data


def test_default_loops(mount_factory, backend):
	"""Two event loops per CPU; eight with the sync backend, whose loops
	are its only concurrency (each blocks in every request); at most 64."""
	m = mount_factory(backend)
	stats = m.stat_json()
	per_cpu = 8 if backend_in_stats(stats) == 'sync' else 2
	assert stats['loops'] == min(per_cpu * os.cpu_count(), 64), stats['loops']
	m = mount_factory(backend, ['threads=3'])
	assert m.stat_json()['loops'] == 3


@pytest.mark.one_backend
def test_cache_never_sees_source_changes(mount_factory, backend):
	m = mount_factory(backend, ['cache=never'])
	write_file(m.path('f'), b'version one')
	assert read_file(m.path('f')) == b'version one'
	write_file(m.spath('f'), b'version two, longer')
	assert read_file(m.path('f')) == b'version two, longer'
	write_file(m.spath('new'), b'')
	assert 'new' in os.listdir(m.path())
	assert os.path.exists(m.path('new'))


@pytest.mark.timeout(120)
def test_enospc_on_small_source(mount_factory, backend, workdir):
	src = os.path.join(workdir, 'tiny')
	os.mkdir(src)
	subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'caiofs-enospc', src], check=True)
	try:
		m = mount_factory(backend, src=src)
		err = None
		fd = os.open(m.path('fill'), os.O_WRONLY | os.O_CREAT, 0o644)
		try:
			chunk = b'f' * 65536
			for _ in range(16 * MiB // len(chunk)):
				os.write(fd, chunk)
			os.fsync(fd)
		except OSError as e:
			err = e
		finally:
			try:
				os.close(fd)
			except OSError as e:
				err = err or e
		assert err is not None, 'wrote 16 MiB into a 4 MiB filesystem'
		assert err.errno == errno.ENOSPC, 'expected ENOSPC, got %r' % err
		assert os.stat(src + '/fill').st_size <= 4 * MiB
		os.unlink(m.path('fill'))
		# RELEASE reaches the daemon asynchronously: the space comes back
		# once it closes the backing file, which must happen promptly
		end = time.monotonic() + 10
		while os.statvfs(src).f_bfree < os.statvfs(src).f_blocks // 2 and \
				time.monotonic() < end:
			time.sleep(0.01)	# bounded poll
		assert os.statvfs(src).f_bfree >= os.statvfs(src).f_blocks // 2, \
			'space of the unlinked file not released within 10 s'
		write_file(m.path('after'), b'space again')
		assert read_file(os.path.join(src, 'after')) == b'space again'
		m.stop()
		assert not m.problems, m.problems
	finally:
		if mounted(src):
			subprocess.run(['umount', '-l', src])


def alive(pid):
	"""Running (not gone, not a zombie waiting for a parent that never reaps)."""
	try:
		with open('/proc/%d/stat' % pid) as f:
			return f.read().rsplit(')', 1)[1].split()[0] != 'Z'
	except OSError:
		return False


def find_daemon(mnt):
	"""Pids whose command line names mnt (a daemonised caiofs)."""
	pids = []
	for pid in os.listdir('/proc'):
		if not pid.isdigit():
			continue
		try:
			with open('/proc/%s/cmdline' % pid, 'rb') as f:
				argv = f.read().split(b'\0')
		except OSError:
			continue
		if os.fsencode(mnt) in argv and any(b'caiofs' in a for a in argv[:2]):
			pids.append(int(pid))
	return pids


def test_fstab_style_mount(workdir):
	"""mount -t fuse 'CAIOFS#SRC' MNT -o ... (what an fstab line does): the
	daemon backgrounds itself, the mount works, unmounting ends the daemon.
	(The fuse.caiofs type form needs caiofs installed in mount's PATH.)"""
	if not shutil.which('mount.fuse3') and not os.path.exists('/sbin/mount.fuse3'):
		pytest.skip('mount.fuse3 is missing')
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	res = subprocess.run(['mount', '-t', 'fuse', os.path.abspath(CAIOFS) + '#' + src, mnt,
			      '-o', 'backend=thread,allow_other,default_permissions'],
			     capture_output=True, text=True, timeout=30)
	pids = []
	try:
		assert res.returncode == 0, res.stderr
		assert mounted(mnt)
		pids = find_daemon(mnt)
		assert pids, 'no caiofs process found for the mount'
		write_file(os.path.join(mnt, 'f'), b'fstab')
		assert read_file(os.path.join(src, 'f')) == b'fstab'
		rc, err = unmount(mnt)
		assert rc == 0, err
		end = time.monotonic() + 20
		while time.monotonic() < end and any(alive(p) for p in pids):
			time.sleep(0.05)	# bounded wait for the daemon to go
		assert not any(alive(p) for p in pids), \
			'caiofs still running after the unmount'
	finally:
		if mounted(mnt):
			fusermount_u(mnt, lazy=True)
		for p in pids:
			try:
				os.kill(p, signal.SIGKILL)
			except ProcessLookupError:
				pass


def connection_dir(m):
	return '/sys/fs/fuse/connections/%d' % os.minor(m.dev)


def mountinfo_entry(path):
	"""(fstype, source) of the mount at path."""
	path = os.path.realpath(path)
	with open('/proc/self/mountinfo') as f:
		for line in f:
			fields = line.split()
			if fields[4] == path:
				rest = fields[fields.index('-') + 1:]
				return rest[0], rest[1]
	return None


def test_kernel_limits_and_capabilities(mount_factory, backend):
	"""max_background raised far above the kernel's 12, large requests,
	parallel lookups in one directory and async direct I/O negotiated."""
	m = mount_factory(backend)
	if os.path.isdir(connection_dir(m)):
		with open(connection_dir(m) + '/max_background') as f:
			assert int(f.read()) >= 64
		with open(connection_dir(m) + '/congestion_threshold') as f:
			assert int(f.read()) >= 48
	else:	# no fusectl here: what the daemon negotiated, from its log
		found = re.search(r'max_background (\d+)', m.log())
		assert found and int(found.group(1)) >= 64, m.log()
	stats = m.stat_json()
	assert stats['max_write'] >= MiB, stats['max_write']
	want = stats['fuse_want']
	for bit, name in ((18, 'PARALLEL_DIROPS'), (15, 'ASYNC_DIO'), (0, 'ASYNC_READ')):
		assert want & (1 << bit), 'FUSE_CAP_%s not negotiated (want 0x%x)' % (name, want)


def test_one_mib_write_is_one_request(mount_factory, backend):
	m = mount_factory(backend)
	before = m.stat_json()['ops']
	buf = mmap.mmap(-1, MiB)
	buf[:] = b'm' * MiB
	fd = os.open(m.path('f'), os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
	try:
		assert os.pwritev(fd, [buf], 0) == MiB
		after = m.stat_json()['ops']
		assert os.preadv(fd, [buf], 0) == MiB
		after_read = m.stat_json()['ops']
	finally:
		os.close(fd)
		buf.close()
	count = lambda ops, op: ops.get(op, {}).get('count', 0)	# noqa: E731
	assert count(after, 'write') - count(before, 'write') == 1, 'a 1 MiB O_DIRECT write was split'
	assert after['write']['bytes'] - before.get('write', {}).get('bytes', 0) == MiB
	assert count(after_read, 'read') - count(after, 'read') == 1, 'a 1 MiB O_DIRECT read was split'


def test_requests_are_batched(mount_factory, backend):
	"""32 O_DIRECT reads in flight reach the backend several per submission."""
	if shutil.which('fio') is None:
		pytest.skip('fio is not installed')
	m = mount_factory(backend)
	with open(m.spath('f'), 'wb') as f:
		f.write(os.urandom(16 * MiB))
	res = subprocess.run(['fio', '--name=batch', '--filename=' + m.path('f'), '--rw=randread',
			      '--bs=4k', '--ioengine=libaio', '--iodepth=32', '--direct=1',
			      '--output-format=json'],
			     capture_output=True, text=True, timeout=120)
	assert res.returncode == 0, res.stderr
	assert json.loads(res.stdout)['jobs'][0]['read']['total_ios'] == 4096
	stats = m.stat_json()
	caio = stats['caio']
	assert caio['bytes_read'] >= 16 * MiB, caio
	assert sum(caio['loop_requests']) == caio['requests'], caio
	if backend_in_stats(stats) == 'sync':
		# It runs each request inside the flush, so batching would
		# serialise them: each loop takes one, the others the rest.
		assert caio['max_batch'] == 1, caio
		busy = [n for n in caio['loop_requests'] if n >= 64]
		assert len(busy) >= 2, caio['loop_requests']
		return
	# How many arrive together depends on scheduling (a loaded machine
	# spreads them out): require batching, not a particular average.
	assert caio['max_batch'] >= 4, caio
	assert caio['avg_batch'] > 1.0, caio


@pytest.mark.one_backend
def test_batch_option_bounds_submissions(mount_factory, backend):
	"""-o batch=1 hands every request to the kernel on its own, data intact."""
	if shutil.which('fio') is None:
		pytest.skip('fio is not installed')
	m = mount_factory(backend, ['batch=1'])
	data = os.urandom(16 * MiB)
	with open(m.spath('f'), 'wb') as f:
		f.write(data)
	res = subprocess.run(['fio', '--name=batch', '--filename=' + m.path('f'), '--rw=randread',
			      '--bs=4k', '--ioengine=libaio', '--iodepth=32', '--direct=1',
			      '--output-format=json'],
			     capture_output=True, text=True, timeout=120)
	assert res.returncode == 0, res.stderr
	caio = m.stat_json()['caio']
	assert caio['bytes_read'] >= 16 * MiB, caio
	assert caio['max_batch'] == 1, caio
	assert read_file(m.path('f')) == data


def all_idle(stats):
	busy = {op: v['in_flight'] for op, v in stats['ops'].items() if v['in_flight']}
	return not busy and stats['caio']['pending'] == 0, busy


def test_killed_clients_leave_nothing_in_flight(mount_factory, backend):
	"""Clients killed in the middle of I/O (the kernel interrupts their
	requests): the daemon survives and every request completes."""
	m = mount_factory(backend)
	with open(m.spath('f'), 'wb') as f:
		f.write(os.urandom(16 * MiB))
	code = r'''
import mmap, os, sys
buf = mmap.mmap(-1, 1 << 20)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_DIRECT)
first = True
while True:
	for off in range(0, 16 << 20, 1 << 20):
		os.preadv(fd, [buf], off)
		os.pwritev(fd, [buf], off)
		if first:
			print('running', flush=True)
			first = False
'''
	for _ in range(6):
		children = [subprocess.Popen(['/usr/bin/python3', '-c', code, m.path('f')],
					     stdout=subprocess.PIPE, text=True) for _ in range(3)]
		for c in children:
			assert c.stdout.readline().strip() == 'running'
		for c in children:
			c.kill()
		for c in children:
			c.wait()
			c.stdout.close()
	end = time.monotonic() + 10
	idle, busy = all_idle(m.stat_json())
	while not idle and time.monotonic() < end:
		time.sleep(0.05)	# bounded poll for the last completions
		idle, busy = all_idle(m.stat_json())
	assert idle, 'requests still in flight 10 s after the clients died: %r' % busy
	assert m.proc.poll() is None
	write_file(m.path('after'), b'alive')
	assert read_file(m.spath('after')) == b'alive'


@pytest.mark.parametrize('options', [[], ['clone_fd']], ids=['shared_fd', 'clone_fd'])
def test_signalled_clients_get_no_eintr(mount_factory, backend, options):
	"""A client whose syscalls keep being hit by a signal (it has a handler):
	none fails with EINTR, no data is lost, and the daemon tells the kernel
	once that it does not take interrupts (it has nothing to interrupt), so
	the kernel stops sending one per signal and none is left over at
	unmount (libfuse would keep a late one until exit and leak it).  With
	clone_fd the refusal must reach the clone that read the request."""
	m = mount_factory(backend, options)
	# The client writes until the stop file (in the source, so that looking
	# for it costs no request) appears: 3 s at least, and on a loaded
	# machine until a signal has hit a request in flight.
	code = r'''
import os, signal, sys, time
signal.signal(signal.SIGUSR1, lambda *args: None)
print('ready', flush=True)
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
end = time.monotonic() + 60
i = 0
while time.monotonic() < end and not os.path.exists(sys.argv[2]):
	i += 1
	os.pwrite(fd, bytes([i % 251]) * (4 << 20), 0)
	os.fsync(fd)
	os.stat(sys.argv[1])
# Python puts the default handlers back as it exits: none may come then.
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
print(i, flush=True)
'''
	def interrupt_count(stats):
		return stats['ops'].get('interrupt', {}).get('count', 0)

	before = interrupt_count(m.stat_json())
	stop = m.spath('stop')
	child = subprocess.Popen(['/usr/bin/python3', '-c', code, m.path('f'), stop],
				 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
	try:
		assert child.stdout.readline().strip() == 'ready'
		start = checked = time.monotonic()
		while child.poll() is None:
			child.send_signal(signal.SIGUSR1)
			time.sleep(0.0005)
			now = time.monotonic()
			if now - start >= 3 and now - checked >= 0.2 and not os.path.exists(stop):
				checked = now
				if interrupt_count(m.stat_json()) > before or now - start >= 30:
					open(stop, 'w').close()
		out, err = child.communicate(timeout=30)
	finally:
		if child.poll() is None:
			child.kill()
			child.wait()
	assert child.returncode == 0, 'the client failed under signals: %s' % err
	last = int(out)
	assert read_file(m.spath('f')) == bytes([last % 251]) * (4 << 20)
	stats = m.stat_json()
	interrupts = interrupt_count(stats) - before
	assert interrupts >= 1, 'in 30 s no signal hit a request in flight: nothing was tested'
	# Thousands of signals hit a request in flight (each was one interrupt
	# before the daemon refused them); after the first refusal none come,
	# save a few whose request another loop had read.  The kernel looks for
	# the request of a refusal only among those read from /dev/fuse, so with
	# fuse_uring every interrupt comes (and is dropped).
	if not stats['fuse']['ring_requests']:
		assert interrupts <= 20, '%d interrupts reached the daemon' % interrupts


@pytest.mark.one_backend
def test_fsname_and_type(mount_factory, backend):
	m = mount_factory(backend)
	assert mountinfo_entry(m.mnt) == ('fuse.caiofs', m.src)
	named = mount_factory(backend, ['fsname=myname'])
	assert mountinfo_entry(named.mnt) == ('fuse.caiofs', 'myname')


@pytest.mark.one_backend
@pytest.mark.parametrize('extra', [['-d'], ['-o', 'clone_fd'], ['-s']])
def test_standard_fuse_flags(workdir, extra):
	"""-d (debug, foreground), -o clone_fd and -s (single-threaded) mount and serve."""
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	log = open(os.path.join(workdir, 'log'), 'wb')
	proc = subprocess.Popen([CAIOFS, '-f'] + extra + [src, mnt], stdin=subprocess.DEVNULL,
				stdout=log, stderr=log)
	log.close()
	try:
		end = time.monotonic() + 20
		while not mounted(mnt) and proc.poll() is None and time.monotonic() < end:
			time.sleep(0.01)	# bounded poll for the mount
		assert mounted(mnt), read_file(os.path.join(workdir, 'log')).decode(errors='replace')
		write_file(os.path.join(mnt, 'f'), b'flags ' * 1000)
		assert read_file(os.path.join(mnt, 'f')) == b'flags ' * 1000
		assert read_file(os.path.join(src, 'f')) == b'flags ' * 1000
		rc, err = unmount(mnt)
		assert rc == 0, err
		assert proc.wait(timeout=20) == 0
	finally:
		if mounted(mnt):
			fusermount_u(mnt, lazy=True)
		if proc.poll() is None:
			proc.kill()
			proc.wait()
	if extra == ['-d']:
		text = read_file(os.path.join(workdir, 'log')).decode(errors='replace')
		assert 'unique' in text or 'opcode' in text.lower() or 'LOOKUP' in text, \
			'-d printed no request trace'


@pytest.mark.one_backend
def test_stat_works_as_soon_as_mounted(mount_factory, backend):
	"""caiofs-stat answers the moment the mount is visible (scripts run it
	right after mounting): the control socket must exist before the mount."""
	if CAIOFS_STAT is None:
		pytest.skip('caiofs-stat was not built')
	for _ in range(5):
		m = mount_factory(backend)
		res = subprocess.run([CAIOFS_STAT, '--json', m.mnt], capture_output=True,
				     text=True, timeout=30)
		assert res.returncode == 0, 'right after the mount: %s' % res.stderr
		m.stop()


def control_address(mountpoint):
	"""The abstract socket name a daemon serving mountpoint listens on
	(FNV-1a of the path, as in src/caiofs/control.c)."""
	h = 0xcbf29ce484222325
	for byte in mountpoint.encode():
		h = ((h ^ byte) * 0x100000001b3) & 0xffffffffffffffff
	return '\0caiofs/%016x' % h


@pytest.mark.one_backend
def test_stat_after_quick_remount(mount_factory, backend):
	"""A daemon keeps its control address until it has exited, which can be
	after a new daemon mounted on the same mount point: the new one must
	take the address when it is free, not run without caiofs-stat.  Here
	the test holds the address while the mount starts, then lets go."""
	if CAIOFS_STAT is None:
		pytest.skip('caiofs-stat was not built')
	m = mount_factory(backend, start=False)
	holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	try:
		holder.bind(control_address(os.path.realpath(m.mnt)))
		holder.listen(1)
		assert m.start() is None
		deadline = time.monotonic() + 10
		while 'is taken' not in m.log() and time.monotonic() < deadline:
			time.sleep(0.02)	# bounded: the daemon logs it after mounting
		assert 'control address' in m.log() and 'is taken' in m.log(), \
			'the daemon did not say its control address was taken:\n' + m.log()
	finally:
		holder.close()
	deadline = time.monotonic() + 10
	while True:
		res = subprocess.run([CAIOFS_STAT, '--json', m.mnt], capture_output=True,
				     text=True, timeout=30)
		if res.returncode == 0 or time.monotonic() > deadline:
			break
		time.sleep(0.05)	# bounded: the daemon retries every 50 ms
	assert res.returncode == 0, \
		'caiofs-stat still fails after the address was freed: %s' % res.stderr
	stats = json.loads(res.stdout)
	assert stats['pid'] == m.pid
	assert stats['mountpoint'] == os.path.realpath(m.mnt)
	assert 'control socket ready' in m.log()


@pytest.mark.parametrize('denied, expected', [
	((425,), 'linux'),		# no io_uring_setup: Linux AIO
	((425, 206), 'thread'),		# no io_uring_setup nor io_setup: the pool
])
def test_automatic_fallback_is_logged(mount_factory, denied, expected):
	"""In a sandbox without io_uring (seccomp), automatic selection falls back
	and says why, at mount time and in caiofs-stat."""
	from cfsutil import deny_syscalls
	if expected == 'linux' and not backend_expected('linux'):
		expected = 'thread'	# a build without libaio, or no AIO here
	m = mount_factory('auto', preexec_fn=deny_syscalls(*denied))
	stats = m.stat_json()
	assert stats['backend'] == expected, stats['selection']
	assert 'uring' in stats['selection'], stats['selection']
	log = m.log()
	assert 'uring' in log and expected in log, log
	write_file(m.path('f'), b'fallback works')
	assert read_file(m.spath('f')) == b'fallback works'


@pytest.mark.parametrize('name, denied', [('uring', 425), ('linux', 206)])
def test_requested_backend_unavailable_refuses(workdir, name, denied):
	"""A backend asked for by name that cannot work is an error with its
	reason, never a silent fallback."""
	from cfsutil import deny_syscalls
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	try:
		res = subprocess.run([CAIOFS, '-f', '-o', 'backend=' + name, src, mnt],
				     capture_output=True, text=True, timeout=20,
				     stdin=subprocess.DEVNULL, preexec_fn=deny_syscalls(denied))
	except subprocess.TimeoutExpired:
		pytest.fail('caiofs -o backend=%s mounted without %s' % (name, name))
	finally:
		if mounted(mnt):
			fusermount_u(mnt, lazy=True)
	assert res.returncode != 0 and res.returncode < 128, res.stderr
	if not configured(BUILT_WITH[name]):
		# the reason is the build's, not the sandbox's
		assert name in res.stderr and 'not built in' in res.stderr, res.stderr
		return
	assert name in res.stderr and ('ENOSYS' in res.stderr or 'not implemented' in
					  res.stderr.lower()), res.stderr


@pytest.mark.skipif(configured('HAVE_LIBURING'), reason='caiofs was built with liburing')
def test_fuse_uring_needs_liburing(workdir):
	"""A caiofs built without liburing refuses -o fuse_uring and says why."""
	src, mnt = os.path.join(workdir, 'src'), os.path.join(workdir, 'mnt')
	os.mkdir(src)
	os.mkdir(mnt)
	refuses(workdir, ['-o', 'fuse_uring', src, mnt], ['fuse_uring', 'liburing'], status=1)


def caiofs_options_from_help():
	"""The -o options caiofs itself documents in --help (before libfuse's)."""
	res = run_caiofs(['--help'])
	text = res.stdout + res.stderr
	own = text.split('caiofs options:', 1)[-1].split('\n\n', 1)[0]
	return sorted(set(re.findall(r'^\s+-o ([a-z_]+)', own, re.M)))


def test_man_page_documents_options_and_security():
	man = os.path.join(os.environ.get('top_srcdir', os.path.join(os.path.dirname(
		os.path.abspath(__file__)), '..', '..')), 'man', 'caiofs.1')
	assert os.path.exists(man), 'man/caiofs.1 is missing'
	with open(man) as f:
		text = f.read().replace('\\-', '-').replace('\\_', '_')
	options = caiofs_options_from_help()
	assert 'backend' in options, options
	missing = [o for o in options if o not in text]
	assert not missing, 'options in --help but not in caiofs.1: %s' % missing
	for word in ('default_permissions', 'allow_other', 'fstab', 'caiofs-stat',
		     'SIGUSR1', 'CAIO_IMPL'):
		assert word in text, 'caiofs.1 does not mention %s' % word


def daemon_cpu_seconds(pid):
	with open('/proc/%d/stat' % pid) as f:
		fields = f.read().rsplit(')', 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


@pytest.mark.one_backend
@pytest.mark.parametrize('options', [[], ['spin_us=5000']], ids=['default', 'spin5ms'])
def test_idle_daemon_does_not_spin(mount_factory, backend, options):
	"""After a run of one-at-a-time requests the polling loop goes back to
	sleep: an idle mount costs no CPU."""
	m = mount_factory(backend, options)
	write_file(m.path('f'), b'x' * 4096)
	for _ in range(500):
		os.stat(m.path('f'))
		read_file(m.path('f'))
	time.sleep(0.5)		# well past any spin window
	before = daemon_cpu_seconds(m.pid)
	time.sleep(2)
	used = daemon_cpu_seconds(m.pid) - before
	assert used < 0.5, 'the idle daemon used %.2f s of CPU in 2 s' % used


@pytest.mark.one_backend
def test_daemon_sleeps_after_parallel_io(mount_factory, backend):
	"""Loops with many requests in flight poll for their completions; once
	the I/O stops they sleep again."""
	import threading

	m = mount_factory(backend)
	size = 4 << 20
	write_file(m.path('f'), os.urandom(size))
	errors = []

	def reader(seed):
		fd = os.open(m.path('f'), os.O_RDONLY | os.O_DIRECT)
		buf = mmap.mmap(-1, 4096)
		try:
			for i in range(400):
				off = (seed * 7919 + i * 104729) % (size // 4096) * 4096
				assert os.preadv(fd, [buf], off) == 4096
		except Exception as e:	# reported by the main thread
			errors.append(e)
		finally:
			buf.close()
			os.close(fd)

	threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
	for t in threads:
		t.start()
	for t in threads:
		t.join(120)
	assert not errors, errors
	time.sleep(0.5)
	before = daemon_cpu_seconds(m.pid)
	time.sleep(2)
	used = daemon_cpu_seconds(m.pid) - before
	assert used < 0.5, 'the daemon used %.2f s of CPU in the 2 s after the I/O' % used
