"""Keep a widget from widening the dock beyond a laptop screen: layer drop-downs narrower than their longest layer
name, messages that wrap at the dock's edge."""

from __future__ import annotations

from qtpy.QtWidgets import QSizePolicy

COMBO_BOX_CHARACTERS = 12  # what a layer drop-down shows at least; the full name is in its list


def narrow_combo_box(combo_box):
    """Let a magicgui drop-down be narrower than its longest item; returns it."""
    native = combo_box.native
    native.setSizeAdjustPolicy(native.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    native.setMinimumContentsLength(COMBO_BOX_CHARACTERS)
    return combo_box


def wrap_message(label) -> None:
    """Let a magicgui label wrap at the dock's edge rather than widen it."""
    label.native.setWordWrap(True)
    policy = label.native.sizePolicy()
    policy.setHorizontalPolicy(QSizePolicy.Policy.Ignored)
    policy.setHeightForWidth(True)
    label.native.setSizePolicy(policy)
