"""Python's full garbage collections kept short while octfluid's panel is open (issue 20).

A full collection visits every object the collector tracks: in a napari session with the panel's imports done
(torch, scipy, monai, the tools) well over a million, about 330 ms on a 2-core laptop-class CPU, taken on whichever
thread allocates when it falls due. It fell due on napari's interface thread as a prediction's mask was added, and
was the largest single stall of Predict. Once the panel's warm-up has ended, the objects made so far (napari's
start-up, the imported modules, the panel itself), which live as long as the session, are moved out of the
collector's sight with ``gc.freeze()`` (Python's documentation: "Freeze all the objects tracked by gc; move them to a
permanent generation and ignore them in all the future collections"); a full collection then visits only what was
made since. Measured with ``benchmarks/bench_ui_stall.py --only predict``, two runs each: Predict's busiest
main-thread CPU 374-397 ms without, 172-198 ms with.

Frozen objects are still freed when their last reference goes; only reference cycles among them wait. So the freeze
lasts while a panel lives: when the last one is destroyed (its viewer closed) everything is unfrozen, and what the
session left behind can be collected.
"""

from __future__ import annotations

import gc

_holders = 0  # panels alive that froze the objects made before them


def freeze_while_alive(widget) -> None:
    """Freeze every object tracked so far, until ``widget`` (and any other widget frozen for) is destroyed. Call it
    on the interface thread."""
    global _holders
    gc.freeze()
    _holders += 1
    widget.destroyed.connect(_released)  # a module function: the connection keeps no reference to the widget


def _released(*_) -> None:
    global _holders
    _holders = max(_holders - 1, 0)
    if _holders == 0:
        gc.unfreeze()
