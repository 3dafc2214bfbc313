# Two commands on a fresh clone: `make demo` and `make test`. Both build their own virtual
# environment (.venv) from pyproject.toml, pinned by constraints.txt for reproducible runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo

.PHONY: demo test lint format venv clean

# greenscreen's own bytecode, compiled here (only what changed): pip compiles a regular install
# but not an editable one, and where PYTHONDONTWRITEBYTECODE is set every command would compile
# the sources again at start (0.2-0.4 s; benchmarks/README.md, issue 23)
venv: $(VENV)/.installed
	$(BIN)/python -m compileall -q greenscreen

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

demo: venv
	$(BIN)/greenscreen demo --out $(OUT)

test: venv lint
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check greenscreen tests benchmarks taxonomies/sources
	$(BIN)/ruff format --check greenscreen tests benchmarks taxonomies/sources
	$(BIN)/mypy
	$(BIN)/mypy taxonomies/sources

format: venv
	$(BIN)/ruff check --fix greenscreen tests benchmarks taxonomies/sources
	$(BIN)/ruff format greenscreen tests benchmarks taxonomies/sources

clean:
	rm -rf $(VENV) out dist build .pytest_cache .mypy_cache .ruff_cache
