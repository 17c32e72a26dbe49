# Every target installs what it needs into .venv first, so a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install lint typecheck test demo bench emulator lock clean

# Dependencies exactly as locked (requirements/dev.lock: versions and hashes), then the project itself.
$(STAMP): pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements/dev.lock
	$(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy api_client storage bot fake_telegram demo benchmarks

test: lint typecheck
	$(VENV)/bin/pytest -q

demo: install
	$(PY) -m demo --out demo-output

bench: install
	$(PY) -m benchmarks

emulator: install
	$(PY) -m api_client.emulator --host 127.0.0.1 --port 8080 --access-key AK --secret-key SK

# Re-resolve the locks after a change to the dependencies in pyproject.toml (uv, in a venv of its own).
lock:
	$(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install --quiet uv
	.venv-lock/bin/uv pip compile pyproject.toml --extra dev --extra fast --generate-hashes --universal \
		--python-version 3.11 --quiet -o requirements/dev.lock
	.venv-lock/bin/uv pip compile pyproject.toml --extra fast --generate-hashes --universal \
		--python-version 3.11 --quiet -o requirements/runtime.lock

clean:
	rm -rf $(VENV) .venv-lock demo-output .mypy_cache .pytest_cache .ruff_cache
