"""The core never imports napari or Qt, and the package's __init__ stays light for napari's start-up.

The core is every module that pkgutil finds in the package, less the few that exist to talk to napari or Qt, so a
new module is checked without anyone adding it to a list.
"""

import json
import pkgutil
import subprocess
import sys

import napari_octfluid

# The only modules allowed to import napari or Qt, each with the reason; a package here exempts its submodules.
GUI_MODULES = {
    "napari_octfluid._qt": "the dock widgets: Qt and napari by design",
    "napari_octfluid._reader": "the npe2 reader reports unreadable files through napari's notifications",
}
FORBIDDEN = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "magicgui", "vispy", "superqt")

# Imports the modules named on the command line one after another and prints, for each module that brought a
# forbidden library in, which ones. One interpreter for all of them: a fresh one per module would load torch
# fifty times over, and the first module that pulls a GUI library in is still the one named.
IMPORT_AND_REPORT = """
import importlib, json, sys
forbidden = set(sys.argv[1].split(","))
def loaded():
    return {name.split(".")[0] for name in sys.modules} & forbidden
brought_in = {}
for module in sys.argv[2:]:
    before = loaded()
    importlib.import_module(module)
    if loaded() - before:
        brought_in[module] = sorted(loaded() - before)
print(json.dumps(brought_in))
"""


def _is_gui(module: str) -> bool:
    return any(module == gui or module.startswith(gui + ".") for gui in GUI_MODULES)


def _runs_when_imported(module: str) -> bool:
    # a __main__ module is a program (``python -m``): importing it runs it; it only calls its package, checked here
    return module.rsplit(".", 1)[-1] == "__main__"


def _raise(package: str) -> None:
    # walk_packages skips a package that fails to import unless told otherwise; a skipped package is unchecked
    raise ImportError(f"cannot import {package} to walk it")


def _package_modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(napari_octfluid.__path__, "napari_octfluid.", onerror=_raise)]


def _imported_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in out.split()}


def test_the_walk_reaches_nested_modules_and_every_exemption_exists():
    modules = _package_modules()
    assert any(name.count(".") >= 2 for name in modules), modules  # subpackages are walked, not only the top
    assert set(GUI_MODULES) <= set(modules), "an exempt module is gone: drop it from GUI_MODULES"


def test_core_imports_no_gui():
    core = [
        "napari_octfluid",
        *(name for name in _package_modules() if not _is_gui(name) and not _runs_when_imported(name)),
    ]
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_AND_REPORT, ",".join(FORBIDDEN), *core], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    brought_in = json.loads(result.stdout.splitlines()[-1])
    assert brought_in == {}, f"core modules that import a GUI library: {brought_in}"


def test_package_init_imports_no_heavy_library():
    loaded = _imported_after("import napari_octfluid")
    assert not loaded & {"torch", "numpy", "tifffile", *FORBIDDEN}
