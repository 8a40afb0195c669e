# Set-up and the main jobs. `make run` and `make test` are all a fresh machine needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# pywb (replay) and py-wacz (validation) pin old libraries: they get a virtual environment of their own.
PYWB_VENV  := .venv-pywb
PYWB_STAMP := $(PYWB_VENV)/.installed
SYSTEM_STAMP := $(VENV)/.system-packages
# axe-core (npm): the accessibility checker the web interface's tests inject into each page
AXE := node_modules/axe-core/axe.min.js
URL    ?=
COLLECTION ?= snapshots

.PHONY: run test test-all bench venv pywb system install clean

venv: $(STAMP)
pywb: $(PYWB_STAMP)
system: $(SYSTEM_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(PYWB_STAMP):
	test -x $(PYWB_VENV)/bin/python || $(PYTHON) -m venv $(PYWB_VENV)
	$(PYWB_VENV)/bin/python -m pip install -q --upgrade pip
	$(PYWB_VENV)/bin/python -m pip install -q 'pywb>=2.8' 'wacz>=0.5'
	touch $(PYWB_STAMP)

# Debian packages the tests drive: Chromium (replay in a real browser), wget (a WARC made by
# another tool), openssl (a time-stamping authority and an independent check of our proofs) and
# redis-server (the broker of `archive worker`). Installed only where missing; never a browser
# download.
$(SYSTEM_STAMP): $(STAMP)
	@if ! command -v chromium >/dev/null || ! command -v wget >/dev/null || ! command -v openssl >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium wget openssl fonts-dejavu-core; \
	fi
	@if ! command -v npm >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm; \
	fi
	@if ! command -v redis-server >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	fi
	touch $(SYSTEM_STAMP)

# Everything the README then uses (pywb for `archive serve` included), then capture the built-in
# demo site (served on 127.0.0.1) and verify it; or `make run URL=https://...`.
run: $(STAMP) $(PYWB_STAMP)
ifeq ($(strip $(URL)),)
	$(BIN)/archive demo -C $(COLLECTION)
else
	$(BIN)/archive capture -C $(COLLECTION) --verify $(URL)
endif
	@echo
	@echo "Set up. To type \`archive ...\` as the README does: source $(VENV)/bin/activate"
	@echo "(in each new shell), or \`make install\` once to link it into ~/.local/bin."

# Link the `archive` command into ~/.local/bin (on the PATH of most login shells), pointing
# into this checkout's .venv: `make install` once, and `archive` works in every shell.
install: $(STAMP) $(PYWB_STAMP)
	mkdir -p $(HOME)/.local/bin
	ln -sfn $(abspath $(BIN))/archive $(HOME)/.local/bin/archive
	@case ":$$PATH:" in *":$(HOME)/.local/bin:"*) echo "archive is on your PATH: try \`archive list\`";; \
		*) echo "$(HOME)/.local/bin is not on your PATH: add it (export PATH=\"\$$HOME/.local/bin:\$$PATH\" in ~/.profile)";; esac

$(AXE): $(SYSTEM_STAMP)
	npm install --no-audit --no-fund --no-save axe-core@4.10.3

# The default test run: everything but tests marked slow.
test: $(STAMP) $(PYWB_STAMP) $(SYSTEM_STAMP) $(AXE)
	$(BIN)/python -m pytest -q -m "not slow" --doctest-modules archive tests

test-all: $(STAMP) $(PYWB_STAMP) $(SYSTEM_STAMP) $(AXE)
	$(BIN)/python -m pytest -q --doctest-modules archive tests

# Speed and memory against GNU wget and warcio, medians of 3 runs (several minutes; not in `make test`).
bench: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/python bench/run.py --reps 3

clean:
	rm -rf $(VENV) $(PYWB_VENV) .pytest_cache build *.egg-info
