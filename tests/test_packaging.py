"""The manifest and the sample live inside the package as real files: the built wheel carries them, npe2 reads the
manifest from the installed package, and the repository holds no git symlinks (they break on Windows checkouts)."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "napari_octfluid"
MANIFEST = PACKAGE / "napari.yaml"
SAMPLE_DIR = PACKAGE / "sample_data"
SAMPLE_FILES = ("duke_dme_subject01_images.tif", "duke_dme_subject01_fluid_grader1.tif", "README.md")
GIT_SYMLINK_MODE = "120000"

CHECK_INSTALLED = """
import json, napari_octfluid
from npe2 import PluginManifest
from napari_octfluid._sample_data import duke_subject01
manifest = PluginManifest.from_distribution("octfluid")
(scan, _, scan_kind), (mask, _, mask_kind) = duke_subject01()
print(json.dumps({"module": napari_octfluid.__file__, "name": manifest.name,
                  "widgets": len(manifest.contributions.widgets),
                  "samples": [s.key for s in manifest.contributions.sample_data],
                  "sample": [list(scan.shape), scan_kind, mask_kind]}))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    [built] = out.glob("octfluid-*.whl")
    return built


def test_manifest_and_sample_live_only_inside_the_package():
    # one copy of each: a second one at the top level would drift from the one that ships
    assert MANIFEST.is_file() and not MANIFEST.is_symlink()
    assert SAMPLE_DIR.is_dir() and not SAMPLE_DIR.is_symlink()
    assert all((SAMPLE_DIR / name).is_file() and not (SAMPLE_DIR / name).is_symlink() for name in SAMPLE_FILES)
    assert not (REPO / "napari.yaml").exists() and not (REPO / "sample_data").exists()


def test_wheel_holds_manifest_and_sample_as_real_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert archive.read("napari_octfluid/napari.yaml") == MANIFEST.read_bytes()
        for name in SAMPLE_FILES:
            assert archive.read(f"napari_octfluid/sample_data/{name}") == (SAMPLE_DIR / name).read_bytes()
        entry_points = next(n for n in names if n.endswith("entry_points.txt"))
        assert "octfluid = napari_octfluid:napari.yaml" in archive.read(entry_points).decode()


def test_every_command_of_the_manifest_names_a_module_of_the_wheel(wheel):
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for command in manifest.contributions.commands:
        module = command.python_name.split(":")[0].replace(".", "/")
        assert f"{module}.py" in names or f"{module}/__init__.py" in names, command.id


def test_installed_wheel_finds_its_manifest_and_sample(wheel, tmp_path):
    pytest.importorskip("npe2")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK_INSTALLED],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert Path(found["module"]).is_relative_to(target)  # the wheel's copy, not the checkout
    assert found["name"] == "octfluid"
    assert found["widgets"] == 6
    assert found["samples"] == ["duke_subject01"]
    assert found["sample"] == [[11, 496, 768], "image", "labels"]


def test_repository_holds_no_symlinks():
    git = shutil.which("git")
    if git is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an sdist or a copy): no index to look at")
    listed = subprocess.run([git, "ls-files", "-s", "-z"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip(f"git cannot read this checkout: {listed.stderr.strip()}")
    # each entry is "MODE OBJECT STAGE\tPATH"
    links = [entry.split("\t", 1)[1] for entry in listed.stdout.split("\0") if entry.startswith(GIT_SYMLINK_MODE)]
    assert not links, f"symlinks break on Windows checkouts; commit real files instead: {links}"
