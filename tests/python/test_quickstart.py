# test_quickstart.py - examples/quickstart.py (the package's published quickstart) runs unchanged.
import os
import subprocess
import sys

import caio
import pytest

from conftest import BACKENDS, BACKEND_NAMES, describe, subprocess_env

EXPECTED = (
    "Wrote: Hello world\n"
    "Read: Hello world\n"
    "File synchronized.\n"
    "Concurrent writes completed.\n"
    "Read after concurrent writes: Hello from async world\n"
)


def quickstart_path():
    top_srcdir = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
    return os.path.join(top_srcdir, "examples", "quickstart.py")


@pytest.mark.parametrize("impl", [None] + list(BACKEND_NAMES))
def test_quickstart_output(tmp_path, impl):
    if impl is not None and getattr(caio, dict(BACKENDS)[impl]) is None:
        pytest.skip(f"backend {impl} unavailable here")
    # Run as a script in an empty directory, because it creates and
    # removes test.file in its working directory.
    try:
        proc = subprocess.run([sys.executable, quickstart_path()], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, env=subprocess_env(CAIO_IMPL=impl))
    except subprocess.TimeoutExpired:
        pytest.fail("the quickstart did not finish within 60s")
    assert proc.returncode == 0, describe(proc)
    assert proc.stdout == EXPECTED, describe(proc)
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, describe(proc)
    assert not [w for w in proc.stderr.splitlines() if "Warning" in w], describe(proc)
    assert os.listdir(tmp_path) == [], "the quickstart left files behind"
