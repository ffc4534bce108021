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
