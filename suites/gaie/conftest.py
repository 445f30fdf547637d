"""The inference suite's session fixture; the experiments live in pytest_k8sai.gaie.suite
(imported here only when the inference extra is installed, else the tests skip naming it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_k8sai.clusters.objects import run_namespace
from pytest_k8sai.runstate import get_state


@pytest.fixture(scope="session")
def gaie(
    cluster, k8sai_run_id, k8sai_report, k8sai_results_dir, k8sai_plots, pytestconfig
) -> Iterator:
    from pytest_k8sai.gaie.suite import InferenceSuite  # needs the inference extra

    with run_namespace(cluster, k8sai_run_id) as ns:
        suite = InferenceSuite(cluster, k8sai_run_id, k8sai_results_dir, ns, k8sai_plots)
        try:
            yield suite
        finally:
            for table in suite.tables():
                k8sai_report.add(table)
            # The sim and EPP versions joined the cluster's when they were built or found.
            get_state(pytestconfig).attach_cluster(cluster)
