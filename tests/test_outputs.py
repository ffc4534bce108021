"""Outputs checked before any work (outputs.check_outputs), and writes that are atomic and clean up after processes
that were killed mid-write (_atomic.atomic_path)."""

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import napari_octfluid.outputs
from napari_octfluid._atomic import TEMPORARY_SUFFIX, atomic_path, remove_stale_temporaries, temporary_name
from napari_octfluid.outputs import OutputError, check_outputs


@pytest.fixture
def scan(tmp_path) -> Path:
    path = tmp_path / "scan.tif"
    path.write_bytes(b"the user's scan")
    return path


def test_sound_outputs_pass(tmp_path, scan):
    (tmp_path / "existing.csv").write_text("old table")  # replaced when the user says so (--overwrite)
    check_outputs(
        {"-o": tmp_path / "mask.tif", "--csv": tmp_path / "existing.csv", "--probabilities": None},
        inputs=[scan, None],
        folders={"--out": tmp_path / "new" / "run"},
        overwrite=True,
    )


def test_a_file_that_exists_is_replaced_only_with_overwrite(tmp_path, scan):
    """``-o`` naming an expert's mask by mistake replaced it with a prediction; a folder that exists is fine."""
    expert = tmp_path / "expert.tif"
    expert.write_bytes(b"an expert's mask")
    with pytest.raises(OutputError, match=r"^-o .*expert.tif already exists: .* give --overwrite to replace it\.$"):
        check_outputs({"-o": expert}, inputs=[scan])
    check_outputs({"-o": tmp_path / "new.tif"}, inputs=[scan], folders={"--out": tmp_path})
    assert expert.read_bytes() == b"an expert's mask"


# the outputs as they are given on the command line: options and paths; --out names a folder, the others files
@pytest.mark.parametrize(
    "outputs, phrase",
    [
        ("-o {scan}", "-o {scan} is also an input"),
        ("-o {link}", "the same file as {scan}"),
        ("-o {hard_link}", "the same file as {scan}"),
        ("-o {pngs}/mask.tif", "is inside the input folder {pngs}"),
        ("-o {pngs}/deeper/mask.tif", "is inside the input folder"),
        ("--out {pngs}", "--out {pngs} is also an input"),
        ("--out {pngs}/run", "is inside the input folder"),
        ("-o {tmp}/m.tif --probabilities {tmp}/m.tif", "-o and --probabilities both name"),
        ("--csv {tmp}/run --out {tmp}/run", "--csv and --out both name"),
        ("-o {tmp}", "is a folder: give the name of the file"),
        ("-o {tmp}/nowhere/m.tif", "the folder {tmp}/nowhere does not exist"),
        ("-o {scan}/m.tif", "is a file, not a folder"),
        ("-o {fifo}", "not a regular file"),
        ("--out {tmp}/notes.txt", "is a file, not a folder"),
        ("--out {scan}/run", "is a file, not a folder"),
    ],
)
def test_outputs_that_would_fail_or_destroy_an_input_are_refused(tmp_path, scan, outputs, phrase):
    pngs = tmp_path / "pngs"
    pngs.mkdir()
    (tmp_path / "link.tif").symlink_to(scan)
    os.link(scan, tmp_path / "hard_link.tif")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "notes.txt").write_text("not a folder")
    names = dict(
        scan=scan,
        link=tmp_path / "link.tif",
        hard_link=tmp_path / "hard_link.tif",
        pngs=pngs,
        tmp=tmp_path,
        fifo=tmp_path / "fifo",
    )
    words = outputs.split()  # before the paths are filled in: a temporary folder's name may hold a space
    named = {option: path.format(**names) for option, path in zip(words[::2], words[1::2])}
    with pytest.raises(OutputError) as refused:
        check_outputs(
            {option: path for option, path in named.items() if option != "--out"},
            inputs=[scan, pngs],
            folders={option: path for option, path in named.items() if option == "--out"},
        )
    message = str(refused.value)
    assert "\n" not in message and phrase.format(**names) in message
    assert scan.read_bytes() == b"the user's scan"


@pytest.fixture
def read_only(tmp_path, monkeypatch) -> Path:
    """A folder octfluid may not write: access(2) says so. Root writes anywhere whatever the mode bits, so the answer
    is given where octfluid asks; the same check runs on chmod'ed folders for other users (test below)."""
    folder = tmp_path / "read_only"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        napari_octfluid.outputs.os,
        "access",
        lambda path, mode: False if Path(path) in (folder, folder / "kept.csv") else real_access(path, mode),
    )
    return folder


@pytest.mark.parametrize(
    "files, folders",
    [
        ({"--csv": "{ro}/table.csv"}, {}),
        ({}, {"--out": "{ro}"}),
        ({}, {"--out": "{ro}/a/b/run"}),
        ({"--csv": "{ro}/kept.csv"}, {}),
    ],
)
def test_read_only_places_are_refused(read_only, files, folders):
    with pytest.raises(OutputError, match="read-only"):
        check_outputs(
            {k: v.format(ro=read_only) for k, v in files.items()},
            folders={k: v.format(ro=read_only) for k, v in folders.items()},
        )


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes whatever the mode bits")
def test_a_folder_without_write_permission_is_refused(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="read-only"):
            check_outputs({"-o": folder / "m.tif"})
    finally:
        folder.chmod(0o755)


# --- atomic writes


def test_a_failed_write_leaves_the_previous_file_and_names_the_target(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("previous")
    with pytest.raises(OSError) as failed:
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert failed.value.errno == errno.ENOSPC and failed.value.filename == str(target)
    assert target.read_text() == "previous" and os.listdir(tmp_path) == ["table.csv"]


def test_a_permission_error_keeps_its_type(tmp_path):
    with pytest.raises(PermissionError):
        with atomic_path(tmp_path / "x.csv") as temporary:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(temporary))


def test_temporary_files_are_named_recognisably(tmp_path):
    with atomic_path(tmp_path / "best.pt") as temporary:
        seen = temporary.name
        temporary.write_bytes(b"weights")
    assert seen.startswith(f".best.pt.{os.getpid()}.") and seen.endswith(TEMPORARY_SUFFIX)
    assert seen.endswith(".tmp")  # tools (and tests) that skip temporary files skip these
    assert os.listdir(tmp_path) == ["best.pt"]


def _ended_process_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_stale_temporaries_of_ended_processes_are_removed_on_the_next_write(tmp_path):
    target = tmp_path / "mask.tif"
    stale = tmp_path / temporary_name(target, pid=_ended_process_pid())
    stale.write_bytes(b"left by a killed writer")
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / temporary_name(target, pid=running.pid)  # another writer at work: not touched
        live.write_bytes(b"being written")
        other = tmp_path / temporary_name(tmp_path / "other.tif", pid=_ended_process_pid())
        other.write_bytes(b"another target's")  # cleaned when that target is written, not now
        foreign = tmp_path / ".mask.tif.1234.tmp"  # not octfluid's naming: never touched
        foreign.write_bytes(b"someone else's")
        with atomic_path(target) as temporary:
            temporary.write_bytes(b"mask")
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, live.name, other.name, foreign.name])
    finally:
        running.kill()
        running.wait()
    assert remove_stale_temporaries(target) == [live]


WRITER = """
import sys, time
from napari_octfluid._atomic import atomic_path
with atomic_path(sys.argv[1]) as temporary:
    with open(temporary, "wb") as stream:
        stream.write(b"half a file")
        stream.flush()
        print("writing", flush=True)
        time.sleep(60)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_write_killed_midway_leaves_the_old_file_and_its_temporary_is_cleaned_next_time(tmp_path):
    target = tmp_path / "corrections.npz"
    target.write_bytes(b"the last good save")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert target.read_bytes() == b"the last good save" and len(leftovers) == 1
    assert leftovers[0].startswith(f".corrections.npz.{writer.pid}.")
    deadline = time.time() + 10
    while time.time() < deadline and Path(f"/proc/{writer.pid}").exists():  # reaped: the pid is free
        time.sleep(0.05)
    with atomic_path(target) as temporary:
        temporary.write_bytes(b"the next save")
    assert os.listdir(tmp_path) == [target.name] and target.read_bytes() == b"the next save"


# --- the CSV files are written atomically


def test_a_full_disk_while_writing_the_evaluation_csv_keeps_the_previous_table(tmp_path, monkeypatch):
    import napari_octfluid.evaluation as evaluation
    from napari_octfluid.metrics import Agreement

    table = tmp_path / "e.csv"
    table.write_text("previous table\n")
    row = evaluation.EvaluationRow("all", "model", 0.0, Agreement(0.5, 0.3, 0.5, 0.1, 3))
    real_writer = evaluation.csv.DictWriter

    class FullDisk(real_writer):
        def writerows(self, rows):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(evaluation.csv, "DictWriter", FullDisk)
    with pytest.raises(OSError, match="No space left"):
        evaluation.write_csv(table, [row])
    assert table.read_text() == "previous table\n" and os.listdir(tmp_path) == ["e.csv"]
    monkeypatch.setattr(evaluation.csv, "DictWriter", real_writer)
    assert evaluation.write_csv(table, [row]).read_text().startswith("group,rater,shift,noise_sigma")
