# Two commands do all set-up on a fresh Debian machine with Python 3.11:
#   make demo    the whole mesh on this machine (LOGS=/var/log/syslog to follow real files)
#   make test    the whole test suite
# Both create .venv if missing and install what they need (system packages too, when root).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
LOGS   ?=
# python3-venv: the venv. graphite-carbon, python3-whisper: tests/integration/test_graphite.py
# runs carbon-cache and reads its whisper files. nagios4-core: test_check_nagios.py runs Nagios.
# chromium, chromium-driver: the browser live tail tests (tests/integration/test_web_*.py) and
# bench/livetail.py drive /usr/bin/chromium headless through Playwright. systemd: its
# systemd-analyze verifies the units in deploy/systemd/ (tests/integration/test_deploy.py). openssl:
# the certificates of the TLS tests (test_http_auth.py, test_nginx_example.py).
APT_PACKAGES := python3-venv graphite-carbon python3-whisper nagios4-core chromium chromium-driver systemd openssl
# Syslog over the network: a real rsyslogd (tests/integration/test_syslog.py, bench/syslog_ingest.py); logger is util-linux (bsdutils)
APT_PACKAGES += rsyslog bsdutils
# systemd-journal-remote: the journal tests write real journal files with it
APT_PACKAGES += systemd-journal-remote
# gcc, python3-dev: pip install -e . builds helios/_speedups.c (setup.py; optional: without
# them Helios runs its Python twins, slower, and tests/unit/test_speedups.py skips)
APT_PACKAGES += gcc python3-dev

# The demo needs only the package itself and a venv: no test extras, no nagios,
# carbon or chromium (its own stamp, so `make demo` never installs the test set).
DEMO_APT_PACKAGES := python3-venv
DEMO_STAMP := $(VENV)/.demo-stamp

.PHONY: demo test bench soak venv sysdeps sysdeps-demo clean

# helios lands in .venv/bin, not on PATH: the demo prints its commands with
# that path, and `. .venv/bin/activate` puts it on PATH.
demo: $(DEMO_STAMP)
	$(VENV)/bin/helios demo $(LOGS)

# The linters first (ruff; mypy, strict on the pure modules: pyproject.toml),
# then the suite under coverage, subprocesses included (coverage's [run]
# patch = subprocess starts it in every Python process the tests start), and
# the coverage of helios/ printed at the end, biggest misses first.
COVERAGE_FILE := $(CURDIR)/.coverage-data/coverage
test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	@rm -rf .coverage-data && mkdir -p .coverage-data
	@status=0; COVERAGE_FILE=$(COVERAGE_FILE) $(VENV)/bin/coverage run -m pytest -q $(PYTEST_ARGS) || status=$$?; \
	COVERAGE_FILE=$(COVERAGE_FILE) $(VENV)/bin/coverage combine -q $(CURDIR)/.coverage-data >/dev/null 2>&1 || true; \
	echo "--- coverage of helios/ (the test processes and every helios process they started)"; \
	COVERAGE_FILE=$(COVERAGE_FILE) $(VENV)/bin/coverage report || true; \
	exit $$status

bench: $(STAMP)
	$(PY) bench/ingest.py

# The fault harness (tests/torture.py) over >= 100 seeds and >= 30 minutes; a failing seed prints its replay command.
soak: $(STAMP)
	PYTHONPATH=$(CURDIR) $(PY) bench/torture.py --seeds 100 --minutes 30

venv: $(STAMP)

# The venv is rebuilt when the package's metadata changes.
$(STAMP): setup.cfg setup.py pyproject.toml helios/_speedups.c | sysdeps
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	@touch $@

$(DEMO_STAMP): setup.cfg setup.py pyproject.toml helios/_speedups.c | sysdeps-demo
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	@touch $@

# Install what Debian must provide, when it is missing and we may (root).
# Quick when everything is there: one dpkg-query per package, no apt.
sysdeps: SYSDEPS = $(APT_PACKAGES)
sysdeps-demo: SYSDEPS = $(DEMO_APT_PACKAGES)
sysdeps sysdeps-demo:
	@missing=$$(for p in $(SYSDEPS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	  elif ! $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null; then \
	    echo "Python's venv module is missing: install python3-venv (as root: apt-get install python3-venv)"; exit 1; \
	  else \
	    echo "Missing Debian packages (the tests that need them will skip; with HELIOS_REQUIRE=all, fail): $$missing"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis .coverage-data .mypy_cache .ruff_cache
