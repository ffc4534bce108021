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

During the warm-up itself, automatic collections are paused (:class:`CollectionPause`). Its imports make objects by
the hundred thousand, and every so often a full collection fell due in the warm-up thread: one C call that holds the
interpreter lock throughout, so napari's interface thread could run no Python for its length. Measured on the 2-core
CPU with the warm-up's imports in a thread and the main thread waking every 2 ms: seven such pauses of 33-246 ms
(1.05 s of collections in all), none over 30 ms with collections paused. The warm-up makes few reference cycles
(module and class objects live as long as the session anyway), and they are frozen with the rest when it ends.
"""

from __future__ import annotations

import gc
import threading

_holders = 0  # panels alive that froze the objects made before them
_pause_lock = threading.Lock()
_pauses = 0  # collection pauses running now
_enabled_before = True  # whether automatic collections ran before the first of them


class CollectionPause:
    """Automatic garbage collections off from :meth:`start` to :meth:`end`, from any thread. Both are idempotent, so
    every path out of a warm-up may call ``end``; pauses of several panels nest, and collections come back (if they
    were on before the first) when the last one ends."""

    def __init__(self) -> None:
        self._running = False

    def start(self) -> None:
        global _pauses, _enabled_before
        with _pause_lock:
            if self._running:
                return
            self._running = True
            if _pauses == 0:
                _enabled_before = gc.isenabled()
                gc.disable()
            _pauses += 1

    def end(self, *_) -> None:
        global _pauses
        with _pause_lock:
            if not self._running:
                return
            self._running = False
            _pauses -= 1
            if _pauses == 0 and _enabled_before:
                gc.enable()


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
