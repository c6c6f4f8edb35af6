# The two commands of the README:
#   make test   install missing packages, build Release with tests, run every suite
#   make demo   install missing packages, build Release, run the main example
#   make bench  the benchmarks against PyTorch (bench/README.md)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := cmake g++ make pkg-config libxtensor-dev libxtensor-blas-dev libopenblas-dev libboost-test-dev nlohmann-json3-dev

.PHONY: all deps build test demo bench clean

all: build

deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DXGRAD_BUILD_TESTS=ON -DXGRAD_BUILD_EXAMPLES=ON -DXGRAD_NATIVE=ON
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

demo: build
	scripts/demo.sh

# xgrad and PyTorch (Debian's python3-torch) side by side on identical models and batches.
bench: build
	@scripts/install-deps.sh python3-torch
	bench/run.sh

clean:
	rm -rf $(BUILD_DIR)
