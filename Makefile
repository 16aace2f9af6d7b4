# Test harness for the dockerflow.flow collection. `make test` is what CI runs (.ci/run).
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.ONESHELL:
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
VENV_STAMP := $(VENV)/.requirements.stamp
COLLECTIONS := $(CURDIR)/.build/collections
COLLECTION_LINK := .build/collections/ansible_collections/dockerflow/flow
ANSIBLE_PACKAGE := ansible==12.3.0
CRYPTO_STAMP := .build/collections/ansible_collections/community/crypto/MANIFEST.json
HARNESS := tests/harness
CONSUL_HTTP_PORT ?= 8500
PYTEST_ARGS ?=

export CONSUL_HTTP_PORT
TEST_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) PYTHONPATH=$(COLLECTIONS)
UNIT := $(TEST_ENV) $(VENV)/bin/python -m pytest tests/unit -q $(PYTEST_ARGS)
# -n 2, one worker a core: the stage is CPU-bound (an ansible-playbook run costs about 2 CPU-s; the test processes
# alone used 2,437 CPU-s for the 239 tests, the engine and containers besides, and the CPU was never idle at -n 4).
# More workers only raised the load: -n 4 took 3,049 s beside other sessions, and a switch was refused because its
# starved targets failed their checks (2026-12-05).
# --dist loadgroup: the tests of one xdist_group mark (test_acme.py's, on shared Consul keys) share a worker.
INTEGRATION := $(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	DOCKERFLOW_TEST_CONSUL=http://127.0.0.1:$(CONSUL_HTTP_PORT) DOCKERFLOW_TEST_CONSUL_DNS=127.0.0.1:8600 \
	$(VENV)/bin/python -m pytest tests/integration -q -p no:cacheprovider -n 2 --dist loadgroup --durations=15 $(PYTEST_ARGS)

.PHONY: help venv collection-path engine images images-bench consul consul-stop clean-containers \
        unit integration awx quality faults test-cluster coverage test demo benchmarks options clean

help:
	@echo "targets: test (everything, as CI), venv, collection-path, engine, images, consul,"
	echo "         consul-stop, clean-containers, unit, integration, awx, quality, faults, test-cluster,"
	echo "         coverage, demo, benchmarks, images-bench, options, clean"

venv: $(VENV_STAMP)

# Re-installs only when tests/requirements.txt changes.
$(VENV_STAMP): tests/requirements.txt
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $@

# ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) finds the collection as dockerflow.flow, and community.crypto
# (role acme's ACME client) beside it.
collection-path: $(CRYPTO_STAMP)
	@mkdir -p $(dir $(COLLECTION_LINK))
	ln -sfn ../../../.. $(COLLECTION_LINK)

# community.crypto ships in PyPI's `ansible` package (not in ansible-core). Only its tree is unpacked from the
# wheel of the release built on ansible-core 2.19, so the venv (and its ansible-core) stays as it is.
$(CRYPTO_STAMP): | venv
	@mkdir -p .cache/wheels $(COLLECTIONS)
	$(VENV)/bin/python -m pip download -q --disable-pip-version-check --no-deps -d .cache/wheels $(ANSIBLE_PACKAGE)
	$(VENV)/bin/python tests/harness/unpack_collection.py .cache/wheels/$(subst ==,-,$(ANSIBLE_PACKAGE))-py3-none-any.whl \
	  community/crypto $(COLLECTIONS)

engine:
	@$(HARNESS)/ensure-docker.sh

images:
	@$(HARNESS)/build-images.sh

# Images only the benchmarks use (proxy_overhead.py's nginx peer); not part of `make test` or CI.
images-bench:
	@$(HARNESS)/build-images.sh --bench

consul:
	@$(HARNESS)/consul.sh start

consul-stop:
	@$(HARNESS)/consul.sh stop

clean-containers:
	@$(HARNESS)/cleanup.sh

unit: venv collection-path
	@$(UNIT)

# Writes the copies of the option table (plugins/module_utils/options.py) that Ansible reads literally:
# the doc fragment, the flow role's argument specs, vars and defaults, playbooks/flow.yml's seed names.
# tests/unit/plugins/module_utils/test_options.py fails when one of them is not what the table gives.
options: venv collection-path
	@$(TEST_ENV) $(VENV)/bin/python tests/support/option_docs.py --write

# Needs `make engine images consul` first (`make test` does all of it).
integration: venv collection-path
	@$(INTEGRATION)

# The playbooks as AWX job templates run them (tests/awx/README.md): ansible-runner with a private data
# directory a job, the collection installed from its tarball by a project sync; then the execution
# environment (tests/awx/build-ee.sh builds it once). Needs `make engine images consul` first.
AWX := $(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	DOCKERFLOW_TEST_CONSUL=http://127.0.0.1:$(CONSUL_HTTP_PORT) DOCKERFLOW_TEST_CONSUL_DNS=127.0.0.1:8600 \
	$(VENV)/bin/python -m pytest tests/awx -q -p no:cacheprovider $(PYTEST_ARGS)
awx: venv collection-path
	@$(AWX)

# ansible-test sanity, ansible-lint (production), ruff, unit coverage of module_utils and the
# registrator daemon, changelog lint.
quality: venv collection-path
	@$(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH $(HARNESS)/quality.sh

# Fault tests (tests/faults/README.md): each keeps a bounded load on a proxy and counts failures.
# Run serially, after the integration tests: some restart engines and Consul.
FAULTS := $(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	DOCKERFLOW_TEST_CONSUL=http://127.0.0.1:$(CONSUL_HTTP_PORT) DOCKERFLOW_TEST_CONSUL_DNS=127.0.0.1:8600 \
	$(VENV)/bin/python -m pytest tests/faults -q -p no:cacheprovider -s --durations=8 $(PYTEST_ARGS)
faults: venv collection-path
	@$(FAULTS)

# A Swarm-mode cluster of Docker-in-Docker nodes on one machine (tests/cluster/README.md):
# brings it up, runs tests/cluster, tears it down.
test-cluster: venv collection-path engine images
	@$(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH tests/cluster/run.sh

# module_utils and the registrator daemon covered by the stages the last `make test` measured
# (tests/harness/coverage.sh).
coverage: venv
	@$(HARNESS)/coverage.sh report

# Set-up stages, then unit, integration, awx, quality, faults and cluster tests (each runs even when
# an earlier one fails), then coverage of module_utils and the registrator daemon over all of them
# (tests/harness/coverage.sh); clean-containers and consul-stop always run. quality reports the unit stage's
# coverage instead of running the unit tests again (QUALITY_REUSE_UNIT_COVERAGE, tests/harness/quality.sh). Fails with the first
# failing stage's status (make itself then exits 2; the summary line shows the real status).
test:
	@status=0
	t_all=$$EPOCHREALTIME
	since() { awk -v a=$$1 -v b=$$EPOCHREALTIME 'BEGIN { printf "%.1fs", b - a }'; }
	stage() { # NAME CMD...
	    local name=$$1 t0=$$EPOCHREALTIME rc=0
	    shift
	    echo "==> $$name"
	    "$$@" || rc=$$?
	    if [ $$rc = 0 ]; then
	        echo "==> $$name: ok ($$(since $$t0))"
	    else
	        echo "==> $$name: FAILED, exit $$rc ($$(since $$t0))"
	    fi
	    return $$rc
	}
	finish() {
	    trap - INT TERM
	    stage clean-containers $(MAKE) clean-containers || true
	    stage consul-stop $(MAKE) consul-stop || true
	    echo "==> make test: exit $$status ($$(since $$t_all))"
	    exit $$status
	}
	trap 'status=130; finish' INT TERM
	for s in venv collection-path engine images consul; do
	    stage $$s $(MAKE) $$s || { status=$$?; finish; }
	done
	measured() { $(HARNESS)/coverage.sh measure "$$@"; } # module_utils and registrator coverage of the stage
	$(HARNESS)/coverage.sh reset
	stage unit measured unit env $(UNIT) || status=$$?
	for s in "integration measured integration env $(INTEGRATION)" "awx measured awx env $(AWX)" \
	         "quality env QUALITY_REUSE_UNIT_COVERAGE=1 $(MAKE) quality" \
	         "faults measured faults $(MAKE) faults" \
	         "test-cluster measured --local-runs-only cluster $(MAKE) test-cluster" \
	         "coverage $(HARNESS)/coverage.sh report"; do
	    rc=0
	    stage $$s || rc=$$?
	    [ $$status != 0 ] || status=$$rc
	done
	finish

# playbooks/demo.yml on the local engine: setup.yml (Consul on 8510, Registrator, the proxy on
# 127.0.0.1:$(DEMO_PROXY_PORT), all named dockerflow-demo-*), then the blue-green walkthrough of
# examples/books-ms under load, and a table. Safe to run again; beside `make test` too.
# DEMO_ARGS goes to ansible-playbook, e.g. DEMO_ARGS="-e consul_image=hashicorp/consul:1.20".
DEMO_PROXY_PORT ?= 18080
DEMO_ARGS ?=
demo: venv collection-path engine images
	@t0=$$EPOCHREALTIME
	$(TEST_ENV) PATH=$(CURDIR)/$(VENV)/bin:$$PATH ANSIBLE_LOCALHOST_WARNING=0 ANSIBLE_INVENTORY_UNPARSED_WARNING=0 \
	  $(VENV)/bin/ansible-playbook playbooks/demo.yml -e '{"proxy_http_port": $(DEMO_PROXY_PORT)}' $(DEMO_ARGS)
	echo "==> make demo: ok ($$(awk -v a=$$t0 -v b=$$EPOCHREALTIME 'BEGIN { printf "%.1fs", b - a }'))"

# zero_downtime, proxy_overhead, switch_latency, canary in order (each under ~3 minutes on 2 cores;
# see benchmarks/README.md); all four run, the first failing status is make's.
# BENCH_ARGS goes to each script, e.g. BENCH_ARGS="--proxy-ports 28180,28181,28182,28183".
BENCH_ARGS ?=
BENCH_ENV := ANSIBLE_COLLECTIONS_PATH=$(COLLECTIONS) PATH=$(CURDIR)/$(VENV)/bin:$$PATH \
	DOCKERFLOW_BENCH_CONSUL=http://127.0.0.1:$(CONSUL_HTTP_PORT)
benchmarks: venv collection-path engine images images-bench consul
	@status=0
	for bench in zero_downtime https_zero_downtime proxy_overhead switch_latency canary proxy_replace; do
	    echo "==> benchmarks/$$bench.py"
	    rc=0
	    env $(BENCH_ENV) $(VENV)/bin/python benchmarks/$$bench.py $(BENCH_ARGS) || rc=$$?
	    echo "==> benchmarks/$$bench.py: exit $$rc"
	    [ $$status != 0 ] || status=$$rc
	done
	exit $$status

clean:
	rm -rf $(VENV) .build .cache
