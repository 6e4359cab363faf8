# The whole set-up is two commands: `make demo` and `make test`.
# Both create the virtual environment in .venv and install the project when needed.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cortexfit demo --out reports/demo

test: $(STAMP)
	.ci/ensure-chromium
	$(BIN)/python -m pytest -n 2

BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

# Benchmarks (not tests): Brian2 lives in its own environment, it needs numpy < 2.4.
$(BENCH_STAMP): pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench]"
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python benchmarks/bench_rls.py
	$(BENCH_VENV)/bin/python benchmarks/bench_brian2.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) reports/demo .pytest_cache
	find cortexfit -name '*.nbi' -o -name '*.nbc' | xargs rm -f
