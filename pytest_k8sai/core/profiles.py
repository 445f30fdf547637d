"""Cluster profiles: what a cluster is, how to reach it, what it has and what to expect of it.

A profile is YAML written by a user (or shipped in ``pytest_k8sai/profiles``). Every field is
validated by pydantic; a wrong field becomes one ProfileError that names the file and the field.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from pytest_k8sai.core.data import data_file
from pytest_k8sai.core.errors import ProfileError
from pytest_k8sai.core.yamlfiles import exists, invalid_fields, printable, read_yaml, validate

BUILTIN_DIR = data_file("core", "profiles")
LOCAL_CLUSTER_ENV = "K8SAI_LOCAL_CLUSTER"

# Names a test may use in @pytest.mark.requires(...); each maps to a capability check below.
REQUIREMENTS = ("gpu", "mig", "kueue", "das", "inference_gateway")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reach(_Strict):
    """How to reach an existing cluster (ignored by providers that create their own)."""

    kubeconfig: str | None = Field(None, description="path; default: $KUBECONFIG or ~/.kube/config")
    context: str | None = Field(None, description="kubeconfig context; default: the current one")
    connect_timeout_s: float = Field(10.0, gt=0, le=60)
    # Where this identity may not create namespaces (OpenShift users without the
    # self-provisioner role, or whose projects come from ProjectRequests that cannot carry the
    # labels Kueue needs): namespaces an admin created for the suites, with those labels. The
    # suites borrow them one at a time instead of creating their own and remove only what they
    # made there. docs/existing-clusters.md "Pre-created namespaces".
    namespaces: list[str] = Field(
        default_factory=list,
        description="pre-created namespaces the suites use instead of creating their own",
    )
    # Labels every namespace the suites use must carry, on top of what preflight detects from
    # Kueue's managedJobsNamespaceSelector. Needed where the identity may not read Kueue's
    # ConfigMap (the suites' role grants no ConfigMaps): Red Hat's Kueue ignores Jobs in
    # namespaces without kueue.openshift.io/managed=true.
    namespace_labels: dict[str, str] = Field(
        default_factory=dict,
        description="labels the namespaces the suites use must carry",
    )


class GpuNodes(_Strict):
    """The GPU nodes a cluster has (the local tier creates them as KWOK nodes)."""

    count: int = Field(1, ge=0, le=1000)
    product: str = "NVIDIA-A100-SXM4-40GB"
    gpus_per_node: int = Field(8, ge=1, le=64)
    # Extended resources per node besides nvidia.com/gpu, e.g. MIG slices in the mixed strategy.
    extra_resources: dict[str, int] = Field(default_factory=dict)
    cpu: str = "96"
    memory: str = "1Ti"
    max_pods: int = Field(110, ge=1)


class Mig(_Strict):
    enabled: bool = False
    strategy: Literal["mixed", "single"] = "mixed"


class Capabilities(_Strict):
    """What the cluster has; tests marked requires(NAME) are skipped when it lacks NAME."""

    gpu_nodes: GpuNodes = Field(default_factory=GpuNodes)
    mig: Mig = Field(default_factory=Mig)
    kueue: bool = True
    das: bool = False
    inference_gateway: bool = False

    def has(self, requirement: str) -> bool:
        checks = {
            "gpu": self.gpu_nodes.count > 0,
            "mig": self.mig.enabled,
            "kueue": self.kueue,
            "das": self.das,
            "inference_gateway": self.inference_gateway,
        }
        return checks[requirement]


class Slo(_Strict):
    """SLO thresholds. Suites read them from here so that thresholds are data, never code."""

    kueue_admission_attempt_p99_ms: float = Field(25.0, gt=0)
    # The scale tier's Kueue baseline (scale-kueue-perf) is judged by Kueue's own rangespec
    # (wall time, average time to admission per class), each limit times this factor: how much
    # slower this tier may run the baseline than Kueue's CI did (envtest, a minimal Kueue on
    # a larger machine). 1.0: Kueue's limits as they are.
    scale_kueue_perf_slowdown_max: float = Field(1.0, ge=1.0)
    # Paper orderings, as ratios so they hold at any time scale (paper: 51.1/62.5 = 0.82).
    kueue_preemption_makespan_ratio_max: float = Field(1.0, gt=0)
    # Large jobs' median queue time, + Priority over BestEffortFIFO (paper: 10.2/17.3 = 0.59).
    kueue_priority_large_queue_ratio_max: float = Field(1.0, gt=0)
    # GPUs one ClusterQueue must be seen borrowing from its cohort in the 2-CQ setup.
    kueue_borrowed_gpus_min: float = Field(1.0, ge=0)
    # BestEffortFIFO: share of job pairs whose Workloads were created in different seconds
    # (Kueue's FIFO key, creationTimestamp, has one-second precision) that are admitted in
    # that order, after the first wave.
    kueue_fifo_order_kept_min: float = Field(1.0, ge=0, le=1)
    # Median job run time over median admission+scheduling latency: time compression must
    # leave the platform's own latency small against the work.
    kueue_duration_latency_ratio_min: float = Field(20.0, gt=0)
    # Median wait after a GPU frees (last completion -> next admission: Kueue's requeue
    # batching; without Kueue kube-scheduler's backoff) over the median job run time. Time
    # compression magnifies these designed waits; above this share they bias makespan and JCT.
    kueue_wait_after_free_ratio_max: float = Field(0.1, gt=0)
    # Workloads seen preempted (evicted for a higher priority one) in the + Preemption setup.
    kueue_preemptions_min: float = Field(1.0, ge=0)
    # + Preemption (paper): large jobs (priority 1000) preempt medium ones, never the reverse.
    # Kueue's victim choice (withinClusterQueue: LowerPriority) decides it: large jobs
    # preempted in a run (the most over runs) must stay at 0.
    kueue_large_jobs_preempted_max: float = Field(0.0, ge=0)
    # GPU slicing suite, Kueue arm: Kueue keeps admitting while its ClusterQueue has room, so
    # at the peak the pods running fill the quota (the planner's best layout). BestEffortFIFO
    # reached 28 of 28 in every unmutated run seen (2 CI runs and 1 equivalent-mutant run,
    # 2026-12-06); StrictFIFO, whose blocked head holds back jobs that fit, 26 of 28 (0.929).
    # 0.96 = 27 of 28.
    das_kueue_quota_filled_min: float = Field(0.96, ge=0, le=1)
    # Useful GPU time: the jobs' written run times over makespan x the cluster's GPUs (1.0 =
    # every GPU busy with work that completed, from first creation to last completion).
    # Kueue decides how much of the quota it fills; with the whole cluster as quota the local
    # runs measured 0.67-0.79. Not judged in + Preemption, whose preempted work is repeated.
    kueue_gpu_busy_share_min: float = Field(0.6, ge=0, le=1)
    # How far a pod's observed run time may stray from the duration written on it.
    kwok_duration_tolerance_ms: float = Field(1500.0, gt=0)
    # Pod startup latency, pod first seen (Pending) -> Running via watch, image present: the
    # Kubernetes SIG Scalability SLO (P99 <= 5 s for stateless pods). Judged where a node
    # really starts containers; on KWOK it is the stage delay the suite writes.
    pod_startup_p99_ms: float = Field(5000.0, gt=0)
    # GPU slicing suite (paper Tables 5 and 6). Mean JCT gain of the full trace on slices over
    # whole GPUs, (whole - sliced) / whole (paper: (28 - 18) / 28 = 0.36).
    das_jct_gain_min: float = Field(0.36, ge=0, le=1)
    # Peak concurrent jobs on slices, full trace (paper: 25 on 8 A100s, up from 8).
    das_concurrency_min: float = Field(25.0, ge=0)
    # Observed peak concurrency / the planner's best packing (paper: 25 / 28 = 0.89).
    das_packing_efficiency_min: float = Field(0.89, ge=0, le=1)
    # Table 5, no waiting: mean JCT on slices / on whole GPUs (paper: 17 / 14 = 1.21).
    das_slice_jct_ratio_max: float = Field(1.3, gt=0)
    # Real DAS only: pod creation -> Running for sliced pods, P99; None reports it as INFO.
    das_slice_provisioning_p99_ms: float | None = Field(None, gt=0)
    # kube-scheduler on a static slice layout (every tier but DAS), per run: the longest total
    # time one pod stayed Pending while a node it fits on had a free slice of its MIG profile
    # (pod watch). 1 s is kube-scheduler's initial backoff (podInitialBackoffSeconds): since
    # 1.33 it pops a backed-off pod as soon as it is idle (SchedulerPopFromBackoffQ), so a
    # freed slice is taken within event propagation + one scheduling cycle; a wait of the
    # full exponential backoff (up to 10 s) fails. Wall ms: it does not scale with
    # time_compression. (No paper value: the paper reports no scheduling delay.)
    das_wait_with_free_slice_max_ms: float = Field(1000.0, gt=0)

    # Inference suite (paper Fig. 5-7). The local gateway's own added latency, P50 of
    # time-to-first-byte via the gateway minus direct, at concurrency 1 (local tier only).
    gaie_gateway_overhead_p50_ms: float = Field(2.0, gt=0)
    # Mean TTFT added by gateway + InferencePool + EPP over the direct path, per concurrency
    # level (paper Fig. 5: 3..11 ms).
    gaie_epp_overhead_ttft_ms_max: float = Field(11.0, gt=0)
    # The EPP's own scheduling latency, P99 of inference_extension_scheduler_e2e_duration_seconds
    # over the gateway+pool+EPP load (its part of Fig. 5's added TTFT; paper: <= 11 ms in all).
    gaie_epp_scheduling_p99_ms: float = Field(11.0, gt=0)
    # Prefix-cache hit rate (tokens) the prefix-aware EPP reaches during the routing load, and
    # how far above random routing's. The EPP decides both: the replicas only count hits. (No
    # paper value: the defaults leave room for the first, uncached, request of each prompt.)
    gaie_prefix_hit_rate_min: float = Field(0.6, ge=0, le=1)
    gaie_prefix_hit_rate_gain_min: float = Field(0.2, ge=0, le=1)
    # Requests per replica, busiest over mean, per routing configuration during the load: the
    # random picker spreads them; the prefix-aware scorers concentrate prompts but must not pile
    # the pool onto a few replicas (8 replicas: 8.0 would be all on one). Random: 256 requests
    # on 8 replicas are Binomial(256, 1/8) each (mean 32, sd 5.3); 1.6 x mean = 51.2 is 3.6 sd
    # above, so a fair picker exceeds it in ~0.2 % of levels.
    gaie_random_spread_max: float = Field(1.6, ge=1)
    gaie_prefix_spread_max: float = Field(2.5, ge=1)
    # Mean TTFT, random over prefix-aware routing, per concurrency level (paper: ~6.25).
    gaie_ttft_mean_ratio_min: float = Field(2.0, gt=0)
    # P99 TTFT reduction of prefix-aware against random routing, 1 - P99 ratio (paper: up to
    # 0.9 in the abstract; Fig. 6 shows P99 up to 20x lower).
    gaie_ttft_p99_reduction_min: float = Field(0.5, ge=0, le=1)
    # Share of GuideLLM requests errored or incomplete that a run may have.
    gaie_failed_request_share_max: float = Field(0.0, ge=0, le=1)


class Calibration(_Strict):
    """Evidence for one locally calibrated threshold (``k8sai calibrate`` writes these): what
    the trials measured on the machine named, and the margin the threshold leaves beyond the
    worst trial. The threshold itself is the ``slo`` field of the same name."""

    trials: int = Field(ge=1)
    n: int = Field(0, ge=0)  # verdicts behind the figures (e.g. one per concurrency level)
    mean: float
    worst: float
    margin: float = Field(ge=0)
    machine: str = ""
    date: str = ""


class Regression(_Strict):
    """How ``--baseline`` judges tonight against earlier runs (rule: report/compare.py)."""

    # Smallest relative change of a figure's statistic that counts as a regression.
    tolerance_pct: float = Field(10.0, ge=0)
    # 1 - confidence of the bootstrap interval of the difference.
    alpha: float = Field(0.05, gt=0, lt=1)
    # Raw samples needed on each side for a test; fewer: the change is shown, not judged.
    min_samples: int = Field(10, ge=2)
    bootstrap_resamples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0  # the bootstrap's generator, so a comparison is reproducible
    # A regression makes the run exit 1 (as a failed SLO does).
    fail_run: bool = True


class WhisperJobs(_Strict):
    """How the Whisper transcription Jobs run. On simulated tiers (KWOK) nothing runs and the
    image is never pulled; on a real cluster these name the container that transcribes."""

    image: str | None = None
    # Templated per job with {name}, {model} and {audio_seconds}.
    command: list[str] = Field(default_factory=list)


class KueueSuite(_Strict):
    runs: int = Field(1, ge=1, le=50, description="repetitions per setup; --runs overrides")
    setups: list[str] | None = Field(None, description="setup names to run; default all")
    # The setups whose per-setup checks are in the PR tier (-m pr); the rest run nightly.
    # best-effort-fifo (FIFO, admission P99), preemption (preemptions seen), borrowing (cohort).
    pr_setups: list[str] = Field(
        default_factory=lambda: ["best-effort-fifo", "preemption", "two-cqs-borrowing"]
    )
    job_timeout_s: float = Field(900.0, gt=0, description="per run, wall clock")
    # Jobs are submitted at this rate, as the paper's kube-burner creates objects at a set QPS;
    # 0 submits them back to back.
    submit_qps: float = Field(20.0, ge=0)
    # Where the admission-attempt histogram is read on an existing cluster (the local tier
    # reads its own Kueue's log and metrics): Kueue's /metrics as this machine reaches it (a
    # route or `kubectl port-forward`), a bearer token from the named environment variable, and
    # the CA that signs its certificate. Unset or unreachable: the admission verdicts are left
    # out with the reason, said when the suite starts.
    metrics_url: str | None = Field(None, pattern=r"^https?://")
    # The Kueue API version to speak; unset: the first of v1beta2, v1beta1 the cluster serves
    # (detected when the run starts).
    api_version: Literal["v1beta2", "v1beta1"] | None = None
    metrics_token_env: str | None = None
    metrics_ca_file: str | None = None


class DasSuite(_Strict):
    """The GPU slicing suite: whole GPUs vs MIG slices (paper section 4.2)."""

    runs: int = Field(1, ge=1, le=50, description="repetitions per experiment; --runs overrides")
    # Which MIG profile each Whisper model's jobs ask for (paper: medium 1g.5gb, large 3g.20gb
    # on A100-40GB; on 80 GB GPUs e.g. 1g.10gb and 3g.40gb). Checked against the catalogue.
    slices: dict[str, str] = Field(default_factory=lambda: {"medium": "1g.5gb", "large": "3g.20gb"})
    # Table 5: this many jobs of each model (paper: 4 + 4 = 8, so none waits).
    limited_jobs_per_model: int = Field(4, ge=1)
    # The resource a whole-GPU job asks for. With DAS managing every GPU, a full-GPU MIG
    # profile (e.g. nvidia.com/mig-7g.40gb) is the nearest whole-GPU baseline.
    whole_gpu_resource: str = "nvidia.com/gpu"
    job_timeout_s: float = Field(900.0, gt=0, description="per run, wall clock")
    submit_qps: float = Field(20.0, ge=0)
    experiments: list[str] | None = Field(None, description="experiment names; default all")
    # Real DAS: where its AllocationClaims live, and how long slices may take to be released.
    das_namespace: str = "das-operator"
    release_timeout_s: float = Field(120.0, gt=0)


class SimReplica(_Strict):
    """How each llm-d-inference-sim replica behaves (local tier). TTFT = prefill overhead +
    uncached prompt tokens x prefill time per token (the sim's per-token latency model)."""

    prefill_overhead_ms: float = Field(20.0, ge=0)
    prefill_time_per_token_ms: float = Field(0.25, ge=0)
    inter_token_latency_ms: float = Field(2.0, ge=0)
    max_num_seqs: int = Field(16, ge=1)
    max_model_len: int = Field(32768, ge=1024, description="prompt + output tokens")
    block_size: int = Field(16, ge=1)
    # KV cache per replica as a share of the routing prompts' working set (the paper:
    # 143,360 tokens per replica against 32 x 8,500 = 272,000 prompt tokens, 0.53).
    kv_cache_share_of_working_set: float = Field(0.53, gt=0)


class GaieExisting(_Strict):
    """Where the inference paths are on an existing cluster (the platform deploys them)."""

    model: str
    # (i) the model server's Service (ClusterIP path), (ii) a gateway route without an
    # InferencePool, (iii) gateway routes whose InferencePool's EPP picks at random, and with
    # the prefix-cache-aware scorers. Each a base URL such as http://10.0.0.5:80.
    direct_url: str | None = None
    gateway_url: str | None = None
    random_url: str | None = None
    prefix_aware_url: str | None = None
    # Model servers' metrics URLs for the prefix-cache hit rate (optional).
    metrics_urls: list[str] = Field(default_factory=list)
    # Routes that require a key (an API gateway, a route behind an OAuth proxy): the bearer
    # token is read at run time from an environment variable or a file, never written in the
    # profile, and sent as "Authorization: Bearer <token>" by the probe and by GuideLLM.
    token_env: str | None = Field(None, description="environment variable holding the token")
    token_file: Path | None = Field(None, description="file holding the token (one line)")

    @model_validator(mode="after")
    def _one_token_source(self) -> GaieExisting:
        if self.token_env and self.token_file:
            raise ValueError("set token_env or token_file, not both")
        return self

    def token(self) -> str | None:
        """The bearer token, or None when no source is set. A source that is set but empty or
        unreadable is an error naming the field: every request would be refused."""
        if self.token_env:
            value = os.environ.get(self.token_env, "").strip()
            if not value:
                raise ProfileError(
                    f"profile field 'gaie_suite.existing.token_env' names the environment "
                    f"variable {self.token_env}, which is unset or empty in this run. Export "
                    "the inference route's token in it, or remove the field."
                )
            return value
        if self.token_file:
            path = self.token_file.expanduser()
            try:
                value = path.read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ProfileError(
                    f"profile field 'gaie_suite.existing.token_file': cannot read {path} "
                    f"({exc.__class__.__name__}: {exc.strerror or exc}). Point it at a "
                    "readable file holding the token, or remove the field."
                ) from None
            if not value:
                raise ProfileError(
                    f"profile field 'gaie_suite.existing.token_file': {path} is empty."
                )
            return value
        return None


class GaieSuite(_Strict):
    """The inference suite: paper sections 3.3.3 and 4.3 (Figures 5-7)."""

    def load_timeout_s(self, requests: int, streams: list[int], output_tokens: int) -> float:
        """The time limit of one GuideLLM run (see guidellm_seconds_per_output_token)."""
        per_request = output_tokens * self.guidellm_seconds_per_output_token + 2.0
        work = sum(-(-requests // c) * per_request for c in streams)
        return max(self.guidellm_timeout_s, work)

    model: str = Field("Qwen/Qwen3-8B", description="model name served and requested")
    replicas: int = Field(
        8, ge=1, le=8, description="routing experiment (InferencePool: <= 8 ports)"
    )
    # Experiment 1 (overhead, one replica): concurrency levels and requests per level.
    overhead_concurrency: list[int] = Field(default_factory=lambda: [1, 4, 8])
    overhead_requests: int = Field(64, ge=2)
    overhead_output_tokens: int = Field(16, ge=1)
    # Experiment 2 (routing), per concurrency level: `transcripts` summarization prompts, each
    # sent `repetitions` times, with up to `output_tokens` each (defaults: the paper's 32 x 8
    # requests of whole ~8,500-token transcripts, 512 output tokens).
    routing_concurrency: list[int] = Field(default_factory=lambda: [1, 4, 16])
    transcripts: int = Field(32, ge=1)
    repetitions: int = Field(8, ge=1)
    max_prompt_tokens: int | None = Field(None, ge=16, description="cut prompts; None: whole")
    output_tokens: int = Field(512, ge=1)
    # Before each routing level, every distinct prompt is sent once through that level's
    # routing (the caches of a service that has been running), one new request per
    # `warmup_pace_ms`: twice the EPP's 50 ms metrics refresh, so each pick sees the load of
    # the previous ones (pytest_k8sai.gaie.routingcheck.warm_up says why). 0: one burst.
    warmup_pace_ms: float = Field(100.0, ge=0, le=10_000)
    # Sequential requests of the gateway's own overhead check, direct and via the gateway.
    gateway_probe_requests: int = Field(200, ge=10)
    # The two EPP configurations (EndpointPickerConfig documents; weights are data). Unset: the
    # packaged pytest_k8sai/gaie/epp_configs.yaml; a relative path is taken from the directory
    # pytest runs in.
    epp_configs: str | None = None
    sim: SimReplica = Field(default_factory=SimReplica)
    guidellm_timeout_s: float = Field(300.0, gt=0, description="per GuideLLM run, at least")
    # A GuideLLM run's time limit grows with its work: for each level, the requests one stream
    # sends (requests / concurrency) x (this many seconds per output token x output tokens +
    # 2 s). 0.05 s is a 20 tokens/s stream, slower than any model server the paper measured,
    # so a slow platform is measured rather than cut off; the limit is never below
    # guidellm_timeout_s.
    guidellm_seconds_per_output_token: float = Field(0.05, gt=0)
    start_timeout_s: float = Field(30.0, gt=0, description="replica / EPP / gateway start")
    existing: GaieExisting | None = None


class LocalTier(_Strict):
    """Settings of the local provider (plain processes)."""

    cluster_name: str = Field("local", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    kueue_log_level: int = Field(2, ge=0, le=10)
    start_timeout_s: float = Field(120.0, gt=0)
    pod_cidr: str = "10.0.0.0/16"
    # "kwok": the GPU nodes are KWOK nodes (nothing runs). "real": the GPU node is a real
    # kubelet on containerd + runc with a fake-GPU device plugin, so pods really start
    # (docs/real-nodes.md; one real node per machine, so gpu_nodes.count must be 1).
    gpu_nodes: Literal["kwok", "real"] = "kwok"


class WorkloadPods(_Strict):
    """How the suites' GPU Job pods run. On KWOK nothing runs and the image is never pulled;
    where a node really starts containers the image must hold ``sleep`` (Jobs run for the
    time written on them: ``sleep <seconds>``)."""

    image: str = "registry.k8s.io/pause:3.10"
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    # Real nodes on the local tier have only a loopback CNI: their pods use the host network.
    host_network: bool = False
    # Run `sleep <seconds>` in the container (real nodes); off, the pod runs the image as is.
    sleep: bool = False
    # Secrets (in the run's namespace) for pulling a private image.
    image_pull_secrets: list[str] = Field(default_factory=list)
    # A securityContext that passes OpenShift's restricted-v2 SCC and the restricted Pod
    # Security Standard: no root, no privilege escalation, no capabilities, RuntimeDefault
    # seccomp; the UID is left to the platform (arbitrary UIDs).
    restricted: bool = False
    # The UID restricted pods run as where the platform assigns none. OpenShift's SCC assigns
    # one from the namespace's range (and refuses any other): leave it unset there. Elsewhere
    # runAsNonRoot refuses an image that runs as root, as the e2e busybox does; preflight
    # says so when this is unset on a cluster without SCCs.
    run_as_user: int | None = Field(None, ge=1)


# What Jobs run on a cluster the suites did not build, unless the profile names its own
# workload: the Kubernetes e2e tests' public busybox (registry.k8s.io, no pull limits), which
# holds its GPU for the job's run time with `sleep` and exits, as any UID.
EXISTING_WORKLOAD = {
    "image": "registry.k8s.io/e2e-test-images/busybox:1.37.0-1",
    "pull_policy": "IfNotPresent",
    "sleep": True,
    "restricted": True,
}


class Conformance(_Strict):
    """What ``--aic-report`` writes besides the checks' statuses (docs/conformance.md)."""

    # The checklist's metadata fields (platformName, platformVersion, vendorName, websiteUrl,
    # documentationUrl, productLogoUrl, description, contactEmailAddress, k8sConformanceUrl
    # ...); left as the template's "[...]" placeholders when unset. kubernetesVersion is
    # always the cluster's.
    metadata: dict[str, str] = Field(default_factory=dict)


class Profile(_Strict):
    name: str
    description: str = ""
    # "kind" is not accepted until a provider for it exists.
    provider: Literal["local", "existing"]
    reach: Reach = Field(default_factory=Reach)
    capabilities: Capabilities = Field(default_factory=Capabilities)
    # Paper seconds per wall-clock second: 60 turns a paper minute into one second.
    time_compression: float = Field(1.0, gt=0)
    slo: Slo = Field(default_factory=Slo)
    regression: Regression = Field(default_factory=Regression)
    whisper: WhisperJobs = Field(default_factory=WhisperJobs)
    kueue_suite: KueueSuite = Field(default_factory=KueueSuite)
    das_suite: DasSuite = Field(default_factory=DasSuite)
    gaie_suite: GaieSuite = Field(default_factory=GaieSuite)
    local: LocalTier = Field(default_factory=LocalTier)
    workload: WorkloadPods = Field(default_factory=WorkloadPods)
    conformance: Conformance = Field(default_factory=Conformance)
    # slo field -> the trials its threshold was calibrated on (tiers whose control plane
    # shares cores with the harness do not meet the paper's absolute values).
    calibration: dict[str, Calibration] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _existing_workload(cls, data: Any) -> Any:
        # pause never exits: on real nodes a Job must run a command that ends.
        if isinstance(data, dict) and data.get("provider") == "existing":
            data = {**data, "workload": {**EXISTING_WORKLOAD, **(data.get("workload") or {})}}
        return data

    @model_validator(mode="after")
    def _calibrated_fields_exist(self) -> Profile:
        unknown = sorted(set(self.calibration) - set(Slo.model_fields))
        if unknown:
            raise ValueError(
                f"calibration names {', '.join(map(printable, unknown))}, which are not slo fields "
                f"(slo fields: {', '.join(Slo.model_fields)})"
            )
        return self

    @model_validator(mode="after")
    def _mig_needs_gpus(self) -> Profile:
        if self.capabilities.mig.enabled and self.capabilities.gpu_nodes.count == 0:
            raise ValueError("capabilities.mig.enabled needs capabilities.gpu_nodes.count > 0")
        return self

    @model_validator(mode="after")
    def _one_real_node(self) -> Profile:
        if self.local.gpu_nodes == "real":
            if self.provider != "local":
                raise ValueError("local.gpu_nodes: real needs provider: local")
            if self.capabilities.gpu_nodes.count != 1:
                raise ValueError(
                    "local.gpu_nodes: real runs one real kubelet per machine (its device-plugin "
                    "socket path is fixed), so capabilities.gpu_nodes.count must be 1, not "
                    f"{self.capabilities.gpu_nodes.count}"
                )
        return self

    @property
    def real_nodes(self) -> bool:
        """The GPU node is a real kubelet: pods really start (image, command, exit)."""
        return self.provider == "local" and self.local.gpu_nodes == "real"

    @property
    def total_gpus(self) -> int:
        g = self.capabilities.gpu_nodes
        return g.count * g.gpus_per_node

    @property
    def simulated(self) -> bool:
        """Pods run on KWOK nodes for the time written on them (no containers run)."""
        return self.provider == "local"

    def lacks(self, requirement: str) -> bool:
        return not self.capabilities.has(requirement)


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def parse_profile(data: object, source: str) -> Profile:
    """Validate already-loaded YAML data; ``source`` names the file in errors."""
    return validate(
        data,
        Profile,
        f"Profile {source}",
        ProfileError,
        expects="with at least 'name' and 'provider'",
    )


def load_profile(spec: str) -> Profile:
    """Load a built-in profile by name (``local``, ``rosa``) or a profile file by path."""
    path = Path(spec)
    if spec in builtin_names():
        path = BUILTIN_DIR / f"{spec}.yaml"
    elif not (path.suffix in (".yaml", ".yml") or exists(path)):
        raise ProfileError(
            f"--cluster={spec}: no built-in profile of that name (known: "
            f"{', '.join(builtin_names())}) and no such profile file."
        )
    try:
        data = _with_base(read_yaml(path, "Profile", ProfileError), path, seen=(path,))
    except ProfileError as exc:
        raise ProfileError(f"--cluster={spec}: {exc}") from None
    return with_env_overrides(parse_profile(data, str(path)))


def merged(base: object, over: object) -> object:
    """``over`` on top of ``base``: mappings merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in over.items()}}
    return over


def _with_base(data: object, path: Path, seen: tuple[Path, ...]) -> object:
    """``extends: NAME|PATH`` takes every field of that profile and overrides what this file
    sets (a built-in name, or a path relative to this file)."""
    if not isinstance(data, dict) or "extends" not in data:
        return data
    data = dict(data)
    parent = str(data.pop("extends"))
    base = BUILTIN_DIR / f"{parent}.yaml" if parent in builtin_names() else path.parent / parent
    if base in seen or not exists(base):
        why = "extends itself through a chain" if base in seen else "no such profile"
        raise ProfileError(
            f"Profile {path}: field 'extends': '{printable(parent)}' {why} (built-in profiles: "
            f"{', '.join(builtin_names())})."
        )
    return merged(_with_base(read_yaml(base, "Profile", ProfileError), base, (*seen, base)), data)


def with_env_overrides(profile: Profile) -> Profile:
    """$K8SAI_LOCAL_CLUSTER names the local cluster, so parallel jobs on one machine (CI
    shards, a developer's kept cluster beside a test run) do not share one."""
    name = os.environ.get(LOCAL_CLUSTER_ENV)
    if not name:
        return profile
    try:
        local = LocalTier.model_validate({**profile.local.model_dump(), "cluster_name": name})
    except ValidationError as err:
        raise ProfileError(
            f"${LOCAL_CLUSTER_ENV}={name!r} is invalid: {invalid_fields(err)}."
        ) from None
    return profile.model_copy(update={"local": local})
