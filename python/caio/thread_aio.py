"""caio on a pthread pool: libcaio's "thread" backend (CAIO_IMPL=thread)."""
from ._native import AbstractContext, require

_caio = require("thread", __name__)


class Context(_caio.Context, AbstractContext):
    """caio Context on thread_aio: libcaio's thread pool (CAIO_IMPL=thread).

    Context(max_requests=512, pool_size=8).
    """

    def __init__(self, max_requests=512, pool_size=8):
        super().__init__("thread", max_requests, pool_size=pool_size)
        self._pool_size = pool_size

    @property
    def pool_size(self) -> int:
        return self._pool_size


Operation = _caio.Operation

__all__ = ("Context", "Operation")
