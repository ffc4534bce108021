"""The core never imports napari or Qt, and the package's __init__ stays light for napari's start-up."""

import subprocess
import sys

CORE_MODULES = ["napari_octfluid", "napari_octfluid.io", "napari_octfluid.quantify", "napari_octfluid.overlay",
                "napari_octfluid.weights", "napari_octfluid.cli", "napari_octfluid._layers",
                "napari_octfluid.losses", "napari_octfluid.losses.explore", "napari_octfluid.events",
                "napari_octfluid.inference", "napari_octfluid.model", "napari_octfluid.training.engine",
                "napari_octfluid.training.recipe", "napari_octfluid.evaluation", "napari_octfluid.metrics"]
FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy")


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_core_imports_no_gui():
    loaded = _imported_after("; ".join(f"import {m}" for m in CORE_MODULES))
    assert not loaded & set(FORBIDDEN), loaded & set(FORBIDDEN)


def test_package_init_imports_no_heavy_library():
    loaded = _imported_after("import napari_octfluid")
    assert not loaded & {"torch", "numpy", "tifffile", *FORBIDDEN}
