"""The napari viewers of the widget tests."""

import gc

import pytest


@pytest.fixture
def make_napari_viewer(make_napari_viewer):
    """napari's fixture, with the objects octfluid's panel froze after its warm-up (``_qt/gc_freeze.py``) unfrozen
    before napari closes the viewers and looks for leaked ones: a frozen reference cycle is never collected, and the
    panel's own unfreezing waits for Qt to destroy it, which may come after napari's check."""
    yield make_napari_viewer
    gc.unfreeze()
