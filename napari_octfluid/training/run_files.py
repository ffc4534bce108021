"""The files a training run writes into its folder, and when they count as finished."""

from __future__ import annotations

from pathlib import Path

from ..model import load_model, update_checkpoint

# the checkpoint field that says the run which wrote it ended and stored its result; absent in older checkpoints
RUN_FINISHED = "finished"
RUN_FILES = ("best.pt", "last.pt")  # what a run writes into its out_dir


def mark_run_finished(*paths: str | Path | None) -> None:
    """Store ``finished: True`` in the checkpoints a run wrote, once everything the run produces (the calibrated
    threshold included) is in them; until then they say ``finished: False``, so that a run killed on the way
    (even during calibration) leaves checkpoints that do not pass for final ones."""
    for path in paths:
        if path is not None:
            update_checkpoint(path, load_model(path)[0], **{RUN_FINISHED: True})
