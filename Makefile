# The two commands of the README:
#   make test   install missing packages, build Release with tests, run every suite
#   make demo   install missing packages, build Release, run the main example
#   make bench  the benchmarks against PyTorch (bench/README.md)
#   make sanitize, make fuzz  what CI runs besides make test (.ci/run)
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
DEBIAN_PACKAGES := cmake g++ make pkg-config libxtensor-dev libxtensor-blas-dev libopenblas-dev libopenblas-openmp-dev libdnnl-dev libboost-test-dev nlohmann-json3-dev zlib1g-dev libicu-dev libsentencepiece-dev libopenmpi-dev openmpi-bin dataset-fashion-mnist

.PHONY: all deps build test demo bench sanitize fuzz clean

all: build

deps:
	@scripts/install-deps.sh $(DEBIAN_PACKAGES)

build: deps
	cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=Release -DXGRAD_BUILD_TESTS=ON -DXGRAD_BUILD_EXAMPLES=ON -DXGRAD_NATIVE=OFF
	cmake --build $(BUILD_DIR) -j $(JOBS)

# Then the fast suites again with every kernel and oneDNN's products capped at AVX2: the path
# of CPUs without AVX-512, which the widest path would otherwise leave untested here.
test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)
	cd $(BUILD_DIR) && XGRAD_MAX_ISA=avx2 ctest -L fast --output-on-failure -j $(JOBS)

demo: build
	scripts/demo.sh

# xgrad and PyTorch (Debian's python3-torch) side by side on identical models and batches.
bench: build
	@scripts/install-deps.sh python3-torch
	bench/run.sh

# The fast test suites again, built with AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize: deps
	cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_SANITIZE=ON -DXGRAD_BUILD_TESTS=ON -DXGRAD_BUILD_EXAMPLES=ON
	cmake --build build-sanitize -j $(JOBS)
	cd build-sanitize && ctest -L fast --output-on-failure -j $(JOBS)

# libFuzzer on the file readers, FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	@scripts/install-deps.sh clang libclang-rt-14-dev  # libFuzzer is only a Recommends of clang
	cmake -S . -B build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo -DXGRAD_FUZZ=ON -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
	cmake --build build-fuzz -j $(JOBS)
	scripts/run-fuzzers.sh build-fuzz $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) build-sanitize build-fuzz
