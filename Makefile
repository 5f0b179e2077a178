# samrl: `make demo` sets everything up and runs the demo graph; `make test` sets up and runs the tests.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
OUT := out

.PHONY: setup demo test bench-transport bench-sim eval-oracle clean

setup:
	@bash tools/setup_env.sh

demo: setup
	$(BIN)/samrl launch needle_threading episodes:=5 --local

test: setup
	$(BIN)/python -m pytest

bench-transport: setup
	$(BIN)/samrl bench transport --json $(OUT)/bench_transport.json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

bench-sim: setup
	$(BIN)/samrl bench sim --json $(OUT)/bench_sim.json

eval-oracle: setup
	for task in needle_threading peg_insertion spatula_flipping; do \
	  $(BIN)/samrl eval $$task --controller oracle --episodes 50 --seed 0 || exit 1; done
