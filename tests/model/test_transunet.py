"""The TransUNet: the paper's configuration, any B-scan size at native resolution, more classes by config."""

import pytest
import torch

from napari_octfluid.model import MODEL_CONFIGS, TransUNet, TransUNetConfig, count_parameters


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
