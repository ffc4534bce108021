"""Checking where a command will write before it does any work: a prediction or a training run that fails at its
last step, on a missing folder or a read-only one, has wasted its minutes; one that writes over its own input has
destroyed what the user made.

Every command calls :func:`check_outputs` with the files and folders it will write and the files and folders it
reads; the first problem found is raised as one :class:`OutputError` line naming the option.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping

PathLike = str | os.PathLike


class OutputError(ValueError):
    """An output that cannot or must not be written, found before any work; the message says what to do."""


def _same(first: Path, second: Path) -> bool:
    """The same file or folder, also through a symbolic or hard link."""
    if first.resolve() == second.resolve():
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist yet: then they are not one file
        return False


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def _writable(folder: Path) -> bool:
    # access(2) also answers EROFS for a read-only file system, even to root
    return os.access(folder, os.W_OK | os.X_OK)


def _existing_ancestor(path: Path) -> Path:
    for ancestor in path.absolute().parents:
        if ancestor.exists():
            return ancestor
    return Path(path.absolute().anchor)


def check_file_output(option: str, path: Path) -> None:
    """``path`` can be written as a file: not a folder or a device, in a folder that exists and can be written."""
    shown = f"{option} {path}"
    if path.is_dir():
        raise OutputError(f"{shown} is a folder: give the name of the file to write.")
    if path.exists() and not path.is_file():
        raise OutputError(f"{shown} is not a regular file (a device or a pipe): give the name of a file to write.")
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"{shown}: the folder {folder} does not exist; create it first or choose another folder.")
    if not folder.is_dir():
        raise OutputError(f"{shown}: {folder} is a file, not a folder.")
    if not _writable(folder):
        raise OutputError(f"{shown}: the folder {folder} is read-only; choose a folder you can write to.")
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError(f"{shown} is read-only: make it writable or choose another file name.")


def check_folder_output(option: str, path: Path) -> None:
    """``path`` is a folder that can be written, or one that can be created."""
    shown = f"{option} {path}"
    if path.exists() and not path.is_dir():
        raise OutputError(f"{shown} is a file, not a folder: give the name of a folder to write into.")
    if path.is_dir():
        if not _writable(path):
            raise OutputError(f"{shown} is read-only; choose a folder you can write to.")
        return
    ancestor = _existing_ancestor(path)
    if not ancestor.is_dir():
        raise OutputError(f"{shown}: {ancestor} is a file, not a folder.")
    if not _writable(ancestor):
        raise OutputError(f"{shown} cannot be created: {ancestor} is read-only; choose a folder you can write to.")


def check_outputs(
    files: Mapping[str, PathLike | None] | None = None,
    inputs: Iterable[PathLike | None] = (),
    folders: Mapping[str, PathLike | None] | None = None,
    overwrite: bool = False,
) -> None:
    """Refuse, before any work, outputs that could not be written or would destroy an input or another file.

    ``files`` and ``folders`` map each option (``"-o"``, ``"--csv"``, ``"--out"``) to the file or folder it names
    (``None``: not given); ``inputs`` are the files and folders the command reads. Each output must be writable
    (its folder existing, for a file), a file where a file is expected, distinct from every other output, not an
    input, and not inside an input folder (a folder reader would take the new file for one of its own). A file
    that exists is replaced only with ``overwrite`` (the command's ``--overwrite``): ``-o`` naming an expert's mask
    by mistake replaced it with a prediction.

    Raises
    ------
    OutputError
        The first problem found, as one line naming the option.
    """
    outputs = [(option, Path(path), check_file_output) for option, path in (files or {}).items() if path]
    outputs += [(option, Path(path), check_folder_output) for option, path in (folders or {}).items() if path]
    sources = [Path(path) for path in inputs if path]
    for option, path, check in outputs:
        for source in sources:
            if _same(path, source):
                which = "" if os.path.abspath(path) == os.path.abspath(source) else f" (the same file as {source})"
                raise OutputError(
                    f"{option} {path} is also an input{which}: choose another name, so that the "
                    "input is not overwritten."
                )
            if source.is_dir() and _inside(path, source):
                raise OutputError(
                    f"{option} {path} is inside the input folder {source}, whose reader would take "
                    "it for one of its own files: choose a place outside that folder."
                )
        check(option, path)
        if check is check_file_output and path.is_file() and not overwrite:
            raise OutputError(
                f"{option} {path} already exists: choose another name, or give --overwrite to replace it."
            )
    for index, (option, path, _) in enumerate(outputs):
        for other_option, other, _ in outputs[index + 1 :]:
            if _same(path, other):
                raise OutputError(
                    f"{option} and {other_option} both name {path}: one would replace the other; "
                    "give each its own name."
                )
