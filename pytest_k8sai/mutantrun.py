"""``k8sai mutants run``: run the PR tier's suites once per mutant and tell which were caught.

For each mutant: ``python -m pytest --cluster=local -m pr --mutant NAME <its suites>`` with a
local cluster of its own ($K8SAI_LOCAL_CLUSTER=mutant-NAME, or <$K8SAI_LOCAL_CLUSTER>-NAME when
that is set, so no run ever reuses a cluster configured for another mutant), results in
``DIR/NAME``. A mutant is caught when at least one verdict FAILED (verdicts.jsonl: ``passed``
false with a threshold) or a test failed (pytest exit status 1). Other exit statuses
(interrupted, no cluster, usage error, nothing collected) are errors: the mutant counts as run
and not caught, and the table says why.

The table (mutant, what it changes, caught?, wall time) is printed and written to
``DIR/mutants.md`` and ``DIR/mutants.json`` with the mutation score (caught / run).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pytest_k8sai.core import mutants
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import LOCAL_CLUSTER_ENV
from pytest_k8sai.core.verdicts import VERDICTS_FILE

Log = Callable[[str], None]
TABLE_MD = "mutants.md"
TABLE_JSON = "mutants.json"
CHILD_LOG = "pytest.log"
HEARTBEAT_S = 30.0
# After Ctrl-C the child (same process group, so it got SIGINT too) tears its cluster down;
# it gets this long before SIGTERM, and as long again before SIGKILL.
STOP_GRACE_S = 60.0
EXIT_NAMES = {
    0: "all passed",
    1: "tests failed",
    2: "interrupted",
    3: "no cluster",
    4: "usage error",
    5: "no tests collected",
}


@dataclass
class MutantResult:
    name: str
    changes: str  # the mutant's description
    suites: list[str]
    exit_status: int | None
    wall_s: float
    failed_verdicts: list[str] = field(default_factory=list)  # "key: figure" of each FAIL
    failed_tests: list[str] = field(default_factory=list)  # node ids
    results_dir: str = ""

    @property
    def caught(self) -> bool:
        return bool(self.failed_verdicts) or self.exit_status == 1

    @property
    def error(self) -> str:
        """Why the run says nothing about the mutant ("" when it ran to a verdict)."""
        if self.exit_status in (0, 1):
            return ""
        what = EXIT_NAMES.get(self.exit_status or -1, "did not finish")
        return f"exit {self.exit_status}: {what}"

    def caught_text(self, width: int = 90) -> str:
        if self.error and not self.caught:
            return f"ERROR ({self.error})"
        if not self.caught:
            return "no"
        named = self.failed_verdicts or [f"test {t.split('::')[-1]}" for t in self.failed_tests]
        text = "; ".join(named) or "tests failed"
        text = text if len(text) <= width else text[: width - 3] + "..."
        return f"yes: {text}"


def suite_args(suites: Sequence[str], root: Path) -> list[str]:
    """Suite paths in a checkout (``suites/<name>``), else the installed ``k8sai_suites``."""
    if all((root / "suites" / s / "__init__.py").exists() for s in suites):
        return [f"suites/{s}" for s in suites]
    return ["--pyargs", *(f"k8sai_suites.{s}" for s in suites)]


def pytest_command(name: str, suites: Sequence[str], results_dir: Path, root: Path) -> list[str]:
    return [
        sys.executable, "-m", "pytest",
        "--cluster=local", "-m", "pr",
        "--mutant", name,
        *suite_args(suites, root),
        "--results-dir", str(results_dir),
        "-p", "no:cacheprovider",
    ]  # fmt: skip


def cluster_name(mutant: str) -> str:
    """``<prefix>-<mutant>``: the prefix is $K8SAI_LOCAL_CLUSTER when set (so runs on one
    machine stay apart), else ``mutant``."""
    return f"{os.environ.get(LOCAL_CLUSTER_ENV) or 'mutant'}-{mutant}"


def failed_verdicts(verdicts_file: Path) -> list[str]:
    """``key: figure`` (or the figure) of each FAILED verdict in a verdicts.jsonl."""
    out: list[str] = []
    try:
        lines = verdicts_file.read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if isinstance(v, dict) and v.get("threshold") is not None and v.get("passed") is False:
            key, figure = v.get("key") or "", str(v.get("figure", "?"))
            out.append(f"{key}: {figure}" if key else figure)
    return out


def failed_tests(results_file: Path) -> list[str]:
    try:
        data = json.loads(results_file.read_text())
    except (OSError, ValueError):
        return []
    return [
        str(t.get("nodeid"))
        for t in data.get("tests", [])
        if isinstance(t, dict) and t.get("outcome") in ("failed", "error")
    ]


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


def _last_line(path: Path, width: int = 100) -> str:
    """The child's latest output line (its own progress lines), cut to ``width``."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(0, path.stat().st_size - 4096))
            lines = [ln.strip() for ln in fh.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    last = next((ln for ln in reversed(lines) if ln), "")
    return last if len(last) <= width else last[: width - 3] + "..."


def _stop(child: subprocess.Popen[bytes], log: Log) -> int | None:
    """After Ctrl-C: let the child finish its teardown, then SIGTERM, then SIGKILL."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            log(f"[k8sai] mutants: child pid {child.pid} still running; sending {sig.name}")
            child.send_signal(sig)
        try:
            return child.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            continue
    return child.poll()


def run_one(
    mutant: mutants.Mutant,
    suites: Sequence[str],
    out_dir: Path,
    root: Path,
    log: Log,
) -> MutantResult:
    """One pytest child for ``mutant``; Ctrl-C stops it (its cluster torn down) and re-raises."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = pytest_command(mutant.name, suites, out_dir, root)
    env = {**os.environ, LOCAL_CLUSTER_ENV: cluster_name(mutant.name)}
    log(f"[k8sai] mutants: {mutant.name}: {' '.join(cmd[1:])} (log {out_dir / CHILD_LOG})")
    started = time.monotonic()
    log_path = out_dir / CHILD_LOG
    with log_path.open("wb") as child_log:
        child = subprocess.Popen(cmd, cwd=root, env=env, stdout=child_log, stderr=subprocess.STDOUT)
        done = threading.Event()

        def heartbeat() -> None:
            while not done.wait(HEARTBEAT_S):
                elapsed = _minutes(time.monotonic() - started)
                log(f"[k8sai] mutants: {mutant.name} running {elapsed}: {_last_line(log_path)}")

        threading.Thread(target=heartbeat, daemon=True).start()
        try:
            status = child.wait()
        except KeyboardInterrupt:
            done.set()
            log(f"[k8sai] mutants: interrupted; stopping {mutant.name} (its cluster is removed)")
            _stop(child, log)
            raise
        finally:
            done.set()
    return MutantResult(
        name=mutant.name,
        changes=mutant.description,
        suites=list(suites),
        exit_status=status,
        wall_s=time.monotonic() - started,
        failed_verdicts=failed_verdicts(out_dir / VERDICTS_FILE),
        failed_tests=failed_tests(out_dir / "results.json"),
        results_dir=str(out_dir),
    )


def select(names: Sequence[str]) -> list[mutants.Mutant]:
    """The named catalogue mutants or mutant files (all of the catalogue when none)."""
    if not names:
        return mutants.load_catalogue()
    return [mutants.load(n)[0] for n in names]


def score(results: Sequence[MutantResult]) -> tuple[int, int]:
    return sum(r.caught for r in results), len(results)


def table_rows(results: Sequence[MutantResult]) -> list[tuple[str, str, str, str]]:
    return [(r.name, r.changes, r.caught_text(), _minutes(r.wall_s)) for r in results]


HEADERS = ("mutant", "what it changes", "caught?", "wall time")


def markdown(results: Sequence[MutantResult]) -> str:
    caught, run = score(results)
    lines = [
        "# Mutation run",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|---|---|---|---:|",
    ]
    for row in table_rows(results):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    lines += ["", f"Mutation score: {caught}/{run} caught" + _pct(caught, run), ""]
    return "\n".join(lines)


def _pct(caught: int, run: int) -> str:
    return f" ({100 * caught / run:.0f} %)" if run else ""


def text_table(results: Sequence[MutantResult], width: int = 48) -> str:
    """The table for a terminal: the description column is cut to ``width``."""
    rows = [
        (n, c if len(c) <= width else c[: width - 3] + "...", k, w)
        for n, c, k, w in table_rows(results)
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    fmt = "  ".join(f"{{:{w}}}" for w in widths[:-1]) + "  {:>" + str(widths[-1]) + "}"
    out = [fmt.format(*HEADERS), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r).rstrip() for r in rows]
    caught, run = score(results)
    out.append(f"mutation score: {caught}/{run} caught{_pct(caught, run)}")
    return "\n".join(out)


def write_tables(results: Sequence[MutantResult], results_dir: Path) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / TABLE_MD).write_text(markdown(results))
    caught, run = score(results)
    doc = {
        "mutants": [{**asdict(r), "caught": r.caught, "error": r.error or None} for r in results],
        "caught": caught,
        "run": run,
        "score": caught / run if run else None,
    }
    (results_dir / TABLE_JSON).write_text(json.dumps(doc, indent=2) + "\n")


def earlier_results(results_dir: Path) -> list[MutantResult]:
    """The results an earlier run wrote into ``results_dir`` (none if absent or unreadable)."""
    try:
        doc = json.loads((results_dir / TABLE_JSON).read_text())
        fields = set(MutantResult.__dataclass_fields__)
        return [MutantResult(**{k: v for k, v in m.items() if k in fields}) for m in doc["mutants"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def merged(earlier: Sequence[MutantResult], now: Sequence[MutantResult]) -> list[MutantResult]:
    """This run's results plus the earlier ones of mutants it did not run, in catalogue order
    (so a long run can be finished later: run the remaining names into the same directory)."""
    fresh = {r.name for r in now}
    order = {m.name: i for i, m in enumerate(mutants.load_catalogue())}
    out = [r for r in earlier if r.name not in fresh] + list(now)
    return sorted(out, key=lambda r: order.get(r.name, len(order)))


def run(
    names: Sequence[str],
    results_dir: Path,
    only_suites: Sequence[str] | None = None,
    *,
    root: Path | None = None,
    log: Log = print,
) -> list[MutantResult]:
    """Run each mutant's suites (restricted to ``only_suites`` when given); write and return
    the results. A mutant left with no suite to run is skipped with a note."""
    root = root or Path.cwd()
    unknown = sorted(set(only_suites or ()) - set(mutants.SUITES))
    if unknown:
        raise K8saiError(f"--suites: unknown suite(s) {unknown}; known: {list(mutants.SUITES)}.")
    chosen = select(names)
    earlier = [r for r in earlier_results(results_dir) if r.name not in {m.name for m in chosen}]
    if earlier:
        log(
            f"[k8sai] mutants: keeping {len(earlier)} earlier result(s) from "
            f"{results_dir / TABLE_JSON} in the table: {', '.join(r.name for r in earlier)}"
        )
    results: list[MutantResult] = []
    for i, m in enumerate(chosen, start=1):
        suites = [s for s in m.suites if not only_suites or s in only_suites]
        if not suites:
            log(f"[k8sai] mutants: {m.name}: none of its suites {m.suites} selected; skipped")
            continue
        log(f"[k8sai] mutants: {i}/{len(chosen)} {m.name} ({', '.join(suites)})")
        try:
            r = run_one(m, suites, results_dir / m.name, root, log)
        except KeyboardInterrupt:
            if results:
                write_tables(merged(earlier, results), results_dir)
            raise
        results.append(r)
        log(f"[k8sai] mutants: {m.name}: {r.caught_text()} in {_minutes(r.wall_s)}")
        # After each one: a long run keeps its table.
        write_tables(merged(earlier, results), results_dir)
    return merged(earlier, results)
