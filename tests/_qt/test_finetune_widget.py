"""The Fine-tune widget trains from Labels layers in a worker, updates its plot, and can stop or revert."""

import threading
from types import SimpleNamespace

import numpy as np
import pytest
from event_processing_bar import EventProcessingBar

from napari_octfluid._qt import finetune, jobs
from napari_octfluid._qt.finetune import CHECKPOINT
from napari_octfluid._qt.jobs import JobRunner
from napari_octfluid.model import load_model
from napari_octfluid.training.finetune import Comparison, ComparisonProgress


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
    assert widget.summary.value == "2 B-scans to train on: 0, 1; 1 to validate on"  # not trained on: not listed
    widget.bscans.value, widget.val_bscans.value = "", "0, 1, 2"  # every labelled B-scan kept for validation
    assert widget.summary.value.startswith("No B-scans to train on yet: correct or accept some in Review")
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

    widget.predict_with_new_model()  # two predictions: in the worker, the click returns at once
    assert widget.worker is not None and "scan fluid (fine-tuned)" not in viewer.layers
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert "scan fluid (fine-tuned)" in viewer.layers
    rows = widget.compare.data.to_list()  # the rows that judge the model first
    assert [row[:2] for row in rows] == [[2, "validation"], [0, "trained on"], [1, "trained on"], [3, "not used"]]
    assert rows[3][2:] == ["\u2013", "\u2013"]  # unreviewed: its labels are the old model's own prediction
    assert widget.status.value.startswith("Validation B-scans (not trained on): mean Dice ")
    widget.save_path.value = tmp_path / "mine.pt"
    widget.keep()  # saved in the worker
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert widget.status.value == "Saved mine.pt; choose it in Predict to use it."
    kept, payload = load_model(tmp_path / "mine.pt")
    assert payload["fine_tuned_from"] == str(tiny_checkpoint)
    widget.revert()
    assert "scan fluid (fine-tuned)" not in viewer.layers
    assert (tmp_path / "mine.pt").is_file() and "discarded" not in widget.status.value
    assert "mine.pt, stays" in widget.status.value and not widget.predict_button.enabled


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
    assert widget._base_model is None and not widget.predict_button.enabled  # nothing half-trained is offered


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


def test_the_adapt_and_change_kept_choices_reach_the_engine(viewer_with_blobs, monkeypatch):
    _, widget = viewer_with_blobs
    assert widget.trainable.value == "decoder" and widget.trainable.native.currentText() == "decoder only"
    assert widget.change_kept.value == 0.5
    widget.trainable.value = "all"
    widget.change_kept.value = 1.0
    started = []
    monkeypatch.setattr(JobRunner, "start", lambda self, job, arguments, **handlers: started.append(arguments))
    widget.start()
    widget.trainable.value, widget.change_kept.value, widget.start_pull.value = "decoder", 0.3, 300.0
    widget.start()
    assert [(arguments[3].trainable, arguments[3].change_kept, arguments[3].start_pull) for arguments in started] == [
        ("all", 1.0, 0.0),  # the preset lets the weights go
        ("decoder", 0.3, 300.0),
    ]
    assert started[0][3].freeze_batchnorm


def test_revert_without_keep_discards_the_model(viewer_with_blobs):
    _, widget = viewer_with_blobs
    widget.result = SimpleNamespace(model=None)
    widget.revert()
    assert widget.result is None and widget.status.value == "Reverted: the fine-tuned model was discarded."


def offer_a_fine_tuned_model(widget):
    """What a finished training leaves behind, without the training: the comparison's inputs."""
    widget.result, widget._base_model = SimpleNamespace(model="tuned"), "base"
    widget._trained_on, widget._validated_on = [0, 1], [2]


def test_the_comparison_runs_in_a_worker_and_the_interface_stays_free(viewer_with_blobs, qtbot, monkeypatch):
    viewer, widget = viewer_with_blobs
    offer_a_fine_tuned_model(widget)
    release, threads = threading.Event(), []

    def slow_comparison(
        images, reference, base_model, tuned_model, used_for, device, batch_size=None, axial_spacing_mm=None
    ):
        threads.append(threading.current_thread())
        yield ComparisonProgress("starting", 4, 8)
        assert release.wait(30), "the test never released the comparison"
        labels = np.zeros(images.shape, np.uint8)
        labels[:, 10:20, 10:20] = 1
        nan = float("nan")
        return Comparison(used_for, np.array([0.5, 0.6, 0.7, nan]), np.array([0.8, 0.9, 0.6, nan]), labels)

    monkeypatch.setattr(finetune, "compare_models", slow_comparison)
    widget.predict_with_new_model()  # would never return if the comparison ran on the GUI thread
    assert widget.worker is not None and not widget.keep_button.enabled and not widget.train_button.enabled
    qtbot.waitUntil(lambda: widget.status.value == "Predicting with the starting model: 4/8 B-scans", timeout=30000)
    widget.start()  # refused while the comparison runs
    assert widget.status.value.startswith("Predicting")
    release.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert threads and threads[0] is not threading.main_thread()
    np.testing.assert_array_equal(viewer.layers["scan fluid (fine-tuned)"].data[:, 15, 15], [1, 1, 1, 1])
    # magicgui reads "0.500" back as a number under PyQt5 and as the text under PyQt6: compared as shown
    assert [[f"{v:.3f}" if isinstance(v, float) else v for v in row[2:]] for row in widget.compare.data.to_list()] == [
        ["0.700", "0.600"],  # the validation B-scan first
        ["0.500", "0.800"],
        ["0.600", "0.900"],
        ["\u2013", "\u2013"],
    ]
    assert widget.status.value.startswith("Validation B-scans (not trained on): mean Dice 0.700 before, 0.600")
    assert widget.keep_button.enabled and widget.train_button.enabled


def test_a_stopped_comparison_changes_nothing(viewer_with_blobs, qtbot, monkeypatch):
    viewer, widget = viewer_with_blobs
    offer_a_fine_tuned_model(widget)
    release = threading.Event()

    def slow_comparison(
        images, reference, base_model, tuned_model, used_for, device, batch_size=None, axial_spacing_mm=None
    ):
        yield ComparisonProgress("starting", 1, 8)
        release.wait(30)
        yield ComparisonProgress("starting", 2, 8)
        return Comparison(used_for, np.zeros(4), np.ones(4), np.ones(images.shape, np.uint8))

    monkeypatch.setattr(finetune, "compare_models", slow_comparison)
    widget.predict_with_new_model()
    widget.stop()
    release.set()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert "scan fluid (fine-tuned)" not in viewer.layers and widget.compare.data.to_list() == []
    assert widget.status.value == "Comparison stopped: nothing was changed."
    assert widget.predict_button.enabled  # the fine-tuned model is still offered


def test_the_final_message_wins_over_a_progress_bar_that_processes_events(viewer_with_blobs, qtbot, monkeypatch):
    """napari's progress bar processes events as it updates: the result of the training, queued by then, was handled
    inside the last step's event, whose stale 'step 6/6' then replaced 'Done: ...'."""
    _, widget = viewer_with_blobs
    monkeypatch.setattr(jobs, "progress", EventProcessingBar)
    EventProcessingBar.instances.clear()
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert EventProcessingBar.instances[-1].processed_with_the_end_queued
    assert widget.status.value.startswith("Done: training Dice")
    assert len(widget.plot.steps) == 6


def test_the_expert_settings_wait_folded_and_the_plan_is_said_in_words(viewer_with_blobs):
    _, widget = viewer_with_blobs
    assert not widget.advanced.isExpanded()
    folded_settings = (widget.epochs, widget.learning_rate, widget.loss, widget.device, widget.change_kept)
    assert all(widget.advanced.isAncestorOf(setting.native) for setting in folded_settings)
    assert not widget.advanced.isAncestorOf(widget.train_button.native)
    # the fixture set 2 epochs of 3 steps of batch 2, from a checkpoint; the preset keeps half of the change
    assert widget.plan.value.startswith(
        "Teaches your checkpoint (decoder only) from your corrected B-scans: 6 steps of 2 crops, keeping 50% of the "
        "change"
    )
    widget.trainable.value, widget.change_kept.value, widget.epochs.value = "all", 1.0, 4
    assert (
        "(whole network)" in widget.plan.value
        and "12 steps" in widget.plan.value
        and "keeping 100%" in widget.plan.value
    )
    assert "held near the start (pull 100)" in widget.plan.value  # what adapting does, the pull included
    assert "change, held near the start (pull 300)" not in widget.plan.value
    widget.start_pull.value = 300.0
    assert "keeping 100% of the change, held near the start (pull 300)" in widget.plan.value
    assert widget.advanced.isAncestorOf(widget.start_pull.native)


def test_the_curves_open_when_a_training_starts(viewer_with_blobs, monkeypatch):
    _, widget = viewer_with_blobs
    assert not widget.curves.isExpanded()
    monkeypatch.setattr(JobRunner, "start", lambda self, job, arguments, **handlers: None)
    widget.start()
    assert widget.curves.isExpanded() and widget.curves.isAncestorOf(widget.plot)


def test_the_fine_tuned_mask_has_its_own_colour(viewer_with_blobs, qtbot, monkeypatch):
    from napari_octfluid.colours import FINETUNED, ROLE_KEY

    viewer, widget = viewer_with_blobs
    offer_a_fine_tuned_model(widget)

    def comparison(
        images, reference, base_model, tuned_model, used_for, device, batch_size=None, axial_spacing_mm=None
    ):
        yield ComparisonProgress("starting", 1, 8)
        return Comparison(used_for, np.zeros(4), np.ones(4), np.ones(images.shape, np.uint8))

    monkeypatch.setattr(finetune, "compare_models", comparison)
    for _ in range(2):  # a new layer, then the same layer given new data
        widget.predict_with_new_model()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
        layer = viewer.layers["scan fluid (fine-tuned)"]
        assert layer.metadata[ROLE_KEY] == FINETUNED
        sky_blue = [0x56 / 255, 0xB4 / 255, 0xE9 / 255, 1.0]  # FINETUNED's #56B4E9, not the model's vermillion
        np.testing.assert_allclose(layer.colormap.map(1), sky_blue, atol=0.01)


def test_the_starting_model_is_loaded_in_the_worker(viewer_with_blobs, qtbot, monkeypatch, tiny_checkpoint):
    """Issue 20: loading and checking the starting checkpoint stalled napari 0.7-2.6 s when Train was pressed."""
    import napari_octfluid.training.finetune as core

    _, widget = viewer_with_blobs
    threads = []

    def recording_load_model(path):
        threads.append(threading.current_thread())
        return load_model(path)

    monkeypatch.setattr(core, "load_model", recording_load_model)
    widget.start()
    # the click returned with the job in a worker; the worker may already have loaded the model (a race the
    # assertion once lost on a loaded machine), but never on the main thread
    assert widget.worker is not None and threading.main_thread() not in threads
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert threads and threads[0] is not threading.main_thread()
    assert widget.result is not None and widget._base_path == tiny_checkpoint
    assert widget._trained_on == [0, 1, 2] and widget.predict_button.enabled


@pytest.mark.parametrize(
    "checkpoint, expected",
    [
        ("missing.pt", "No weights to start from"),  # no such file
        ("junk.pt", "junk.pt: not a"),  # not a checkpoint: load_model's own message
    ],
)
def test_a_refused_checkpoint_comes_back_from_the_worker(
    viewer_with_blobs, qtbot, monkeypatch, tmp_path, checkpoint, expected
):
    _, widget = viewer_with_blobs
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    widget.checkpoint.value = tmp_path / checkpoint
    errors = []
    monkeypatch.setattr(finetune, "show_error", errors.append)
    with qtbot.capture_exceptions():  # napari also relays a worker's error to its notifications
        widget.start()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert len(errors) == 1 and errors[0] == widget.status.value and expected in errors[0]
    assert not errors[0].startswith("Training failed")  # said as a checkpoint problem, not a crash of the run
    assert widget.result is None and widget.train_button.enabled and not widget.keep_button.enabled


def test_nothing_to_train_on_is_said_after_the_worker_read_the_labels(viewer_with_blobs, qtbot, monkeypatch):
    viewer, widget = viewer_with_blobs
    viewer.layers["scan fluid"].data = np.zeros((4, 64, 64), np.uint8)  # an expert's mask with no fluid
    errors = []
    monkeypatch.setattr(finetune, "show_error", errors.append)
    with qtbot.capture_exceptions():  # napari also relays a worker's error to its notifications
        widget.start()
        qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert errors == ["No labelled B-scans to train on."] and widget.status.value == errors[0]


def test_the_adapt_choice_reaches_the_job_and_the_plan(viewer_with_blobs, monkeypatch):
    _, widget = viewer_with_blobs
    assert widget.adapt.value and widget.advanced.isAncestorOf(widget.adapt.native)
    assert (
        "the whole network and all of the change, held near the start (pull 100), if it disagrees with them; at the "
        "axial pixel size they fit, where the file gives none" in widget.plan.value
    )
    started = []
    monkeypatch.setattr(JobRunner, "start", lambda self, job, arguments, **handlers: started.append(arguments))
    widget.start()
    widget.adapt.value = False
    widget.start()
    assert [arguments[5] for arguments in started] == [True, False]  # load_and_finetune's adapt
    assert "disagrees" not in widget.plan.value


def test_a_scan_without_a_spacing_gets_the_axial_pixel_size_its_corrections_fit(viewer_with_blobs, qtbot, monkeypatch):
    """The scan layer gives no spacing; the starting model agrees far better with the corrections at half its axial
    pixel size (patched: the tiny model knows no anatomy), so the run trains there with the preset, and the status
    says the new model takes such scans at that size (training/axial_fit.py)."""
    from napari_octfluid.axial import SPECTRALIS_AXIAL_SPACING_MM
    from napari_octfluid.metrics import Confusion
    from napari_octfluid.training import finetune as core

    half = round(SPECTRALIS_AXIAL_SPACING_MM / 2, 7)

    def agreement_counts(model, images, labels, chosen, device="auto", axial_spacing_mm=None):
        yield from ()
        hits = 900.0 if axial_spacing_mm == half else 500.0  # Dice 0.9 there, 0.5 elsewhere, of 1000 pixels
        return Confusion(np.float64(hits), np.float64(1000 - hits), np.float64(1000 - hits))

    monkeypatch.setattr(core, "agreement_counts", agreement_counts)
    _, widget = viewer_with_blobs
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert "takes scans without an axial pixel size as 1.94 um per row" in widget.status.value
    assert widget.result.model.fitted_axial_spacing_mm == pytest.approx(half)
    assert "went further" not in widget.status.value  # the preset as set: the fit did the adapting
    assert "keep it under a name for this device" in widget.status.value


def test_keep_by_name_puts_the_model_in_the_folder_for_the_scans_device(
    viewer_with_blobs, qtbot, tmp_path, monkeypatch
):
    from napari_octfluid.model_library import MODELS_ENV, kept_models

    monkeypatch.setenv(MODELS_ENV, str(tmp_path / "models"))
    viewer, widget = viewer_with_blobs
    images = viewer.layers["scan"].data
    viewer.add_image(images, name="cirrus scan", metadata={"octfluid": {"device": "Carl Zeiss Meditec Cirrus"}})
    widget.scan.value = viewer.layers["cirrus scan"]  # choosing the scan fills the device its file records
    assert widget.for_device.value == "Carl Zeiss Meditec Cirrus"
    widget.start()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120000)
    assert "agreed with your corrections to Dice" in widget.status.value
    widget.keep_name.value = "../outside"
    widget.keep()  # refused before any work: not a name for a file in the folder
    assert widget.worker is None and kept_models() == []
    widget.keep_name.value = "Clinic A Cirrus"
    widget.keep()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    [kept] = kept_models()
    assert (kept.name, kept.device) == ("Clinic A Cirrus", "Carl Zeiss Meditec Cirrus")
    assert widget.status.value == "Kept as 'Clinic A Cirrus': Predict offers it for scans of Carl Zeiss Meditec Cirrus."

    # Keep again under the name of a model kept before (here: once this one is reverted): asked, never silent
    before = kept.path.read_bytes()
    widget._saved_to = None  # as after another run
    asked = []
    monkeypatch.setattr(type(widget), "confirm_replace", lambda self, target, name: asked.append(name) or False)
    widget.keep()
    assert asked == ["Clinic A Cirrus"] and widget.worker is None and kept.path.read_bytes() == before
    assert widget.status.value == f"Kept nothing: {kept.path.name} stays as it was; choose another name."


def test_fine_tuning_starts_from_the_model_that_predicted_the_labels(make_napari_viewer, tiny_checkpoint):
    """After predicting with a model kept for a clinic, Fine-tune started from the shipped weights: Keep under the
    clinic's name then replaced its model with one that never learned from it."""
    from napari_octfluid._qt.finetune import SHIPPED
    from napari_octfluid.weights import default_weights_path

    viewer = make_napari_viewer()
    viewer.add_image(np.zeros((2, 64, 64), np.uint8), name="scan")
    kept = viewer.add_labels(np.zeros((2, 64, 64), np.uint8), name="kept fluid")
    kept.metadata["octfluid"] = {"model": str(tiny_checkpoint)}
    shipped = viewer.add_labels(np.zeros((2, 64, 64), np.uint8), name="shipped fluid")
    shipped.metadata["octfluid"] = {"model": str(default_weights_path())}
    _, widget = viewer.window.add_plugin_dock_widget("octfluid", "Fine-tune")
    widget.labels_layer.value = kept
    assert widget.start_from.value == CHECKPOINT and widget._starting_weights() == tiny_checkpoint
    widget.labels_layer.value = shipped
    assert widget.start_from.value == SHIPPED


def test_a_step_that_ends_after_pause_says_paused(viewer_with_blobs):
    """The step in flight when Pause was pressed ended after it, and its line replaced "Paused." while only the
    button said so."""
    from napari_octfluid.training.engine import StepEnd

    _, widget = viewer_with_blobs
    step = StepEnd(7, 100, 1, 0.8, {}, 1e-4, 20.0, 66.0)
    assert widget._on_event(step).text == "step 7/100, loss 0.8000, 1.1 min left"
    widget.jobs.paused = True
    assert widget._on_event(step).text == "Paused after step 7/100."
    widget.jobs.paused = False
