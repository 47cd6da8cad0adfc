"""caio: asynchronous file I/O for Python on libcaio (io_uring, Linux AIO, threads).

A drop-in replacement for the caio package: ``from caio import AsyncioContext``
gives the fastest backend this machine allows.  CAIO_IMPL=uring|linux|thread|
python, or a ``default_implementation`` file next to this module (its first
non-comment line naming a backend), picks another one.
"""
import importlib
import os
import warnings

from . import python_aio, python_aio_asyncio
from .abstract import AbstractContext, AbstractOperation
from .version import __author__, __version__


def _load(name):
    """A native backend module and its asyncio twin, or (None, None)."""
    try:
        return (importlib.import_module("." + name, __name__),
                importlib.import_module("." + name + "_asyncio", __name__))
    except ImportError:
        return None, None


linux_uring, linux_uring_asyncio = _load("linux_uring")
linux_aio, linux_aio_asyncio = _load("linux_aio")
thread_aio, thread_aio_asyncio = _load("thread_aio")

_IMPLEMENTATIONS = (
    ("uring", linux_uring, linux_uring_asyncio),
    ("linux", linux_aio, linux_aio_asyncio),
    ("thread", thread_aio, thread_aio_asyncio),
    ("python", python_aio, python_aio_asyncio),
)
_NAMES = tuple(name for name, _, _ in _IMPLEMENTATIONS)
_AVAILABLE = {name: (module, asyncio_module)
              for name, module, asyncio_module in _IMPLEMENTATIONS if module}

variants = tuple(module for _, module, _ in _IMPLEMENTATIONS if module)
variants_asyncio = tuple(module_asyncio for _, _, module_asyncio in _IMPLEMENTATIONS
                         if module_asyncio)

DEFAULT_IMPLEMENTATION_FILE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "default_implementation",
)


def _from_file(path):
    """The backend the default_implementation file names, or None."""
    try:
        with open(path, "r") as fp:
            lines = [line.strip() for line in fp]
    except OSError:
        return None
    ignored = []
    for line in lines:
        if not line or line.startswith("#"):
            continue
        if line.lower() in _NAMES:
            return line.lower()
        ignored.append(line)
    if ignored:
        warnings.warn(
            "caio: %s names no backend (%r); use one of %s"
            % (path, ignored[0], ", ".join(_NAMES)), RuntimeWarning, stacklevel=3,
        )
    return None


def _requested():
    """(backend, where it was asked for) or (None, None)."""
    value = os.environ.get("CAIO_IMPL", "").strip()
    if value:
        return value, "CAIO_IMPL"
    return _from_file(DEFAULT_IMPLEMENTATION_FILE), DEFAULT_IMPLEMENTATION_FILE


def _select():
    automatic = next(iter(_AVAILABLE))
    requested, where = _requested()
    if requested is None:
        return automatic
    if requested.lower() in _AVAILABLE:
        return requested.lower()
    why = "is not a backend" if requested.lower() not in _NAMES else "is not available here"
    warnings.warn(
        "caio: %s=%r %s; available values: %s; using the automatic choice %r"
        % (where, requested, why, ", ".join(_AVAILABLE), automatic),
        RuntimeWarning, stacklevel=3,
    )
    return automatic


implementation = _select()
preferred, preferred_asyncio = _AVAILABLE[implementation]

Context = preferred.Context
Operation = preferred.Operation
AsyncioContext = preferred_asyncio.AsyncioContext


__all__ = (
    "Context",
    "Operation",
    "AsyncioContext",
    "AbstractContext",
    "AbstractOperation",
    "linux_uring",
    "linux_uring_asyncio",
    "linux_aio",
    "linux_aio_asyncio",
    "thread_aio",
    "thread_aio_asyncio",
    "python_aio",
    "python_aio_asyncio",
    "variants",
    "variants_asyncio",
    "implementation",
    "__version__",
    "__author__",
)
