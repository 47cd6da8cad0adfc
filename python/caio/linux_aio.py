"""caio on Linux AIO (io_submit): libcaio's "linux" backend (CAIO_IMPL=linux)."""
from ._native import AbstractContext, require

_caio = require("linux", __name__)


class Context(_caio.Context, AbstractContext):
    """caio Context on linux_aio: Linux AIO through libcaio (CAIO_IMPL=linux).

    Context(max_requests=32).  Needs kernel 4.18 or newer.
    """

    def __init__(self, max_requests=32):
        super().__init__("linux", max_requests)


Operation = _caio.Operation

__all__ = ("Context", "Operation")
