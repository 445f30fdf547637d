"""Profiles: built-ins load, and every kind of bad input names the file and the field."""

from __future__ import annotations

import pytest

from pytest_k8sai.core.errors import ProfileError
from pytest_k8sai.core.profiles import REQUIREMENTS, builtin_names, load_profile
from pytest_k8sai.core.requirements import CAPABILITY_FIELD

GOOD = """\
name: mine
provider: existing
capabilities:
  gpu_nodes:
    count: 2
"""


def test_builtins_load():
    assert {"local", "rosa"} <= set(builtin_names())
    for name in builtin_names():
        profile = load_profile(name)
        assert profile.name == name
    assert load_profile("local").provider == "local"
    assert load_profile("rosa").provider == "existing"


def test_profile_file_loads(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    profile = load_profile(str(path))
    assert profile.capabilities.gpu_nodes.count == 2
    assert not profile.lacks("gpu")


def test_bad_value_names_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("count: 2", "count: -1"))
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert "capabilities.gpu_nodes.count" in msg
    assert "\n" not in msg


def test_unknown_field_is_named(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(GOOD + "capabilitys: {}\n")
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    assert str(path) in str(err.value)
    assert "capabilitys" in str(err.value)


def test_bad_yaml_gives_line_number(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nprovider: local\ncapabilities: [unclosed\n")
    with pytest.raises(ProfileError) as err:
        load_profile(str(path))
    msg = str(err.value)
    assert str(path) in msg
    assert "line " in msg


def test_not_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- a\n- b\n")
    with pytest.raises(ProfileError, match="must be a YAML mapping"):
        load_profile(str(path))


def test_unknown_cluster_name_lists_known_ones():
    with pytest.raises(ProfileError) as err:
        load_profile("no-such-profile")
    msg = str(err.value)
    assert "--cluster=no-such-profile" in msg
    for name in builtin_names():
        assert name in msg


def test_mig_without_gpus_is_rejected(tmp_path):
    path = tmp_path / "mig.yaml"
    path.write_text(
        "name: m\nprovider: local\ncapabilities:\n  gpu_nodes: {count: 0}\n  mig: {enabled: true}\n"
    )
    with pytest.raises(ProfileError, match="capabilities.mig.enabled"):
        load_profile(str(path))


def test_every_requirement_has_a_capability_field():
    # Skip reasons quote these fields; a new requirement must come with its field.
    assert set(CAPABILITY_FIELD) == set(REQUIREMENTS)


def test_local_cluster_env_renames_the_local_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8SAI_LOCAL_CLUSTER", "ci-shard-2")
    assert load_profile("local").local.cluster_name == "ci-shard-2"


def test_local_cluster_env_bad_name_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K8SAI_LOCAL_CLUSTER", "Bad_Name")
    with pytest.raises(ProfileError, match=r"\$K8SAI_LOCAL_CLUSTER='Bad_Name' is invalid"):
        load_profile("local")
