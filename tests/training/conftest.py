"""Fixtures of the training tests."""

import pytest

from napari_octfluid.training import finetune


@pytest.fixture
def recorded_data(monkeypatch):
    """The fine-tuning job's engine replaced by one that records the training and validation B-scans it is given
    (``(train_data, val_data)`` per call) and returns "trained"."""
    seen = []

    def train(model, train_data, val_data, config, out_dir, loss, replay_data):
        seen.append((train_data, val_data))
        return "trained"
        yield

    monkeypatch.setattr(finetune, "train", train)
    return seen
