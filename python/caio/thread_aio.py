"""caio on a pthread pool: libcaio's "thread" backend (CAIO_IMPL=thread)."""
import threading

from . import _dispatch
from ._native import AbstractContext, require

_caio = require("thread", __name__)
_native_fileno = _caio.Context.fileno.__get__


def _collect(context):
    _caio.Context.process_events(context, 0)


class Context(_caio.Context, AbstractContext):
    """caio Context on thread_aio: libcaio's thread pool (CAIO_IMPL=thread).

    Context(max_requests=512, pool_size=8).  Completions are delivered by
    process_events(); a context nobody polls (process_events, poll and
    fileno never used) runs the callbacks on a helper thread instead, as the
    original thread_aio ran them on its workers.
    """

    def __init__(self, max_requests=512, pool_size=8):
        super().__init__("thread", max_requests, pool_size=pool_size)
        self._pool_size = pool_size
        self._polled = threading.Event()    # the caller collects completions
        self._dispatcher = None

    @property
    def pool_size(self) -> int:
        return self._pool_size

    @property
    def fileno(self) -> int:
        self._polled.set()
        return _native_fileno(self)

    def poll(self) -> int:
        self._polled.set()
        return super().poll()

    def process_events(self, max_requests=512, min_requests=0, timeout=0) -> int:
        self._polled.set()
        return super().process_events(max_requests, min_requests, timeout)

    def submit(self, *aio_operations) -> int:
        try:
            return super().submit(*aio_operations)
        finally:
            if (self._dispatcher is None and not self._polled.is_set() and not self.closed
                    and any(getattr(op, "callback", None) is not None for op in aio_operations)):
                self._dispatcher = _dispatch.start(
                    self, _native_fileno(self), _collect, self._polled)


Operation = _caio.Operation

__all__ = ("Context", "Operation")
