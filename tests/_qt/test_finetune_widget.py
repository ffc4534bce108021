"""The Fine-tune widget trains from Labels layers in a worker, updates its plot, and can stop or revert."""

import numpy as np
import pytest
import torch

from napari_octfluid._qt.finetune import CHECKPOINT, comparison_summary, parse_bscan_list
from napari_octfluid.model import load_model


def test_bscan_lists():
    assert parse_bscan_list("0, 3, 5-7", 10) == [0, 3, 5, 6, 7]
    with pytest.raises(ValueError, match="outside"):
        parse_bscan_list("9-12", 10)
    with pytest.raises(ValueError, match="cannot read"):
        parse_bscan_list("three", 10)


@pytest.mark.parametrize("used_for, before, after, expected", [
    (["trained on", "validation", "validation"], [0.2, 0.5, 0.7], [0.9, 0.7, 0.8],
     "mean Dice 0.600 before, 0.750 after; the new model is better there: keep it."),
    (["trained on", "validation", "not used"], [0.2, 0.8, 1.0], [0.9, 0.7, 0.6],
     "mean Dice 0.800 before, 0.700 after; the new model is not better there: Revert is advised"),
    (["trained on", "trained on", "not used"], [0.2, 0.4, 1.0], [0.9, 0.7, 0.6],
     "Trained B-scans: mean Dice 0.300 before, 0.800 after. That says how well it learned them, not how"),
])
def test_the_comparison_judges_the_new_model_on_held_out_b_scans_only(used_for, before, after, expected):
    assert expected in comparison_summary(np.array(used_for), np.array(before), np.array(after))


@pytest.fixture
def viewer_with_blobs(make_napari_viewer, tiny_checkpoint):
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (4, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((4, 64, 64), np.uint8)
    labels[:3, 20:36, 24:44] = 1
    images[labels == 1] = 40
    viewer = make_napari_viewer()
    viewer.add_image(images, name="scan")
    viewer.add_labels(labels, name="scan fluid")
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Fine-tune")
    widget.start_from.value = CHECKPOINT
    widget.checkpoint.value = tiny_checkpoint
    widget.device.value = "cpu"
    widget.epochs.value, widget.steps_per_epoch.value, widget.batch_size.value = 2, 3, 2
    return viewer, widget


def test_finetunes_from_layers_and_updates_plot_and_metrics(viewer_with_blobs, qtbot, tmp_path, tiny_checkpoint):
    viewer, widget = viewer_with_blobs
    assert widget.summary.value == "3 B-scans to train on: 0, 1, 2"
    widget.val_bscans.value = "2"
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert widget.result is not None and len(widget.result.history) == 2
    assert len(widget.plot.steps) == 6 and set(widget.plot.loss_series) == {"total", "dice", "focal_tversky", "wbce"}
    assert len(widget.plot.metric_series["val Dice"]) == 2
    painted = widget.plot.paints
    image = widget.plot.grab().toImage()  # paints the plot as Qt does on screen
    assert widget.plot.paints == painted + 1
    colours = {image.pixelColor(x, y).name() for x in range(image.width()) for y in range(image.height())}
    assert "#1f77b4" in colours and "#2ca02c" in colours  # the total loss and the validation Dice were drawn
    assert widget.status.value.startswith("Done: training Dice")

    widget.predict_with_new_model()
    assert "scan fluid (fine-tuned)" in viewer.layers
    rows = widget.compare.data.to_list()
    assert [row[1] for row in rows] == ["trained on", "trained on", "validation", "not used"]
    assert widget.status.value.startswith("Validation B-scans (not trained on): mean Dice ")
    widget.save_path.value = tmp_path / "mine.pt"
    widget.keep()
    kept, payload = load_model(tmp_path / "mine.pt")
    assert payload["fine_tuned_from"] == str(tiny_checkpoint)
    widget.revert()
    assert "scan fluid (fine-tuned)" not in viewer.layers


def test_stop_leaves_the_starting_model_untouched(viewer_with_blobs, qtbot, tiny_checkpoint):
    _, widget = viewer_with_blobs
    before = tiny_checkpoint.read_bytes()
    widget.epochs.value, widget.steps_per_epoch.value = 50, 50
    widget.start()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 1 or widget.worker is None, timeout=60000)
    widget.toggle_pause()
    assert widget.pause_button.text == "Resume"
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert widget.result is None
    assert widget.status.value == "Stopped: the model you started from is unchanged."
    assert tiny_checkpoint.read_bytes() == before
    original, _ = load_model(tiny_checkpoint)
    assert all(torch.equal(a, b) for a, b in zip(original.state_dict().values(),
                                                  widget._base_model.state_dict().values()))


def test_loss_choices_come_from_the_registry(viewer_with_blobs):
    from napari_octfluid.losses import LOSSES

    _, widget = viewer_with_blobs
    assert list(widget.loss.choices) == list(LOSSES)
    widget.loss.value = "focal"
    assert not any(box.visible for box in widget.weights.values())
    assert widget.build_loss().name == "focal"


def test_closing_napari_during_training_stops_the_worker(viewer_with_blobs, qtbot):
    viewer, widget = viewer_with_blobs
    widget.epochs.value, widget.steps_per_epoch.value = 100, 100
    widget.start()
    worker = widget.worker
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 1, timeout=60000)
    finished = []
    worker.finished.connect(lambda: finished.append(True))
    viewer.close()  # napari cancels the tasks its thread_worker registered: our generator stops at the next step
    qtbot.waitUntil(lambda: bool(finished), timeout=30000)
    assert widget.result is None  # nothing half-trained is offered as a result


def test_a_second_training_is_refused_while_one_runs(viewer_with_blobs, qtbot):
    _, widget = viewer_with_blobs
    widget.epochs.value, widget.steps_per_epoch.value = 100, 100
    widget.start()
    first = widget.worker
    widget.start()  # e.g. a second click, or a script
    assert widget.worker is first  # refused: one worker, never two interleaved
    widget.stop()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)


def test_replay_feeds_the_shipped_crops_to_the_engine(monkeypatch):
    from napari_octfluid._qt import finetune
    from napari_octfluid.events import run_to_end
    from napari_octfluid.training.data import BscanSet

    crops = BscanSet([np.zeros((8, 8), np.float32)], [np.ones((8, 8), np.uint8)], ["umn_00"])
    seen = []

    def fake_train(model, train_data, val_data, config, out_dir, loss, replay_data):
        seen.append(replay_data)
        return "trained"
        yield

    monkeypatch.setattr(finetune, "load_replay_crops", lambda: crops)
    monkeypatch.setattr(finetune, "train", fake_train)
    volume = (np.full((2, 40, 40), 100, np.uint8), np.ones((2, 40, 40), np.uint8), "scan")
    for replay in (True, False):
        run_to_end(finetune.prepare_and_train(None, volume, [0], [1], None, None, replay))
    assert seen == [crops, None]


def test_the_adapt_and_change_kept_choices_reach_the_engine(viewer_with_blobs, monkeypatch):
    _, widget = viewer_with_blobs
    assert widget.trainable.value == "decoder" and widget.trainable.native.currentText() == "decoder only"
    assert widget.change_kept.value == 0.5
    widget.trainable.value = "all"
    widget.change_kept.value = 1.0
    started = []
    # on the class: magicgui's Container cannot delete an instance attribute when monkeypatch undoes it
    monkeypatch.setattr(type(widget), "_start_worker", lambda self, function, arguments, *rest:
                        started.append(arguments))
    widget.start()
    widget.trainable.value, widget.change_kept.value = "decoder", 0.3
    widget.start()
    assert [(arguments[4].trainable, arguments[4].change_kept) for arguments in started] == [("all", 1.0),
                                                                                           ("decoder", 0.3)]
    assert started[0][4].freeze_batchnorm
