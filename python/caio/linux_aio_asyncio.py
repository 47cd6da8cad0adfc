"""AsyncioContext on linux_aio: Linux AIO (CAIO_IMPL=linux)."""
from .asyncio_base import AsyncioContextBase
from .linux_aio import Context, Operation


class AsyncioContext(AsyncioContextBase):
    """asyncio front end of caio.linux_aio: Linux AIO (CAIO_IMPL=linux).

    AsyncioContext(max_requests=512, loop=None, deferred=False, **context_kwargs)
    """

    OPERATION_CLASS = Operation
    CONTEXT_CLASS = Context


__all__ = ("AsyncioContext",)
