"""Workload pods on clusters the suites did not build: a command that ends, restricted-v2."""

from __future__ import annotations

from pytest_k8sai.core.profiles import EXISTING_WORKLOAD, load_profile, parse_profile
from pytest_k8sai.workloads.jobs import RESTRICTED, gpu_job, whisper_job


def test_existing_profiles_default_to_a_public_sleeping_restricted_workload() -> None:
    rosa = load_profile("rosa")
    assert rosa.workload.image == EXISTING_WORKLOAD["image"]
    assert rosa.workload.sleep and rosa.workload.restricted
    assert not load_profile("local").workload.restricted  # KWOK pods run nothing
    own = parse_profile(
        {
            "name": "x",
            "provider": "existing",
            "workload": {"image": "mirror/bb:1", "image_pull_secrets": ["p"]},
        },
        "test",
    )
    assert own.workload.image == "mirror/bb:1" and own.workload.sleep  # the rest kept


def test_restricted_job_passes_restricted_v2_and_sleeps_for_its_run_time() -> None:
    rosa = load_profile("rosa")
    body = gpu_job(
        "j",
        "ns",
        run_seconds=12.5,
        pods=rosa.workload.model_copy(update={"image_pull_secrets": ["p"]}),
    )
    spec = body["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["command"] == ["sleep", "12.500"]
    assert c["securityContext"] == RESTRICTED and "runAsUser" not in c["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["imagePullSecrets"] == [{"name": "p"}]


def test_whisper_job_without_an_image_holds_the_gpu_with_sleep() -> None:
    rosa = load_profile("rosa")
    assert rosa.whisper.image is None
    body = whisper_job(rosa, "w", "ns", model="large", run_s=480.0, audio_s=600.0)
    c = body["spec"]["template"]["spec"]["containers"][0]
    assert c["command"] == ["sleep", "480.000"] and c["image"] == rosa.workload.image
    real = rosa.model_copy(update={"whisper": rosa.whisper.model_copy(update={"image": "w:1"})})
    c = whisper_job(real, "w", "ns", model="large", run_s=480.0, audio_s=600.0)["spec"]["template"][
        "spec"
    ]["containers"][0]
    assert c["image"] == "w:1" and c["command"][:2] == ["python", "/app/transcribe.py"]


def test_run_as_user_sets_the_uid_only_where_the_profile_names_one() -> None:
    rosa = load_profile("rosa")
    assert rosa.workload.run_as_user is None  # OpenShift's SCC assigns it
    pods = rosa.workload.model_copy(update={"run_as_user": 65534})
    spec = gpu_job("j", "ns", run_seconds=1.0, pods=pods)["spec"]["template"]["spec"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 65534,
    }


def test_rosa_names_the_label_red_hat_kueue_needs_and_the_run_applies_it(tmp_path) -> None:
    """Without ConfigMap rights preflight cannot read Kueue's namespace selector; the profile's
    labels still reach every namespace the suites make (before and without preflight)."""
    from pytest_k8sai.clusters.base import ClusterHandle
    from pytest_k8sai.fixtures import _preflight
    from pytest_k8sai.runstate import RunState

    rosa = load_profile("rosa")
    assert rosa.reach.namespace_labels == {"kueue.openshift.io/managed": "true"}
    kubeconfig = tmp_path / "kubeconfig.yaml"
    kubeconfig.write_text("not: a kubeconfig\n")  # never a real cluster from a unit test
    handle = ClusterHandle(rosa, kubeconfig, None, "existing")
    state = RunState.__new__(RunState)
    state.notes = []
    _preflight(handle, state)  # preflight cannot read it: the labels stay
    assert handle.namespace_labels == {"kueue.openshift.io/managed": "true"}
    assert state.notes and "Preflight could not read the cluster" in state.notes[0]
