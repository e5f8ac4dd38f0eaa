# Two commands set up a fresh machine: `make demo` (the daemon on its embedded default)
# and `make test` (the whole test suite). Everything else is a convenience.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned in the `host` extra; the CPU build of 2.13.0 is what this project is tested on.
PIP_FLAGS ?= --disable-pip-version-check -q
# constraints.txt pins the whole tested set (see its header); `make ... CONSTRAINTS=` resolves afresh.
CONSTRAINTS ?= constraints.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS))

.PHONY: demo test lint typecheck venv-hub venv-host bench demo-bundle hr-demo-bundle fuzz mutate clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) $(PIP_C) --upgrade pip

# The hub's install: numpy, onnxruntime, a TFLite interpreter, pyserial, bleak. No torch.
$(VENV)/.hub: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install $(PIP_FLAGS) $(PIP_C) -e .
	touch $@

# Host + dev: training, export, reports and the test tools; fleet: Flower and its simulation
# runtime (Ray), which edge/fleet's tests run.
$(VENV)/.host: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install $(PIP_FLAGS) $(PIP_C) -e '.[host,dev,fleet]'
	touch $@

venv-hub: $(VENV)/.hub
venv-host: $(VENV)/.host

# 45 s of wall time at 60x: 45 minutes of a held-out synthetic wearer, calibration included.
demo: $(VENV)/.hub
	$(BIN)/edge-daemon --device sim --duration 45 --speed 60

# HYPOTHESIS_PROFILE=ci: the property tests' CI depth (tests/strategies.py). Two runs: the
# whole suite but the hub packages' unit tests, then those unit tests under branch coverage
# of core, edge and firmware_bridge ([tool.coverage] in pyproject.toml), printed at the end.
# The tracer doubles in-process Python time, so it watches only the tests of what it reports
# on (the daemons the e2e tests start are subprocesses it could not see anyway). `make test
# COV=` runs the hub unit tests without it.
COV ?= --cov --cov-report=term-missing:skip-covered
HUB_UNIT := tests/unit/core tests/unit/edge tests/unit/firmware_bridge
test: $(VENV)/.host
	$(BIN)/ruff check .
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest $(PYTEST_ARGS) $(addprefix --ignore=,$(HUB_UNIT))
	HYPOTHESIS_PROFILE=ci $(BIN)/python -m pytest $(COV) $(PYTEST_ARGS) $(HUB_UNIT)

lint: $(VENV)/.host
	$(BIN)/ruff check .
	$(BIN)/mypy

# The demo bundles are signed with the demo key, public on purpose (export/demo_signing_key.pem):
# a hub trusts it by default so `make demo` runs with signature checks on; a field hub turns
# it off (trust_demo_key = false). Sign a bundle dir by hand: edge-export sign DIR --key $(DEMO_KEY)
DEMO_KEY := export/demo_signing_key.pem

# Rebuild the demo bundle shipped in edge/demo_bundle from synthetic data (host install). Three
# seeds: the shipped variant is the best on the mean over seeds (the wrist run: about 72 CPU-minutes).
demo-bundle: $(VENV)/.host
	$(BIN)/edge-train synth --subjects 10 --out runs/demo-data --seed 7
	$(BIN)/edge-train fit --dataset wesad --data runs/demo-data --out runs/demo-run --seeds 3 --seed 7
	rm -rf edge/demo_bundle
	$(BIN)/edge-export runs/demo-run --out edge/demo_bundle --sign $(DEMO_KEY)
	cp runs/demo-run/demo_recording.npz edge/demo_bundle/

# The heart-rate (RR) bundle shipped in edge/hr_demo_bundle, from the same synthetic data:
# RR intervals from the chest ECG, the HR student's profile (train/configs/hr.toml).
hr-demo-bundle: $(VENV)/.host
	[ -d runs/demo-data ] || $(BIN)/edge-train synth --subjects 10 --out runs/demo-data --seed 7
	$(BIN)/edge-train fit --dataset wesad --data runs/demo-data --out runs/hr-demo-run --seeds 3 \
		--seed 7 --config train/configs/hr.toml
	rm -rf edge/hr_demo_bundle
	$(BIN)/edge-export runs/hr-demo-run --out edge/hr_demo_bundle --sign $(DEMO_KEY)
	cp runs/hr-demo-run/demo_recording.npz edge/hr_demo_bundle/

# Results go to benchmarks/results/<arch>-<cpu>-<N>cpu/; needs runs/demo-run from `make demo-bundle`
# for the PyTorch teacher baseline (without it that row is reported as not measured).
bench: $(VENV)/.host
	$(BIN)/edge-bench --bundle edge/demo_bundle $$([ -d runs/demo-run ] && echo --run runs/demo-run)
	$(BIN)/edge-bench index

# Coverage-guided fuzzing of every parser (tests/fuzz/README.md): FUZZ_SECONDS per harness,
# or FUZZ_RUNS inputs each; FUZZ_TARGETS="frames config" for some. Prints the inputs tried.
FUZZ_SECONDS ?= 60
fuzz: $(VENV)/.hub
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install $(PIP_FLAGS) $(PIP_C) -e '.[fuzz]'
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) PY=$(BIN)/python tests/fuzz/run.sh $(FUZZ_TARGETS)

# Mutation testing of the core (benchmarks/mutation.py): each module against its own tests
# in a private copy, at nice 15; MUTATE_MODULES="framing decisions" for some. Hours on 2 cores.
MUTATE_MODULES ?=
mutate: $(VENV)/.host
	$(BIN)/python -c "import mutmut" 2>/dev/null || $(BIN)/pip install $(PIP_FLAGS) $(PIP_C) -e '.[mutation]'
	$(BIN)/edge-bench mutation $(if $(MUTATE_MODULES),--modules $(shell echo $(MUTATE_MODULES) | tr ' ' ','))

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .hypothesis
