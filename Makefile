# Fontus: `make demo` and `make test` set up everything they need (.venv, installs, generated code).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit integration interop bench clean venv format protos protos-check juturna-venv bench-remote bench-codec

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Fontus needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks scripts
	$(PY) -m ruff format --check src tests benchmarks scripts

format: $(STAMP)
	$(PY) -m ruff format src tests benchmarks scripts
	$(PY) -m ruff check --fix src tests benchmarks scripts

typecheck: $(STAMP)
	$(PY) -m mypy

protos: $(STAMP)
	$(PY) scripts/gen_protos.py

protos-check: $(STAMP)
	$(PY) scripts/gen_protos.py --check

juturna-venv:
	bash scripts/juturna_venv.sh

interop: $(STAMP) juturna-venv
	$(PY) -m pytest tests/interop -q -p no:cacheprovider

unit: $(STAMP)
	$(PY) -m pytest tests/unit -q

integration: $(STAMP)
	$(PY) -m pytest tests/integration -q

test: $(STAMP) protos-check lint typecheck
	$(PY) -m pytest tests -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/local.py

bench-codec: $(STAMP)
	$(PY) benchmarks/codec.py

bench-remote: $(STAMP)
	$(PY) benchmarks/remote.py

clean:
	rm -rf $(VENV) .venv-juturna build dist src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
