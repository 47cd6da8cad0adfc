# test_errors.py - OSError with the right errno; bad offsets and sizes fail before any I/O.
import asyncio
import errno
import os
import resource

import pytest

from conftest import BACKEND_NAMES, describe, load_backend, run, run_python, submit_and_wait, subprocess_env

CONTENT = b"0123456789"


@pytest.fixture
def dirfd(tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    yield fd
    os.close(fd)


@pytest.fixture
def datafd(tmp_path):
    """A file holding CONTENT with its position at 3, to catch I/O at the file position."""
    fd = os.open(tmp_path / "content", os.O_RDWR | os.O_CREAT, 0o600)
    os.write(fd, CONTENT)
    os.lseek(fd, 3, os.SEEK_SET)
    yield fd
    assert os.lseek(fd, 0, os.SEEK_CUR) == 3, "I/O happened at the file position"
    os.close(fd)


def assert_untouched(fd):
    assert os.pread(fd, 100, 0) == CONTENT, "the file was modified"


def unopened_fd():
    """A descriptor number that is not open and that nothing will open
    meanwhile (a just-closed number is reused by the next eventfd or pipe)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    fd = min(soft, 1 << 16) - 1
    with pytest.raises(OSError) as info:
        os.fstat(fd)
    assert info.value.errno == errno.EBADF
    return fd


def test_read_directory_is_isadirectoryerror(backend, dirfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            with pytest.raises(IsADirectoryError) as info:
                await ctx.read(16, dirfd, 0)
            assert info.value.errno == errno.EISDIR
            assert info.value.strerror == os.strerror(errno.EISDIR)
            # The context stays usable after an error.
            with pytest.raises(IsADirectoryError):
                await ctx.read(16, dirfd, 0)
    run(main())


def test_unopened_fd_is_ebadf(backend):
    fd = unopened_fd()

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            with pytest.raises(OSError) as info:
                await ctx.read(16, fd, 0)
            assert info.value.errno == errno.EBADF
            with pytest.raises(OSError) as info:
                await ctx.write(b"x", fd, 0)
            assert info.value.errno == errno.EBADF
            with pytest.raises(OSError) as info:
                await ctx.fsync(fd)
            assert info.value.errno == errno.EBADF
            with pytest.raises(OSError) as info:
                await ctx.fdsync(fd)
            assert info.value.errno == errno.EBADF
    run(main())


def argument_error(backend, make, fd=-1):
    """(exception type name, errno) of a call that must fail, or 'no error'."""
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            try:
                await make(ctx, fd)
            except Exception as exc:
                return type(exc).__name__, getattr(exc, "errno", None)
        return "no error", None
    return run(main())


NEGATIVE_FD_CALLS = {
    "read": lambda ctx, fd: ctx.read(16, -1, 0),
    "write": lambda ctx, fd: ctx.write(b"x", -1, 0),
    "fsync": lambda ctx, fd: ctx.fsync(-1),
    "fdsync": lambda ctx, fd: ctx.fdsync(-1),
}


@pytest.mark.parametrize("call", list(NEGATIVE_FD_CALLS))
def test_negative_fd(backend, call):
    outcome = argument_error(backend, NEGATIVE_FD_CALLS[call])
    assert outcome in (("OSError", errno.EBADF), ("ValueError", None)), outcome


BAD_CALLS = dict(NEGATIVE_FD_CALLS, **{
    "read offset -1": lambda ctx, fd: ctx.read(4, fd, -1),
    "write offset -1": lambda ctx, fd: ctx.write(b"x", fd, -1),
    "read offset 2**63": lambda ctx, fd: ctx.read(4, fd, 1 << 63),
    "write offset 2**64-1": lambda ctx, fd: ctx.write(b"x", fd, (1 << 64) - 1),
    "read nbytes -1": lambda ctx, fd: ctx.read(-1, fd, 0),
    "read nbytes 2**64": lambda ctx, fd: ctx.read(1 << 64, fd, 0),
    "write str": lambda ctx, fd: ctx.write("text", fd, 0),
    "read offset str": lambda ctx, fd: ctx.read(4, fd, "0"),
    "submit None": lambda ctx, fd: ctx.submit(None),
})


@pytest.mark.parametrize("call", list(BAD_CALLS))
def test_backends_agree_on_argument_errors(call, datafd):
    # Switching CAIO_IMPL must not change which exception a program catches.
    outcomes = {}
    for name in BACKEND_NAMES:
        try:
            backend = load_backend(name)
        except pytest.skip.Exception:
            continue
        outcomes[name] = argument_error(backend, BAD_CALLS[call], datafd)
    assert len(set(outcomes.values())) == 1, outcomes
    assert "no error" not in outcomes.popitem()[1]
    assert_untouched(datafd)


def test_write_to_read_only_fd_is_ebadf(backend, tmp_path):
    path = tmp_path / "ro"
    path.write_bytes(CONTENT)
    fd = os.open(path, os.O_RDONLY)
    try:
        async def main():
            async with backend.aio.AsyncioContext() as ctx:
                with pytest.raises(OSError) as info:
                    await ctx.write(b"nope", fd, 0)
                assert info.value.errno == errno.EBADF
                assert await ctx.read(10, fd, 0) == CONTENT
        run(main())
    finally:
        os.close(fd)
    assert path.read_bytes() == CONTENT


def test_read_from_write_only_fd_is_ebadf(backend, tmp_path):
    fd = os.open(tmp_path / "wo", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        async def main():
            async with backend.aio.AsyncioContext() as ctx:
                with pytest.raises(OSError) as info:
                    await ctx.read(4, fd, 0)
                assert info.value.errno == errno.EBADF
        run(main())
    finally:
        os.close(fd)


def test_raw_errors_raise_from_get_value(backend, dirfd):
    fd = unopened_fd()
    ctx = backend.raw.Context(max_requests=8)
    try:
        isdir = backend.raw.Operation.read(16, dirfd, 0)
        badf = backend.raw.Operation.read(16, fd, 0)
        badw = backend.raw.Operation.write(b"x", fd, 0)
        submit_and_wait(ctx, [isdir, badf, badw])
        with pytest.raises(IsADirectoryError):
            isdir.get_value()
        for op in (badf, badw):
            with pytest.raises(OSError) as info:
                op.get_value()
            assert info.value.errno == errno.EBADF
    finally:
        ctx.close()


def test_error_does_not_disturb_concurrent_operations(backend, rwfd, dirfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            ops = []
            for i in range(100):
                ops.append(ctx.write(b"%02d" % i, rwfd, 2 * i))
                ops.append(ctx.read(8, dirfd, 0))
            results = await asyncio.gather(*ops, return_exceptions=True)
            assert results[0::2] == [2] * 100
            assert all(isinstance(r, IsADirectoryError) for r in results[1::2])
    run(main())
    assert os.pread(rwfd, 200, 0) == b"".join(b"%02d" % i for i in range(100))


# --- arguments that must fail before any I/O -----------------------------------

BAD_OFFSETS = [-1, -4096, -(1 << 63), 1 << 63, (1 << 64) - 1, 1 << 64, 1 << 100]
BAD_SIZES = [-1, -(1 << 63), 1 << 64, (1 << 64) - 1]
ARGUMENT_ERRORS = (ValueError, OverflowError, OSError)


def assert_argument_error(exc):
    if isinstance(exc, OSError):
        assert exc.errno == errno.EINVAL, f"{exc!r}: an OSError for a bad argument must be EINVAL"


@pytest.mark.parametrize("offset", BAD_OFFSETS)
def test_asyncio_bad_offset(backend, datafd, offset):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            for make in (lambda: ctx.read(4, datafd, offset), lambda: ctx.write(b"XXXX", datafd, offset)):
                with pytest.raises(ARGUMENT_ERRORS) as info:
                    await make()
                assert_argument_error(info.value)
    run(main())
    assert_untouched(datafd)


@pytest.mark.parametrize("offset", BAD_OFFSETS)
def test_raw_bad_offset(backend, datafd, offset):
    ctx = backend.raw.Context(max_requests=4)
    try:
        for make in (lambda: backend.raw.Operation.read(4, datafd, offset),
                     lambda: backend.raw.Operation.write(b"XXXX", datafd, offset)):
            # Refused when the operation is made, or at the latest when it is submitted.
            with pytest.raises(ARGUMENT_ERRORS) as info:
                ctx.submit(make())
            assert_argument_error(info.value)
    finally:
        ctx.close()
    assert_untouched(datafd)


@pytest.mark.parametrize("nbytes", BAD_SIZES)
def test_bad_read_size(backend, datafd, nbytes):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            with pytest.raises(ARGUMENT_ERRORS + (MemoryError,)) as info:
                await ctx.read(nbytes, datafd, 0)
            if not isinstance(info.value, MemoryError):
                assert_argument_error(info.value)
    run(main())
    with pytest.raises(ARGUMENT_ERRORS + (MemoryError,)):
        backend.raw.Operation.read(nbytes, datafd, 0)
    assert_untouched(datafd)


@pytest.mark.parametrize("bad", ["0", 1.5, None])
def test_non_integer_arguments_are_typeerror(backend, datafd, bad):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            for make in (lambda: ctx.read(bad, datafd, 0), lambda: ctx.read(4, datafd, bad),
                         lambda: ctx.write(b"XXXX", datafd, bad), lambda: ctx.read(4, bad, 0)):
                with pytest.raises(TypeError):
                    await make()
    run(main())
    assert_untouched(datafd)


def test_largest_offset_does_not_wrap(backend, datafd):
    # 2**63 - 1 is a valid int64: reading there is EOF (or refused by the
    # kernel), writing there can only fail; neither touches offset 0.
    top = (1 << 63) - 1

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            try:
                assert await ctx.read(4, datafd, top) == b""
            except OSError as exc:
                assert exc.errno in (errno.EINVAL, errno.EOVERFLOW, errno.EFBIG), repr(exc)
            with pytest.raises(OSError) as info:
                await ctx.write(b"XXXX", datafd, top)
            assert info.value.errno in (errno.EINVAL, errno.EFBIG, errno.EOVERFLOW), repr(info.value)
    run(main())
    assert_untouched(datafd)


def test_absurd_read_size_does_not_crash(backend, datafd, tmp_path):
    # Asking for 2**62 bytes must raise or read what there is, never abort.
    code = (
        "import asyncio, importlib, os, sys\n"
        "aio = importlib.import_module('caio.' + sys.argv[1] + '_asyncio')\n"
        "fd = os.open(sys.argv[2], os.O_RDONLY)\n"
        "async def main():\n"
        "    async with aio.AsyncioContext() as ctx:\n"
        "        try:\n"
        "            print('RESULT', await asyncio.wait_for(ctx.read(1 << 62, fd, 0), 10))\n"
        "        except asyncio.TimeoutError:\n"
        "            print('RESULT hang: the read never completed')\n"
        "        except (MemoryError, ValueError, OverflowError) as e:\n"
        "            print('RESULT raised', type(e).__name__)\n"
        "        except OSError as e:\n"
        "            print('RESULT raised OSError', e.errno)\n"
        "asyncio.run(main())\n"
    )
    # Under --enable-sanitizers, let malloc fail as it does without ASan
    # (Python turns that into MemoryError) instead of aborting.
    asan = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"), "allocator_may_return_null=1"]))
    proc = run_python(code, timeout=30, args=[backend.module, str(tmp_path / "content")],
                      env=subprocess_env(ASAN_OPTIONS=asan))
    assert proc.returncode == 0, describe(proc)
    out = proc.stdout.strip()
    assert out in ("RESULT b'0123456789'", "RESULT raised MemoryError", "RESULT raised ValueError",
                   "RESULT raised OverflowError", f"RESULT raised OSError {errno.EINVAL}",
                   f"RESULT raised OSError {errno.ENOMEM}"), describe(proc)
