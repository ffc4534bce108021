"""npe2 reader contribution: any scan octfluid reads, as a napari layer with its physical scale."""

from __future__ import annotations

from napari.utils.notifications import show_error

from ._layers import layer_data
from .io import OctReadError, can_read, read_volume

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
        return [layer_data(read_volume(path))]
    except OctReadError as error:
        show_error(f"octfluid could not open {error}")
        return NO_LAYERS
