"""The inference copy (issue 22): the same logits, BatchNorm folded, channels_last, the upsamplers folded into the
decoder's convolutions and ReLU fused, the model itself untouched."""

import numpy as np
import pytest
import torch
from torch import nn

from napari_octfluid.inference import forward, predict, run_to_end
from napari_octfluid.model import MODEL_CONFIGS, TransUNet, fused_for_inference, fusion, is_fused_for_inference
from napari_octfluid.model.fusion import ConvolutionReLU, FoldedUpsampling
from napari_octfluid.model.transunet import PixelShuffleUpsample


def trained_looking(config_name: str, seed: int = 0) -> TransUNet:
    """A model whose BatchNorms hold statistics and affine parameters far from their initial 0 and 1, so that a
    fold that forgot one of them shows."""
    torch.manual_seed(seed)
    model = TransUNet(MODEL_CONFIGS[config_name])
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.2, 3.0)
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.uniform_(module.bias, -0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize("config_name, size", [("tiny", (70, 90)), ("paper", (96, 160))])
def test_the_inference_copy_gives_the_models_logits(config_name, size):
    model = trained_looking(config_name)
    fused = fused_for_inference(model)
    x = torch.rand(2, 1, *size)
    with torch.inference_mode():
        expected, logits = model(x), fused(x)
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=1e-5)
    assert logits.stride(1) >= size[0] * size[1]  # one plane per class, as labels_and_fluid reads fastest


def test_the_copy_is_rearranged_and_the_model_is_not():
    model = trained_looking("tiny")
    state = {key: value.clone() for key, value in model.state_dict().items()}
    fused = fused_for_inference(model)
    assert fused is not model and is_fused_for_inference(fused) and not is_fused_for_inference(model)
    assert not any(isinstance(m, (nn.BatchNorm2d, PixelShuffleUpsample)) for m in fused.modules())
    assert not any(p.requires_grad for p in fused.parameters()) and not fused.training
    convolutions = [m for m in fused.modules() if isinstance(m, nn.Conv2d) and m.weight.shape[1] > 1]
    assert all(m.weight.is_contiguous(memory_format=torch.channels_last) for m in convolutions)
    pointwise = [m for m in fused.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    assert len(pointwise) == 3 and all(m.dilation == (2, 2) for m in pointwise)  # oneDNN's kernel, the same result
    # the 4 upsamplers folded into their level's first convolution; every other 3x3 convolution carries its ReLU
    assert [type(m) for m in fused.upsample] == [FoldedUpsampling] * 4
    assert sum(isinstance(m, ConvolutionReLU) for m in fused.modules()) == 18 - 4
    assert not any(isinstance(m, nn.ReLU) for m in fused.modules())
    # the model keeps its BatchNorm layers (fine-tuning and freeze_batchnorm need them), weights and gradients
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 18
    assert all(torch.equal(state[key], value) for key, value in model.state_dict().items())
    assert all(p.requires_grad for p in model.parameters())
    assert fused_for_inference(fused) is fused  # never rearranged twice


@pytest.mark.parametrize("config_name, size", [("tiny", (70, 90)), ("paper", (64, 96))])
def test_the_copy_gives_the_same_logits_without_onednn_post_ops(monkeypatch, config_name, size):
    """Where torch lacks oneDNN's fused convolutions, the copy runs the same operations one after the other."""
    model = trained_looking(config_name, seed=2)
    x = torch.rand(2, 1, *size)
    with torch.inference_mode():
        fused_logits = fused_for_inference(model)(x)
        monkeypatch.setattr(fusion, "_onednn_post_ops", lambda: False)
        torch.testing.assert_close(fused_for_inference(model)(x), fused_logits, atol=1e-6, rtol=1e-6)
        torch.testing.assert_close(model(x), fused_logits, atol=1e-5, rtol=1e-5)


def upsampling_and_convolution(upsample_bias: float, convolution_bias: float):
    """An upsampler and a 3x3 convolution over [upsampled, skip] with every weight 1, one channel each."""
    upsample = PixelShuffleUpsample(1, 1)
    convolution = nn.Conv2d(2, 1, 3, padding=1)
    with torch.no_grad():
        upsample.weight.fill_(1.0), upsample.bias.fill_(upsample_bias)
        convolution.weight.fill_(1.0), convolution.bias.fill_(convolution_bias)
    return upsample, convolution


@pytest.mark.parametrize(
    "x, upsample_bias, convolution_bias, expected",
    [
        # one pixel upsampled to 2 x 2 pixels of 1 + 1 = 2; each output pixel's 3x3 window holds all four: 8
        ([[1.0]], 1.0, 0.0, [[8, 8], [8, 8]]),
        # upsampled [2, 2, 3, 3] on two rows; the windows cover columns 0-1, 0-2, 1-3, 2-3: 8, 14, 16, 12 (the bias
        # counted only inside the B-scan: the convolution's zero padding is not the upsampler's bias)
        ([[1.0, 2.0]], 1.0, 0.0, [[8, 14, 16, 12], [8, 14, 16, 12]]),
        # the same minus 10, then ReLU
        ([[1.0, 2.0]], 1.0, -10.0, [[0, 4, 6, 2], [0, 4, 6, 2]]),
        # a column: windows over rows 0-1, 0-2, 1-3, 2-3 of [1, 1, 3, 3] with the bias -1 (x = 2, 4)
        ([[2.0], [4.0]], -1.0, 0.0, [[4, 4], [10, 10], [14, 14], [12, 12]]),
    ],
)
def test_a_folded_upsampling_computes_the_levels_first_layers(x, upsample_bias, convolution_bias, expected):
    upsample, convolution = upsampling_and_convolution(upsample_bias, convolution_bias)
    folded = FoldedUpsampling(upsample, convolution)
    low = torch.tensor(x)[None, None]
    skip = torch.zeros(1, 1, 2 * low.shape[2], 2 * low.shape[3])  # the skip channel adds nothing here
    with torch.inference_mode():
        assert folded(low, skip)[0, 0].tolist() == expected
        assert torch.relu(convolution(torch.cat([upsample(low), skip], dim=1)))[0, 0].tolist() == expected


@pytest.mark.parametrize("low_size", [(1, 1), (1, 5), (4, 1), (3, 7), (8, 12)])
def test_a_folded_upsampling_equals_upsample_concatenate_convolve(low_size):
    """Random weights, biases and skips at sizes down to one low-resolution pixel: the edges and corners."""
    torch.manual_seed(3)
    upsample = PixelShuffleUpsample(6, 4)
    convolution = nn.Conv2d(4 + 5, 3, 3, padding=1)
    with torch.no_grad():
        upsample.bias.uniform_(-1, 1)
    x, skip = torch.randn(2, 6, *low_size), torch.randn(2, 5, 2 * low_size[0], 2 * low_size[1])
    with torch.inference_mode():
        expected = torch.relu(convolution(torch.cat([upsample(x), skip], dim=1)))
        torch.testing.assert_close(FoldedUpsampling(upsample, convolution)(x, skip), expected, atol=1e-5, rtol=1e-5)


def test_the_copy_is_kept_until_the_model_changes():
    model = trained_looking("tiny")
    x = torch.rand(1, 1, 64, 64)
    fused = fused_for_inference(model)
    assert fused_for_inference(model) is fused  # made once for the same model, unchanged
    model.decision_threshold = 0.7
    thresholded = fused_for_inference(model)
    assert thresholded is not fused and thresholded.decision_threshold == 0.7 and fused.decision_threshold is None
    with torch.no_grad():
        model.head.bias.add_(1.0)  # an in-place write, as an optimiser step makes
    stepped = fused_for_inference(model)
    model.load_state_dict(trained_looking("tiny", seed=5).state_dict())
    loaded = fused_for_inference(model)
    assert len({id(fused), id(thresholded), id(stepped), id(loaded)}) == 4
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x), atol=1e-5, rtol=1e-5)  # the weights loaded last


def test_nothing_to_fold_gives_the_model_itself():
    training = TransUNet(MODEL_CONFIGS["tiny"]).train()  # BatchNorm uses the batch's statistics
    assert fused_for_inference(training) is training
    other = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2)).eval()  # another network
    assert fused_for_inference(other) is other


def test_making_the_copy_draws_no_random_numbers():
    """Validation during training runs the copy: it must not change the training run's random stream."""
    model = trained_looking("tiny")
    state = torch.random.get_rng_state()
    fused_for_inference(model)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_forward_and_predict_give_the_same_labels_as_the_plain_model(monkeypatch):
    from napari_octfluid import inference

    model = trained_looking("tiny", seed=1)
    model.decision_threshold = 0.5
    rng = np.random.default_rng(0)
    volume = rng.integers(1, 255, (3, 64, 96), dtype=np.uint8)
    normalised = inference.normalize_bscans(volume)
    labels, fluid = forward(model, normalised, torch.device("cpu"))
    assert forward(fused_for_inference(model), normalised, torch.device("cpu"))[0].tolist() == labels.tolist()
    _, result = run_to_end(predict(volume, model, "cpu", batch_size=2))
    monkeypatch.setattr(inference, "fused_for_inference", lambda network: network)  # the plain model, as before
    plain_labels, plain_fluid = forward(model, normalised, torch.device("cpu"))
    _, plain = run_to_end(predict(volume, model, "cpu", batch_size=2))
    np.testing.assert_allclose(fluid, plain_fluid, atol=1e-5)
    np.testing.assert_allclose(result.fluid_probability, plain.fluid_probability, atol=1e-5)
    near_threshold = np.abs(plain_fluid - 0.5) < 1e-5  # where float rounding may decide
    assert np.array_equal(labels[~near_threshold], plain_labels[~near_threshold])
    assert np.array_equal(result.labels[~near_threshold], plain.labels[~near_threshold])
    assert model.encoder[0][1].__class__ is nn.BatchNorm2d  # predict left the model as it was
