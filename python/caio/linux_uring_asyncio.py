"""AsyncioContext on linux_uring: io_uring (CAIO_IMPL=uring)."""
from .asyncio_base import AsyncioContextBase
from .linux_uring import Context, Operation


class AsyncioContext(AsyncioContextBase):
    """asyncio front end of caio.linux_uring: io_uring (CAIO_IMPL=uring).

    AsyncioContext(max_requests=512, loop=None, deferred=False, **context_kwargs)
    """

    OPERATION_CLASS = Operation
    CONTEXT_CLASS = Context


__all__ = ("AsyncioContext",)
