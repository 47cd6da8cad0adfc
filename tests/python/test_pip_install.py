# test_pip_install.py - `pip install --no-build-isolation .` of the binding works offline and the result runs.
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import subprocess_env

TOP_SRCDIR = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__))))
TOP_BUILDDIR = os.environ.get("top_builddir", "")

# What the installed package must do, run by an interpreter that sees only
# the installed copy: a write and a read back through every backend.
CHECK = textwrap.dedent("""
    import asyncio, os, sys, tempfile
    import caio
    assert caio.__file__.startswith(sys.argv[1]), caio.__file__
    names = {"linux_uring": "uring", "linux_aio": "linux",
             "thread_aio": "thread", "python_aio": "python"}
    ran = []

    async def roundtrip(mod, fd):
        async with mod.AsyncioContext() as ctx:
            payload = os.urandom(8192)
            assert await ctx.write(payload, fd, 4096) == len(payload)
            assert await ctx.read(len(payload), fd, 4096) == payload
            assert await ctx.read(10, fd, 1 << 20) == b""

    for variant in caio.variants:
        name = variant.__name__.rsplit(".", 1)[1]
        aio = __import__("caio." + name + "_asyncio", fromlist=["AsyncioContext"])
        with tempfile.TemporaryFile() as f:
            asyncio.run(roundtrip(aio, f.fileno()))
        ran.append(names[name])
    print(" ".join(ran))
""")


def clean_env(**extra):
    """The environment without this test run's caio, sanitizer preloads or
    backend selection: as a user who just ran pip would have it."""
    dropped = ("PYTHONPATH", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS",
               "CAIO_TEST_PYTHONDIR", "LIBCAIO_BUILDDIR", "CAIO_LIBCAIO")
    overrides = dict.fromkeys(dropped)
    overrides["PIP_NO_INDEX"] = "1"            # offline: never ask a package index
    overrides["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    overrides.update(extra)
    return subprocess_env(**overrides)


def copy_tree(dest):
    """The parts of the source tree a pip build reads (python/ and the
    libcaio sources next to it), so the build leaves the real tree clean."""
    for part in ("python", os.path.join("src", "include"), os.path.join("src", "core")):
        shutil.copytree(os.path.join(TOP_SRCDIR, part), os.path.join(dest, part),
                        ignore=shutil.ignore_patterns("__pycache__", "*.o", "*.lo", ".libs", ".deps"))
    return os.path.join(dest, "python")


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def pip_available():
    res = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip("pip is not installed for %s (apt-get install python3-pip)" % sys.executable)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("libcaio", ["bundled", "builddir"])
def test_pip_install_no_build_isolation(pip_available, tmp_path, libcaio):
    extra = {"CAIO_LIBCAIO": libcaio}
    if libcaio == "builddir":
        builddir = os.path.abspath(TOP_BUILDDIR) if TOP_BUILDDIR else ""
        if not os.path.exists(os.path.join(builddir, ".libs", "libcaio.so")):
            pytest.skip("no libcaio.so in the build tree (static-only build?)")
        if "LD_PRELOAD" in read_text(os.path.join(builddir, "python", "pyenv.sh")):
            pytest.skip("the build tree's libcaio needs the sanitizer runtimes (--enable-sanitizers)")
        extra["LIBCAIO_BUILDDIR"] = builddir
    src = copy_tree(str(tmp_path / "tree"))
    target = str(tmp_path / "site")
    res = subprocess.run([sys.executable, "-m", "pip", "install", "--no-build-isolation",
                          "--no-deps", "--target", target, "."],
                         cwd=src, env=clean_env(**extra), capture_output=True, text=True, timeout=540)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert os.path.exists(os.path.join(target, "caio", "__init__.py"))
    assert [n for n in os.listdir(os.path.join(target, "caio")) if n.startswith("_caio")], \
        "pip installed no compiled extension"
    res = subprocess.run([sys.executable, "-c", CHECK, target], cwd=str(tmp_path),
                         env=clean_env(PYTHONPATH=target), capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    ran = res.stdout.split()
    # The native thread pool always works, and so does the pure Python one.
    assert "thread" in ran and "python" in ran, ran


def make_in_builddir(*targets, timeout=300):
    """make TARGETS in the build tree, not as part of the make running the suite."""
    env = subprocess_env(MAKEFLAGS=None, MFLAGS=None, MAKELEVEL=None, MAKEOVERRIDES=None)
    return subprocess.run(["make", *targets], cwd=TOP_BUILDDIR, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(600)
def test_make_install_writes_metadata(tmp_path):
    """make install gives the package the dist-info pip would: importlib.metadata
    and pip see caio at the package's version, every file RECORD names is
    there, and make uninstall takes it all away again."""
    if not TOP_BUILDDIR or not os.path.exists(os.path.join(TOP_BUILDDIR, "Makefile")):
        pytest.skip("not run from a configured build tree")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    destdir = str(tmp_path / "dest")
    res = make_in_builddir("install", "DESTDIR=" + destdir)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    infos = [os.path.join(root, d) for root, dirs, _ in os.walk(destdir)
             for d in dirs if d.startswith("caio-") and d.endswith(".dist-info")]
    assert len(infos) == 1, infos
    site = os.path.dirname(infos[0])
    libdirs = {os.path.dirname(os.path.join(root, f)) for root, _, files in os.walk(destdir)
               for f in files if f.startswith("libcaio.so")}
    code = textwrap.dedent("""
        import importlib.metadata as md, os, sys
        import caio
        assert caio.__file__.startswith(sys.argv[1]), caio.__file__
        dist = md.distribution("caio")
        assert dist.version == caio.__version__, (dist.version, caio.__version__)
        missing = [str(f) for f in dist.files if not os.path.exists(f.locate())]
        assert not missing, missing
        assert any(str(f).startswith("caio/_caio") for f in dist.files), dist.files
        print(dist.version)
    """)
    env = subprocess_env(PYTHONPATH=site, LD_LIBRARY_PATH=":".join(sorted(libdirs)))
    res = subprocess.run([sys.executable, "-c", code, site], cwd=str(tmp_path), env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.strip().startswith("0.9.")
    res = make_in_builddir("uninstall", "DESTDIR=" + destdir)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert not os.path.exists(infos[0])
    left = [os.path.join(root, f) for root, _, files in os.walk(destdir) for f in files]
    assert not left, left
