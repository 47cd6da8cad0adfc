# test_refcounts.py - finished operations release their payloads and callbacks (no leaks).
import asyncio
import gc
import os
import sys

from conftest import run, submit_and_wait


def settle():
    for _ in range(3):
        gc.collect()


def test_asyncio_write_releases_payload(backend, rwfd):
    payload = bytearray(b"p" * 4096)
    view = memoryview(bytes(4096))
    settle()
    base_payload, base_view = sys.getrefcount(payload), sys.getrefcount(view)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=8) as ctx:
            for i in range(200):
                assert await ctx.write(payload, rwfd, 0) == 4096
                assert await ctx.write(view, rwfd, 4096) == 4096
            # Failed and cancelled writes must let go too.
            for _ in range(50):
                try:
                    await ctx.write(payload, -1, 0)
                except (OSError, ValueError):
                    pass
            tasks = [asyncio.ensure_future(ctx.write(payload, rwfd, 0)) for _ in range(50)]
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            del tasks
            await asyncio.wait_for(ctx.fdsync(rwfd), 10)
    run(main())
    settle()
    assert sys.getrefcount(payload) == base_payload, "write operations keep their payload alive"
    assert sys.getrefcount(view) == base_view


def test_raw_operation_releases_callback_and_payload(backend, rwfd):
    class Callback:
        def __call__(self, *args):
            pass

    callback = Callback()
    payload = b"x" * 1000 + os.urandom(24)
    settle()
    base_callback, base_payload = sys.getrefcount(callback), sys.getrefcount(payload)
    ctx = backend.raw.Context(max_requests=64)
    try:
        for _ in range(20):
            ops = [backend.raw.Operation.write(payload, rwfd, 0) for _ in range(32)]
            for op in ops:
                op.set_callback(callback)
            submit_and_wait(ctx, ops)
            assert all(op.get_value() == len(payload) for op in ops)
            del ops, op
        # Checked while the context lives on: a long-lived context (the
        # usual case) must not hold finished work, e.g. on idle workers.
        settle()
        assert sys.getrefcount(callback) == base_callback, "finished operations keep their callback alive"
        assert sys.getrefcount(payload) == base_payload, "finished operations keep their payload alive"
    finally:
        ctx.close()


def test_closed_contexts_are_freed(backend):
    import weakref
    refs = []

    async def main():
        for _ in range(20):
            ctx = backend.aio.AsyncioContext(max_requests=4)
            refs.append(weakref.ref(ctx.context))
            ctx.close()
            del ctx
    run(main())
    settle()
    alive = sum(ref() is not None for ref in refs)
    assert alive == 0, f"{alive} of 20 closed contexts are still alive"


def test_descriptors_are_released(backend, rwfd):
    # Each context owns descriptors (eventfd, ring, ...): closing it gives them back.
    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    async def cycle():
        async with backend.aio.AsyncioContext(max_requests=4) as ctx:
            await ctx.write(b"fd", rwfd, 0)

    run(cycle())
    settle()
    before = open_fds()
    for _ in range(30):
        run(cycle())
    settle()
    assert open_fds() <= before, f"{open_fds() - before} descriptors leaked over 30 contexts"
