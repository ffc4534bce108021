"""octfluid: segment, correct and quantify retinal fluid in OCT scans.

Kept import-free on purpose: napari imports this package at start-up, so torch and Qt
are only imported by the modules that need them.
"""

__version__ = "0.1.0"
