"""setup.py - build the caio binding with pip (offline: pip install --no-build-isolation .).

libcaio is found, in this order:
  1. $LIBCAIO_BUILDDIR: a configured and built caiofs tree (its .libs/libcaio.so);
  2. pkg-config libcaio: an installed libcaio (make install);
  3. the libcaio sources next to this directory (../src/core), compiled into
     the extension itself, with io_uring and Linux AIO when their headers exist.
CAIO_LIBCAIO=builddir|installed|bundled forces one of them.
"""
import os
import re
import shlex
import subprocess
import sys
import sysconfig

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
SOURCES = ["src/module.c", "src/context.c", "src/operation.c"]
CORE = ["core.c", "select.c", "execute.c", "backend-thread.c", "backend-sync.c"]


def version():
    text = open(os.path.join(HERE, "caio", "version.py")).read()
    return re.search(r'__version__ = "([^"]+)"', text).group(1)


def from_builddir():
    builddir = os.environ.get("LIBCAIO_BUILDDIR")
    if not builddir:
        return None
    libs = os.path.join(os.path.abspath(builddir), ".libs")
    if not os.path.exists(os.path.join(libs, "libcaio.so")):
        sys.exit("setup.py: no libcaio.so in %s: run make there first" % libs)
    return dict(include_dirs=[os.path.join(TOP, "src", "include")],
                library_dirs=[libs], runtime_library_dirs=[libs], libraries=["caio"])


def pkg_config(*args):
    try:
        out = subprocess.run(["pkg-config", *args], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return shlex.split(out.stdout)


def from_pkg_config():
    flags = pkg_config("--cflags", "--libs", "libcaio")
    if flags is None:
        return None
    found = dict(include_dirs=[], library_dirs=[], runtime_library_dirs=[], libraries=[])
    for flag in flags:
        if flag.startswith("-I"):
            found["include_dirs"].append(flag[2:])
        elif flag.startswith("-L"):
            # A RUNPATH, so a libcaio outside the ld.so cache is found too.
            found["library_dirs"].append(flag[2:])
            found["runtime_library_dirs"].append(flag[2:])
        elif flag.startswith("-l"):
            found["libraries"].append(flag[2:])
    return found


def have_header(header):
    include = sysconfig.get_config_var("INCLUDEDIR") or "/usr/include"
    return any(os.path.exists(os.path.join(d, header))
               for d in (include, "/usr/include", "/usr/local/include"))


def bundled(build_temp):
    """Compile libcaio's own sources into the extension."""
    core = os.path.join(TOP, "src", "core")
    if not os.path.isdir(core):
        return None
    os.makedirs(build_temp, exist_ok=True)
    defines = ['#define _GNU_SOURCE 1', '#define PACKAGE_VERSION "%s"' % version().split("+caiofs.")[-1]]
    sources = [os.path.join(core, name) for name in CORE]
    libraries = ["pthread"]
    if have_header("liburing.h") and os.path.exists(os.path.join(core, "backend-uring.c")):
        defines.append("#define HAVE_LIBURING 1")
        sources.append(os.path.join(core, "backend-uring.c"))
        libraries.append("uring")
    if have_header("libaio.h") and os.path.exists(os.path.join(core, "backend-aio.c")):
        defines.append("#define HAVE_LIBAIO 1")
        sources.append(os.path.join(core, "backend-aio.c"))
        libraries.append("aio")
    with open(os.path.join(build_temp, "config.h"), "w") as fp:
        fp.write("/* config.h - written by setup.py for a bundled libcaio */\n")
        fp.write("\n".join(defines) + "\n")
    return dict(include_dirs=[build_temp, os.path.join(TOP, "src", "include")],
                sources=sources, libraries=libraries,
                define_macros=[("CAIO_SYSCONFDIR", '"/etc"')])


class BuildWithLibcaio(build_ext):
    """Decide how to get libcaio at build time (not when pip only asks for metadata)."""

    def build_extensions(self):
        choice = os.environ.get("CAIO_LIBCAIO", "")
        how = None
        if choice in ("", "builddir"):
            how = from_builddir()
        if how is None and choice in ("", "installed"):
            how = from_pkg_config()
        if how is None and choice in ("", "bundled"):
            how = bundled(os.path.join(self.build_temp, "libcaio"))
        if how is None:
            sys.exit("setup.py: libcaio not found: install it (make install), set "
                     "LIBCAIO_BUILDDIR to a built tree, or build from the caiofs sources")
        for ext in self.extensions:
            for key, value in how.items():
                setattr(ext, key, getattr(ext, key) + value)
        super().build_extensions()


setup(
    name="caio",
    version=version(),
    description="Asynchronous file I/O (io_uring, Linux AIO, threads) on libcaio; "
                "a drop-in replacement for the caio package",
    python_requires=">=3.8",
    packages=["caio"],
    package_data={"caio": ["py.typed"]},
    ext_modules=[Extension("caio._caio", sources=SOURCES,
                           extra_compile_args=["-fno-strict-aliasing"])],
    cmdclass={"build_ext": BuildWithLibcaio},
    zip_safe=False,
)
