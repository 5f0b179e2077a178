# samrl: `make demo` sets everything up and runs the demo graph; `make test` sets up and runs the tests.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
OUT := out

.PHONY: setup demo test bench-transport bench-sim eval-oracle segmentation-data train-segmentation \
	train-refiner bench-segmentation fuzz check-py312 clean

setup:
	@bash tools/setup_env.sh

demo: setup
	$(BIN)/samrl launch needle_threading episodes:=5 --local

test: setup
	$(BIN)/python -m pytest

# Malformed, adversarial and out-of-range input to each node of the task graph (see samrl_bringup/fuzz.py).
fuzz: setup
	$(BIN)/samrl fuzz all --count 10000 --json $(OUT)/fuzz.json
	$(BIN)/samrl fuzz motion --count 10000 --json $(OUT)/fuzz_motion.json

# Not in `make test`: the requirements in a fresh Python 3.12 venv (ROS 2 Jazzy's Python) and the ROS-free
# unit tests there (tools/check_py312.sh; the first run downloads several GB).
check-py312:
	bash tools/check_py312.sh

bench-transport: setup
	$(BIN)/samrl bench transport --json $(OUT)/bench_transport.json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache

bench-sim: setup
	$(BIN)/samrl bench sim --json $(OUT)/bench_sim.json

eval-oracle: setup
	for task in needle_threading peg_insertion spatula_flipping; do \
	  $(BIN)/samrl eval $$task --controller oracle --episodes 50 --seed 0 || exit 1; done

# The shipped Mask R-CNN checkpoint is made by these steps (see its _card.json for the record).
segmentation-data: setup
	$(BIN)/samrl perception data --split train --count 1500 --workers 2

train-segmentation: setup
	$(BIN)/samrl perception train --data $(OUT)/segmentation/train --iterations 2000 --seed 0 --threads 1 \
	  --out src/samrl_perception/samrl_perception/checkpoints/maskrcnn_r18fpn.pt
	$(BIN)/samrl perception train --data $(OUT)/segmentation/train \
	  --resume src/samrl_perception/samrl_perception/checkpoints/maskrcnn_r18fpn.pt \
	  --iterations 800 --lr 5e-4 --seed 1 --threads 2 --out $(OUT)/segmentation/resume/maskrcnn_r18fpn.pt
	cp $(OUT)/segmentation/resume/maskrcnn_r18fpn* src/samrl_perception/samrl_perception/checkpoints/
	$(BIN)/samrl perception train --data $(OUT)/segmentation/train \
	  --resume src/samrl_perception/samrl_perception/checkpoints/maskrcnn_r18fpn.pt \
	  --iterations 4000 --lr 5e-4 --seed 2 --threads 2 --out $(OUT)/segmentation/resume2/maskrcnn_r18fpn.pt
	cp $(OUT)/segmentation/resume2/maskrcnn_r18fpn* src/samrl_perception/samrl_perception/checkpoints/
	$(BIN)/samrl perception calibrate --data $(OUT)/segmentation/train \
	  --checkpoint src/samrl_perception/samrl_perception/checkpoints/maskrcnn_r18fpn.pt
	$(MAKE) train-refiner

# The full-resolution mask refiner for the shipped Mask R-CNN's masks (refine.py).
train-refiner: setup
	$(BIN)/samrl perception train-refiner --data $(OUT)/segmentation/train --iterations 3000 --seed 0 --threads 2 \
	  --out $(OUT)/segmentation/refiner/mask_refiner.pt
	cp $(OUT)/segmentation/refiner/mask_refiner* src/samrl_perception/samrl_perception/checkpoints/

bench-segmentation: setup
	$(BIN)/samrl bench segmentation --count 240 --json $(OUT)/bench_segmentation.json
