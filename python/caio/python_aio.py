"""caio in pure Python: a thread pool running os.pread/os.pwrite (CAIO_IMPL=python).

Needs no compiled code at all.  Completions are delivered like the native
backends: process_events() runs the callbacks, and `fileno` is a descriptor
that becomes readable when some are waiting (for loop.add_reader).  A
context nobody polls (process_events, poll and fileno never used) runs the
callbacks on a helper thread, as the original pure-Python caio ran them on
its pool's threads.
"""
import collections
import errno
import mmap
import operator
import os
import queue
import select
import threading
import time
import weakref
from typing import Any, Callable, Optional, Union

from . import _dispatch
from .abstract import AbstractContext, AbstractOperation, ContextFullError

MAX_RW_COUNT = 0x7FFFF000   # the kernel's largest single read or write
_PAGE = mmap.PAGESIZE

_READ, _WRITE, _FSYNC, _FDSYNC = range(4)
_NEW, _FLIGHT, _DONE = range(3)


def _check_fd(fd) -> int:
    """An int or an object with fileno(), like os.fstat() takes; never negative."""
    if not isinstance(fd, int) and hasattr(fd, "fileno"):
        fd = fd.fileno()
    fd = operator.index(fd)
    if fd < 0:
        raise ValueError("file descriptor cannot be a negative integer (%d)" % fd)
    return fd


def _check_offset(offset) -> int:
    offset = operator.index(offset)
    if offset < 0:
        raise ValueError("offset must not be negative")
    if offset >= 1 << 63:
        raise OverflowError("offset must be below 2**63")
    return offset


def _check_nbytes(nbytes) -> int:
    nbytes = operator.index(nbytes)
    if nbytes < 0:
        raise ValueError("nbytes must not be negative")
    if nbytes >= 1 << 63:
        raise OverflowError("nbytes must be below 2**63")
    return nbytes


class Operation(AbstractOperation):
    """One read, write, fsync or fdsync for python_aio.Context."""

    __slots__ = ("_kind", "_fd", "_offset", "_nbytes", "_payload", "_view",
                 "_state", "_result", "_value", "_callback", "_future",
                 "_running", "_generation")

    def __init__(self, kind, fd, offset=0, nbytes=0, payload=None):
        self._kind = kind
        self._fd = fd
        self._offset = offset
        self._nbytes = nbytes
        self._payload = payload
        self._view = None
        self._state = _NEW
        self._result = 0
        self._value = None
        self._callback = None
        self._future = None
        self._running = False       # a worker (or a cancel) owns it
        self._generation = 0

    @classmethod
    def read(cls, nbytes: int, fd: int, offset: int, priority=0) -> "Operation":
        return cls(_READ, _check_fd(fd), _check_offset(offset), _check_nbytes(nbytes))

    @classmethod
    def write(cls, payload_bytes, fd: int, offset: int, priority=0) -> "Operation":
        if isinstance(payload_bytes, str):
            raise TypeError("payload must be bytes-like, not str")
        view = memoryview(payload_bytes)
        if not view.c_contiguous:
            view = memoryview(view.tobytes())
        view = view.cast("B")
        op = cls(_WRITE, _check_fd(fd), _check_offset(offset), view.nbytes, payload_bytes)
        op._view = view
        return op

    @classmethod
    def fsync(cls, fd: int, priority=0) -> "Operation":
        return cls(_FSYNC, _check_fd(fd))

    @classmethod
    def fdsync(cls, fd: int, priority=0) -> "Operation":
        return cls(_FDSYNC, _check_fd(fd))

    # ---- results ----

    def _refuse_in_flight(self):
        if self._state == _FLIGHT:
            raise RuntimeError("operation is still in progress")

    def get_value(self) -> Union[bytes, int, None]:
        self._refuse_in_flight()
        if self._state == _NEW:
            raise RuntimeError("operation was never submitted")
        if self._result < 0:
            err = -self._result
            raise OSError(err, os.strerror(err))
        if self._kind == _READ:
            return self._value
        if self._kind == _WRITE:
            return self._result
        return None

    def set_callback(self, callback: Optional[Callable[[int], Any]]) -> bool:
        if callback is not None and not callable(callback):
            raise ValueError("callback %r is not callable" % (callback,))
        self._callback = callback
        return True

    @property
    def fileno(self) -> int:
        return self._fd

    @property
    def offset(self) -> int:
        return self._offset

    @property
    def nbytes(self) -> int:
        return self._nbytes

    @property
    def payload(self):
        self._refuse_in_flight()
        if self._kind == _READ:
            return self._value
        return self._payload

    @property
    def result(self) -> int:
        return self._result if self._state == _DONE else 0

    @property
    def error(self) -> int:
        return -self._result if self._state == _DONE and self._result < 0 else 0

    @property
    def callback(self):
        return self._callback

    @property
    def in_progress(self) -> bool:
        return self._state == _FLIGHT

    def __repr__(self):
        kinds = ("read", "write", "fsync", "fdsync")
        states = ("new", "in progress", "done")
        return "<%s %s fd=%d offset=%d nbytes=%d %s result=%d>" % (
            type(self).__name__, kinds[self._kind], self._fd, self._offset,
            self._nbytes, states[self._state], self._result,
        )

    # ---- execution, on a worker thread ----

    def _execute(self):
        try:
            if self._kind == _READ:
                self._value = _pread_all(self._fd, self._nbytes, self._offset)
                return len(self._value)
            if self._kind == _WRITE:
                return _pwrite_all(self._fd, self._view, self._offset)
            if self._kind == _FSYNC:
                os.fsync(self._fd)
            else:
                getattr(os, "fdatasync", os.fsync)(self._fd)
            return 0
        except OSError as exc:
            return -(exc.errno or errno.EIO)
        except MemoryError:
            return -errno.ENOMEM
        except (OverflowError, ValueError):
            return -errno.EINVAL

    def _finish(self, result):
        """Publish the result, run the callback and resolve the future."""
        self._result = result
        self._state = _DONE
        future, self._future = self._future, None
        callback = self._callback
        if callback is not None:
            callback(result)
        if future is not None and not future.done():
            if result < 0:
                future.set_exception(OSError(-result, os.strerror(-result)))
            else:
                future.set_result(self.get_value())


def _is_direct(fd) -> bool:
    try:
        import fcntl
        return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))
    except (ImportError, OSError):
        return False


def _aligned(nbytes):
    """A page-aligned buffer, as O_DIRECT wants."""
    return mmap.mmap(-1, max(_PAGE, -(-nbytes // _PAGE) * _PAGE))


def _pread_all(fd, nbytes, offset) -> bytes:
    """pread until nbytes, EOF or a short read, one kernel transfer at a time."""
    piece = min(nbytes, MAX_RW_COUNT)
    try:
        data = os.pread(fd, piece, offset)
    except OSError as exc:
        if exc.errno != errno.EINVAL or not nbytes or not _is_direct(fd):
            raise
        return _pread_direct(fd, nbytes, offset)
    if len(data) < piece or nbytes == piece:
        return data
    parts = [data]
    done = len(data)
    while done < nbytes:
        piece = min(nbytes - done, MAX_RW_COUNT)
        data = os.pread(fd, piece, offset + done)
        parts.append(data)
        done += len(data)
        if len(data) < piece:
            break
    return b"".join(parts)


def _pread_direct(fd, nbytes, offset) -> bytes:
    """O_DIRECT: read through a page-aligned buffer."""
    size = min(nbytes, MAX_RW_COUNT)
    buf = _aligned(size)
    view = memoryview(buf)
    parts = []
    done = 0
    try:
        while done < nbytes:
            piece = min(nbytes - done, size)
            got = os.preadv(fd, [view[:piece]], offset + done)
            parts.append(bytes(view[:got]))
            done += got
            if got < piece:
                break
    finally:
        view.release()
        buf.close()
    return b"".join(parts)


def _pwrite_all(fd, view, offset) -> int:
    nbytes = view.nbytes
    if nbytes <= MAX_RW_COUNT:
        try:
            return os.pwrite(fd, view, offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL or not nbytes or not _is_direct(fd):
                raise
        buf = _aligned(nbytes)
        buf[:nbytes] = view
        try:
            return os.pwrite(fd, memoryview(buf)[:nbytes], offset)
        finally:
            buf.close()
    done = 0
    while done < nbytes:
        piece = min(nbytes - done, MAX_RW_COUNT)
        put = os.pwrite(fd, view[done:done + piece], offset + done)
        done += put
        if put < piece:
            break
    return done


class _Signal:
    """A descriptor readable while completions wait (eventfd, else a pipe)."""

    def __init__(self):
        if hasattr(os, "eventfd"):
            self.rfd = self.wfd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        else:
            self.rfd, self.wfd = os.pipe()
            os.set_blocking(self.rfd, False)
            os.set_blocking(self.wfd, False)

    def set(self):
        try:
            os.write(self.wfd, (1).to_bytes(8, "little"))
        except (BlockingIOError, OSError):
            pass    # full or closed: readable anyway, or nobody listens

    def clear(self) -> int:
        try:
            data = os.read(self.rfd, 4096 if self.rfd != self.wfd else 8)
        except BlockingIOError:
            return 0
        return int.from_bytes(data[:8], "little") if self.rfd == self.wfd else len(data)

    def close(self):
        os.close(self.rfd)
        if self.wfd != self.rfd:
            os.close(self.wfd)


_CONTEXTS = weakref.WeakSet()


def _after_fork_in_child():
    # The workers stayed in the parent: an inherited context cannot work.
    for context in list(_CONTEXTS):
        context._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Context(AbstractContext):
    """caio Context on python_aio: pure Python worker threads (CAIO_IMPL=python).

    Context(max_requests=32, pool_size=8).
    """

    def __init__(self, max_requests: int = 32, pool_size: int = 8):
        if max_requests < 0 or pool_size < 0 or pool_size > 1024:
            raise ValueError("max_requests must be >= 0 and pool_size in 0..1024")
        self._max_requests = max_requests or 512
        self._pool_size = pool_size or 8
        self._todo = queue.SimpleQueue()    # (operation, generation)
        self._done = collections.deque()    # (operation, result)
        self._signal = _Signal()
        self._threads = []
        self._pending = 0                   # accepted and not finished
        self._lock = threading.Lock()       # _pending, states, _closed
        self._polled = threading.Event()    # the caller collects completions
        self._dispatcher = None
        self._closed = False
        self._forked = False                # inherited by a forked child
        _CONTEXTS.add(self)

    # ---- properties ----

    @property
    def max_requests(self) -> int:
        return self._max_requests

    @property
    def pool_size(self) -> int:
        return self._pool_size

    @property
    def fileno(self) -> int:
        self._check_open()
        self._polled.set()
        return self._signal.rfd

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def backend(self) -> str:
        return "python"

    def _check_open(self):
        if self._closed:
            raise RuntimeError("caio context is closed")
        if self._forked:
            raise OSError(errno.EBADFD, "this caio context was created by another "
                          "process (inherited across fork); create a new context "
                          "in the child")

    # ---- workers ----

    def _start_worker(self):
        thread = threading.Thread(target=self._work, name="caio-python-aio", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _claim(self, op, generation) -> bool:
        """A worker takes a queued operation unless it was cancelled.  Once
        claimed (by a worker or by cancel) nobody else may complete it."""
        with self._lock:
            if op._generation != generation or op._running or op._state != _FLIGHT:
                return False
            op._running = True
            return True

    def _work(self):
        todo = self._todo
        while True:
            item = todo.get()
            if item is None:
                return
            op, generation = item
            if self._claim(op, generation):
                self._complete(op, op._execute())
            # An idle worker must not keep the last operation (and its
            # buffers and callback) alive.
            del item, op

    def _complete(self, op, result):
        """Hand a result to whoever collects it (any thread)."""
        with self._lock:
            op._generation += 1         # stale queue entries are skipped
            if not self._closed:
                self._done.append((op, result))
                if len(self._done) == 1:
                    self._signal.set()
                return
            self._pending -= 1
        self._deliver(op, result)       # closed: nobody collects any more

    @staticmethod
    def _deliver(op, result):
        future = op._future
        if future is None:
            op._finish(result)
            return
        try:
            future.get_loop().call_soon_threadsafe(op._finish, result)
        except RuntimeError:            # its loop is closed
            op._future = None
            op._finish(result)

    # ---- API ----

    def _accept(self, op) -> bool:
        with self._lock:
            if self._closed:
                raise RuntimeError("caio context is closed")
            if self._pending >= self._max_requests:
                return False
            self._pending += 1
            op._state = _FLIGHT
            op._result = 0
            op._value = None
            op._running = False
            generation = op._generation
        if len(self._threads) < self._pool_size and len(self._threads) < self._pending:
            self._start_worker()
        self._todo.put((op, generation))
        return True

    def submit(self, *aio_operations) -> int:
        for op in aio_operations:
            if not isinstance(op, Operation):
                raise ValueError("argument is not a python_aio Operation: %r" % (op,))
        self._check_open()
        accepted = 0
        full = False
        for op in aio_operations:
            if op._state == _FLIGHT:
                continue
            if not self._accept(op):
                full = True
                break
            accepted += 1
        if (accepted and self._dispatcher is None and not self._polled.is_set()
                and any(op._callback is not None for op in aio_operations)):
            self._dispatcher = _dispatch.start(
                self, self._signal.rfd, Context._collect, self._polled)
        if full and not accepted:
            error = ContextFullError(
                errno.EAGAIN, "caio context is full: max_requests=%d operations "
                "are pending (%d of this submit accepted)" % (self._max_requests, accepted))
            error.accepted = accepted
            raise error
        return accepted

    def _collect(self):
        self._run_ready(0)

    def queue(self, *aio_operations) -> int:
        return self.submit(*aio_operations)

    def _submit(self, op, future, flush=True):
        """The asyncio fast path: future gets get_value()'s outcome."""
        self._check_open()
        if op._state == _FLIGHT:
            raise RuntimeError("operation is already in progress")
        if not self._polled.is_set():
            self._polled.set()
        op._future = future
        if not self._accept(op):
            op._future = None
            raise ContextFullError(errno.EAGAIN, "caio context is full")

    def flush(self) -> int:
        self._check_open()
        return 0    # operations start at submit()

    def cancel(self, *aio_operations) -> int:
        """Cancel operations no worker started; they end with ECANCELED."""
        self._check_open()
        cancelled = 0
        for op in aio_operations:
            if not isinstance(op, Operation):
                raise ValueError("argument is not a python_aio Operation: %r" % (op,))
            with self._lock:
                if op._state != _FLIGHT or op._running:
                    continue
                op._running = True      # no worker may take it now
            self._complete(op, -errno.ECANCELED)
            cancelled += 1
        return cancelled

    def poll(self) -> int:
        self._check_open()
        self._polled.set()
        count = self._signal.clear()
        if not count:
            raise BlockingIOError(errno.EAGAIN, "no completions were signalled")
        return count

    def process_events(self, max_requests: int = 512, min_requests: int = 0,
                       timeout: Optional[float] = 0) -> int:
        self._check_open()
        if max_requests and min_requests > max_requests:
            raise ValueError("min_requests (%d) must be <= max_requests (%d)"
                             % (min_requests, max_requests))
        self._polled.set()
        done = self._run_ready(max_requests)
        if done >= min_requests or timeout == 0:
            return done
        deadline = None if timeout is None else time.monotonic() + timeout
        while done < min_requests and not self._closed:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                break
            if left is None and not self._pending:
                break       # nothing can ever arrive
            select.select([self._signal.rfd], [], [], left)
            done += self._run_ready(max_requests - done if max_requests else 0)
        return done

    def _run_ready(self, max_requests) -> int:
        self._signal.clear()
        done = 0
        error = None
        while not max_requests or done < max_requests:
            try:
                op, result = self._done.popleft()
            except IndexError:
                break
            with self._lock:
                self._pending -= 1
            done += 1
            try:
                op._finish(result)
            except Exception as exc:    # report the first, finish the rest
                if error is None:
                    error = exc
        if self._done:
            self._signal.set()
        if error is not None:
            raise error
        return done

    def close(self):
        """Cancel what no worker started, finish what is collected; running
        operations end on their worker with their real result.  Idempotent."""
        if self._forked:
            self._closed = True     # the parent's workers and queue: not ours
            return
        with self._lock:
            if self._closed:
                return
            self._closed = True
        leftovers = []
        while True:
            try:
                item = self._todo.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                leftovers.append(item[0])
        for _ in self._threads:
            self._todo.put(None)
        for op in leftovers:
            with self._lock:
                if op._state != _FLIGHT or op._running:
                    continue
                op._running = True
            self._complete(op, -errno.ECANCELED)
        while self._done:
            op, result = self._done.popleft()
            with self._lock:
                self._pending -= 1
            self._deliver(op, result)

    def __enter__(self):
        self._check_open()
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        # Workers hold a reference until they exit, so none can signal now.
        if not getattr(self, "_closed", True):
            self.close()
        signal = getattr(self, "_signal", None)
        if signal is not None:
            self._signal = None
            signal.close()


__all__ = ("Context", "Operation")
