"""Running the long jobs (prediction, training), which are generators of typed progress events that return
their result: the command line and tests drive them here, the widgets through napari's thread_worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Generator


@dataclass(frozen=True)
class Notice:
    """Something the user should know while a long job runs (a smaller batch or a move to the CPU after running
    out of memory, damaged B-scans): one type for prediction and training, shown by the CLI and the widgets.
    ``warning`` False: news, not a problem (what fine-tuning decided), shown as information."""

    message: str
    warning: bool = True


def drive(generator: Generator, on_event: Callable[[Any], None] | None = None) -> Any:
    """Run ``generator`` to its end, handing each event to ``on_event``; return the generator's result."""
    while True:
        try:
            event = next(generator)
        except StopIteration as stop:
            return stop.value
        if on_event is not None:
            on_event(event)


def run_to_end(generator: Generator) -> tuple[list, Any]:
    """The events and the result of ``generator``."""
    events: list = []
    result = drive(generator, events.append)
    return events, result
