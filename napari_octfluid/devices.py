"""Choosing where the model runs (CUDA, then Apple MPS, then the CPU) and, on the CPU, with how many threads."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


class DeviceUnavailableError(RuntimeError):
    """The user asked for a device this machine does not have."""


def resolve_device(choice: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then MPS, then CPU; an explicit device that is missing is refused clearly."""
    if choice not in DEVICE_CHOICES:
        raise DeviceUnavailableError(f"unknown device {choice!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (choice == "cuda" and not cuda) or (choice == "mps" and not mps):
        raise DeviceUnavailableError(
            f"{choice.upper()} was asked for but this machine has none "
            "(or this PyTorch build cannot use it): choose 'auto' or 'cpu'."
        )
    return torch.device(choice)


def default_batch_size(device: torch.device) -> int:
    return 32 if device.type == "cuda" else 4


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def step_down_after_out_of_memory(
    error: BaseException, device: torch.device, batch_size: int, what: str
) -> tuple[torch.device, int, str]:
    """The next try after ``error``: half the batch; at a batch of one, the CPU; on the CPU, a ``MemoryError``
    that says what to do. Errors other than running out of memory are raised again. ``what`` names the unit of
    work in the messages ("B-scan", "crop"). Returns the device, the batch size and a notice for the user."""
    if not is_out_of_memory(error):
        raise error
    if device.type == "cuda":
        torch.cuda.empty_cache()
    if batch_size > 1:
        return device, batch_size // 2, f"Out of memory on {device}: going on with batch size {batch_size // 2}."
    if device.type != "cpu":
        return torch.device("cpu"), 1, f"Out of memory even one {what} at a time: going on on the CPU (slower)."
    raise MemoryError(
        f"Not enough memory for even one {what} on the CPU: close other programs, or use a smaller scan or crop."
    ) from error


# --- how many CPU threads torch uses --------------------------------------------------------------------------------

LOAD_SAMPLE_S = 0.1  # long enough for ~10 scheduler ticks per core, short enough not to be felt at a button press


def choose_threads(requested: int | None = None, reserved: int = 0) -> int:
    """The number of threads torch should use on the CPU: the one place where the command line and the widgets
    choose it.

    ``requested`` (``--threads``, the Predict widget's setting) wins; then ``OMP_NUM_THREADS`` where the user (or
    torchrun, which sets it to 1 for each of several processes) set it; otherwise the cores free now, less
    ``reserved`` (the widgets keep one for napari's interface), and at least one. Every parallel step of the model
    waits for its slowest thread, so a thread on a core another program keeps busy slows the whole step: on a
    loaded 2-core machine one thread ran 2.4 times faster than two.
    """
    if requested is not None:
        if requested < 1:
            raise ValueError(f"the number of threads must be at least 1, not {requested}")
        return int(requested)
    from_environment = _threads_from_environment()
    if from_environment is not None:
        return from_environment
    return max(1, math.floor(free_cores() + 0.5) - reserved)  # a core more than half free is worth a thread


def _threads_from_environment() -> int | None:
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:  # unset, or a list such as "4,2" (nested parallelism): not a plain count
        return None
    return value if value >= 1 else None


def usable_cpus() -> list[int]:
    """The logical CPUs this process may run on: its affinity (taskset, a container's cpuset) where the system
    says, otherwise all of them."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        return list(range(os.cpu_count() or 1))


def physical_cores(cpus: list[int]) -> int:
    """How many physical cores ``cpus`` occupy: two hyper-threads of one core compute little more than one, and
    torch's own default is one thread per physical core. Where the topology cannot be read, every CPU counts."""
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        for name in ("core_cpus_list", "thread_siblings_list"):
            try:
                cores.add((topology / name).read_text().strip())
                break
            except OSError:
                continue
        else:
            return len(cpus)
    return len(cores) or len(cpus)


def cpu_quota() -> float | None:
    """The cores a cgroup v2 CPU quota allows (a container started with ``--cpus``), or None without a quota."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def _idle_and_total_ticks() -> dict[int, tuple[int, int]] | None:
    """Per logical CPU, the scheduler ticks spent idle (waiting for disk counts as idle: the core could compute)
    and in all, since boot, from ``/proc/stat``; None where there is no such file."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks = {}
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            # user nice system idle iowait irq softirq steal (guest time is inside user already)
            values = [int(value) for value in fields[:8]]
            ticks[int(name[3:])] = (values[3] + values[4], sum(values))
    return ticks or None


def free_cores(sample_s: float = LOAD_SAMPLE_S) -> float:
    """How many of the cores this process may use are free now, as a fraction of cores: where the system says,
    their idle time over ``sample_s`` seconds; elsewhere the cores less the 1-minute load average. Capped by the
    physical cores and a cgroup CPU quota.

    The idle time is measured now rather than read from the load average because the load average remembers the
    last minute: an ``octfluid predict`` started just after another one ended would see the first run's threads
    as someone else's load and choose one thread on an idle machine."""
    cpus = usable_cpus()
    limit = float(physical_cores(cpus))
    quota = cpu_quota()
    if quota is not None:
        limit = min(limit, max(quota, 1.0))
    before = _idle_and_total_ticks()
    if before is not None:
        time.sleep(sample_s)
        after = _idle_and_total_ticks() or {}
        free = 0.0
        for cpu in cpus:
            if cpu in before and cpu in after:
                idle, total = (now - then for now, then in zip(after[cpu], before[cpu]))
                free += idle / total if total > 0 else 1.0  # no tick counted: nothing ran there
        return min(free, limit)
    try:
        # the load of the whole machine, the share of it on this process's CPUs taken as even
        load = os.getloadavg()[0] * len(cpus) / (os.cpu_count() or len(cpus))
    except (AttributeError, OSError):  # Windows: no load average, assume the cores are free
        load = 0.0
    return max(0.0, min(len(cpus) - load, limit))
