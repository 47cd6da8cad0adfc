"""Loading the native part: caio._caio and the check that a libcaio backend works here."""
import errno
import os

try:
    from . import _caio
    _LOAD_ERROR = None
except ImportError as exc:  # no compiled part: only python_aio works
    _caio = None
    _LOAD_ERROR = exc

from .abstract import AbstractContext, AbstractOperation

if _caio is not None:
    AbstractContext.register(_caio.Context)
    AbstractOperation.register(_caio.Operation)


_SECCOMP_ADVICE = (
    "Containers usually block io_uring with their seccomp profile. "
    "Docker or Podman: run with '--security-opt seccomp=unconfined', or with a "
    "seccomp profile that allows io_uring_setup, io_uring_enter and "
    "io_uring_register. Kubernetes: set securityContext.seccompProfile.type "
    "to Unconfined, or use a Localhost profile allowing those three syscalls. "
    "Also check the sysctl kernel.io_uring_disabled (must be 0, or 1 with the "
    "io_uring group)."
)

_ADVICE = {
    "uring": {
        errno.ENOSYS: "io_uring_setup(2) returned ENOSYS: the kernel is older "
                      "than 5.1 or a seccomp filter blocks io_uring. "
                      + _SECCOMP_ADVICE,
        errno.EPERM: "io_uring is forbidden for this process. " + _SECCOMP_ADVICE,
        errno.EACCES: "io_uring is forbidden for this process. " + _SECCOMP_ADVICE,
    },
    "linux": {
        errno.ENOSYS: "Linux AIO (io_setup) is missing: the kernel was built "
                      "without CONFIG_AIO, or a seccomp filter blocks io_setup, "
                      "io_submit and io_getevents (Docker/Podman: "
                      "--security-opt seccomp=unconfined).",
        errno.EAGAIN: "the system-wide limit of Linux AIO events is reached: "
                      "raise sysctl fs.aio-max-nr.",
    },
}

_DEFAULT_ADVICE = {
    "uring": "Use CAIO_IMPL=linux, thread or python to pick another backend.",
    "linux": "Linux AIO needs kernel 4.18 or newer (fsync/fdsync through "
             "io_submit); on older kernels use CAIO_IMPL=thread or python.",
    "thread": "Use CAIO_IMPL=python for the pure Python backend.",
}


def unavailable_reason(backend):
    """None if the libcaio backend works here, else a sentence saying why not."""
    if _caio is None:
        here = os.path.dirname(os.path.abspath(__file__))
        if not any(name.startswith("_caio.") and name.endswith(".so") for name in os.listdir(here)):
            return ("the native extension caio._caio is not built or not installed in %s "
                    "(only caio.python_aio works without it)" % here)
        return "the native extension caio._caio cannot be loaded: %s" % (_LOAD_ERROR,)
    status, reason = _caio.probe(backend)
    if status == 0:
        return None
    err = -status
    advice = _ADVICE.get(backend, {}).get(err) or _DEFAULT_ADVICE.get(backend, "")
    if backend == "linux" and err != errno.ENOSYS and "4.18" not in advice:
        advice += " " + _DEFAULT_ADVICE["linux"]
    if not reason:
        reason = "libcaio backend %s is unavailable: %s" % (backend, os.strerror(err))
    return "%s [%s]. %s" % (reason, errno.errorcode.get(err, err), advice)


def require(backend, module_name):
    """Return caio._caio if the backend works here, else raise ImportError."""
    reason = unavailable_reason(backend)
    if reason is not None:
        raise ImportError("%s: %s" % (module_name, reason), name=module_name)
    return _caio


def context_class(backend, module_name, doc):
    """A Context class bound to one libcaio backend."""
    native = require(backend, module_name)

    class Context(native.Context, AbstractContext):
        __doc__ = doc
        __module__ = module_name

    return Context
