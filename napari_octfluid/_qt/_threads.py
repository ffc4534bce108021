"""Leave one CPU core to napari's interface while a widget runs the model in a worker thread.

PyTorch uses every core by default; on a 2-core laptop the Qt event loop then waits for a core and the
interface stalls for up to a second at a time.
"""

from __future__ import annotations

import os

import torch


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
