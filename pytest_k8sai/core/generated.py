"""The command line of the repository's data generators (``fixtures/make_*.py``).

Each generator renders its data file deterministically; this writes it, or with ``--check``
only says whether the committed file is stale.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def generator_main(
    render: Callable[[], str], out: Path, script: str, description: str, argv: list[str] | None
) -> int:
    """``--out PATH`` writes elsewhere; ``--check`` compares and returns 1 if stale."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=out, help=f"where to write (default: {out})")
    parser.add_argument("--check", action="store_true", help="only compare with --out; 1 if stale")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; run: python {script}", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0
