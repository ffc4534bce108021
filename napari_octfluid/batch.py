"""Batch prediction: many scans into a folder of masks, one mask per scan, resumable, with a summary table.

``octfluid predict A.tif B.tif ... -o OUT/`` drives it in three steps, and under torchrun shares the third out:

1. :func:`collect_sources`: the scans named (files, folders of B-scans, glob patterns, and text or CSV lists of
   paths), in order, each once. A name that leads to no scan is kept with its problem, to be reported as a failed
   scan in the summary: one bad name never stops the batch.
2. :func:`plan_batch`: the mask each scan gets in the output folder, and whether it is made already.
3. :func:`predict_batch`: a generator of progress events over the planned scans that returns one
   :class:`ScanRow` per scan; :func:`write_summary` writes the rows as a CSV table.

A finished mask is recognised by what its TIFF records (``octfluid_provenance`` in its ImageJ description): the
scan it was made from (its path, size and modification time) and the weights (a digest of the checkpoint file). A
mask of the same scan by the same weights is skipped; one of the same scan by other weights, or from an older
version of the scan, is replaced only when asked (``overwrite``); a file that records no such thing (the user's
own, or a mask corrected and saved again) is never replaced: the scan's mask takes the next free name
(``scan_fluid-2.tif``). Every file is written atomically, so a killed run leaves finished masks and nothing
half-written, and the same command resumes it.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Generator, Iterable, Sequence

import numpy as np
import tifffile

from . import __version__
from ._atomic import atomic_path
from .events import Notice
from .outputs import OutputError

MASK_ENDING = "_fluid"
MASK_SUFFIX = ".tif"
SUMMARY_NAME = "octfluid_summary.csv"
LIST_SUFFIXES = (".txt", ".csv")  # a file of paths, one a line; no scan format uses these
PATH_COLUMNS = ("path", "source", "scan", "file", "input")  # the column of a CSV list that holds the paths
PROVENANCE_KEY = "octfluid_provenance"
DOUBLE_SUFFIXES = (".ome.tif", ".ome.tiff")
SUMMARY_COLUMNS = (
    "source",
    "output",
    "status",
    "error",
    "bscans",
    "fluid_bscans",
    "fluid_pixels",
    "fluid_volume_nl",
    "spacing_bscan_mm",
    "spacing_depth_mm",
    "spacing_width_mm",
    "spacing_source",
    "model",
    "seconds",
)
OK, SKIPPED, FAILED = "ok", "skipped", "failed"


# --- 1. the scans named -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanSource:
    """One scan of the batch: ``path`` to read, or None with the ``problem`` that left no scan to read.
    ``named`` is how the user or the list wrote it."""

    named: str
    path: Path | None = None
    problem: str | None = None


def is_list_file(name: str | os.PathLike) -> bool:
    return Path(name).suffix.lower() in LIST_SUFFIXES and Path(name).is_file()


def is_pattern(name: str) -> bool:
    """A glob pattern the shell did not expand (quoted, or on Windows), as opposed to a file whose name holds
    ``*``, ``?`` or ``[``."""
    return any(character in name for character in "*?[") and not Path(name).exists()


def _natural_key(path: Path) -> list:
    """``B2`` before ``B10``, as a person numbers scans, over the whole path."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def read_path_list(list_file: Path) -> list[str]:
    """The paths a list names, relative ones taken from the list's folder: a text file holds one path a line
    (blank lines and ``#`` comments skipped); a CSV file holds them in its column ``path`` (or ``source``,
    ``scan``, ``file``, ``input``: a batch's own summary can be given), else in its first column."""
    text = list_file.read_text(encoding="utf-8-sig")
    if list_file.suffix.lower() == ".csv":
        rows = [row for row in csv.reader(text.splitlines()) if row]
        header = [cell.strip().lower() for cell in rows[0]] if rows else []
        column = next((header.index(name) for name in PATH_COLUMNS if name in header), None)
        if column is None:  # no header naming the column: the first column of every row
            column, header_rows = 0, 0
        else:
            header_rows = 1
        names = [row[column].strip() for row in rows[header_rows:] if len(row) > column]
    else:
        names = [line.strip() for line in text.splitlines()]
    paths = [Path(name).expanduser() for name in names if name and not name.startswith("#")]
    return [str(path if path.is_absolute() else list_file.parent / path) for path in paths]


def collect_sources(inputs: Iterable[str]) -> tuple[list[ScanSource], list[str]]:
    """The scans ``inputs`` name, in order and each once, and notices of what was left out.

    Each input is a scan file or folder of B-scans, a glob pattern (``**`` reaches into sub-folders; it matches files,
    or folders of B-scans where it ends with "/"; matches that octfluid cannot read, such as notes or sidecars, are
    left out), or a ``.txt`` / ``.csv`` list of paths (see
    :func:`read_path_list`). A scan named twice, under any spelling, is predicted once."""
    from .io import can_read

    sources: list[ScanSource] = []
    notices: list[str] = []
    for name in inputs:
        if is_list_file(name):
            try:
                sources += [ScanSource(entry, Path(entry)) for entry in read_path_list(Path(name))]
            except (OSError, UnicodeDecodeError, csv.Error) as error:
                sources.append(ScanSource(name, problem=f"the list {name} cannot be read: {error}"))
        elif is_pattern(name):
            matches = sorted((Path(match) for match in glob.glob(name, recursive=True)), key=_natural_key)
            # files, or folders where the pattern ends with "/": 'scans/**/*' took each folder of B-scans as a scan
            # and each of its B-scans again, and each folder of volumes as a folder of B-scans
            folders = name.endswith(("/", os.sep))
            matches = [match for match in matches if match.is_dir() == folders]
            readable = [match for match in matches if can_read(match)]
            left_out = len(matches) - len(readable)
            if readable and left_out:
                notices.append(f"{name}: left out {left_out} file(s) octfluid does not read as scans.")
            sources += [ScanSource(str(match), match) for match in readable]
            if not readable:  # named, yet no scan: a failed row, as a missing file is
                problem = f"{name} matches no file" + (
                    f" octfluid reads ({left_out} of other kinds)." if left_out else "."
                )
                sources.append(ScanSource(name, problem=problem))
        else:
            sources.append(ScanSource(name, Path(name)))
    unique, seen = [], {}
    for source in sources:
        if source.path is not None and not source.path.exists():
            source = ScanSource(source.named, problem=f"{source.named} does not exist.")
        key = source.path.resolve() if source.path is not None else None
        if key is not None and key in seen:
            notices.append(f"{source.named} is the scan {seen[key]} again: predicted once.")
            continue
        if key is not None:
            seen[key] = source.named
        unique.append(source)
    return unique, notices


def check_output_folder(out_dir: Path, sources: Sequence[ScanSource]) -> None:
    """Refuse an output folder that holds one of the scans (directly or in a sub-folder): the masks written among
    the scans would be taken for scans by the next run of the same command (a glob over the folder)."""
    folder = out_dir.resolve()
    for source in sources:
        if source.path is not None and source.path.resolve().is_relative_to(folder):
            raise OutputError(
                f"the output folder {out_dir} holds the scan {source.named}: masks written among the scans would "
                "be read as scans by the next run; choose a folder of its own (e.g. a sub-folder masks/)."
            )


# --- 2. the plan ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelIdentity:
    """The weights a mask was predicted with: their path, for people, and a digest of the file, which tells a
    checkpoint retrained in place from the one a mask came from."""

    path: str
    digest: str

    @classmethod
    def of(cls, weights: str | os.PathLike) -> ModelIdentity:
        digest = hashlib.blake2b(digest_size=16)
        with open(weights, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
        return cls(str(weights), digest.hexdigest())


def source_fingerprint(path: Path) -> str:
    """Size and modification time of a scan file, or of every file in a folder of B-scans: a scan exported again
    gets a new mask, without reading gigabytes to find out."""
    if path.is_dir():
        entries = sorted((entry.name, entry.stat()) for entry in os.scandir(path) if entry.is_file())
        listed = ";".join(f"{name}:{info.st_size}:{info.st_mtime_ns}" for name, info in entries)
        return "folder:" + hashlib.blake2b(listed.encode(), digest_size=16).hexdigest()
    info = path.stat()
    return f"file:{info.st_size}:{info.st_mtime_ns}"


def read_provenance(mask: Path) -> dict | None:
    """What a mask written by :func:`write_mask` records of its making; None for any other file."""
    try:
        with tifffile.TiffFile(mask) as tif:
            recorded = (tif.imagej_metadata or {}).get(PROVENANCE_KEY)
        provenance = json.loads(recorded) if isinstance(recorded, str) else None
    except Exception:  # not a TIFF, damaged, or foreign metadata: not a mask this batch can claim
        return None
    return provenance if isinstance(provenance, dict) and isinstance(provenance.get("source"), str) else None


def mask_stem(path: Path) -> str:
    """The scan's name without its format's suffix (``a.ome.tif`` gives ``a``; a folder gives its name)."""
    name = path.name
    for suffix in DOUBLE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "scan"
    return (path.stem if path.is_file() else name) or "scan"


def mask_name(stem: str, number: int = 1) -> str:
    return f"{stem}{MASK_ENDING}{'' if number == 1 else f'-{number}'}{MASK_SUFFIX}"


@dataclass(frozen=True)
class PlannedScan:
    """A scan of the batch with its place in it (``index``, the summary's order), its mask, and whether the mask
    is made already (by these weights, from this version of the scan)."""

    index: int
    source: ScanSource
    output: Path | None = None
    finished: bool = False
    fingerprint: str = ""


def plan_batch(
    sources: Sequence[ScanSource], out_dir: str | os.PathLike, model: ModelIdentity, overwrite: bool = False
) -> list[PlannedScan]:
    """The mask of each scan in ``out_dir`` (``<scan>_fluid.tif``, ``<scan>_fluid-2.tif`` where that name is
    taken), found again where an earlier run made it, so that finished masks are skipped.

    Raises
    ------
    OutputError
        Before any work, when masks of these scans by other weights or from older versions of the scans are in
        the folder and ``overwrite`` is not given.
    """
    out_dir = Path(out_dir)
    existing = sorted(os.listdir(out_dir)) if out_dir.is_dir() else []
    claimed: set[str] = set()
    own: dict[int, tuple[str, bool]] = {}  # index -> (the scan's own mask found in the folder, whether finished)
    outdated: list[str] = []
    fingerprints: dict[int, str] = {}
    for index, source in enumerate(sources):
        if source.path is None:
            continue
        try:
            fingerprints[index] = source_fingerprint(source.path)
        except OSError:  # reading it will say what is wrong, in its row
            fingerprints[index] = ""
        mine = re.compile(rf"{re.escape(mask_stem(source.path) + MASK_ENDING)}(-\d+)?{re.escape(MASK_SUFFIX)}")
        canonical = str(source.path.resolve())
        found: list[tuple[str, bool]] = []
        for name in filter(mine.fullmatch, existing):
            provenance = read_provenance(out_dir / name)
            if provenance is not None and provenance["source"] == canonical:
                finished = provenance.get("model_digest") == model.digest and (
                    provenance.get("source_fingerprint") == fingerprints[index]
                )
                found.append((name, finished))
        if found:
            own[index] = max(found, key=lambda candidate: candidate[1])  # a finished one where there is one
            claimed.add(own[index][0])
            if not own[index][1]:
                outdated.append(own[index][0])
    if outdated and not overwrite:
        shown = ", ".join(outdated[:5]) + (f" and {len(outdated) - 5} more" if len(outdated) > 5 else "")
        raise OutputError(
            f"{out_dir} holds masks of these scans made by other weights or from an older version of the scan "
            f"({shown}): pass --overwrite to make them again, or choose another folder."
        )
    taken = set(existing) | claimed
    plan = []
    for index, source in enumerate(sources):
        if source.path is None:
            plan.append(PlannedScan(index, source))
            continue
        if index in own:
            name, finished = own[index]
        else:
            number = 1
            while mask_name(mask_stem(source.path), number) in taken:  # never another's file, never twice
                number += 1
            name, finished = mask_name(mask_stem(source.path), number), False
            taken.add(name)
        plan.append(PlannedScan(index, source, out_dir / name, finished, fingerprints[index]))
    return plan


# --- 3. the run -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanRow:
    """One line of the summary: what became of one scan."""

    index: int
    source: str
    output: str = ""
    status: str = FAILED
    error: str = ""
    bscans: int | None = None
    fluid_bscans: int | None = None
    fluid_pixels: int | None = None
    fluid_volume_nl: float | None = None
    spacing_mm: tuple[float | None, float | None, float | None] = (None, None, None)
    spacing_source: str = ""
    model: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class ScanStarted:
    """A scan begins: ``position`` of ``count`` in this process's share (from 1)."""

    index: int
    position: int
    count: int
    source: str


@dataclass(frozen=True)
class ScanFinished:
    row: ScanRow
    position: int
    count: int


BatchEvent = ScanStarted | ScanFinished | Notice  # and, while a scan is predicted, inference's events


@dataclass(frozen=True)
class _Figures:
    """A mask's fluid figures, for its row."""

    bscans: int
    fluid_bscans: int
    fluid_pixels: int
    fluid_volume_nl: float | None
    spacing_mm: tuple

    @classmethod
    def of(cls, labels: np.ndarray, spacing_mm) -> _Figures:
        from .quantify import summarize_fluid

        summary = summarize_fluid(labels, spacing_mm)
        per_bscan = summary.pixels_per_bscan
        return cls(len(per_bscan), int((per_bscan > 0).sum()), summary.total_pixels, summary.volume_nl, spacing_mm)


def write_mask(output: Path, labels: np.ndarray, spacing_mm, meta: dict, provenance: dict) -> Path:
    """The mask as :func:`~napari_octfluid.io.write_tiff` writes it, with ``provenance`` added to its ImageJ
    description, in one atomic step: a mask under its name always says where it came from."""
    from .io import write_tiff

    with atomic_path(output) as temporary:
        write_tiff(temporary, labels, spacing_mm, meta, kind="labels")
        description = tifffile.tiffcomment(temporary) or ""
        recorded = json.dumps(provenance, ensure_ascii=True)  # an ASCII tag, whatever the scan's name
        tifffile.tiffcomment(temporary, f"{description.rstrip()}\n{PROVENANCE_KEY}={recorded}\n")
    return output


def _error_text(error: BaseException) -> str:
    from .io import OctReadError
    from .model import CheckpointError
    from .preprocess import BscanError

    text = " ".join(str(error).split())
    if isinstance(error, (OctReadError, BscanError, CheckpointError, MemoryError, OSError)) and text:
        return text  # octfluid's own messages name the file and say what to do
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def predict_batch(
    plan: Sequence[PlannedScan],
    model,
    weights: ModelIdentity,
    device: str = "auto",
    batch_size: int | None = None,
    min_lesion_pixels: int | None = None,
) -> Generator[BatchEvent | object, None, list[ScanRow]]:
    """Predict the planned scans one after another, writing each mask as soon as it is made; a finished mask is
    skipped (its figures read back from it); ``min_lesion_pixels`` as in :func:`~napari_octfluid.inference.predict`.
    A scan that fails (unreadable, damaged, too large) gives a failed row
    and the batch goes on. Yields :class:`ScanStarted`, the prediction's own events
    (:mod:`~napari_octfluid.inference`) and :class:`ScanFinished`; returns the rows, in the plan's order."""
    rows = []
    for position, planned in enumerate(plan, start=1):
        yield ScanStarted(planned.index, position, len(plan), planned.source.named)
        start = time.perf_counter()
        try:
            row = yield from _one_scan(planned, model, weights, device, batch_size, min_lesion_pixels)
        except Exception as error:  # one bad scan never stops the batch: its row says what went wrong
            row = ScanRow(planned.index, planned.source.named, status=FAILED, error=_error_text(error))
        row = replace(row, seconds=time.perf_counter() - start, model=weights.path)
        rows.append(row)
        yield ScanFinished(row, position, len(plan))
    return rows


def _one_scan(
    planned: PlannedScan,
    model,
    weights: ModelIdentity,
    device: str,
    batch_size: int | None,
    min_lesion_pixels: int | None = None,
):
    from .inference import predict
    from .io import read_volume
    from .preprocess import check_not_blank

    source = planned.source
    if source.path is None or planned.output is None:
        return ScanRow(planned.index, source.named, status=FAILED, error=source.problem or "no scan to read.")
    if planned.finished:
        skipped = _finished_row(planned)
        if skipped is not None:
            return skipped
    volume = read_volume(source.path).require_scan()
    check_not_blank(volume.data)  # a failed export's row says so, not "no fluid"
    # the file's axial pixel size, where it gives one: resampled to the model's when it differs (as octfluid predict)
    result = yield from predict(volume.data, model, device, batch_size, min_lesion_pixels, volume.spacing_mm[1])
    provenance = {
        "source": str(source.path.resolve()),
        "source_fingerprint": planned.fingerprint,
        "model": weights.path,
        "model_digest": weights.digest,
        "spacing_source": str(volume.meta.get("spacing_source", "unknown")),
        "octfluid": __version__,
    }
    meta = {**volume.meta, "model": weights.path}
    write_mask(planned.output, volume.as_source_shape(result.labels), volume.spacing_mm, meta, provenance)
    figures = _Figures.of(result.labels, volume.spacing_mm)
    return _row(planned, OK, figures, provenance["spacing_source"])


def _finished_row(planned: PlannedScan) -> ScanRow | None:
    """The row of a mask made before, its figures read back from it; None when it cannot be read (then it is made
    again: the file is this batch's own)."""
    from .io import read_volume

    try:
        mask = read_volume(planned.output)
        provenance = read_provenance(planned.output) or {}
    except Exception:
        return None
    figures = _Figures.of(mask.data, mask.spacing_mm)
    return _row(planned, SKIPPED, figures, str(provenance.get("spacing_source", "unknown")))


def _row(planned: PlannedScan, status: str, figures: _Figures, spacing_source: str) -> ScanRow:
    return ScanRow(
        planned.index,
        planned.source.named,
        str(planned.output),
        status,
        bscans=figures.bscans,
        fluid_bscans=figures.fluid_bscans,
        fluid_pixels=figures.fluid_pixels,
        fluid_volume_nl=figures.fluid_volume_nl,
        spacing_mm=figures.spacing_mm,
        spacing_source=spacing_source,
    )


# --- the summary ------------------------------------------------------------------------------------------------


def is_summary(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a summary a batch wrote (its header row is ours): a rerun replaces it without
    ``--overwrite``, which it asks before replacing any other file (an expert's mask named by mistake)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle), None) == list(SUMMARY_COLUMNS)
    except (OSError, UnicodeDecodeError, csv.Error):
        return False


def earlier_rows(path: str | os.PathLike, rows: Iterable[ScanRow]) -> list[list[str]]:
    """The rows of the summary already at ``path`` (one a batch wrote) for scans this run did not name: a batch run
    again on part of its scans kept only their rows, and the others' masks stayed in the folder unlisted."""
    if not is_summary(path):
        return []
    named = {listed_path(row.source) for row in rows}
    with open(path, newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))[1:]
    return [row for row in table if len(row) == len(SUMMARY_COLUMNS) and row[0] not in named]


def listed_path(named: str) -> str:
    """A scan as the summary lists it: from the root, as named after the working folder where it was named from
    there. A list reads its relative paths from its own folder, so "batchin/a.tif" named in the working folder made
    the summary of a batch a list of missing files."""
    return named if not named or Path(named).is_absolute() else str(Path.cwd() / named)


def write_summary(path: str | os.PathLike, rows: Iterable[ScanRow], earlier: Iterable[Sequence[str]] = ()) -> Path:
    """The summary table: the ``earlier`` rows (:func:`earlier_rows`) kept first, then one row per scan in the
    batch's order, written whole or not at all. Columns are empty where a figure is unknown: the volume where the
    spacing is not known on every axis, the figures of a scan that failed."""

    def cell(value) -> str:
        if value is None:
            return ""
        return f"{value:.6g}" if isinstance(value, float) else str(value)

    path = Path(path)
    with atomic_path(path) as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SUMMARY_COLUMNS)
        writer.writerows(earlier)
        for row in sorted(rows, key=lambda row: row.index):
            writer.writerow(
                [
                    listed_path(row.source),
                    listed_path(row.output),
                    row.status,
                    row.error,
                    *map(cell, (row.bscans, row.fluid_bscans, row.fluid_pixels, row.fluid_volume_nl)),
                    *map(cell, row.spacing_mm),
                    row.spacing_source,
                    row.model,
                    f"{row.seconds:.2f}",
                ]
            )
    return path
