"""The widgets' torch threads: chosen exactly as the command line chooses them (``devices.choose_threads``), in the
worker thread that runs the job and when it starts.

The widgets used to leave one core to napari's interface. On a 2-core machine that halved the model's threads, and
the Predict widget took 2.2 times ``octfluid predict``'s time on the same scan (``benchmarks/bench_gui_predict.py``).
The core bought little: predicting a 25-B-scan volume with one thread or two, the longest stalls of the event loop
came from the main thread's own work (loading the weights, adding the layers: 0.3-1.2 s, profiled), and its 99th
percentile stayed at 6-27 ms with either count (``benchmarks/bench_ui_stall.py``). The choice is made in the
worker: it samples the cores' load for a tenth of a second, which on the main thread would be a stall.
"""

from __future__ import annotations

import functools
import threading
from typing import Callable, Generator

from ..devices import choose_threads


def with_threads(job: Callable[..., Generator], requested: int | None = None) -> Callable[..., Generator]:
    """``job`` (a generator function) run with ``choose_threads(requested)`` torch threads (``requested``: the
    widget's setting, None for the command line's default) in the worker thread that runs it, and the worker's count
    put back after. With OpenMP (torch's CPU builds) the count belongs to each thread: one set in the main thread
    never reaches a worker that napari's thread pool reuses, which keeps the count of its first job."""

    @functools.wraps(job)  # napari names the task after the function
    def run(*args) -> Generator:
        import torch  # here, not at the top: the widgets' modules load at napari's start, torch takes seconds

        before, worker = torch.get_num_threads(), threading.get_ident()
        torch.set_num_threads(choose_threads(requested))
        try:
            return (yield from job(*args))
        finally:
            # a generator abandoned by a closed dock may be finalised in another thread (the garbage collector's,
            # often the main one): the count put back there would be the worker's, not that thread's own
            if threading.get_ident() == worker:
                torch.set_num_threads(before)

    return run
