# Thin wrapper over CMake. The two commands of README.md:
#   make test   installs dependencies, configures, builds everything, runs every test
#   make demo   builds and runs the main job (an embedded federation) into out/
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
CCACHE := $(shell command -v ccache 2>/dev/null)
ifneq ($(CCACHE),)
ifeq ($(CI),)
CMAKE_FLAGS += -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
endif
endif

.PHONY: all deps configure build test demo bench fuzz format clean

all: build

deps:
	@tools/install-deps.sh

$(BUILD_DIR)/build.ninja: | deps
	cmake -S . -B $(BUILD_DIR) -G Ninja $(CMAKE_FLAGS)

configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS)

demo: build
	@if [ -x $(BUILD_DIR)/bin/dnd ]; then $(BUILD_DIR)/bin/dnd demo; \
	else echo "make demo: the demo is not built yet (end-to-end issue)"; fi

bench: build
	@for b in $(BUILD_DIR)/bin/bench_*; do echo "== $$b"; $$b; done

# libFuzzer targets need clang; built in a separate tree. FUZZ_SECONDS per target.
FUZZ_SECONDS ?= 60
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
	  -DDND_BUILD_FUZZERS=ON -DDND_BUILD_TESTS=OFF -DDND_BUILD_BENCHMARKS=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	@for f in build-fuzz/bin/fuzz_*; do echo "== $$f"; mkdir -p build-fuzz/corpus/$$(basename $$f); \
	  $$f -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus/$$(basename $$f) || exit 1; done

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) build-fuzz
