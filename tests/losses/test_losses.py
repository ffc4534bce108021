"""The loss catalogue: hand-computed values, identities between losses, agreement with MONAI, gradients."""

import io
import math

import pytest
import torch

from napari_octfluid.losses import LOSSES, CompositeLoss, build_loss
from napari_octfluid.losses import _functional as Fn

ALL_NAMES = [
    "dice",
    "jaccard",
    "tversky",
    "focal_tversky",
    "generalized_dice",
    "sensitivity_specificity",
    "exp_log",
    "ce",
    "bce",
    "wbce",
    "focal",
    "label_smoothing",
    "dual_focal",
    "adaptive_dual_focal",
    "composite",
]


def logits_for(fluid_probability, shape):
    """Two-class logits whose softmax gives exactly these fluid probabilities."""
    p = torch.as_tensor(fluid_probability, dtype=torch.float64).reshape(shape)
    return torch.stack([torch.zeros_like(p), torch.log(p / (1 - p))], dim=1)


# One B-scan of 2x2 pixels: fluid probability and the expert's mask.
P = [0.8, 0.3, 0.6, 0.1]
Y = torch.tensor([[[1, 0], [1, 0]]])
# tp = 0.8 + 0.6 = 1.4, fp = 0.3 + 0.1 = 0.4, fn = 0.2 + 0.4 = 0.6; true-class probabilities 0.8, 0.7, 0.6, 0.9
HAND = [
    ("dice", {}, 1 - 2 * 1.4 / (2 * 1.4 + 0.4 + 0.6)),
    ("jaccard", {}, 1 - 1.4 / (1.4 + 0.4 + 0.6)),
    ("tversky", {}, 1 - 1.4 / (1.4 + 0.3 * 0.4 + 0.7 * 0.6)),
    ("focal_tversky", {}, (1 - 1.4 / (1.4 + 0.7 * 0.6 + 0.3 * 0.4)) ** 0.75),  # 0.38322
    # both classes have 2 pixels, so equal weights: 1 - 2 (1.6 + 1.4) / ((2.2 + 2) + (1.8 + 2))
    ("generalized_dice", {}, 1 - 2 * 3.0 / 8.0),
    # squared errors 0.04, 0.09, 0.16, 0.01: 0.05 * (0.2 / 2) + 0.95 * (0.1 / 2)
    ("sensitivity_specificity", {}, 0.0525),
    ("ce", {}, 0.29900116),
    ("bce", {}, 0.29900116),
    ("wbce", {}, 0.29900116),  # w = (4 - 2) / 2 = 1
    ("wbce", {"pos_weight": 3.0}, 0.66598575),
    ("focal", {}, 0.01188256),
    ("label_smoothing", {}, 0.35945468),
    ("dual_focal", {}, 0.15976820),
    ("adaptive_dual_focal", {}, 0.15976820),  # class weights start at 1
    ("exp_log", {"smooth": 1e-9}, 0.74166506),
    ("composite", {}, (1 - 2.8 / 3.8) + 0.38321634 + 0.29900116),
]


@pytest.mark.parametrize("name, kwargs, expected", HAND, ids=[f"{n}{k or ''}" for n, k, _ in HAND])
def test_hand_computed_value(name, kwargs, expected):
    loss = LOSSES[name](**kwargs).double()
    assert float(loss(logits_for(P, (1, 2, 2)), Y)) == pytest.approx(expected, rel=2e-4, abs=1e-6)


def test_registry_holds_every_loss_of_the_seeds():
    assert sorted(LOSSES) == sorted(ALL_NAMES)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_perfect_prediction_scores_lower_than_a_wrong_one(name):
    target = (torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(1)) > 0.7).long()
    sign = target.float() * 2 - 1
    perfect = torch.stack([-6 * sign, 6 * sign], dim=1)
    loss = LOSSES[name]()
    assert float(loss(perfect, target)) < float(loss(-perfect, target))
    assert float(loss(perfect, target)) < float(loss(torch.zeros_like(perfect), target))


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("fill", [0, 1], ids=["all_background", "all_fluid"])
def test_gradients_are_finite_on_single_class_bscans(name, fill):
    logits = torch.randn(2, 2, 8, 8, generator=torch.Generator().manual_seed(0), requires_grad=True)
    value = LOSSES[name]()(logits, torch.full((2, 8, 8), fill))
    value.backward()
    assert value.ndim == 0 and torch.isfinite(value)
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


def random_case(seed=0, classes=2):
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(3, classes, 12, 10, generator=generator, dtype=torch.float64),
        torch.randint(0, classes, (3, 12, 10), generator=generator),
    )


def test_tversky_with_equal_weights_is_dice():
    logits, target = random_case()
    assert float(LOSSES["tversky"](alpha=0.5, beta=0.5)(logits, target)) == pytest.approx(
        float(LOSSES["dice"]()(logits, target)), rel=1e-6
    )  # equal up to the smoothing constants


@pytest.mark.parametrize("alpha", [0.5, 0.7, 0.9])
def test_focal_tversky_with_gamma_one_is_tversky(alpha):
    logits, target = random_case()
    assert float(LOSSES["focal_tversky"](alpha=alpha, gamma=1.0)(logits, target)) == pytest.approx(
        float(LOSSES["tversky"](alpha=1 - alpha, beta=alpha)(logits, target)), rel=1e-6
    )


@pytest.mark.parametrize("alpha", [None, 0.25, 0.6])
def test_focal_with_gamma_zero_is_weighted_cross_entropy(alpha):
    logits, target = random_case()
    class_weights = None if alpha is None else [1 - alpha, alpha]
    assert float(LOSSES["focal"](alpha=alpha, gamma=0.0)(logits, target)) == pytest.approx(
        float(LOSSES["ce"](class_weights=class_weights)(logits, target)), rel=1e-9
    )


def test_dual_focal_gradient_vanishes_at_a_perfect_prediction():
    """The derivative of DFL is zero where P_hat = P, cross-entropy's is not (Hossain, Paplinski & Betts 2019,
    Eq. 14)."""
    onehot = torch.tensor([[[[1.0]], [[0.0]]]])
    probs = onehot.clone().requires_grad_(True)
    Fn.dual_focal_term(probs, onehot).sum().backward()
    assert torch.all(probs.grad == 0)
    probs = onehot.clone().requires_grad_(True)
    (-(onehot * torch.log(probs.clamp_min(1e-7))).sum()).backward()
    assert probs.grad.abs().sum() > 0


def test_binary_focal_matches_seed_001_eq_9():
    p, y, alpha, gamma = 0.3, 1, 0.25, 2.0
    eq9 = -alpha * (1 - p) ** gamma * y * math.log(p) - (1 - alpha) * (1 - p) ** gamma * (1 - y) * math.log(1 - p)
    assert float(LOSSES["focal"]()(logits_for([p], (1, 1, 1)), torch.tensor([[[y]]]))) == pytest.approx(eq9)
    p, y = 0.3, 0  # for background Eq. 9 reads (1 - alpha) p^gamma log(1 - p): the true class's (1 - p_true)
    eq9 = -(1 - alpha) * p**gamma * math.log(1 - p)
    assert float(LOSSES["focal"]()(logits_for([p], (1, 1, 1)), torch.tensor([[[y]]]))) == pytest.approx(eq9)


class TestAgreementWithMonai:
    monai = pytest.importorskip("monai.losses")

    def test_dice(self):
        logits, target = random_case(3)
        reference = self.monai.DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True)
        assert float(LOSSES["dice"]()(logits, target)) == pytest.approx(
            float(reference(logits, target.unsqueeze(1))), rel=1e-9
        )

    def test_tversky(self):
        logits, target = random_case(4)
        reference = self.monai.TverskyLoss(
            include_background=False, to_onehot_y=True, softmax=True, batch=True, alpha=0.3, beta=0.7
        )
        assert float(LOSSES["tversky"]()(logits, target)) == pytest.approx(
            float(reference(logits, target.unsqueeze(1))), rel=1e-9
        )

    def test_generalized_dice(self):
        logits, target = random_case(5, classes=3)
        reference = self.monai.GeneralizedDiceLoss(to_onehot_y=True, softmax=True, batch=True)
        assert float(LOSSES["generalized_dice"]()(logits, target)) == pytest.approx(
            float(reference(logits, target.unsqueeze(1))), rel=1e-9
        )

    def test_focal(self):
        logits, target = random_case(6)
        reference = self.monai.FocalLoss(to_onehot_y=True, use_softmax=True, gamma=2.0, alpha=0.25)
        # MONAI averages over the class channels as well; ours is per pixel, as in Hossain, Paplinski & Betts
        # 2019, Eq. 6
        assert float(LOSSES["focal"]()(logits, target)) == pytest.approx(
            2 * float(reference(logits, target.unsqueeze(1))), rel=1e-6
        )


@pytest.mark.parametrize("name", ["ce", "bce", "wbce", "focal", "dual_focal", "dice", "tversky", "focal_tversky"])
def test_ignored_pixels_do_not_count(name):
    logits, target = random_case(7)
    padded_logits = torch.cat([logits, torch.randn(3, 2, 12, 4, dtype=logits.dtype)], dim=3)
    padded_target = torch.cat([target, torch.full((3, 12, 4), 255)], dim=2)
    assert float(LOSSES[name](ignore_index=255)(padded_logits, padded_target)) == pytest.approx(
        float(LOSSES[name]()(logits, target)), rel=1e-9
    )


def test_pixel_weight_map_scales_pixels():
    logits, target = random_case(8)
    weight = torch.ones(target.shape, dtype=torch.float64)
    assert float(LOSSES["ce"]()(logits, target, 2 * weight)) == pytest.approx(2 * float(LOSSES["ce"]()(logits, target)))


def test_adaptive_class_weights_learn_and_survive_a_checkpoint():
    loss = LOSSES["adaptive_dual_focal"]()
    logits, target = random_case(9)
    logits = logits.float().requires_grad_(True)
    optimiser = torch.optim.Adam([logits, *loss.parameters()], lr=0.1)
    before = loss.class_weights.detach().clone()
    loss(logits, target).backward()
    optimiser.step()
    assert not torch.equal(before, loss.class_weights.detach())
    assert list(loss.learnable_parameters()) == ["class_weights"]
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    restored = LOSSES["adaptive_dual_focal"]()
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(restored.class_weights, loss.class_weights)


def test_composite_reports_weighted_terms_that_sum_to_the_total():
    logits, target = random_case(10)
    loss = CompositeLoss.from_spec("0.5*dice + 2*focal_tversky + wbce")
    total = float(loss(logits, target))
    terms = loss.terms()
    assert list(terms) == ["dice", "focal_tversky", "wbce"]
    assert sum(terms.values()) == pytest.approx(total)
    assert terms["dice"] == pytest.approx(0.5 * float(LOSSES["dice"]()(logits, target)))
    assert loss.spec == "0.5*dice + 2*focal_tversky + 1*wbce"


@pytest.mark.parametrize("spec", ["dice + nonsense", "0.5*", "composite", ""])
def test_bad_composite_spec_is_refused(spec):
    with pytest.raises(ValueError):
        build_loss(spec) if spec != "composite" else CompositeLoss([("composite", 1.0)])


def test_shape_and_class_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"logits \[N,C,H,W\] and target \[N,H,W\]"):
        LOSSES["dice"]()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long))
    with pytest.raises(ValueError, match="class 3 but the model has 2"):
        LOSSES["ce"]()(torch.zeros(1, 2, 4, 4), torch.full((1, 4, 4), 3))


def test_setting_ignore_index_on_a_composite_reaches_its_parts():
    loss = CompositeLoss.from_spec("dice + wbce")
    loss.ignore_index = 255
    assert [part.ignore_index for part in loss.parts.values()] == [255, 255]
    logits, target = random_case(11)
    target[0, 0, 0] = 255
    assert torch.isfinite(loss(logits, target))
