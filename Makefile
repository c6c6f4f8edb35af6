# The two commands of the README:
#   make test   install missing packages, build Release with tests, run every suite
#   make demo   install missing packages, build Release, run the main example
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := cmake g++ make pkg-config libxtensor-dev libxtensor-blas-dev libopenblas-dev libboost-test-dev nlohmann-json3-dev

.PHONY: all deps build test demo clean

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

clean:
	rm -rf $(BUILD_DIR)
