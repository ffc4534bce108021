"""One runner for the widgets' long jobs: a core generator in napari's ``thread_worker``, with a progress display
inside the widget's dock, pause, resume and stop, and the widget's handlers called in the main thread, one at a time,
in order.

A widget owns a :class:`JobRunner` (composition), places its :attr:`JobRunner.progress_widget` in its own layout
(next to its Cancel or Stop button), and hands it a generator function and its handlers. The handlers never run
nested in one another: napari's activity-dock progress bar, which the runner used before it had its own, processes
Qt events while it updates (``QtLabeledProgressBar.setValue`` calls ``QApplication.processEvents()``); that
delivered the job's result and end inside the handler of its last progress event, and the handler then wrote its
stale progress text ("11/11 B-scans") over the final message. Signals that arrive while a handler runs are queued and
handled after it returns, whatever bar is shown.
"""

from __future__ import annotations

import functools
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Generator

from magicgui.widgets import Container, Label, ProgressBar
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_info, show_warning
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QSizePolicy, QWidget

from ..events import Notice
from ._threads import with_threads

# A second progress display for every runner, called as ``progress(total=..., desc=...)`` and then ``update(n)`` and
# ``close()``: napari's ``napari.utils.progress`` puts one in its activity dock. None: the dock's own display alone
# (napari's repeated it away from the widget, and processed Qt events at each update). Tests set one that processes
# events as napari's does, to check that the handlers still never nest.
progress: Callable[..., Any] | None = None


class ProgressDisplay(Container):
    """A job's progress inside the widget's dock: a bar of the job's steps and the text of the last step (the
    widget's :class:`Progress` text), hidden while no job runs."""

    def __init__(self) -> None:
        self.bar = ProgressBar(value=0, min=0, max=1)
        self.step = Label(value="")
        # a long step text wraps instead of widening the dock (see the Fine-tune widget's status line)
        self.step.native.setWordWrap(True)
        self.step.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        super().__init__(widgets=[self.bar, self.step], labels=False, visible=False)
        self.margins = (0, 0, 0, 0)

    def begin(self, total: int, description: str) -> None:
        self.bar.max, self.bar.value = max(1, total), 0
        self.step.value = description
        if self.native.parent() is not None:  # placed in a dock: shown there (alone, it would open a window)
            self.show()

    def advance(self, done: int, text: str) -> None:
        self.bar.value = min(max(0, done), self.bar.max)
        self.step.value = text

    def end(self) -> None:
        self.hide()


@dataclass(frozen=True)
class Progress:
    """What a widget's event handler returns for an event that advances the job: steps done so far (of the
    ``total`` given to :meth:`JobRunner.start`) and the status line to show."""

    done: int
    text: str
    total: int | None = None  # the job's length, where it changed since it started (fine-tuning that adapts)


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
    """Runs one generator job at a time for the widget ``owner``, its progress shown in :attr:`progress_widget`
    (which the widget places in its layout) and, where ``show_status`` is given, each step's text also written there
    (the widget's status line).

    The widget's handlers, all called in the main thread:

    - ``on_event(event)`` for each event the job yields, until the job is stopped, has returned, or the dock is
      closed; it returns a :class:`Progress` to advance the progress display, or None;
    - ``on_result(result)`` with the job's return value, unless the user stopped the job (it finished before it saw
      the stop: the user asked for nothing to change) or closed the dock;
    - ``on_error(error)`` if the job raised, unless the dock is closed;
    - ``on_finished(stopped)`` last, unless the dock is closed; ``stopped`` says whether the user stopped it.

    The job runs with torch's threads chosen exactly as ``octfluid predict`` chooses them
    (``devices.choose_threads``), in the worker thread and at its start (``_threads.with_threads``).

    ``progress_bar``: a second progress display for this runner's jobs, in place of the module's ``progress``.
    """

    def __init__(
        self,
        owner: QWidget,
        show_status: Callable[[str], None] | None = None,
        progress_bar: Callable[..., Any] | None = None,
    ) -> None:
        self.worker = None
        self.paused = False
        self.stop_requested = False
        self.closed = False
        self.progress_widget = ProgressDisplay()
        self._show_status = show_status
        self._progress_bar = progress_bar  # None: the module's ``progress``, looked up at each start
        self._progress = None
        self._handlers: _Handlers | None = None
        self._has_result = False
        self._notices_shown: set[str] = set()  # this job's, each shown once (see _handle_event)
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
        """Run the generator function ``job(*args)`` in a worker thread, with progress of ``total`` steps and
        ``threads`` torch threads (None: as the command line chooses, from the cores free when the job starts)."""
        if self.worker is not None:
            raise RuntimeError("a job is already running: stop it or wait for its end first")
        self.progress_widget.begin(total, description)
        # a second bar first: napari's processes events as it appears, which must not deliver anything of this job
        second_bar = self._progress_bar or progress
        self._progress = None if second_bar is None else second_bar(total=total, desc=description)
        job = with_threads(job, threads)
        worker = thread_worker(_guarded(job), start_thread=False)(*args)
        worker.yielded.connect(lambda event: self._deliver(worker, self._handle_event, event))
        worker.returned.connect(lambda result: self._deliver(worker, self._handle_result, result))
        worker.errored.connect(lambda error: self._deliver(worker, self._handle_error, error))
        worker.finished.connect(lambda: self._deliver(worker, self._handle_finished))
        self.worker, self._handlers = worker, _Handlers(on_event, on_result, on_error, on_finished)
        self.paused = self.stop_requested = self._has_result = False
        self._notices_shown = set()
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
            # once each: a job that predicts twice (Predict's mirrored pass) repeats prediction's notices
            if event.message not in self._notices_shown:
                self._notices_shown.add(event.message)
                (show_warning if event.warning else show_info)(event.message)
            return
        if self._handlers.on_event is None:
            return
        advanced = self._handlers.on_event(event)
        if advanced is None:
            return
        if advanced.total is not None:
            self.progress_widget.bar.max = max(1, advanced.total)
            if self._progress is not None:
                self._progress.total = advanced.total
        self.progress_widget.advance(advanced.done, advanced.text)
        if self._show_status is not None:
            self._show_status(advanced.text)  # before a second bar: its update may process events
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
        if not self.closed:  # a closed dock's display is deleted with it
            self.progress_widget.end()
        if self._progress is not None:
            bar, self._progress = self._progress, None
            bar.close()
        if not self.closed and handlers.on_finished is not None:
            handlers.on_finished(stopped)

    def _on_owner_destroyed(self, *_) -> None:
        """napari closed the dock: ask the job to stop; its remaining signals must not reach the deleted widgets."""
        self.closed = True
        self.stop()
