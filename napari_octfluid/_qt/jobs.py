"""One runner for the widgets' long jobs: a core generator in napari's ``thread_worker``, with a progress bar,
pause, resume and stop, and the widget's handlers called in the main thread, one at a time, in order.

A widget owns a :class:`JobRunner` (composition) and hands it a generator function and its handlers. The handlers
never run nested in one another: napari's progress bar processes Qt events while it updates
(``QtLabeledProgressBar.setValue`` calls ``QApplication.processEvents()``), which delivered the job's result and
end inside the handler of its last progress event, and the handler then wrote its stale progress text ("11/11
B-scans") over the final message. Signals that arrive while a handler runs are queued and handled after it returns.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator

from napari.qt.threading import thread_worker
from napari.utils import progress
from napari.utils.notifications import show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QWidget

from ..events import Notice
from ._threads import interface_friendly_threads, with_threads


@dataclass(frozen=True)
class Progress:
    """What a widget's event handler returns for an event that advances the job: steps done so far (of the
    ``total`` given to :meth:`JobRunner.start`) and the status line to show."""

    done: int
    text: str


class _RuntimeErrorOfTheJob(Exception):
    """Carries a ``RuntimeError`` the job raised (torch raises many) past superqt, which takes a ``RuntimeError``
    from a generator for the sign of its own deleted worker and ends without a signal: no error, no end, and the
    widget would wait for ever."""


def _guarded(job: Callable[..., Generator]) -> Callable[..., Generator]:
    @functools.wraps(job)  # napari names the task after the function
    def run(*args) -> Generator:
        try:
            return (yield from job(*args))
        except RuntimeError as error:
            raise _RuntimeErrorOfTheJob(str(error)) from error

    return run


@dataclass(frozen=True)
class _Handlers:
    on_event: Callable[[Any], Progress | None] | None
    on_result: Callable[[Any], None]
    on_error: Callable[[Exception], None]
    on_finished: Callable[[bool], None] | None


class JobRunner:
    """Runs one generator job at a time for the widget ``owner``; ``show_status`` writes the widget's status line.

    The widget's handlers, all called in the main thread:

    - ``on_event(event)`` for each event the job yields, until the job is stopped, has returned, or the dock is
      closed; it returns a :class:`Progress` to advance the bar and the status line, or None;
    - ``on_result(result)`` with the job's return value, unless the user stopped the job (it finished before it saw
      the stop: the user asked for nothing to change) or closed the dock;
    - ``on_error(error)`` if the job raised, unless the dock is closed;
    - ``on_finished(stopped)`` last, unless the dock is closed; ``stopped`` says whether the user stopped it.

    The job runs with torch's thread count chosen as the command line chooses it (``devices.choose_threads``), less
    one core left to the interface, set inside the worker thread (``with_threads``: the count is per thread).
    """

    def __init__(
        self, owner: QWidget, show_status: Callable[[str], None], progress_bar: Callable[..., Any] | None = None
    ) -> None:
        self.worker = None
        self.paused = False
        self.stop_requested = False
        self.closed = False
        self._show_status = show_status
        self._progress_bar = progress_bar  # None: napari's, looked up at each start (tests replace it)
        self._progress = None
        self._handlers: _Handlers | None = None
        self._has_result = False
        self._queue: deque[tuple[Any, Callable, tuple]] = deque()
        self._delivering = False
        owner.destroyed.connect(self._on_owner_destroyed)

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(
        self,
        job: Callable,
        args: tuple,
        *,
        total: int,
        description: str,
        on_result: Callable[[Any], None],
        on_error: Callable[[Exception], None],
        on_event: Callable[[Any], Progress | None] | None = None,
        on_finished: Callable[[bool], None] | None = None,
        threads: int | None = None,
    ) -> None:
        """Run the generator function ``job(*args)`` in a worker thread, with a progress bar of ``total`` steps and
        ``threads`` torch threads (None: the cores free now, less one for the interface)."""
        if self.worker is not None:
            raise RuntimeError("a job is already running: stop it or wait for its end first")
        # the bar first: napari's processes events as it appears, which must not deliver anything of this job
        self._progress = (self._progress_bar or progress)(total=total, desc=description)
        job = with_threads(job, interface_friendly_threads(threads))
        worker = thread_worker(_guarded(job), start_thread=False)(*args)
        worker.yielded.connect(lambda event: self._deliver(worker, self._handle_event, event))
        worker.returned.connect(lambda result: self._deliver(worker, self._handle_result, result))
        worker.errored.connect(lambda error: self._deliver(worker, self._handle_error, error))
        worker.finished.connect(lambda: self._deliver(worker, self._handle_finished))
        self.worker, self._handlers = worker, _Handlers(on_event, on_result, on_error, on_finished)
        self.paused = self.stop_requested = self._has_result = False
        worker.start()

    def toggle_pause(self) -> bool:
        """Pause the job at its next event, or resume it; returns whether it is now paused."""
        if self.worker is None:
            return False
        self.worker.toggle_pause()
        self.paused = not self.paused
        return self.paused

    def stop(self) -> bool:
        """Ask the job to stop at its next event; nothing it returns afterwards reaches the widget. False if no job
        runs."""
        if self.worker is None:
            return False
        if self.paused:
            self.worker.resume()  # a paused generator must run on to see the request to quit
        self.worker.quit()
        self.stop_requested = True
        return True

    # --- the job's signals, in the main thread ------------------------------------------------------------------
    def _deliver(self, worker, handle: Callable, *payload) -> None:
        self._queue.append((worker, handle, payload))
        self._drain()

    def _drain(self) -> None:
        """Handle the queued signals now, or, if a handler is running further up the stack (it processed Qt
        events), after that handler returns: handlers run one at a time, in the order the signals came."""
        if self._delivering:
            return
        self._delivering = True
        try:
            while self._queue:
                sender, handle, payload = self._queue.popleft()
                if sender is self.worker:  # not a former job's
                    handle(*payload)
        finally:
            self._delivering = False
            if self._queue:  # a handler raised: what it left queued still runs, the end of the job above all
                QTimer.singleShot(0, self._drain)

    def _handle_event(self, event) -> None:
        if self.stop_requested or self._has_result or self.closed:
            return
        if isinstance(event, Notice):  # every job's notices are shown alike (a smaller batch, damaged B-scans...)
            show_warning(event.message)
            return
        if self._handlers.on_event is None:
            return
        advanced = self._handlers.on_event(event)
        if advanced is None:
            return
        self._show_status(advanced.text)  # before the bar: its update may process events
        if self._progress is not None:
            self._progress.update(advanced.done - self._progress.n)

    def _handle_result(self, result) -> None:
        self._has_result = True  # any progress event after it must not overwrite what the result shows
        if not (self.stop_requested or self.closed):
            self._handlers.on_result(result)

    def _handle_error(self, error: Exception) -> None:
        self._has_result = True
        if isinstance(error, _RuntimeErrorOfTheJob):
            error = error.__cause__
        if not self.closed:
            self._handlers.on_error(error)

    def _handle_finished(self) -> None:
        stopped, handlers = self.stop_requested, self._handlers
        self.worker, self._handlers = None, None
        self.paused = self.stop_requested = False
        if self._progress is not None:
            bar, self._progress = self._progress, None
            bar.close()
        if not self.closed and handlers.on_finished is not None:
            handlers.on_finished(stopped)

    def _on_owner_destroyed(self, *_) -> None:
        """napari closed the dock: ask the job to stop; its remaining signals must not reach the deleted widgets."""
        self.closed = True
        self.stop()
