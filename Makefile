# Every target the README names. Needs only python3 (>= 3.11) and Go on the PATH; the rest installs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(PYTHON) -m uv
# The interpreter itself, not a shim in front of it (pyenv's): uv compares the path with the environment's and
# would otherwise build the environment afresh, without compiled bytecode, for every `uv run`.
export UV_PYTHON := $(shell $$(command -v python3.11 2>/dev/null || command -v $(PYTHON)) -c 'import sys; print(sys.executable)')
export UV_PYTHON_DOWNLOADS := never
RUN := $(UV) run --frozen

.PHONY: help setup system-packages node-packages crds url-index manifests build demo test test-fast test-real-node lint unit component e2e cluster-start cluster-stop cluster-status clean reliability

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

setup: ## install uv (from PyPI) and the locked Python environment
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --user uv || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode

SYSTEM_PACKAGES := ffmpeg shellcheck git redis-server
system-packages: ## Debian packages the tests use (ffmpeg, as in the worker image; shellcheck, which actionlint runs on the workflows' scripts; git's git-http-backend and redis-server for Argo CD); installed when missing
	@command -v ffmpeg >/dev/null 2>&1 && command -v shellcheck >/dev/null 2>&1 && command -v redis-server >/dev/null 2>&1 \
		&& [ -x /usr/lib/git-core/git-http-backend ] || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES) >/dev/null 2>&1 || \
		{ $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); }; }

NODE_PACKAGES := containerd runc containernetworking-plugins docker.io debootstrap iptables ipset
node-packages: ## Debian packages of the real node (containerd, runc, CNI plugins, iptables and ipset for Services and NetworkPolicy; Docker and debootstrap build the image)
	@command -v containerd >/dev/null && command -v dockerd >/dev/null && command -v debootstrap >/dev/null \
		&& command -v iptables >/dev/null && command -v ipset >/dev/null && [ -x /usr/lib/cni/bridge ] || { \
		sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$sudo apt-get install -y -qq --no-install-recommends $(NODE_PACKAGES) >/dev/null 2>&1 || \
		{ $$sudo apt-get update -qq && $$sudo apt-get install -y -qq --no-install-recommends $(NODE_PACKAGES); }; }

crds: setup ## regenerate crds/ from the pydantic models
	$(RUN) python -m gallery_operator.api.crd crds/gallerydownloads.gallery-operator.dev.yaml charts/gallery-operator/files/crd.yaml
	$(RUN) python -m gallery_operator.api.crd --subscription crds/gallerysubscriptions.gallery-operator.dev.yaml charts/gallery-operator/files/crd-subscription.yaml

url-index: setup ## regenerate the index of the engines' URL patterns (worker/url_index_*.json) after an engine upgrade
	$(RUN) python -m gallery_operator.worker.url_index_build

manifests: build ## regenerate manifests/base from the Helm chart
	$(RUN) python -m gallery_harness.manifests

build: setup ## build the pinned control-plane binaries (cached outside the clone; warm builds are skipped)
	$(RUN) python -m gallery_harness build

NODE ?= agent
demo: build ## the local demo: control plane, operator, downloads to a PVC and to S3 (ARGS=--keep keeps it running; NODE=kubelet)
	$(if $(filter kubelet,$(NODE)),@$(MAKE) --no-print-directory node-packages)
	$(RUN) python -m gallery_harness.demo --node $(NODE) $(ARGS)

test: build system-packages node-packages ## everything CI runs: lint, type checks, unit and e2e tests, the real-node tier
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports --no-logo
	"$$($(RUN) python -m gallery_harness.build actionlint)/actionlint"
	"$$($(RUN) python -m gallery_harness.build helm)/helm" lint --strict charts/gallery-operator
	"$$($(RUN) python -m gallery_harness.build helm)/helm" lint --strict charts/gallery-operator --set metrics.grafanaDashboard.enabled=true,metrics.prometheusRule.enabled=true,metrics.serviceMonitor.enabled=true
	$(RUN) pytest
	$(MAKE) --no-print-directory test-real-node

FAST_WORKERS ?= 4
# compileall: the project's own bytecode, once; with PYTHONDONTWRITEBYTECODE set, every worker process the tests
# start would compile it again (about 40 ms of CPU each; uv sync compiles site-packages only).
test-fast: setup system-packages ## the unit and component tiers in FAST_WORKERS processes: no control plane, no Go (versitygw from the cache)
	$(RUN) python -m gallery_harness.build s3
	$(RUN) python -m compileall -q operator harness tests
	$(RUN) pytest -m "unit or component" -n $(FAST_WORKERS) tests/unit tests/component

test-real-node: build system-packages node-packages ## the project's image on a real kubelet: worker pod e2e, the lifecycle tests and a Flux sync (root)
	GALLERY_E2E_NODE=kubelet $(RUN) pytest tests/e2e/realnode tests/e2e/test_operator.py tests/e2e/test_flux.py

lint: setup ## ruff, mypy and the import contracts (pyproject.toml's [tool.importlinter])
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) lint-imports --no-logo

unit: setup ## the fast unit tests
	$(RUN) pytest tests/unit

component: setup system-packages ## the component tier: the worker with real engines, ffmpeg, the fixture site and S3, no control plane
	$(RUN) python -m gallery_harness.build s3
	$(RUN) pytest tests/component

e2e: build system-packages ## the e2e tests (local control plane, or the cluster named by KUBECONFIG)
	$(RUN) pytest tests/e2e

SOAK_MINUTES ?= 120
reliability: build system-packages reliability-failover ## the long fault and load suite, not in `make test` (docs/reliability.md; SOAK_MINUTES=120)
	GALLERY_FAULTS_EXAMPLES=400 $(RUN) pytest tests/e2e/test_faults_bad_input.py tests/e2e/test_faults_bad_reports.py
	$(RUN) python -m bench.reliability_load --count 1000 --cap 20
	$(RUN) python -m bench.reliability_api --outage 20 --rounds 3
	$(RUN) python -m bench.reliability_api --outage 0 --rounds 3
	$(RUN) python -m bench.reliability_restart --rounds 3 --workers 20
	$(RUN) python -m bench.reliability_soak --minutes $(SOAK_MINUTES)

cluster-start: build ## a local control plane in the background; prints how to use it with kubectl (NODE=kubelet: a real node)
	$(if $(filter kubelet,$(NODE)),@$(MAKE) --no-print-directory node-packages)
	$(RUN) python -m gallery_harness start --node $(NODE)

cluster-stop: ## stop the background control plane
	$(RUN) python -m gallery_harness stop

cluster-status: ## is the background control plane running?
	$(RUN) python -m gallery_harness status

clean: ## remove local state (not the binary cache in ~/.cache/gallery-operator)
	rm -rf .cluster .pytest_cache .mypy_cache .ruff_cache

# Reliability figures (docs/reliability.md); `reliability` gathers every piece (other pieces add themselves the same way).
.PHONY: reliability reliability-failover
reliability-failover: build ## two replicas, the leader SIGKILLed 10x during 200 downloads, 5 graceful stops (docs/reliability.md, "Failover")
	$(RUN) python -m bench.failover --count 200 --kills 10 --graceful 5
