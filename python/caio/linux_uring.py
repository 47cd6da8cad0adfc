"""caio on io_uring: libcaio's "uring" backend (CAIO_IMPL=uring)."""
from ._native import AbstractContext, require

_caio = require("uring", __name__)


def _probe_sqpoll():
    try:
        context = _caio.Context("uring", 1, sqpoll=True)
    except OSError:
        return False
    context.close()
    return True


#: Whether this kernel and process may use an SQPOLL kernel thread.
SQPOLL_ALLOWED = _probe_sqpoll()


class Context(_caio.Context, AbstractContext):
    """caio Context on linux_uring: io_uring through libcaio (CAIO_IMPL=uring).

    Context(max_requests=32, sqpoll=False); sqpoll=True asks for a kernel
    submission polling thread (see SQPOLL_ALLOWED).
    """

    def __init__(self, max_requests=32, sqpoll=False):
        super().__init__("uring", max_requests, sqpoll=sqpoll)


Operation = _caio.Operation

__all__ = ("Context", "Operation", "SQPOLL_ALLOWED")
