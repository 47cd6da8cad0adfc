"""AsyncioContext on python_aio: pure Python threads (CAIO_IMPL=python)."""
from .asyncio_base import AsyncioContextBase
from .python_aio import Context, Operation


class AsyncioContext(AsyncioContextBase):
    """asyncio front end of caio.python_aio: pure Python threads (CAIO_IMPL=python).

    AsyncioContext(max_requests=512, loop=None, deferred=False, **context_kwargs)
    """

    OPERATION_CLASS = Operation
    CONTEXT_CLASS = Context


__all__ = ("AsyncioContext",)
