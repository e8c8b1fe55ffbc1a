# VexLake - build, run and test.  `make help` lists the targets.
#
# Layers are folders (src/network, src/commands, src/core, src/storage,
# src/server, src/util); every .c file in them and in their subfolders
# (src/core/kernels, ...) is part of the library that the server binary and
# the unit tests link, except src/server/main.c.

CC      ?= cc
PORT    ?= 6379
DIR     ?= ./data
ARGS    ?=
VENV    := .venv
PY      := $(VENV)/bin/python

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wpointer-arith \
           -Wcast-align -Wformat=2 -Wvla
CSTD    := -std=c11 -D_GNU_SOURCE -Iinclude -Isrc -pthread -MMD -MP
CFLAGS  ?= -O2 -g
LDLIBS  := -pthread -lm -lcjson -lzstd -lsnappy -lssl -lcrypto -lcurl

LIB_SRC := $(filter-out src/server/main.c, \
             $(wildcard src/util/*.c src/storage/*.c src/core/*.c src/core/*/*.c \
                        src/network/*.c src/commands/*.c src/server/*.c))
TESTS   := $(basename $(notdir $(wildcard tests/unit/test_*.c)))

REL_OBJ := $(LIB_SRC:src/%.c=build/rel/%.o)
SAN_OBJ := $(LIB_SRC:src/%.c=build/san/%.o)
SANFLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# libFuzzer harnesses (tests/fuzz/fuzz_<name>.c, picked up by wildcard):
# the library built by clang with coverage + ASan + UBSan into build/fuzz/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZFLAGS    := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer \
                -fno-sanitize-recover=undefined
FUZZ_OBJ     := $(LIB_SRC:src/%.c=build/fuzz/%.o)
FUZZERS      := $(basename $(notdir $(wildcard tests/fuzz/fuzz_*.c)))

# SIMD kernel files get their instruction sets per file (KFLAGS_<file>);
# the binary still runs on any x86-64: src/core/kernels/dispatch.c calls
# them only when CPUID says the CPU has them.
ifneq ($(filter x86_64-% amd64-%,$(shell $(CC) -dumpmachine)),)
AVX2_FLAGS   := -mavx2 -mfma -mpopcnt
AVX512_FLAGS := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mpopcnt
KFLAGS_f32_avx2    := $(AVX2_FLAGS)
KFLAGS_sq8_avx2    := $(AVX2_FLAGS)
KFLAGS_bits_avx2   := $(AVX2_FLAGS)
KFLAGS_lut4_avx2   := $(AVX2_FLAGS)
KFLAGS_f32_avx512  := $(AVX512_FLAGS)
KFLAGS_sq8_avx512  := $(AVX512_FLAGS) -mavx512vnni
KFLAGS_bits_avx512 := $(AVX512_FLAGS) -mavx512vpopcntdq
KFLAGS_lut4_avx512 := $(AVX512_FLAGS)
endif
kflags = $(KFLAGS_$(basename $(notdir $(1))))

# The NEON kernels, cross-built for arm64 with their checks (no cmocka
# there) and run under qemu-user by scripts/run-tests.sh.
CROSS_CC   ?= aarch64-linux-gnu-gcc
KERNEL_SRC := $(wildcard src/core/kernels/*.c) src/util/error.c
CROSS_TEST := build/aarch64/test/kernels_check

# Object files are real targets, not intermediates to delete after a link.
.SECONDARY:
# Build on every core unless the caller chose (-j1 / -jN); sub-makes
# inherit the jobserver.
ifeq ($(MAKELEVEL),0)
ifeq ($(filter -j% j%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif
endif

.PHONY: all build run test test-unit test-asan test-e2e deps deps-test fmt fmt-check lint verify \
        doc bench clean help fuzz fuzz-bins fuzz-corpus test-fuzz
.PHONY: test-cross cross-bins bench-kernels bench-ann bench-ivf bench-scale

all: build

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed -E 's/^([a-z0-9-]+):.*## /\1\t/' | expand -t 14

deps: ## install missing Debian packages needed to build
	@scripts/install-deps.sh build

deps-test: ## install missing packages and the Python test tools (.venv)
	@scripts/install-deps.sh test

build: bin/vexlake-server bin/vl-parquet bin/vexlake-bench ## build the server, bin/vl-parquet and bin/vexlake-bench

bin/vexlake-server: $(REL_OBJ) build/rel/server/main.o
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

bin/vl-parquet: $(REL_OBJ) build/rel/tools/vl_parquet.o
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The load generator stands alone: libc and pthreads, nothing from src/.
BENCH_TOOL_OBJ := $(patsubst %.c,build/rel/%.o,$(wildcard tools/bench/*.c))
bin/vexlake-bench: $(BENCH_TOOL_OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ -pthread -lm

# tests/unit/test_bench_resp.c checks the tool's RESP reader, histogram and
# recall scoring.
build/rel/test/test_bench_resp: build/rel/tools/bench/resp.o build/rel/tools/bench/hist.o \
  build/rel/tools/bench/dataset.o
build/san/test/test_bench_resp: build/san/tools/bench/resp.o build/san/tools/bench/hist.o \
  build/san/tools/bench/dataset.o
build/san/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) -c -o $@ $<

build/rel/tools/%.o: tools/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -c -o $@ $<

build/rel/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) $(call kflags,$@) -c -o $@ $<

build/san/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) $(call kflags,$@) -c -o $@ $<

build/fuzz/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) $(FUZZFLAGS) -fsanitize=fuzzer-no-link $(call kflags,$@) -c -o $@ $<

build/fuzz/bin/%: tests/fuzz/%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $(filter %.c %.o,$^) $(LDLIBS)

# $^ also holds the headers the .d files add: compile and link only .c/.o.
build/rel/test/%: tests/unit/%.c $(REL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -o $@ $(filter %.c %.o,$^) -lcmocka $(LDLIBS)

build/san/test/%: tests/unit/%.c $(SAN_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(SANFLAGS) -o $@ $(filter %.c %.o,$^) -lcmocka $(LDLIBS)

# Installing comes strictly before compiling (a fresh machine may lack
# headers), so these targets install first, then build in a sub-make.
run: deps ## install what is missing, build, serve 127.0.0.1:$(PORT) with data in $(DIR)
	@$(MAKE) --no-print-directory build
	bin/vexlake-server --port $(PORT) --dir $(DIR) $(ARGS)

$(CROSS_TEST): tests/unit/kernels_check.c tests/unit/kernel_checks.h $(KERNEL_SRC) \
               $(wildcard src/core/kernels/*.h) include/vexlake.h
	@mkdir -p $(dir $@)
	$(CROSS_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(WARN) -O2 -static -o $@ \
	  tests/unit/kernels_check.c $(KERNEL_SRC) -lm

build/rel/bench/%: bench/%.c $(REL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(CFLAGS) -o $@ $< $(REL_OBJ) $(LDLIBS)

unit-bins: $(TESTS:%=build/rel/test/%)
cross-bins: $(CROSS_TEST)
san-bins: $(TESTS:%=build/san/test/%)
fuzz-bins: $(FUZZERS:%=build/fuzz/bin/%)

test: deps-test ## install what is missing, build, run every test
	@$(MAKE) --no-print-directory build unit-bins san-bins fuzz-bins cross-bins
	@scripts/run-tests.sh all

test-unit: deps-test ## C unit tests only
	@$(MAKE) --no-print-directory unit-bins
	@scripts/run-tests.sh unit

test-cross: deps-test ## the NEON kernel checks, cross-built for arm64, under qemu-user
	@$(MAKE) --no-print-directory cross-bins
	@scripts/run-tests.sh cross

test-asan: deps-test ## C unit tests under AddressSanitizer + UBSan
	@$(MAKE) --no-print-directory san-bins
	@scripts/run-tests.sh asan

test-fuzz: deps-test ## the short fuzz pass of make test (corpus + FUZZ_TEST_SECONDS each)
	@$(MAKE) --no-print-directory fuzz-bins
	@scripts/run-tests.sh fuzz

test-e2e: deps-test ## end-to-end tests with redis-cli and redis-py
	@$(MAKE) --no-print-directory build
	@scripts/run-tests.sh e2e

fuzz-corpus: deps-test ## regenerate the seed corpus in tests/fuzz/corpus/
	@$(MAKE) --no-print-directory build/rel/tools/gen_corpus
	build/rel/tools/gen_corpus
	$(PY) tests/fuzz/gen_corpus_pyarrow.py

build/rel/tools/gen_corpus: tests/fuzz/gen_corpus.c $(REL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) -Itests/unit $(WARN) $(CFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS)

fuzz: deps-test ## run every libFuzzer harness for FUZZ_SECONDS (default 60) each
	@$(MAKE) --no-print-directory fuzz-bins
	@tests/fuzz/run.sh long $(FUZZ_SECONDS)

bench: deps-test ## benchmarks against peers; figures go to bench/results/
	@$(MAKE) --no-print-directory build build/rel/bench/kernels_bench build/rel/bench/ann_bench \
	  build/rel/bench/ivf_bench
	@bench/run.sh

# BENCH_DATASETS=sift,fashion (name substrings), BENCH_SYSTEMS=hnswlib,vexlake-hnsw,
# BENCH_QUICK=1 (3 sweep points, smallest dataset, report under build/bench/).
bench-ann: deps-test ## in-process ANN, one thread: VexLake HNSW/IVF vs every peer, every dataset
	@$(MAKE) --no-print-directory build/rel/bench/ann_bench build/rel/bench/ivf_bench
	@bench/install-peers.sh
	BENCH_COMMAND="make bench-ann" $(PY) bench/ann_peers.py

bench-ivf: deps-test ## in-process IVF vs faiss IVF, one thread, every dataset (bench/results/<date>-ivf.md)
	@$(MAKE) --no-print-directory build/rel/bench/ivf_bench
	@bench/install-peers.sh
	$(PY) bench/ivf_peers.py

# BASELINE_SERVER=path adds another build's server (e.g. main's) to the RSS table.
bench-memory: deps-test ## bytes per vector of every index type, in process beside hnswlib, and the server's RSS
	@$(MAKE) --no-print-directory build build/rel/bench/ann_bench build/rel/bench/ivf_bench
	@bench/install-peers.sh
	$(PY) bench/memory.py $(if $(BASELINE_SERVER),--baseline-server $(BASELINE_SERVER))

# N, DIM, SEED choose the data set (cached under ~/.cache/vexlake/scale);
# SCALE_PARTS=ann or startup runs one part.  Not part of make test.
bench-scale: deps-test ## N (1M) seeded 384-d vectors: HNSW/IVF build, memory, QPS at recall 0.95, start-up
	@$(MAKE) --no-print-directory build build/rel/bench/scale_gen build/rel/bench/scale_bench
	N=$(or $(N),1000000) DIM=$(or $(DIM),384) SEED=$(or $(SEED),42) bench/scale.sh

bench-kernels: ## SIMD paths vs scalar, exact scan vs memory bandwidth (one thread)
	@$(MAKE) --no-print-directory build/rel/bench/kernels_bench
	build/rel/bench/kernels_bench

fmt: deps-test ## format the C sources with clang-format
	clang-format -i $$(git ls-files '*.c' '*.h')

fmt-check: deps-test ## fail if any C file is not clang-formatted
	clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

lint: deps-test ## warnings as errors, then cppcheck
	$(MAKE) -B $(REL_OBJ) build/rel/server/main.o EXTRA_CFLAGS=-Werror
	cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,performance,portability \
	  --inline-suppr --suppress=missingIncludeSystem -Iinclude -Isrc src include

verify: ## format check, lint and every test, one after the other
	@$(MAKE) --no-print-directory fmt-check
	@$(MAKE) --no-print-directory lint
	@$(MAKE) --no-print-directory test

doc: deps-test ## Doxygen HTML of include/vexlake.h into docs/api
	doxygen Doxyfile

clean: ## remove build output (never the data directory)
	rm -rf build bin docs/api

-include $(REL_OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(FUZZ_OBJ:.o=.d) $(wildcard build/fuzz/bin/*.d) build/rel/server/main.d build/rel/tools/vl_parquet.d $(wildcard build/*/tools/bench/*.d) $(wildcard build/*/test/*.d)
