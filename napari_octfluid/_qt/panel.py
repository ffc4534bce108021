"""All octfluid tools in one dock, as tabs: what `napari -w octfluid` and `octfluid view` open."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QTabWidget

from .finetune import FinetuneWidget
from .predict import PredictWidget
from .quantify import QuantifyWidget
from .review import ReviewWidget

TOOLS = {"Predict": PredictWidget, "Review": ReviewWidget, "Fine-tune": FinetuneWidget, "Quantify": QuantifyWidget}


class OctfluidPanel(QTabWidget):
    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self.tools = {name: tool(napari_viewer) for name, tool in TOOLS.items()}
        for name, tool in self.tools.items():
            tool.native.layout().setAlignment(Qt.AlignmentFlag.AlignTop)  # rows stay together, not spread out
            self.addTab(tool.native, name)
        self.currentChanged.connect(self._on_tab_shown)

    def _on_tab_shown(self, index: int) -> None:
        """A tab shown again brings its summary up to date (e.g. Fine-tune's list of reviewed B-scans)."""
        tool = list(self.tools.values())[index]
        if hasattr(tool, "refresh"):
            tool.refresh()

    def reset_choices(self, *_) -> None:
        """napari calls this when layers are added or removed, so every tab's layer lists stay current."""
        for tool in self.tools.values():
            tool.reset_choices()
