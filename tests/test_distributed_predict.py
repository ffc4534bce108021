"""``torchrun ... octfluid predict A.tif B.tif ... -o OUT/`` shares the scans out over the processes (gloo on the CPU):
each scan gets exactly one mask, and the one summary lists each scan once. And the context that tells a process who
it is among those torchrun started (distributed.py)."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from napari_octfluid.batch import read_provenance
from napari_octfluid.distributed import DistributedContext, DistributedSetupError

TORCHRUN = Path(sys.executable).with_name("torchrun")
OCTFLUID = Path(sys.executable).with_name("octfluid")


def test_one_process_alone_is_rank_0_of_1_and_needs_no_process_group():
    alone = DistributedContext.from_environment({})
    assert (alone.rank, alone.world_size, alone.local_rank, alone.is_distributed, alone.is_main) == (
        0,
        1,
        0,
        False,
        True,
    )
    assert alone.shard([1, 2, 3]) == [1, 2, 3] and alone.all_gather_object("rows") == ["rows"]
    assert alone.run_on_main(lambda: "plan") == "plan"
    with alone.process_group(alone.device("cpu")):  # nothing to join
        alone.barrier()


def test_torchruns_environment_says_who_this_process_is():
    context = DistributedContext.from_environment({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"})
    assert (context.rank, context.world_size, context.local_rank) == (3, 4, 1)
    assert context.is_distributed and not context.is_main
    assert context.shard(list("abcdefghij")) == ["d", "h"]  # scans 3, 7: rank r takes r, r + N, ...


@pytest.mark.parametrize(
    "environment",
    [{"WORLD_SIZE": "two", "RANK": "1", "LOCAL_RANK": "0"}, {"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"}],
)
def test_an_inconsistent_environment_is_refused(environment):
    with pytest.raises(DistributedSetupError):
        DistributedContext.from_environment(environment)


@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside this Python")
def test_torchrun_shares_the_scans_out_one_mask_each_and_one_summary(tmp_path, tiny_checkpoint, write_tiny_scan):
    # two scans named a on different ranks (0 and 1): their masks must not collide; a broken scan fails on rank 0
    scans = [
        write_tiny_scan(tmp_path / "left" / "a.tif", seed=0),
        write_tiny_scan(tmp_path / "right" / "a.tif", seed=1),
        write_tiny_scan(tmp_path / "left" / "b.tif", seed=2),
        write_tiny_scan(tmp_path / "left" / "c.tif", seed=3),
    ]
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00" + bytes(50))
    out = tmp_path / "out"
    command = [str(TORCHRUN), "--standalone", "--nproc-per-node", "2", "--no-python", str(OCTFLUID), "predict"]
    command += [*map(str, scans), str(broken), "-o", f"{out}/", "--weights", str(tiny_checkpoint), "--device", "cpu"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert result.returncode != 0, result.stderr  # a scan failed: the batch says so through torchrun's status
    for rank, count in ((0, 3), (1, 2)):  # each process names itself on its lines
        speaker = DistributedContext(rank, 2).describe()
        assert f"octfluid predict ({speaker}): {count} scans" in result.stderr, result.stderr
    assert "octfluid predict: 1 of 5 scans failed" in result.stderr
    masks = sorted(out.glob("*.tif"))
    assert [mask.name for mask in masks] == ["a_fluid-2.tif", "a_fluid.tif", "b_fluid.tif", "c_fluid.tif"]
    made_from = sorted(read_provenance(mask)["source"] for mask in masks)
    assert made_from == sorted(str(scan.resolve()) for scan in scans)  # exactly one mask per scan
    with open(out / "octfluid_summary.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["source"] for row in rows] == [*map(str, scans), str(broken)]  # each once, in the order named
    assert [row["status"] for row in rows] == ["ok"] * 4 + ["failed"]
    assert sorted(Path(row["output"]).name for row in rows[:4]) == [mask.name for mask in masks]
    assert not [path for path in out.iterdir() if path.name.startswith(".")]  # no temporary file left
