"""npe2 reader contribution: any scan octfluid reads, as a napari layer with its physical scale, and the user's
autosaved corrections beside it as a labels layer."""

from __future__ import annotations

import os
from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning

from ._layers import META_KEY, REVIEW_KEY, layer_data, layer_kwargs
from .io import OctReadError, OctVolume, can_read, read_volume
from .io.scan_identity import SCAN_IDENTITY_KEY, ScanIdentity
from .io.sidecar import RESTORED_SIDECAR_KEY, SidecarError, read_sidecar, sidecar_path

# npe2's documented "accepted the file, opened no layers" value: napari goes on instead of failing.
NO_LAYERS = [(None,)]


def napari_get_reader(path):
    """Return the reader for ``path`` if octfluid handles it, else None (napari then asks other plugins)."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    return read_scan_layers if can_read(path) else None


def read_scan_layers(path):
    """Read one scan; a file octfluid cannot use becomes a notification that says why, not a traceback."""
    if isinstance(path, (list, tuple)):
        path = path[0]
    try:
        volume = read_volume(path)
    except OctReadError as error:
        show_error(f"octfluid could not open {error}")
        return NO_LAYERS
    scan = layer_data(volume)
    if volume.is_labels:
        return [scan]
    # once, here: the autosave binds every sidecar write to it without reading the scan again
    identity = ScanIdentity.of(volume.data, Path(volume.meta.get("source") or volume.name).name)
    scan[1]["metadata"][META_KEY][SCAN_IDENTITY_KEY] = identity.as_metadata()
    return [scan, *restored_corrections(volume, identity), *duke_grader_layers(volume)]


def duke_grader_layers(volume: OctVolume) -> list:
    """Each grader's fluid in a Duke DME .mat file, as a labels layer beside its scan (not annotated: 255)."""
    from .io.duke_mat import GRADERS, GRADERS_KEY, read_duke_mat

    layers = []
    for variable in volume.meta.get(GRADERS_KEY, []):
        try:
            labels = read_duke_mat(volume.meta["source"], labels=variable)
        except OctReadError as error:
            show_warning(f"octfluid opened the scan without its {variable}: {error}")
            continue
        layers.append(layer_data(labels, f"{volume.name} fluid (grader {GRADERS.index(variable) + 1})"))
    return layers


def restored_corrections(volume: OctVolume, identity: ScanIdentity) -> list:
    """The labels and review state autosaved beside this scan, as a labels layer: none if there is no sidecar or it
    cannot be used (a notice says why; the scan opens either way, and the sidecar is left as it is)."""
    source = volume.meta.get("source")
    if volume.is_labels or not source:
        return []
    path = sidecar_path(source)
    if not os.path.lexists(path):  # lexists: a dangling link is reported, not ignored
        return []
    try:
        restored = read_sidecar(path, scan=identity)
    except Exception as error:  # whatever a sidecar provokes, the scan itself must still open
        reason = str(error) if isinstance(error, SidecarError) else f"{path.name} is damaged ({error!r})"
        show_warning(
            f"octfluid opened {Path(source).name} without the corrections in {path.name}: {reason}. "
            f"The file is left as it is (renamed to {path.name}.unreadable-<date> before an autosave of "
            f"this scan's labels takes its place)."
        )
        return []
    kwargs = layer_kwargs(volume, f"{volume.name} fluid")
    kwargs["metadata"][META_KEY].update(
        {
            "model": restored.state.model,
            SCAN_IDENTITY_KEY: identity.as_metadata(),
            RESTORED_SIDECAR_KEY: restored.fingerprint,
        }
    )
    kwargs["metadata"][REVIEW_KEY] = restored.state
    reviewed = int(restored.state.reviewed.sum())
    if restored.notice:
        show_warning(f"octfluid: {restored.notice}.")
    show_info(f"octfluid restored your corrections from {path.name} ({reviewed} reviewed B-scans).")
    return [(volume.as_source_shape(restored.labels), kwargs, "labels")]
