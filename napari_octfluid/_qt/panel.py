"""All octfluid tools in one dock, as tabs: what `napari -w octfluid` and `octfluid view` open.

Docking must neither freeze napari nor grow its window past a laptop screen. The tools' modules import torch, monai
and the model (4-10 s on a 2-core CPU, all on napari's interface thread when the panel imported them), so this module
imports none of them: the panel appears at once with a placeholder in each tab, a background thread imports the
tools' modules, and each tool is built in the main thread the first time its tab is shown (Qt widgets are made in
the main thread only). Every tab scrolls (``_sections.scroll_page``), so the dock asks napari for little height.
"""

from __future__ import annotations

import importlib
import threading

from qtpy.QtCore import Qt, QTimer, Signal
from qtpy.QtWidgets import QLabel, QTabWidget

from .._reader_preference import prefer_octfluid_reader
from ._sections import scroll_page
from .gc_freeze import CollectionPause, freeze_while_alive
from .gil_free_preload import preload_torch_libraries
from .napari_warm_up import warm_up_napari

# tab -> (module of this package, class): imported by name, in a background thread, in the order of the tabs
TOOLS = {
    "Predict": ("predict", "PredictWidget"),
    "Review": ("review", "ReviewWidget"),
    "Fine-tune": ("finetune", "FinetuneWidget"),
    "Quantify": ("quantify", "QuantifyWidget"),
}
LOADING = "Loading octfluid's tools..."
WARM_UP_DELAY_MS = 500  # after the dock appears: long enough for napari to lay it out, short beside a user's reading


def _tool_class(name: str):
    module, attribute = TOOLS[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), attribute)


class OctfluidPanel(QTabWidget):
    _imported = Signal(str)  # a tool's module is imported (emitted by the warm-up thread, handled in the main one)
    _warmed_up = Signal()  # the warm-up has ended (emitted by its thread, handled in the main one)

    def __init__(self, napari_viewer) -> None:
        super().__init__()
        self._viewer = napari_viewer
        prefer_octfluid_reader()  # so that File > Open and drag-and-drop bring back corrections and spacing
        self.tools: dict = {}  # the tools built so far, by tab name (``tool(name)`` builds one)
        self.imported: set[str] = set()  # the tools whose modules the warm-up has imported
        for name in TOOLS:
            placeholder = QLabel(LOADING)
            placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.addTab(scroll_page(placeholder), name)
        self.currentChanged.connect(self._on_tab_shown)
        self._imported.connect(self._on_imported)
        # what the session made so far lives as long as it: kept out of full collections' sight (gc_freeze.py)
        self._warmed_up.connect(self._freeze_session_objects)
        # no automatic collection while the warm-up imports (gc_freeze.py): each held the interface for 33-246 ms;
        # ended by the freeze, by the warm-up itself if the panel is gone, or by the panel's destruction
        self._collection_pause = CollectionPause()
        self.destroyed.connect(lambda *_, pause=self._collection_pause: pause.end())
        self.warm_up = threading.Thread(target=self._import_tools, daemon=True, name="octfluid-panel-warm-up")
        # napari lays out the new dock and resizes its canvas first: the imports hold the interpreter in long
        # stretches (loading torch's libraries), which stretched that resize from 0.1 to 0.6 s
        QTimer.singleShot(WARM_UP_DELAY_MS, self.warm_up.start)
        # the scan was fitted to the canvas before the dock took its width: its sides were cut off until Home
        QTimer.singleShot(WARM_UP_DELAY_MS, self._fit_view)

    def _fit_view(self) -> None:
        if len(self._viewer.layers):
            self._viewer.reset_view()

    @property
    def warmed_up(self) -> bool:
        """Whether the warm-up has imported every tool's module and what the first training step imports."""
        return len(self.imported) == len(TOOLS) and not self.warm_up.is_alive()

    def _import_tools(self) -> None:
        """In the warm-up thread: import each tool's module (with torch, the model and the losses), tab by tab,
        then what the first training step imports (torch._dynamo: its stalls come now, not in the Fine-tune tab).
        First napari's own first-layer costs (``napari_warm_up``: opening a scan is likely the user's next step), then
        torch's libraries, loaded without the interpreter lock (``gil_free_preload``)."""
        pause = self._collection_pause
        pause.start()
        handed_over = False  # to the interface thread, which freezes what was made and then ends the pause
        try:
            warm_up_napari()
            preload_torch_libraries()
            for name in TOOLS:
                try:
                    _tool_class(name)
                except Exception:  # noqa: BLE001 - building the tool imports it again and shows the error
                    pass
                if not self._emit("_imported", name):
                    return
            from ..training.finetune import warm_up_training_imports

            warm_up_training_imports()
            handed_over = self._emit("_warmed_up")
        finally:
            if not handed_over:  # the panel was closed, or the warm-up failed: nobody else will end the pause
                pause.end()

    def _emit(self, signal: str, *args) -> bool:
        """Emit one of the panel's signals from the warm-up thread; False if the panel was closed meanwhile."""
        try:
            getattr(self, signal).emit(*args)
        except RuntimeError:  # the panel's Qt object is deleted
            return False
        return True

    def _freeze_session_objects(self) -> None:
        freeze_while_alive(self)
        self._collection_pause.end()

    def _on_imported(self, name: str) -> None:
        self.imported.add(name)
        if self.tabText(self.currentIndex()) == name:
            self.tool(name)

    def tool(self, name: str):
        """The tool of tab ``name`` (e.g. "Fine-tune"), built now if it was not yet (importing its module if the
        warm-up has not: that may take seconds)."""
        if name not in self.tools:
            tool = _tool_class(name)(self._viewer)
            tool.native.layout().setAlignment(Qt.AlignmentFlag.AlignTop)  # rows stay together, not spread out
            # in the dock first: its layer pickers find the viewer through their parents
            self.widget(list(TOOLS).index(name)).setWidget(tool.native)  # replaces (and deletes) the placeholder
            self.tools[name] = tool
            tool.reset_choices()
        return self.tools[name]

    def _on_tab_shown(self, index: int) -> None:
        """A tab shown for the first time is built (once its module is imported: else when it is); a tab shown
        again brings its summary up to date (e.g. Fine-tune's list of reviewed B-scans)."""
        name = self.tabText(index)
        if name not in TOOLS:
            return
        if name in self.tools:
            tool = self.tools[name]
            if hasattr(tool, "refresh"):
                tool.refresh()
        elif name in self.imported:
            self.tool(name)

    def reset_choices(self, *event) -> None:
        """napari calls this when layers are added or removed, so every built tab's layer lists stay current (its
        event passed on: Review follows a new pick at the next event-loop turn)."""
        for tool in self.tools.values():
            tool.reset_choices(*event)
