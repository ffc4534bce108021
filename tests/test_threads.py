"""torch's CPU threads: chosen in one place (devices.choose_threads) from the cores free now, by the command line and,
less one core for napari's interface, by the widgets; ``--threads`` and the Predict widget's setting override it."""

import threading

import pytest
import torch

from napari_octfluid import devices
from napari_octfluid.cli import main


@pytest.fixture
def machine(monkeypatch):
    """A machine of ``cpus`` logical CPUs, each idle the given share of the sample, with ``physical`` cores and a
    CPU ``quota`` (None: none); ``load`` is the load average where /proc/stat is missing (``idle=None``)."""

    def make(idle, physical=None, quota=None, load=0.0, cpus=None):
        cpus = cpus if cpus is not None else list(range(len(idle or [])))
        samples = iter(
            [None, None]
            if idle is None
            else [
                {cpu: (0, 0) for cpu in cpus},
                {cpu: (round(share * 100), 100) for cpu, share in zip(cpus, idle)},
            ]
        )
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
        monkeypatch.setattr(devices, "usable_cpus", lambda: cpus)
        monkeypatch.setattr(devices, "physical_cores", lambda listed: physical or len(listed))
        monkeypatch.setattr(devices, "cpu_quota", lambda: quota)
        monkeypatch.setattr(devices, "_idle_and_total_ticks", lambda: next(samples))
        monkeypatch.setattr(devices.time, "sleep", lambda _seconds: None)
        monkeypatch.setattr(devices.os, "getloadavg", lambda: (load, load, load))
        monkeypatch.setattr(devices.os, "cpu_count", lambda: len(cpus))

    return make


@pytest.mark.parametrize(
    "idle, physical, quota, expected",
    [
        ([1.0, 1.0, 1.0, 1.0], None, None, 4),  # an idle machine: every core
        ([1.0, 0.2], None, None, 1),  # the loaded 2-core machine of the review: one thread, 2.4 times faster
        ([1.0, 0.5], None, None, 2),  # a core half free is worth a thread
        ([1.0, 1.0, 1.0, 1.0], 2, None, 2),  # hyper-threads of one core count once, as torch's own default does
        ([1.0, 1.0, 1.0, 1.0], None, 1.5, 2),  # a container's --cpus 1.5
        ([0.1, 0.1], None, None, 1),  # everything busy: still one
    ],
)
def test_the_default_is_the_cores_free_now(machine, idle, physical, quota, expected):
    machine(idle, physical, quota)
    assert devices.choose_threads() == expected


def test_without_proc_stat_the_load_average_says_what_is_busy(machine):
    machine(None, cpus=[0, 1, 2, 3], load=2.6)
    assert devices.choose_threads() == 1  # 4 - 2.6 = 1.4 cores free
    machine(None, cpus=[0, 1, 2, 3], load=0.2)
    assert devices.choose_threads() == 4


def test_what_the_user_asks_for_wins(machine, monkeypatch):
    machine([1.0, 0.1])
    assert devices.choose_threads(3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # set by the user, or by torchrun for each of several processes
    assert devices.choose_threads() == 2 and devices.choose_threads(1) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "4,2")  # nested parallelism: not a count octfluid can use
    assert devices.choose_threads() == 1
    with pytest.raises(ValueError):
        devices.choose_threads(0)


def test_the_choice_is_measured_on_this_machine():
    """The real sources (/proc/stat, affinity, topology) give a count between one and the CPUs this process has."""
    cpus = devices.usable_cpus()
    assert 1 <= devices.physical_cores(cpus) <= len(cpus)
    assert 0.0 <= devices.free_cores(0.05) <= len(cpus)
    assert 1 <= devices.choose_threads() <= len(cpus)


def test_a_widget_job_runs_with_its_threads_in_its_worker_thread():
    """With OpenMP the count belongs to each thread: set in the main thread, it never reached a worker that napari's
    pool had used before (measured: the worker kept 2 after the main thread set 1)."""
    from napari_octfluid._qt._threads import with_threads

    def job():
        torch.ones(64, 64) @ torch.ones(64, 64)  # a parallel op: the worker's threads exist from here on
        yield torch.get_num_threads()
        return "done"

    seen = []

    def worker():
        before = torch.get_num_threads()
        generator = with_threads(job, 1)()
        seen.append(next(generator))
        with pytest.raises(StopIteration):
            next(generator)
        seen.append(torch.get_num_threads() == before)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join(30)
    assert seen == [1, True]


@pytest.mark.parametrize("command", ["predict", "evaluate", "crossval"])
def test_threads_option_is_checked(capsys, command):
    argv = {"predict": ["s.tif", "-o", "m.tif"], "evaluate": [], "crossval": ["--recipe", "r.toml"]}[command]
    with pytest.raises(SystemExit):
        main([command, *argv, "--threads", "0"])
    assert "argument --threads" in capsys.readouterr().err


def test_predict_runs_with_the_threads_asked_for(tmp_path, capsys, tiny_checkpoint, write_tiny_scan):
    scan = write_tiny_scan(tmp_path / "scan.tif")
    assert main(["predict", str(scan), "-o", str(tmp_path / "m.tif"), "--weights", str(tiny_checkpoint)]) == 0
    assert (
        main(["predict", str(scan), "-o", str(tmp_path / "n.tif"), "--weights", str(tiny_checkpoint), "--threads", "1"])
        == 0
    )
    assert torch.get_num_threads() == 1 and ", 1 thread" in capsys.readouterr().err
