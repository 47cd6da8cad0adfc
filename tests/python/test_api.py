# test_api.py - every public name of the caio package exists with the shape the original has.
import asyncio
import importlib
import inspect
import os
import re
import types

import pytest

import caio
from conftest import BACKENDS, describe, load_backend, run, run_python

BACKEND_MODULES = [m for _, m in BACKENDS] + [m + "_asyncio" for _, m in BACKENDS]


def test_top_level_names():
    for name in ("Context", "Operation", "AsyncioContext", "AbstractContext",
                 "AbstractOperation", "variants", "variants_asyncio", "__version__"):
        assert hasattr(caio, name), f"caio.{name} is missing"
    assert isinstance(caio.__version__, str)
    assert re.match(r"^\d+\.\d+", caio.__version__), caio.__version__


@pytest.mark.parametrize("name", BACKEND_MODULES)
def test_backend_module_attribute(name):
    # Each of the eight modules is an attribute of caio: the module, or None
    # when its backend cannot work here.
    assert hasattr(caio, name), f"caio.{name} is missing"
    value = getattr(caio, name)
    if value is not None:
        assert isinstance(value, types.ModuleType)
        assert value.__name__ == "caio." + name
        assert importlib.import_module("caio." + name) is value


def test_raw_and_asyncio_modules_come_in_pairs():
    for _, module in BACKENDS:
        raw = getattr(caio, module)
        aio = getattr(caio, module + "_asyncio")
        assert (raw is None) == (aio is None), module


def test_python_backend_always_available():
    assert caio.python_aio is not None
    assert caio.python_aio_asyncio is not None


def test_variants_in_preference_order():
    expected = tuple(getattr(caio, m) for _, m in BACKENDS if getattr(caio, m) is not None)
    expected_asyncio = tuple(getattr(caio, m + "_asyncio") for _, m in BACKENDS
                             if getattr(caio, m + "_asyncio") is not None)
    assert isinstance(caio.variants, tuple)
    assert isinstance(caio.variants_asyncio, tuple)
    assert caio.variants == expected
    assert caio.variants_asyncio == expected_asyncio
    assert caio.variants[-1] is caio.python_aio


def test_automatic_choice_is_first_variant():
    # In a clean environment (no CAIO_IMPL), caio picks the first variant.
    code = (
        "import caio\n"
        "assert caio.Context is caio.variants[0].Context, caio.Context\n"
        "assert caio.Operation is caio.variants[0].Operation, caio.Operation\n"
        "assert caio.AsyncioContext is caio.variants_asyncio[0].AsyncioContext\n"
        "print('OK', caio.variants[0].__name__)\n"
    )
    proc = run_python(code)
    assert proc.returncode == 0 and proc.stdout.startswith("OK"), describe(proc)


def test_abstract_module():
    from caio import abstract
    assert abstract.AbstractContext is caio.AbstractContext
    assert abstract.AbstractOperation is caio.AbstractOperation
    for cls in (abstract.AbstractContext, abstract.AbstractOperation):
        assert inspect.isabstract(cls)
        with pytest.raises(TypeError):
            cls()


def test_asyncio_base_module():
    from caio import asyncio_base
    assert inspect.isclass(asyncio_base.AsyncioContextBase)
    assert asyncio_base.AsyncioContextBase.MAX_REQUESTS_DEFAULT == 512
    for aio in caio.variants_asyncio:
        assert issubclass(aio.AsyncioContext, asyncio_base.AsyncioContextBase), aio.__name__


def test_sqpoll_allowed():
    uring = load_backend("uring").raw
    assert isinstance(uring.SQPOLL_ALLOWED, bool)


def test_backend_classes(backend):
    assert issubclass(backend.raw.Context, caio.AbstractContext)
    assert issubclass(backend.raw.Operation, caio.AbstractOperation)
    assert not inspect.isabstract(backend.raw.Context)
    assert not inspect.isabstract(backend.raw.Operation)
    assert backend.aio.AsyncioContext.MAX_REQUESTS_DEFAULT == 512


def test_asyncio_context_signature(backend):
    params = inspect.signature(backend.aio.AsyncioContext).parameters
    assert params["max_requests"].default is None
    assert params["loop"].default is None
    assert params["deferred"].default is False
    assert list(params)[:3] == ["max_requests", "loop", "deferred"]
    # **backend_kwargs reach the raw Context (sqpoll=, pool_size=).
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def test_asyncio_context_methods(backend):
    cls = backend.aio.AsyncioContext
    for name in ("read", "write", "fsync", "fdsync", "submit", "close",
                 "__aenter__", "__aexit__"):
        assert callable(getattr(cls, name, None)), f"AsyncioContext.{name} is missing"
    read = inspect.signature(cls.read).parameters
    assert list(read)[1:] == ["nbytes", "fd", "offset", "priority"]
    assert read["priority"].default == 0
    write = inspect.signature(cls.write).parameters
    assert list(write)[1:] == ["payload", "fd", "offset", "priority"]
    assert write["priority"].default == 0


def test_asyncio_context_default_max_requests(backend):
    async def main():
        ctx = backend.aio.AsyncioContext()
        try:
            # The raw context underneath holds MAX_REQUESTS_DEFAULT slots.
            assert ctx.context.max_requests == 512
        finally:
            ctx.close()
        ctx = backend.aio.AsyncioContext(max_requests=7)
        try:
            assert ctx.context.max_requests == 7
        finally:
            ctx.close()
    run(main())


def test_raw_context_interface(backend):
    ctx = backend.raw.Context(max_requests=16)
    try:
        assert ctx.max_requests == 16
        assert isinstance(ctx.fileno, int) and ctx.fileno >= 0
        for name in ("submit", "cancel", "process_events", "poll", "close"):
            assert callable(getattr(ctx, name)), f"Context.{name} is missing"
        # The defaults process_events(max_requests=512, min_requests=0,
        # timeout=0) make a bare call a non-blocking poll.
        assert ctx.process_events() == 0
        assert ctx.process_events(max_requests=512, min_requests=0, timeout=0) == 0
    finally:
        ctx.close()


def test_raw_context_default_max_requests(backend):
    ctx = backend.raw.Context()
    try:
        assert ctx.max_requests > 0
    finally:
        ctx.close()


def test_backend_specific_context_arguments(backend):
    if backend.name == "uring":
        ctx = backend.raw.Context(max_requests=8, sqpoll=False)
    elif backend.name in ("thread", "python"):
        ctx = backend.raw.Context(max_requests=8, pool_size=2)
    else:
        ctx = backend.raw.Context(max_requests=8)
    try:
        assert ctx.max_requests == 8
    finally:
        ctx.close()


def test_operation_classmethods(backend, rwfd):
    op_cls = backend.raw.Operation
    read = op_cls.read(10, rwfd, 5)
    assert isinstance(read, op_cls)
    assert (read.fileno, read.offset, read.nbytes) == (rwfd, 5, 10)
    read = op_cls.read(10, rwfd, 5, 0)
    assert read.nbytes == 10

    write = op_cls.write(b"payload", rwfd, 3)
    assert isinstance(write, op_cls)
    assert (write.fileno, write.offset, write.nbytes) == (rwfd, 3, 7)
    assert bytes(write.payload) == b"payload"
    write = op_cls.write(b"payload", rwfd, 3, 0)
    assert write.nbytes == 7

    for name in ("fsync", "fdsync"):
        op = getattr(op_cls, name)(rwfd)
        assert isinstance(op, op_cls)
        assert op.fileno == rwfd
        op = getattr(op_cls, name)(rwfd, 0)
        assert op.fileno == rwfd

    for name in ("get_value", "set_callback"):
        assert callable(getattr(read, name))


def test_subclassing_asyncio_context_base(backend, rwfd):
    # Libraries build their own adapters on AsyncioContextBase: naming the
    # raw classes must be enough to get a working context.
    from caio.asyncio_base import AsyncioContextBase

    class Adapter(AsyncioContextBase):
        CONTEXT_CLASS = backend.raw.Context
        OPERATION_CLASS = backend.raw.Operation

    async def main():
        async with Adapter(max_requests=4) as ctx:
            assert await ctx.write(b"subclass", rwfd, 0) == 8
            assert await ctx.read(8, rwfd, 0) == b"subclass"
    run(main())


def test_subclassing_asyncio_context(backend, rwfd):
    class Counting(backend.aio.AsyncioContext):
        reads = 0

        def read(self, *args, **kwargs):
            type(self).reads += 1
            return super().read(*args, **kwargs)

    async def main():
        async with Counting() as ctx:
            await ctx.write(b"abc", rwfd, 0)
            assert await ctx.read(3, rwfd, 0) == b"abc"
    run(main())
    assert Counting.reads == 1


def test_asyncio_context_accepts_backend_kwargs(backend, rwfd):
    kwargs = {"uring": {"sqpoll": False}, "thread": {"pool_size": 2},
              "python": {"pool_size": 2}}.get(backend.name, {})

    async def main():
        async with backend.aio.AsyncioContext(max_requests=4, **kwargs) as ctx:
            assert await ctx.write(b"kw", rwfd, 0) == 2
            assert await ctx.read(2, rwfd, 0) == b"kw"
    run(main())


def test_sqpoll_context_works(rwfd):
    uring = load_backend("uring")
    if not uring.raw.SQPOLL_ALLOWED:
        pytest.skip("SQPOLL_ALLOWED is False here")

    async def main():
        async with uring.aio.AsyncioContext(max_requests=8, sqpoll=True) as ctx:
            assert await ctx.write(b"sqpoll", rwfd, 0) == 6
            assert await ctx.read(6, rwfd, 0) == b"sqpoll"
    run(main())


def test_explicit_loop_argument(backend, rwfd):
    async def main():
        loop = asyncio.get_running_loop()
        async with backend.aio.AsyncioContext(loop=loop) as ctx:
            assert ctx.loop is loop
            assert await ctx.write(b"loop", rwfd, 0) == 4
            assert await ctx.read(4, rwfd, 0) == b"loop"
    run(main())


def test_each_native_module_forces_its_libcaio_backend(backend):
    # caio.linux_uring runs libcaio's "uring" backend, and so on: never a
    # silent fallback to another one.
    ctx = backend.raw.Context(max_requests=4)
    try:
        assert ctx.backend == backend.name
    finally:
        ctx.close()


def test_no_private_event_loop_attributes():
    # uvloop and other loops share only asyncio's public API: the package
    # must not reach into a loop's private attributes (loop._ready, ...).
    package = os.path.dirname(caio.__file__)
    offenders = []
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            with open(os.path.join(package, name)) as f:
                for number, line in enumerate(f, 1):
                    if re.search(r"\bloop\._[a-z]", line):
                        offenders.append(f"{name}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
