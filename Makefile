# souk: the two commands the README promises.
#   make run    install what is missing, build, start `souk console`
#   make test   install what is missing, run every test (unit, integration,
#               fakes, then again under ASan+UBSan, plus a valgrind leak run)
# Other targets: build, bench, fuzz, clean.

JOBS ?= $(shell nproc)
PY := /usr/bin/python3
BUILD := build/release
TBUILD := build/test
ABUILD := build/asan
ARGS ?=

.PHONY: all build run test test-unit test-integration test-asan bench fuzz clean deps-build deps-test

all: build

deps-build:
	@scripts/deps.sh build

deps-test:
	@scripts/deps.sh test

build: deps-build
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSOUK_TESTS=OFF >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/souk console $(ARGS)

test: deps-test
	@scripts/test.sh

bench: deps-test
	@scripts/bench.sh

fuzz: deps-test
	@cmake -S . -B build/fuzz -DSOUK_FUZZ=ON -DSOUK_TESTS=OFF -DSOUK_BENCH=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build build/fuzz -j$(JOBS) --target fuzz
	@echo "fuzz targets in build/fuzz/tests/fuzz: run e.g. build/fuzz/tests/fuzz/fuzz_json tests/fuzz/corpus/json"

clean:
	rm -rf build
