"""npe2 reader contribution: any scan octfluid reads, as a napari layer with its physical scale."""

from __future__ import annotations

from napari.utils.notifications import show_error, show_info, show_warning

from ._layers import META_KEY, REVIEW_KEY, layer_data, layer_kwargs
from .io import OctReadError, OctVolume, can_read, read_volume
from .io.sidecar import SidecarError, load_sidecar, sidecar_path

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
    return [layer_data(volume), *restored_corrections(volume)]


def restored_corrections(volume: OctVolume) -> list:
    """The labels and review state autosaved beside this scan, as a labels layer (none if there is no sidecar
    or it cannot be used; the scan opens either way)."""
    source = volume.meta.get("source")
    if volume.is_labels or not source or not sidecar_path(source).exists():
        return []
    path = sidecar_path(source)
    try:
        labels, state = load_sidecar(path, expected_shape=volume.data.shape)
    except SidecarError as error:
        show_warning(f"octfluid: {error}")
        return []
    kwargs = layer_kwargs(volume, f"{volume.name} fluid")
    kwargs["metadata"][META_KEY]["model"] = state.model
    kwargs["metadata"][REVIEW_KEY] = state
    reviewed = int(state.reviewed.sum())
    show_info(f"octfluid restored your corrections from {path.name} ({reviewed} reviewed B-scans).")
    return [(volume.as_source_shape(labels), kwargs, "labels")]
