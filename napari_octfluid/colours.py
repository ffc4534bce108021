"""One colour per kind of mask, so that the model's mask, a fine-tuned model's mask, a reference (an expert or a
second grader) and the difference between two masks never look alike on screen or in a report.

The colours are the Okabe-Ito palette (Okabe and Ito, 2008, "Color Universal Design"), told apart by readers with
any common colour-vision deficiency. Plain RGB hex strings: the core never imports napari; ``_qt/mask_colours.py``
turns them into napari label colour maps.
"""

from __future__ import annotations

from .labels import FLUID, IGNORE

MODEL = "model"  # the shipped (or chosen) model's prediction
FINETUNED = "fine-tuned"  # a fine-tuned model's prediction
REFERENCE = "reference"  # an expert mask, a second grader, any mask read from a file
DIFFERENCE = "difference"  # false positive / false negative of a mask against a reference
ROLE_KEY = "octfluid_role"  # in a labels layer's metadata: which kind of mask it holds

ROLE_COLOURS = {
    MODEL: "#D55E00",  # vermillion
    FINETUNED: "#56B4E9",  # sky blue
    REFERENCE: "#F0E442",  # yellow
}
NOT_ANNOTATED_COLOUR = "#999999"  # label 255: the B-scan (or pixel) was not annotated

# the difference overlay's values and colours (labels.difference_labels makes the values)
FALSE_POSITIVE, FALSE_NEGATIVE = 1, 2
DIFFERENCE_COLOURS = {
    FALSE_POSITIVE: "#CC79A7",  # reddish purple: fluid in the mask, not in the reference
    FALSE_NEGATIVE: "#009E73",  # bluish green: fluid in the reference that the mask missed
}


def label_colours(role: str) -> dict[int | None, str]:
    """The label value -> colour table of a mask of this role (0 transparent; None: any other value)."""
    if role == DIFFERENCE:
        return {None: "transparent", 0: "transparent", **DIFFERENCE_COLOURS}
    try:
        fluid = ROLE_COLOURS[role]
    except KeyError:
        raise ValueError(f"no colours for masks of role {role!r}: choose one of {sorted(ROLE_COLOURS)}") from None
    return {None: fluid, 0: "transparent", FLUID: fluid, IGNORE: NOT_ANNOTATED_COLOUR}
