# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make demo    the whole mesh on this machine (LOGS=/var/log/syslog to follow real files)
#   make test    the whole test suite
# Both create .venv if missing and install what they need (system packages too, when root).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LOGS   ?=
APT_PACKAGES := python3-venv

.PHONY: demo test bench venv sysdeps clean

demo: $(STAMP)
	$(VENV)/bin/helios demo $(LOGS)

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/ingest.py

venv: $(STAMP)

# The venv is rebuilt when the package's metadata changes.
$(STAMP): setup.cfg pyproject.toml | sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

# Install what Debian must provide, when it is missing and we may (root).
sysdeps:
	@if ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(APT_PACKAGES); \
	  else \
	    echo "Python's venv module is missing: install $(APT_PACKAGES) (as root: apt-get install $(APT_PACKAGES))"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
