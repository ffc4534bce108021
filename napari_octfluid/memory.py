"""One memory budget for everything octfluid is about to allocate from a size a file declares.

A 70 KB compressed TIFF can declare gigabytes of pixels, a 3 MB checkpoint can inflate to gigabytes, and a model
config can describe a network of tens of gigabytes. Every reader and loader computes what it is about to allocate
from the declared shape and type, and asks :func:`check_allocation` first, so such a file is refused with a
message that says what to do instead of being met by the operating system's out-of-memory killer.

The limit is, in order of precedence:

1. what :func:`set_memory_limit` set (the command line and the widgets call it);
2. the ``OCTFLUID_MEMORY_LIMIT`` environment variable (``8GiB``, ``500MB``, ``2G``, or bytes);
3. a share of the memory available at the moment of the check (so memory already in use, such as a scan that
   is open, is taken into account), within the process's cgroup limit where it has one.

Kept free of torch, napari and Qt: the readers import it.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Sequence

ENV_VAR = "OCTFLUID_MEMORY_LIMIT"
# What may be asked for at once, of the memory available now: the rest stays for the program's own working
# memory (Python, torch, napari's display copies) and for the other programs on the machine.
SHARE_OF_AVAILABLE = 0.8
SCAN_ADVICE = "Crop or subsample the scan, or close other programs"
MOST_MEMORY_ANY_MACHINE_HAS = 64 * 2**40  # beyond this a declared size is a damaged or hostile header

_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "t": 10**12,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_SIZE = re.compile(r"^\s*((?:\d+(?:\.\d*)?|\.\d+)(?:e\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)

_limit_set_by_caller: int | None = None


class MemoryBudgetError(MemoryError):
    """Something octfluid was about to allocate exceeds the memory budget; nothing was allocated.

    A ``MemoryError``, so that every place that already reports running out of memory as one line (the
    command line, the widgets) reports this too. ``needed`` and ``limit`` are in bytes (None for a bad setting).
    """

    def __init__(self, message: str, needed: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed
        self.limit = limit


def parse_size(text: str | int | float) -> int:
    """Bytes from ``8GiB``, ``8 GB``, ``512M``, ``1.5GiB``, ``4e9`` or a plain number of bytes.

    Raises ValueError (naming the accepted forms) for anything else, zero or a negative size.
    """
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a memory size")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _SIZE.match(str(text))
        unit = match.group(2).lower() if match else None
        if match is None or unit not in _UNITS:
            raise ValueError(f"{text!r} is not a memory size; write it like 8GiB, 500MB or 2G")
        value = float(match.group(1)) * _UNITS[unit]  # may be inf: refused below
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{text!r} is not a memory size; it must be finite and at least one byte")
    return int(value)


def format_bytes(count: float) -> str:
    """``2.7 GiB``, ``512.0 MiB``, ``900 bytes``: sizes as a person reads them."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{int(count)} bytes"


def set_memory_limit(limit: int | str | None) -> None:
    """Set the budget for this process (``None``: back to the environment variable or available memory).

    For the command line's option and the widgets' setting; it wins over ``OCTFLUID_MEMORY_LIMIT``.
    Raises ValueError for a size that :func:`parse_size` does not accept.
    """
    global _limit_set_by_caller
    _limit_set_by_caller = None if limit is None else parse_size(limit)


def available_memory() -> int | None:
    """Bytes of memory this process could still get now, or None where the system does not say."""
    available = _system_available()
    cgroup = _cgroup_room()
    if available is None:
        return cgroup
    return available if cgroup is None else min(available, cgroup)


def memory_limit() -> tuple[int | None, str]:
    """The budget in bytes (None: unknown, nothing is refused) and where it comes from, for messages."""
    if _limit_set_by_caller is not None:
        return _limit_set_by_caller, "the limit set for this session"
    setting = os.environ.get(ENV_VAR, "").strip()
    if setting:
        try:
            return parse_size(setting), f"set by {ENV_VAR}"
        except ValueError as error:
            # refused rather than ignored: a limit the user believes is in force must not silently be another
            raise MemoryBudgetError(f"{ENV_VAR}: {error}.") from None
    available = available_memory()
    if available is None:
        return None, "unknown"
    return int(available * SHARE_OF_AVAILABLE), (
        f"{SHARE_OF_AVAILABLE:.0%} of the {format_bytes(available)} of memory available now"
    )


def check_allocation(nbytes: int | float, what: str, advice: str = SCAN_ADVICE) -> None:
    """Refuse, before anything is allocated, when ``what`` would need more than the budget.

    Parameters
    ----------
    nbytes : int or float
        What is about to be allocated, computed from declared sizes (may be astronomically large).
    what : str
        Names it in the message, e.g. ``"Decoding this scan (1000 x 5000 x 5000 uint8)"``.
    advice : str
        What the user can do about the data; the message adds how to raise the limit.

    Raises
    ------
    MemoryBudgetError
        With one line naming what, how much it needs, the limit and what to do.
    """
    limit, source = memory_limit()
    if limit is None or nbytes <= limit:
        return
    if nbytes > MOST_MEMORY_ANY_MACHINE_HAS:  # a damaged or hostile header: raising the limit is no help
        advice = "No machine has that much memory: the size the file declares is damaged or hostile."
    else:
        advice += f", or raise the limit ({ENV_VAR}={math.ceil(nbytes / 2**30)}GiB) if this machine has that much."
    raise MemoryBudgetError(
        f"{what} needs {format_bytes(nbytes)}, more than octfluid's memory limit of "
        f"{format_bytes(limit)} ({source}). {advice}",
        needed=int(min(nbytes, 2**63)),
        limit=limit,
    )


def within_budget(nbytes: int | float) -> bool:
    """Whether ``nbytes`` may be allocated now (for choosing another way, e.g. memory-mapping, over refusing)."""
    limit, _ = memory_limit()
    return limit is None or nbytes <= limit


def array_bytes(shape: Sequence[int], itemsize: int) -> int:
    """Bytes of an array of ``shape``, exact for any declared size (Python integers do not overflow)."""
    return math.prod(int(size) for size in shape) * int(itemsize)


def prediction_bytes(shape: Sequence[int], config: Any = None) -> int:
    """What :func:`~napari_octfluid.inference.predict` allocates for a volume of ``shape`` (``[Z, Y, X]`` or one
    B-scan ``[Y, X]``), the volume itself not counted.

    The result it keeps: labels (uint8) and fluid probability (float32), 5 bytes a voxel. Then the working memory
    of one B-scan (prediction steps its batch down to one B-scan when memory runs out, so one is the least it
    needs): its normalised copy, masks and temporaries (about 40 bytes a pixel), the logits, and the network's
    activations, estimated from ``config`` (a ``TransUNetConfig``) as six float32 maps per encoder level
    (convolution, batch norm, the decoder's concatenation and upsampling) at that level's resolution.
    """
    shape = tuple(int(size) for size in shape)
    if len(shape) < 2:
        return array_bytes(shape, 5)
    pixels = shape[-2] * shape[-1]
    # without a config, the paper's network (model/configs.py, not imported: the model package imports torch)
    filters = tuple(getattr(config, "filter_num", (16, 32, 64, 128, 256)))
    classes = int(getattr(config, "num_classes", 2))
    activation_bytes_per_pixel = sum(6 * 4 * f / 4 ** (level + 1) for level, f in enumerate(filters))
    one_bscan = pixels * (40 + 3 * 4 * classes + activation_bytes_per_pixel)
    return array_bytes(shape, 5) + int(one_bscan)


def _system_available() -> int | None:
    try:
        import psutil  # not a dependency of octfluid; napari brings it, and it knows every platform
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            return int(psutil.virtual_memory().available)
        except (OSError, RuntimeError, AttributeError):
            pass
    meminfo = _meminfo_available(Path("/proc/meminfo"))
    if meminfo is not None:
        return meminfo
    if sys.platform == "win32":
        return _windows_available()
    try:  # other POSIX systems; macOS has no count of available pages, so its free pages stand in
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _meminfo_available(path: Path) -> int | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    match = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else None


def _windows_available() -> int | None:
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [
            ("length", ctypes.c_ulong),
            ("load", ctypes.c_ulong),
            ("total_physical", ctypes.c_ulonglong),
            ("available_physical", ctypes.c_ulonglong),
            ("total_page_file", ctypes.c_ulonglong),
            ("available_page_file", ctypes.c_ulonglong),
            ("total_virtual", ctypes.c_ulonglong),
            ("available_virtual", ctypes.c_ulonglong),
            ("available_extended", ctypes.c_ulonglong),
        ]

    status = MemoryStatus()
    status.length = ctypes.sizeof(MemoryStatus)
    try:
        ok = ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status))  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return None
    return int(status.available_physical) if ok else None


def _cgroup_room() -> int | None:
    """Room left under this process's cgroup memory limit (containers, batch schedulers): the system's
    available memory does not see such a limit, and exceeding it gets the process killed all the same."""
    for folder, limit_name, usage_name, inactive_key in (
        ("/sys/fs/cgroup", "memory.max", "memory.current", "inactive_file"),
        ("/sys/fs/cgroup/memory", "memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
    ):
        try:
            limit_text = (Path(folder) / limit_name).read_text().strip()
            usage = int((Path(folder) / usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        if not limit_text.isdigit() or int(limit_text) >= 2**60:  # "max", or v1's "no limit" near 2**63
            return None
        # the usage counts the page cache, which the kernel gives back before it kills anything
        return max(int(limit_text) - usage + _stat_value(Path(folder) / "memory.stat", inactive_key), 0)
    return None


def _stat_value(path: Path, key: str) -> int:
    try:
        match = re.search(rf"^{key}\s+(\d+)", path.read_text(), re.MULTILINE)
    except OSError:
        return 0
    return int(match.group(1)) if match else 0
