"""``python -m napari_octfluid.cli``: the same as the ``octfluid`` command."""

import sys

from . import main

sys.exit(main())
