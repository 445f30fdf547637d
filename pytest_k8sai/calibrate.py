"""``k8sai calibrate``: propose a tier's SLO thresholds from repeated runs on this machine.

The paper's absolute SLOs (25 ms admission P99, 11 ms EPP overhead) are judged on clusters
whose control plane has its own cores. A tier whose control plane shares cores with the
harness (the local tier on a 2-core machine) carries thresholds calibrated where it runs, the
way Kueue's performance test sets its rangespec: run the suites at least 5 times, take the
worst of the trials, leave a margin beyond it, and write the evidence (trials, mean, worst,
margin, machine, date) beside each value in the profile's ``calibration`` block.

Per slo key (the profile field a verdict's threshold came from, ``Verdict.key``):

- per trial, the worst figure for that key: the highest for upper bounds (op ``<=``/``<``),
  the lowest for lower bounds (``>=``/``>``) - e.g. the worst concurrency level;
- across trials, the mean and the worst of those;
- proposed threshold: worst + margin x |worst| outward (worst x (1 + margin) for an upper
  bound, worst x (1 - margin) for a lower one), rounded outward to 3 significant digits and
  held inside the slo field's allowed range. A proposal looser than the paper's value is
  printed, never silently tightened: the seeded regressions ("mutants") show whether a loose
  threshold still catches what it must.

Only latency and rate keys are calibrated by default (``DEFAULT_KEYS``). Ratios between
setups (makespan ratio < 1), shares, counts and orderings say what the platform must do, not
how fast this machine is; ``--keys`` chooses others on purpose.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import annotated_types
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.paper import paper_values
from pytest_k8sai.core.profiles import Calibration, Profile, Slo, load_profile
from pytest_k8sai.core.progress import progress
from pytest_k8sai.core.verdicts import VERDICTS_FILE, Verdict
from pytest_k8sai.core.yamlfiles import invalid_fields

RECOMMENDED_TRIALS = 5  # Kueue's performance test calibrates its rangespec on >= 5 runs
# Rates the platform decides whose level depends on the machine (e.g. how far the EPP's
# prefix cache is warmed up in time); every other non-latency key is a ratio between setups,
# a share, a count or an ordering.
RATE_KEYS = ("gaie_prefix_hit_rate_min",)
# Every slo field measured in milliseconds, and the rates above.
DEFAULT_KEYS = tuple(k for k in Slo.model_fields if "_ms" in k) + RATE_KEYS
OUTPUT_MD = "calibration.md"
OUTPUT_YAML = "calibration.yaml"
# After Ctrl-C the trial gets this long to tear its cluster down (pytest's own SIGINT path)
# before it is terminated, then killed.
STOP_WAIT_S = 120.0
PROGRESS_EVERY_S = 30.0


class CalibrationError(K8saiError):
    """A trial or results directory cannot be used for calibration; the message names it."""


class Options(BaseModel):
    """The command's input, checked before anything runs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    trials: int = Field(RECOMMENDED_TRIALS, ge=1, le=100)
    # A lower bound's worst x (1 - margin) at or below the field's floor is clamped to the
    # field's range, or proposes nothing (see propose); upper bounds may need more than 1.
    margin: float = Field(0.25, ge=0, le=10)
    cluster: str = "local"
    results_dir: Path | None = None
    from_dirs: list[Path] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=lambda: list(DEFAULT_KEYS))
    machine: str = ""
    pytest_args: list[str] = Field(default_factory=list)

    @field_validator("keys")
    @classmethod
    def _known_keys(cls, keys: list[str]) -> list[str]:
        unknown = [k for k in keys if k not in Slo.model_fields]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)} not slo fields (slo fields: {', '.join(Slo.model_fields)})"
            )
        return keys


@dataclass
class KeyCalibration:
    """What the trials measured for one slo key, and the threshold proposed from it."""

    key: str
    unit: str
    upper: bool  # an upper bound (<=, <): higher is worse
    op: str
    per_trial: list[float]  # the worst figure of each trial that has the key
    n: int  # verdicts behind them, over all trials
    margin: float
    proposed: float | None = None
    current: float | None = None
    paper: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def trials(self) -> int:
        return len(self.per_trial)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.per_trial)

    @property
    def worst(self) -> float:
        return max(self.per_trial) if self.upper else min(self.per_trial)


@dataclass
class Outcome:
    rows: list[KeyCalibration]
    skipped: list[str]  # one sentence per key seen but not calibrated, or asked for and absent
    trial_dirs: list[Path]


# ----------------------------------------------------------------------------- reading trials


def _natural(path: Path) -> list[object]:
    # trial-10 after trial-9
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


def trial_dirs(paths: Sequence[Path]) -> list[Path]:
    """Each ``--from`` path is a results directory (holding verdicts.jsonl) or a directory of
    them (e.g. an earlier calibration's DIR with trial-1 ... trial-N)."""
    out: list[Path] = []
    for p in paths:
        if p.is_file() and p.name == VERDICTS_FILE:
            out.append(p.parent)
        elif (p / VERDICTS_FILE).is_file():
            out.append(p)
        elif p.is_dir():
            found = sorted((d for d in p.iterdir() if (d / VERDICTS_FILE).is_file()), key=_natural)
            if not found:
                raise CalibrationError(
                    f"--from {p}: the directory holds no {VERDICTS_FILE}, nor do its "
                    "subdirectories. Give results directories of earlier runs (pytest "
                    "--results-dir=DIR writes DIR/verdicts.jsonl), or a directory holding them."
                )
            out += found
        else:
            raise CalibrationError(f"--from {p}: no such file or directory.")
    return out


def read_verdicts(directory: Path) -> list[Verdict]:
    """Every verdict of one trial. A last line cut short (the run crashed mid-write) is
    skipped; any other bad line is an error naming the file and line."""
    path = directory / VERDICTS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CalibrationError(f"Trial {path} cannot be read: {exc}.") from None
    lines = text.split("\n")
    out = []
    for i, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            out.append(Verdict.model_validate_json(line))
        except ValidationError as err:
            if i == len(lines):  # no newline after it: the write was cut short
                continue
            raise CalibrationError(
                f"Trial {path} line {i} is not a verdict ({invalid_fields(err)}); the file "
                "should hold one JSON verdict per line as pytest-k8sai writes it. Re-run that "
                "trial or leave it out."
            ) from None
    if not out:
        raise CalibrationError(
            f"Trial {path} holds no verdicts: the run stopped before measuring anything. Look "
            "at its output, then re-run it or leave it out."
        )
    return out


# ----------------------------------------------------------------------------- the rule


def _bounds(key: str) -> dict[str, float]:
    """The slo field's allowed range, from its pydantic Field constraints (gt, ge, lt, le)."""
    out: dict[str, float] = {}
    for meta in Slo.model_fields[key].metadata:
        for name in ("gt", "ge", "lt", "le"):
            if isinstance(meta, getattr(annotated_types, name.capitalize())):
                out[name] = float(getattr(meta, name))
    return out


def _round_outward(x: float, up: bool) -> float:
    """3 significant digits, rounded away from the measured side so the margin is kept."""
    if x == 0 or not math.isfinite(x):
        return x
    digits = 2 - math.floor(math.log10(abs(x)))
    scale = 10.0**digits
    value = (math.ceil if up else math.floor)(x * scale) / scale
    return round(value, max(digits, 0))


def propose(worst: float, upper: bool, margin: float, key: str) -> tuple[float | None, str]:
    """The threshold for ``key`` from the trials' worst, or None and why there is none."""
    # Outward by margin x |worst|: for a negative worst (e.g. an overhead below zero)
    # worst x (1 + margin) would be tighter than what was measured.
    raw = worst + margin * abs(worst) if upper else worst - margin * abs(worst)
    value = _round_outward(raw, up=upper)
    b = _bounds(key)
    note = ""
    for name, clamp in (("ge", max), ("le", min)):
        if name in b and clamp(value, b[name]) != value:
            value = b[name]
            note = f"{key}: held to the field's range ({'>=' if name == 'ge' else '<='} {value:g})"
            if (value < worst) if upper else (value > worst):
                note += f", which the worst trial ({worst:.4g}) does not meet"
    if ("gt" in b and value <= b["gt"]) or ("lt" in b and value >= b["lt"]):
        allowed = " and ".join(
            f"{'>' if k == 'gt' else '<'} {v:g}" for k, v in b.items() if k in ("gt", "lt")
        )
        return None, (
            f"{key}: no threshold within the field's range ({allowed}) leaves the margin "
            f"beyond the worst trial ({worst:.4g}); set it by hand"
        )
    return value, note


def calibrate(
    trials: Sequence[Sequence[Verdict]],
    keys: Sequence[str],
    margin: float,
    profile: Profile | None = None,
    dirs: Sequence[Path] = (),
) -> Outcome:
    """Group the trials' verdicts by slo key and propose a threshold per key in ``keys``."""
    paper = paper_values()
    # key -> trial index -> verdicts of that key in that trial
    by_key: dict[str, dict[int, list[Verdict]]] = {}
    for t, verdicts in enumerate(trials):
        for v in verdicts:
            if v.key and v.threshold is not None and not v.invalid:
                by_key.setdefault(v.key, {}).setdefault(t, []).append(v)
    rows: list[KeyCalibration] = []
    skipped: list[str] = []
    for key in sorted(by_key):
        if key not in Slo.model_fields:
            skipped.append(f"{key}: not an slo field of this pytest-k8sai; ignored")
            continue
        if key not in keys:
            skipped.append(
                f"{key}: not calibrated (a ratio, share, count or ordering; --keys {key} "
                "calibrates it anyway)"
            )
            continue
        per_trial = by_key[key]
        ops = {v.op for vs in per_trial.values() for v in vs}
        upper = {op in ("<=", "<") for op in ops}
        if len(upper) > 1:
            skipped.append(f"{key}: its verdicts are held both ways ({', '.join(sorted(ops))})")
            continue
        is_upper = upper.pop()
        worst_of_trial: list[float] = []
        nonfinite = 0
        for t in sorted(per_trial):
            values = [v.measured for v in per_trial[t] if math.isfinite(v.measured)]
            nonfinite += len(per_trial[t]) - len(values)
            if values:
                worst_of_trial.append(max(values) if is_upper else min(values))
        if not worst_of_trial:
            skipped.append(f"{key}: no trial measured a finite value")
            continue
        first = next(iter(per_trial.values()))[0]
        row = KeyCalibration(
            key=key,
            unit=first.unit,
            upper=is_upper,
            op="<=" if is_upper else ">=",
            per_trial=worst_of_trial,
            n=sum(len(vs) for vs in per_trial.values()),
            margin=margin,
            current=getattr(profile.slo, key) if profile is not None else None,
            paper=paper[key].value if key in paper else None,
        )
        if nonfinite:
            row.notes.append(f"{key}: {nonfinite} verdicts measured no finite value; left out")
        if row.trials < len(trials):
            row.notes.append(f"{key}: measured in {row.trials} of {len(trials)} trials")
        if row.trials < RECOMMENDED_TRIALS:
            row.notes.append(
                f"{key}: {row.trials} trials; calibrate on at least {RECOMMENDED_TRIALS}"
            )
        row.proposed, why = propose(row.worst, is_upper, margin, key)
        if why:
            row.notes.append(why)
        if row.proposed is not None and row.paper is not None:
            looser = row.proposed > row.paper if is_upper else row.proposed < row.paper
            if looser:
                row.notes.append(
                    f"{key}: the proposal {row.op} {_num(row.proposed)} is looser than the "
                    f"paper's {_num(row.paper)} ({paper[key].where})"
                )
        rows.append(row)
    absent = [k for k in keys if k not in by_key]
    if absent:
        skipped.append(f"no judged verdict of the trials carries {', '.join(absent)}")
    if not rows:
        seen = ", ".join(sorted(by_key)) or "none"
        raise CalibrationError(
            f"Nothing to calibrate: none of the {len(trials)} trials' verdicts is a judged "
            f"figure whose key is among the keys asked for ({', '.join(keys)}). Keys with a "
            f"threshold in the trials: {seen}. Choose keys with --keys, or run suites that "
            "judge them."
        )
    return Outcome(rows=rows, skipped=skipped, trial_dirs=list(dirs))


# ----------------------------------------------------------------------------- output


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def machine_name() -> str:
    return f"{platform.node() or 'unknown host'} ({os.cpu_count()} cores, {platform.machine()})"


def table_rows(rows: Sequence[KeyCalibration]) -> tuple[list[str], list[list[str]]]:
    header = ["key", "trials", "mean", "worst", "margin", "proposed", "current", "paper"]
    body = []
    for r in rows:
        unit = f" {r.unit}" if r.unit else ""
        body.append(
            [
                r.key,
                str(r.trials),
                f"{_num(r.mean)}{unit}",
                f"{_num(r.worst)}{unit}",
                f"{r.margin * 100:g} %",
                "-" if r.proposed is None else f"{r.op} {_num(r.proposed)}{unit}",
                "-" if r.current is None else f"{r.op} {_num(r.current)}{unit}",
                _num(r.paper),
            ]
        )
    return header, body


def format_table(rows: Sequence[KeyCalibration]) -> list[str]:
    header, body = table_rows(rows)
    widths = [max(len(c) for c in col) for col in zip(header, *body, strict=True)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True))  # noqa: E731
    return [
        line(header).rstrip(),
        "  ".join("-" * w for w in widths),
        *(line(b).rstrip() for b in body),
    ]


def _short(x: float) -> float:
    return float(f"{x:.4g}")


def profile_yaml(outcome: Outcome, machine: str, date: str) -> str:
    """The ``slo:`` and ``calibration:`` blocks to paste into the profile (valid YAML; each
    threshold has its evidence as a comment beside it and as a Calibration entry)."""
    rows = [r for r in outcome.rows if r.proposed is not None]
    out = [
        f"# k8sai calibrate {date} on {machine}: {len(outcome.trial_dirs) or '?'} trials",
        "slo:",
    ]
    for r in rows:
        value = yaml.safe_dump({r.key: r.proposed}).strip()
        unit = f" {r.unit}" if r.unit else ""
        paper = f"; paper {_num(r.paper)}" if r.paper is not None else ""
        out.append(
            f"  {value}  # {r.op}; {r.trials} trials: mean {_num(r.mean)}, worst "
            f"{_num(r.worst)}{unit}; margin {r.margin * 100:g} %{paper}"
        )
    for r in outcome.rows:
        if r.proposed is None:
            out.append(f"  # {r.key}: no proposal (see the notes)")
    calibration = {
        r.key: Calibration(
            trials=r.trials,
            n=r.n,
            mean=_short(r.mean),
            worst=_short(r.worst),
            margin=r.margin,
            machine=machine,
            date=date,
        ).model_dump()
        for r in rows
    }
    out.append(yaml.safe_dump({"calibration": calibration}, sort_keys=False).rstrip())
    return "\n".join(out) + "\n"


def notes_of(outcome: Outcome) -> list[str]:
    return [n for r in outcome.rows for n in r.notes] + outcome.skipped


def markdown(outcome: Outcome, yaml_text: str, machine: str, date: str, command: str) -> str:
    header, body = table_rows(outcome.rows)
    md = [
        f"# Threshold calibration, {date}",
        "",
        f"Machine: {machine}. Command: `{command}`.",
        "",
        "Trials:",
        "",
        *(f"- `{d}`" for d in outcome.trial_dirs),
        "",
        "Per key: the worst figure of each trial (highest for `<=`, lowest for `>=`), then the "
        "mean and the worst over trials; proposed = worst + margin outward, 3 significant "
        "digits, inside the slo field's range.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in body),
        "",
    ]
    notes = notes_of(outcome)
    if notes:
        md += ["Notes:", "", *(f"- {n}" for n in notes), ""]
    md += ["For the profile:", "", "```yaml", yaml_text.rstrip(), "```", ""]
    return "\n".join(md)


# ----------------------------------------------------------------------------- running trials

_EXIT_MEANING = {
    2: "interrupted",
    3: "pytest internal error",
    4: "usage, profile or results-directory error",
    5: "no tests collected",
}


def default_pytest_args() -> list[str]:
    """The PR tier: the checkout's suites/ when run from a checkout, else the installed
    k8sai_suites package."""
    if Path("suites").is_dir():
        return ["-m", "pr", "suites"]
    return ["--pyargs", "k8sai_suites", "-m", "pr"]


def pytest_command(cluster: str, results: Path, args: Sequence[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        f"--cluster={cluster}",
        f"--results-dir={results}",
        "-p",
        "no:cacheprovider",
        *args,
    ]


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for _ in fh)
    except OSError:
        return 0


def _last_line(path: Path) -> str:
    try:
        lines = [x.strip() for x in path.read_text(errors="replace").splitlines() if x.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def stop_child(proc: subprocess.Popen[bytes], wait_s: float = STOP_WAIT_S) -> None:
    """One SIGINT (pytest tears its cluster down on it), then SIGTERM, then SIGKILL. The child
    runs in its own session, so the terminal's Ctrl-C reaches only this process and pytest
    gets exactly one SIGINT: a second would cut its teardown short."""
    if proc.poll() is not None:
        return
    progress(f"[calibrate] stopping the trial (pid {proc.pid}): SIGINT, up to {wait_s:.0f} s")
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=wait_s)
        return
    except subprocess.TimeoutExpired:
        progress(f"[calibrate] the trial did not stop in {wait_s:.0f} s: SIGTERM")
    except KeyboardInterrupt:
        progress("[calibrate] second Ctrl-C: SIGTERM")
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_trials(
    opts: Options,
    out_dir: Path,
    command: Callable[[Path], list[str]] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
) -> list[Path]:
    """Run the trials one after another into out_dir/trial-K; return their directories."""
    existing = sorted((p for p in out_dir.glob("trial-*") if p.is_dir()), key=_natural)
    if existing:
        raise CalibrationError(
            f"--results-dir {out_dir} already holds {', '.join(p.name for p in existing)}: "
            "trials are never mixed with older ones. Choose a new directory, or calibrate "
            f"from those with k8sai calibrate --from {out_dir}."
        )
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CalibrationError(
            f"--results-dir {out_dir} cannot be created: {exc.strerror or exc}."
        ) from None
    args = opts.pytest_args or default_pytest_args()
    done: list[Path] = []
    started_all = time.monotonic()
    for k in range(1, opts.trials + 1):
        trial = out_dir / f"trial-{k}"
        log = out_dir / f"trial-{k}.log"
        cmd = command(trial) if command else pytest_command(opts.cluster, trial, args)
        progress(f"[calibrate] trial {k}/{opts.trials}: {shlex.join(cmd)}")
        progress(f"[calibrate]   output: {log}")
        started = time.monotonic()
        with log.open("wb") as fh:
            proc = subprocess.Popen(
                cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True
            )
            try:
                next_note = started + progress_every_s
                while proc.poll() is None:
                    time.sleep(min(1.0, progress_every_s))
                    if time.monotonic() >= next_note:
                        n = _count_lines(trial / VERDICTS_FILE)
                        progress(
                            f"[calibrate] trial {k}/{opts.trials}: "
                            f"{time.monotonic() - started:.0f} s, {n} verdicts so far"
                        )
                        next_note += progress_every_s
            except KeyboardInterrupt:
                stop_child(proc)
                kept = (
                    f"; trials finished: {', '.join(str(d) for d in done)} (k8sai calibrate "
                    f"--from {' '.join(str(d) for d in done)})"
                    if done
                    else ""
                )
                progress(f"[calibrate] interrupted in trial {k}{kept}")
                raise
        rc = proc.returncode
        took = time.monotonic() - started
        if rc not in (0, 1) or not (trial / VERDICTS_FILE).is_file():
            what = _EXIT_MEANING.get(rc, "")
            if rc in (0, 1):
                what = "but recorded no verdicts: do the pytest arguments select suites?"
            else:
                what = (
                    f"({what}) without verdicts to calibrate from"
                    if what
                    else "without verdicts to calibrate from"
                )
            last = _last_line(log)
            raise CalibrationError(
                f"Trial {k} ({shlex.join(cmd)}) exited {rc} {what} after {took:.0f} s; its "
                f"output is in {log}"
                f"{f' (last line: {last!r})' if last else ''}. Fix that, then run again."
            )
        n = _count_lines(trial / VERDICTS_FILE)
        failed = " (some tests failed, as expected while thresholds are uncalibrated)"
        progress(
            f"[calibrate] trial {k}/{opts.trials} done in {took:.0f} s: exit {rc}"
            f"{failed if rc == 1 else ''}, {n} verdicts"
        )
        done.append(trial)
    progress(f"[calibrate] {opts.trials} trials in {time.monotonic() - started_all:.0f} s")
    return done


# ----------------------------------------------------------------------------- the command


def add_from_argument(p: argparse.ArgumentParser, verb: str) -> None:
    """``--from DIR...``: earlier results directories instead of new runs (also used by
    ``k8sai mutants control``)."""
    p.add_argument(
        "--from",
        dest="from_dirs",
        nargs="+",
        type=Path,
        default=[],
        metavar="DIR",
        help=f"{verb} existing results directories (each holding verdicts.jsonl, or holding "
        "such directories) instead of running",
    )


def add_pytest_args_argument(p: argparse.ArgumentParser, what: str) -> None:
    """The pytest arguments after ``--`` that each run gets."""
    p.add_argument(
        "pytest_args",
        nargs="*",
        metavar="-- PYTEST_ARGS",
        help=f"after --: what each {what} runs (default: -m pr suites in a checkout, else "
        "--pyargs k8sai_suites -m pr)",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trials",
        type=int,
        default=RECOMMENDED_TRIALS,
        help=f"runs of the suites, one after another (default {RECOMMENDED_TRIALS}; "
        f"calibrate on at least {RECOMMENDED_TRIALS})",
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.25,
        help="room beyond the worst trial, as a share of it: upper bounds worst x (1 + "
        "margin), lower bounds worst x (1 - margin) (default 0.25)",
    )
    p.add_argument(
        "--cluster",
        default="local",
        help="profile name or file the trials run on; its thresholds are shown as current "
        "(default local)",
    )
    p.add_argument(
        "--results-dir",
        type=Path,
        help="where trial-K/ (each trial's results), trial-K.log, calibration.md and "
        "calibration.yaml go (default k8sai-calibration/<UTC time>; with --from: the "
        "directory the trials share)",
    )
    add_from_argument(p, "calibrate from")
    p.add_argument(
        "--keys",
        nargs="+",
        metavar="KEY",
        help="slo fields to calibrate (space or comma separated; default: the latency and "
        f"rate fields: {', '.join(DEFAULT_KEYS)})",
    )
    p.add_argument(
        "--machine", default="", help="machine description recorded (default: host, cores)"
    )
    add_pytest_args_argument(p, "trial")


def options(args: argparse.Namespace) -> Options:
    data = {
        "trials": args.trials,
        "margin": args.margin,
        "cluster": args.cluster,
        "results_dir": args.results_dir,
        "from_dirs": args.from_dirs,
        "machine": args.machine,
        "pytest_args": args.pytest_args,
    }
    if args.keys:
        data["keys"] = [k for item in args.keys for k in item.split(",") if k]
    try:
        return Options.model_validate(data)
    except ValidationError as err:
        flags = "; ".join(
            f"--{str(e['loc'][0]).replace('_', '-')}: {e['msg']}" for e in err.errors()
        )
        raise CalibrationError(f"Invalid option of k8sai calibrate: {flags}.") from None


def command_line(opts: Options) -> str:
    """The command that reproduces this calibration (for calibration.md)."""
    parts = ["k8sai", "calibrate", "--margin", f"{opts.margin:g}", "--cluster", opts.cluster]
    if opts.from_dirs:
        parts += ["--from", *(str(d) for d in opts.from_dirs)]
    else:
        parts += ["--trials", str(opts.trials)]
    if list(opts.keys) != list(DEFAULT_KEYS):
        parts += ["--keys", *opts.keys]
    if opts.pytest_args:
        parts += ["--", *opts.pytest_args]
    return shlex.join(parts)


def cmd_calibrate(args: argparse.Namespace) -> int:
    opts = options(args)
    profile = load_profile(opts.cluster)
    now = datetime.now(UTC)
    if opts.from_dirs:
        dirs = trial_dirs(opts.from_dirs)
        # Beside the trials: an earlier calibration's DIR, or the results directory itself.
        out_dir = opts.results_dir or Path(os.path.commonpath([d.resolve() for d in dirs]))
    else:
        out_dir = opts.results_dir or Path("k8sai-calibration") / now.strftime("%Y%m%dT%H%M%SZ")
        dirs = run_trials(opts, out_dir)
    if len(dirs) < RECOMMENDED_TRIALS:
        progress(
            f"[calibrate] {len(dirs)} trials: thresholds are calibrated on at least "
            f"{RECOMMENDED_TRIALS}; treat these proposals as provisional"
        )
    outcome = calibrate(
        [read_verdicts(d) for d in dirs], opts.keys, opts.margin, profile, dirs=dirs
    )
    machine = opts.machine or machine_name()
    date = now.date().isoformat()
    text = profile_yaml(outcome, machine, date)
    print("\n".join(format_table(outcome.rows)))
    notes = notes_of(outcome)
    if notes:
        print("\nnotes:")
        print("\n".join(f"  - {n}" for n in notes))
    print("\nfor the profile:\n")
    print(text, end="")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / OUTPUT_YAML).write_text(text, encoding="utf-8")
        (out_dir / OUTPUT_MD).write_text(
            markdown(outcome, text, machine, date, command_line(opts)),
            encoding="utf-8",
        )
    except OSError as exc:
        raise CalibrationError(
            f"The calibration cannot be written to {out_dir}: {exc.strerror or exc}. The "
            "table and YAML above are complete; --results-dir picks another directory."
        ) from None
    print(f"\nwritten: {out_dir / OUTPUT_MD}, {out_dir / OUTPUT_YAML}")
    return 0
