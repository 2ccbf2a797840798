# SPT: top-level build.  Userspace goes to build/; the kernel module is built
# by Kbuild (make module).  Later parts hook in through mk/*.mk.
#
# Public targets: all deps check check-unit bench demo install lint clean
#                 (mk/*.mk add module qemu image check-device check-guest ...)

BUILD      ?= build
PREFIX     ?= /usr/local
CC         ?= gcc
CLANG      ?= clang
FUZZ_SECONDS ?= 60
# Slow things (QEMU source and build, the guest kernel, linux-source
# scripts) are cached here, outside the work tree.
SPT_CACHE  ?= /var/cache/spt
export SPT_CACHE
V          ?= 0
Q          := $(if $(filter 1,$(V)),,@)

# -ffp-contract=off: no FMA contraction, so every SIMD path and compiler
# produces bit-identical results.
CSTD       := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
OPT        ?= -O2 -g
# OPT stays out of BASE_CFLAGS (expanded here, once) so that a target's own
# OPT below takes effect in the compile rules.
BASE_CFLAGS := $(CSTD) $(WARN) -ffp-contract=off -fno-strict-aliasing \
               -fvisibility=hidden -Iuapi -Icore/include -Iruntime/include
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

ISA_avx2   := -mavx2 -mbmi -mbmi2 -mpopcnt
ISA_avx512 := -mavx2 -mbmi -mbmi2 -mpopcnt -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni

CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt -pthread)
BLAS_LIBS  := -lopenblas
LIBS       := -lm -pthread

all:

# ---- core ------------------------------------------------------------------
CORE_SRC   := $(sort $(wildcard core/src/*.c))
isa_flags   = $(if $(findstring _avx512,$1),$(ISA_avx512),$(if $(findstring _avx2,$1),$(ISA_avx2)))

# $(call objs,variant,sources)
objs = $(patsubst %.c,$(BUILD)/$1/%.o,$2)

$(BUILD)/rel/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) $(BASE_CFLAGS) $(call isa_flags,$<) -fPIC -MMD -MP -c $< -o $@
$(BUILD)/san/%.o: %.c
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) $(BASE_CFLAGS) $(call isa_flags,$<) $(SAN_FLAGS) -MMD -MP -c $< -o $@

# Element-wise loops that GCC vectorises only at -O3 (same results: no
# reassociation is involved).
$(BUILD)/rel/core/src/train_ops.o $(BUILD)/san/core/src/train_ops.o: OPT = -O3 -g
$(BUILD)/rel/core/src/sgd_ct.o $(BUILD)/san/core/src/sgd_ct.o: OPT = -O3 -g
$(BUILD)/rel/core/src/sgd_ct_avx2.o $(BUILD)/san/core/src/sgd_ct_avx2.o: OPT = -O3 -g
$(BUILD)/rel/core/src/bfp8_avx2.o $(BUILD)/san/core/src/bfp8_avx2.o: OPT = -O3 -g

$(BUILD)/lib/libsptcore.a: $(call objs,rel,$(CORE_SRC))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/san/lib/libsptcore.a: $(call objs,san,$(CORE_SRC))
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

all: $(BUILD)/lib/libsptcore.a

include $(sort $(wildcard mk/*.mk))

# ---- the spt command --------------------------------------------------------
SPT_SRC    := $(sort $(wildcard tools/spt/*.c))
SPT_LIBS   ?=
$(BUILD)/bin/spt: $(call objs,rel,$(SPT_SRC)) $(SPT_DEPS) $(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) -o $@ $(filter %.o,$^) $(SPT_LIBS) $(BUILD)/lib/libsptcore.a $(BLAS_LIBS) $(LIBS)
all: $(BUILD)/bin/spt

# ---- unit tests (Check), plain and under ASan+UBSan ------------------------
UNIT_SRC   := $(sort $(wildcard tests/unit/check_*.c))
UNIT_BIN   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
UNIT_SAN   := $(patsubst tests/unit/%.c,$(BUILD)/san/tests/%,$(UNIT_SRC))
UNIT_EXTRA_LIBS ?=
UNIT_EXTRA_SAN_LIBS ?=

$(BUILD)/tests/%: $(BUILD)/rel/tests/unit/%.o $(BUILD)/lib/libsptcore.a $(UNIT_EXTRA_DEPS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) -o $@ $< $(UNIT_EXTRA_LIBS) $(BUILD)/lib/libsptcore.a $(CHECK_LIBS) $(BLAS_LIBS) $(LIBS)
$(BUILD)/san/tests/%: $(BUILD)/san/tests/unit/%.o $(BUILD)/san/lib/libsptcore.a $(UNIT_EXTRA_SAN_DEPS)
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) $(SAN_FLAGS) -o $@ $< $(UNIT_EXTRA_SAN_LIBS) $(BUILD)/san/lib/libsptcore.a $(CHECK_LIBS) $(BLAS_LIBS) $(LIBS)

tests: $(UNIT_BIN) $(UNIT_SAN)

# ---- fuzz targets (libFuzzer, clang) ----------------------------------------
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN   := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
FUZZ_CFLAGS := $(CSTD) -O1 -g -ffp-contract=off -Iuapi -Icore/include \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
$(BUILD)/fuzz/%: tests/fuzz/%.c $(CORE_SRC)
	@mkdir -p $(@D)
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -DSPT_NO_SIMD -o $@ $< $(filter-out %_avx2.c %_avx512.c,$(CORE_SRC)) -lm
fuzz: $(FUZZ_BIN)

# ---- results and the one closing line ---------------------------------------
# Every suite writes $(BUILD)/results/<suite>: "<passed> <failed>".
CHECK_SUITES := unit unit-san cli fuzz lint $(CHECK_SUITES)
RESULTS    := $(BUILD)/results

deps:
	$(Q)bash tools/deps.sh

check-unit: $(UNIT_BIN) $(UNIT_SAN)
	$(Q)mkdir -p $(RESULTS)
	$(Q)bash tests/run-check.sh unit $(RESULTS)/unit $(UNIT_BIN)
	$(Q)bash tests/run-check.sh unit-san $(RESULTS)/unit-san $(UNIT_SAN)

suite-unit: $(UNIT_BIN)
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash tests/run-check.sh unit $(RESULTS)/unit $(UNIT_BIN)
suite-unit-san: $(UNIT_SAN)
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash tests/run-check.sh unit-san $(RESULTS)/unit-san $(UNIT_SAN)
suite-fuzz: $(FUZZ_BIN)
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash tests/run-fuzz.sh $(RESULTS)/fuzz $(FUZZ_SECONDS) $(FUZZ_BIN)
suite-cli: $(BUILD)/bin/spt
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash tests/cli/run.sh $(RESULTS)/cli $(BUILD)/bin/spt
suite-lint:
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash tests/run-lint.sh $(RESULTS)/lint

check: deps
	$(Q)rm -rf $(RESULTS)
	$(Q)$(MAKE) --no-print-directory all
	-$(Q)$(MAKE) --no-print-directory -k $(addprefix suite-,$(CHECK_SUITES))
	$(Q)bash tests/summary.sh $(RESULTS) $(CHECK_SUITES)

lint: suite-lint
	$(Q)bash tests/summary.sh $(RESULTS) lint

bench: all
	$(Q)$(BUILD)/bin/spt bench core
	$(Q)$(BUILD)/bin/spt bench train

demo: deps all
	$(Q)bash tools/demo.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/spt
	install -m 0755 $(BUILD)/bin/spt $(DESTDIR)$(PREFIX)/bin/spt
	install -m 0644 $(BUILD)/lib/libsptcore.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 core/include/spt/core.h $(DESTDIR)$(PREFIX)/include/spt/core.h
	install -m 0644 uapi/spt_format.h $(DESTDIR)$(PREFIX)/include/spt_format.h
	$(INSTALL_EXTRA)

clean:
	rm -rf $(BUILD)

.PHONY: all deps check check-unit bench demo install lint clean tests fuzz \
	$(addprefix suite-,$(CHECK_SUITES))
.SECONDARY:
.DELETE_ON_ERROR:

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
