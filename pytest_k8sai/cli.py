"""``k8sai``: manage the local cluster by hand (build, up, down, status); list and run the
seeded regressions (``k8sai mutants``, docs/mutants.md).

The same cluster ``pytest --cluster=local`` uses: a cluster started with ``k8sai local up`` is
reused by test runs and left running by them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from pytest_k8sai import calibrate, controlruns, mutantrun
from pytest_k8sai.clusters import check_reach_flags, sweep
from pytest_k8sai.clusters.apireader import Reader
from pytest_k8sai.clusters.base import ClusterHandle
from pytest_k8sai.clusters.existing import ExistingProvider
from pytest_k8sai.clusters.local import state
from pytest_k8sai.clusters.local.build import Builder, cache_root
from pytest_k8sai.clusters.local.processes import STOP_GRACE_S
from pytest_k8sai.clusters.local.provider import LocalProvider, stop_cluster
from pytest_k8sai.clusters.local.realdas import build as dasbuild
from pytest_k8sai.clusters.local.realdas import source as dassource
from pytest_k8sai.clusters.local.realnode import node as realnode
from pytest_k8sai.clusters.preflight import report as preflight
from pytest_k8sai.core import mutants
from pytest_k8sai.core.errors import K8saiError
from pytest_k8sai.core.profiles import load_profile


def _profile_name(args: argparse.Namespace) -> str:
    return str(load_profile(args.cluster).local.cluster_name)


def cmd_build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    builder = Builder(log=log)
    profile = load_profile(args.cluster)
    if profile.capabilities.das and profile.provider == "local":
        # The real DAS first: it needs nothing else, so a `k8sai local build` running beside
        # this one (make build) builds the control plane meanwhile.
        src = dassource.locate_source(log)
        das = dasbuild.ensure_das(src, log)
        print(f"{'das':12} {src.commit[:10]} {next(iter(das.binaries.values())).parent}")
    builds = builder.ensure_all(on_demand=args.inference)
    if profile.real_nodes:  # --cluster=local-nodes: the kubelet, host packages, images
        builds["kubelet"] = builder.ensure_named("kubelet")
        spec = LocalProvider(profile).real_node_spec()
        for img in realnode.prepare(builds["kubernetes"].module_dir, spec, log):
            print(f"{'image':12} {img.tag:10} {img.tar}")
    for name, built in builds.items():
        print(f"{name:12} {built.version:10} {built.binaries}")
    print(f"all components ready in {time.monotonic() - started:.1f}s (cache: {cache_root()})")
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    provider = LocalProvider(load_profile(args.cluster), keep=True)
    handle = provider.create()
    print(f"kubeconfig: {handle.kubeconfig}")
    print(f"try: kubectl --kubeconfig {handle.kubeconfig} get nodes")
    if handle.timings:
        print(f"started in {handle.timings.get('ready', 0):.1f}s: {json.dumps(handle.timings)}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    name = _profile_name(args)
    started = time.monotonic()
    killed = stop_cluster(name)
    if killed is None:
        print(f"no local cluster '{name}' is running")
        return 0
    note = f" (SIGKILLed after {STOP_GRACE_S:.0f}s: {', '.join(killed)})" if killed else ""
    print(f"local cluster '{name}' stopped and removed in {time.monotonic() - started:.1f}s{note}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    name = _profile_name(args)
    st = state.load(name)
    if st is None:
        print(f"no local cluster '{name}'")
        return 1
    dead = st.dead()
    print(f"cluster:    {name} ({'ready' if st.ready and not dead else 'NOT ready'})")
    print(f"kubeconfig: {st.kubeconfig}")
    print(f"logs:       {st.endpoints.get('logs')}")
    for p in st.processes:
        print(f"  {p.name:24} pid {p.pid:<8} {'dead' if p.name in dead else 'running'}")
    print(f"versions:   {', '.join(f'{k} {v}' for k, v in st.versions.items())}")
    return 0 if st.ready and not dead else 1


def _attached(args: argparse.Namespace) -> ClusterHandle:
    """The cluster preflight reads: an existing one attached to (nothing changed), or the
    running local cluster of the profile (preflight never starts one)."""
    profile = load_profile(args.cluster)
    check_reach_flags(profile, kubeconfig=args.kubeconfig, context=args.context)
    if profile.provider == "existing":
        return ExistingProvider(profile, kubeconfig=args.kubeconfig, context=args.context).create()
    name = profile.local.cluster_name
    st = state.load(name)
    if st is None or not st.ready or st.dead():
        raise K8saiError(
            f"No running local cluster '{name}' for profile '{profile.name}': preflight reads a "
            f"cluster and starts none. Start it with `k8sai local --cluster {args.cluster} up`, "
            f"or run `pytest --cluster={args.cluster} --preflight`, which starts it for the run."
        )
    return ClusterHandle(
        profile=profile,
        kubeconfig=Path(st.kubeconfig),
        context=None,
        provider="local",
        versions=dict(st.versions),
        endpoints=dict(st.endpoints),
    )


def cmd_preflight(args: argparse.Namespace) -> int:
    handle = _attached(args)
    found = preflight.run(handle, timeout_s=handle.profile.reach.connect_timeout_s)
    print(preflight.render(found))
    if args.json:
        Path(args.json).write_text(json.dumps(found.as_dict(), indent=2) + "\n")
        print(f"\nwritten: {args.json}")
    return 0 if found.ok else 1


def cmd_sweep(args: argparse.Namespace) -> int:
    older = sweep.parse_age(args.older_than) if args.older_than else None
    handle = _attached(args)
    timeout = handle.profile.reach.connect_timeout_s
    api = preflight.api_client(handle)
    try:
        found, unreadable = sweep.find(Reader(api, timeout), args.run_id, older)
        now = datetime.now(UTC)
        what = f"run {args.run_id}" if args.run_id else "any run"
        print(f"{len(found)} object(s) of {what} on {api.configuration.host}"
              + (f", older than {args.older_than}" if older else ""))  # fmt: skip
        for f in found:
            print(f"  {str(f):70} run {f.run_id:26} age {f.age(now)}")
        for u in unreadable:
            print(f"  could not list {u}")
        if args.dry_run or not found:
            return 0
        failed = sweep.delete(api, found, timeout, print)
    finally:
        api.close()
    for f in failed:
        print(f"FAILED to delete {f}", file=sys.stderr)
    return 1 if failed else 0


def cmd_mutants_list(args: argparse.Namespace) -> int:
    for m in mutants.load_catalogue():
        print(f"{m.name:28} {','.join(m.suites):18} {m.short_changes():16} {m.description}")
    print(f"(files in {mutants.CATALOGUE_DIR}; schema: docs/mutants.md)")
    return 0


def cmd_mutants_run(args: argparse.Namespace) -> int:
    suites = [s for arg in args.suites or () for s in arg.split(",") if s]
    results = mutantrun.run(args.names, Path(args.results_dir).resolve(), suites or None)
    print(mutantrun.text_table(results))
    print(f"table: {Path(args.results_dir) / mutantrun.TABLE_MD}, {mutantrun.TABLE_JSON}")
    return 0


def cmd_scale_growth(args: argparse.Namespace) -> int:
    # Imported here: the fit and the plot pull in scipy and matplotlib, which the other
    # commands do not need to start.
    from pytest_k8sai.scale import growth_report

    sources = [Path(p) for p in args.results]
    results = growth_report.load_results(sources)
    print(growth_report.growth_table(results))
    table, png = growth_report.write_report(results, Path(args.out), sources)
    print(f"written: {table}, {png}")
    return 0


def _cluster_arguments(p: argparse.ArgumentParser) -> None:
    """Which cluster a reading command attaches to (as a test run would)."""
    p.add_argument("--cluster", default="local", help="profile name or file (default local)")
    p.add_argument("--kubeconfig", help="kubeconfig of an existing cluster")
    p.add_argument("--context", help="kubeconfig context of an existing cluster")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="k8sai", description=__doc__)
    sub = p.add_subparsers(dest="area", required=True)
    local = sub.add_parser("local", help="the local cluster (plain processes on 127.0.0.1)")
    local.add_argument("--cluster", default="local", help="profile name or file (default local)")
    ops = local.add_subparsers(dest="op", required=True)
    for name, fn, text in (
        (
            "build",
            cmd_build,
            "build (or find cached) every component from its Go module; with "
            "--cluster=local-nodes also the kubelet, the host packages and the node's images",
        ),
        ("up", cmd_up, "start the local cluster and leave it running"),
        ("down", cmd_down, "stop the local cluster and remove its files"),
        ("status", cmd_status, "show whether the local cluster runs, and where"),
    ):
        op = ops.add_parser(name, help=text)
        op.set_defaults(fn=fn)
        if name == "build":
            op.add_argument(
                "--inference",
                action="store_true",
                help="also the inference suite's parts (llm-d-inference-sim, EPP), which are "
                "otherwise built on first use by suites/gaie",
            )
    pre = sub.add_parser(
        "preflight",
        help="what a cluster has, what this identity may do there, which suites will run "
        "(reads only; exit 0: every suite runs in full, 1: not, 2: unreachable)",
    )
    _cluster_arguments(pre)
    pre.add_argument("--json", metavar="PATH", help="also write the findings as JSON")
    pre.set_defaults(fn=cmd_preflight)
    sw = sub.add_parser(
        "sweep",
        help="find and delete what test runs left on a cluster (objects with the suites' "
        "labels and a run id; never the local tier's own)",
    )
    _cluster_arguments(sw)
    sw.add_argument("--run-id", help="only this run's objects (default: every run's)")
    sw.add_argument("--older-than", metavar="AGE", help="only objects older than AGE: 30m, 12h, 2d")
    sw.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    sw.set_defaults(fn=cmd_sweep)
    mut = sub.add_parser("mutants", help="seeded regressions: which ones the suites catch")
    mops = mut.add_subparsers(dest="op", required=True)
    mops.add_parser("list", help="the catalogue: name, suites, sections, what it changes")
    mops.choices["list"].set_defaults(fn=cmd_mutants_list)
    mrun = mops.add_parser(
        "run", help="run the PR tier's suites once per mutant (each on its own local cluster)"
    )
    mrun.set_defaults(fn=cmd_mutants_run)
    mrun.add_argument("names", nargs="*", help="catalogue names or mutant files (default: all)")
    mrun.add_argument(
        "--results-dir",
        default="k8sai-mutants",
        help="one results directory per mutant under it, and mutants.md/.json (default "
        "k8sai-mutants)",
    )
    mrun.add_argument(
        "--suites",
        nargs="+",
        metavar="SUITE",
        help=f"run only these of each mutant's suites ({', '.join(mutants.SUITES)})",
    )
    ctl = mops.add_parser(
        "control",
        help="the unmutated PR tier N times: false alarms, and each verdict's spread",
        description=controlruns.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    controlruns.add_arguments(ctl)
    ctl.set_defaults(fn=controlruns.cmd_control)
    cal = sub.add_parser(
        "calibrate",
        help="propose a tier's SLO thresholds from repeated runs on this machine",
        description=calibrate.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calibrate.add_arguments(cal)  # the command lives in calibrate.py; this only hands over
    cal.set_defaults(fn=calibrate.cmd_calibrate)
    scale = sub.add_parser("scale", help="the scale tier's results (docs/scale.md)")
    sops = scale.add_subparsers(dest="op", required=True)
    growth = sops.add_parser(
        "growth",
        help="the cost-growth table and plot of scale runs at three or more sizes: each "
        "figure per size, and how it grows (value ~ workloads^b)",
    )
    growth.add_argument("results", nargs="+", metavar="RESULT.json", help="scale run results")
    growth.add_argument(
        "--out",
        default="k8sai-results/scale/growth",
        help="where growth.md and growth.png go (default k8sai-results/scale/growth)",
    )
    growth.set_defaults(fn=cmd_scale_growth)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except K8saiError as exc:
        print(f"k8sai: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("k8sai: interrupted; nothing left running", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
