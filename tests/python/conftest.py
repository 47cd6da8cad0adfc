# conftest.py - fixtures shared by the caio binding tests: one parameter per backend, helpers.
import asyncio
import collections
import importlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

# Backends in the order caio.variants must list them: (CAIO_IMPL name, module).
BACKENDS = (
    ("uring", "linux_uring"),
    ("linux", "linux_aio"),
    ("thread", "thread_aio"),
    ("python", "python_aio"),
)
BACKEND_NAMES = tuple(name for name, _ in BACKENDS)

Backend = collections.namedtuple("Backend", "name module raw aio")

# Every environment variable that changes which backend caio picks; removed
# from the environment of the subprocesses so each test sets only its own.
SELECTION_ENV = ("CAIO_IMPL", "CAIO_DEFAULT_IMPLEMENTATION", "CAIO_TEST_PROBE_FAIL")


def pytest_configure(config):
    # A test run against an installed caio instead of the build tree would
    # prove nothing about the build: run-pytest.sh says where it must be.
    expected = os.environ.get("CAIO_TEST_PYTHONDIR")
    if expected:
        import caio
        where = os.path.realpath(caio.__file__)
        if not where.startswith(os.path.realpath(expected) + os.sep):
            raise pytest.UsageError(f"caio imported from {where}, expected under {expected}")


def load_backend(name):
    """The raw and asyncio modules of one backend, or skip with the ImportError's reason."""
    module = dict(BACKENDS)[name]
    try:
        raw = importlib.import_module("caio." + module)
        aio = importlib.import_module("caio." + module + "_asyncio")
    except ImportError as exc:
        pytest.skip(f"backend {name} unavailable: {exc}")
    return Backend(name, module, raw, aio)


@pytest.fixture(params=BACKEND_NAMES)
def backend(request):
    return load_backend(request.param)


def run(coro, timeout=60):
    """Run a coroutine in a fresh event loop; a hang becomes a TimeoutError."""
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def subprocess_env(**overrides):
    """os.environ (PYTHONPATH, LD_PRELOAD of the sanitizers) without selection variables."""
    env = {k: v for k, v in os.environ.items() if k not in SELECTION_ENV}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_python(code, timeout=60, env=None, cwd=None, args=()):
    """Run code in a fresh interpreter; fail the test (not hang) if it does not finish.
    It runs in its own session, so that on a timeout what it forked dies with it."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env or subprocess_env(),
                            cwd=cwd, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"subprocess did not finish within {timeout}s\nstdout: {stdout}\nstderr: {stderr}")
    finally:
        # A forked child left behind by a script that exited.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def describe(proc):
    return f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


class Completions:
    """Callbacks for raw Operations that record each result, on whatever thread they run."""

    def __init__(self):
        self.results = {}
        self.calls = collections.Counter()
        self.cond = threading.Condition()

    def attach(self, op):
        def callback(*args):
            with self.cond:
                self.calls[id(op)] += 1
                self.results[id(op)] = args
                self.cond.notify_all()
        op.set_callback(callback)
        return op

    def done(self, op):
        with self.cond:
            return id(op) in self.results

    def count(self):
        with self.cond:
            return len(self.results)


def pump(ctx, completions, want, timeout=10):
    """Drive ctx until `want` callbacks have run: process_events() runs them on
    this thread; a backend that runs them on its own threads needs no driving."""
    deadline = time.monotonic() + timeout
    while completions.count() < want:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"only {completions.count()}/{want} callbacks ran in {timeout}s")
        ctx.process_events(max_requests=512, min_requests=1, timeout=1)
        with completions.cond:
            if completions.count() < want:
                completions.cond.wait(0.001)


def submit_and_wait(ctx, ops, timeout=10):
    """Submit raw ops (as many per call as the context accepts) and wait for all callbacks."""
    completions = Completions()
    for op in ops:
        completions.attach(op)
    ops = list(ops)
    deadline = time.monotonic() + timeout
    sent = 0
    while sent < len(ops):
        accepted = ctx.submit(*ops[sent:])
        assert 0 <= accepted <= len(ops) - sent
        sent += accepted
        if sent < len(ops):
            assert time.monotonic() < deadline, f"submit accepted only {sent}/{len(ops)}"
            pump(ctx, completions, min(sent, completions.count() + 1), deadline - time.monotonic())
    pump(ctx, completions, len(ops), max(0.1, deadline - time.monotonic()))
    for op in ops:
        assert completions.calls[id(op)] == 1, "a callback must run exactly once"
    return completions


def write_file(path, data):
    with open(path, "wb") as f:
        f.write(data)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture
def rwfd(tmp_path):
    """A read-write descriptor on an empty regular file."""
    fd = os.open(tmp_path / "data.bin", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def stats_of(ctx):
    """libcaio's counters for a raw Context or an AsyncioContext, as a dict."""
    raw = getattr(ctx, "context", ctx)
    if not hasattr(raw, "stats"):
        pytest.fail(f"{type(raw).__module__}.{type(raw).__name__} has no stats(): "
                "the binding must expose caio_ctx_stats (kernel_submits, kernel_requests, max_batch, pending)")
    st = raw.stats()
    return st if isinstance(st, dict) else {k: getattr(st, k) for k in dir(st) if not k.startswith("_")}


MEMORY_FILESYSTEMS = {"tmpfs", "ramfs", "devtmpfs", "proc", "sysfs"}


def filesystem_type(path):
    """The type of the filesystem holding path, from the longest mount point prefix."""
    path = os.path.realpath(path)
    best, kind = "", None
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            point = fields[1].replace("\\040", " ")
            inside = path == point or path.startswith(point.rstrip("/") + "/")
            if inside and len(point) >= len(best):
                best, kind = point, fields[2]
    return kind


@pytest.fixture
def direct_path(tmp_path):
    """A file path where O_DIRECT works on a disk filesystem (not tmpfs, whose
    O_DIRECT has no alignment rules to test)."""
    candidates = [str(tmp_path), os.environ.get("top_builddir"), os.getcwd(), "/var/tmp"]
    for where in filter(None, candidates):
        if filesystem_type(where) in MEMORY_FILESYSTEMS or not os.access(where, os.W_OK):
            continue
        fd, path = tempfile.mkstemp(prefix="caio-odirect-", dir=where)
        os.close(fd)
        try:
            os.close(os.open(path, os.O_RDWR | os.O_DIRECT))
        except OSError:
            os.unlink(path)
            continue
        yield path
        os.unlink(path)
        return
    pytest.skip("no writable disk filesystem supporting O_DIRECT among " + ", ".join(filter(None, candidates)))
