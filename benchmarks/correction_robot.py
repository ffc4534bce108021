"""A simulated clinician who corrects a predicted fluid mask with octfluid's click tools, counting every action.

The robot follows the protocol of the interactive-segmentation literature (Xu et al. 2016; Sofiiuk, Petrov &
Konushin 2022, "RITM"): it looks at the largest error left in the B-scan and acts on it, until the B-scan reaches
the target Dice against the expert (0.9: NoC@90) or a cap of actions. Its actions, in the order it prefers them:

- **remove** (Alt-click, ``correct.remove_lesion``): the error is a predicted lesion that is mostly false (less than
  half of it is expert fluid): it goes, true part and all (fewer error pixels), and the true part is added back;
- **add** (Shift+Alt-click, ``correct.add_lesion``): the error is an expert lesion that is mostly missed; it clicks
  where the model's probability is highest inside it, at the tools' starting threshold (the model's decision
  threshold), then widens or narrows in the tools' steps (Shift+W / Shift+T, ``THRESHOLD_STEP``) while that helps,
  each step one more action; an addition that does not raise the B-scan's Dice, or does not leave fewer error pixels,
  is undone and not counted (so every action the robot keeps leaves fewer error pixels, and it never goes round in
  circles);
- **brush** (a stroke with napari's paint brush or eraser) as a last resort: it fixes the error pixels of the
  largest error region within ``BRUSH_RADIUS`` pixels of its deepest point (the pixel farthest from the region's
  edge, where the literature's robot clicks). The stroke is ideal: it never paints outside the error.

Pixels the expert marked not annotated (``IGNORE``) count for nothing, as in evaluation. Numpy only; no napari.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from napari_octfluid import correct
from napari_octfluid.labels import BACKGROUND, FLUID, IGNORE

TARGET_DICE = 0.9
MAX_ACTIONS = 20
BRUSH_RADIUS = 12  # pixels: napari's default brush is 10 px wide at 100 %; a short stroke covers a disc like this
THRESHOLD_STEP = 0.05  # the click tools' widen/narrow step (_qt/click_tools.THRESHOLD_STEP; not imported: Qt)
MOSTLY = 0.5  # a lesion less than half right is a false (or missed) lesion, not a boundary error


def bscan_dice(mask: np.ndarray, expert: np.ndarray) -> float:
    """Dice of ``mask`` (fluid where > 0) against ``expert`` on the annotated pixels; 1 when neither has fluid."""
    annotated = expert != IGNORE
    predicted, truth = (mask > 0) & (mask != IGNORE) & annotated, (expert == FLUID)
    both = int((predicted & truth).sum())
    total = int(predicted.sum() + truth.sum())
    return 1.0 if total == 0 else 2.0 * both / total


@dataclass
class BscanCorrection:
    """What the robot did on one B-scan."""

    bscan: int
    dice_before: float
    dice_after: float
    error_pixels_before: int
    error_pixels_after: int
    actions: list[str] = field(default_factory=list)

    @property
    def reached(self) -> bool:
        return self.dice_after >= TARGET_DICE


def error_pixels(mask: np.ndarray, expert: np.ndarray) -> int:
    annotated = expert != IGNORE
    return int((((mask == FLUID) != (expert == FLUID)) & annotated).sum())


def _deepest_point(region: np.ndarray) -> tuple[int, int]:
    """The pixel of ``region`` farthest from its edge."""
    depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
    return tuple(int(c) for c in np.unravel_index(int(np.argmax(depth)), region.shape))


def _largest_error(mask: np.ndarray, expert: np.ndarray) -> tuple[np.ndarray, bool]:
    """The largest connected region of error pixels in a B-scan, and whether it is a false positive region."""
    annotated = expert != IGNORE
    predicted, truth = (mask == FLUID) & annotated, (expert == FLUID)
    best, best_size, best_false = None, 0, False
    for errors, is_false in ((predicted & ~truth, True), (truth & ~predicted, False)):
        regions, count = ndimage.label(errors, structure=correct.IN_BSCAN)
        if not count:
            continue
        sizes = np.bincount(regions.ravel())[1:]
        largest = int(np.argmax(sizes))
        if sizes[largest] > best_size:
            best, best_size, best_false = regions == largest + 1, int(sizes[largest]), is_false
    return best, best_false


def _share_of(component: np.ndarray, other: np.ndarray) -> float:
    return float((component & other).sum()) / max(int(component.sum()), 1)


class CorrectionRobot:
    """Corrects the B-scans of one volume: ``labels[Z, Y, X]`` (the model's mask, corrected in place),
    ``probability[Z, Y, X]`` (the model's fluid probability, for additions), ``expert[Z, Y, X]`` (the reference,
    ``IGNORE`` where not annotated) and the tools' starting ``threshold`` (the model's decision threshold)."""

    def __init__(self, labels, probability, expert, threshold: float, max_actions: int = MAX_ACTIONS):
        self.labels = np.array(labels, dtype=np.uint8, copy=True)
        self.probability = np.asarray(probability, np.float32)
        self.expert = np.asarray(expert)
        self.threshold = float(threshold)
        self.max_actions = max_actions

    def correct(self, z: int) -> BscanCorrection:
        expert = self.expert[z]
        record = BscanCorrection(
            z,
            bscan_dice(self.labels[z], expert),
            0.0,
            error_pixels(self.labels[z], expert),
            0,
        )
        while bscan_dice(self.labels[z], expert) < TARGET_DICE and len(record.actions) < self.max_actions:
            region, is_false = _largest_error(self.labels[z], expert)
            if region is None:
                break
            if self._click(z, region, is_false, record):
                continue
            self._brush(z, region, is_false)
            record.actions.append("brush")
        record.dice_after = bscan_dice(self.labels[z], expert)
        record.error_pixels_after = error_pixels(self.labels[z], expert)
        return record

    # --- the click tools ------------------------------------------------------------------------------------------
    def _click(self, z: int, region: np.ndarray, is_false: bool, record: BscanCorrection) -> bool:
        """One click (and its widen/narrow steps) if the error is a whole false or missed lesion and the click
        helps; False when the robot must brush instead."""
        expert, mask = self.expert[z], self.labels[z]
        if is_false:
            lesions, _ = ndimage.label(mask == FLUID, structure=correct.IN_BSCAN)
            y, x = _deepest_point(region)
            lesion = lesions == lesions[y, x]
            if _share_of(lesion, expert == FLUID) >= MOSTLY:
                return False  # the lesion is mostly right: its wrong rim is brush work
            return self._keep_if_removal_helps(z, correct.remove_lesion(self.labels, (z, y, x)), record)
        missed, _ = ndimage.label(expert == FLUID, structure=correct.IN_BSCAN)
        y, x = _deepest_point(region)
        lesion = missed == missed[y, x]
        if _share_of(lesion, mask == FLUID) >= MOSTLY:
            return False
        # the user clicks where the lesion looks most like fluid: the model's most probable pixel in it
        inside = np.where(lesion, self.probability[z], -1.0)
        y, x = np.unravel_index(int(np.argmax(inside)), inside.shape)
        threshold = min(self.threshold, float(self.probability[z, y, x]))  # widened until the click is inside
        steps = int(np.ceil(round((self.threshold - threshold) / THRESHOLD_STEP, 6)))
        threshold = max(self.threshold - steps * THRESHOLD_STEP, THRESHOLD_STEP)
        return self._add_and_adjust(z, (z, y, x), threshold, steps, record)

    def _add_and_adjust(self, z: int, point, start: float, steps_to_start: int, record: BscanCorrection) -> bool:
        """Add at ``start`` (reached from the tools' threshold in ``steps_to_start`` widen steps), then narrow or
        widen one step at a time while the B-scan's Dice improves; keep the best, each step one action. The tools
        keep the threshold last used, as the napari tools do."""

        def dice_at(level: float):
            result = correct.add_lesion(self.labels, self.probability, point, level)
            if not result.changed:
                return -1.0, None
            return bscan_dice(result.applied_to(self.labels)[z], self.expert[z]), result

        before = bscan_dice(self.labels[z], self.expert[z])
        best_level, (best_dice, best) = start, dice_at(start)
        for direction in (+1, -1):  # narrow, then widen
            level = start
            while THRESHOLD_STEP <= round(level + direction * THRESHOLD_STEP, 4) <= 1.0:
                level = round(level + direction * THRESHOLD_STEP, 4)
                dice, result = dice_at(level)
                if dice <= best_dice:
                    break
                best_level, best_dice, best = level, dice, result
        if best is None or best_dice <= before:
            return False
        expert = self.expert[z]
        if error_pixels(best.applied_to(self.labels)[z], expert) >= error_pixels(self.labels[z], expert):
            # an addition that brings back at least as many wrong pixels as it fixes: after removing a mostly false
            # lesion, the probability region around its true part is often the removed lesion itself, and adding
            # it back would undo the removal (the robot used to alternate the two until the cap); it brushes instead
            return False
        self.labels = best.applied_to(self.labels)
        self.threshold = best_level
        adjusted = round(abs(best_level - start) / THRESHOLD_STEP)
        record.actions.extend(["add"] + ["threshold"] * (steps_to_start + adjusted))
        return True

    def _keep_if_removal_helps(self, z: int, result: correct.Correction, record: BscanCorrection) -> bool:
        """Keep a removal that leaves fewer error pixels: a lesion mostly false costs more than its true part, which
        the robot then adds back or paints (the B-scan's Dice may dip on the way, as it does for a user)."""
        if not result.changed:
            return False
        after = result.applied_to(self.labels)
        if error_pixels(after[z], self.expert[z]) >= error_pixels(self.labels[z], self.expert[z]):
            return False
        self.labels = after
        record.actions.append("remove")
        return True

    # --- the brush ------------------------------------------------------------------------------------------------
    def _brush(self, z: int, region: np.ndarray, is_false: bool) -> None:
        y, x = _deepest_point(region)
        rows, cols = np.ogrid[: region.shape[0], : region.shape[1]]
        disc = (rows - y) ** 2 + (cols - x) ** 2 <= BRUSH_RADIUS**2
        self.labels[z][region & disc] = BACKGROUND if is_false else FLUID


def correct_volume(labels, probability, expert, threshold: float, bscans=None, max_actions: int = MAX_ACTIONS):
    """The robot run over ``bscans`` (default: every annotated B-scan): the corrected labels and each record."""
    robot = CorrectionRobot(labels, probability, expert, threshold, max_actions)
    chosen = bscans if bscans is not None else [z for z in range(len(expert)) if (expert[z] != IGNORE).any()]
    records = [robot.correct(int(z)) for z in chosen]
    return robot.labels, records
