# pytest-k8sai: one command to run the suites, one to run the PR tier (what CI runs).
PYTHON ?= python3
PYTEST_ARGS ?=
# The scale scenario `make scale` runs (docs/scale.md).
SCENARIO ?= scale-small
# Where `make installed` puts the wheel's virtualenv and runs from (outside the checkout).
INSTALLED_DIR ?= /tmp/k8sai-installed
# The real DAS's checks on the real node (local-nodes): its packing of the full trace, the
# webhook rewrite, the AllocationClaim lifecycle and slice provisioning latency.
REAL_DAS_CHECKS ?= $(addprefix suites/das/test_gpu_slicing.py::,test_real_das_packs_the_full_trace \
	test_das_webhook_rewrites_slice_requests test_das_claims_follow_lifecycle_and_are_released \
	test_das_slice_provisioning_latency)

.PHONY: install build run unit test reliability nightly installed nodes nodes-existing kueue das gaie scale bench lint up down status calibrate mutants

install:            ## install the package with all extras and the dev tools (editable)
	$(PYTHON) -m pip install -q -e '.[dev,inference,nodes]'

build: install      ## build (or find cached) etcd, kube-*, kwok, kueue, the sim, the EPP, the real node's kubelet and images, the real DAS
	@# The real node's parts and the real DAS build beside the control plane (cold: ~6 min less).
	k8sai local --cluster local-nodes build & nodes=$$!; \
	k8sai local build --inference; main=$$?; \
	wait $$nodes; nodes_rc=$$?; \
	test $$main -eq 0 -a $$nodes_rc -eq 0

run: build          ## the main job: the gating suite against the local cluster
	$(PYTHON) -m pytest --cluster=local suites/smoke $(PYTEST_ARGS)

unit:               ## the pure unit tests: no Go, no cluster, seconds
	$(PYTHON) -m pytest -q -p no:cacheprovider tests/unit $(PYTEST_ARGS)

test: build lint    ## the PR tier: the project's tests and the suites (CI), then on a real node the smoke suite, the real DAS's checks and the AI Conformance checks (checklist filled)
	$(PYTHON) -m pytest --cluster=local -m pr tests suites $(PYTEST_ARGS)
	$(PYTHON) -m pytest --cluster=local-nodes -m "pr or conformance" suites/smoke suites/conformance \
		$(REAL_DAS_CHECKS) --aic-report k8sai-results/local-nodes/aic-PRODUCT.yaml \
		--results-dir k8sai-results/local-nodes $(PYTEST_ARGS)

reliability: build  ## faults mid-run (kube-apiserver, Kueue, etcd, the EPP, a replica), interrupts, two runs at once, timeouts: tests/reliability, ~12 min
	$(PYTHON) -m pytest --cluster=local -m reliability tests/reliability \
		--results-dir k8sai-results/reliability $(PYTEST_ARGS)

installed: build    ## the built wheel in a fresh virtualenv (no extras), PR tier run from outside the checkout
	bash .ci/installed-check "$(INSTALLED_DIR)"

nightly: build      ## everything, all five Kueue setups included (the PR tier runs a subset)
	$(PYTHON) -m pytest --cluster=local suites $(PYTEST_ARGS)

calibrate: build    ## 5 trials of the load-sensitive PR-tier checks -> proposed local thresholds (prints YAML)
	k8sai calibrate --trials 5 --keys kueue_admission_attempt_p99_ms gaie_epp_scheduling_p99_ms \
		-- -m pr suites/smoke suites/kueue suites/gaie -k "not routing and not routes"

mutants: build      ## every seeded regression against the PR tier, once each (hours): the mutation table
	k8sai mutants run

nodes: build        ## the smoke, Kueue and GPU slicing suites with a real kubelet + containerd GPU node and the real DAS (~1 h)
	$(PYTHON) -m pytest --cluster=local-nodes suites/smoke suites/kueue suites/das $(PYTEST_ARGS)

nodes-existing: build  ## the real-node tier attached as provider: existing through the RBAC role only: preflight, then the smoke, Kueue and GPU slicing PR checks (~45 min)
	$(PYTHON) -m pytest --cluster=local-nodes -s \
		tests/local/test_existing_rbac.py::test_suites_run_as_existing_on_the_real_node \
		--results-dir k8sai-results/nodes-existing $(PYTEST_ARGS)

kueue: build        ## the Kueue suite (paper Tables 3 and 4) on the local cluster; ~7 min
	$(PYTHON) -m pytest --cluster=local suites/kueue $(PYTEST_ARGS)

scale: build        ## Kueue at scale, one scenario: make scale SCENARIO=scale-small|scale-5k|scale-1k|scale-kueue-perf|FILE.yaml (docs/scale.md)
	K8SAI_SCALE_SCENARIO=$(SCENARIO) $(PYTHON) -m pytest --cluster=local -m scale suites/scale \
		--results-dir k8sai-results/scale $(PYTEST_ARGS)

das: build          ## the GPU slicing suite (paper Tables 5 and 6, Kueue + MIG) on the local cluster
	$(PYTHON) -m pytest --cluster=local suites/das $(PYTEST_ARGS)

gaie: build         ## the inference suite (paper Fig. 5-7); builds the sim and the EPP on first use
	$(PYTHON) -m pytest --cluster=local suites/gaie $(PYTEST_ARGS)

bench: build        ## the job latency recorder's benchmarks: 10,000 Jobs fed directly and live
	K8SAI_COLLECTOR_JOBS=10000 $(PYTHON) -m pytest --cluster=local -s --benchmark-only \
		tests/bench/test_joblatency_bench.py tests/bench/test_joblatency_live_bench.py $(PYTEST_ARGS)

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

up: build           ## start the local cluster and leave it running (reused by test runs)
	k8sai local up

down:
	k8sai local down

status:
	k8sai local status
