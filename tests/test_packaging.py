"""The built wheel carries the top-level napari.yaml and sample_data, so an installed plugin finds them."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

CHECK_INSTALLED = """
import json, napari_octfluid
from npe2 import PluginManifest
from napari_octfluid._sample_data import duke_subject01
manifest = PluginManifest.from_distribution("octfluid")
(scan, _, scan_kind), (mask, _, mask_kind) = duke_subject01()
print(json.dumps({"module": napari_octfluid.__file__, "widgets": len(manifest.contributions.widgets),
                  "sample": [list(scan.shape), scan_kind, mask_kind]}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True)
    [built] = out.glob("octfluid-*.whl")
    return built


def test_wheel_holds_manifest_and_sample_as_real_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("napari_octfluid/napari.yaml") == (REPO / "napari.yaml").read_bytes()
        for sample in (REPO / "sample_data").iterdir():
            assert archive.read(f"napari_octfluid/sample_data/{sample.name}") == sample.read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "octfluid = napari_octfluid:napari.yaml" in archive.read(entry_points).decode()


def test_installed_wheel_finds_its_manifest_and_sample(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(wheel)], check=True, capture_output=True)
    result = subprocess.run([sys.executable, "-c", CHECK_INSTALLED], capture_output=True, text=True,
                            env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["module"]).is_relative_to(target)  # the wheel's copy, not the checkout
    assert found["widgets"] == 6
    assert found["sample"] == [[11, 496, 768], "image", "labels"]
