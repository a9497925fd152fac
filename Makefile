# The two quick-start commands: `make demo` and `make test`. Each creates .venv and installs
# requirements.txt on first use (torch/torchvision come pinned; see README "Install").
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	PYTHON=$(PY) bash scripts/reproduce.sh simulated

test: $(VENV)/.installed
	$(PY) -m pytest -q

.PHONY: install demo test
