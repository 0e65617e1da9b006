# The DyT suite. The two commands a new user needs:
#   make run    set up, build, and run the main job (LN vs DyT on Fashion-MNIST, a few minutes)
#   make test   set up, build, and run every test (ctest)
# Other targets: make (build), make smoke, make bench, make gpu-bundle, make sanitize, make fuzz, make clean.

BUILD_DIR ?= build
BUILD_TYPE ?= Release
JOBS ?= $(shell nproc)
PYTHON := $(CURDIR)/.venv/bin/python
DYT := $(BUILD_DIR)/dyt
CMAKE_ARGS ?=

FUZZ_SECONDS ?= 120
TORCH_PREFIX = $$($(PYTHON) -c 'import torch; print(torch.utils.cmake_prefix_path)')

.PHONY: all setup configure build run smoke test bench gpu-bundle sanitize fuzz clean

all: build

setup:
	@scripts/setup.sh

$(BUILD_DIR)/build.ninja: | setup
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DCMAKE_PREFIX_PATH="$(TORCH_PREFIX)" $(CMAKE_ARGS)

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

# dyt + the kernel check + the libraries a PyTorch-only GPU machine lacks, in gpu-bundle/ (< 60 MiB);
# there: `bash gpu-bundle/scripts/gpu_check.sh` (README: "Running on a GPU").
gpu-bundle: build
	BUILD_DIR=$(BUILD_DIR) scripts/gpu_bundle.sh

# One clang build (build-san/) serves both: the unit tests under AddressSanitizer +
# UndefinedBehaviorSanitizer, and the libFuzzer target on the config loader.
SAN_DIR ?= build-san
SAN_ENV := ASAN_OPTIONS=detect_leaks=0:detect_odr_violation=0:alloc_dealloc_mismatch=0 UBSAN_OPTIONS=print_stacktrace=1

$(SAN_DIR)/build.ninja: | setup
	cmake -S . -B $(SAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang \
	  -DCMAKE_CXX_COMPILER=clang++ -DDYT_SANITIZE=ON -DDYT_FUZZ=ON -DDYT_WITH_CUDA=OFF \
	  -DCMAKE_PREFIX_PATH="$(TORCH_PREFIX)"

sanitize: setup $(SAN_DIR)/build.ninja
	cmake --build $(SAN_DIR) -j $(JOBS) --target dyt_tests
	$(SAN_ENV) DYT_HOME=$(CURDIR) $(SAN_DIR)/tests/dyt_tests

# libFuzzer on the config loader for FUZZ_SECONDS; new crashing inputs land in tests/fuzz/regressions,
# which the unit tests replay from then on.
fuzz: setup $(SAN_DIR)/build.ninja
	cmake --build $(SAN_DIR) -j $(JOBS) --target fuzz_config
	mkdir -p $(SAN_DIR)/corpus
	$(SAN_ENV) $(SAN_DIR)/fuzz_config -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	  -artifact_prefix=tests/fuzz/regressions/ $(SAN_DIR)/corpus tests/fuzz/corpus

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
