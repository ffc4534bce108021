"""``octfluid predict SCAN... -o DIR/``: a mask per scan named after it, a summary table, finished masks skipped on
the next run, one bad scan never stopping the batch, and nothing of the user's ever replaced."""

import csv
import os

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

import napari_octfluid.io
from napari_octfluid.batch import SUMMARY_NAME, ModelIdentity, collect_sources, plan_batch, read_provenance
from napari_octfluid.cli import main
from napari_octfluid.io import read_volume

SPACING = (0.12, 0.0039, 0.0118)


def predict(weights, *argv) -> int:
    return main(["predict", *map(str, argv), "--weights", str(weights)])


def summary(folder) -> list[dict]:
    with open(folder / "octfluid_summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def names(folder) -> set[str]:
    return {path.name for path in folder.iterdir()}


@pytest.fixture
def scans(tmp_path, write_tiny_scan):
    """scans/a.tif (spacing known), scans/b.ome.tif and scans/notes.md, other/a.tif (a second scan named a), and
    pngs/, a folder of two B-scan images."""
    write_tiny_scan(tmp_path / "scans" / "a.tif", bscans=3, spacing_mm=SPACING)
    write_tiny_scan(tmp_path / "scans" / "b.ome.tif", seed=1)
    (tmp_path / "scans" / "notes.md").write_text("not a scan")
    write_tiny_scan(tmp_path / "other" / "a.tif", seed=2)
    (tmp_path / "pngs").mkdir()
    for index in range(2):
        iio.imwrite(
            tmp_path / "pngs" / f"b{index}.png", np.random.default_rng(index).integers(0, 255, (64, 80), np.uint8)
        )
    return tmp_path


def test_a_batch_writes_one_mask_per_scan_named_after_it_and_a_summary(scans, capsys, tiny_checkpoint):
    out = scans / "out"
    assert (
        predict(tiny_checkpoint, scans / "scans" / "*", scans / "other" / "a.tif", scans / "pngs", "-o", f"{out}/") == 0
    )
    captured = capsys.readouterr()
    assert "left out 1 file(s)" in captured.err and "wrote 4 masks" in captured.out
    assert names(out) == {"a_fluid.tif", "b_fluid.tif", "a_fluid-2.tif", "pngs_fluid.tif", "octfluid_summary.csv"}
    rows = summary(out)
    sources = ["scans/a.tif", "scans/b.ome.tif", "other/a.tif", "pngs"]
    assert [row["source"] for row in rows] == [str(scans / source) for source in sources]  # the order they were named
    assert [row["output"] for row in rows] == [
        str(out / name) for name in ("a_fluid.tif", "b_fluid.tif", "a_fluid-2.tif", "pngs_fluid.tif")
    ]
    assert {row["status"] for row in rows} == {"ok"} and {row["model"] for row in rows} == {str(tiny_checkpoint)}
    for row, source in zip(rows, sources):
        mask, scan = read_volume(row["output"]), read_volume(scans / source)
        assert mask.data.shape == scan.data.shape and mask.spacing_mm == scan.spacing_mm
        assert int(row["bscans"]) == scan.n_bscans and int(row["fluid_pixels"]) == np.count_nonzero(mask.data)
        assert int(row["fluid_bscans"]) == int((mask.data.reshape(scan.n_bscans, -1) > 0).any(axis=1).sum())
        assert float(row["seconds"]) >= 0 and row["error"] == ""
    first = rows[0]  # the one scan whose spacing is known: a volume in nL, and where the spacing came from
    assert float(first["fluid_volume_nl"]) == pytest.approx(int(first["fluid_pixels"]) * np.prod(SPACING) * 1e3, 1e-5)
    assert tuple(float(first[f"spacing_{axis}_mm"]) for axis in ("bscan", "depth", "width")) == SPACING
    assert first["spacing_source"] == "octfluid"
    assert rows[3]["fluid_volume_nl"] == rows[3]["spacing_bscan_mm"] == "" and rows[3]["spacing_source"] == "unknown"


def test_one_bad_scan_never_stops_the_batch(scans, capsys, tiny_checkpoint):
    broken = scans / "broken.tif"
    broken.write_bytes(b"II*\x00" + bytes(50))
    out = scans / "out"
    no_scan = [scans / "missing.tif", scans / "nowhere" / "*.tif", scans / "scans" / "*.md"]
    assert predict(tiny_checkpoint, scans / "scans" / "a.tif", broken, *no_scan, scans / "pngs", "--out-dir", out) == 1
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"octfluid predict: 4 of 6 scans failed: their errors are in {out / SUMMARY_NAME}."
    assert "Traceback" not in err
    rows = summary(out)
    assert [row["status"] for row in rows] == ["ok", "failed", "failed", "failed", "failed", "ok"]
    assert "broken.tif" in rows[1]["error"] and "not a readable TIFF" in rows[1]["error"]
    assert rows[2]["error"].endswith("missing.tif does not exist.") and rows[3]["error"].endswith("matches no file.")
    assert rows[4]["error"].endswith("matches no file octfluid reads (1 of other kinds).")
    assert all(row["output"] == "" and row["fluid_pixels"] == "" for row in rows[1:5])
    assert names(out) == {"a_fluid.tif", "pngs_fluid.tif", SUMMARY_NAME}


def test_a_second_run_skips_finished_masks_and_never_replaces_another_file(scans, capsys, tiny_checkpoint):
    out = scans / "out"
    out.mkdir()
    users_file = out / "a_fluid.tif"
    users_file.write_bytes(b"the user's own mask, corrected by hand")
    command = [scans / "scans" / "a.tif", scans / "pngs", "-o", out]
    assert predict(tiny_checkpoint, *command) == 0
    first = summary(out)
    made = {
        name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns)
        for name in ("a_fluid-2.tif", "pngs_fluid.tif")
    }
    capsys.readouterr()
    assert predict(tiny_checkpoint, *command) == 0
    err = capsys.readouterr().err
    assert "2 scans (2 done before)" in err and err.count("done before: fluid in") == 2
    again = summary(out)
    assert [row["status"] for row in again] == ["skipped", "skipped"]
    for before, after in zip(first, again):  # the same figures, read back from the masks
        assert {k: v for k, v in before.items() if k not in ("status", "seconds")} == {
            k: v for k, v in after.items() if k not in ("status", "seconds")
        }
    assert {name: ((out / name).read_bytes(), (out / name).stat().st_mtime_ns) for name in made} == made
    assert users_file.read_bytes() == b"the user's own mask, corrected by hand"


def test_a_run_on_part_of_the_scans_keeps_the_summary_rows_of_the_others(scans, tiny_checkpoint):
    """Run again on one scan, the summary lost the rows of the others, whose masks stayed in the folder unlisted."""
    out = scans / "out"
    assert predict(tiny_checkpoint, scans / "scans" / "a.tif", scans / "pngs", "-o", out) == 0
    first = summary(out)
    assert predict(tiny_checkpoint, scans / "pngs", "-o", f"{out}/") == 0
    again = summary(out)
    assert [row["source"] for row in again] == [first[0]["source"], first[1]["source"]]
    assert again[0] == first[0]  # the other scan's row as it was
    assert again[1]["status"] == "skipped" and again[1]["output"] == first[1]["output"]
    assert len(again) == len({row["source"] for row in again})  # each scan once


def test_the_same_masks_are_found_whatever_the_order_of_the_scans(scans, tiny_checkpoint):
    out = scans / "out"
    named = [str(scans / "scans" / "a.tif"), str(scans / "other" / "a.tif")]
    assert predict(tiny_checkpoint, *named, "-o", out) == 0
    weights = ModelIdentity.of(tiny_checkpoint)
    sources, _ = collect_sources(reversed(named))
    plan = plan_batch(sources, out, weights)
    assert [(scan.source.named, scan.output.name, scan.finished) for scan in plan] == [
        (named[1], "a_fluid-2.tif", True),
        (named[0], "a_fluid.tif", True),
    ]
    assert read_provenance(out / "a_fluid-2.tif")["source"] == str((scans / "other" / "a.tif").resolve())
    assert read_provenance(scans / "scans" / "a.tif") is None  # a scan records no making: never taken for a mask


@pytest.mark.parametrize("change", ["other weights", "scan exported again"])
def test_outdated_masks_are_made_again_only_when_asked(scans, capsys, tiny_checkpoint, change):
    from napari_octfluid.model import load_model, save_checkpoint

    out, scan = scans / "out", scans / "scans" / "a.tif"
    assert predict(tiny_checkpoint, scan, "-o", f"{out}/") == 0
    before = (out / "a_fluid.tif").read_bytes()
    weights = tiny_checkpoint
    if change == "other weights":
        model, _ = load_model(tiny_checkpoint)
        model.decision_threshold = 0.3
        weights = save_checkpoint(scans / "retrained.pt", model)
    else:
        os.utime(scan, ns=(scan.stat().st_atime_ns, scan.stat().st_mtime_ns + 10**9))
    capsys.readouterr()
    assert predict(weights, scan, "-o", f"{out}/") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "older version of the scan (a_fluid.tif): pass --overwrite" in err
    assert (out / "a_fluid.tif").read_bytes() == before
    assert predict(weights, scan, "-o", f"{out}/", "--overwrite") == 0
    assert [row["status"] for row in summary(out)] == ["ok"] and names(out) == {"a_fluid.tif", "octfluid_summary.csv"}
    assert read_provenance(out / "a_fluid.tif")["model_digest"] == ModelIdentity.of(weights).digest


def test_an_interrupted_batch_keeps_its_masks_and_the_same_command_resumes(scans, capsys, tiny_checkpoint, monkeypatch):
    import napari_octfluid.batch

    real_write_mask = napari_octfluid.batch.write_mask
    written = []

    def interrupted_at_the_second(output, *args):
        if written:
            raise KeyboardInterrupt  # Ctrl-C, or a kill, while the second mask is written
        written.append(real_write_mask(output, *args))

    monkeypatch.setattr(napari_octfluid.batch, "write_mask", interrupted_at_the_second)
    out = scans / "out"
    command = [scans / "scans" / "a.tif", scans / "other" / "a.tif", scans / "pngs", "-o", f"{out}/"]
    assert predict(tiny_checkpoint, *command) == 130
    assert "interrupted after 1 of 3 scans: the masks written are kept" in capsys.readouterr().err
    assert names(out) == {"a_fluid.tif"}  # no half-written mask, no temporary file, no summary of half a batch
    monkeypatch.undo()
    assert predict(tiny_checkpoint, *command) == 0
    assert [row["status"] for row in summary(out)] == ["skipped", "ok", "ok"]


def test_lists_of_paths_name_the_scans(scans, tiny_checkpoint):
    text_list = scans / "lists" / "scans.txt"
    text_list.parent.mkdir()
    text_list.write_text(f"# scans of the week\n../scans/a.tif\n\n{scans / 'pngs'}\n")
    table = scans / "lists" / "scans.csv"
    table.write_text("patient,path\n7,../other/a.tif\n8,../scans/a.tif\n")
    out = scans / "out"
    assert predict(tiny_checkpoint, text_list, table, "-o", f"{out}/") == 0
    assert [row["source"] for row in summary(out)] == [
        str(text_list.parent / "../scans/a.tif"),
        str(scans / "pngs"),
        str(table.parent / "../other/a.tif"),
    ]  # scans/a.tif named twice: predicted once
    assert predict(tiny_checkpoint, out / "octfluid_summary.csv", "-o", f"{scans / 'again'}/") == 0  # a summary lists
    assert len(summary(scans / "again")) == 3


@pytest.mark.parametrize(
    "argv, phrase",
    [
        (["{scans}/a.tif", "-o", "{scans}/"], "holds the scan"),
        (["{pngs}", "-o", "{pngs}/masks/"], "is inside the input folder"),
        (["{scans}/a.tif", "{other}/a.tif", "-o", "{tmp}/m.tif"], "names one file, but several scans"),
        (["{scans}/a.tif", "{other}/a.tif", "-o", "{scans}/notes.md"], "is a file, not a folder"),
        (["{scans}/a.tif", "{other}/a.tif"], "give an output folder"),
        (["{scans}/a.tif", "-o", "{tmp}/out/", "--out-dir", "{tmp}/out"], "not both"),
        (["{scans}/a.tif", "-o", "{tmp}/out/", "--probabilities", "{tmp}/p.tif"], "predict that scan alone"),
        (["{scans}/a.tif", "-o", "{tmp}/out/", "--summary", "{scans}/a.tif"], "is also an input"),
    ],
)
def test_batch_outputs_are_checked_before_any_work(scans, capsys, monkeypatch, tiny_checkpoint, argv, phrase):
    def no_work(*_args, **_kwargs):
        raise AssertionError("a scan was read before the outputs were checked")

    monkeypatch.setattr(napari_octfluid.io, "read_volume", no_work)
    places = {"scans": scans / "scans", "other": scans / "other", "pngs": scans / "pngs", "tmp": scans}
    before = {path: path.stat().st_mtime_ns for path in scans.rglob("*")}
    assert predict(tiny_checkpoint, *[a.format(**places) for a in argv]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and phrase in err and "Traceback" not in err
    assert {path: path.stat().st_mtime_ns for path in scans.rglob("*")} == before  # nothing written, nothing made


def test_a_full_disk_while_the_summary_is_written_keeps_the_previous_one(
    scans, capsys, monkeypatch, tiny_checkpoint, full_disk_csv_writer
):
    import napari_octfluid.batch

    out = scans / "out"
    command = [scans / "scans" / "a.tif", "-o", f"{out}/"]
    assert predict(tiny_checkpoint, *command) == 0
    previous = (out / "octfluid_summary.csv").read_text()

    monkeypatch.setattr(napari_octfluid.batch.csv, "writer", full_disk_csv_writer)
    capsys.readouterr()
    assert predict(tiny_checkpoint, *command) == 1
    last = capsys.readouterr().err.splitlines()[-1]
    assert "no space left on the disk" in last and "octfluid_summary.csv" in last
    assert (out / "octfluid_summary.csv").read_text() == previous and names(out) == {
        "a_fluid.tif",
        "octfluid_summary.csv",
    }


def test_a_mask_records_where_it_came_from_and_reads_as_any_mask(scans, tiny_checkpoint):
    out = scans / "out"
    assert predict(tiny_checkpoint, scans / "scans" / "a.tif", "-o", f"{out}/") == 0
    provenance = read_provenance(out / "a_fluid.tif")
    assert provenance["source"] == str((scans / "scans" / "a.tif").resolve())
    assert (
        provenance["model"] == str(tiny_checkpoint)
        and provenance["model_digest"] == ModelIdentity.of(tiny_checkpoint).digest
    )
    mask = read_volume(out / "a_fluid.tif")
    assert mask.is_labels and mask.spacing_mm == SPACING and mask.data.dtype == np.uint8
    with tifffile.TiffFile(out / "a_fluid.tif") as tif:  # Fiji reads the spacing from the ImageJ tags as before
        assert tif.imagej_metadata["spacing"] == pytest.approx(SPACING[0] * 1e3)


def test_a_summary_of_scans_named_from_the_working_folder_is_itself_a_list(scans, tiny_checkpoint, monkeypatch):
    """Its paths were written as named ("scans/a.tif") and read back from the summary's folder: all missing."""
    monkeypatch.chdir(scans)
    assert predict(tiny_checkpoint, "scans/a.tif", "pngs", "-o", "out/") == 0
    assert [row["source"] for row in summary(scans / "out")] == [str(scans / "scans/a.tif"), str(scans / "pngs")]
    assert predict(tiny_checkpoint, "out/octfluid_summary.csv", "-o", "again/") == 0
    assert [row["status"] for row in summary(scans / "again")] == ["ok", "ok"]


def test_a_recursive_glob_takes_files_and_a_glob_ending_in_a_slash_takes_folders(scans):
    """'dir/**/*' took each folder of B-scans as a scan and each of its B-scans again (4 masks for one scan), and each
    folder of volumes as a failed folder of B-scans."""
    files, _ = collect_sources([f"{scans}/**/*"])
    assert sorted(source.path.name for source in files) == ["a.tif", "a.tif", "b.ome.tif", "b0.png", "b1.png"]
    folders, _ = collect_sources([f"{scans}/*/"])  # folders only, as named (a folder of volumes fails in its row)
    assert [source.path.name for source in folders] == ["other", "pngs", "scans"]
