from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The project's real OCT data beside the checkout; tests that need it skip where it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real OCT data not found at {SHARED_DATA} (only present in the project's workspace)")
    return SHARED_DATA


@pytest.fixture
def vendor_samples(shared_data: Path) -> Path:
    folder = shared_data / "vendor_samples"
    if not folder.is_dir():
        pytest.skip(f"vendor sample files not found at {folder}")
    return folder


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny TransUNet trained for a few steps on synthetic 'fluid' (dark blobs), saved as a checkpoint.
    It is not a good model; it proves the path from training to a checkpoint to a prediction."""
    import numpy as np
    import torch

    from napari_octfluid.losses import build_loss
    from napari_octfluid.model import MODEL_CONFIGS, TransUNet, save_checkpoint
    from napari_octfluid.preprocess import normalize_bscans

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (4, 64, 64)).astype(np.float32)
    masks = np.zeros((4, 64, 64), np.int64)
    masks[:, 20:36, 24:44] = 1
    images[masks == 1] = 40
    model = TransUNet(MODEL_CONFIGS["tiny"])
    loss = build_loss("composite")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(normalize_bscans(images)).unsqueeze(1), torch.from_numpy(masks)
    for _ in range(5):
        optimiser.zero_grad()
        loss(model(x), y).backward()
        optimiser.step()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt", model.eval(), loss_spec=loss.spec)
