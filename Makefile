# StratosDB — two commands do all the set-up: `make run` and `make test`.
SWIFT ?= swift
PYTHON ?= python3
PORT ?= 27017
DATA_DIR ?= ./.stratosdb
SWIFT_BUILD_FLAGS ?=

.PHONY: all deps deps-system deps-python build release run test test-swift test-interop bench microbench clean

all: build

# Installs the C libraries (Debian/Ubuntu, as root) and the Python test tools when missing.
deps: deps-system deps-python

deps-system:
	@bash scripts/install-deps.sh

deps-python:
	@$(PYTHON) -c "import pymongo, pytest" 2>/dev/null || $(PYTHON) -m pip install -q -r Tests/Interop/python/requirements.txt

build: deps-system
	$(SWIFT) build $(SWIFT_BUILD_FLAGS)

release: deps-system
	$(SWIFT) build -c release $(SWIFT_BUILD_FLAGS)

run: release
	$(SWIFT) run -c release stratosdb serve --data-dir $(DATA_DIR) --port $(PORT)

test: deps build test-swift test-interop

test-swift:
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_BUILD_FLAGS)

# The pymongo suite, then every official driver's program (Tests/Interop/drivers/*), each against
# a real server; missing driver packages are installed, or the driver is reported skipped.
test-interop: deps build
	STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) -m pytest Tests/Interop/python
	STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) Tests/Interop/run_drivers.py

bench: deps release
	@$(PYTHON) -c "import psycopg" 2>/dev/null || $(PYTHON) -m pip install -q "psycopg[binary]"
	@test -x /usr/lib/postgresql/15/bin/initdb || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15)
	$(PYTHON) bench/ycsb.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb --output docs/benchmarks.md

# Query-engine microbenchmarks (ordo-one/benchmark), in their own build folder.
microbench: deps-system
	STRATOSDB_BENCHMARKS=1 $(SWIFT) package --scratch-path .build-bench --disable-sandbox benchmark

clean:
	rm -rf .build
