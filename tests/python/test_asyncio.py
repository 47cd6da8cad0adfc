# test_asyncio.py - AsyncioContext read/write/fsync/fdsync/submit/close on every backend.
import array
import asyncio
import contextlib
import os
import threading

import pytest

from conftest import run


def test_write_then_read(backend, rwfd):
    async def main():
        ctx = backend.aio.AsyncioContext()
        try:
            written = await ctx.write(b"Hello world", rwfd, 0)
            assert written == 11 and isinstance(written, int)
            data = await ctx.read(11, rwfd, 0)
            assert data == b"Hello world" and type(data) is bytes
            assert await ctx.read(5, rwfd, 6) == b"world"
            assert await ctx.write(b"W", rwfd, 6) == 1
            assert await ctx.read(11, rwfd, 0) == b"Hello World"
        finally:
            ctx.close()
    run(main())
    assert os.pread(rwfd, 100, 0) == b"Hello World"


def test_keyword_arguments_and_priority(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext(max_requests=8) as ctx:
            assert await ctx.write(payload=b"kw", fd=rwfd, offset=0, priority=0) == 2
            assert await ctx.read(nbytes=2, fd=rwfd, offset=0, priority=0) == b"kw"
            assert await ctx.write(b"xy", rwfd, offset=2) == 2
            assert await ctx.read(4, rwfd, offset=0) == b"kwxy"
    run(main())


def test_eof(backend, rwfd):
    os.pwrite(rwfd, b"0123456789", 0)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.read(32, rwfd, 0) == b"0123456789"     # short at EOF
            assert await ctx.read(32, rwfd, 7) == b"789"
            assert await ctx.read(32, rwfd, 10) == b""              # exactly at EOF
            assert await ctx.read(32, rwfd, 1 << 40) == b""         # far past EOF
            assert await ctx.read(0, rwfd, 0) == b""                # zero bytes
    run(main())


def test_empty_file_reads_empty(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.read(4096, rwfd, 0) == b""
    run(main())


def test_write_past_end_leaves_hole(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(b"x", rwfd, 10) == 1
            assert await ctx.read(100, rwfd, 0) == b"\0" * 10 + b"x"
    run(main())
    assert os.fstat(rwfd).st_size == 11


def test_write_does_not_move_file_position(backend, rwfd):
    os.lseek(rwfd, 3, os.SEEK_SET)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            await ctx.write(b"abcdef", rwfd, 0)
            await ctx.read(6, rwfd, 0)
    run(main())
    assert os.lseek(rwfd, 0, os.SEEK_CUR) == 3


def bytes_like_payloads():
    backing = bytearray(b"_memoryview-slice_")
    return {
        "bytes": (b"bytes-payload", b"bytes-payload"),
        "bytearray": (bytearray(b"bytearray-payload"), b"bytearray-payload"),
        "memoryview": (memoryview(b"memoryview-payload"), b"memoryview-payload"),
        "memoryview-slice": (memoryview(backing)[1:-1], b"memoryview-slice"),
        "array": (array.array("I", [1, 2, 3]), array.array("I", [1, 2, 3]).tobytes()),
        "empty": (b"", b""),
    }


@pytest.mark.parametrize("kind", list(bytes_like_payloads()))
def test_write_accepts_bytes_like(backend, rwfd, kind):
    payload, expected = bytes_like_payloads()[kind]

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(payload, rwfd, 0) == len(expected)
            assert await ctx.read(64, rwfd, 0) == expected
    run(main())


def test_write_copies_or_holds_mutable_payload(backend, rwfd):
    # The payload is handed over when write() is awaited; changing the
    # bytearray afterwards must not change what was written.
    payload = bytearray(b"original")

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(payload, rwfd, 0) == 8
            payload[:] = b"MODIFIED"
            assert await ctx.read(8, rwfd, 0) == b"original"
    run(main())


def test_write_rejects_non_bytes(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            for bad in ("text", None, 12, [1, 2]):
                with pytest.raises(TypeError):
                    await ctx.write(bad, rwfd, 0)
            assert await ctx.read(10, rwfd, 0) == b""
    run(main())


@pytest.mark.parametrize("name", ["fsync", "fdsync"])
def test_sync_operations(backend, rwfd, name):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            await ctx.write(b"durable", rwfd, 0)
            result = await getattr(ctx, name)(rwfd)
            assert result in (0, None)
    run(main())


def test_submit_operation(backend, rwfd):
    op_cls = backend.raw.Operation

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.submit(op_cls.write(b"submitted", rwfd, 0)) == 9
            assert await ctx.submit(op_cls.read(9, rwfd, 0)) == b"submitted"
            assert await ctx.submit(op_cls.fdsync(rwfd)) in (0, None)
            assert await ctx.submit(op_cls.fsync(rwfd)) in (0, None)
    run(main())


def test_submit_rejects_non_operation(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            for bad in (None, "read", 42, object()):
                with pytest.raises(ValueError):
                    await ctx.submit(bad)
            # The context is still usable afterwards.
            assert await ctx.write(b"ok", rwfd, 0) == 2
    run(main())


def test_async_with_returns_context_and_closes(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert isinstance(ctx, backend.aio.AsyncioContext)
            await ctx.write(b"inside", rwfd, 0)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ctx.read(6, rwfd, 0), 10)
        assert not isinstance(info.value, asyncio.TimeoutError), "read after close hung"
    run(main())


def test_async_with_closes_on_error(backend, rwfd):
    async def main():
        with pytest.raises(KeyError):
            async with backend.aio.AsyncioContext() as ctx:
                raise KeyError("boom")
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ctx.read(1, rwfd, 0), 10)
        assert not isinstance(info.value, asyncio.TimeoutError)
    run(main())


def test_context_created_in_each_of_several_loops(backend, rwfd):
    # asyncio.run() creates a new loop each time; a context per loop works.
    for i in range(3):
        async def main():
            async with backend.aio.AsyncioContext() as ctx:
                assert await ctx.write(bytes([65 + i]), rwfd, i) == 1
        run(main())
    assert os.pread(rwfd, 3, 0) == b"ABC"


def test_two_contexts_in_one_loop(backend, tmp_path):
    fds = [os.open(tmp_path / f"f{i}", os.O_RDWR | os.O_CREAT, 0o600) for i in range(2)]
    try:
        async def main():
            async with backend.aio.AsyncioContext() as a, backend.aio.AsyncioContext() as b:
                await asyncio.gather(a.write(b"first", fds[0], 0), b.write(b"second", fds[1], 0))
                assert await asyncio.gather(a.read(16, fds[1], 0), b.read(16, fds[0], 0)) == \
                    [b"second", b"first"]
        run(main())
    finally:
        for fd in fds:
            os.close(fd)


def test_completion_does_not_need_other_loop_activity(backend, rwfd):
    # The loop must wake for the completion itself (eventfd reader), with no
    # timer or other task to keep it spinning.
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            for i in range(100):
                assert await ctx.write(b"%03d" % i, rwfd, 3 * i) == 3
    run(main(), timeout=30)
    assert os.pread(rwfd, 300, 0) == b"".join(b"%03d" % i for i in range(100))


def test_read_large_chunk(backend, rwfd):
    data = os.urandom(1 << 20) * 8
    os.pwrite(rwfd, data, 0)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.read(len(data), rwfd, 0) == data
            assert await ctx.read(len(data), rwfd, 12345) == data[12345:]
    run(main())


def test_write_large_chunk(backend, rwfd):
    data = os.urandom(1 << 20) * 8 + b"tail"

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(data, rwfd, 4096) == len(data)
    run(main())
    assert os.pread(rwfd, len(data) + 10, 4096) == data


class CountingLoop(asyncio.SelectorEventLoop):
    """A loop that records how completions reach it (public API only, like uvloop)."""

    def __init__(self):
        super().__init__()
        self.readers = []
        self.threadsafe_calls = 0

    def add_reader(self, fd, callback, *args):
        self.readers.append(fd)
        return super().add_reader(fd, callback, *args)

    def call_soon_threadsafe(self, callback, *args, **kwargs):
        self.threadsafe_calls += 1
        return super().call_soon_threadsafe(callback, *args, **kwargs)


def test_completions_arrive_through_eventfd_reader(backend, rwfd):
    # Completions reach the loop through the context's descriptor
    # (loop.add_reader) and never through another thread's call_soon_threadsafe.
    os.pwrite(rwfd, os.urandom(256 * 1024), 0)
    loop = CountingLoop()
    try:
        async def main():
            async with backend.aio.AsyncioContext(max_requests=32) as ctx:
                assert ctx.context.fileno in loop.readers
                before = loop.threadsafe_calls
                got = await asyncio.gather(*(ctx.read(1024, rwfd, 1024 * i) for i in range(256)))
                await asyncio.gather(*(ctx.write(b"w", rwfd, i) for i in range(64)))
                return got, loop.threadsafe_calls - before
        got, hops = loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        loop.close()
    assert len(b"".join(got)) == 256 * 1024
    assert hops == 0, f"{hops} completions hopped threads through call_soon_threadsafe"


def test_uvloop(backend, rwfd):
    # The real uvloop (Debian's python3-uvloop): reads, writes, EOF,
    # concurrency beyond max_requests and cancellation on its loop.
    uvloop = pytest.importorskip("uvloop")
    data = os.urandom(512 * 1024)

    async def main():
        assert type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        async with backend.aio.AsyncioContext(max_requests=16) as ctx:
            assert await ctx.write(data, rwfd, 0) == len(data)
            got = await asyncio.gather(*(ctx.read(4096, rwfd, 4096 * i) for i in range(128)))
            assert b"".join(got) == data
            assert await ctx.read(100, rwfd, len(data) - 10) == data[-10:]
            assert await ctx.read(100, rwfd, len(data)) == b""
            await ctx.fsync(rwfd)
            await ctx.fdsync(rwfd)
            task = asyncio.ensure_future(ctx.read(4096, rwfd, 0))
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            assert await ctx.read(5, rwfd, 0) == data[:5]
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(main(), 60))
    finally:
        loop.close()


def test_context_made_before_the_loop_runs(backend, rwfd):
    # The pre-asyncio.run style of the original README: make the context
    # with an explicit loop, then run the loop.
    loop = asyncio.new_event_loop()
    try:
        ctx = backend.aio.AsyncioContext(max_requests=8, loop=loop)
        assert loop.run_until_complete(asyncio.wait_for(ctx.write(b"early", rwfd, 0), 30)) == 5
        assert loop.run_until_complete(asyncio.wait_for(ctx.read(5, rwfd, 0), 30)) == b"early"
        ctx.close()
    finally:
        loop.close()


def test_one_context_per_thread(backend, tmp_path):
    # Contexts are independent: four threads, each with its own loop and context.
    errors = []

    def worker(n):
        fd = os.open(tmp_path / f"t{n}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            async def main():
                async with backend.aio.AsyncioContext(max_requests=16) as ctx:
                    await asyncio.gather(*(ctx.write(b"%d%04d" % (n, i), fd, 5 * i) for i in range(300)))
                    got = await asyncio.gather(*(ctx.read(5, fd, 5 * i) for i in range(300)))
                    assert got == [b"%d%04d" % (n, i) for i in range(300)]
            run(main())
        except BaseException as exc:
            errors.append(exc)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads), "a worker thread hung"
    assert not errors, errors


def test_awaiting_io_lets_other_tasks_run(backend, rwfd):
    # An operation that finishes inside its submit (page cache) returns
    # without a trip through the event loop, as the original's io_uring
    # backend does and as any awaitable that is already done does; but a
    # task reading a cached file in a loop must not starve everyone else
    # until it is done (a server reading one big file would stop
    # answering): it yields at least once every INLINE_STREAK_MAX + 1 reads.
    os.pwrite(rwfd, os.urandom(200 * 4096), 0)
    progress = []

    async def reader(ctx):
        for i in range(200):
            await ctx.read(4096, rwfd, i * 4096)
            progress.append(i)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            streak = getattr(ctx, "INLINE_STREAK_MAX", 0)
            task = asyncio.ensure_future(reader(ctx))
            seen = set()
            while not task.done():
                seen.add(len(progress))
                await asyncio.sleep(0)
            await task
            return seen, streak
    seen, streak = run(main())
    assert streak <= 64
    between = [n for n in seen if 0 < n < 200]
    assert len(between) >= 200 // (streak + 1) - 1, \
        f"the reader yielded to other tasks only {len(between)} times in 200 reads: it starves the loop"
