"""``octfluid evaluate --shift`` and ``octfluid predict --min-lesion-pixels`` on tiny files (issue 18)."""

import numpy as np
import pytest
import tifffile

from napari_octfluid.cli import main
from napari_octfluid.io import write_tiff


@pytest.fixture
def tiny_pair(tmp_path):
    """A scan of three B-scans with a dark blob labelled fluid (the tiny checkpoint's synthetic fluid), and its mask;
    the third B-scan holds no fluid, for the false-alarm rate."""
    rng = np.random.default_rng(0)
    images = rng.normal(150, 20, (3, 64, 64)).clip(0, 255).astype(np.uint8)
    labels = np.zeros((3, 64, 64), np.uint8)
    labels[:2, 20:36, 24:44] = 1
    images[labels == 1] = 40
    return write_tiff(tmp_path / "scan.tif", images, kind="image"), write_tiff(tmp_path / "scan_mask.tif", labels)


def test_evaluate_with_shifts_prints_clean_beside_each_shift(tiny_checkpoint, tiny_pair, tmp_path, capsys):
    image_path, label_path = tiny_pair
    argv = ["evaluate", "--images", str(image_path), "--labels", str(label_path), "--weights", str(tiny_checkpoint)]
    assert main([*argv, "--shift", "noise_floor", "axial_x2", "--device", "cpu", "--csv", str(tmp_path / "r.csv")]) == 0
    out = capsys.readouterr().out
    table = out.split("\n\n")[-1].splitlines()[:-1]  # the last line says where the CSV went
    assert table[0].split()[:6] == ["shift", "pooled", "Dice", "change", "false-alarm", "rate"]
    assert [line.split()[0] for line in table[2:]] == ["clean", "noise_floor", "axial_x2"]
    assert all(0 <= float(line.split()[1]) <= 1 and 0 <= float(line.split()[3]) <= 1 for line in table[2:])
    csv = (tmp_path / "r.csv").read_text().splitlines()
    assert csv[0].startswith("group,rater,shift,noise_sigma,pooled_dice") and len(csv) == 1 + 3
    assert [line.split(",")[2] for line in csv[1:]] == ["clean", "noise_floor", "axial_x2"]


def test_evaluate_refuses_an_unknown_shift_before_any_work(tiny_checkpoint, tiny_pair, capsys):
    image_path, label_path = tiny_pair
    argv = ["evaluate", "--images", str(image_path), "--labels", str(label_path), "--weights", str(tiny_checkpoint)]
    assert main([*argv, "--shift", "speckle", "blur"]) == 1
    assert "no shift named blur" in capsys.readouterr().err


def test_predict_min_lesion_pixels_removes_small_regions_and_zero_is_off(tiny_checkpoint, tiny_pair, tmp_path):
    image_path, _ = tiny_pair
    masks = {}
    for option in (None, "0", "100000"):
        out = tmp_path / f"mask_{option}.tif"
        extra = [] if option is None else ["--min-lesion-pixels", option]
        argv = ["predict", str(image_path), "-o", str(out), "--weights", str(tiny_checkpoint), "--device", "cpu"]
        assert main([*argv, *extra]) == 0
        masks[option] = tifffile.imread(out)
    assert masks[None].any() and np.array_equal(masks[None], masks["0"])  # the tiny checkpoint has no size: off
    assert not masks["100000"].any()  # every region is smaller than that
    folder = tmp_path / "batch"
    argv = ["predict", str(image_path), "-o", f"{folder}/", "--weights", str(tiny_checkpoint), "--device", "cpu"]
    assert main([*argv, "--min-lesion-pixels", "100000"]) == 0
    assert not tifffile.imread(next(folder.glob("*_fluid.tif"))).any()  # the batch path applies it too


def test_predict_refuses_a_negative_min_lesion_size(tiny_pair, capsys):
    with pytest.raises(SystemExit):
        main(["predict", str(tiny_pair[0]), "-o", "m.tif", "--min-lesion-pixels", "-5"])
    assert "--min-lesion-pixels" in capsys.readouterr().err
