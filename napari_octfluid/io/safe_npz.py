"""Reading an npz nobody vouches for: only a regular file is opened, each member's ``.npy`` header is checked
before its data is read, and nothing is ever unpickled.

A path can lead to a named pipe that blocks the reader forever, a device that never ends, or (a symbolic link)
to another file; and a few bytes of file can declare gigabytes, since a ``.npy`` header names any shape. So
:func:`open_regular_file` opens only the regular file it checked, :func:`member_header` gives a member's declared
shape and type once they fit in the bytes the member holds and in octfluid's memory budget, and
:func:`read_member` reads it without pickles. Every refusal is an :class:`UnsafeNpzError` that names the file.
"""

from __future__ import annotations

import math
import os
import stat
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from ..memory import MemoryBudgetError, check_allocation

# deflate cannot expand data more than about 1032-fold: a member that declares more than that per stored byte lies
DEFLATE_MAX_EXPANSION = 1100

Header = tuple[tuple[int, ...], np.dtype]  # what a member's .npy header declares: its shape and dtype


class UnsafeNpzError(ValueError):
    """An npz, or a member of it, that is not read; the message names the file and says why."""


def open_regular_file(path: Path, link_refusal: str = "a symbolic link") -> tuple[BinaryIO, os.stat_result]:
    """``path`` opened for reading if it is a regular file, and the very file that was checked (with its status):
    a named pipe would block the reader forever, a device could be endless, a symbolic link may lead elsewhere.
    ``link_refusal`` completes the refusal of a link, ``<name> is <link_refusal>``: why that matters to the caller.
    """
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise UnsafeNpzError(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    if stat.S_ISLNK(before.st_mode):
        raise UnsafeNpzError(f"{path.name} is {link_refusal}")
    if not stat.S_ISREG(before.st_mode):
        raise UnsafeNpzError(f"{path.name} is not a regular file (a folder, pipe or device)")
    # O_NONBLOCK: should a pipe be swapped in after the check, opening it returns at once instead of waiting
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise UnsafeNpzError(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    opened = os.fstat(descriptor)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino):
        os.close(descriptor)
        raise UnsafeNpzError(f"{path.name} was replaced while it was being opened")
    return os.fdopen(descriptor, "rb"), before


def member_header(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], key: str, name: str) -> Header | None:
    """The shape and dtype the member ``<key>.npy`` declares, once they are known to fit in the member and in the
    memory budget (the data is not read); None when the member is absent. ``name`` is the file's, for messages."""
    info = members.get(f"{key}.npy")
    if info is None:
        return None
    with archive.open(info) as member:
        version = npy_format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(member)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(member)
        else:  # 3.0 exists only for field names beyond latin-1: structured arrays, which are refused anyway
            raise UnsafeNpzError(f"{name} is damaged: {key} is stored in npy format {version}")
    if any(n < 0 for n in shape):
        raise UnsafeNpzError(f"{name} is damaged: {key} declares the shape {shape}")
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
        raise UnsafeNpzError(
            f"{name} holds Python objects or records in {key}, which octfluid never writes (and never unpickles)"
        )
    declared = declared_bytes((shape, dtype))
    stored_limit = info.compress_size * (DEFLATE_MAX_EXPANSION if info.compress_type != zipfile.ZIP_STORED else 1)
    if declared > info.file_size or declared > stored_limit:
        raise UnsafeNpzError(
            f"{name} is damaged: {key} declares {decimal_size(declared)} in {decimal_size(info.compress_size)} of file"
        )
    try:  # deflate still lets a small file declare a thousand times its size
        check_allocation(declared, f"Reading {key} of {name}", advice="Close other programs")
    except MemoryBudgetError as exc:
        raise UnsafeNpzError(str(exc)) from None
    return shape, dtype


def read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """The array a member holds (its header checked by :func:`member_header` first); never unpickles."""
    with archive.open(info) as member:
        return npy_format.read_array(member, allow_pickle=False)


def declared_bytes(header: Header) -> int:
    shape, dtype = header
    return math.prod(shape) * dtype.itemsize


def decimal_size(count: float) -> str:
    """``100.0 GB``, ``512 bytes``: a declared size in the decimal units of the refusals."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if count < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")
