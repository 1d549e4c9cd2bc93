# StratosDB — two commands do all the set-up: `make run` and `make test`.
SWIFT ?= swift
PYTHON ?= python3
PORT ?= 27017
DATA_DIR ?= ./.stratosdb
SWIFT_BUILD_FLAGS ?=

.PHONY: all deps deps-system deps-python build release run test test-swift test-interop bench bench-scale bench-spaces bench-ledger bench-procedures bench-hostile sim stress microbench fuzz clean

all: build

# Installs the C libraries (Debian/Ubuntu, as root) and the Python test tools when missing.
deps: deps-system deps-python

deps-system:
	@bash scripts/install-deps.sh

deps-python:
	@$(PYTHON) -c "import pymongo, pytest, cryptography" 2>/dev/null || $(PYTHON) -m pip install -q -r Tests/Interop/python/requirements.txt

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
# a real server; missing driver packages are installed, or the driver is reported skipped; then
# the drivers' unified CRUD spec tests (pymongo's runner, downloaded once into .build-spec-tests).
test-interop: deps build
	STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) -m pytest Tests/Interop/python
	STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) Tests/Interop/run_drivers.py
	STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) Tests/Interop/unified_crud.py

bench: deps release
	@$(PYTHON) -c "import psycopg" 2>/dev/null || $(PYTHON) -m pip install -q "psycopg[binary]"
	@test -x /usr/lib/postgresql/15/bin/initdb || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-15)
	@pkg-config --exists libmongoc-1.0 libpq 2>/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libmongoc-dev libpq-dev pkg-config)
	@command -v valgrind >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind)
	$(PYTHON) bench/ycsb.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb --output docs/benchmarks.md
	$(PYTHON) bench/floor.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb --output docs/benchmarks.md
	$(PYTHON) bench/instructions.py --build "this build=$$($(SWIFT) build -c release --show-bin-path)/stratosdb" --output docs/benchmarks.md
	$(PYTHON) bench/scale.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb --docs $(SCALE_DOCS) --output docs/benchmarks.md

# The scale part of `make bench` alone: SCALE_DOCS user profiles (default 10 million; about an hour
# and 25 GB of disk here) loaded into one space, with read costs at 10,000 and at the end.
SCALE_DOCS ?= 10000000
bench-scale: deps release
	$(PYTHON) bench/scale.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb --docs $(SCALE_DOCS) --output docs/benchmarks.md

# What user-owned spaces cost: the same workloads with and without authentication, encryption
# at rest and signed commits, plus archive export/verify/import rates (docs/benchmarks.md).
bench-spaces: deps release
	$(PYTHON) bench/spaces_overhead.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb

# The ledger: block commit latency on four loopback validators, w: "anchored" latency, how many
# space commits one block anchors, and what anchoring costs per write (docs/benchmarks.md).
bench-ledger: deps release
	$(PYTHON) bench/ledger.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb

# Stored procedures against the aggregation pipeline on 100,000 documents (docs/procedures.md).
bench-procedures: deps release
	$(PYTHON) bench/procedures.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb

# The resource-governance goal at scale: thousands of hostile messages, 2,000 idle sockets,
# eight runaway queries and SIGTERM, with a good client alongside (docs/limits.md).
bench-hostile: deps release
	$(PYTHON) bench/hostile.py --stratosdb-bin $$($(SWIFT) build -c release --show-bin-path)/stratosdb

# More seeds of the deterministic consensus simulation than `make test` runs (200); a failing
# seed is printed and replays with STRATOSDB_SIM_SEED=<seed> (docs/consensus.md).
SEEDS ?= 2000
sim: deps-system
	$(SWIFT) build --build-tests $(SWIFT_BUILD_FLAGS)
	STRATOSDB_SIM_SEEDS=$(SEEDS) $(SWIFT) test --skip-build --filter SimulationTests $(SWIFT_BUILD_FLAGS)

# The schema-change concurrency stress for longer than `make test` runs it (12 s), with a seed
# of your choice: make stress SEED=7 SECONDS=120 (docs/concurrency.md).
SEED ?= 16
SECONDS ?= 60
stress: deps build
	STRATOSDB_STRESS_SEED=$(SEED) STRATOSDB_STRESS_SECONDS=$(SECONDS) STRATOSDB_BIN=$$($(SWIFT) build --show-bin-path)/stratosdb $(PYTHON) -m pytest -q -s Tests/Interop/python/test_schema_stress.py

# Query-engine microbenchmarks (ordo-one/benchmark), in their own build folder.
microbench: deps-system
	STRATOSDB_BENCHMARKS=1 $(SWIFT) package --scratch-path .build-bench --disable-sandbox benchmark

# libFuzzer + AddressSanitizer over the BSON decoder and query parsers (FuzzTesting/README.md).
FUZZ_SECONDS ?= 120
fuzz: deps-system
	STRATOSDB_FUZZ=1 $(SWIFT) build -c release --scratch-path .build-fuzz --product BSONFuzzer -Xswiftc -sanitize=fuzzer,address
	mkdir -p .build-fuzz/corpus
	$(PYTHON) -c "import bson; [open(f'.build-fuzz/corpus/seed{i}', 'wb').write(bson.encode(d)) for i, d in enumerate([{'a': 1}, {'_id': 'x', 'tags': ['a', {'b': 2}], 'n': None}, {'\$$set': {'a.b': 1}}, {'age': {'\$$gte': 30}}, {'pipeline': [{'\$$match': {'a': 1}}]}, {'expr': {'\$$cond': [{'\$$gt': ['\$$a', 1]}, {'\$$concat': ['x', '\$$b']}, {'\$$dateToString': {'date': '\$$d', 'format': '%Y'}}]}}, {'loc': {'\$$geoWithin': {'\$$geometry': {'type': 'Polygon', 'coordinates': [[[0, 0], [3, 6], [6, 1], [0, 0]]]}}}, 'a': {'\$$bitsAllSet': [1, 5]}}, {'\$$bit': {'a': {'and': 5}}}, {'expr': {'\$$dateFromString': {'dateString': '2017-02-08T12:10:40.787Z', 'format': '%Y-%m-%dT%H:%M:%S.%LZ'}}}, {'pipeline': [{'\$$geoNear': {'near': [0, 0], 'distanceField': 'd'}}]}])]"
	.build-fuzz/release/BSONFuzzer .build-fuzz/corpus -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1

clean:
	rm -rf .build
