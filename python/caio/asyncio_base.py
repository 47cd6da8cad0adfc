"""AsyncioContextBase: the asyncio front end every backend's AsyncioContext builds on."""
import abc
import asyncio
import collections
import typing
from functools import partial

from . import abstract


ContextType = typing.Type[abstract.AbstractContext]
OperationType = typing.Type[abstract.AbstractOperation]


def _current_loop():
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.get_event_loop()


def _set_result_unless_done(future, result):
    if not future.done():
        future.set_result(result)


class AsyncioContextBase(abc.ABC):
    """Runs a backend Context's operations as awaitables on one event loop.

    At most max_requests operations are in the backend at once; the others
    wait for a free slot.  Backends with an eventfd (every caio backend)
    deliver completions through loop.add_reader() on the loop's own thread,
    and resolve each awaiting future directly.  With deferred=True every
    operation submitted during one loop iteration reaches the kernel in a
    single flush.

    Subclasses set CONTEXT_CLASS and OPERATION_CLASS and may override
    _create_context(), _destroy_context() and _on_done().
    """

    MAX_REQUESTS_DEFAULT = 512
    # Operations in a row that may finish inside their submit before the
    # submitting task yields to the event loop once.
    INLINE_STREAK_MAX = 32
    CONTEXT_CLASS = None    # type: ContextType
    OPERATION_CLASS = None  # type: OperationType

    def __init__(self, max_requests=None, loop=None, deferred=False, **kwargs):
        max_requests = max_requests or self.MAX_REQUESTS_DEFAULT
        self.loop = loop or _current_loop()
        self.max_requests = max_requests
        self.deferred = bool(deferred)
        self._closed = False
        self._free_slots = max_requests
        self._slot_waiters = collections.deque()
        self._flush_scheduled = False
        self._inline_streak = 0
        self._reader_fd = None
        self.context = self._create_context(max_requests, **kwargs)
        # The fast path: the context resolves our futures itself.
        self._fast_submit = getattr(self.context, "_submit", None)
        if self._fast_submit is not None:
            self._reader_fd = self.context.fileno
            self.loop.add_reader(self._reader_fd, self._on_read_event)

    # ---- life cycle ----

    def _create_context(self, max_requests, **kwargs):
        return self.CONTEXT_CLASS(max_requests=max_requests, **kwargs)

    def _destroy_context(self):
        close = getattr(self.context, "close", None)
        if close is not None:
            close()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self):
        """Stop watching the context and close it; pending operations end
        with their real result or ECANCELED.  Idempotent."""
        if self._closed:
            return
        self._closed = True
        loop_closed = self.loop.is_closed()
        if self._reader_fd is not None and not loop_closed:
            self.loop.remove_reader(self._reader_fd)
        try:
            self._destroy_context()
        except RuntimeError:
            if not loop_closed:     # futures of a closed loop cannot resolve
                raise
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():
                waiter.set_exception(RuntimeError("AsyncioContext is closed"))

    async def __aenter__(self):
        return self

    async def __aexit__(self, exc_type, exc_val, exc_tb):
        self.close()

    # ---- slots: never more than max_requests operations in the backend ----

    async def _take_slot(self):
        waiter = self.loop.create_future()
        self._slot_waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._give_slot()   # handed a slot but leaving: pass it on
            raise

    def _give_slot(self, _result=None):
        waiters = self._slot_waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free_slots += 1

    # ---- submission ----

    def _flush(self):
        self._flush_scheduled = False
        if not self._closed:
            self.context.flush()
            self.context.process_events(0)

    def _on_read_event(self):
        """The eventfd is readable: run the callbacks of what finished."""
        self.context.process_events(0)

    def _on_done(self, future, result):
        """Completion callback of the generic path; may run on any thread."""
        self.loop.call_soon_threadsafe(_set_result_unless_done, future, True)

    async def submit(self, op):
        if not isinstance(op, self.OPERATION_CLASS):
            raise ValueError("Operation object expected")
        if self._closed:
            raise RuntimeError("AsyncioContext is closed")
        if self._free_slots > 0:
            self._free_slots -= 1
        else:
            await self._take_slot()
            if self._closed:
                self._give_slot()
                raise RuntimeError("AsyncioContext is closed")
        future = self.loop.create_future()
        fast_submit = self._fast_submit
        slot_held = True
        try:
            if fast_submit is not None:
                if self.deferred:
                    fast_submit(op, future, False)
                    if not self._flush_scheduled:
                        self._flush_scheduled = True
                        self.loop.call_soon(self._flush)
                else:
                    fast_submit(op, future, True)
                    if not future.done():
                        self._inline_streak = 0
                    elif self._inline_streak < self.INLINE_STREAK_MAX:
                        # Finished inside the submit (page cache): no
                        # trip through the event loop, as for any
                        # awaitable that is already done...
                        self._inline_streak += 1
                    else:
                        # ...but other tasks get a turn now and then,
                        # as they would if this I/O had to wait.
                        self._inline_streak = 0
                        await asyncio.sleep(0)
                return await future
            op.set_callback(partial(self._on_done, future))
            if self.context.submit(op) != 1:
                raise RuntimeError("operation was not submitted")
            await future
            return op.get_value()
        except asyncio.CancelledError:
            if getattr(op, "in_progress", False):
                # The backend owns the operation (and its slot) until it
                # ends; its real result stays readable with get_value().
                slot_held = False
                op.set_callback(self._give_slot)
                self.context.cancel(op)
            raise
        finally:
            if slot_held:
                self._give_slot()

    def read(self, nbytes: int, fd: int, offset: int,
             priority: int = 0) -> typing.Awaitable[bytes]:
        return self.submit(self.OPERATION_CLASS.read(nbytes, fd, offset, priority))

    def write(self, payload: bytes, fd: int, offset: int,
              priority: int = 0) -> typing.Awaitable[int]:
        return self.submit(self.OPERATION_CLASS.write(payload, fd, offset, priority))

    def fsync(self, fd: int, priority: int = 0) -> typing.Awaitable:
        return self.submit(self.OPERATION_CLASS.fsync(fd, priority))

    def fdsync(self, fd: int, priority: int = 0) -> typing.Awaitable:
        return self.submit(self.OPERATION_CLASS.fdsync(fd, priority))
