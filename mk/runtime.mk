# libspt: the runtime library (runtime/), its pkg-config file and the
# `spt train` smoke suite.  Included by the top-level Makefile.

RT_SRC     := $(sort $(wildcard runtime/src/*.c))
RT_OBJ     := $(call objs,rel,$(RT_SRC))
RT_SAN_OBJ := $(call objs,san,$(RT_SRC))
RT_SONAME  := libspt.so.0
RT_VERSION := 0.2.0
RT_LDLIBS  := -lz -ldrm
RT_CFLAGS  := $(shell pkg-config --cflags libdrm 2>/dev/null || echo -I/usr/include/libdrm)

$(RT_OBJ) $(RT_SAN_OBJ): BASE_CFLAGS += $(RT_CFLAGS)
# spt bench device speaks to the driver through libdrm too.
$(call objs,rel,tools/spt/bench_device.c) $(call objs,san,tools/spt/bench_device.c): \
	BASE_CFLAGS += $(RT_CFLAGS)

$(BUILD)/lib/libspt.a: $(RT_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^
$(BUILD)/san/lib/libspt.a: $(RT_SAN_OBJ)
	@mkdir -p $(@D)
	$(Q)rm -f $@ && ar rcs $@ $^

# The shared library carries libsptcore inside it; only spt_* names listed in
# the version script are exported.
$(BUILD)/lib/$(RT_SONAME): $(RT_OBJ) $(BUILD)/lib/libsptcore.a runtime/libspt.map
	@mkdir -p $(@D)
	$(Q)$(CC) -shared -Wl,-soname,$(RT_SONAME) -Wl,--version-script=runtime/libspt.map \
		-Wl,--no-undefined -o $@ $(RT_OBJ) $(BUILD)/lib/libsptcore.a \
		$(RT_LDLIBS) $(BLAS_LIBS) $(LIBS)
$(BUILD)/lib/libspt.so: $(BUILD)/lib/$(RT_SONAME)
	$(Q)ln -sf $(RT_SONAME) $@

$(BUILD)/lib/spt.pc: runtime/spt.pc.in
	@mkdir -p $(@D)
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(RT_VERSION)|g' $< >$@

all: $(BUILD)/lib/libspt.a $(BUILD)/lib/libspt.so $(BUILD)/lib/spt.pc

# spt links libspt statically; unit tests get it too.
SPT_DEPS += $(BUILD)/lib/libspt.a
SPT_LIBS += $(BUILD)/lib/libspt.a $(RT_LDLIBS)
UNIT_EXTRA_DEPS += $(BUILD)/lib/libspt.a
UNIT_EXTRA_LIBS += $(BUILD)/lib/libspt.a $(RT_LDLIBS)
UNIT_EXTRA_SAN_DEPS += $(BUILD)/san/lib/libspt.a
UNIT_EXTRA_SAN_LIBS += $(BUILD)/san/lib/libspt.a $(RT_LDLIBS)

define RT_INSTALL
	install -m 0644 $(BUILD)/lib/libspt.a $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(BUILD)/lib/$(RT_SONAME) $(DESTDIR)$(PREFIX)/lib/$(RT_SONAME)
	ln -sf $(RT_SONAME) $(DESTDIR)$(PREFIX)/lib/libspt.so
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(RT_VERSION)|g' runtime/spt.pc.in \
		>$(DESTDIR)$(PREFIX)/lib/pkgconfig/spt.pc
	install -m 0644 runtime/include/spt/spt.h $(DESTDIR)$(PREFIX)/include/spt/spt.h
	install -d $(DESTDIR)$(PREFIX)/share/doc/spt/examples
	install -m 0644 runtime/examples/train_mlp.c $(DESTDIR)$(PREFIX)/share/doc/spt/examples/
endef
INSTALL_EXTRA += $(RT_INSTALL)

# ---- make check: train a small model on the CPU backend ----------------------
TRAIN_SMOKE_ARGS ?= --model mlp --epochs 1 --batch 64 --limit-train 19200 \
	--limit-test 2000 --target-sparsity 0.9 --lr 0.05 --json
CHECK_SUITES += train
TRAIN_SMOKE_MIN ?= 0.70
TRAIN_SMOKE_SPARSITY ?= 0.80
# Two checks on the JSON summary: test_accuracy >= TRAIN_SMOKE_MIN (chance is
# 0.10) and mean_interim_sparsity >= TRAIN_SMOKE_SPARSITY.  Writes
# "<passed> <failed>" like every suite.
suite-train: $(BUILD)/bin/spt
	$(Q)mkdir -p $(RESULTS)
	-$(Q)out=$$(OPENBLAS_NUM_THREADS=1 $(BUILD)/bin/spt train $(TRAIN_SMOKE_ARGS) 2>$(RESULTS)/train.log); \
	acc=$$(printf '%s' "$$out" | sed -n 's/.*"test_accuracy": *\([0-9.]*\).*/\1/p'); \
	sp=$$(printf '%s' "$$out" | sed -n 's/.*"mean_interim_sparsity": *\([0-9.]*\).*/\1/p'); \
	p=0; f=0; \
	if [ -n "$$acc" ] && awk -v a="$$acc" -v m=$(TRAIN_SMOKE_MIN) 'BEGIN { exit !(a >= m) }'; then \
		p=$$((p + 1)); r=pass; else f=$$((f + 1)); r=FAIL; fi; \
	printf '%-10s %-28s %s\n' train spt-train-accuracy "test_accuracy '$$acc', expected >= $(TRAIN_SMOKE_MIN): $$r"; \
	if [ -n "$$sp" ] && awk -v a="$$sp" -v m=$(TRAIN_SMOKE_SPARSITY) 'BEGIN { exit !(a >= m) }'; then \
		p=$$((p + 1)); r=pass; else f=$$((f + 1)); r=FAIL; fi; \
	printf '%-10s %-28s %s\n' train spt-train-sparsity "mean_interim_sparsity '$$sp', expected >= $(TRAIN_SMOKE_SPARSITY): $$r"; \
	[ $$f -eq 0 ] || tail -n 20 $(RESULTS)/train.log; \
	echo "$$p $$f" >$(RESULTS)/train

.PHONY: suite-train
