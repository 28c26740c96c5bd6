"""``python -m labkit.cli ...``, as ``labkit ...`` (torchrun and accelerate launch run it)."""

import sys

from labkit.cli import main

sys.exit(main())
