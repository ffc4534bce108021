"""A progress bar that processes Qt events on every update, as napari's does in its activity dock
(``QtLabeledProgressBar.setValue`` calls ``QApplication.processEvents()``). At its last step it first waits until
the worker threads have ended, so that the job's result and end are surely queued when it processes events: the
nesting that made the widget tests fail now and then on a loaded machine, made certain instead of likely."""

from __future__ import annotations

from qtpy.QtCore import QThreadPool
from qtpy.QtWidgets import QApplication


class EventProcessingBar:
    instances: list["EventProcessingBar"] = []

    def __init__(self, total: int, desc: str = "") -> None:
        self.total, self.desc, self.n = total, desc, 0
        self.closed = False
        self.processed_with_the_end_queued = False
        self.updating = False  # True while it processes events
        self.instances.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.n >= self.total:
            assert QThreadPool.globalInstance().waitForDone(60000), "the worker did not end"
            self.processed_with_the_end_queued = True
        self.updating = True
        try:
            QApplication.processEvents()
        finally:
            self.updating = False

    @classmethod
    def any_updating(cls) -> bool:
        return any(bar.updating for bar in cls.instances)

    def close(self) -> None:
        self.closed = True
