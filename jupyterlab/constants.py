"""Write ``src/constants.json``: what the front end must agree on with the kernel side.

``palette``: ``labkit.ui._base.palette()`` (the colours the bundled run panel and the sidebar's
badges draw with); ``ended`` and ``requested``: ``labkit.events.ENDED_STATUSES`` and
``REQUESTED_STATUSES``. ``make labextension`` runs this before building;
tests/test_labextension.py checks the file is current.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "src" / "constants.json"


def constants() -> dict[str, Any]:
    from labkit.events import ENDED_STATUSES, REQUESTED_STATUSES
    from labkit.ui._base import palette

    return {
        "palette": palette(),
        "ended": sorted(ENDED_STATUSES),
        "requested": sorted(REQUESTED_STATUSES),
    }


def text() -> str:
    return json.dumps(constants(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.write_text(text())
    sys.stdout.write(f"wrote {OUT}\n")
