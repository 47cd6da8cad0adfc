# test_bigio.py - single transfers of 2 GiB and more (no 32-bit truncation), run once.
import os

import caio
import pytest

from conftest import run

SIZE = (2 << 30) + 3 * 4096 + 17       # past 2 GiB and 2**31, not block aligned
NEED_MEMORY = 4 * SIZE + (1 << 30)     # payload, its construction, the read, slack
MAX_RW_COUNT = 0x7FFFF000              # what Linux moves in one read/write call


def mem_available():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


@pytest.mark.bigmem
@pytest.mark.timeout(1200)
def test_transfer_over_2gib(tmp_path):
    if mem_available() < NEED_MEMORY:
        pytest.skip(f"needs {NEED_MEMORY >> 30} GiB of available memory")
    stat = os.statvfs(tmp_path)
    if stat.f_bavail * stat.f_frsize < SIZE + (1 << 30):
        pytest.skip(f"needs {SIZE >> 30} GiB free in {tmp_path}")
    # A prime-length random pattern: any shift of the data (a wrapped or
    # truncated offset) is detected.
    seed = os.urandom(4093)
    payload = (seed * (SIZE // len(seed) + 1))[:SIZE]
    fd = os.open(tmp_path / "big", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        async def main():
            # The automatically chosen backend: the one users get.
            async with caio.AsyncioContext() as ctx:
                done = 0
                while done < SIZE:
                    n = await ctx.write(memoryview(payload)[done:], fd, done)
                    # A full write, or Linux's per-call limit like pwrite(2).
                    assert n == SIZE - done or n == MAX_RW_COUNT, n
                    done += n
                assert os.fstat(fd).st_size == SIZE
                data = await ctx.read(SIZE, fd, 0)
                assert len(data) in (SIZE, MAX_RW_COUNT), len(data)
                assert data == memoryview(payload)[:len(data)], "read data differs"
                del data
                tail = await ctx.read(1 << 20, fd, SIZE - 4096)
                assert tail == payload[SIZE - 4096:]
                beyond = await ctx.read(4096, fd, (1 << 32) + 5)
                assert beyond == b""
        run(main(), timeout=600)
        # Check the file independently of caio, in pieces.
        for offset in (0, (1 << 31) - 4096, (1 << 31), SIZE - 8192):
            assert os.pread(fd, 8192, offset) == payload[offset:offset + 8192], offset
    finally:
        os.close(fd)
        # pytest keeps the temporary directories of recent runs: do not
        # leave gigabytes behind in them.
        os.unlink(tmp_path / "big")
