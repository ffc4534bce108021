"""The comparison networks keep the TransUNet's contract: any B-scan size in, logits of that size out."""

import sys

import pytest
import torch

from octfluid_study.baselines import attention_unet, basic_unet
from octfluid_study.study import ARMS, StudySettings, build_network


@pytest.mark.parametrize(
    "make, kwargs", [(basic_unet, {"features": (4, 4, 8, 8, 16, 4)}), (attention_unet, {"channels": (4, 8, 8, 16, 16)})]
)
@pytest.mark.parametrize("height, width", [(37, 50), (64, 96), (1, 17)])
def test_any_bscan_size_gives_logits_of_that_size(make, kwargs, height, width):
    network = make(**kwargs).eval()
    with torch.inference_mode():
        logits = network(torch.randn(2, 1, height, width))
    assert logits.shape == (2, 2, height, width)
    assert network.decision_threshold is None


def test_default_baselines_are_the_transunets_size():
    transunet = sum(p.numel() for p in build_network(ARMS["composite"], StudySettings()).parameters())
    for name in ("basic_unet", "attention_unet"):
        size = sum(p.numel() for p in build_network(ARMS[name], StudySettings()).parameters())
        assert 0.8 < size / transunet < 1.0, name  # 1.95 M and 1.99 M against 2.25 M


def test_swin_unetr_without_einops_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "einops", None)  # importing it now fails, as where it is not installed
    with pytest.raises(RuntimeError, match="pip install einops"):
        build_network(ARMS["swin_unetr"], StudySettings())
