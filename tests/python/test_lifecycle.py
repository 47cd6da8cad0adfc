# test_lifecycle.py - cancel, close and fork: never a hang, never a lost or duplicated result.
import asyncio
import errno
import os

import pytest

from conftest import Completions, describe, pump, run, run_python, submit_and_wait

# Scripts that may hang on a broken binding run in a subprocess with a timeout.
# They take the backend module name as argv[1] and print one RESULT line.
PRELUDE = (
    "import asyncio, errno, importlib, os, sys, time\n"
    "raw = importlib.import_module('caio.' + sys.argv[1])\n"
    "aio = importlib.import_module('caio.' + sys.argv[1] + '_asyncio')\n"
)


def run_script(backend, body, timeout=40):
    proc = run_python(PRELUDE + body, timeout=timeout, args=[backend.module])
    assert proc.returncode == 0, describe(proc)
    results = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, describe(proc)
    return results, proc


# --- cancel -----------------------------------------------------------------

def test_cancel_before_submission_does_nothing(backend, rwfd):
    async def main():
        async with backend.aio.AsyncioContext() as ctx:
            task = asyncio.ensure_future(ctx.write(b"never", rwfd, 0))
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await ctx.read(5, rwfd, 0) == b""
            assert await ctx.write(b"after", rwfd, 0) == 5
    run(main())
    assert os.pread(rwfd, 10, 0) == b"after"


def test_cancelled_operations_free_their_slots(backend, rwfd):
    # Cancel tasks that are in flight; afterwards all max_requests slots must
    # be usable again (a leaked slot would make the last gather hang).
    os.pwrite(rwfd, os.urandom(1 << 16), 0)

    async def main():
        async with backend.aio.AsyncioContext(max_requests=4) as ctx:
            for _ in range(5):
                tasks = [asyncio.ensure_future(ctx.read(4096, rwfd, 4096 * i)) for i in range(16)]
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                for task in tasks:
                    task.cancel()
                outcomes = await asyncio.gather(*tasks, return_exceptions=True)
                for outcome in outcomes:
                    assert isinstance(outcome, (bytes, asyncio.CancelledError)), repr(outcome)
            got = await asyncio.wait_for(
                asyncio.gather(*(ctx.read(16, rwfd, 16 * i) for i in range(64))), 20)
            assert b"".join(got) == os.pread(rwfd, 1024, 0)
    run(main())


def test_cancelled_read_does_not_consume_pipe_data(backend):
    # A read parked on an empty pipe (io_uring can park it) is cancelled;
    # data written afterwards must still be in the pipe.  Backends that
    # cannot read a pipe fail the read with an OSError instead.
    results, proc = run_script(backend, (
        "async def main():\n"
        "    r, w = os.pipe()\n"
        "    async with aio.AsyncioContext() as ctx:\n"
        "        task = asyncio.ensure_future(ctx.read(4, r, 0))\n"
        "        for _ in range(3):\n"
        "            await asyncio.sleep(0)\n"
        "        task.cancel()\n"
        "        try:\n"
        "            got = await asyncio.wait_for(task, 10)\n"
        "            print('RESULT read', got)\n"
        "        except asyncio.CancelledError:\n"
        "            os.write(w, b'data')\n"
        "            os.set_blocking(r, False)\n"
        "            print('RESULT cancelled', os.read(r, 16))\n"
        "        except OSError as e:\n"
        "            print('RESULT oserror', errno.errorcode.get(e.errno))\n"
        "asyncio.run(main())\n"
    ))
    outcome = results[0]
    assert outcome in ("cancelled b'data'", "oserror ESPIPE", "oserror EINVAL"), describe(proc)
    if backend.name == "uring":
        assert outcome == "cancelled b'data'", "io_uring can park and cancel a pipe read"


def test_raw_cancel_of_parked_read(backend):
    results, proc = run_script(backend, (
        "r, w = os.pipe()\n"
        "ctx = raw.Context(max_requests=4)\n"
        "op = raw.Operation.read(4, r, 0)\n"
        "seen = []\n"
        "op.set_callback(lambda *a: seen.append(a))\n"
        "assert ctx.submit(op) == 1\n"
        "ctx.process_events()\n"
        "cancelled = ctx.cancel(op) if not seen else None\n"
        "deadline = time.monotonic() + 10\n"
        "while not seen and time.monotonic() < deadline:\n"
        "    ctx.process_events(max_requests=512, min_requests=1, timeout=1)\n"
        "assert len(seen) == 1, seen\n"
        "try:\n"
        "    print('RESULT value', op.get_value())\n"
        "except OSError as e:\n"
        "    os.write(w, b'data')\n"
        "    os.set_blocking(r, False)\n"
        "    print('RESULT', errno.errorcode.get(e.errno), os.read(r, 16))\n"
        "ctx.close()\n"
    ))
    outcome = results[0]
    assert outcome in ("ECANCELED b'data'", "ESPIPE b'data'", "EINVAL b'data'"), describe(proc)
    if backend.name == "uring":
        assert outcome == "ECANCELED b'data'"


def test_raw_cancel_of_finished_operation_is_harmless(backend, rwfd):
    ctx = backend.raw.Context(max_requests=4)
    try:
        op = backend.raw.Operation.write(b"done", rwfd, 0)
        submit_and_wait(ctx, [op])
        try:
            ctx.cancel(op)
        except ValueError:
            pass
        assert op.get_value() == 4
        never = backend.raw.Operation.write(b"x", rwfd, 0)
        try:
            ctx.cancel(never)
        except ValueError:
            pass
        more = backend.raw.Operation.read(4, rwfd, 0)
        submit_and_wait(ctx, [more])
        assert more.get_value() == b"done"
    finally:
        ctx.close()


def outcome_of(op):
    """('written', n) or ('cancelled',) or ('error', errno) of a finished write."""
    try:
        return ("written", op.get_value())
    except OSError as exc:
        if exc.errno == errno.ECANCELED:
            return ("cancelled",)
        return ("error", exc.errno)


def test_raw_cancel_reports_honestly(backend, rwfd, direct_path):
    # Cancel writes right after submitting them: each one either really did
    # not happen (ECANCELED and its bytes absent) or happened and reports
    # its byte count (and its bytes are there).  Never a cancelled write
    # that was written, or a reported write that is missing.
    count = 256
    ops = []
    # The pool backends get one worker, kept busy first by an fsync of 64 MiB
    # of dirty data on a disk (tens of milliseconds): the writes queue
    # behind it, so cancel() right after submit() must really stop some.
    pool = {"pool_size": 1} if backend.name in ("thread", "python") else {}
    dirty = os.open(direct_path, os.O_RDWR)
    try:
        if pool:
            os.pwrite(dirty, os.urandom(1 << 20) * 64, 0)
            ops.append(backend.raw.Operation.fsync(dirty))
        ctx = backend.raw.Context(max_requests=count + 1, **pool)
        try:
            assert ctx.process_events() == 0    # completions are collected here
            writes = [backend.raw.Operation.write(b"%07d\n" % i, rwfd, 8 * i) for i in range(count)]
            ops += writes
            completions = Completions()
            for op in ops:
                completions.attach(op)
            assert ctx.submit(*ops) == len(ops)
            cancelled = ctx.cancel(*writes)
            assert isinstance(cancelled, int) and 0 <= cancelled <= count
            pump(ctx, completions, len(ops))
            ctx.process_events()
            twice = [i for i, op in enumerate(ops) if completions.calls[id(op)] != 1]
            assert not twice, f"callbacks of operations {twice[:10]} ran more than once"
        finally:
            ctx.close()
    finally:
        os.close(dirty)
    data = os.pread(rwfd, 8 * count, 0).ljust(8 * count, b"\0")
    outcomes = [outcome_of(op) for op in writes]
    for i, outcome in enumerate(outcomes):
        here = data[8 * i:8 * i + 8]
        if outcome == ("cancelled",):
            assert here == b"\0" * 8, f"write {i} reported ECANCELED but was written"
        else:
            assert outcome == ("written", 8), f"write {i}: {outcome}"
            assert here == b"%07d\n" % i, f"write {i} reported done but is missing"
    if pool:
        assert ("cancelled",) in outcomes, "cancel() stopped none of 256 queued writes"


def test_asyncio_cancel_leaves_real_result_readable(backend, rwfd):
    # A task awaiting submit(op) is cancelled; once the operation ends its
    # real outcome is on the Operation and matches the file.
    op_cls = backend.raw.Operation

    async def main():
        async with backend.aio.AsyncioContext(max_requests=64) as ctx:
            ops = [op_cls.write(b"%07d\n" % i, rwfd, 8 * i) for i in range(64)]
            tasks = [asyncio.ensure_future(ctx.submit(op)) for op in ops]
            await asyncio.sleep(0)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            # Let every cancelled operation end: the slots come back.
            await asyncio.wait_for(asyncio.gather(*(ctx.fdsync(rwfd) for _ in range(64))), 20)
            return ops
    ops = run(main())
    data = os.pread(rwfd, 8 * 64, 0).ljust(8 * 64, b"\0")
    for i, op in enumerate(ops):
        try:
            outcome = outcome_of(op)
        except RuntimeError:
            pytest.fail(f"operation {i} still in progress after its slot came back")
        here = data[8 * i:8 * i + 8]
        if outcome == ("cancelled",):
            assert here == b"\0" * 8, f"write {i} reported ECANCELED but was written"
        else:
            assert outcome == ("written", 8) and here == b"%07d\n" % i, (i, outcome, here)


# --- close ------------------------------------------------------------------

def test_close_twice_and_use_after_close(backend, rwfd):
    async def main():
        ctx = backend.aio.AsyncioContext()
        assert await ctx.write(b"x", rwfd, 0) == 1
        ctx.close()
        ctx.close()
        for coro in (ctx.read(1, rwfd, 0), ctx.write(b"y", rwfd, 0), ctx.fsync(rwfd), ctx.fdsync(rwfd)):
            with pytest.raises(Exception) as info:
                await asyncio.wait_for(coro, 10)
            assert not isinstance(info.value, (asyncio.TimeoutError, AssertionError)), repr(info.value)
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(ctx.submit(backend.raw.Operation.read(1, rwfd, 0)), 10)
        assert not isinstance(info.value, asyncio.TimeoutError)
    run(main())
    assert os.pread(rwfd, 4, 0) == b"x", "a write issued after close() happened"


def test_close_with_operations_in_flight(backend):
    results, proc = run_script(backend, (
        "import tempfile\n"
        "async def main():\n"
        "    with tempfile.TemporaryFile() as f:\n"
        "        fd = f.fileno()\n"
        "        os.pwrite(fd, os.urandom(1 << 20), 0)\n"
        "        ctx = aio.AsyncioContext(max_requests=32)\n"
        "        tasks = [asyncio.ensure_future(ctx.read(4096, fd, 4096 * i)) for i in range(256)]\n"
        "        await asyncio.sleep(0)\n"
        "        await asyncio.sleep(0)\n"
        "        ctx.close()\n"
        "        done, pending = await asyncio.wait(tasks, timeout=20)\n"
        "        assert not pending, f'{len(pending)} operations never finished after close()'\n"
        "        kinds = set()\n"
        "        for t in done:\n"
        "            if t.cancelled():\n"
        "                kinds.add('cancelled')\n"
        "            elif t.exception() is not None:\n"
        "                kinds.add(type(t.exception()).__name__)\n"
        "            else:\n"
        "                assert t.result() == os.pread(fd, 4096, 4096 * tasks.index(t))\n"
        "                kinds.add('data')\n"
        "        print('RESULT', sorted(kinds))\n"
        "asyncio.run(main())\n"
    ))
    assert results


def test_close_with_read_parked_on_pipe(backend):
    # The read can never complete; close() must still return, and the task
    # must finish (cancelled or with an error) instead of hanging.
    results, proc = run_script(backend, (
        "async def main():\n"
        "    r, w = os.pipe()\n"
        "    ctx = aio.AsyncioContext()\n"
        "    task = asyncio.ensure_future(ctx.read(4, r, 0))\n"
        "    for _ in range(3):\n"
        "        await asyncio.sleep(0)\n"
        "    ctx.close()\n"
        "    done, pending = await asyncio.wait([task], timeout=10)\n"
        "    assert not pending, 'the parked read never finished after close()'\n"
        "    print('RESULT', 'cancelled' if task.cancelled() else repr(task.exception()))\n"
        "asyncio.run(main())\n"
    ), timeout=30)
    assert results


def test_context_dropped_without_close(backend):
    results, proc = run_script(backend, (
        "import gc, tempfile\n"
        "async def main():\n"
        "    with tempfile.TemporaryFile() as f:\n"
        "        ctx = aio.AsyncioContext()\n"
        "        await ctx.write(b'abc', f.fileno(), 0)\n"
        "        tasks = [asyncio.ensure_future(ctx.read(3, f.fileno(), 0)) for _ in range(10)]\n"
        "        await asyncio.gather(*tasks)\n"
        "        del ctx\n"
        "        gc.collect()\n"
        "    raw_ctx = raw.Context(max_requests=4)\n"
        "    del raw_ctx\n"
        "    gc.collect()\n"
        "    print('RESULT ok')\n"
        "asyncio.run(main())\n"
    ))
    assert results == ["ok"]
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, describe(proc)


# --- fork -------------------------------------------------------------------

# Fork only once the process's other threads (the pool's workers, the callback
# thread) sleep.  GCC 12's AddressSanitizer does not lock its allocator around
# fork(): a thread inside malloc at that moment leaves it locked for good in
# the child, whose first new thread then hangs.  glibc's malloc has no such
# problem, so this only matters in the sanitizer build, but it costs nothing.
SETTLE = (
    "def settle_threads():\n"
    "    me, quiet = str(threading.get_native_id()), 0\n"
    "    deadline = time.monotonic() + 10\n"
    "    while quiet < 3 and time.monotonic() < deadline:\n"
    "        states = []\n"
    "        for tid in os.listdir('/proc/self/task'):\n"
    "            try:\n"
    "                with open(f'/proc/self/task/{tid}/stat') as st:\n"
    "                    states.append(tid == me or st.read().rsplit(')', 1)[1].split()[0] == 'S')\n"
    "            except (FileNotFoundError, ProcessLookupError):  # the thread ended\n"
    "                pass\n"
    "        quiet = quiet + 1 if all(states) else 0\n"
    "        time.sleep(0.01)\n"
    "import threading\n"
)

FORK_CHILD = SETTLE + (
    "import tempfile\n"
    "f = tempfile.TemporaryFile()\n"
    "fd = f.fileno()\n"
    "os.pwrite(fd, b'hello', 0)\n"
    "ctx = raw.Context(max_requests=8)\n"
    "def use(ctx):\n"
    "    op = raw.Operation.read(5, fd, 0)\n"
    "    seen = []\n"
    "    op.set_callback(lambda *a: seen.append(a))\n"
    "    if ctx.submit(op) != 1:\n"
    "        return 'not accepted'\n"
    "    deadline = time.monotonic() + 10\n"
    "    while not seen and time.monotonic() < deadline:\n"
    "        ctx.process_events(max_requests=512, min_requests=1, timeout=1)\n"
    "    return op.get_value() if seen else 'timeout'\n"
    "assert use(ctx) == b'hello'\n"
    "sys.stdout.flush()\n"
    "settle_threads()\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    try:\n"
    "        got = use(ctx)\n"
    "        print('RESULT child', 'worked' if got == b'hello' else repr(got))\n"
    "    except Exception as e:\n"
    "        print('RESULT child raised', type(e).__name__, getattr(e, 'errno', None), e)\n"
    "    try:\n"
    "        ctx.close()\n"
    "        print('RESULT child closed')\n"
    "    except Exception as e:\n"
    "        print('RESULT child close raised', type(e).__name__, e)\n"
    "    fresh = raw.Context(max_requests=8)\n"
    "    print('RESULT child fresh', use(fresh) == b'hello')\n"
    "    fresh.close()\n"
    "    sys.stdout.flush()\n"
    "    os._exit(0)\n"
    "_, status = os.waitpid(pid, 0)\n"
    "print('RESULT parent child-status', status)\n"
    "print('RESULT parent after fork', use(ctx) == b'hello')\n"
    "ctx.close()\n"
)


def test_fork_child_using_parent_context(backend):
    results, proc = run_script(backend, FORK_CHILD, timeout=60)
    child = [r for r in results if r.startswith("child ") and not r.startswith("child close")
             and not r.startswith("child fresh")]
    assert len(child) == 1, describe(proc)
    outcome = child[0]
    if outcome.startswith("child raised"):
        # A clear error: an OSError with an errno (EBADFD) or a RuntimeError
        # that says what happened.
        kind = outcome.split()[2]
        assert kind in ("OSError", "RuntimeError"), outcome
        assert kind != "OSError" or outcome.split()[3] != "None", outcome
    else:
        assert outcome == "child worked", outcome
    assert "child fresh True" in results, describe(proc)
    assert "parent child-status 0" in results, describe(proc)
    assert "parent after fork True" in results, describe(proc)


def test_fork_child_with_fresh_asyncio_context(backend):
    results, proc = run_script(backend, SETTLE + (
        "import tempfile\n"
        "f = tempfile.TemporaryFile()\n"
        "fd = f.fileno()\n"
        "async def roundtrip(tag):\n"
        "    async with aio.AsyncioContext() as ctx:\n"
        "        await ctx.write(tag, fd, 0)\n"
        "        return await ctx.read(len(tag), fd, 0) == tag\n"
        "assert asyncio.run(roundtrip(b'parent'))\n"
        "sys.stdout.flush()\n"
        "settle_threads()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    print('RESULT child', asyncio.run(roundtrip(b'child')))\n"
        "    sys.stdout.flush()\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "print('RESULT status', status)\n"
        "print('RESULT parent', asyncio.run(roundtrip(b'again')))\n"
    ))
    assert results == ["child True", "status 0", "parent True"], describe(proc)
