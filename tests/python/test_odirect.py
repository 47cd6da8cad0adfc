# test_odirect.py - O_DIRECT files on a block-backed filesystem: aligned and unaligned payloads.
import asyncio
import ctypes
import errno
import os

import pytest

from conftest import run, submit_and_wait

BLOCK = 4096
@pytest.fixture
def directfd(direct_path):
    fd = os.open(direct_path, os.O_RDWR | os.O_DIRECT)
    yield fd
    os.close(fd)


def pattern(n, seed=0):
    return bytes((i * 7 + seed) & 0xFF for i in range(256)) * (n // 256)


def unaligned(data):
    """The same bytes at an address that is 1 mod 4096 (and so mod 512)."""
    backing = bytearray(len(data) + BLOCK + 1)
    view = memoryview(backing)
    address = ctypes.addressof(ctypes.c_char.from_buffer(backing))
    start = (-address) % BLOCK + 1
    view[start:start + len(data)] = data
    return view[start:start + len(data)]


def test_aligned_write_and_read(backend, directfd, direct_path):
    data = pattern(2 * BLOCK)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(data, directfd, 0) == 2 * BLOCK
            assert await ctx.read(2 * BLOCK, directfd, 0) == data
            assert await ctx.read(BLOCK, directfd, BLOCK) == data[BLOCK:]
    run(main())
    with open(direct_path, "rb") as f:
        assert f.read() == data


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview-unaligned"])
def test_unaligned_payload_is_written(backend, directfd, direct_path, kind):
    data = pattern(4 * BLOCK, seed=3)
    payload = {"bytes": lambda d: bytes(d), "bytearray": bytearray,
               "memoryview-unaligned": unaligned}[kind](data)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(payload, directfd, BLOCK) == len(data)
            assert await ctx.read(len(data), directfd, BLOCK) == data
    run(main())
    with open(direct_path, "rb") as f:
        f.seek(BLOCK)
        assert f.read() == data


def test_short_read_and_eof(backend, directfd):
    data = pattern(2 * BLOCK, seed=5)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(data, directfd, 0) == len(data)
            assert await ctx.read(8 * BLOCK, directfd, 0) == data
            assert await ctx.read(BLOCK, directfd, 2 * BLOCK) == b""
    run(main())


def test_large_direct_transfer(backend, directfd):
    data = os.urandom(1 << 20) * 4

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            assert await ctx.write(data, directfd, 0) == len(data)
            assert await ctx.read(len(data), directfd, 0) == data
    run(main())


def test_concurrent_direct_operations(backend, directfd):
    blocks = [pattern(BLOCK, seed=i) for i in range(256)]

    async def main():
        async with backend.aio.AsyncioContext(max_requests=64) as ctx:
            written = await asyncio.gather(*(ctx.write(b, directfd, i * BLOCK) for i, b in enumerate(blocks)))
            assert written == [BLOCK] * len(blocks)
            got = await asyncio.gather(*(ctx.read(BLOCK, directfd, i * BLOCK) for i in range(len(blocks))))
            assert got == blocks
    run(main(), timeout=120)


def test_raw_operations_on_direct_file(backend, directfd):
    data = pattern(BLOCK, seed=9)
    ctx = backend.raw.Context(max_requests=4)
    try:
        write = backend.raw.Operation.write(unaligned(data), directfd, 0)
        submit_and_wait(ctx, [write])
        assert write.get_value() == BLOCK
        read = backend.raw.Operation.read(BLOCK, directfd, 0)
        submit_and_wait(ctx, [read])
        assert read.get_value() == data
    finally:
        ctx.close()


def test_misaligned_offset_is_einval_or_correct(backend, directfd):
    # The kernel refuses O_DIRECT at an offset that is not block aligned;
    # the binding passes that on as EINVAL (or handles it), never corrupts.
    data = pattern(2 * BLOCK, seed=11)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            await ctx.write(data, directfd, 0)
            try:
                assert await ctx.read(BLOCK, directfd, 1) == data[1:BLOCK + 1]
            except OSError as exc:
                assert exc.errno == errno.EINVAL, repr(exc)
            assert await ctx.read(2 * BLOCK, directfd, 0) == data
    run(main())


def test_short_read_of_partial_last_block(backend, direct_path):
    # A file whose size is not a block multiple: an O_DIRECT read of whole
    # blocks returns just the bytes that exist.
    data = pattern(2 * BLOCK, seed=13)[:5000]
    with open(direct_path, "wb") as f:
        f.write(data)
    fd = os.open(direct_path, os.O_RDONLY | os.O_DIRECT)
    try:
        async def main():
            async with backend.aio.AsyncioContext() as ctx:
                assert await ctx.read(2 * BLOCK, fd, 0) == data
                assert await ctx.read(BLOCK, fd, BLOCK) == data[BLOCK:]
                assert await ctx.read(BLOCK, fd, 2 * BLOCK) == b""
        run(main())
    finally:
        os.close(fd)
