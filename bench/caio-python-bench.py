#!/usr/bin/env python3
# caio-python-bench.py - read throughput and latency of every caio backend on page-cached files.
"""Benchmark the caio asyncio backends on reads of a page-cached file.

For every backend (uring, linux, thread, python) it measures sequential and
random reads at concurrency 1, 16, 64 and 256 with 16 KiB chunks, and at
concurrency 64 with 4 KiB and 1 MiB chunks, and prints ops/s, MB/s and the
p50 and p99 latency of one read (submit to result, in microseconds).

Each (package, backend) pair runs in its own interpreter.  --module picks
the package: a module name ("caio", the default) or a directory that holds
a caio package (e.g. the site-packages of the original PyPI caio), so two
implementations can be measured side by side:

    PYTHONPATH=$top_builddir/python /usr/bin/python3 bench/caio-python-bench.py \\
        --module caio --module /opt/caio-pypi/site-packages
"""
import argparse
import asyncio
import importlib
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time

BACKENDS = (("uring", "linux_uring"), ("linux", "linux_aio"),
            ("thread", "thread_aio"), ("python", "python_aio"))
KiB, MiB = 1024, 1024 * 1024

# (chunk, concurrency) cells, each run as sequential and as random reads.
CELLS = [(16 * KiB, c) for c in (1, 16, 64, 256)] + [(4 * KiB, 64), (1 * MiB, 64)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--module", action="append", metavar="NAME|DIR",
                        help="caio package to measure: an importable name or a directory "
                             "containing caio/ (repeatable; default: caio)")
    parser.add_argument("--backend", action="append", choices=[b for b, _ in BACKENDS],
                        help="only these backends (repeatable; default: all available)")
    parser.add_argument("--quick", action="store_true",
                        help="short run: 0.25 s per cell on a 64 MiB file")
    parser.add_argument("--seconds", type=float, help="measured time per cell (default 2, quick 0.25)")
    parser.add_argument("--file-size", type=int, metavar="MiB", help="data file size (default 1024, quick 64)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="run each cell N times and keep the fastest (against noise from other work)")
    parser.add_argument("--dir", help="where to create the data file (default: the temp dir)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (0.25 if args.quick else 2.0)
    args.file_size = (args.file_size or (64 if args.quick else 1024)) * MiB
    args.module = args.module or ["caio"]
    for spec in args.module:
        if os.sep in spec and not os.path.isdir(os.path.join(spec, "caio")):
            parser.error(f"--module {spec}: no caio package in that directory")
    return args


# --- worker: one package, one backend, in this interpreter ----------------------

def percentile(sorted_values, fraction):
    index = min(len(sorted_values) - 1, int(round(fraction * (len(sorted_values) - 1))))
    return sorted_values[index]


async def measure(ctx, fd, size, pattern, chunk, concurrency, seconds):
    """Run `concurrency` readers for `seconds`; return the row of results."""
    nchunks = size // chunk
    rng = random.Random(chunk * 1000 + concurrency)
    latencies = []
    cursor = 0
    deadline = 0.0
    # Reads really outstanding at once: a read that completes inside the
    # submit call returns without yielding to the loop, so the other
    # readers may never get to run and concurrency never materialises.
    inflight = peak = 0

    async def reader():
        nonlocal cursor, inflight, peak
        clock = time.perf_counter_ns
        while time.perf_counter() < deadline:
            if pattern == "seq":
                offset = cursor * chunk
                cursor = (cursor + 1) % nchunks
            else:
                offset = rng.randrange(nchunks) * chunk
            inflight += 1
            peak = max(peak, inflight)
            start = clock()
            data = await ctx.read(chunk, fd, offset)
            latencies.append(clock() - start)
            inflight -= 1
            if len(data) != chunk:
                raise RuntimeError(f"short read: {len(data)} of {chunk} at {offset}")

    # Warm up (connections of the loop, thread pools, page cache), then measure.
    deadline = time.perf_counter() + min(0.2, seconds / 4)
    await asyncio.gather(*(reader() for _ in range(concurrency)))
    latencies.clear()
    peak = 0
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(*(reader() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    ops = len(latencies)
    return {"pattern": pattern, "chunk": chunk, "concurrency": concurrency, "ops": ops,
            "ops_per_s": ops / elapsed, "mb_per_s": ops * chunk / elapsed / 1e6, "peak_inflight": peak,
            "p50_us": percentile(latencies, 0.50) / 1e3, "p99_us": percentile(latencies, 0.99) / 1e3}


async def run_backend(package, module, path, args):
    aio = importlib.import_module(f"{package}.{module}_asyncio")
    fd = os.open(path, os.O_RDONLY)
    rows = []
    try:
        async with aio.AsyncioContext(max_requests=512) as ctx:
            for chunk, concurrency in CELLS:
                for pattern in ("seq", "rand"):
                    runs = [await measure(ctx, fd, args.file_size, pattern, chunk,
                                          concurrency, args.seconds) for _ in range(args.repeat)]
                    rows.append(max(runs, key=lambda row: row["ops_per_s"]))
    finally:
        os.close(fd)
    return rows


def worker(args):
    package = args.module[0]
    name = args.backend[0]
    module = dict(BACKENDS)[name]
    try:
        pkg = importlib.import_module(package)
        importlib.import_module(f"{package}.{module}_asyncio")
    except ImportError as exc:
        print(json.dumps({"unavailable": str(exc)}))
        return 0
    if getattr(pkg, module, module) is None:
        print(json.dumps({"unavailable": f"{package}.{module} is None"}))
        return 0
    rows = asyncio.run(run_backend(package, module, args.path, args))
    info = {"file": getattr(pkg, "__file__", "?"), "version": getattr(pkg, "__version__", "?")}
    print(json.dumps({"rows": rows, "info": info}))
    return 0


# --- driver: a data file, one worker per (package, backend), the table ---------

def make_data_file(directory, size):
    fd, path = tempfile.mkstemp(prefix="caio-bench-", dir=directory)
    block = os.urandom(MiB)
    try:
        for offset in range(0, size, MiB):
            os.pwrite(fd, block, offset)
        os.fsync(fd)
        # Read it once so every measured read is a page-cache hit.
        for offset in range(0, size, 16 * MiB):
            os.pread(fd, 16 * MiB, offset)
    finally:
        os.close(fd)
    return path


def spawn(spec, backend, path, args):
    """Run one worker; a directory spec is put first on the worker's sys.path."""
    env = dict(os.environ)
    package = spec
    if os.path.isdir(spec):
        env["PYTHONPATH"] = os.pathsep.join([spec] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
        package = "caio"
    env.pop("CAIO_IMPL", None)
    command = [sys.executable, os.path.abspath(__file__), "--worker", "--module", package,
               "--backend", backend, "--path", path, "--seconds", str(args.seconds),
               "--file-size", str(args.file_size // MiB), "--repeat", str(args.repeat)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_header(args):
    print(f"# caio-python-bench: {platform.node()} kernel {platform.release()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()} ({sys.executable})")
    print(f"# page-cached file of {args.file_size // MiB} MiB, {args.seconds:g} s per cell"
          f"{f' (best of {args.repeat})' if args.repeat > 1 else ''}, "
          f"asyncio loop, AsyncioContext(max_requests=512); latency = submit to result;\n"
          f"# inflt = most reads outstanding at once (below conc when reads finish inside the submit)")
    print(f"# load average before: {' '.join('%.2f' % x for x in os.getloadavg())} "
          "(other work on the machine skews every number)")


def print_rows(spec, backend, result):
    if "unavailable" in result or "error" in result:
        why = result.get("unavailable") or result.get("error")
        print(f"{spec:<10} {backend:<7} not measured: {why}")
        return
    for row in result["rows"]:
        chunk = f"{row['chunk'] // KiB}K" if row["chunk"] < MiB else f"{row['chunk'] // MiB}M"
        print(f"{spec:<10} {backend:<7} {row['pattern']:<5} {chunk:>5} {row['concurrency']:>5} "
              f"{row['ops_per_s']:>10.0f} {row['mb_per_s']:>9.1f} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f}"
              f" {row['peak_inflight']:>6}")


def main(argv):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    backends = args.backend or [b for b, _ in BACKENDS]
    print_header(args)
    path = make_data_file(args.dir, args.file_size)
    rows = []
    try:
        print(f"{'module':<10} {'backend':<7} {'io':<5} {'chunk':>5} {'conc':>5} "
              f"{'ops/s':>10} {'MB/s':>9} {'p50 us':>9} {'p99 us':>9} {'inflt':>6}")
        for spec in args.module:
            for backend in backends:
                result = spawn(spec, backend, path, args)
                print_rows(spec, backend, result)
                sys.stdout.flush()
                rows.append({"module": spec, "backend": backend, **result})
    finally:
        os.unlink(path)
    print(f"# load average after: {' '.join('%.2f' % x for x in os.getloadavg())}")
    for spec, result in {(r["module"]): r for r in rows if "info" in r}.items():
        print(f"# {spec}: {result['info']['file']} version {result['info']['version']}")
    if len(args.module) == 1:
        print("# Only one package measured.  The original PyPI caio is not installed on this machine\n"
              "# (no PyPI access); install it into a directory and add --module DIR to compare.")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
