# samrl: `make demo` sets everything up and runs the demo graph; `make test` sets up and runs the tests.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
OUT := out

.PHONY: setup demo test bench-transport clean

setup:
	@bash tools/setup_env.sh

demo: setup
	$(BIN)/samrl launch demo --local

test: setup
	$(BIN)/python -m pytest

bench-transport: setup
	$(BIN)/samrl bench transport --json $(OUT)/bench_transport.json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
