"""The review priority octfluid uses (napari_octfluid.priority) on hand-made masks with hand-computed values."""

import numpy as np

from napari_octfluid.priority import mask_disagreement, mirrored_disagreement


def test_mask_disagreement_by_hand():
    a = np.zeros((3, 4, 4), np.uint8)
    b = np.zeros_like(a)
    a[1, :2, :2] = 1  # 4 pixels
    b[1, :2, :1] = 1  # 2 of them: Dice 2*2/(4+2) = 2/3
    b[2, 0, 0] = 1  # only in the other mask: Dice 0
    dice_error, differing = mask_disagreement(a, b)
    np.testing.assert_allclose(dice_error, [0.0, 1 / 3, 1.0])  # B-scan 0: neither has fluid, no doubt
    np.testing.assert_array_equal(differing, [0, 2, 1])


def test_the_mirrored_pass_of_a_mirror_symmetric_model_agrees_with_the_mask(tiny_checkpoint):
    """A scan that is its own mirror image gives the same mask mirrored: no doubt anywhere."""
    from napari_octfluid.events import run_to_end
    from napari_octfluid.inference import predict
    from napari_octfluid.model import load_model

    model, _ = load_model(tiny_checkpoint)
    rng = np.random.default_rng(0)
    half = rng.normal(150, 20, (2, 64, 32)).astype(np.float32)
    half[:, 20:36, 24:] = 40  # the training's "fluid", across the middle
    scan = np.concatenate([half, half[..., ::-1]], axis=-1)
    _, result = run_to_end(predict(scan, model, "cpu"))
    _, (dice_error, differing) = run_to_end(mirrored_disagreement(scan, model, result.labels, "cpu"))
    assert dice_error.shape == (2,) and differing.shape == (2,)
    assert differing.max() <= 0.01 * 64 * 64  # up to float noise at a few pixels
