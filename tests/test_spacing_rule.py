"""One unit where a user types a spacing (micrometres), one rule (napari_octfluid.spacing) for the command line and
the Quantify widget: a unit slip is refused with what to type, never turned into an absurd volume (issue 20: 302
billion nL)."""

import pytest

from napari_octfluid.spacing import SpacingError, given_over_recorded, spacing_mm_from_um, spacing_um_text


@pytest.mark.parametrize(
    "typed_um, expected_mm",
    [
        ((120, 3.9, 11.8), (0.12, 0.0039, 0.0118)),  # Spectralis, Duke DME
        ((None, 3.9, 11.8), (None, 0.0039, 0.0118)),  # one B-scan: no distance between B-scans
        ((3, 1.95, 5.9), (0.003, 0.00195, 0.0059)),  # a dense raster, a high-resolution device
        ((1000, 10, 40), (1.0, 0.01, 0.04)),  # sparse, widefield
    ],
)
def test_plausible_micrometres_become_millimetres(typed_um, expected_mm):
    assert spacing_mm_from_um(typed_um) == pytest.approx(expected_mm)


@pytest.mark.parametrize(
    "typed_um, message",
    [
        # millimetres typed where micrometres belong: the example
        ((120, 0.0039, 11.8), "0.0039 um is not an OCT pixel size along depth; did you mean 3.9 um (0.0039 mm)?"),
        ((0.12, 3.9, 11.8), "0.12 um is not an OCT pixel size between B-scans; did you mean 120 um (0.12 mm)?"),
        # metres
        ((120, 3.9, 1.18e-5), "1.18e-05 um is not an OCT pixel size along width; did you mean 11.8 um (1.18e-05 m)?"),
        # nanometres
        ((120, 3900, 11.8), "3900 um is not an OCT pixel size along depth; did you mean 3.9 um (3900 nm)?"),
        # no unit makes it an OCT's
        ((120, 3.9, 5e9), "5e+09 um is not an OCT pixel size along width (an OCT's is 0.1 to 200 um)."),
        ((120, -3.9, 11.8), "the spacing along depth must be a number of micrometres above zero, not -3.9."),
        ((120, float("nan"), 11.8), "the spacing along depth must be a number of micrometres above zero, not nan."),
        ((120, 3.9), "the spacing has 3 values"),
    ],
)
def test_unit_slips_are_refused_with_what_to_type(typed_um, message):
    with pytest.raises(SpacingError) as refused:
        spacing_mm_from_um(typed_um)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)


def test_spacing_is_shown_in_micrometres():
    assert spacing_um_text((0.12, None, 0.0118)) == "120, unknown, 11.8 um"


@pytest.mark.parametrize(
    "given, recorded, chosen, replaced",
    [
        (None, (0.12, 0.0039, 0.0118), (0.12, 0.0039, 0.0118), []),  # nothing typed: the file's
        ((0.12, 0.00195, 0.0118), (None, None, None), (0.12, 0.00195, 0.0118), []),  # a file without one
        ((None, 0.00195, None), (0.12, None, 0.0118), (0.12, 0.00195, 0.0118), []),  # fills the unknown axis
        ((0.1201, 0.0039, 0.0118), (0.12, 0.0039, 0.0118), (0.1201, 0.0039, 0.0118), []),  # within 1 %: rounding
        ((0.24, 0.0039, 0.0118), (0.12, 0.0039, 0.0118), (0.24, 0.0039, 0.0118), ["between B-scans 120 um"]),
        (
            (0.12, 0.00195, 0.0059),
            (0.12, 0.0039, 0.0118),
            (0.12, 0.00195, 0.0059),
            ["along depth 3.9 um", "along width 11.8 um"],
        ),
    ],
)
def test_a_typed_spacing_wins_and_names_the_recorded_values_it_replaces(given, recorded, chosen, replaced):
    used, differing = given_over_recorded(given, recorded)
    assert used == pytest.approx(chosen) and differing == replaced
