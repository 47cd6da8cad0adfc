#!/usr/bin/python3
# caiofs-bench.py - the same workloads on the raw source, caiofs per backend, bindfs, mergerfs and passthrough_ll; one table.
"""Run by bench/caiofs-bench.sh; see --help.

Every figure is "higher is better" in its ratio column: throughput / raw for
data workloads, raw time / time for the metadata and tree workloads, so 1.00
is the speed of the raw filesystem and 0.50 is half of it.
"""
import argparse
import errno
import gzip
import json
import mmap
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
EXAMPLES = '/usr/share/doc/libfuse3-dev/examples'


def log(msg):
	print(msg, file=sys.stderr, flush=True)


def mounted(path):
	path = os.path.realpath(path)
	with open('/proc/self/mountinfo') as f:
		return any(line.split()[4] == path for line in f)


def drop_caches():
	os.sync()
	with open('/proc/sys/vm/drop_caches', 'w') as f:
		f.write('3')


def cpu_seconds(pid):
	"""utime + stime of every thread of pid, from /proc/<pid>/stat."""
	with open('/proc/%d/stat' % pid) as f:
		fields = f.read().rsplit(')', 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class Filesystem:
	"""A mounted filesystem under test (or the raw source directory)."""

	def __init__(self, name, argv, src, mnt):
		self.name = name
		self.argv = argv		# None: the raw directory itself
		self.src = src
		self.mnt = mnt if argv else src
		self.proc = None
		self.cpu = None
		self.error = None

	def mount(self, logdir):
		if self.argv is None:
			return True
		self.log_path = os.path.join(logdir, self.name + '.log')
		with open(self.log_path, 'wb') as logf:
			self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
						     stdout=logf, stderr=logf)
		deadline = time.monotonic() + 20
		while not mounted(self.mnt):
			if self.proc.poll() is not None or time.monotonic() > deadline:
				self.error = 'mount failed: ' + self.tail_log()
				self.unmount()
				return False
			time.sleep(0.02)	# bounded poll for the mount
		return True

	def tail_log(self):
		try:
			with open(self.log_path, errors='replace') as f:
				return ' | '.join(f.read().strip().splitlines()[-3:])
		except OSError:
			return '?'

	def unmount(self):
		if self.proc is None:
			return
		if self.proc.poll() is None:
			try:
				self.cpu = cpu_seconds(self.proc.pid)
			except OSError:
				pass
		if mounted(self.mnt):
			if subprocess.run(['fusermount3', '-u', self.mnt],
					  capture_output=True).returncode != 0:
				subprocess.run(['fusermount3', '-uz', self.mnt], capture_output=True)
		try:
			self.proc.wait(timeout=30)
		except subprocess.TimeoutExpired:
			self.proc.kill()
			self.proc.wait()
		self.proc = None


# --- workloads -----------------------------------------------------------------

def run_group(cmd):
	"""subprocess.run in its own process group, all of which is killed if we
	are interrupted (fio forks job processes that would outlive it)."""
	proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
				text=True, start_new_session=True)
	try:
		out, err = proc.communicate()
	except BaseException:
		os.killpg(proc.pid, signal.SIGKILL)
		proc.wait()
		raise
	return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def fio(args, cwd, invalidate=False):
	"""Run one fio job; returns the parsed JSON (group_reporting).  fio drops
	the file's page cache before each job unless told not to: only the cold
	read wants that."""
	cmd = ['fio', '--output-format=json', '--group_reporting', '--name=bench',
	       '--invalidate=%d' % invalidate, '--directory=' + cwd] + args
	res = run_group(cmd)
	if res.returncode != 0:
		lines = [l for l in res.stderr.splitlines() if 'err' in l or l.startswith('fio:')]
		raise RuntimeError('fio: %s' % (lines[0].strip() if lines else 'exit %d' % res.returncode))
	text = res.stdout[res.stdout.index('{'):]
	return json.loads(text)['jobs'][0]


def fio_mib_s(job, rw):
	return job[rw]['bw_bytes'] / MiB


def fio_iops(job, rw):
	return job[rw]['iops']


class Workloads:
	def __init__(self, opts, tarball, helper):
		self.opts = opts
		self.tarball = tarball
		self.helper = helper

	def seq_write(self, d):
		"""1 MiB sequential writes with fsync at the end; MiB/s over the whole run."""
		path = os.path.join(d, 'seq.dat')
		if os.path.exists(path):
			os.unlink(path)
		os.sync()		# the previous turn's dirty data is not this one's to write
		start = time.monotonic()
		fio(['--filename=seq.dat', '--rw=write', '--bs=1M', '--size=%d' % self.opts.seq_size,
		     '--ioengine=psync', '--end_fsync=1', '--fallocate=none'], d)
		return self.opts.seq_size / MiB / (time.monotonic() - start)

	def seq_read_hot(self, d):
		args = ['--filename=seq.dat', '--rw=read', '--bs=1M',
			'--size=%d' % self.opts.seq_size, '--ioengine=psync']
		fio(args, d)			# warm every cache on the way
		return fio_mib_s(fio(args, d), 'read')

	def seq_read_cold(self, d):
		drop_caches()
		return fio_mib_s(fio(['--filename=seq.dat', '--rw=read', '--bs=1M',
				      '--size=%d' % self.opts.seq_size, '--ioengine=psync'], d,
				     invalidate=True), 'read')

	def random_job(self, d, rw, extra):
		"""Random 4 KiB I/O over a file laid out and read once beforehand,
		so every filesystem starts from the same (hot) cache state."""
		if not os.path.exists(os.path.join(d, 'rand.dat')):
			fio(['--filename=rand.dat', '--rw=write', '--bs=1M', '--end_fsync=1',
			     '--size=%d' % self.opts.rand_size, '--ioengine=psync'], d)
			fio(['--filename=rand.dat', '--rw=read', '--bs=1M',
			     '--size=%d' % self.opts.rand_size, '--ioengine=psync'], d)
		return fio(['--filename=rand.dat', '--rw=' + rw, '--bs=4k',
			    '--size=%d' % self.opts.rand_size, '--time_based',
			    '--runtime=%d' % self.opts.runtime, '--ramp_time=1'] + extra, d)

	def rand_read_psync(self, d):
		return fio_iops(self.random_job(d, 'randread', ['--ioengine=psync', '--numjobs=4']), 'read')

	def rand_read_aio(self, d):
		return fio_iops(self.random_job(d, 'randread', ['--ioengine=libaio', '--iodepth=32',
								'--direct=0']), 'read')

	def rand_read_aio_direct(self, d):
		return fio_iops(self.random_job(d, 'randread', ['--ioengine=libaio', '--iodepth=32',
								'--direct=1']), 'read')

	def rand_write_psync(self, d):
		return fio_iops(self.random_job(d, 'randwrite', ['--ioengine=psync', '--numjobs=2']), 'write')

	def files(self, d, count):
		"""create + stat + unlink of count files in a helper process: seconds."""
		res = run_group([sys.executable, self.helper, 'files', d, str(count)])
		if res.returncode != 0:
			raise RuntimeError(res.stderr.strip() or 'files helper failed')
		out = json.loads(res.stdout)
		if out.get('error'):
			return 'FAIL(%s)' % out['error']
		return out['seconds']

	def files_20k(self, d):
		return self.files(d, self.opts.files)

	def files_million(self, d):
		return self.files(d, 1000000)

	def untar_tree(self, d):
		"""untar /usr/include, then du, find and rm -rf: seconds in total."""
		tree = os.path.join(d, 'tree')
		os.mkdir(tree)
		start = time.monotonic()
		for cmd in (['tar', '-xf', self.tarball, '-C', tree], ['du', '-s', tree],
			    ['find', tree], ['rm', '-rf', tree]):
			res = run_group(cmd)
			if res.returncode != 0:
				match = re.search(r'(Too many open files|No space|Input/output error|'
						  r'Transport endpoint)', res.stderr)
				return 'FAIL(%s: %s)' % (cmd[0], match.group(1) if match else
							 res.stderr.strip()[:40])
		return time.monotonic() - start

	def dbench(self, d):
		"""dbench, 4 clients for --runtime seconds: its MB/s.  Its load file
		mixes creates, renames, unlinks, stats, directory scans, locks, small
		reads and writes and fsyncs, as a file server sees them."""
		work = os.path.join(d, 'dbench')
		os.mkdir(work)
		res = run_group(['dbench', '-D', work, '-t', str(self.opts.runtime), '4'])
		match = re.search(r'Throughput ([0-9.]+) MB/sec', res.stdout)
		if res.returncode != 0 or not match:
			lines = (res.stderr or res.stdout).strip().splitlines()
			return 'FAIL(%s)' % (lines[-1][:40] if lines else 'exit %d' % res.returncode)
		shutil.rmtree(work)
		return float(match.group(1))


# name, method, unit, "time" (lower is better) or "rate"
WORKLOADS = [
	('seq write 1M +fsync', 'seq_write', 'MiB/s', 'rate'),
	('seq read 1M hot', 'seq_read_hot', 'MiB/s', 'rate'),
	('seq read 1M cold', 'seq_read_cold', 'MiB/s', 'rate'),
	('rand read 4k psync x4', 'rand_read_psync', 'IOPS', 'rate'),
	('rand read 4k aio QD32', 'rand_read_aio', 'IOPS', 'rate'),
	('rand read 4k aio QD32 direct', 'rand_read_aio_direct', 'IOPS', 'rate'),
	('rand write 4k psync x2', 'rand_write_psync', 'IOPS', 'rate'),
	('files create/stat/readdir/unlink', 'files_20k', 's', 'time'),
	('untar+du+find+rm /usr/include', 'untar_tree', 's', 'time'),
]


def files_helper(d, count):
	"""The metadata workload itself (run in a fresh process): mkdir, create,
	stat, readdir, unlink and rmdir of count files in directories of 1000.
	A directory listing that misses a file or shows one twice is a failure."""
	per_dir = 1000
	top = os.path.join(d, 'files-%d' % count)
	names, subs = [], []
	out = {}
	start = time.monotonic()
	try:
		os.mkdir(top)
		for i in range(count):
			if i % per_dir == 0:
				subs.append(os.path.join(top, 'd%04d' % (i // per_dir)))
				os.mkdir(subs[-1])
			name = os.path.join(subs[-1], 'f%04d' % (i % per_dir))
			os.close(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
			names.append(name)
		for name in names:
			os.stat(name)
		listed, entries = set(), 0
		for sub in subs:
			here = os.listdir(sub)
			entries += len(here)
			listed.update(os.path.join(sub, e) for e in here)
		if listed != set(names) or entries != count:
			out['error'] = 'readdir: %d entries, %d of the %d names' % (
				entries, len(listed & set(names)), count)
			print(json.dumps(out))
			return
		for name in names:
			os.unlink(name)
		for sub in subs:
			os.rmdir(sub)
		os.rmdir(top)
		out['seconds'] = time.monotonic() - start
	except OSError as e:
		out['error'] = errno.errorcode.get(e.errno, str(e.errno))
	print(json.dumps(out))


# --- the run -------------------------------------------------------------------

def build_passthrough_ll(tmp):
	src = os.path.join(EXAMPLES, 'passthrough_ll.c')
	if not os.path.exists(src) and os.path.exists(src + '.gz'):
		with gzip.open(src + '.gz') as f, open(os.path.join(tmp, 'passthrough_ll.c'), 'wb') as o:
			o.write(f.read())
		src = os.path.join(tmp, 'passthrough_ll.c')
	if not os.path.exists(src):
		return None
	exe = os.path.join(tmp, 'passthrough_ll')
	flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'fuse3'], capture_output=True,
			       text=True, check=True).stdout.split()
	subprocess.run(['gcc', '-O2', '-Wall', '-o', exe, src] + flags, check=True,
		       cwd=os.path.dirname(src) if src.startswith(EXAMPLES) else tmp)
	return exe


def write_zeros(path, size):
	"""Create path with size bytes of zeros really written (O_DIRECT, so it
	takes seconds and leaves no page cache behind)."""
	chunk = 64 * MiB
	size = (size + 4095) & ~4095	# O_DIRECT writes whole pages
	buf = mmap.mmap(-1, chunk)		# page aligned, as O_DIRECT wants
	fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o600)
	try:
		os.posix_fallocate(fd, 0, size)
		done = 0
		while done < size:
			n = min(chunk, size - done)
			done += os.pwrite(fd, memoryview(buf)[:n], done)
		os.fsync(fd)
	finally:
		os.close(fd)
		buf.close()


class LoopSource:
	"""A fresh ext4 on a loop device (direct I/O to an image file) to
	serve as the source.  On this kind of machine the root ext4 (mounted
	with discard) is no baseline for the metadata workloads: the same raw
	tar -x of /usr/include took from 0.25 s to 9 s depending on the
	directory and on what was deleted before; on a fresh filesystem it
	takes 0.3 s every time.

	The image is written through once before mkfs.  Preallocated but
	never written, its blocks are unwritten extents on the root ext4 (and
	discarded on the virtual disk): the first write to a region cost more
	than a rewrite, 1 GiB with fsync ran at 656 MiB/s raw the first time
	and about 900 after, and which filesystem's turn met fresh regions was
	luck (ext4 spreads each new top-level directory over another block
	group)."""

	def __init__(self, scratch, size):
		self.image = os.path.join(scratch, 'source.img')
		self.dir = os.path.join(scratch, 'srcfs')
		self.dev = None
		write_zeros(self.image, size)
		subprocess.run(['mkfs.ext4', '-q', '-F', '-E', 'nodiscard', self.image], check=True)
		self.dev = subprocess.run(['losetup', '--find', '--show', '--direct-io=on', self.image],
					  check=True, capture_output=True, text=True).stdout.strip()
		os.makedirs(self.dir, exist_ok=True)
		subprocess.run(['mount', '-o', 'nodiscard', self.dev, self.dir], check=True)

	def describe(self):
		return 'a fresh ext4 on %s (direct I/O to %s)' % (self.dev, self.image)

	def remove(self):
		if self.dev:
			subprocess.run(['umount', self.dir], capture_output=True)
			subprocess.run(['losetup', '-d', self.dev], capture_output=True)
			self.dev = None


class TmpfsSource:
	"""A tmpfs as the source: no disk, so what each filesystem's own path
	costs, without the virtual disk's noise (the same 1 GiB write with
	fsync on the loop ext4 ranged from 559 to 1452 MiB/s raw between
	rounds).  Cold reads and O_DIRECT are page-cache operations there."""

	def __init__(self, scratch, size):
		self.dir = os.path.join(scratch, 'srcfs')
		self.mounted = False
		os.makedirs(self.dir, exist_ok=True)
		subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d' % size, 'caiofs-bench',
				self.dir], check=True)
		self.mounted = True

	def describe(self):
		return 'a tmpfs at %s' % self.dir

	def remove(self):
		if self.mounted:
			subprocess.run(['umount', self.dir], capture_output=True)
			self.mounted = False


ENABLE_URING = '/sys/module/fuse/parameters/enable_uring'


def fuse_uring_possible():
	return os.path.exists(ENABLE_URING)


def swap_setting(path, value):
	"""Write a /proc or /sys setting; returns what it held before."""
	with open(path) as f:
		old = f.read().strip()
	with open(path, 'w') as f:
		f.write(str(value))
	return old


def set_enable_uring(value):
	"""Write the kernel's FUSE-over-io_uring switch; returns the old value."""
	return swap_setting(ENABLE_URING, value)


PAGE_REPORTING = '/sys/module/page_reporting/parameters/page_reporting_order'


def pause_page_reporting():
	"""Stop the guest from handing its free memory back to the hypervisor
	(virtio-balloon free page reporting) for the run; returns the old
	setting, or None where there is none to change.  With it on, every page
	freed (a deleted file's page cache) went back to the host within seconds
	and the next page-cache allocation faulted on the host: 2 GiB written
	through caiofs-sync to a tmpfs ran at 400-445 MiB/s, and at 1,124-1,207
	with reporting off, as on a machine of its own.  The FUSE filesystems
	paid twice what raw did (a page cache on each side of the daemon).  No
	order is reported once the threshold is above the largest the buddy
	allocator has."""
	if not os.path.exists(PAGE_REPORTING):
		return None
	with open('/proc/buddyinfo') as f:
		orders = max(len(l.split()) - 4 for l in f if l.strip())
	try:
		old = swap_setting(PAGE_REPORTING, orders)
	except OSError as e:
		log('free page reporting stays on: %s' % e)
		return None
	try:
		prefault_memory()
	except OSError as e:
		log('could not take memory back from the host: %s' % e)
	return old


def prefault_memory():
	"""Take back from the host, once, the memory the run's page caches will
	use (a third of what is available, 8 GiB at most): touched and freed,
	it stays the guest's while reporting is off."""
	with open('/proc/meminfo') as f:
		avail = next(int(l.split()[1]) << 10 for l in f if l.startswith('MemAvailable:'))
	size = min(8 << 30, avail // 3) & ~(MiB - 1)
	if size:
		mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS |
			  mmap.MAP_POPULATE).close()


def set_pipe_max_size(size):
	"""Set fs.pipe-max-size; returns the old value."""
	return int(swap_setting('/proc/sys/fs/pipe-max-size', size))


def filesystems(opts, scratch, pll, source_dir):
	src = os.path.join(source_dir, 'src')
	mnt = os.path.join(scratch, 'mnt')
	os.makedirs(src, exist_ok=True)
	os.makedirs(mnt, exist_ok=True)
	out = [Filesystem('raw', None, src, mnt)]
	for b in opts.backends.split(','):
		opt = 'backend=' + b + (',' + opts.caiofs_opts if opts.caiofs_opts else '')
		out.append(Filesystem('caiofs-' + b, [opts.caiofs, '-f', '-o', opt, src, mnt], src, mnt))
	if opts.fuse_uring and 'uring' in opts.backends.split(','):
		opt = 'backend=uring,fuse_uring' + (',' + opts.caiofs_opts if opts.caiofs_opts else '')
		out.append(Filesystem('caiofs-uring-ring', [opts.caiofs, '-f', '-o', opt, src, mnt],
				      src, mnt))
	if shutil.which('bindfs'):
		out.append(Filesystem('bindfs', ['bindfs', '-f', src, mnt], src, mnt))
	if shutil.which('mergerfs'):
		mopts = ['-o', opts.mergerfs_opts] if opts.mergerfs_opts else []
		out.append(Filesystem('mergerfs', ['mergerfs', '-f'] + mopts + [src, mnt], src, mnt))
	if pll:
		out.append(Filesystem('passthrough_ll', [pll, '-f', '-o', 'source=' + src, mnt],
				      src, mnt))
	only = set(opts.only.split(',')) if opts.only else None
	return [f for f in out if only is None or f.name in only or f.name == 'raw']


def run_one(fs, workloads, table, logdir):
	log('== %s' % fs.name)
	if not fs.mount(logdir):
		log('   %s' % fs.error)
		for name, *_ in WORKLOADS:
			table[fs.name].setdefault(name, []).append('FAIL(mount)')
		return
	work = os.path.join(fs.mnt, 'bench-' + fs.name)
	try:
		os.mkdir(work)
		for name, method, unit, kind in WORKLOADS:
			try:
				value = getattr(workloads, method)(work)
			except Exception as e:	# one failing workload must not stop the run
				value = 'FAIL(%s)' % str(e).splitlines()[0][:60]
			table[fs.name].setdefault(name, []).append(value)
			log('   %-32s %s' % (name, fmt(value)))
	finally:
		fs.unmount()
		shutil.rmtree(os.path.join(fs.src, 'bench-' + fs.name), ignore_errors=True)
	table[fs.name].setdefault('daemon CPU s', []).append(fs.cpu)


def summary(values):
	"""A workload's rounds in one figure: the mean of one or two, the median
	of three or more, so that one round the virtual disk slowed to half speed
	(it happens: seen for raw, caiofs and passthrough_ll alike) does not
	decide a row.  A failure in any round is the result."""
	failures = [v for v in values if isinstance(v, str)]
	if failures:
		return failures[0]
	numbers = [v for v in values if v is not None]
	if not numbers:
		return None
	return sum(numbers) / len(numbers) if len(numbers) < 3 else statistics.median(numbers)


def summary_name(rounds):
	return 'mean of %d rounds' % rounds if rounds == 2 else (
		'1 round' if rounds == 1 else 'median of %d rounds' % rounds)


def fmt(value):
	if isinstance(value, str) or value is None:
		if value and len(value) > 28:	# keep the table readable; --json has it all
			return value[:26] + '..)'
		return value or '-'
	if value >= 1000:
		return '%.0f' % value
	if value >= 10:
		return '%.1f' % value
	return '%.2f' % value


def ratio(value, raw, kind):
	if isinstance(value, str) or isinstance(raw, str) or not value or not raw:
		return '-'
	return '%.2f' % ((value / raw) if kind == 'rate' else (raw / value))


def print_table(names, table):
	rows = [(w[0], w[2], w[3]) for w in WORKLOADS]
	header = ['workload', 'unit'] + names
	lines = [header]
	for name, unit, kind in rows:
		raw = table['raw'].get(name)
		cells = [name, unit]
		for fs in names:
			v = table[fs].get(name)
			cells.append(fmt(v) if fs == 'raw' else '%s (%s)' % (fmt(v), ratio(v, raw, kind)))
		lines.append(cells)
	lines.append(['daemon CPU', 's'] + [fmt(table[fs].get('daemon CPU s')) for fs in names])
	widths = [max(len(str(l[i])) for l in lines) for i in range(len(header))]
	for i, l in enumerate(lines):
		print('  '.join(str(c).ljust(widths[j]) if j < 2 else str(c).rjust(widths[j])
				for j, c in enumerate(l)))
		if i == 0:
			print('  '.join('-' * w for w in widths))
	print('(ratio in parentheses: performance relative to raw, higher is better; '
	      'time workloads are raw time / time)')


def parse_size(text):
	m = re.fullmatch(r'(\d+)([kKmMgG]?)', text)
	if not m:
		raise argparse.ArgumentTypeError('size like 256M or 1G')
	return int(m.group(1)) << {'': 0, 'k': 10, 'm': 20, 'g': 30}[m.group(2).lower()]


def main():
	p = argparse.ArgumentParser(description='caiofs benchmark (run as root)')
	p.add_argument('--quick', action='store_true',
		       help='small sizes and short runs (a few minutes in total)')
	p.add_argument('--million', action='store_true',
		       help='add create/stat/readdir/unlink of 1,000,000 files (slow)')
	p.add_argument('--dbench', action='store_true',
		       help='add dbench with 4 clients for --runtime seconds (needs dbench)')
	p.add_argument('--seq-size', type=parse_size, help='sequential file size (1G; quick 256M)')
	p.add_argument('--rand-size', type=parse_size, help='random I/O file size (1G; quick 256M)')
	p.add_argument('--runtime', type=int, help='seconds per random workload (10; quick 3)')
	p.add_argument('--files', type=int, default=20000, help='files in the metadata workload')
	p.add_argument('--rounds', type=int, default=2,
		       help='run everything this many times (alternating the order) and '
		       'report the mean of two, the median of three or more (default 2; quick 1)')
	p.add_argument('--backends', default='uring,linux,thread,sync')
	p.add_argument('--only', help='comma-separated filesystems to run (raw always runs)')
	p.add_argument('--caiofs', default='caiofs', help='the caiofs binary')
	p.add_argument('--caiofs-opts', default='', help='extra -o options for caiofs')
	p.add_argument('--mergerfs-opts', default='', help='-o options for mergerfs')
	p.add_argument('--no-fuse-uring', dest='fuse_uring', action='store_false',
		       help='leave out caiofs-uring-ring: caiofs -o fuse_uring, run where the '
		       'kernel has FUSE over io_uring, with its switch on for the run')
	p.add_argument('--workdir', help='scratch directory (default: a new one under /var/tmp)')
	p.add_argument('--source', choices=('loop', 'dir', 'tmpfs'), default='loop',
		       help='loop (default): the source is a fresh ext4 on a loop device in the '
		       'scratch directory; dir: a plain directory there; tmpfs: a tmpfs (no disk '
		       'noise, but cold reads and O_DIRECT are then page-cache operations)')
	p.add_argument('--loop-size', type=parse_size, default=16 << 30,
		       help='size of the loop or tmpfs source filesystem (16G; the loop image '
		       'is written through once first, about 15 s)')
	p.add_argument('--workloads', help='comma-separated workloads to run, by the name of '
		       'their method (%s)' % ','.join(w[1] for w in WORKLOADS))
	p.add_argument('--pipe-max-size', type=parse_size,
		       help='set fs.pipe-max-size for the run (restored after): caiofs and '
		       'libfuse (passthrough_ll) splice writes only into pipes that hold a whole '
		       'request, beyond the default 1 MiB for a daemon without CAP_SYS_RESOURCE')
	p.add_argument('--keep-page-reporting', action='store_true',
		       help='leave virtio-balloon free page reporting on (by default it is off '
		       'for the run: a page freed went back to the host and the next page-cache '
		       'allocation faulted there, which cost writes through FUSE two thirds of '
		       'their speed)')
	p.add_argument('--json', help='also write the results here')
	opts = p.parse_args()
	opts.seq_size = opts.seq_size or (256 * MiB if opts.quick else 1 << 30)
	opts.rand_size = opts.rand_size or (256 * MiB if opts.quick else 1 << 30)
	opts.runtime = opts.runtime or (3 if opts.quick else 10)
	if opts.quick and '--rounds' not in ' '.join(sys.argv):
		opts.rounds = 1
	if opts.million:
		WORKLOADS.append(('files 1,000,000', 'files_million', 's', 'time'))
	if opts.dbench or 'dbench' in (opts.workloads or '').split(','):
		if not shutil.which('dbench'):
			sys.exit('caiofs-bench: dbench is missing (apt-get install dbench)')
		WORKLOADS.append(('dbench 4 clients', 'dbench', 'MB/s', 'rate'))
	if opts.workloads:
		wanted = opts.workloads.split(',')
		unknown = set(wanted) - {w[1] for w in WORKLOADS}
		if unknown:
			sys.exit('caiofs-bench: no workload %s' % ','.join(sorted(unknown)))
		WORKLOADS[:] = [w for w in WORKLOADS if w[1] in wanted]
	if os.geteuid() != 0:
		sys.exit('caiofs-bench: run as root (mounts, drop_caches)')

	scratch = opts.workdir or tempfile.mkdtemp(prefix='caiofs-bench.', dir='/var/tmp')
	os.makedirs(scratch, exist_ok=True)
	signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
	fss = []
	source_fs = None
	opts.fuse_uring = opts.fuse_uring and fuse_uring_possible()
	old_enable_uring = None
	old_pipe_max = set_pipe_max_size(opts.pipe_max_size) if opts.pipe_max_size else None
	old_reporting = None if opts.keep_page_reporting else pause_page_reporting()
	try:
		tarball = os.path.join(scratch, 'include.tar')
		subprocess.run(['tar', '-cf', tarball, '-C', '/usr', 'include'], check=True)
		pll = build_passthrough_ll(scratch)
		workloads = Workloads(opts, tarball, os.path.abspath(__file__))
		if opts.source == 'loop':
			source_fs = LoopSource(scratch, opts.loop_size)
		elif opts.source == 'tmpfs':
			source_fs = TmpfsSource(scratch, opts.loop_size)
		fss = filesystems(opts, scratch, pll, source_fs.dir if source_fs else scratch)
		if opts.source == 'loop':
			# The first write after the image was filled and formatted ran at
			# half speed (570 and 621 MiB/s raw, against 1200-1300 later):
			# that is no filesystem's turn.
			warm = os.path.join(fss[0].src, 'warm-up')
			os.mkdir(warm)
			workloads.seq_write(warm)
			shutil.rmtree(warm)
		if any(fs.name == 'caiofs-uring-ring' for fs in fss):
			old_enable_uring = set_enable_uring('1')
		rounds = {fs.name: {} for fs in fss}
		for r in range(opts.rounds):
			log('== round %d of %d' % (r + 1, opts.rounds))
			for fs in (fss if r % 2 == 0 else fss[::-1]):
				run_one(fs, workloads, rounds, scratch)
		table = {fs: {k: summary(v) for k, v in w.items()} for fs, w in rounds.items()}
		print('command: %s' % ' '.join(sys.argv))
		print('caiofs-bench: %s, seq %d MiB, random %d MiB x %ds, %d files, %s, '
		      'kernel %s, %d CPUs' % ('quick' if opts.quick else 'full', opts.seq_size // MiB,
					      opts.rand_size // MiB, opts.runtime, opts.files,
					      summary_name(opts.rounds), os.uname().release,
					      os.cpu_count()))
		print('source: %s' % (source_fs.describe() if source_fs
				      else 'a directory on the filesystem of ' + scratch))
		with open('/proc/sys/fs/pipe-max-size') as f:
			print('fs.pipe-max-size: %s (2 MiB or more: caiofs and passthrough_ll splice writes)'
			      % f.read().strip())
		if old_reporting is not None:
			print('free page reporting to the hypervisor: off for the run (threshold order '
			      '%s, put back after; --keep-page-reporting leaves it on)' % old_reporting)
		print_table([fs.name for fs in fss], table)
		if opts.json:
			with open(opts.json, 'w') as f:
				json.dump({'summary': table, 'rounds': rounds}, f, indent=1)
	finally:
		for fs in fss:
			fs.unmount()
		if old_enable_uring is not None:
			set_enable_uring('1' if old_enable_uring in ('Y', '1') else '0')
		if old_pipe_max is not None:
			set_pipe_max_size(old_pipe_max)
		if old_reporting is not None:
			swap_setting(PAGE_REPORTING, old_reporting)
		if source_fs:
			source_fs.remove()
		if not opts.workdir:
			shutil.rmtree(scratch, ignore_errors=True)


if __name__ == '__main__':
	if len(sys.argv) > 1 and sys.argv[1] == 'files':
		files_helper(sys.argv[2], int(sys.argv[3]))
	else:
		main()
