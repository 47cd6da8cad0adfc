# test_raw.py - the raw Context/Operation API: submit, callbacks, process_events, poll, fileno.
import errno
import os
import select

import pytest

from conftest import Completions, describe, pump, run_python, submit_and_wait


def test_submit_returns_number_accepted(backend, rwfd):
    ctx = backend.raw.Context(max_requests=16)
    try:
        ops = [backend.raw.Operation.write(bytes([i]) * 4, rwfd, 4 * i) for i in range(4)]
        completions = Completions()
        for op in ops:
            completions.attach(op)
        assert ctx.submit(*ops) == 4
        pump(ctx, completions, 4)
        assert [op.get_value() for op in ops] == [4] * 4
        reads = [backend.raw.Operation.read(4, rwfd, 4 * i) for i in range(4)]
        submit_and_wait(ctx, reads)
        assert [op.get_value() for op in reads] == [bytes([i]) * 4 for i in range(4)]
        assert ctx.submit() == 0
    finally:
        ctx.close()


def test_callback_gets_result(backend, rwfd):
    ctx = backend.raw.Context(max_requests=4)
    try:
        write = backend.raw.Operation.write(b"hello", rwfd, 0)
        read = backend.raw.Operation.read(16, rwfd, 0)
        done = submit_and_wait(ctx, [write])
        # One positional argument, the syscall's result, like the original.
        assert done.results[id(write)] == (5,)
        done = submit_and_wait(ctx, [read])
        assert done.results[id(read)] == (5,)
        assert read.get_value() == b"hello"
    finally:
        ctx.close()


def test_set_callback_is_optional(backend, rwfd):
    # An operation without a callback still completes and frees its slot.
    ctx = backend.raw.Context(max_requests=1)
    try:
        for i in range(3):
            op = backend.raw.Operation.write(b"z", rwfd, i)
            marker = backend.raw.Operation.fdsync(rwfd)
            assert ctx.submit(op) == 1
            probe = Completions()
            # Poll until the slot is free again: submitting the marker succeeds.
            for _ in range(1000):
                ctx.process_events(max_requests=512, min_requests=1, timeout=1)
                if ctx.submit(probe.attach(marker)) == 1:
                    break
            else:
                pytest.fail("the slot of a callback-less operation was never freed")
            pump(ctx, probe, 1)
            assert op.get_value() == 1
    finally:
        ctx.close()
    assert os.pread(rwfd, 10, 0) == b"zzz"


def test_operation_properties_after_completion(backend, rwfd):
    ctx = backend.raw.Context(max_requests=4)
    try:
        write = backend.raw.Operation.write(b"payload!", rwfd, 8)
        submit_and_wait(ctx, [write])
        assert write.fileno == rwfd and write.offset == 8 and write.nbytes == 8
        assert write.get_value() == 8
        read = backend.raw.Operation.read(8, rwfd, 8)
        submit_and_wait(ctx, [read])
        assert read.fileno == rwfd and read.offset == 8 and read.nbytes == 8
        assert read.get_value() == b"payload!"
        assert bytes(read.payload) == b"payload!"
    finally:
        ctx.close()


def test_fsync_fdsync_operations(backend, rwfd):
    ctx = backend.raw.Context(max_requests=4)
    try:
        ops = [backend.raw.Operation.fsync(rwfd), backend.raw.Operation.fdsync(rwfd)]
        submit_and_wait(ctx, ops)
        for op in ops:
            assert op.get_value() in (0, None)
    finally:
        ctx.close()


def test_short_read_and_eof(backend, rwfd):
    os.pwrite(rwfd, b"abc", 0)
    ctx = backend.raw.Context(max_requests=4)
    try:
        short = backend.raw.Operation.read(10, rwfd, 1)
        eof = backend.raw.Operation.read(10, rwfd, 3)
        submit_and_wait(ctx, [short, eof])
        assert short.get_value() == b"bc"
        assert eof.get_value() == b""
    finally:
        ctx.close()


def test_submit_more_than_max_requests_accepts_max_requests(backend, rwfd):
    # A slot is held from submit until the completion is processed, so with
    # nothing processed the context accepts exactly max_requests.
    ctx = backend.raw.Context(max_requests=4)
    try:
        # Collect completions with process_events() (as asyncio does), so
        # that no backend runs callbacks, and frees slots, on its own.
        assert ctx.process_events() == 0
        ops = [backend.raw.Operation.write(bytes([65 + i]), rwfd, i) for i in range(8)]
        completions = Completions()
        for op in ops:
            completions.attach(op)
        assert ctx.submit(*ops) == 4
        pump(ctx, completions, 4)
        assert ctx.submit(*ops[4:]) == 4
        pump(ctx, completions, 8)
    finally:
        ctx.close()
    assert os.pread(rwfd, 8, 0) == b"ABCDEFGH"


def test_submit_rejects_non_operation(backend):
    ctx = backend.raw.Context(max_requests=4)
    try:
        with pytest.raises((TypeError, ValueError)):
            ctx.submit("not an operation")
    finally:
        ctx.close()


def test_process_events_arguments(backend, rwfd):
    ctx = backend.raw.Context(max_requests=8)
    try:
        assert ctx.process_events() == 0
        assert ctx.process_events(512, 0, 0) == 0
        with pytest.raises(ValueError):
            ctx.process_events(max_requests=1, min_requests=5)
        op = backend.raw.Operation.write(b"x", rwfd, 0)
        submit_and_wait(ctx, [op])
        assert op.get_value() == 1
    finally:
        ctx.close()


def test_process_events_timeout_returns_when_nothing_pending(backend):
    # min_requests=1 with nothing in flight: returns within the timeout
    # (in seconds) instead of blocking forever, and releases the GIL.
    code = (
        "import sys, threading, time, importlib\n"
        "m = importlib.import_module(sys.argv[1])\n"
        "ctx = m.Context(max_requests=8)\n"
        "ticks = []\n"
        "stop = threading.Event()\n"
        "def ticker():\n"
        "    while not stop.wait(0.01):\n"
        "        ticks.append(1)\n"
        "t = threading.Thread(target=ticker)\n"
        "t.start()\n"
        "start = time.monotonic()\n"
        "n = ctx.process_events(max_requests=8, min_requests=1, timeout=1)\n"
        "elapsed = time.monotonic() - start\n"
        "stop.set(); t.join()\n"
        "ctx.close()\n"
        "print('RESULT', n, elapsed, len(ticks))\n"
    )
    proc = run_python(code, timeout=30, args=["caio." + backend.module])
    assert proc.returncode == 0, describe(proc)
    _, n, elapsed, ticks = proc.stdout.split()
    assert int(n) == 0
    assert float(elapsed) < 5
    if float(elapsed) > 0.5:
        assert int(ticks) >= 3, "process_events held the GIL while waiting"


def test_fileno_becomes_readable_and_poll(backend, rwfd):
    # asyncio integration relies on this: a caller that watches fileno (as
    # loop.add_reader does) sees it become readable after submit, poll()
    # consumes the notification, and process_events() then runs the
    # callbacks on this thread.
    ctx = backend.raw.Context(max_requests=8)
    try:
        fileno = ctx.fileno
        for i in range(20):
            op = backend.raw.Operation.write(b"poll", rwfd, i)
            completions = Completions()
            completions.attach(op)
            assert ctx.submit(op) == 1
            assert not completions.done(op), "the callback ran before anyone collected it"
            readable, _, _ = select.select([fileno], [], [], 10)
            assert readable == [fileno], "fileno never became readable after submit"
            assert isinstance(ctx.poll(), int)
            pump(ctx, completions, 1)
            assert op.get_value() == 4
    finally:
        ctx.close()


def test_poll_never_blocks(backend):
    code = (
        "import sys, importlib\n"
        "m = importlib.import_module(sys.argv[1])\n"
        "ctx = m.Context(max_requests=8)\n"
        "try:\n"
        "    r = ctx.poll()\n"
        "    print('RESULT returned', r)\n"
        "except BlockingIOError:\n"
        "    print('RESULT BlockingIOError')\n"
        "ctx.close()\n"
    )
    proc = run_python(code, timeout=30, args=["caio." + backend.module])
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout.strip() in ("RESULT BlockingIOError", "RESULT returned 0"), describe(proc)


def test_close_is_idempotent_and_blocks_further_use(backend, rwfd):
    ctx = backend.raw.Context(max_requests=4)
    ctx.close()
    ctx.close()
    with pytest.raises((RuntimeError, ValueError, OSError)):
        ctx.submit(backend.raw.Operation.write(b"late", rwfd, 0))
    with pytest.raises((RuntimeError, ValueError, OSError)):
        ctx.process_events()
    assert os.fstat(rwfd).st_size == 0, "a write submitted after close() happened"


def test_close_runs_or_discards_pending_without_hanging(backend, rwfd):
    ctx = backend.raw.Context(max_requests=64)
    ops = [backend.raw.Operation.write(b"%04d" % i, rwfd, 4 * i) for i in range(64)]
    completions = Completions()
    for op in ops:
        completions.attach(op)
    assert ctx.submit(*ops) == 64
    ctx.close()
    # close() may run the outstanding callbacks or drop them, but each at most once.
    assert all(n == 1 for n in completions.calls.values())
    ctx.close()


def test_error_reaches_get_value(backend, tmp_path):
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    ctx = backend.raw.Context(max_requests=4)
    try:
        op = backend.raw.Operation.read(16, fd, 0)
        submit_and_wait(ctx, [op])
        with pytest.raises(IsADirectoryError) as info:
            op.get_value()
        assert info.value.errno == errno.EISDIR
    finally:
        ctx.close()
        os.close(fd)


def test_operation_cannot_run_twice_at_once(backend, rwfd):
    # Submitting the same in-flight operation again must not hand its
    # buffer to the kernel twice.
    ctx = backend.raw.Context(max_requests=8)
    try:
        op = backend.raw.Operation.write(b"once", rwfd, 0)
        completions = Completions()
        completions.attach(op)
        first = ctx.submit(op)
        assert first == 1
        try:
            again = ctx.submit(op)
        except (RuntimeError, ValueError):
            again = 0
        assert again == 0
        pump(ctx, completions, 1)
        assert completions.calls[id(op)] == 1
    finally:
        ctx.close()
