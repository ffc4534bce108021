from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _reader_preference_memory(tmp_path, monkeypatch):
    """What octfluid remembers having set in napari's reader preferences goes to the test's own folder, never
    beside the real napari settings file of whoever runs the tests."""
    from napari_octfluid import _reader_preference

    monkeypatch.setattr(_reader_preference, "_memory_path", lambda: tmp_path / _reader_preference.MEMORY_NAME)


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


def _train_argv(images, labels, **options) -> list[str]:
    """``octfluid train`` arguments: the images and labels, then each keyword as an option (``steps_per_epoch=2``
    gives ``--steps-per-epoch 2``, ``True`` a bare flag)."""
    argv = ["train", "--images", str(images), "--labels", str(labels)]
    for name, value in options.items():
        option = "--" + name.replace("_", "-")
        argv += [option] if value is True else [option, str(value)]
    return argv


@pytest.fixture(scope="session")
def train_argv():
    """Builds ``octfluid train`` arguments from keywords (see ``_train_argv``), so that tests state only what they
    vary."""
    return _train_argv


@pytest.fixture(scope="session")
def write_tiny_scan():
    """Writes a small random uint8 scan as a TIFF (``path``, ``bscans`` B-scans of 64 x 80, ``spacing_mm``) and
    returns its path: what a batch of scans needs, without the minutes a real scan costs."""
    import numpy as np

    from napari_octfluid.io import write_tiff

    def write(path: Path, bscans: int = 2, spacing_mm=(None, None, None), seed: int = 0) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        images = np.random.default_rng(seed).integers(0, 255, (bscans, 64, 80), dtype=np.uint8)
        return write_tiff(path, images, spacing_mm, kind="image")

    return write


@pytest.fixture(autouse=True)
def _torch_threads_as_found():
    """octfluid's commands set torch's thread count for the whole process (``--threads``, or the cores free now):
    a test that runs one in this process puts the count back, so that later tests do not run on one thread by
    chance."""
    import sys

    torch = sys.modules.get("torch")  # never imported here for tests that do not need it
    before = torch.get_num_threads() if torch is not None else None
    yield
    if before is not None and torch.get_num_threads() != before:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def full_disk_csv_writer():
    """A stand-in for ``csv.writer`` whose first row half reaches the file before the disk is full (ENOSPC): what
    an atomic CSV write must survive, leaving the previous file whole."""
    import errno
    import os

    class FullDisk:
        def __init__(self, handle, *_args, **_kwargs):
            self.handle = handle

        def writerow(self, row):
            self.handle.write(f"{row[0]},")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return FullDisk
