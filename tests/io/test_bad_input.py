"""Every bad input ends in an OctReadError that names the file and the problem, and leaves the file as it was."""

import numpy as np
import pytest
from bad_files import BAD_INPUTS, fingerprint, tiff

from napari_octfluid.io import OctReadError, read_volume


@pytest.mark.parametrize("name, make, phrase", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_gets_a_clear_message(tmp_path, name, make, phrase):
    path = make(tmp_path / name)
    before = fingerprint(path)
    with pytest.raises(OctReadError) as caught:
        read_volume(path)
    message = str(caught.value)
    assert message.startswith(path.name + ":"), message
    assert phrase in message, message
    assert fingerprint(path) == before  # reading never changes the user's file


def test_singleton_axes_are_squeezed_not_refused(tmp_path):
    path = tiff(tmp_path / "tzcyx.tif", np.ones((1, 3, 1, 16, 16), np.uint8), imagej=True)
    assert read_volume(path).data.shape == (3, 16, 16)


def test_grey_saved_as_rgb_tiff_is_accepted(tmp_path):
    grey = np.arange(480, dtype=np.uint8).reshape(16, 30)
    path = tiff(tmp_path / "grey_rgb.tif", np.dstack([grey] * 3), photometric="rgb")
    np.testing.assert_array_equal(read_volume(path).data[0], grey)
