"""The widgets' job runner: handlers in order and never nested, stop, pause, closing the dock, the thread budget, the
progress display inside the dock."""

import threading

import pytest
import torch
from event_processing_bar import EventProcessingBar
from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_octfluid._qt.jobs import JobRunner, Progress


class Recorder:
    """A widget's handlers, recording what they saw and whether one ran inside another."""

    def __init__(self) -> None:
        self.calls: list = []
        self.status = ""
        self._depth = 0
        self.nested = False

    def _enter(self, *call) -> None:
        self.nested |= self._depth > 0 or EventProcessingBar.any_updating()
        self.calls.append(call)

    def show_status(self, text: str) -> None:
        self.status = text

    def on_event(self, event):
        self._enter("event", event)
        self._depth += 1
        try:
            return Progress(event, f"{event}/3 steps") if isinstance(event, int) else None
        finally:
            self._depth -= 1

    def on_result(self, result) -> None:
        self._enter("result", result)
        self.status = f"Done: {result}"

    def on_error(self, error) -> None:
        self._enter("error", str(error))

    def on_finished(self, stopped: bool) -> None:
        self._enter("finished", stopped)

    def handlers(self) -> dict:
        return {
            "on_event": self.on_event,
            "on_result": self.on_result,
            "on_error": self.on_error,
            "on_finished": self.on_finished,
        }


@pytest.fixture
def owner(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


def counting(steps: int = 3, result: str = "42"):
    for step in range(1, steps + 1):
        yield step
    return result


def held_after_the_first_step(release: threading.Event, steps: int, result: str):
    """Like :func:`counting`, but waits for ``release`` after its first step."""
    yield 1
    release.wait(30)
    yield from range(2, steps + 1)
    return result


def run_recorded(owner, job, args=(), total: int = 3, description: str = "") -> tuple[JobRunner, Recorder]:
    """Start ``job`` with a :class:`Recorder`'s handlers, as a widget does."""
    recorder = Recorder()
    runner = JobRunner(owner, recorder.show_status, progress_bar=EventProcessingBar)
    runner.start(job, args, total=total, description=description, **recorder.handlers())
    return runner, recorder


def test_a_progress_bar_that_processes_events_cannot_put_stale_progress_after_the_result(owner, qtbot):
    """napari's progress bar processes events in its update: the job's result and end were handled inside the
    handler of the last progress event, which then wrote '3/3 steps' over 'Done'."""
    EventProcessingBar.instances.clear()
    runner, recorder = run_recorded(owner, counting, (3,), description="counting")
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    bar = EventProcessingBar.instances[-1]
    assert bar.processed_with_the_end_queued and bar.closed and bar.n == 3
    assert recorder.status == "Done: 42"
    assert recorder.calls == [("event", 1), ("event", 2), ("event", 3), ("result", "42"), ("finished", False)]
    assert not recorder.nested


def test_the_job_runs_with_the_threads_asked_for_and_the_main_thread_keeps_its_own(owner, qtbot):
    torch.set_num_threads(2)  # put back by conftest
    seen = []

    def job():
        seen.append(torch.get_num_threads())
        yield 1
        return None

    runner = JobRunner(owner, lambda text: None, progress_bar=EventProcessingBar)
    runner.start(job, (), total=1, description="", on_result=lambda r: None, on_error=lambda e: None, threads=1)
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert seen == [1] and torch.get_num_threads() == 2


def stepping(steps: list[threading.Event]):
    """Yields 1, 2, ... each after its event is set."""
    for done, step in enumerate(steps, start=1):
        step.wait(30)
        yield done
    return "done"


def test_the_progress_display_in_the_dock_advances_and_hides_at_the_end(owner, qtbot):
    recorder = Recorder()
    runner = JobRunner(owner)  # without a status line: the display shows the step text
    layout = QVBoxLayout(owner)
    layout.addWidget(runner.progress_widget.native)  # as a widget places it in its layout
    owner.show()
    display = runner.progress_widget
    assert display.native.isHidden()  # hidden while no job runs
    steps = [threading.Event() for _ in range(3)]
    runner.start(stepping, (steps,), total=3, description="counting", **recorder.handlers())
    assert not display.native.isHidden() and (display.bar.value, display.bar.max) == (0, 3)
    assert display.step.value == "counting"
    for done, step in enumerate(steps[:-1], start=1):
        step.set()
        qtbot.waitUntil(lambda done=done: display.bar.value == done, timeout=30000)
        assert display.step.value == f"{done}/3 steps" and not display.native.isHidden()
    steps[-1].set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert display.native.isHidden() and recorder.calls[-1] == ("finished", False)
    assert (display.bar.value, display.step.value) == (3, "3/3 steps")


def test_a_display_no_widget_placed_never_opens_a_window_of_its_own(owner, qtbot):
    runner = JobRunner(owner, lambda text: None)
    runner.start(counting, (3,), total=3, description="", on_result=lambda r: None, on_error=lambda e: None)
    assert runner.progress_widget.native.isHidden()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert runner.progress_widget.native.isHidden()


def test_a_stopped_job_hides_its_progress(owner, qtbot):
    runner = JobRunner(owner)
    QVBoxLayout(owner).addWidget(runner.progress_widget.native)
    owner.show()
    steps = [threading.Event() for _ in range(3)]
    recorder = Recorder()
    runner.start(stepping, (steps,), total=3, description="", **recorder.handlers())
    steps[0].set()
    qtbot.waitUntil(lambda: runner.progress_widget.bar.value == 1, timeout=30000)
    assert runner.stop()
    for step in steps[1:]:
        step.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert runner.progress_widget.native.isHidden() and runner.progress_widget.bar.value == 1
    assert recorder.calls == [("event", 1), ("finished", True)]


def test_after_a_stop_nothing_reaches_the_widget_but_the_end(owner, qtbot):
    release = threading.Event()
    runner, recorder = run_recorded(owner, held_after_the_first_step, (release, 2, "too late"))
    qtbot.waitUntil(lambda: bool(recorder.calls), timeout=30000)
    assert runner.stop()
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert recorder.calls == [("event", 1), ("finished", True)]
    assert not runner.stop()  # nothing runs any more


def test_pause_and_resume(owner, qtbot):
    release = threading.Event()
    runner, recorder = run_recorded(owner, held_after_the_first_step, (release, 3, "done"))
    assert runner.toggle_pause() and runner.paused
    release.set()
    qtbot.wait(200)
    assert ("event", 3) not in recorder.calls  # paused at the next event
    assert not runner.toggle_pause()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert recorder.calls[-2:] == [("result", "done"), ("finished", False)] and not runner.paused


def test_an_error_is_handed_to_the_widget_then_the_end(owner, qtbot):
    def failing():
        yield 1
        raise RuntimeError("out of luck")

    with qtbot.capture_exceptions() as relayed:  # napari also relays a worker's error to its notifications
        runner, recorder = run_recorded(owner, failing, total=2)
        qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    # a RuntimeError (torch raises many) too: superqt would take it for its own deleted worker and end silently
    assert recorder.calls == [("event", 1), ("error", "out of luck"), ("finished", False)]
    assert all("out of luck" in str(exception[1]) for exception in relayed)


def test_a_second_job_is_refused_while_one_runs(owner, qtbot):
    runner = JobRunner(owner, lambda text: None, progress_bar=EventProcessingBar)
    release = threading.Event()

    def waiting():
        release.wait(30)
        return None
        yield

    runner.start(waiting, (), total=1, description="", on_result=lambda r: None, on_error=lambda e: None)
    with pytest.raises(RuntimeError, match="already running"):
        runner.start(waiting, (), total=1, description="", on_result=lambda r: None, on_error=lambda e: None)
    release.set()
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)


def test_closing_the_dock_stops_the_job_and_no_handler_runs_after(qtbot):
    owner = QWidget()
    release = threading.Event()
    before = torch.get_num_threads()

    def endless():
        step = 0
        while True:
            step += 1
            yield step
            release.wait(30)

    runner, recorder = run_recorded(owner, endless, total=1000)
    qtbot.waitUntil(lambda: bool(recorder.calls), timeout=30000)
    worker = runner.worker
    ended = []
    worker.finished.connect(lambda: ended.append(True))
    owner.deleteLater()  # what napari does to a closed dock
    qtbot.waitUntil(lambda: runner.closed, timeout=30000)
    calls = list(recorder.calls)
    release.set()
    qtbot.waitUntil(lambda: bool(ended) and not runner.busy, timeout=30000)
    assert recorder.calls == calls  # neither later events nor the end reached the deleted widget
    assert torch.get_num_threads() == before


def test_notices_are_shown_by_the_runner_and_not_passed_to_the_widget(owner, qtbot, monkeypatch):
    """Every job's Notice (a smaller batch, damaged B-scans...) becomes one napari warning, shown alike for all
    widgets by the runner."""
    from napari_octfluid._qt import jobs
    from napari_octfluid.events import Notice

    shown, told = [], []
    monkeypatch.setattr(jobs, "show_warning", shown.append)
    monkeypatch.setattr(jobs, "show_info", told.append)

    def with_a_notice():
        yield 1
        yield Notice("Out of memory on cpu: going on with batch size 2.")
        yield Notice("The model agreed with your corrections to Dice 0.95: fine-tuning as set.", warning=False)
        yield 2
        return "done"

    runner, recorder = run_recorded(owner, with_a_notice)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert shown == ["Out of memory on cpu: going on with batch size 2."]
    assert told == ["The model agreed with your corrections to Dice 0.95: fine-tuning as set."]  # news, not a warning
    assert [call for call in recorder.calls if call[0] == "event"] == [("event", 1), ("event", 2)]


def test_a_notice_a_job_repeats_is_shown_once_per_job(owner, qtbot, monkeypatch):
    """Predict runs prediction twice (the mask, then the mirrored pass for the review order): its notices about the
    scan (damaged B-scans, a fitted axial pixel size) came twice. Each distinct message is shown once per job."""
    from napari_octfluid._qt import jobs
    from napari_octfluid.events import Notice

    shown = []
    monkeypatch.setattr(jobs, "show_warning", shown.append)

    def predicting_twice():
        for message in ("2 B-scan(s) hold NaN", "batch size 2", "2 B-scan(s) hold NaN", "batch size 1"):
            yield Notice(message)
        return "done"

    runner, _ = run_recorded(owner, predicting_twice)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert shown == ["2 B-scan(s) hold NaN", "batch size 2", "batch size 1"]
    runner.start(predicting_twice, (), total=1, description="again", on_result=lambda r: None, on_error=print)
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert shown[3:] == ["2 B-scan(s) hold NaN", "batch size 2", "batch size 1"]  # a new job says it again


def test_a_job_that_grows_longer_moves_the_bar_s_end(owner, qtbot):
    """Fine-tuning that adapts runs 300 steps where the bar was started for 100: the bar follows the job's total."""
    runner = JobRunner(owner, lambda text: None)
    maxima = []

    def on_event(step):
        progress = Progress(step, f"step {step}/6", total=6)
        maxima.append(runner.progress_widget.bar.max)
        return progress

    runner.start(
        counting, (6,), total=2, description="", on_event=on_event, on_result=lambda r: None, on_error=lambda e: None
    )
    qtbot.waitUntil(lambda: not runner.busy, timeout=30000)
    assert maxima[0] == 2 and runner.progress_widget.bar.max == 6 and runner.progress_widget.bar.value == 6
