"""The TransUNet: the paper's configuration, any B-scan size at native resolution, more classes by config."""

import pytest
import torch

from napari_octfluid.model import MODEL_CONFIGS, TransUNet, TransUNetConfig, count_parameters
from napari_octfluid.model.transunet import PixelShuffleUpsample


def test_paper_config_follows_table_2():
    config = MODEL_CONFIGS["paper"]
    assert len(config.filter_num) == 5  # "filter number 5": five encoder levels
    assert (config.stack_num_down, config.stack_num_up) == (2, 2)
    assert (config.num_transformer, config.num_heads, config.num_mlp, config.embed_dim) == (2, 2, 384, 96)
    model = TransUNet(config)
    assert model.bottleneck.blocks.layers[0].activation_relu_or_gelu == 2  # torch's code for GELU
    assert 1e6 < count_parameters(model) < 5e6


@pytest.mark.parametrize("height, width", [(496, 512), (496, 768), (496, 1024), (1024, 512), (885, 512), (37, 50)])
def test_any_bscan_size_gives_logits_at_native_size(height, width):
    model = TransUNet(MODEL_CONFIGS["tiny"]).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 1, height, width))
    assert logits.shape == (1, 2, height, width)


def test_more_classes_by_config_only():
    config = TransUNetConfig(**{**MODEL_CONFIGS["tiny"].__dict__, "num_classes": 4})
    assert TransUNet(config)(torch.randn(2, 1, 64, 96)).shape == (2, 4, 64, 96)


def test_config_round_trips_through_a_plain_dict():
    config = MODEL_CONFIGS["paper"]
    assert TransUNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model settings"):
        TransUNetConfig.from_dict({**config.to_dict(), "dropout": 0.1})


def test_position_embedding_is_learned_and_interpolated():
    model = TransUNet(MODEL_CONFIGS["tiny"])
    assert model.bottleneck.position.requires_grad
    model(torch.randn(1, 1, 96, 200)).sum().backward()  # a token grid other than the stored one
    assert model.bottleneck.position.grad.abs().sum() > 0


# --- issue 22: the upsamplers are a 1x1 convolution + pixel shuffle, the same map as the transposed convolutions


def transposed_convolution_model(config: TransUNetConfig) -> TransUNet:
    """The TransUNet as octfluid built it before issue 22: ``nn.ConvTranspose2d(k=2, stride=2)`` upsamplers."""
    model = TransUNet(config)
    filters = config.filter_num
    model.upsample = torch.nn.ModuleList(
        torch.nn.ConvTranspose2d(filters[i + 1], filters[i], 2, stride=2) for i in reversed(range(len(filters) - 1))
    )
    return model


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("in_channels, out_channels", [(256, 128), (16, 4), (3, 5)])
def test_the_upsampler_is_the_transposed_convolution(in_channels, out_channels, dtype, tolerance):
    torch.manual_seed(0)
    transposed = torch.nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2).to(dtype)
    if dtype == torch.float64:  # float32 sums in another order differ by rounding, which grows with the values
        torch.nn.init.normal_(transposed.bias)  # a bias as large as the weights' sums: its repetition is checked
    upsampler = PixelShuffleUpsample(in_channels, out_channels).to(dtype)
    upsampler.load_state_dict(transposed.state_dict())  # same names and shapes: old weights load as they are
    x = torch.randn(2, in_channels, 5, 7, dtype=dtype, requires_grad=True)
    expected = transposed(x)
    torch.testing.assert_close(upsampler(x), expected, atol=tolerance, rtol=tolerance)
    with torch.no_grad():
        torch.testing.assert_close(upsampler.as_convolution()(x), expected, atol=tolerance, rtol=tolerance)
    # fine-tuning sees the same function of the same parameters: the same gradients
    grad_output = torch.randn_like(expected)
    expected_grads = torch.autograd.grad(expected, [x, transposed.weight, transposed.bias], grad_output)
    grads = torch.autograd.grad(upsampler(x), [x, upsampler.weight, upsampler.bias], grad_output)
    for grad, expected_grad in zip(grads, expected_grads):
        torch.testing.assert_close(grad, expected_grad, atol=10 * tolerance, rtol=10 * tolerance)


def test_weights_keep_the_transposed_convolution_layout_in_both_directions():
    """Names and shapes as before: checkpoints of older octfluid versions load, and older versions read new ones."""
    config = MODEL_CONFIGS["tiny"]
    model, before = TransUNet(config).eval(), transposed_convolution_model(config).eval()
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in before.state_dict().items()}
    x = torch.randn(2, 1, 70, 90)
    model.load_state_dict(before.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model(x), before(x), atol=1e-5, rtol=1e-5)
    before.load_state_dict(TransUNet(config).state_dict())


def test_a_seeded_upsampler_starts_from_the_transposed_convolutions_weights():
    """The same random numbers drawn for the same weights: a seeded training run starts where it did before."""
    torch.manual_seed(5)
    transposed = torch.nn.ConvTranspose2d(16, 8, 2, stride=2)
    after_transposed = torch.random.get_rng_state()
    torch.manual_seed(5)
    upsampler = PixelShuffleUpsample(16, 8)
    assert torch.equal(upsampler.weight, transposed.weight) and torch.equal(upsampler.bias, transposed.bias)
    assert torch.equal(torch.random.get_rng_state(), after_transposed)
