"""A child process that dies with its parent: ``serve``'s worker never outlives the web process.

Two mechanisms, because neither is enough alone:

- Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``: the kernel sends SIGTERM when the parent dies, even
  by SIGKILL. The child's SIGTERM handler then lets the command in flight finish, as for any stop.
- a watch thread that compares ``os.getppid()`` with the expected parent every second: it covers
  other systems, and a parent that died before ``prctl`` was called (the child then already has a
  new parent, so the kernel will never signal it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading

from bridge.logging import get_logger

log = get_logger("bridge.process.lifeline")

PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 1.0


def request_death_signal(signum: int = signal.SIGTERM) -> bool:
    """Ask Linux to send ``signum`` to this process when its parent dies; ``False`` if unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, ctypes.c_ulong(signum), 0, 0, 0) != 0:
        log.warning("lifeline.prctl_failed", errno=ctypes.get_errno())
        return False
    return True


def die_with_parent(parent_pid: int, stop: threading.Event) -> threading.Thread:
    """Set ``stop`` when ``parent_pid`` is no longer this process's parent (and ask for SIGTERM).

    Returns the watch thread (a daemon), already started.
    """
    request_death_signal(signal.SIGTERM)

    def watch() -> None:
        while not stop.is_set():
            if os.getppid() != parent_pid:
                log.warning("worker.parent_gone", parent_pid=parent_pid)
                stop.set()
                return
            stop.wait(WATCH_SECONDS)

    thread = threading.Thread(target=watch, name="bridge-lifeline", daemon=True)
    thread.start()
    return thread
