# The two quick-start commands: `make demo` and `make test`. Each creates .venv and installs
# requirements.txt on first use (torch/torchvision come pinned; see README "Install by hand").
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The demo's parallel runs: FLEX-CLIP trains on one thread (TRAINER.FLEXCLIP.NUM_THREADS, for
# bit-identical seeds), so two workers keep both cores of a small machine busy.
DEMO_JOBS ?= 2

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	PYTHON=$(PY) bash scripts/reproduce.sh simulated --jobs $(DEMO_JOBS)

# The offline suite, then the README check (every README command from a fresh copy, in order).
test: $(VENV)/.installed
	$(PY) -m pytest -q
	$(PY) -m pytest -q -m readme

.PHONY: install demo test
