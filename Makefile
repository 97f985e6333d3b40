# Two entry points: `make demo` runs the daily e-invoicing DAG on real Airflow against the bundled
# ClearTax emulator; `make test` runs the test suite. Both build their environment on first use.

PYTHON ?= python3
VENV ?= .venv
AIRFLOW_VERSION ?= 3.3.2
UV = $(PYTHON) -m uv
PY = $(VENV)/bin/python
STAMP = $(VENV)/.installed-$(AIRFLOW_VERSION)

.PHONY: venv test test-fast demo demo-clean emulator benchmarks reliability clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(PY) "apache-airflow==$(AIRFLOW_VERSION)" -e ".[test,benchmarks]"
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# DEMO_ARGS=--keep leaves Airflow (UI included) and the emulator up until Ctrl-C.
demo: $(STAMP)
	$(PY) -m scripts.demo $(DEMO_ARGS)

demo-clean:
	rm -rf .demo

# Everything but the tests that start real Airflow components.
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

emulator: $(STAMP)
	$(VENV)/bin/cleartax-emulator --port 8080

# Every reliability proof of docs/reliability.md at full size (R2 and R3 send 1,000 invoices each;
# `make test` runs them with fewer).
reliability: $(STAMP)
	CLEARTAX_RELIABILITY_SCALE=full $(PY) -m pytest tests/reliability $(PYTEST_ARGS)

benchmarks: $(STAMP)
	$(PY) -m benchmarks.run

clean:
	rm -rf $(VENV) .pytest_cache .artifacts
