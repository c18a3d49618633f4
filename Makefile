# ekklesia — every target works from a fresh clone: the virtualenv is created on demand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint typecheck bench clean run crashloop

# Reinstall only when the dependency list changes; an editable install picks up code edits.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install -q --upgrade pip >/dev/null
	@$(PY) -m pip install -q -e '.[test,dev]'
	@touch $@

test: $(STAMP)
	@$(PY) -m pytest

lint: $(STAMP)
	@$(VENV)/bin/ruff check protocol node simulations tests bench

typecheck: $(STAMP)
	@$(VENV)/bin/mypy --strict protocol

bench: $(STAMP)
	@$(PY) -m bench

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

TESTNET ?= testnet
VALIDATORS ?= 4

# Install, create a fresh local testnet, start it with a live status table and the
# governance demo. Ctrl-C stops every node.
run: $(STAMP)
	@$(VENV)/bin/ekklesia testnet init --validators $(VALIDATORS) --out $(TESTNET) --force
	@$(VENV)/bin/ekklesia testnet run $(TESTNET) --demo

# Kill -9 a random validator of a loaded 4-validator testnet 20 times; check that
# nothing conflicting was signed, all nodes agree and no acknowledged tx was lost.
crashloop: $(STAMP)
	@$(PY) -m simulations.real.crashloop --kills 20
