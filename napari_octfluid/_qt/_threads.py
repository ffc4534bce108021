"""Leave one CPU core to napari's interface while a widget runs the model in a worker thread.

PyTorch uses every core by default; on a 2-core laptop the Qt event loop then waits for a core and the
interface stalls for up to a second at a time.
"""

from __future__ import annotations

import os

import torch
from napari.qt.threading import thread_worker
from napari.utils import progress


def interface_friendly_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


class ThreadBudget:
    """Lowers torch's thread count while a worker runs and restores it after."""

    def __init__(self) -> None:
        self._saved: int | None = None

    def lower(self) -> None:
        if self._saved is None:
            self._saved = torch.get_num_threads()
            torch.set_num_threads(min(self._saved, interface_friendly_threads()))

    def restore(self) -> None:
        if self._saved is not None:
            torch.set_num_threads(self._saved)
            self._saved = None


class WorkerHost:
    """What the widgets that run a core generator in a worker share: the worker, the thread budget, the progress
    bar, a stop flag, and what happens when napari closes the dock while the worker runs (the worker is asked to
    stop, and events still queued for the deleted Qt widgets are ignored)."""

    def _init_worker_host(self) -> None:
        self.worker = None
        self._threads = ThreadBudget()
        self._stop_requested = False
        self._closed = False
        self._has_result = False
        self._progress = None
        self.native.destroyed.connect(self._on_destroyed)

    def _start_worker(self, job, args: tuple, total: int, description: str, on_error) -> None:
        """Run the generator function ``job(*args)`` in a napari ``thread_worker``, with a progress bar of
        ``total`` steps; its events, result, error and end go to ``_on_event``, ``_on_result``, ``on_error`` and
        ``_on_finished`` in the main thread."""
        self._progress = progress(total=total, desc=description)
        worker = thread_worker(job, start_thread=False)(*args)
        worker.yielded.connect(self._on_event)
        worker.returned.connect(self._on_result)
        worker.errored.connect(on_error)
        worker.finished.connect(self._on_finished)
        self.worker, self._has_result = worker, False
        self._threads.lower()
        worker.start()

    def _on_destroyed(self, *_) -> None:
        self._closed = self._stop_requested = True
        if self.worker is not None:
            self.worker.quit()

    def _wants_events(self) -> bool:
        """Whether a progress event from the worker should still show: not after a stop, nor after the result
        (Qt may deliver a last queued progress event after it)."""
        return not (self._stop_requested or self._has_result)

    def _worker_done(self) -> bool:
        """Common end of a run (call it from ``finished``); True if the run was stopped before its end."""
        stopped, self._stop_requested = self._stop_requested, False
        self.worker = None
        self._threads.restore()
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        return stopped
