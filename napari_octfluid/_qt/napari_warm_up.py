"""Pay napari's one-time costs of a session's first opened scan and first layers in a background thread.

The first layer of a session makes napari build pint's unit registry (0.3-0.55 s), import scipy.ndimage for the
thumbnail (0.5 s when nothing imported it yet), and the first Labels imports pandas and scikit-image's colours (0.86 s
in all, measured). The first File > Open matches the file against every reader pattern of every plugin, each pattern
compiled to a regular expression the first time (175 ms with this environment's plugins). Made on the interface
thread, these costs froze napari as the first scan opened and as the first mask appeared. Done here, outside any
viewer, they are paid once for the session: napari's layer objects are plain Python until a viewer shows them, and
the compiled patterns are cached by ``fnmatch`` for the whole process.
"""

from __future__ import annotations

import importlib

import numpy as np


def warm_up_napari() -> None:
    """Build a tiny image and a tiny labels layer (not shown anywhere) and vispy's dash patterns, import octfluid's
    reader (30 ms on the interface thread at the first File > Open otherwise) and match a file name against every
    plugin's reader patterns: napari's first-use costs are paid here."""
    from napari.layers import Image, Labels

    Image(np.zeros((1, 2, 2), np.uint8), units=("pixel", "micrometer", "micrometer"))
    Labels(np.zeros((1, 2, 2), np.uint8))
    # each shown Labels layer gets a polygon overlay whose line visual builds vispy's 13 dash patterns, in Python
    # loops (55 ms on the interface thread when the first mask appeared, measured); vispy caches them per process
    # (functools.lru_cache in dash_atlas._make_pattern), so building them once here makes later ones free (0.2 ms)
    from vispy.visuals.line.dash_atlas import DashAtlas

    DashAtlas()
    importlib.import_module("napari_octfluid._reader")  # octfluid's reader, which File > Open will call
    try:
        from npe2 import PluginManager

        list(PluginManager.instance().iter_compatible_readers(["warm-up.tif"]))
    except Exception:  # noqa: BLE001 - only a warm-up: File > Open then does this itself, as it always did
        pass
