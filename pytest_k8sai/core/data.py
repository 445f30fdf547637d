"""Where the data files that ship inside the package live: the one module that knows.

Everything a suite reads by default (profiles, Kueue setups, the Whisper trace, the MIG
catalogue and slowdown fit, the prompts, the EPP configurations, the component pins) is
package data, so an installed ``pytest-k8sai`` works from any directory. Callers name a file
by its place in the package (``data_file("kueue", "setups.yaml")``), never by a path into a
checkout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE = "pytest_k8sai"


def data_file(*parts: str) -> Path:
    """A packaged data file or folder, e.g. ``data_file("das", "mig_catalogue.yaml")``."""
    # setuptools installs package data as plain files (no zip), so a real Path is always there.
    return Path(str(resources.files(PACKAGE).joinpath(*parts)))
