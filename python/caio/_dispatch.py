"""Callbacks for a context nobody polls: the original thread_aio and python_aio
ran them on their own threads, and programs written for them rely on it.

One daemon thread per process serves every such context, for as long as the
process lives: a thread that starts and exits next to a fork() can leave
the child's allocator or thread registry locked (AddressSanitizer does).
"""
import os
import select
import threading
import time
import traceback
import weakref

# A caller that polls (fileno, poll, process_events) does so right after
# submitting: give it this long to show up before delivering on our own.
GRACE_SECONDS = 0.05


class _Dispatcher:
    def __init__(self):
        self.lock = threading.Lock()
        self.watched = {}       # id(context) -> (ref, fd, collect, polled, not_before)
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.thread = None

    def watch(self, context, fd, collect, polled):
        entry = (weakref.ref(context), fd, collect, polled, time.monotonic() + GRACE_SECONDS)
        with self.lock:
            self.watched[id(context)] = entry
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="caio-callbacks",
                                               daemon=True)
                self.thread.start()
        try:
            os.write(self.wake_w, b"\0")
        except BlockingIOError:
            pass

    def ready_entries(self):
        """Drop finished entries; return the due ones and the next deadline."""
        now = time.monotonic()
        due, next_deadline = [], None
        with self.lock:
            for key, (ref, fd, collect, polled, not_before) in list(self.watched.items()):
                context = ref()
                if context is None or context.closed or polled.is_set():
                    del self.watched[key]
                elif not_before > now:
                    next_deadline = min(next_deadline or not_before, not_before)
                else:
                    due.append((ref, fd, collect, polled))
        return due, next_deadline

    def run(self):
        while True:
            due, next_deadline = self.ready_entries()
            poller = select.poll()
            poller.register(self.wake_r, select.POLLIN)
            by_fd = {}
            for entry in due:
                poller.register(entry[1], select.POLLIN)
                by_fd[entry[1]] = entry
            timeout = None
            if next_deadline is not None:
                timeout = max(0, int((next_deadline - time.monotonic()) * 1000) + 1)
            for fd, _ in poller.poll(timeout):
                if fd == self.wake_r:
                    try:
                        os.read(self.wake_r, 4096)
                    except BlockingIOError:
                        pass
                elif fd in by_fd:
                    deliver(*by_fd[fd])


def deliver(ref, fd, collect, polled):
    context = ref()
    if context is None or context.closed or polled.is_set():
        return
    try:
        collect(context)
    except RuntimeError:
        if not context.closed:
            traceback.print_exc()
    except Exception:   # a callback raised: report it, keep delivering
        traceback.print_exc()


_dispatcher = None
_dispatcher_lock = threading.Lock()


def start(context, fd, collect, polled):
    """Deliver context's completions with collect(context) on the process's
    callback thread, after a grace period, until polled (a threading.Event)
    is set or the context is closed or gone."""
    global _dispatcher
    with _dispatcher_lock:
        if _dispatcher is None:
            _dispatcher = _Dispatcher()
        dispatcher = _dispatcher
    dispatcher.watch(context, fd, collect, polled)
    return dispatcher


def _after_fork_in_child():
    # The thread stayed in the parent; inherited contexts are unusable anyway.
    global _dispatcher, _dispatcher_lock
    _dispatcher = None
    _dispatcher_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
