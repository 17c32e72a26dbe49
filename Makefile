# Every target installs what it needs into .venv first, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lint typecheck test demo bench emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy api_client storage bot fake_telegram demo

test: lint typecheck
	$(VENV)/bin/pytest -q

demo: install
	$(PY) -m demo --out demo-output

bench: install
	$(PY) -m benchmarks

emulator: install
	$(PY) -m api_client.emulator --host 127.0.0.1 --port 8080 --access-key AK --secret-key SK

clean:
	rm -rf $(VENV) demo-output .mypy_cache .pytest_cache .ruff_cache
