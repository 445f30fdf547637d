"""The inference suite's own dependencies, installed with the ``inference`` extra.

GuideLLM (the load generator) brings ~5 GB of CUDA torch, so a platform team that only runs
the Kueue and GPU slicing suites does not install it. Without them the inference tests skip,
and the reason names the install command."""

from __future__ import annotations

import importlib.util

# import name -> PyPI distribution
PACKAGES = {
    "guidellm": "guidellm",
    "grpc": "grpcio",
    "envoy": "xds-protos",
    "tokenizers": "tokenizers",
    "transformers": "transformers",
}
INSTALL = "pip install 'pytest-k8sai[inference]'"


def missing() -> list[str]:
    """The distributions of the extra that cannot be imported here."""
    return [dist for name, dist in PACKAGES.items() if importlib.util.find_spec(name) is None]


def missing_reason() -> str | None:
    """Why the inference tests cannot run here, with the command that fixes it; None if they can."""
    gone = missing()
    if not gone:
        return None
    return f"the inference extra is not installed (missing {', '.join(gone)}): {INSTALL}"
