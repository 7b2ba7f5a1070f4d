# Two commands matter (README): `make demo` runs the main job, `make test` runs every test.
# Environments are cached outside the clone, keyed by the files they come from, so a fresh clone
# (CI) reuses them while pyproject.toml / requirements-ha.txt are unchanged.

PYTHON ?= python3.11
CACHE ?= $(HOME)/.cache/image-to-text
BRIDGE_KEY := $(shell cat pyproject.toml tools/install_face_models.py | sha1sum | cut -c1-12)
HA_KEY := $(shell cat requirements-ha.txt | sha1sum | cut -c1-12)
BRIDGE_VENV := $(CACHE)/venv-bridge-$(BRIDGE_KEY)
HA_VENV := $(CACHE)/venv-ha-$(HA_KEY)
BPY := $(BRIDGE_VENV)/bin/python
HPY := $(HA_VENV)/bin/python
# Today's Home Assistant (2026.x) needs Python 3.13: a Debian 13 root (tools/ha_current_root.sh,
# root needed), cached like the venvs. `make test HA_CURRENT=0` leaves it out on a machine without.
HA_CURRENT ?= 1
HA_CURRENT_KEY := $(shell cat requirements-ha-current.txt tools/ha_current_root.sh | sha1sum | cut -c1-12)
HA_CURRENT_ROOT := $(CACHE)/root-ha-current-$(HA_CURRENT_KEY)
# No model hub here or in CI; `make demo HF_HUB_OFFLINE=0` lets a connected machine download.
HF_HUB_OFFLINE ?= 1
export HF_HUB_OFFLINE
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: all demo test test-bridge test-ha test-ha-current lint typecheck lint-ha typecheck-ha bench env env-ha clean system-deps

all: test

# No file prerequisites on the environments: the key in their path names the files they come from,
# so a fresh clone (whose files are all newer than the cache) reuses them.
# torch first, from the CPU wheel: a bare `torch` requirement would pull a multi-GB CUDA build.
$(BRIDGE_VENV)/.ready:
	rm -rf $(BRIDGE_VENV)
	$(PYTHON) -m venv $(BRIDGE_VENV)
	$(BPY) -m pip install -q --upgrade pip
	$(BPY) -m pip install -q torch==2.13.0
	$(BPY) -m pip install -q ".[dev]" && $(BPY) -m pip uninstall -q -y image-to-text-bridge
	# The faces engine's two model files (never the 68-point one): docs/faces.md.
	$(BPY) tools/install_face_models.py
	touch $@

# The project itself is installed editable into the cached venv from *this* clone, every time
# (a second or two), so the `image-to-text` command always runs the code in front of you.
.venv: $(BRIDGE_VENV)/.ready FORCE
	$(BPY) -m pip install -q --no-deps --no-build-isolation -e .
	ln -sfn $(BRIDGE_VENV) .venv

$(HA_VENV)/.ready:
	rm -rf $(HA_VENV)
	$(PYTHON) -m venv $(HA_VENV)
	$(HPY) -m pip install -q --upgrade pip
	$(HPY) -m pip install -q -r requirements-ha.txt
	touch $@

.venv-ha: $(HA_VENV)/.ready
	ln -sfn $(HA_VENV) .venv-ha

env: .venv
env-ha: .venv-ha

FORCE:

# What the tests still need from the system: Mosquitto (every MQTT test starts its own),
# openssl (the TLS tests make their own CA) and Chromium with its driver (the status page is
# tested in a real headless browser).  Fonts are committed under tests/support/fonts.
# As root this installs them; otherwise it stops at once with the one command to run.
system-deps:
	@missing=""; \
	command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$$missing mosquitto"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null 2>&1 || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	  else \
	    echo "make test needs$$missing from the system. Run: sudo apt-get install -y$$missing" >&2; \
	    exit 1; \
	  fi; \
	fi

demo: .venv
	.venv/bin/image-to-text demo

lint: .venv
	.venv/bin/ruff check bridge tests bench tools custom_components
	.venv/bin/ruff format --check bridge tests/bridge tests/support bench tools

typecheck: .venv
	.venv/bin/mypy bridge tests/support

test-bridge: .venv system-deps
	.venv/bin/python -m pytest -q tests/bridge

# The integration: formatted, its coverage printed, and its suite run on both cores (2024.3 here;
# 2026.x in the Debian root, where `mypy --strict` also checks it against today's HA types).
lint-ha: .venv
	.venv/bin/ruff format --check custom_components tests/integration

# No file prerequisites: the key in the path names the contents, so a fresh clone reuses the root.
$(HA_CURRENT_ROOT)/.ready:
	tools/ha_current_root.sh build $(HA_CURRENT_ROOT) requirements-ha-current.txt

typecheck-ha: $(HA_CURRENT_ROOT)/.ready
	tools/ha_current_root.sh run $(HA_CURRENT_ROOT) . sh -c 'cd /repo && /opt/ha-venv/bin/python \
	  -m mypy --strict --python-version 3.13 --follow-untyped-imports --cache-dir /tmp/mypy \
	  custom_components'

test-ha-current: typecheck-ha
	tools/ha_current_root.sh run $(HA_CURRENT_ROOT) . sh -c 'cd /repo/tests/integration && \
	  /opt/ha-venv/bin/python -m pytest -q -p no:cacheprovider -m "not e2e"'

test-ha: .venv-ha .venv lint-ha system-deps
	cd tests/integration && ../../.venv-ha/bin/python -m pytest -q -p no:cacheprovider \
	  --cov=$(CURDIR)/custom_components/image_to_text --cov-report=term-missing:skip-covered
	if [ "$(HA_CURRENT)" = 1 ]; then $(MAKE) test-ha-current; fi

test: system-deps lint typecheck test-bridge test-ha

# `make bench BENCH_DEVICE=cuda` on a machine with a GPU (and a CUDA build of torch)
BENCH_DEVICE ?= cpu
bench: .venv
	.venv/bin/python bench/caption_speed.py --device $(BENCH_DEVICE)

clean:
	rm -rf .venv .venv-ha .pytest_cache .mypy_cache .ruff_cache
