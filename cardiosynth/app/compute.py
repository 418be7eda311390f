"""One thread for the app's heavy torch work (loading the generators and running them).

Why: Gradio runs handlers in whichever worker thread is free, up to two generations at once. On these
2 cores two generations side by side, each with a 2-thread OpenMP team, oversubscribe the cores (torch
slows several-fold), and every extra thread that runs torch adds an OpenMP team of its own (in isolation a
cine took 1.05 s when one thread did all torch work from loading on, 1.35 s when worker threads took turns).
So loading and generation are submitted to one long-lived thread; handlers wait for the result, and a
second request queues here instead of fighting over the same cores.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

T = TypeVar("T")
THREAD_NAME = "cardiosynth-compute"
_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def _start() -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            import torch

            threads = torch.get_num_threads()  # as set by app.py (--threads), applied to the compute thread
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME,
                                           initializer=torch.set_num_threads, initargs=(threads,))
    return _executor


def on_compute_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn(*args, **kwargs)`` on the compute thread and return its result (exceptions propagate)."""
    if threading.current_thread().name.startswith(THREAD_NAME):
        return fn(*args, **kwargs)
    return _start().submit(fn, *args, **kwargs).result()
