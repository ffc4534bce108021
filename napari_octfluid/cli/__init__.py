"""The ``octfluid`` command: the same core as the napari plugin, for batch work without a screen.

One module per command, each with ``add_parser(subparsers)`` and ``run(args) -> exit status``; heavy imports
(torch, napari) happen inside ``run``, so ``octfluid info`` and ``octfluid --help`` stay light.
"""

from __future__ import annotations

import argparse
import errno
import sys
import warnings
from typing import Sequence

from .. import __version__
from . import calibrate, crossval, demo, evaluate, export, info, predict, quantify, train, view
from ._common import CommandError, end_progress_line

COMMANDS = (info, predict, train, calibrate, evaluate, crossval, quantify, view, demo, export)
NEEDS_TORCH = {"predict", "train", "evaluate", "crossval", "calibrate", "demo"}

__all__ = ["CommandError", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="octfluid", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"octfluid {__version__}")
    parser.add_argument(
        "--memory-limit",
        type=memory_size,
        metavar="SIZE",
        help="the most memory octfluid may ask for (e.g. 8GiB; default: 80%% of what is free, or "
        "the OCTFLUID_MEMORY_LIMIT environment variable): larger scans and files are refused "
        "before they are read",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def memory_size(text: str) -> int:
    from ..memory import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def user_errors(command: str) -> tuple[type[BaseException], ...]:
    """The exceptions that are the user's to fix: reported as one line, not a traceback."""
    from ..io import OctReadError
    from ..outputs import OutputError
    from ..quantify import SpacingUnknownError
    from ..spacing import SpacingError

    errors: tuple[type[BaseException], ...] = (
        CommandError,
        OctReadError,
        OutputError,
        SpacingError,
        SpacingUnknownError,
        FileNotFoundError,
        IsADirectoryError,
        PermissionError,
        MemoryError,
    )
    if command in NEEDS_TORCH:  # only these import torch; quantify and info stay light
        from ..devices import DeviceUnavailableError
        from ..distributed import DistributedSetupError
        from ..model import CheckpointError
        from ..preprocess import BscanError
        from ..training.engine import TrainingDataError

        errors += (BscanError, CheckpointError, DeviceUnavailableError, DistributedSetupError, TrainingDataError)
    return errors


DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def storage_problem(error: OSError) -> str | None:
    """One line saying what to do about a full disk or a folder that cannot be written; ``None`` for other errors.
    Every write is atomic (``_atomic.atomic_path``), so the file named was left as it was, not half-written."""
    name = error.filename or "a file"
    if error.errno in DISK_FULL:
        return (
            f"no space left on the disk to write {name}: free some space or write to another disk "
            "(nothing half-written was left)."
        )
    if error.errno == errno.EROFS:
        return f"{name} is on a read-only disk: choose a folder you can write to."
    if error.errno in NOT_WRITABLE:
        return f"permission denied for {name}: choose a folder you can write to (or a file you can read)."
    return None


def library_warnings_as_notices(command: str):
    """A ``warnings.showwarning`` that prints a library's warning (Pillow's decompression-bomb warning, a numpy
    overflow) as one octfluid notice on stderr instead of a source location and code line. The warnings filters
    are left alone: what they ignore stays ignored and what they make an error still raises."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())  # one line, whatever the library wrote
        end_progress_line()
        print(f"octfluid {command}: notice: {text} ({category.__name__})", file=sys.stderr, flush=True)

    return show


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.memory_limit is not None:
        from ..memory import set_memory_limit

        set_memory_limit(args.memory_limit)
    handled = user_errors(args.command)
    with warnings.catch_warnings():  # restores the caller's showwarning on the way out
        warnings.showwarning = library_warnings_as_notices(args.command)
        try:
            return args.run(args)
        except KeyboardInterrupt:
            end_progress_line()
            print(f"octfluid {args.command}: interrupted; nothing was written.", file=sys.stderr)
            return 130
        except OSError as exc:
            message = storage_problem(exc)
            if message is None and not isinstance(exc, handled):
                raise
            end_progress_line()
            print(f"octfluid {args.command}: error: {message or exc}", file=sys.stderr)
            return 1
        except handled as exc:
            end_progress_line()
            print(f"octfluid {args.command}: error: {exc}", file=sys.stderr)
            return 1
