"""Callbacks for a context nobody polls: the original thread_aio and python_aio
ran them on their own threads, and programs written for them rely on it."""
import select
import threading
import traceback
import weakref

# A caller that polls (fileno, poll, process_events) does so right after
# submitting: give it this long to show up before delivering on our own.
GRACE_SECONDS = 0.05


def start(context, fd, collect, polled):
    """Deliver context's completions with collect(context) on a daemon thread
    until polled (a threading.Event) is set or the context is gone."""
    thread = threading.Thread(
        target=_run, args=(weakref.ref(context), fd, collect, polled),
        name="caio-callbacks", daemon=True,
    )
    thread.start()
    return thread


def _run(context_ref, fd, collect, polled):
    if polled.wait(GRACE_SECONDS):
        return
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while not polled.is_set():
        context = context_ref()
        if context is None or context.closed:
            return
        del context
        if not poller.poll(100):
            continue
        context = context_ref()
        if context is None or polled.is_set():
            return
        try:
            collect(context)
        except RuntimeError:
            if context.closed:
                return
            traceback.print_exc()
        except Exception:   # a callback raised: report it, keep delivering
            traceback.print_exc()
        del context
