"""Bad input, property-based (hypothesis): profile files, mutant files, results files read as
``--baseline``, AI conformance requirement files and the ``k8sai`` command's options.

Every invalid input gives one paragraph that names the file, field or flag (a K8saiError; for a
baseline, one entry of ``Baseline.errors``), never a traceback, and unknown fields are rejected
(the AI conformance program's requirement file, whose layout the filled checklist keeps, carries
them along instead).
Inputs are valid seeds (the packaged profile, mutant catalogue and requirement files, a full
results file) mutated one step (an unknown key, a wrong value, a dropped key) or many, and
garbage text.

No cluster: the command-line cases stop before anything attaches to, starts or stops one, and
the functions that would are replaced by ones that fail the test when reached.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import re
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Union, get_args, get_origin
from unittest import mock

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from pytest_k8sai import calibrate, cli, mutantrun
from pytest_k8sai.core import mutants
from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import K8saiError, ProfileError
from pytest_k8sai.core.profiles import BUILTIN_DIR, Profile, Slo, load_profile
from pytest_k8sai.core.verdicts import VERDICTS_FILE
from pytest_k8sai.core.yamlfiles import printable
from pytest_k8sai.report.aic.requirements import AicError, RequirementFile, load_file
from pytest_k8sai.report.baseline import load_baseline
from pytest_k8sai.report.results import (
    RESULTS_FILE,
    Comparison,
    Environment,
    Figure,
    FigureChange,
    PlotFile,
    Results,
    TableData,
    dump,
)
from pytest_k8sai.report.results import TestOutcome as Outcome  # not Test*: pytest collects it
from pytest_k8sai.runstate import check_results_dir

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no .hypothesis/ in the checkout; a failure prints its minimal input
    suppress_health_check=[HealthCheck.too_slow],
)

Loc = tuple[Any, ...]

# -- the mutation engine ---------------------------------------------------------------------


def _alternatives(annotation: Any) -> list[Any]:
    """The members of ``X | Y`` / ``Optional[X]``; ``[annotation]`` otherwise."""
    if get_origin(annotation) in (Union, types.UnionType):
        return [a for arg in get_args(annotation) for a in _alternatives(arg)]
    return [annotation]


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _known_keys(model: type[BaseModel]) -> set[str]:
    return {k for name, f in model.model_fields.items() for k in (name, f.alias) if k}


def _nodes_in(annotation: Any, value: object, loc: Loc) -> list[tuple[Loc, type[BaseModel]]]:
    if _is_model(annotation) and isinstance(value, dict):
        return model_nodes(value, annotation, loc)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is list and isinstance(value, list):
        return [
            n
            for i, v in enumerate(value)
            for a in _alternatives(args[0])
            for n in _nodes_in(a, v, (*loc, i))
        ]
    if origin is dict and isinstance(value, dict):
        return [
            n
            for k, v in value.items()
            for a in _alternatives(args[1])
            for n in _nodes_in(a, v, (*loc, k))
        ]
    return []


def model_nodes(
    data: dict[str, Any], model: type[BaseModel], loc: Loc = ()
) -> list[tuple[Loc, type[BaseModel]]]:
    """Every mapping of ``data`` that a pydantic model validates, and every model field it
    leaves out (an unknown key there creates it): where an unknown key is the model's
    business. Free-form mappings (``calibration`` keys, ``profile_data``, overlays) are not."""
    out = [(loc, model)]
    for name, field in model.model_fields.items():
        key = field.alias or name
        for annotation in _alternatives(field.annotation):
            if key in data:
                out += _nodes_in(annotation, data[key], (*loc, key))
            elif _is_model(annotation):
                out.append(((*loc, key), annotation))
    return out


def all_locs(value: object, loc: Loc = ()) -> list[Loc]:
    """Every key and list item under ``value`` (not ``value`` itself)."""
    items: list[tuple[Any, Any]] = []
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    return [x for k, v in items for x in [(*loc, k), *all_locs(v, (*loc, k))]]


def put(doc: dict[str, Any], loc: Loc, value: object) -> None:
    """Set ``doc[loc]``, creating missing mappings on the way."""
    node: Any = doc
    for k in loc[:-1]:
        if isinstance(node, dict) and not isinstance(node.get(k), dict | list):
            node[k] = {}
        node = node[k]
    node[loc[-1]] = value


def drop(doc: dict[str, Any], loc: Loc) -> None:
    node: Any = doc
    for k in loc[:-1]:
        node = node[k]
    del node[loc[-1]]


def dotted(loc: Loc) -> str:
    """How errors name a field (core/yamlfiles.invalid_fields)."""
    return ".".join(str(x) for x in loc)


# Values of the wrong kind for most fields: text for numbers, lists and mappings for scalars and
# models, negative and non-finite numbers where a field wants gt/ge, null for required ones.
WRONG = st.one_of(
    st.text(max_size=12),
    st.integers(max_value=-1),
    st.integers(min_value=2**63, max_value=2**70),
    st.floats(max_value=-1e-9, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, 1e400]),
    st.none(),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
# Command-line words and file names: no control characters (argv cannot hold NUL; a newline in a
# file name is printed as it is). ARG is not an option either (argparse would take "--he" for
# --help and exit 0). Keys in files may hold any character: errors escape control characters.
WORD = st.text(st.characters(exclude_categories=("Cs", "Cc")), max_size=20)
ARG = WORD.filter(lambda w: not w.startswith("-"))
KEY_TEXT = st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=16)


def _survives_yaml(key: str) -> bool:
    # YAML folds some characters (NEL, LS, PS line breaks) in keys: the loader then sees and
    # names another key than the one generated.
    return yaml.safe_load(yaml_text({key: 0})) == {key: 0}


def unknown_key(model: type[BaseModel], forbidden: frozenset[str] = frozenset()) -> Any:
    """A key that is neither a field nor an alias of ``model`` (nor in ``forbidden``)."""
    known = _known_keys(model) | forbidden
    return KEY_TEXT.filter(lambda k: k not in known and _survives_yaml(k))


@st.composite
def one_unknown_key(draw: st.DrawFn, seed: dict[str, Any], model: type[BaseModel]) -> tuple:
    """``seed`` with one key its model does not have, and where: (document, loc of the key)."""
    loc, node_model = draw(st.sampled_from(model_nodes(seed, model)))
    key = draw(unknown_key(node_model, frozenset({"extends"}) if not loc else frozenset()))
    doc = copy.deepcopy(seed)
    put(doc, (*loc, key), draw(WRONG | st.integers()))
    return doc, (*loc, key)


@st.composite
def one_changed_value(draw: st.DrawFn, seed: dict[str, Any]) -> tuple:
    """``seed`` with one value replaced by a wrong one or one key dropped: (document, loc)."""
    loc = draw(st.sampled_from(all_locs(seed)))
    doc = copy.deepcopy(seed)
    if draw(st.booleans()) and isinstance(loc[-1], str):
        drop(doc, loc)
    else:
        put(doc, loc, draw(WRONG))
    return doc, loc


@st.composite
def many_changes(draw: st.DrawFn, seed: dict[str, Any], model: type[BaseModel]) -> object:
    """``seed`` after 1-5 steps of any kind, or replaced by another type of document."""
    doc: object = copy.deepcopy(seed)
    for _ in range(draw(st.integers(1, 5))):
        if not isinstance(doc, dict):
            break
        step = draw(st.sampled_from(["unknown", "value", "drop", "top"]))
        locs = all_locs(doc)
        if step == "unknown":
            nodes = [n for n in model_nodes(doc, model) if _reachable(doc, n[0])]
            loc, node_model = draw(st.sampled_from(nodes))
            put(doc, (*loc, draw(unknown_key(node_model, frozenset({"extends"})))), draw(WRONG))
        elif step == "value" and locs:
            put(doc, draw(st.sampled_from(locs)), draw(WRONG))
        elif step == "drop" and locs:
            loc = draw(st.sampled_from(locs))
            if isinstance(loc[-1], str):
                drop(doc, loc)
        elif step == "top":
            doc = draw(st.one_of(WRONG, st.lists(WRONG, max_size=3)))
    return doc


def _reachable(doc: object, loc: Loc) -> bool:
    """``loc`` leads through mappings (or ends where a mapping will be created)."""
    node = doc
    for k in loc:
        if not isinstance(node, dict):
            return False
        node = node.get(k, {})
    return isinstance(node, dict)


# Text that looks like YAML or JSON, and often is not.
# fmt: off
FRAGMENTS = st.lists(
    st.sampled_from([
        "{", "}", "[", "]", ":", ": ", "- ", "\t", "\n", "  ", ",", "&a ", "*a", "*b",
        "!!binary ", "!!python/object:os.system ", "!foo ", "? ", "|", ">", "'", '"', "#",
        "%YAML 1.1\n", "---\n", "...\n", "<<: *a\n", "name", "provider", "local", "1e400",
        ".nan", "null", "~", "\x07", "\ufeff", "\x85", "\\u", "schema", "true",
    ]),
    max_size=30,
).map("".join)
# fmt: on
GARBAGE_TEXT = st.one_of(st.text(max_size=200), FRAGMENTS)


def yaml_text(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


# -- what an error must look like ------------------------------------------------------------


def assert_one_paragraph(message: str, *names: str) -> None:
    """One paragraph: one line, no traceback, naming each of ``names``."""
    assert message.strip(), "an empty message"
    assert "Traceback" not in message, message
    assert "\n" not in message.strip(), f"more than one line: {message!r}"
    for name in names:
        assert _named(name, message), f"{name!r} is not named in: {message}"


def _named(name: str, message: str) -> bool:
    # Keys are named with their control characters escaped (core/yamlfiles.invalid_fields).
    return name in message or printable(name) in message


def names_field(message: str, loc: Loc) -> bool:
    """The message names the field at ``loc`` or the model holding it whose rule failed (a
    dropped setup leaves ``changes`` with no section: "field 'changes': set at least one of
    ..."), by its dotted path or by its key in words ("capabilities.mig.enabled needs
    capabilities.gpu_nodes.count > 0")."""
    paths = [dotted(loc[:k]) for k in range(len(loc), 0, -1)]
    keys = [k for k in loc if isinstance(k, str)]
    return any(_named(n, message) for n in paths + keys)


def attempt(load: Any, path: Path, error: type[Exception]) -> str | None:
    """None when ``load(path)`` succeeds; the message of its ``error`` otherwise (any other
    exception fails the test with its traceback)."""
    try:
        load(path)
    except error as exc:
        assert isinstance(exc, K8saiError)
        return str(exc)
    return None


def inside(d: Path, name: str) -> Path:
    """``d / name``, also when ``name`` starts with / (``d / "/"`` would be the root)."""
    return d / f"./{name}"


@contextlib.contextmanager
def scratch() -> Iterator[Path]:
    # Not tmp_path: hypothesis runs many examples in one test function.
    with tempfile.TemporaryDirectory(prefix="k8sai-bad-input-") as d:
        yield Path(d)


# -- profiles --------------------------------------------------------------------------------

LOCAL_PROFILE = yaml.safe_load((BUILTIN_DIR / "local.yaml").read_text())


def _profile(doc_or_text: object | str | bytes, d: Path) -> tuple[Path, str | None]:
    path = d / "mine.yaml"
    if isinstance(doc_or_text, bytes):
        path.write_bytes(doc_or_text)
    else:
        path.write_text(doc_or_text if isinstance(doc_or_text, str) else yaml_text(doc_or_text))
    return path, attempt(lambda p: load_profile(str(p)), path, ProfileError)


def test_the_seeds_are_valid() -> None:
    assert load_profile(str(BUILTIN_DIR / "local.yaml")).name == "local"
    where = {loc for loc, _ in model_nodes(LOCAL_PROFILE, Profile)}
    assert {(), ("capabilities", "gpu_nodes"), ("slo",), ("reach",)} <= where
    # Free-form mappings are no model's business: their keys are not fields.
    assert ("conformance", "metadata") not in where
    assert all(len(loc) == 2 for loc in where if loc[:1] == ("calibration",))


@SETTINGS
@given(one_unknown_key(LOCAL_PROFILE, Profile))
def test_a_profile_with_an_unknown_key_is_rejected_naming_it(case: tuple) -> None:
    doc, loc = case
    with scratch() as d:
        path, message = _profile(doc, d)
    assert message is not None, f"unknown key {dotted(loc)!r} accepted"
    assert_one_paragraph(message, str(path), dotted(loc))


@SETTINGS
@given(one_changed_value(LOCAL_PROFILE))
def test_a_profile_with_a_wrong_value_loads_or_names_the_field(case: tuple) -> None:
    doc, loc = case
    with scratch() as d:
        path, message = _profile(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))
        assert names_field(message, loc), f"{dotted(loc)!r} not named: {message}"


@SETTINGS
@given(many_changes(LOCAL_PROFILE, Profile))
def test_a_much_changed_profile_loads_or_is_one_paragraph(doc: object) -> None:
    with scratch() as d:
        path, message = _profile(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))


@SETTINGS
@given(st.one_of(GARBAGE_TEXT, st.binary(max_size=64)))
@example("[" * 2000 + "]" * 2000)  # nesting deeper than the parser's recursion
@example(b"name: \xff\xfe\n")  # not UTF-8
@example("name: a\x07\n")  # a character YAML does not allow
def test_garbage_profile_text_is_one_paragraph(text: str | bytes) -> None:
    with scratch() as d:
        path, message = _profile(text, d)
    assert message is not None
    assert_one_paragraph(message, str(path))


@SETTINGS
@given(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(["local", "..", "/", ".", "a" * 300, "a" * 300 + ".yaml"]),
    )
)
@example("a" * 300)  # longer than a file name may be
@example("a\nb")  # a control character
def test_extends_anything_is_one_paragraph(parent: str) -> None:
    with scratch() as d:
        path, message = _profile({"extends": parent, "name": "mine"}, d)
    if message is not None:
        assert_one_paragraph(message, str(path))


@SETTINGS
@given(
    KEY_TEXT.filter(lambda k: k not in Slo.model_fields and _survives_yaml(k)),
    st.sampled_from(sorted(LOCAL_PROFILE["calibration"])),
)
def test_calibration_of_an_unknown_slo_field_is_rejected_naming_it(key: str, seed: str) -> None:
    doc = copy.deepcopy(LOCAL_PROFILE)
    doc["calibration"][key] = doc["calibration"][seed]
    with scratch() as d:
        path, message = _profile(doc, d)
    assert message is not None, f"calibration of {key!r} accepted"
    assert_one_paragraph(message, str(path), key)


def test_a_control_character_in_a_key_is_named_escaped_on_one_line() -> None:
    # Regression: the key was printed as it is, so its newline split the error in two.
    with scratch() as d:
        path, message = _profile({**LOCAL_PROFILE, "a\nb": 1}, d)
        assert message is not None
        assert_one_paragraph(message, str(path), "field 'a\\nb'")
        doc = copy.deepcopy(LOCAL_PROFILE)
        doc["calibration"]["p99\n"] = doc["calibration"]["kueue_admission_attempt_p99_ms"]
        path, message = _profile(doc, d)
        assert message is not None
        assert_one_paragraph(message, "calibration names p99\\n,")


def test_a_profile_name_too_long_for_a_file_is_one_paragraph() -> None:
    # Regression: Path.exists() raised OSError (File name too long).
    try:
        load_profile("a" * 300)
    except ProfileError as exc:
        assert_one_paragraph(str(exc), "--cluster=" + "a" * 300, "no built-in profile")
    else:
        raise AssertionError("a 300-character profile name loaded")


# -- mutant files ----------------------------------------------------------------------------

MUTANT_SEEDS = {
    name: yaml.safe_load(mutants.catalogue_path(name).read_text())
    for name in mutants.catalogue_names()
}
MUTANT = st.sampled_from(sorted(MUTANT_SEEDS)).map(lambda n: MUTANT_SEEDS[n])


def _mutant(doc_or_text: object | str | bytes, d: Path) -> tuple[Path, str | None]:
    path = d / "m.yaml"
    if isinstance(doc_or_text, bytes):
        path.write_bytes(doc_or_text)
    else:
        path.write_text(doc_or_text if isinstance(doc_or_text, str) else yaml_text(doc_or_text))
    return path.resolve(), attempt(lambda p: mutants.load(str(p)), path, mutants.MutantError)


@SETTINGS
@given(MUTANT.flatmap(lambda seed: one_unknown_key(seed, mutants.Mutant)))
def test_a_mutant_with_an_unknown_key_is_rejected_naming_it(case: tuple) -> None:
    doc, loc = case
    with scratch() as d:
        path, message = _mutant(doc, d)
    assert message is not None, f"unknown key {dotted(loc)!r} accepted"
    assert_one_paragraph(message, str(path), dotted(loc))


@SETTINGS
@given(MUTANT.flatmap(one_changed_value))
def test_a_mutant_with_a_wrong_value_loads_or_names_the_field(case: tuple) -> None:
    doc, loc = case
    with scratch() as d:
        path, message = _mutant(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))
        assert names_field(message, loc), f"{dotted(loc)!r} not named: {message}"


@SETTINGS
@given(st.one_of(MUTANT.flatmap(lambda s: many_changes(s, mutants.Mutant)), GARBAGE_TEXT))
def test_a_much_changed_mutant_loads_or_is_one_paragraph(doc: object) -> None:
    with scratch() as d:
        path, message = _mutant(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))


@SETTINGS
@given(
    st.one_of(
        WORD,
        st.sampled_from(["a" * 300, "a" * 300 + ".yaml", ".", "..", "/", "~"]),
    ).filter(lambda n: n not in mutants.catalogue_names())
)
@example("a" * 300)  # longer than a file name may be
@example("~nosuchuser/m.yaml")  # the home directory of no user
def test_a_mutant_name_not_in_the_catalogue_is_one_paragraph(name: str) -> None:
    # As --mutant=NAME and `k8sai mutants run NAME` give it: a relative name is taken from the
    # directory the command runs in.
    message = attempt(mutants.load, name, mutants.MutantError)  # type: ignore[arg-type]
    assert message is not None
    assert_one_paragraph(message)


# -- results files read as --baseline --------------------------------------------------------


def _results() -> dict[str, Any]:
    """A results file with every part filled (JSON-shaped, as read back)."""
    figure = Figure(
        figure="fifo: admission P99",
        measured=12.5,
        unit="ms",
        threshold=25.0,
        op="<=",
        verdict="PASS",
        n=3,
        source="log",
        nodeid="suites/kueue/test_x.py::test_a",
        suite="kueue",
        setup="fifo",
        statistic="p99",
        samples=[10.0, 12.0, 12.5],
        sample_runs=[3],
        key="kueue_admission_attempt_p99_ms",
        paper=25.0,
    )
    results = Results(
        run_id="r1",
        started_at="2026-12-07T00:00:00Z",
        finished_at="2026-12-07T00:10:00Z",
        status="finished",
        exit_status=0,
        wall_s=600.0,
        environment=Environment(
            profile="local",
            provider="local",
            time_compression=60,
            profile_data=load_profile("local").model_dump(mode="json"),
            versions={"kueue": "v0.14.0"},
            cluster_timings_s={"ready": 9.5},
            command=["pytest", "-m", "pr"],
        ),
        figures=[figure],
        tests=[Outcome(nodeid="t::a", outcome="passed", duration_s=1.5)],
        tables=[TableData(title="Table 3", headers=["a", "b"], rows=[["1", "2"]], notes=["n"])],
        comparison=Comparison(
            baseline_files=["old/results.json"],
            baseline_run_ids=["r0"],
            tolerance_pct=10.0,
            alpha=0.05,
            min_samples=10,
            bootstrap_resamples=2000,
            changes=[
                FigureChange(
                    figure="fifo: admission P99",
                    unit="ms",
                    verdict="SAME",
                    baseline=12.0,
                    current=12.5,
                    change_pct=4.2,
                    diff_ci=(-1.0, 2.0),
                )
            ],
        ),
        plots=[PlotFile(file="plots/a.png", title="a")],
        files={"summary": "summary.md"},
        conformance={"gpu_sharing": {"status": "Implemented"}},
    )
    return json.loads(dump(results))


RESULTS_SEED = _results()


def _baseline(doc_or_text: object | str | bytes, d: Path, as_dir: bool) -> tuple[Path, list[str]]:
    path = d / "night-1" / RESULTS_FILE
    path.parent.mkdir()
    if isinstance(doc_or_text, bytes):
        path.write_bytes(doc_or_text)
    else:
        path.write_text(doc_or_text if isinstance(doc_or_text, str) else json.dumps(doc_or_text))
    baseline = load_baseline(d if as_dir else path)  # any exception fails the test
    assert len(baseline.runs) + len(baseline.errors) == 1
    return path, baseline.errors


def test_the_results_seed_is_a_baseline() -> None:
    with scratch() as d:
        _, errors = _baseline(RESULTS_SEED, d, as_dir=True)
    assert errors == []


@SETTINGS
@given(one_unknown_key(RESULTS_SEED, Results), st.booleans())
def test_a_baseline_with_an_unknown_key_is_rejected_naming_it(case: tuple, as_dir: bool) -> None:
    doc, loc = case
    with scratch() as d:
        path, errors = _baseline(doc, d, as_dir)
    assert errors, f"unknown key {dotted(loc)!r} accepted"
    assert_one_paragraph(errors[0], str(path), dotted(loc))


# How a baseline's error names a field that is checked before the others.
BASELINE_WORDS = {"schema_version": "schema version"}


@SETTINGS
@given(one_changed_value(RESULTS_SEED), st.booleans())
def test_a_baseline_with_a_wrong_value_is_used_or_names_the_field(
    case: tuple, as_dir: bool
) -> None:
    doc, loc = case
    with scratch() as d:
        path, errors = _baseline(doc, d, as_dir)
    if errors:
        assert_one_paragraph(errors[0], str(path))
        assert names_field(errors[0], loc) or BASELINE_WORDS.get(loc[-1], "\0") in errors[0], (
            f"{dotted(loc)!r} not named: {errors[0]}"
        )


@SETTINGS
@given(
    st.one_of(
        many_changes(RESULTS_SEED, Results),
        st.integers(0, len(json.dumps(RESULTS_SEED)) - 1).map(
            lambda n: json.dumps(RESULTS_SEED)[:n]  # truncated
        ),
        st.sampled_from(["pytest-k8sai/results", "pytest-k8sai/result", None, 1, ""]).flatmap(
            lambda schema: st.sampled_from([1, 2, 0, "1", None, 1.5, True]).map(
                lambda version: {**RESULTS_SEED, "schema": schema, "schema_version": version}
            )
        ),
        GARBAGE_TEXT,
        st.binary(max_size=64),
    ),
    st.booleans(),
)
@example("[" * 100_000, True)  # nesting deeper than the parser's recursion
@example(b'{"schema": "\xff"}', False)  # not UTF-8
def test_a_broken_baseline_is_one_paragraph(doc: object, as_dir: bool) -> None:
    with scratch() as d:
        path, errors = _baseline(doc, d, as_dir)
    if errors:
        assert_one_paragraph(errors[0], str(path))


LONG_NAMES = st.sampled_from(["a" * 300, "a" * 300 + "/x", "x/" + "a" * 300, "..", "."])


@SETTINGS
@given(st.one_of(WORD, LONG_NAMES))
@example("a" * 300)  # longer than a file name may be
def test_a_baseline_path_that_is_not_there_is_one_paragraph(name: str) -> None:
    with scratch() as d:
        baseline = load_baseline(inside(d / "missing", name))
    assert not baseline.runs and len(baseline.errors) == 1
    assert_one_paragraph(baseline.errors[0], "--baseline")


@SETTINGS
@given(st.sampled_from(["", "file", "dir"]), st.one_of(WORD, LONG_NAMES))
@example("", "a" * 300)  # longer than a file name may be
@example("file", "x")  # under a file
def test_a_results_dir_that_cannot_be_made_is_one_paragraph(under: str, name: str) -> None:
    with scratch() as d:
        (d / "file").write_text("not a directory")
        (d / "dir").mkdir()
        try:
            check_results_dir(inside(d / under, name))
        except K8saiError as exc:
            assert_one_paragraph(str(exc), "--results-dir")


# -- AI conformance requirement files --------------------------------------------------------

AIC_PATH = data_file("report", "aic", "AIConformance-1.36.yaml")
AIC_SEED = yaml.safe_load(AIC_PATH.read_text())


def _requirements(doc_or_text: object | str | bytes, d: Path) -> tuple[Path, str | None]:
    path = d / "AIConformance-1.99.yaml"
    if isinstance(doc_or_text, bytes):
        path.write_bytes(doc_or_text)
    else:
        path.write_text(doc_or_text if isinstance(doc_or_text, str) else yaml_text(doc_or_text))
    return path, attempt(load_file, path, AicError)


@SETTINGS
@given(one_unknown_key(AIC_SEED, RequirementFile))
def test_an_unknown_key_in_a_requirement_file_is_rejected_or_kept(case: tuple) -> None:
    # The program's file is a template the filled checklist keeps the layout of: a key this
    # version does not know is either rejected naming it, or carried into the checklist as is
    # (model_extra); never silently dropped.
    doc, loc = case
    with scratch() as d:
        path, message = _requirements(doc, d)
        if message is not None:
            assert_one_paragraph(message, str(path), dotted(loc))
            return
        node: Any = load_file(path)
    for k in loc[:-1]:
        node = node[k] if isinstance(k, int) or isinstance(node, dict) else getattr(node, k)
    kept = (node.model_extra or {}).get(loc[-1])
    written = _at(yaml.safe_load(yaml_text(doc)), loc)  # as YAML reads it back
    assert repr(kept) == repr(written)  # repr: nan is not equal to itself


def _at(doc: Any, loc: Loc) -> Any:
    for k in loc:
        doc = doc[k]
    return doc


@SETTINGS
@given(one_changed_value(AIC_SEED))
def test_a_requirement_file_with_a_wrong_value_loads_or_names_the_field(case: tuple) -> None:
    doc, loc = case
    with scratch() as d:
        path, message = _requirements(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))
        assert names_field(message, loc), f"{dotted(loc)!r} not named: {message}"


@SETTINGS
@given(st.one_of(many_changes(AIC_SEED, RequirementFile), GARBAGE_TEXT, st.binary(max_size=64)))
def test_a_broken_requirement_file_is_one_paragraph(doc: object) -> None:
    with scratch() as d:
        path, message = _requirements(doc, d)
    if message is not None:
        assert_one_paragraph(message, str(path))


# -- the k8sai command -----------------------------------------------------------------------


def _refuse(*args: object, **kwargs: object) -> None:
    raise AssertionError("this input would have reached a cluster or a test run")


@contextlib.contextmanager
def no_cluster() -> Iterator[None]:
    """Whatever would start, stop, read or change a cluster, or run trials, fails the test."""
    targets = [
        (cli, "LocalProvider"),
        (cli, "ExistingProvider"),
        (cli.Builder, "ensure_all"),
        (cli.Builder, "ensure_named"),
        (cli, "stop_cluster"),
        (cli.state, "load"),
        (cli.preflight, "run"),
        (cli.preflight, "api_client"),
        (cli.sweep, "find"),
        (cli.sweep, "delete"),
        (cli.dassource, "locate_source"),
        (calibrate, "run_trials"),
        (mutantrun, "run_one"),
    ]
    with contextlib.ExitStack() as stack:
        for owner, name in targets:
            stack.enter_context(mock.patch.object(owner, name, _refuse))
        yield


def run_cli(argv: list[str]) -> tuple[object, str]:
    """``k8sai ARGV``: (exit status, stderr)."""
    err = io.StringIO()
    with no_cluster(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            status: object = cli.main(argv)
        except SystemExit as exc:  # argparse
            status = exc.code
    return status, err.getvalue()


def assert_cli_error(status: object, err: str, *names: str) -> None:
    """Non-zero exit and one paragraph on stderr: ``k8sai: error: ...`` (ours), or argparse's
    usage and ``k8sai ...: error: ...``; it names one of ``names``."""
    assert status not in (0, None), f"exit {status}: {err}"
    assert "Traceback" not in err, err
    lines = err.rstrip("\n").split("\n")
    assert all(line.strip() for line in lines), f"more than one paragraph: {err!r}"
    if lines[0].startswith("usage: "):
        assert re.match(r"k8sai[\w ]*: error: ", lines[-1]), err
    else:
        assert len(lines) == 1 and lines[0].startswith("k8sai: error: "), err
    if names:
        assert any(_named(n, err) for n in names), f"none of {names} named in: {err}"


NUMBER = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "0x10", "3.", "", " 5 "]),
    WORD,
)


def _missing_profile(d: Path, name: str) -> str:
    return str(inside(d, name))


@SETTINGS
@given(
    trials=NUMBER,
    margin=NUMBER,
    keys=st.none() | st.lists(WORD, min_size=1, max_size=3).map(",".join),
    cluster=st.one_of(st.just("local"), ARG),
    source=st.sampled_from(["empty", "missing", "file", "bad-verdicts"]),
    verdict_lines=st.lists(WORD, max_size=3),
)
@example(trials="-3", margin="0.25", keys=None, cluster="local", source="empty", verdict_lines=[])
@example(trials="5", margin="abc", keys=None, cluster="local", source="empty", verdict_lines=[])
def test_calibrate_with_bad_options_is_one_paragraph(
    trials: str, margin: str, keys: str | None, cluster: str, source: str, verdict_lines: list
) -> None:
    with scratch() as d:
        trial = d / "trial-1"
        if source == "empty":
            trial.mkdir()
        elif source == "file":
            trial.write_text("not a results directory")
        elif source == "bad-verdicts":
            trial.mkdir()
            (trial / VERDICTS_FILE).write_text("".join(f"{line}\n" for line in verdict_lines))
        if cluster != "local":
            cluster = _missing_profile(d, cluster)
        argv = ["calibrate", f"--trials={trials}", f"--margin={margin}", f"--cluster={cluster}"]
        argv += [f"--keys={keys}"] if keys is not None else []
        argv += ["--results-dir", str(d / "out"), "--from", str(trial)]
        status, err = run_cli(argv)
    flags = ("--trials", "--margin", "--keys", "--cluster", "--from", str(trial), cluster)
    assert_cli_error(status, err, *flags)


@SETTINGS
@given(age=WORD, cluster=ARG)
@example(age="garbage", cluster="x")
@example(age="30m", cluster="x")
def test_sweep_with_a_bad_age_or_profile_is_one_paragraph(age: str, cluster: str) -> None:
    with scratch() as d:
        profile = _missing_profile(d, cluster)
        argv = ["sweep", "--dry-run", f"--older-than={age}", f"--cluster={profile}"]
        status, err = run_cli(argv)
    assert_cli_error(status, err, "--older-than", profile)


def _bad_profiles(d: Path) -> st.SearchStrategy[str]:
    unknown = d / "unknown-key.yaml"
    unknown.write_text(yaml_text({**LOCAL_PROFILE, "no_such_field": 1}))
    return st.one_of(
        ARG.map(lambda n: _missing_profile(d, n)),
        st.just(str(unknown)),
        st.just(str(d / ("a" * 300))),  # a file name longer than the system allows
    )


@SETTINGS
@given(st.data())
def test_commands_with_a_bad_profile_are_one_paragraph(data: st.DataObject) -> None:
    with scratch() as d:
        profile = data.draw(_bad_profiles(d))
        argv = data.draw(
            st.sampled_from(
                [
                    ["preflight", f"--cluster={profile}"],
                    ["preflight", f"--cluster={profile}", "--json", str(d / "p.json")],
                    ["sweep", "--dry-run", f"--cluster={profile}"],
                    ["local", f"--cluster={profile}", "status"],
                    ["local", f"--cluster={profile}", "down"],
                    ["local", f"--cluster={profile}", "up"],
                    ["local", f"--cluster={profile}", "build"],
                    ["calibrate", f"--cluster={profile}", "--from", str(d)],
                ]
            )
        )
        status, err = run_cli(argv)
    assert_cli_error(status, err, profile)


@SETTINGS
@given(
    command=st.sampled_from(["preflight", "sweep"]),
    kubeconfig=st.one_of(st.none(), ARG.filter(bool)),
    context=st.one_of(st.none(), ARG.filter(bool)),
)
def test_reach_flags_on_the_local_profile_are_one_paragraph(
    command: str, kubeconfig: str | None, context: str | None
) -> None:
    if kubeconfig is None and context is None:
        kubeconfig = "kubeconfig"
    argv = [command, "--cluster=local", "--dry-run"] if command == "sweep" else [command]
    argv += [f"--kubeconfig={kubeconfig}"] if kubeconfig is not None else []
    argv += [f"--context={context}"] if context is not None else []
    status, err = run_cli(argv)
    assert_cli_error(status, err, "--kubeconfig", "--context")


AREAS = {"local", "preflight", "sweep", "mutants", "calibrate"}


@SETTINGS
@given(
    st.one_of(
        st.tuples(ARG.filter(lambda w: w not in AREAS)).map(list),
        st.tuples(
            st.just("local"), ARG.filter(lambda w: w not in {"build", "up", "down", "status"})
        ).map(list),
        st.tuples(
            st.just("mutants"), ARG.filter(lambda w: w not in {"list", "run", "control"})
        ).map(list),
        st.just([]),
        st.sampled_from([["local"], ["mutants"], ["calibrate", "--trials"], ["sweep", "--bogus"]]),
    ),
    st.lists(ARG, max_size=3),
)
def test_unknown_commands_are_one_paragraph(argv: list[str], rest: list[str]) -> None:
    # More words only after an unknown command: after `local` they could name a real one.
    status, err = run_cli(argv + rest if argv and argv[0] not in AREAS else argv)
    assert status == 2
    assert_cli_error(status, err)


@SETTINGS
@given(
    suites=st.lists(ARG, min_size=1, max_size=3),
    name=ARG,
    runs=NUMBER,
)
@example(suites=["kueue"], name="x", runs="0")
def test_mutants_commands_with_bad_input_are_one_paragraph(
    suites: list[str], name: str, runs: str
) -> None:
    with scratch() as d:
        missing = str(inside(d, f"{name}.yaml"))
        argv = ["mutants", "run", missing, "--results-dir", str(d / "out"), "--suites", *suites]
        status, err = run_cli(argv)
        assert_cli_error(status, err, "--suites", missing)
        empty = d / "empty"
        empty.mkdir()
        argv = ["mutants", "control", f"--runs={runs}", "--from", str(empty)]
        status, err = run_cli(argv)
        assert_cli_error(status, err, "--runs", str(empty))


def test_the_cli_guard_fails_the_test_when_a_cluster_would_be_reached() -> None:
    try:
        run_cli(["local", "--cluster=local", "status"])
    except AssertionError as exc:
        assert "would have reached a cluster" in str(exc)
    else:
        raise AssertionError("the guard let `k8sai local status` read the cluster's state")
