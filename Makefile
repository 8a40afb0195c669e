# Set-up and the main jobs. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
URL    ?=
COLLECTION ?= snapshots

.PHONY: run test test-all venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# Capture the built-in demo site (served on 127.0.0.1) and verify it; or `make run URL=https://...`.
run: $(STAMP)
ifeq ($(strip $(URL)),)
	$(BIN)/archive demo -C $(COLLECTION)
else
	$(BIN)/archive capture -C $(COLLECTION) --verify $(URL)
endif

# The default test run: everything but tests marked slow.
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow" --doctest-modules archive tests

test-all: $(STAMP)
	$(BIN)/python -m pytest -q --doctest-modules archive tests

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
