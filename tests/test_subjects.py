"""A subject holds one volume with its labels, checked once when it is made."""

import dataclasses

import numpy as np
import pytest

from napari_octfluid.labels import IGNORE
from napari_octfluid.subjects import Subject


def test_a_subject_keeps_its_volume_and_names_its_dataset():
    images, labels = np.zeros((3, 40, 50), np.uint8), np.zeros((3, 40, 50), np.uint8)
    subject = Subject("duke_01", images, labels)
    assert subject.dataset == "duke" and subject.second_grader is None
    assert subject.images is images and subject.spacing_mm == (None, None, None)
    assert Subject("scan", images, labels, dataset="scan").dataset == "scan"  # a file's stem as its own group
    with pytest.raises(dataclasses.FrozenInstanceError):
        subject.name = "other"


def test_one_bscan_gains_a_bscan_axis():
    subject = Subject("b", np.ones((40, 50)), np.zeros((40, 50), np.uint8), second_grader=np.zeros((40, 50)))
    assert subject.images.shape == subject.labels.shape == subject.second_grader.shape == (1, 40, 50)


def test_labels_of_another_shape_are_refused():
    with pytest.raises(ValueError, match=r"v: images \(3, 40, 50\) and labels \(2, 40, 50\) differ in shape"):
        Subject("v", np.zeros((3, 40, 50)), np.zeros((2, 40, 50), np.uint8))


def test_a_second_grader_of_another_shape_and_a_bad_spacing_are_refused():
    images, labels = np.zeros((2, 40, 50)), np.zeros((2, 40, 50), np.uint8)
    with pytest.raises(ValueError, match="second grader"):
        Subject("v", images, labels, np.zeros((1, 40, 50)))
    with pytest.raises(ValueError, match="3 values"):
        Subject("v", images, labels, spacing_mm=(0.1, 0.01))


def test_annotated_bscans_leave_out_those_nobody_labelled():
    labels = np.zeros((3, 40, 50), np.uint8)
    labels[1] = IGNORE
    assert Subject("v", np.zeros((3, 40, 50)), labels).annotated_bscans() == [0, 2]
