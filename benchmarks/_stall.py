"""Measure how long napari's event loop stalls during an action: a QTimer fires every 10 ms and records how late
it fires; the largest lateness is the longest time the interface could not react. For the UI benchmarks.

On a machine shared with other work, a stall also holds the time the operating system gave other processes. So the
meter also records the main thread's own CPU time between ticks (``time.thread_time``): the busiest interval is the
most work the interface thread did without returning to the event loop, what a stall would be on an idle machine
(time spent waiting for another thread's interpreter lock is not in it: the wall-clock stall shows that).

    meter = StallMeter()
    with meter.action("predict"):
        widget.run_button.clicked()  # returns at once; the work runs in a worker
        meter.wait_until(lambda: not widget.runner.busy, timeout_s=600)
    print(meter.table())
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from qtpy.QtCore import QEventLoop, QTimer
from qtpy.QtWidgets import QApplication

INTERVAL_MS = 10


@dataclass
class Stall:
    action: str
    longest_ms: float
    p99_ms: float
    busiest_cpu_ms: float  # the most main-thread CPU time between two ticks
    ticks: int
    seconds: float


class StallMeter:
    def __init__(self) -> None:
        self.results: list[Stall] = []
        self._lateness: list[float] = []
        self._cpu: list[float] = []
        self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._timer = QTimer()
        self._timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        self._lateness.append(max(0.0, (now - self._last) * 1000 - INTERVAL_MS))
        self._cpu.append((cpu - self._last_cpu) * 1000)
        self._last, self._last_cpu = now, cpu

    @contextmanager
    def action(self, name: str):
        """Measure the stalls of the event loop from entering the block to leaving it. A synchronous call made
        inside the block counts as one stall as long as the call (the event loop could not run meanwhile)."""
        QApplication.processEvents()
        self._lateness.clear()
        self._cpu.clear()
        started = self._last = time.perf_counter()
        self._last_cpu = time.thread_time()
        self._timer.start(INTERVAL_MS)
        try:
            yield self
        finally:
            self._tick()  # a synchronous call that blocked until now is one stall
            self._timer.stop()
            late = np.array(self._lateness or [0.0])
            self.results.append(
                Stall(
                    name,
                    float(late.max()),
                    float(np.percentile(late, 99)),
                    max(self._cpu or [0.0]),
                    len(late),
                    time.perf_counter() - started,
                )
            )

    def wait_until(self, done, timeout_s: float = 600.0, poll_ms: int = 50) -> bool:
        """Run the event loop until ``done()`` is true (or the timeout); returns whether it became true."""
        loop = QEventLoop()
        deadline = time.perf_counter() + timeout_s
        poll = QTimer()
        poll.timeout.connect(lambda: (done() or time.perf_counter() > deadline) and loop.quit())
        poll.start(poll_ms)
        if not done():
            loop.exec_() if hasattr(loop, "exec_") else loop.exec()
        poll.stop()
        return bool(done())

    def table(self) -> str:
        header = f"{'action':<34} {'longest stall':>14} {'99th pct':>9} {'busiest CPU':>12} {'ticks':>7} {'took':>8}"
        rows = [header]
        for r in self.results:
            flag = "" if r.longest_ms < 100 else "  <- over 100 ms"
            rows.append(
                f"{r.action:<34} {r.longest_ms:>11.0f} ms {r.p99_ms:>6.0f} ms {r.busiest_cpu_ms:>9.0f} ms {r.ticks:>7} "
                f"{r.seconds:>7.1f}s{flag}"
            )
        return "\n".join(rows)
