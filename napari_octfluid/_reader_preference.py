"""Make octfluid napari's preferred reader for the scan formats it reads, once, without overriding the user.

napari 0.9 opens a file with a single compatible reader directly; with several (octfluid and napari's builtins
both read ``*.tif``) it opens the reader chosen in Preferences > Plugins (``settings.plugins.extension2reader``,
filename pattern -> plugin), and without one it asks, with "napari builtins" preselected: the scan then opens
without its autosaved corrections and its spacing. npe2 manifests cannot declare a preference, so octfluid sets
it in napari's settings the first time it is used (reader, panel, sample), for every pattern of its reader that has
no preference yet, and says so once.

What octfluid set is remembered beside napari's settings file (``octfluid_reader_preference.json``): a pattern the
user later changes or removes in Preferences is never set again. Generic picture formats (PNG, JPEG, BMP) are left
alone: octfluid reads one as a single B-scan, but they are every other picture on the computer, and a folder of
B-scans opens with octfluid anyway.
"""

from __future__ import annotations

import json
from pathlib import Path

PLUGIN = "octfluid"
NOT_PREFERRED = {"*.png", "*.jpg", "*.jpeg", "*.bmp"}
MEMORY_NAME = "octfluid_reader_preference.json"

_offered_this_session: set[str] = set()  # where napari keeps no settings file (tests, NAPARI_CONFIG="")


def reader_patterns() -> list[str]:
    """The filename patterns of octfluid's reader in its manifest (napari.yaml), less the generic pictures."""
    from npe2 import PluginManager

    manifest = PluginManager.instance().get_manifest(PLUGIN)
    patterns = [p for reader in manifest.contributions.readers or [] for p in reader.filename_patterns]
    return [p for p in dict.fromkeys(patterns) if p not in NOT_PREFERRED]


def _memory_path() -> Path | None:
    from napari.settings import get_settings

    config = get_settings().config_path
    return None if config is None else Path(config).parent / MEMORY_NAME


def _offered_before() -> set[str]:
    path = _memory_path()
    if path is None:
        return set(_offered_this_session)
    try:
        return set(json.loads(path.read_text())["patterns"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _remember(patterns: set[str]) -> None:
    _offered_this_session.update(patterns)
    path = _memory_path()
    if path is not None:
        try:
            path.write_text(json.dumps({"patterns": sorted(patterns)}, indent=1))
        except OSError:  # a read-only config folder: octfluid offers again next session, nothing worse
            pass


def prefer_octfluid_reader() -> list[str]:
    """Set octfluid as the preferred reader for each of its patterns that has no preference and that octfluid never
    set before; returns the patterns set (empty: nothing changed). Shows the one notice when it sets any."""
    from napari.settings import get_settings
    from napari.utils.notifications import show_info

    try:
        patterns = reader_patterns()
    except KeyError:  # octfluid's manifest is not registered (imported outside napari): nothing to prefer
        return []
    plugins = get_settings().plugins
    offered = _offered_before()
    chosen = dict(plugins.extension2reader)
    new = [p for p in patterns if p not in chosen and p not in offered]
    if not new:
        return []
    plugins.extension2reader = {**chosen, **{p: PLUGIN for p in new}}
    _remember(offered | set(new))
    show_info(
        f"octfluid is now napari's reader for {', '.join(new)}, so File > Open and drag-and-drop restore your "
        "corrections and the spacing. To change it back: File > Preferences > Plugins, File extension readers."
    )
    return new
