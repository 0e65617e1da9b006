# The DyT suite. The two commands a new user needs:
#   make run    set up, build, and run the main job (LN vs DyT on Fashion-MNIST, a few minutes)
#   make test   set up, build, and run every test (ctest)
# Other targets: make (build), make smoke, make bench, make clean.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
PYTHON := $(CURDIR)/.venv/bin/python
DYT := $(BUILD_DIR)/dyt
CMAKE_ARGS ?=

.PHONY: all setup configure build run smoke test bench clean

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/build.ninja: | setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_PREFIX_PATH="$$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')" $(CMAKE_ARGS)

configure: $(BUILD_DIR)/build.ninja

build: setup configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(DYT) run quick/vit_fmnist

smoke: build
	$(DYT) run smoke/vit_fmnist

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900

bench: build
	$(DYT) bench norm --threads 2 --csv results/bench/norm_cpu_fp32.csv

clean:
	rm -rf $(BUILD_DIR)
