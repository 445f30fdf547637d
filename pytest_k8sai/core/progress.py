"""Progress lines on long steps (builds, cluster start, experiment runs): the one printer."""

from __future__ import annotations

import sys


def progress(msg: str) -> None:
    """Print ``msg`` at once, also while pytest captures output.

    ``sys.__stderr__`` bypasses pytest's capture: a run lasts minutes and must show progress."""
    print(msg, file=sys.__stderr__, flush=True)
