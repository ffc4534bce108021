"""The peak-probability candidate of bench_min_lesion.py (measured and dropped, docs/min_lesion_calibration.md)."""

import numpy as np
from bench_min_lesion import confident_regions_only


def test_a_region_stays_only_where_its_highest_probability_reaches_the_peak():
    labels = np.zeros((1, 8, 12), np.uint8)
    labels[0, 1:4, 1:4] = 1  # peak 0.9995: kept
    labels[0, 5:7, 7:11] = 2  # peak 0.995: removed, class and all
    fluid = np.where(labels > 0, 0.991, 0.0).astype(np.float32)
    fluid[0, 2, 2], fluid[0, 6, 8] = 0.9995, 0.995
    kept = confident_regions_only(labels, fluid, 0.999)
    expected = labels.copy()
    expected[0, 5:7, 7:11] = 0
    np.testing.assert_array_equal(kept, expected)
    np.testing.assert_array_equal(confident_regions_only(labels, fluid, 0.99), labels)  # both reach 0.99
