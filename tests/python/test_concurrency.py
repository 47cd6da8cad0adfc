# test_concurrency.py - 1,000+ operations at once, max_requests bounding, deferred batching.
import asyncio
import errno
import os
import struct

import pytest

from conftest import load_backend, run, stats_of, submit_and_wait

RECORD = 512


def skip_without_submissions(backend):
    # libcaio counts a hand-over to io_uring, io_submit or its thread pool as
    # one kernel submission; the pure Python backend has no such step.
    if backend.name == "python":
        pytest.skip("the pure Python backend makes no kernel submissions to count")


def pooled_by_linux_aio(backend, fd):
    # A file that refuses RWF_NOWAIT (tmpfs, FUSE) makes io_submit refuse
    # the linux backend's buffered reads outright: after one refused call
    # it sends them to its thread pool, counted as fallback_requests, not
    # as kernel submissions.
    if backend.name != "linux":
        return False
    try:
        os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)
    except OSError as e:
        return e.errno == errno.EOPNOTSUPP
    return False


def check_pooled(before, after, count):
    assert after["fallback_requests"] - before.get("fallback_requests", 0) == count
    assert after["kernel_refusals"] - before.get("kernel_refusals", 0) == 1, \
        "one refused io_submit per descriptor, not one per request"
    assert after["kernel_submits"] - before.get("kernel_submits", 0) == 0


def record(salt, i):
    # Every record differs from every other one and from one of a previous run.
    return (struct.pack("<II", salt, i) * (RECORD // 8))


@pytest.mark.parametrize("max_requests", [None, 16, 1024, 4096])
def test_thousands_of_operations_at_once(backend, rwfd, max_requests):
    count = 2048
    salt = int.from_bytes(os.urandom(4), "little")

    async def main():
        async with backend.aio.AsyncioContext(max_requests=max_requests) as ctx:
            written = await asyncio.gather(
                *(ctx.write(record(salt, i), rwfd, i * RECORD) for i in range(count)))
            assert written == [RECORD] * count
            got = await asyncio.gather(*(ctx.read(RECORD, rwfd, i * RECORD) for i in range(count)))
            bad = [i for i in range(count) if got[i] != record(salt, i)]
            assert not bad, f"{len(bad)} records read back wrong, first at index {bad[0]}"
    run(main(), timeout=120)
    assert os.fstat(rwfd).st_size == count * RECORD


def test_mixed_reads_writes_and_syncs_at_once(backend, rwfd):
    count = 1200
    salt = int.from_bytes(os.urandom(4), "little")
    # The first half of the file exists before; the second half is written concurrently.
    os.pwrite(rwfd, b"".join(record(salt, i) for i in range(count)), 0)

    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            reads = [ctx.read(RECORD, rwfd, i * RECORD) for i in range(count)]
            writes = [ctx.write(record(salt, count + i), rwfd, (count + i) * RECORD)
                      for i in range(count)]
            syncs = [ctx.fdsync(rwfd) for _ in range(10)]
            results = await asyncio.gather(*reads, *writes, *syncs)
            assert results[:count] == [record(salt, i) for i in range(count)]
            assert results[count:2 * count] == [RECORD] * count
            assert all(r in (0, None) for r in results[2 * count:])
    run(main(), timeout=120)
    assert os.pread(rwfd, count * RECORD, count * RECORD) == \
        b"".join(record(salt, count + i) for i in range(count))


def test_raw_thousand_operations_in_one_submit(backend, rwfd):
    count = 1024
    salt = int.from_bytes(os.urandom(4), "little")
    ctx = backend.raw.Context(max_requests=count)
    try:
        writes = [backend.raw.Operation.write(record(salt, i), rwfd, i * RECORD)
                  for i in range(count)]
        submit_and_wait(ctx, writes, timeout=60)
        assert [op.get_value() for op in writes] == [RECORD] * count
        reads = [backend.raw.Operation.read(RECORD, rwfd, i * RECORD) for i in range(count)]
        submit_and_wait(ctx, reads, timeout=60)
        assert all(op.get_value() == record(salt, i) for i, op in enumerate(reads))
    finally:
        ctx.close()


def test_many_tasks_waiting_for_few_slots_all_finish(backend, rwfd):
    # 1,000 tasks over 2 slots: the waiters queue, none fails with EAGAIN.
    async def main():
        async with backend.aio.AsyncioContext(max_requests=2) as ctx:
            results = await asyncio.gather(*(ctx.write(b"%05d" % i, rwfd, 5 * i) for i in range(1000)))
            assert results == [5] * 1000
    run(main(), timeout=120)
    assert os.pread(rwfd, 5000, 0) == b"".join(b"%05d" % i for i in range(1000))


@pytest.mark.parametrize("max_requests", [1, 8])
def test_max_requests_bounds_operations_in_backend(backend, direct_path, max_requests):
    # Context.pending counts every request holding a slot (queued, in the
    # kernel or a worker, or completed but not yet processed; libcaio's
    # caio_ctx_pending).  Sample it at every point the event loop gives us.
    # O_DIRECT reads really go to the device, so they are still in flight
    # when sampled (a page-cache hit may complete inside the submit call).
    with open(direct_path, "wb") as f:
        f.write(os.urandom(64 * 4096))
    fd = os.open(direct_path, os.O_RDONLY | os.O_DIRECT)
    samples = []

    async def one(ctx, i):
        samples.append(ctx.context.pending)
        data = await ctx.read(4096, fd, i * 4096)
        samples.append(ctx.context.pending)
        return data

    async def sampler(ctx, stop):
        while not stop.is_set():
            samples.append(ctx.context.pending)
            await asyncio.sleep(0)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=max_requests) as ctx:
            assert ctx.context.max_requests == max_requests
            stop = asyncio.Event()
            watcher = asyncio.ensure_future(sampler(ctx, stop))
            got = await asyncio.gather(*(one(ctx, i) for i in range(64)))
            stop.set()
            await watcher
            assert ctx.context.pending == 0
            return got
    try:
        got = run(main(), timeout=60)
    finally:
        os.close(fd)
    with open(direct_path, "rb") as f:
        assert b"".join(got) == f.read()
    assert max(samples) <= max_requests, f"{max(samples)} requests in the backend at once"
    assert max(samples) >= 1, "never saw a request in flight: the sampling proves nothing"


@pytest.mark.parametrize("max_requests", [1, 4])
def test_max_requests_bounds_parked_reads(max_requests):
    # Deterministic: reads of empty pipes park in io_uring and hold their
    # slots, so with 3 * max_requests started exactly max_requests are in
    # the backend; feeding the pipes lets the rest through, max_requests at
    # a time.  (Other backends cannot park a pipe read: they refuse it.)
    backend = load_backend("uring")
    pipes = [os.pipe() for _ in range(3 * max_requests)]

    async def main():
        async with backend.aio.AsyncioContext(max_requests=max_requests) as ctx:
            tasks = [asyncio.ensure_future(ctx.read(1, r, 0)) for r, _ in pipes]
            for _ in range(5):
                await asyncio.sleep(0)
            assert ctx.context.pending == max_requests
            assert sum(t.done() for t in tasks) == 0
            for i, (_, w) in enumerate(pipes):
                os.write(w, bytes([i]))
            got = await asyncio.gather(*tasks)
            assert got == [bytes([i]) for i in range(len(pipes))]
            assert ctx.context.pending == 0
    try:
        run(main(), timeout=30)
    finally:
        for r, w in pipes:
            os.close(r)
            os.close(w)


@pytest.mark.parametrize("max_requests", [1, 8])
def test_max_requests_bounds_each_deferred_batch(backend, rwfd, max_requests):
    # deferred=True hands everything the loop submitted in one iteration to
    # the backend in one call: with 64 operations started at once, the first
    # batch is limited by max_requests and no batch is ever bigger.
    skip_without_submissions(backend)
    os.pwrite(rwfd, os.urandom(64 * 1024), 0)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=max_requests, deferred=True) as ctx:
            got = await asyncio.gather(*(ctx.read(1024, rwfd, i * 1024) for i in range(64)))
            assert b"".join(got) == os.pread(rwfd, 64 * 1024, 0)
            return stats_of(ctx)
    stats = run(main(), timeout=60)
    if pooled_by_linux_aio(backend, rwfd):
        check_pooled({}, stats, 64)
        return
    assert stats["kernel_requests"] == 64
    assert stats["max_batch"] == max_requests


def test_deferred_batches_one_loop_iteration_into_one_submission(backend, rwfd):
    skip_without_submissions(backend)
    os.pwrite(rwfd, os.urandom(64 * 4096), 0)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=128, deferred=True) as ctx:
            before = stats_of(ctx)
            got = await asyncio.gather(*(ctx.read(4096, rwfd, i * 4096) for i in range(64)))
            after = stats_of(ctx)
            assert b"".join(got) == os.pread(rwfd, 64 * 4096, 0)
            return before, after
    before, after = run(main())
    if pooled_by_linux_aio(backend, rwfd):
        check_pooled(before, after, 64)
        return
    assert after["kernel_requests"] - before["kernel_requests"] == 64
    assert after["kernel_submits"] - before["kernel_submits"] == 1, \
        f"64 reads started in one loop iteration took {after['kernel_submits'] - before['kernel_submits']} kernel submissions"
    assert after["max_batch"] == 64


def test_kernel_submissions_are_counted_without_deferred(backend, rwfd):
    # The control for the test above: the counters move for the same work
    # without deferred=True, and each request reaches the kernel once.
    skip_without_submissions(backend)
    os.pwrite(rwfd, os.urandom(16 * 4096), 0)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=128) as ctx:
            before = stats_of(ctx)
            for i in range(16):
                await ctx.read(4096, rwfd, i * 4096)
            return before, stats_of(ctx)
    before, after = run(main())
    if pooled_by_linux_aio(backend, rwfd):
        check_pooled(before, after, 16)
        return
    assert after["kernel_requests"] - before["kernel_requests"] == 16
    # One at a time: every request needed its own submission.
    assert after["kernel_submits"] - before["kernel_submits"] == 16


def test_deferred_mode_works_on_every_backend(backend, rwfd):
    salt = int.from_bytes(os.urandom(4), "little")

    async def main():
        async with backend.aio.AsyncioContext(max_requests=32, deferred=True) as ctx:
            await asyncio.gather(*(ctx.write(record(salt, i), rwfd, i * RECORD) for i in range(500)))
            got = await asyncio.gather(*(ctx.read(RECORD, rwfd, i * RECORD) for i in range(500)))
            assert got == [record(salt, i) for i in range(500)]
            # A lone operation in deferred mode is not left waiting for company.
            assert await asyncio.wait_for(ctx.read(RECORD, rwfd, 0), 10) == record(salt, 0)
    run(main(), timeout=60)
