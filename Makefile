# Two commands for a fresh machine: `make demo` and `make test`. Everything else is a bench-* target.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Real datasets are read through one setting; CI points it at ../shared/datasets.
export POCKETFIT_DATA ?= $(abspath ../shared/datasets)
# Two cores: keep XLA and BLAS from oversubscribing them.
export TF_CPP_MIN_LOG_LEVEL ?= 2

RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint typecheck pytest install install-dev bench-pretrain bench-data bench-devices bench-compression bench-structured bench-embed bench-export bench-enroll bench-reliability bench-offload bench-curves bench-tree notebooks clean help

help:
	@echo "make demo            install into .venv if needed, run the pipeline on the embedded default"
	@echo "make test            install dev extras if needed, then ruff, mypy, pytest"
	@echo "make bench-pretrain  both LeNets on full MNIST, vs a bare loop and Keras, data parallel -> notebooks/results/pretrain_mnist.json"
	@echo "make bench-data      synthetic fingerprints vs FVC -> notebooks/results/data.json, gallery.png"
	@echo "make bench-devices   planner and host latency vs LiteRT measurements -> notebooks/results/devices.json"
	@echo "make bench-compression  Deep Compression of both LeNets -> notebooks/results/compression.json, bundles/"
	@echo "make bench-structured  structured pruning of LeNet-5 and the fingerprint and face EmbedNets (particle filters vs L1), narrow LiteRT speedup -> notebooks/results/structured.json"
	@echo "make bench-enroll    device enrollment vs imprinting vs official TFLite -> notebooks/results/enrollment.json"
	@echo "make bench-export    LiteRT artifacts of the backbones -> notebooks/results/export.json, artifacts/"
	@echo "make bench-reliability  fuzzing of every parser of outside bytes, crash injection into every writer, a killed and resumed pretraining run -> notebooks/results/reliability.json"
	@echo "make bench-offload   the offload service on loopback: load, faults, auth, ORL benefit -> notebooks/results/offload.json"
	@echo "make bench-embed     face + fingerprint EmbedNets, protocol, ablation -> notebooks/results/embedding.json, models/"
	@echo "make bench-curves    learning curves, SIFT/LBP/HOG/GIST + linear vs CNN, MNIST and ORL -> notebooks/results/curves.json, curves.png"
	@echo "make bench-tree      conditional LeNet-5 (one branch runs) vs LeNet-5 on MNIST, gallery tree vs flat 1:N on LFW -> notebooks/results/tree.json"
	@echo "make notebooks       run every notebook in full -> notebooks/rendered/ (git-ignored)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,notebooks,serve]'
	@touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)
install-dev: $(DEV_STAMP)

# The whole pipeline on synthetic fingerprints from the shipped pretrained backbone: compress ->
# export -> enroll + verify on the device (1,008 impostor attempts); prints a summary, writes
# runs/demo/demo.png and summary.json. `make demo DEMO_ARGS=--pretrain` trains a small backbone
# from scratch first; `DEMO_ARGS=--smoke` shrinks that path to check the plumbing (a test runs it).
DEMO_ARGS ?=
demo: $(RUN_STAMP)
	rm -rf runs/demo
	$(BIN)/python notebooks/demo.py --workdir runs/demo $(DEMO_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

# CI has 2 cores: two pytest workers, whole files per worker (module fixtures built once), the
# slowest files first (tests/conftest.py SLOW_FILES, collection order kept). PYTEST_WORKERS=0
# runs in one process (for -x / pdb). The 15 slowest tests are listed at the end.
PYTEST_WORKERS ?= 2
pytest: $(DEV_STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

test: lint typecheck pytest

bench-pretrain: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_pretrain.py

bench-data: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_data.py

bench-devices: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_devices.py

bench-compression: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_compression.py

bench-structured: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_structured.py

bench-export: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_export.py

bench-reliability: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_reliability.py

bench-embed: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_embed.py

bench-enroll: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_enroll.py

bench-offload: $(DEV_STAMP)
	$(BIN)/python notebooks/bench/bench_offload.py

bench-curves: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_curves.py

bench-tree: $(RUN_STAMP)
	$(BIN)/python notebooks/bench/bench_tree.py

# Every notebook top to bottom at full size; the executed copies (outputs included) go to
# notebooks/rendered/, git-ignored: they are regenerated from the committed notebooks and results.
NOTEBOOK_TIMEOUT ?= 7200
notebooks: $(DEV_STAMP)
	mkdir -p notebooks/rendered
	set -e; for nb in notebooks/*.ipynb; do \
	  echo "running $$nb"; \
	  $(BIN)/python -c 'import sys, nbformat; from nbclient import NotebookClient; \
	    nb = nbformat.read(sys.argv[1], as_version=4); \
	    NotebookClient(nb, timeout=int(sys.argv[3]), kernel_name="python3", \
	      resources={"metadata": {"path": "notebooks"}}).execute(); \
	    nbformat.write(nb, sys.argv[2])' "$$nb" "notebooks/rendered/$$(basename $$nb)" $(NOTEBOOK_TIMEOUT); \
	done

clean:
	rm -rf runs build *.egg-info .mypy_cache .ruff_cache .pytest_cache
