"""The benchmarks' study package lives in ``benchmarks/``, outside the installed plugin: put that folder on the
path, as running ``python benchmarks/loss_study.py`` does, so these tests import it the way the script does."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
