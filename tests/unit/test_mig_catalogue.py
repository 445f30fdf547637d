"""The MIG catalogue: consistent with the MIG user guide's rules, and lookups of unknown
products or profiles fail with an error that lists the known ones."""

from __future__ import annotations

import pytest

from pytest_k8sai.das.mig_catalogue import CatalogueError, load_catalogue
from pytest_k8sai.das.planner import gpu_configurations

# Instances of one profile alone on a GPU, from the guide's "Number of Instances Available".
MAX_INSTANCES = {
    "A100-40GB": {
        "1g.5gb": 7, "1g.5gb+me": 1, "1g.10gb": 4, "2g.10gb": 3, "3g.20gb": 2, "4g.20gb": 1,
        "7g.40gb": 1,
    },
    "A100-80GB": {
        "1g.10gb": 7, "1g.10gb+me": 1, "1g.20gb": 4, "2g.20gb": 3, "3g.40gb": 2, "4g.40gb": 1,
        "7g.80gb": 1,
    },
}  # fmt: skip
MAX_INSTANCES["H100-80GB"] = MAX_INSTANCES["A100-80GB"]


def test_catalogue_covers_the_three_gpus_and_cites_its_source():
    cat = load_catalogue()
    assert {g.model for g in cat.gpus} == {"A100-40GB", "A100-80GB", "H100-80GB"}
    assert "docs.nvidia.com/datacenter/tesla/mig-user-guide" in cat.source


@pytest.mark.parametrize("model", sorted(MAX_INSTANCES))
def test_each_profile_alone_reaches_the_guides_instance_count(model):
    gpu = next(g for g in load_catalogue().gpus if g.model == model)
    for name, count in MAX_INSTANCES[model].items():
        configs = gpu_configurations(gpu, {name: 99})
        assert max(c[0] for c in configs) == count, name


@pytest.mark.parametrize("model", sorted(MAX_INSTANCES))
def test_no_layout_uses_more_compute_than_the_gpu_has(model):
    """Placements are in memory slices; the compute budget (7) must follow from them."""
    gpu = next(g for g in load_catalogue().gpus if g.model == model)
    demand = {p.name: 7 for p in gpu.profiles}
    compute = [p.compute for p in gpu.profiles]
    for counts in gpu_configurations(gpu, demand):
        assert sum(c * k for c, k in zip(counts, compute, strict=True)) <= gpu.compute_slices


def test_paper_mixes_on_one_a100_40gb():
    gpu = load_catalogue().gpu("NVIDIA-A100-SXM4-40GB")
    configs = gpu_configurations(gpu, {"1g.5gb": 7, "3g.20gb": 2})
    # The guide's A100-40GB combinations with 3g.20gb: 3g+3g, 3g + 4 x 1g (3g at 4).
    assert (4, 1) in configs and (0, 2) in configs
    assert (5, 1) not in configs and (1, 2) not in configs


def test_unknown_product_lists_known_products():
    with pytest.raises(CatalogueError) as err:
        load_catalogue().gpu("NVIDIA-T4")
    msg = str(err.value)
    assert "NVIDIA-T4" in msg and "NVIDIA-A100-SXM4-40GB" in msg and "NVIDIA-H100-80GB-HBM3" in msg


def test_unknown_profile_lists_known_profiles():
    gpu = load_catalogue().gpu("NVIDIA-A100-SXM4-40GB")
    with pytest.raises(CatalogueError) as err:
        gpu.profile("3g.40gb")
    assert "3g.40gb" in str(err.value) and "1g.5gb, 1g.5gb+me" in str(err.value)


def test_bad_catalogue_file_names_file_and_field(tmp_path):
    bad = tmp_path / "cat.yaml"
    bad.write_text(
        "source: x\ngpus:\n- model: G\n  products: [G]\n  memory_slices: 8\n"
        "  compute_slices: 7\n  profiles:\n  - {name: 1g.5gb, compute: 1, memory_gb: 5, "
        "starts: [7], size: 2}\n"
    )
    with pytest.raises(CatalogueError, match=r"cat\.yaml is invalid.*starts \[7\]"):
        load_catalogue(bad)
