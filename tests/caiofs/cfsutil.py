# cfsutil.py - ctypes wrappers for the system calls Python's os module lacks, used by the caiofs tests.
import ctypes
import ctypes.util
import errno
import os
import struct

libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)

AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100

RENAME_NOREPLACE = 1 << 0
RENAME_EXCHANGE = 1 << 1

FALLOC_FL_KEEP_SIZE = 0x01
FALLOC_FL_PUNCH_HOLE = 0x02

UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2

XATTR_CREATE = 1
XATTR_REPLACE = 2


def _check(res, what):
	if res < 0:
		err = ctypes.get_errno()
		raise OSError(err, '%s: %s' % (what, os.strerror(err)))
	return res


def _path(p):
	return os.fsencode(p)


libc.renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
			   ctypes.c_char_p, ctypes.c_uint]
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64,
			   ctypes.c_int64]


AT_SYMLINK_FOLLOW = 0x400
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
			ctypes.c_int]


def link_follow(old, new):
	"""linkat(AT_SYMLINK_FOLLOW), which can name an O_TMPFILE file through
	/proc/self/fd/N: os.link() calls link(), which does not follow."""
	_check(libc.linkat(AT_FDCWD, _path(old), AT_FDCWD, _path(new), AT_SYMLINK_FOLLOW),
	       'linkat')


def renameat2(old, new, flags):
	"""rename(2) with RENAME_NOREPLACE / RENAME_EXCHANGE flags."""
	_check(libc.renameat2(AT_FDCWD, _path(old), AT_FDCWD, _path(new), flags),
	       'renameat2')


def fallocate(fd, mode, offset, length):
	_check(libc.fallocate(fd, mode, offset, length), 'fallocate')


class Timespec(ctypes.Structure):
	_fields_ = [('tv_sec', ctypes.c_long), ('tv_nsec', ctypes.c_long)]


def _times(atime, mtime):
	"""atime/mtime: (sec, nsec) tuples, or UTIME_NOW / UTIME_OMIT."""
	arr = (Timespec * 2)()
	for i, t in enumerate((atime, mtime)):
		if t in (UTIME_NOW, UTIME_OMIT):
			arr[i].tv_sec, arr[i].tv_nsec = 0, t
		else:
			arr[i].tv_sec, arr[i].tv_nsec = t
	return arr


libc.utimensat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
			   ctypes.c_int]
libc.futimens.argtypes = [ctypes.c_int, ctypes.c_void_p]


def utimensat(path, atime, mtime, flags=0):
	arr = _times(atime, mtime)
	_check(libc.utimensat(AT_FDCWD, _path(path), ctypes.byref(arr), flags),
	       'utimensat')


def futimens(fd, atime, mtime):
	arr = _times(atime, mtime)
	_check(libc.futimens(fd, ctypes.byref(arr)), 'futimens')


libc.getxattr.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p,
			  ctypes.c_size_t]
libc.getxattr.restype = ctypes.c_ssize_t
libc.listxattr.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t]
libc.listxattr.restype = ctypes.c_ssize_t


def getxattr_raw(path, name, size):
	"""getxattr(2) with an explicit buffer size: returns (result, bytes)."""
	buf = ctypes.create_string_buffer(max(size, 1))
	res = libc.getxattr(_path(path), name.encode(), buf if size else None,
			    size)
	_check(res, 'getxattr')
	return res, buf.raw[:res] if size else b''


def listxattr_raw(path, size):
	buf = ctypes.create_string_buffer(max(size, 1))
	res = libc.listxattr(_path(path), buf if size else None, size)
	_check(res, 'listxattr')
	return res, buf.raw[:res] if size else b''


libc.getdents64.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t]
libc.getdents64.restype = ctypes.c_ssize_t

DT_NAMES = {1: 'fifo', 2: 'chr', 4: 'dir', 6: 'blk', 8: 'reg', 10: 'lnk',
	    12: 'sock', 0: 'unknown'}


def getdents(fd, bufsize=4096):
	"""One getdents64(2) call: a list of (d_ino, d_off, d_type, name)."""
	buf = ctypes.create_string_buffer(bufsize)
	n = _check(libc.getdents64(fd, buf, bufsize), 'getdents64')
	raw = buf.raw[:n]
	out = []
	pos = 0
	while pos < n:
		ino, off, reclen, dtype = struct.unpack_from('<QqHB', raw, pos)
		name = raw[pos + 19:pos + reclen].split(b'\0', 1)[0]
		out.append((ino, off, dtype, os.fsdecode(name)))
		pos += reclen
	return out


def getdents_all(fd, bufsize=4096):
	"""Every entry from the current position to the end."""
	out = []
	while True:
		chunk = getdents(fd, bufsize)
		if not chunk:
			return out
		out.extend(chunk)


class Dirent(ctypes.Structure):
	_fields_ = [('d_ino', ctypes.c_uint64), ('d_off', ctypes.c_int64),
		    ('d_reclen', ctypes.c_ushort), ('d_type', ctypes.c_ubyte),
		    ('d_name', ctypes.c_char * 256)]


libc.opendir.argtypes = [ctypes.c_char_p]
libc.opendir.restype = ctypes.c_void_p
libc.readdir.argtypes = [ctypes.c_void_p]
libc.readdir.restype = ctypes.POINTER(Dirent)
libc.telldir.argtypes = [ctypes.c_void_p]
libc.telldir.restype = ctypes.c_long
libc.seekdir.argtypes = [ctypes.c_void_p, ctypes.c_long]
libc.seekdir.restype = None
libc.rewinddir.argtypes = [ctypes.c_void_p]
libc.rewinddir.restype = None
libc.closedir.argtypes = [ctypes.c_void_p]


class Dir:
	"""libc opendir/readdir/telldir/seekdir, as C programs use them."""

	def __init__(self, path):
		ctypes.set_errno(0)
		self.handle = libc.opendir(_path(path))
		if not self.handle:
			_check(-1, 'opendir')

	def read(self):
		"""The next name, or None at the end (raises on error)."""
		ctypes.set_errno(0)
		ent = libc.readdir(self.handle)
		if not ent:
			err = ctypes.get_errno()
			if err:
				raise OSError(err, 'readdir: ' + os.strerror(err))
			return None
		return os.fsdecode(ent.contents.d_name)

	def tell(self):
		return _check(libc.telldir(self.handle), 'telldir')

	def seek(self, pos):
		libc.seekdir(self.handle, pos)

	def rewind(self):
		libc.rewinddir(self.handle)

	def close(self):
		if self.handle:
			libc.closedir(self.handle)
			self.handle = None

	def __enter__(self):
		return self

	def __exit__(self, *exc):
		self.close()


F_GETLK = 5
F_SETLK = 6
F_OFD_GETLK = 36


def getlk(fd, ltype, start, length):
	"""fcntl(F_GETLK): returns (l_type, l_start, l_len, l_pid)."""
	import fcntl
	req = struct.pack('hhqqi', ltype, os.SEEK_SET, start, length, 0)
	res = fcntl.fcntl(fd, F_GETLK, req + b'\0' * 4)
	ltype, whence, start, length, pid = struct.unpack('hhqqi', res[:28])
	return ltype, start, length, pid


def errno_of(fn, *args, **kwargs):
	"""Run fn and return the errno it raised, or 0 if it succeeded."""
	try:
		fn(*args, **kwargs)
	except OSError as e:
		return e.errno
	return 0


def errname(num):
	return errno.errorcode.get(num, str(num)) if num else 'success'


def as_user(uid, gid, fn, *args, groups=(), umask=0o022, timeout=60):
	"""Run fn(*args) in a forked child with the given ids; return its result.
	An exception in the child is raised again here (OSError keeps errno)."""
	import pickle
	import select
	import signal
	rfd, wfd = os.pipe()
	pid = os.fork()
	if pid == 0:
		os.close(rfd)
		try:
			os.setgroups(list(groups))
			os.setgid(gid)
			os.setuid(uid)
			os.umask(umask)
			result = (True, fn(*args))
		except BaseException as e:	# report everything to the parent
			result = (False, e)
		try:
			data = pickle.dumps(result)
		except Exception as e:
			data = pickle.dumps((False, RuntimeError(repr(e))))
		os.write(wfd, data)
		os._exit(0)
	os.close(wfd)
	chunks = []
	try:
		while True:
			ready, _, _ = select.select([rfd], [], [], timeout)
			if not ready:
				os.kill(pid, signal.SIGKILL)
				raise TimeoutError('child as uid %d timed out' % uid)
			chunk = os.read(rfd, 65536)
			if not chunk:
				break
			chunks.append(chunk)
	finally:
		os.close(rfd)
		os.waitpid(pid, 0)
	ok, value = pickle.loads(b''.join(chunks))
	if not ok:
		raise value
	return value


libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
		      ctypes.c_int, ctypes.c_int64]
libc.mmap.restype = ctypes.c_void_p
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]


def resident_pages(path):
	"""How many pages of path's page cache are resident (mincore(2))."""
	import mmap
	fd = os.open(path, os.O_RDONLY)
	try:
		size = os.fstat(fd).st_size
		if size == 0:
			return 0
		addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
		if addr in (None, ctypes.c_void_p(-1).value):
			_check(-1, 'mmap')
		try:
			pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
			vec = ctypes.create_string_buffer(pages)
			_check(libc.mincore(addr, size, vec), 'mincore')
			return sum(b & 1 for b in vec.raw)
		finally:
			libc.munmap(addr, size)
	finally:
		os.close(fd)


def evict(path):
	"""Write back and drop path's cached pages."""
	fd = os.open(path, os.O_RDONLY)
	try:
		os.fsync(fd)
		os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
	finally:
		os.close(fd)


def deny_syscalls(*numbers, err=38):
	"""preexec_fn helper: a seccomp filter making the given x86-64 system
	calls fail with err (ENOSYS), as a sandbox without them would."""
	import struct as st
	PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
	AUDIT_ARCH_X86_64 = 0xc000003e
	LD_W_ABS, JEQ_K, RET_K = 0x20, 0x15, 0x06
	ALLOW, ERRNO, KILL = 0x7fff0000, 0x00050000, 0

	def ins(code, jt, jf, k):
		return st.pack('HBBI', code, jt, jf, k)

	prog = [ins(LD_W_ABS, 0, 0, 4), ins(JEQ_K, 1, 0, AUDIT_ARCH_X86_64), ins(RET_K, 0, 0, KILL),
		ins(LD_W_ABS, 0, 0, 0)]
	for i, nr in enumerate(numbers):
		prog.append(ins(JEQ_K, len(numbers) - i, 0, nr))
	prog += [ins(RET_K, 0, 0, ALLOW), ins(RET_K, 0, 0, ERRNO | err)]
	code = b''.join(prog)
	filt = ctypes.create_string_buffer(code, len(code))

	class Fprog(ctypes.Structure):
		_fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.c_void_p)]

	fprog = Fprog(len(prog), ctypes.addressof(filt))

	def install():
		libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p,
				       ctypes.c_ulong, ctypes.c_ulong]
		if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, None, 0, 0) != 0 or \
				libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER,
					   ctypes.addressof(fprog), 0, 0) != 0:
			raise OSError(ctypes.get_errno(), 'seccomp')
	install.keep = (filt, fprog)
	return install


SYS_IO_SETUP = 206
SYS_IO_URING_SETUP = 425
