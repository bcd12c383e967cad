# Samsa - top-level entry points. See README.md.
#   make run     build and start a single-node broker on localhost:9092 (data in ./data)
#   make run-cluster  build and start N (default 3) local nodes in the background
#                (data in ./data/cluster; scripts/run-cluster.sh status|stop; docs/CLUSTER.md)
#   make test    build and run unit, fuzz-corpus and integration tests
#   make build   build bin/samsa-broker (and bin/samsa, bin/samsa-connect)
#   make bench   run benchmarks, results in docs/PERFORMANCE.md (BENCH_QUICK=1: a quick run)
#   make fuzz    build libFuzzer targets with clang and run each for FUZZ_SECONDS
#   make chaos   fault-injection runs of a 3-node and a split cluster, CHAOS_SECONDS (300)
#                each, seeded by CHAOS_SEED (default random, printed); not part of make test:
#                the metadata quorum (3+3 nodes) and replicated partitions (1+3 nodes)
# Options: SANITIZE=address,undefined (or thread), BUILD_TYPE=Debug|Release|RelWithDebInfo, WERROR=1
SHELL := /bin/bash
BUILD_TYPE ?= RelWithDebInfo
SANITIZE ?=
WERROR ?= 0
BUILD_DIR ?= build$(if $(SANITIZE),-$(subst $(comma),-,$(SANITIZE)))
comma := ,
JOBS ?= $(shell nproc)
FUZZ_SECONDS ?= 60
CHAOS_SECONDS ?= 300
CHAOS_SEED ?=

.PHONY: all deps build run run-cluster test unit integration bench fuzz chaos clean install

# Sanitizer builds put their binaries in $(BUILD_DIR)/bin (see CMakeLists.txt), and
# the integration tests run those: SAMSA_BROKER names the broker they start.
ifneq ($(SANITIZE),)
export SAMSA_BROKER ?= $(CURDIR)/$(BUILD_DIR)/bin/samsa-broker
export SAMSA_CONNECT ?= $(CURDIR)/$(BUILD_DIR)/bin/samsa-connect
export SAMSA_IT_START_TIMEOUT ?= 120
export ASAN_OPTIONS ?= abort_on_error=0:detect_leaks=1
export UBSAN_OPTIONS ?= print_stacktrace=1:halt_on_error=1
export TSAN_OPTIONS ?= halt_on_error=0:second_deadlock_stack=1
endif

all: build

deps:
	@bash scripts/deps.sh

# Configured on every build, so options given now (WERROR=1, BUILD_TYPE=...)
# apply to an already-configured tree too; cmake only regenerates on a change.
build: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) \
	  -DSAMSA_SANITIZE=$(SANITIZE) -DSAMSA_WERROR=$(if $(filter 1,$(WERROR)),ON,OFF) >/dev/null
	@cmake --build $(BUILD_DIR) -j $(JOBS) -- --no-print-directory -s

run: build
	@mkdir -p data
	./bin/samsa-broker config/server.properties

# N=5 or PORT_BASE=29091 pass through to the script (environment or command line).
run-cluster: build
	@$(if $(N),N=$(N) )$(if $(PORT_BASE),PORT_BASE=$(PORT_BASE) )bash scripts/run-cluster.sh start

unit: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

integration: build
	@bash tests/integration/run.sh

test: build
	@bash scripts/test.sh $(BUILD_DIR)

bench: build
	@BENCH_BUILD=$(BUILD_DIR) bash bench/run.sh

fuzz: deps
	@cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DSAMSA_FUZZ=ON \
	  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null && cmake --build build-fuzz -j $(JOBS)
	@bash tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# Both layouts, one seed; the run fails if any does (tests/chaos/cluster_chaos.py: the
# metadata quorum; tests/chaos/repl_chaos.py: replicated partitions under acks=all).
chaos: build
	@seed=$(CHAOS_SEED); seed=$${seed:-$$(( (RANDOM << 15) | RANDOM ))}; echo "chaos seed: $$seed"; rc=0; \
	for layout in combined split; do \
	  /usr/bin/python3 tests/chaos/cluster_chaos.py --seconds $(CHAOS_SECONDS) --seed $$seed \
	    --layout $$layout || rc=1; \
	  /usr/bin/python3 tests/chaos/repl_chaos.py --seconds $(CHAOS_SECONDS) --seed $$seed \
	    --layout $$layout || rc=1; \
	done; echo "chaos seed $$seed: $$([ $$rc = 0 ] && echo passed || echo FAILED)"; exit $$rc

PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 bin/samsa bin/samsa-broker bin/samsa-connect $(DESTDIR)$(PREFIX)/bin/
	install -d $(DESTDIR)$(PREFIX)/include/samsa
	install -m 644 src/connect/connect_plugin.h $(DESTDIR)$(PREFIX)/include/samsa/
	install -m 644 scripts/samsa-completion.bash \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/samsa
	install -d $(DESTDIR)$(PREFIX)/share/samsa/kafka/bin
	install -m 755 kafka/bin/kafka-*.sh $(DESTDIR)$(PREFIX)/share/samsa/kafka/bin/
	install -d $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 644 scripts/samsa-completion.zsh $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_samsa
	install -m 644 scripts/samsa-completion.fish \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/samsa.fish

clean:
	rm -rf build build-* bin kafka
