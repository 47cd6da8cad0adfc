# test_bench.py - bench/caio-python-bench.py keeps working (a very short run, every backend).
import os
import re
import subprocess
import sys

import pytest

from conftest import describe, subprocess_env


def test_bench_quick_run(tmp_path):
    top_srcdir = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(__file__), "..", "..")
    script = os.path.join(top_srcdir, "bench", "caio-python-bench.py")
    try:
        proc = subprocess.run([sys.executable, script, "--quick", "--seconds", "0.02",
                               "--file-size", "16", "--dir", str(tmp_path),
                               "--json", str(tmp_path / "rows.json")],
                              capture_output=True, text=True, timeout=240, env=subprocess_env())
    except subprocess.TimeoutExpired:
        pytest.fail("the bench did not finish within 240s")
    assert proc.returncode == 0, describe(proc)
    import caio
    for name, module in (("uring", "linux_uring"), ("linux", "linux_aio"),
                         ("thread", "thread_aio"), ("python", "python_aio")):
        rows = [line for line in proc.stdout.splitlines() if re.match(rf"caio\s+{name}\s+(seq|rand)\s", line)]
        if getattr(caio, module) is None:
            assert f"caio       {name:<7} not measured" in proc.stdout, describe(proc)
            continue
        # 16K at 1, 16, 64, 256 plus 4K and 1M at 64, each sequential and random.
        assert len(rows) == 12, describe(proc)
        for row in rows:
            ops, mbs, p50, p99 = map(float, row.split()[5:9])
            assert ops > 0 and mbs > 0 and 0 < p50 <= p99, row
    assert "original PyPI caio is not installed" in proc.stdout
    assert os.listdir(tmp_path) == ["rows.json"], "the bench left its data file behind"
