"""AsyncioContext on thread_aio: libcaio's thread pool (CAIO_IMPL=thread)."""
from .asyncio_base import AsyncioContextBase
from .thread_aio import Context, Operation


class AsyncioContext(AsyncioContextBase):
    """asyncio front end of caio.thread_aio: libcaio's thread pool (CAIO_IMPL=thread).

    AsyncioContext(max_requests=512, loop=None, deferred=False, **context_kwargs)
    """

    OPERATION_CLASS = Operation
    CONTEXT_CLASS = Context


__all__ = ("AsyncioContext",)
