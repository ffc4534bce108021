"""npe2 reader contribution: any scan octfluid reads, as a napari layer with its physical scale, and the user's
autosaved corrections beside it as a labels layer, with the spacing saved with them.

Masks read from files (a mask file, a Duke grader) are drawn in the reference colour, the user's restored
corrections in the model's (``napari_octfluid.colours``). The scan's identity (a digest of every pixel) is computed
as the scan opens only when a sidecar must be checked against it; otherwise the autosave computes it in its thread
(``io.scan_identity.deferred_identity_metadata``), so that opening never waits for it.
"""

from __future__ import annotations

import os
from pathlib import Path

from napari.utils.notifications import show_error, show_info, show_warning

from ._layers import META_KEY, REVIEW_KEY, coloured, layer_data, layer_kwargs, spacing_layer_update
from ._reader_preference import prefer_octfluid_reader
from .colours import MODEL, REFERENCE
from .io import OctReadError, OctVolume, can_read, read_volume
from .io.scan_identity import SCAN_IDENTITY_KEY, ScanIdentity, deferred_identity_metadata
from .io.sidecar import RESTORED_SIDECAR_KEY, RestoredSidecar, SavedSpacing, SidecarError, read_sidecar, sidecar_path
from .spacing import ENTERED_BY_USER, spacing_um_text

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
    prefer_octfluid_reader()  # octfluid is in use: from now on napari opens its formats with it (once, with a notice)
    try:
        volume = read_volume(path)
    except OctReadError as error:
        show_error(f"octfluid could not open {error}")
        return NO_LAYERS
    scan = layer_data(volume)
    if volume.is_labels:
        return [coloured(scan, REFERENCE)]  # a mask from a file: an expert's, a grader's, one saved earlier
    source = volume.meta.get("source")
    name = Path(source or volume.name).name
    # lexists: a dangling link is reported (restored_corrections says why it is not used), not ignored
    if not source or not os.path.lexists(sidecar_path(source)):
        # nothing to check now: the autosave computes the digest in its thread, before its first write
        scan[1]["metadata"][META_KEY][SCAN_IDENTITY_KEY] = deferred_identity_metadata(volume.data, name)
        return [scan, *duke_grader_layers(volume)]
    identity = ScanIdentity.of(volume.data, name)  # the sidecar is checked against it: once, here
    scan[1]["metadata"][META_KEY][SCAN_IDENTITY_KEY] = identity.as_metadata()
    restored = restored_corrections(volume, identity)
    if restored is None:
        return [scan, *duke_grader_layers(volume)]
    layers = [scan, corrections_layer(volume, restored, identity), *duke_grader_layers(volume)]
    spacing = spacing_to_restore(volume, restored.spacing)
    if spacing is not None:
        layers = [with_spacing(layer, volume.source_ndim, spacing, sidecar_path(source).name) for layer in layers]
    return layers


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
        name = f"{volume.name} fluid (grader {GRADERS.index(variable) + 1})"
        layers.append(coloured(layer_data(labels, name), REFERENCE))
    return layers


def restored_corrections(volume: OctVolume, identity: ScanIdentity) -> RestoredSidecar | None:
    """The labels and review state autosaved beside this scan: None if it cannot be used (a notice says why; the
    scan opens either way, and the sidecar is left as it is)."""
    path = sidecar_path(volume.meta["source"])
    try:
        restored = read_sidecar(path, scan=identity)
    except Exception as error:  # whatever a sidecar provokes, the scan itself must still open
        reason = str(error) if isinstance(error, SidecarError) else f"{path.name} is damaged ({error!r})"
        show_warning(
            f"octfluid opened {Path(volume.meta['source']).name} without the corrections in {path.name}: {reason}. "
            f"The file is left as it is (renamed to {path.name}.unreadable-<date> before an autosave of "
            f"this scan's labels takes its place)."
        )
        return None
    reviewed = int(restored.state.reviewed.sum())
    if restored.notice:
        show_warning(f"octfluid: {restored.notice}.")
    show_info(f"octfluid restored your corrections from {path.name} ({reviewed} reviewed B-scans).")
    return restored


def corrections_layer(volume: OctVolume, restored: RestoredSidecar, identity: ScanIdentity) -> tuple:
    """The restored corrections as a labels layer, drawn as the model's predictions are (the user's working mask)."""
    kwargs = layer_kwargs(volume, f"{volume.name} fluid")
    kwargs["metadata"][META_KEY].update(
        {
            "model": restored.state.model,
            SCAN_IDENTITY_KEY: identity.as_metadata(),
            RESTORED_SIDECAR_KEY: restored.fingerprint,
        }
    )
    kwargs["metadata"][REVIEW_KEY] = restored.state
    return coloured((volume.as_source_shape(restored.labels), kwargs, "labels"), MODEL)


def spacing_to_restore(volume: OctVolume, saved: SavedSpacing | None) -> SavedSpacing | None:
    """The spacing kept with the corrections, when it differs from the file's and the user entered it, or the file
    states none (a spacing the autosave merely copied from the file never overrides what the file says now)."""
    file_states_one = any(s is not None for s in volume.spacing_mm)
    if saved is None or saved.spacing_mm == tuple(volume.spacing_mm):
        return None
    if file_states_one and saved.source != ENTERED_BY_USER:
        return None
    if file_states_one:
        show_warning(
            f"octfluid: the spacing you entered ({spacing_um_text(saved.spacing_mm)}) replaces the one "
            f"{Path(volume.meta['source']).name} states ({spacing_um_text(volume.spacing_mm)}); change it in "
            "Quantify if the file's is right."
        )
    return saved


def with_spacing(layer: tuple, ndim: int, spacing: SavedSpacing, sidecar_name: str) -> tuple:
    data, kwargs, kind = layer
    update = spacing_layer_update(ndim, kwargs["metadata"], spacing.spacing_mm, spacing.source, sidecar_name)
    return data, {**kwargs, **update}, kind
