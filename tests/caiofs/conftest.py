# conftest.py - mounts a fresh caiofs over a fresh source directory for each test, once per backend.
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.umask(0o022)

BACKENDS = ('uring', 'linux', 'thread', 'sync')
MOUNT_DEADLINE = 20.0
EXIT_DEADLINE = 20.0
SANITIZER_REPORT = re.compile(
	r'(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|'
	r'WARNING: ThreadSanitizer|SUMMARY: UndefinedBehaviorSanitizer|'
	r'Segmentation fault|double free|malloc\(\): )')


def build_dir():
	return os.environ.get('top_builddir') or os.getcwd()


def find_program(name):
	"""$CAIOFS / $CAIOFS_STAT, else the build tree (top level first)."""
	env = os.environ.get(name.upper().replace('-', '_'))
	if env:
		return env
	for rel in (name, os.path.join('src', 'caiofs', name)):
		path = os.path.join(build_dir(), rel)
		if os.access(path, os.X_OK) and not os.path.isdir(path):
			return path
	return None


CAIOFS = find_program('caiofs')
CAIOFS_STAT = find_program('caiofs-stat')


def configured(symbol):
	"""True when the build's config.h defines symbol (e.g. HAVE_LIBURING)."""
	try:
		with open(os.path.join(build_dir(), 'config.h')) as f:
			text = f.read()
	except OSError:
		return True
	return re.search(r'^#define %s 1' % symbol, text, re.M) is not None


def kernel_has_uring():
	import ctypes
	libc = ctypes.CDLL(None, use_errno=True)
	params = ctypes.create_string_buffer(120)
	fd = libc.syscall(425, 4, params)	# io_uring_setup
	if fd < 0:
		return False
	os.close(fd)
	return True


def kernel_has_aio():
	import ctypes
	libc = ctypes.CDLL(None, use_errno=True)
	ctx = ctypes.c_ulong(0)
	if libc.syscall(206, 4, ctypes.byref(ctx)) < 0:	# io_setup
		return False
	libc.syscall(207, ctx)			# io_destroy
	return True


def backend_expected(backend):
	"""Whether this build on this kernel must offer backend (probed, not guessed)."""
	if backend == 'uring':
		return configured('HAVE_LIBURING') and kernel_has_uring()
	if backend == 'linux':
		return configured('HAVE_LIBAIO') and kernel_has_aio()
	return True


def backends_under_test():
	names = os.environ.get('CAIOFS_TEST_BACKENDS')
	return tuple(names.split()) if names else BACKENDS


def mounted(path):
	"""Is path a mount point?  Reads mountinfo: never blocks on a hung FUSE."""
	path = os.path.realpath(path)
	with open('/proc/self/mountinfo') as f:
		for line in f:
			point = line.split()[4]
			point = re.sub(r'\\([0-7]{3})',
				       lambda m: chr(int(m.group(1), 8)), point)
			if point == path:
				return True
	return False


def fusermount_u(path, lazy=False):
	args = ['fusermount3', '-uz' if lazy else '-u', path]
	res = subprocess.run(args, capture_output=True, text=True, timeout=30)
	return res.returncode, res.stderr.strip()


def unmount(path, patience=5.0):
	"""fusermount3 -u, tried again while the mount is busy: another process
	(a find(1) walking /tmp, a parallel test's scan) may hold it for a
	moment.  Returns (returncode, stderr) of the last try."""
	deadline = time.monotonic() + patience
	rc, err = fusermount_u(path)
	while rc != 0 and 'busy' in err and time.monotonic() < deadline:
		time.sleep(0.1)		# bounded: the holder goes away by itself
		rc, err = fusermount_u(path)
	return rc, err


def abort_connection(dev):
	"""Fail every pending request of a hung FUSE mount (unblocks the test)."""
	try:
		with open('/sys/fs/fuse/connections/%d/abort' % os.minor(dev), 'w') as f:
			f.write('1')
	except OSError:
		pass


class Mount:
	"""One caiofs daemon in the foreground over src at mnt."""

	def __init__(self, base, backend=None, options=(), src=None,
		     env=None, preexec_fn=None):
		self.base = base
		self.backend = backend
		self.options = list(options)
		if backend and backend != 'auto':
			self.options.insert(0, 'backend=' + backend)
		# CAIOFS_TEST_OPTIONS=fuse_uring runs the suite with more options.
		extra = os.environ.get('CAIOFS_TEST_OPTIONS', '')
		self.options[0:0] = [o for o in extra.split(',') if o]
		self.src = src or os.path.join(base, 'src')
		self.mnt = os.path.join(base, 'mnt')
		os.makedirs(self.src, exist_ok=True)
		os.makedirs(self.mnt, exist_ok=True)
		self.log_path = os.path.join(base, 'caiofs.log')
		self.env = env
		self.preexec_fn = preexec_fn
		self.proc = None
		self.stopped = False
		self.exit_reported = False
		self.dev = None
		self.problems = []

	@property
	def writeback(self):
		"""Does the kernel cache writes?  caiofs drops writeback_cache when
		every file is opened for direct I/O."""
		o = self.options
		return ('writeback_cache' in o and 'no_writeback_cache' not in o and
			'cache=never' not in o and 'direct_io' not in o)

	def argv(self):
		argv = [CAIOFS, '-f']
		if self.options:
			argv += ['-o', ','.join(self.options)]
		return argv + [self.src, self.mnt]

	def start(self):
		"""Start the daemon; returns None once mounted or the daemon's exit message."""
		log = open(self.log_path, 'ab')
		try:
			self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
						     stdout=log, stderr=log, env=self.env,
						     preexec_fn=self.preexec_fn)
		finally:
			log.close()
		deadline = time.monotonic() + MOUNT_DEADLINE
		while not mounted(self.mnt):
			if self.proc.poll() is not None:
				# The caller decides what this exit means (a backend
				# this build lacks is a skip): stop() does not report
				# the status again, only memory errors.
				self.exit_reported = True
				return 'caiofs exited with %d before mounting:\n%s' % (
					self.proc.returncode, self.log())
			if time.monotonic() > deadline:
				return 'caiofs did not mount within %ds:\n%s' % (
					MOUNT_DEADLINE, self.log())
			time.sleep(0.01)	# bounded poll for the mount to appear
		self.dev = os.stat(self.mnt).st_dev
		return None

	def log(self):
		try:
			with open(self.log_path, 'rb') as f:
				return f.read().decode(errors='replace')
		except OSError:
			return ''

	@property
	def pid(self):
		return self.proc.pid

	def path(self, *parts):
		return os.path.join(self.mnt, *parts)

	def spath(self, *parts):
		return os.path.join(self.src, *parts)

	def wait_exit(self):
		try:
			return self.proc.wait(timeout=EXIT_DEADLINE)
		except subprocess.TimeoutExpired:
			self.problems.append('caiofs (pid %d) did not exit within %ds after '
					     'the unmount; killed' % (self.pid, EXIT_DEADLINE))
			self.proc.kill()
			return self.proc.wait()

	def stop(self, strict=True):
		"""Unmount (lazily if it must), reap the daemon, return the problems seen."""
		if self.proc is None or self.stopped:
			return self.problems
		self.stopped = True
		if mounted(self.mnt):
			rc, err = unmount(self.mnt)
			if rc != 0:
				if strict:
					self.problems.append('fusermount3 -u failed (%s); '
							     'used -uz' % err)
				if self.dev is not None:
					abort_connection(self.dev)
				fusermount_u(self.mnt, lazy=True)
		if self.proc.poll() is None:
			self.wait_exit()
		self.check_exit()
		return self.problems

	def check_exit(self):
		rc = self.proc.returncode
		text = self.log()
		if rc != 0 and not self.exit_reported:
			self.problems.append('caiofs exited with status %d:\n%s' % (rc, text))
		elif SANITIZER_REPORT.search(text):
			self.problems.append('caiofs reported memory errors:\n' + text)

	def kill(self):
		if self.proc is not None and self.proc.poll() is None:
			self.proc.kill()
			self.proc.wait()
		if mounted(self.mnt):
			fusermount_u(self.mnt, lazy=True)

	def stat_json(self):
		"""caiofs-stat --json, parsed."""
		if CAIOFS_STAT is None:
			pytest.skip('caiofs-stat was not built')
		res = subprocess.run([CAIOFS_STAT, '--json', self.mnt],
				     capture_output=True, text=True, timeout=30)
		assert res.returncode == 0, 'caiofs-stat failed: %s' % res.stderr
		return json.loads(res.stdout)


class BindMount(Mount):
	"""CAIOFS_TEST_REFERENCE=bind: the kernel's own bind mount instead of
	caiofs, to check the suite's expectations against a perfect passthrough.
	Only for people changing the tests; daemon-specific tests fail with it."""

	def start(self):
		subprocess.run(['mount', '--rbind', self.src, self.mnt], check=True)
		if 'ro' in self.options:
			subprocess.run(['mount', '-o', 'remount,bind,ro', self.mnt], check=True)
		self.proc = subprocess.Popen(['sleep', 'infinity'], preexec_fn=self.preexec_fn)
		self.dev = os.stat(self.mnt).st_dev
		return None

	def stop(self, strict=True):
		if self.proc is None or self.stopped:
			return self.problems
		self.stopped = True
		if mounted(self.mnt):
			subprocess.run(['umount', '-R', self.mnt])
		self.proc.kill()
		self.proc.wait()
		return self.problems


REFERENCE = os.environ.get('CAIOFS_TEST_REFERENCE')


def pytest_report_header(config):
	return ['caiofs: %s' % CAIOFS, 'caiofs-stat: %s' % CAIOFS_STAT,
		'backends tested: %s' % ' '.join(backends_under_test()),
		'more mount options: %s' % (os.environ.get('CAIOFS_TEST_OPTIONS') or 'none')]


def pytest_generate_tests(metafunc):
	"""'backend' runs every test on every backend, except those marked
	one_backend, which run once with automatic selection."""
	if 'backend' not in metafunc.fixturenames:
		return
	if metafunc.definition.get_closest_marker('one_backend'):
		metafunc.parametrize('backend', ['auto'])
	else:
		metafunc.parametrize('backend', backends_under_test())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	outcome = yield
	rep = outcome.get_result()
	setattr(item, 'rep_' + rep.when, rep)


def call_passed(request):
	rep = getattr(request.node, 'rep_call', None)
	return rep is not None and rep.passed


@pytest.fixture
def workdir():
	"""A private directory (0755, so switched uids can reach the mount)."""
	root = os.environ.get('CAIOFS_TEST_TMPDIR') or tempfile.gettempdir()
	path = tempfile.mkdtemp(prefix='caiofs-test.', dir=root)
	os.chmod(path, 0o755)
	try:
		yield path
	finally:
		for dirpath, dirs, files in os.walk(path):
			if mounted(dirpath):
				fusermount_u(dirpath, lazy=True)
		shutil.rmtree(path, ignore_errors=True)


class Watchdog:
	"""Aborts the FUSE connections of a test that overruns its time limit, so
	a hung daemon fails the test instead of blocking it in the kernel."""

	def __init__(self, seconds):
		self.mounts = []
		self.timer = threading.Timer(seconds, self.fire)
		self.timer.daemon = True
		self.timer.start()

	def fire(self):
		for m in self.mounts:
			if m.dev is not None:
				abort_connection(m.dev)
			if m.proc is not None and m.proc.poll() is None:
				m.proc.send_signal(signal.SIGABRT)

	def cancel(self):
		self.timer.cancel()


def time_limit(request):
	marker = request.node.get_closest_marker('timeout')
	if marker and marker.args:
		return float(marker.args[0])
	return float(request.config.getini('timeout') or 120)


@pytest.fixture
def mount_factory(request, workdir):
	"""mount_factory(backend, options=(), ...) -> a started Mount; all are
	unmounted, reaped and checked after the test, whatever happened."""
	mounts = []
	watchdog = Watchdog(max(time_limit(request) - 5, 5))
	count = [0]

	def make(backend=None, options=(), src=None, start=True, **kwargs):
		count[0] += 1
		base = os.path.join(workdir, 'm%d' % count[0])
		os.makedirs(base)
		cls = BindMount if REFERENCE == 'bind' else Mount
		m = cls(base, backend, options, src=src, **kwargs)
		mounts.append(m)
		watchdog.mounts.append(m)
		if start:
			failure = m.start()
			if failure is not None:
				skip_if_unavailable(backend, failure)
				pytest.fail(failure)
		return m

	try:
		yield make
	finally:
		watchdog.cancel()
		problems = []
		for m in reversed(mounts):
			problems += m.stop(strict=call_passed(request))
			m.kill()
		if problems and call_passed(request):
			pytest.fail('\n'.join(problems))
		elif problems:
			sys.stderr.write('\n'.join(problems) + '\n')


def skip_if_unavailable(backend, failure):
	"""A backend this build/kernel cannot offer may be refused: skip.  One it
	must offer failing to mount is a failure (the caller fails)."""
	if backend in BACKENDS and not backend_expected(backend):
		pytest.skip('backend %s unavailable here: %s' % (backend, failure))


@pytest.fixture
def mnt(mount_factory, backend):
	"""A fresh caiofs mount over an empty source, for the parametrized backend."""
	return mount_factory(backend)


@pytest.fixture
def mnt_shared(mount_factory, backend):
	"""Mounted with allow_other,default_permissions, for tests switching uid."""
	return mount_factory(backend, ['allow_other', 'default_permissions'])
