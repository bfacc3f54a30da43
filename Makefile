# The two commands of the README:
#   make run   set up .venv from nothing and run the demo sweep on an embedded local Dask cluster
#   make test  set up .venv from nothing and run the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= results

.PHONY: run test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,micro]"
	touch $@

# What the tests of deploy/ need besides: Slurm, munge and Open MPI (Debian packages, as root or through sudo),
# and the deploy extra with mpi4py built against that Open MPI.
$(VENV)/.deploy: $(VENV)/.installed deploy/install-system-packages.sh deploy/install-python-packages.sh
	deploy/install-system-packages.sh
	deploy/install-python-packages.sh $(PY)
	touch $@

run: $(VENV)/.installed
	$(VENV)/bin/epmsweep demo --out $(OUT)

test: $(VENV)/.installed $(VENV)/.deploy
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q tests

bench: $(VENV)/.installed
	$(PY) benchmarks/engine.py

clean:
	rm -rf $(VENV) $(OUT)
