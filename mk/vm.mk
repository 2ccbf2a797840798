# Guest image and in-guest tests: make image, make check-guest.
#
# The image (initramfs) holds busybox-static, Debian's 6.12 DRM modules,
# spt.ko and the statically linked test programs of tests/guest/; the
# kernel (PVH vmlinux) comes from Debian's linux-image package, downloaded
# into $(VM_CACHE) (never installed).  tools/vm/run.sh boots it in the
# project's QEMU (make qemu) with -device spt.

VM_DIR       := $(BUILD)/vm
VM_CACHE     ?= $(SPT_CACHE)/kernel-$(KVER)
VM_TIMEOUT   ?= 900
GUEST_SRC    := $(sort $(wildcard tests/guest/spt_*_test.c) tests/guest/spt_smoke.c tests/guest/spt_unplug_load.c)
GUEST_BIN    := $(patsubst tests/guest/%.c,$(BUILD)/guest/%,$(GUEST_SRC))
GUEST_SCRIPTS := $(sort $(wildcard tests/guest/*.sh)) tests/guest/run-all
GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -static \
		-Iuapi -Icore/include -I/usr/include/libdrm

GUEST_LIBS    = $(BUILD)/lib/libsptcore.a -lm -pthread

$(BUILD)/guest/spt_genl_test: GUEST_CFLAGS += $(shell pkg-config --cflags libnl-genl-3.0)
$(BUILD)/guest/spt_genl_test: GUEST_LIBS += $(shell pkg-config --static --libs libnl-genl-3.0)
$(BUILD)/guest/spt_genl_test: driver/spt_genl.h

$(BUILD)/guest/%: tests/guest/%.c tests/guest/spt_test.h uapi/drm/spt_accel.h uapi/spt_hw.h $(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(GUEST_CFLAGS) -o $@ $< $(GUEST_LIBS)

# The runtime in the guest: a static bin/spt (installed as /bin/spt) and
# tests/guest/spt_runtime_test link libspt, libdrm, zlib and OpenBLAS
# statically; the image also carries Fashion-MNIST (GUEST_DATA, Debian's
# dataset-fashion-mnist, as /usr/share/datasets/fashion-mnist) when present.
GUEST_DATA    ?= /usr/share/datasets/fashion-mnist
GUEST_RT_LIBS  = $(BUILD)/lib/libspt.a $(BUILD)/lib/libsptcore.a $(TOP_NL_STATIC_LIBS) \
		 -ldrm -lz $(BLAS_LIBS) -lm -pthread
GUEST_SPT     := $(BUILD)/guest/bin/spt

$(BUILD)/guest/spt_runtime_test: GUEST_CFLAGS += -Iruntime/include -Iruntime/src
$(BUILD)/guest/spt_runtime_test: GUEST_LIBS = $(GUEST_RT_LIBS)
$(BUILD)/guest/spt_runtime_test: $(BUILD)/lib/libspt.a

$(GUEST_SPT): $(call objs,rel,$(sort $(wildcard tools/spt/*.c))) $(BUILD)/lib/libspt.a \
		$(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) -static -o $@ $(filter %.o,$^) $(GUEST_RT_LIBS)

guest-tests: $(GUEST_BIN) $(GUEST_SPT)

$(VM_DIR)/initramfs.cpio.gz: $(SPT_KO) $(GUEST_BIN) $(GUEST_SPT) $(GUEST_SCRIPTS) tools/vm/init tools/vm/mkimage.sh tools/vm/fetch-kernel.sh
	$(Q)SPT_KERNEL_CACHE=$(VM_CACHE) SPT_GUEST_SPT=$(GUEST_SPT) SPT_GUEST_DATA=$(GUEST_DATA) \
		bash tools/vm/mkimage.sh $(VM_DIR) $(KVER) $(SPT_KO) $(GUEST_BIN) $(GUEST_SCRIPTS)

image: $(VM_DIR)/initramfs.cpio.gz

# One fresh guest runs tests/guest/run-all; KTAP streams to the terminal and
# to $(VM_DIR)/ktap.log; results: "<passed> <failed>" in $(RESULTS)/guest.
# The project's QEMU (mk/qemu.mk); run.sh finds it the same way.
SPT_QEMU ?= $(QEMU_BIN)
export SPT_QEMU

check-guest: image qemu
	$(Q)mkdir -p $(RESULTS)
	$(Q)bash tools/vm/check.sh $(VM_DIR) $(RESULTS)/guest $(VM_TIMEOUT)

suite-guest:
	$(Q)mkdir -p $(RESULTS)
	-$(Q)$(MAKE) --no-print-directory image qemu >/dev/null && \
		bash tools/vm/check.sh $(VM_DIR) $(RESULTS)/guest $(VM_TIMEOUT)

# spt bench device in a fresh guest: null-job and GEMM-job round trips.
# BENCH_GUEST_ARGS=--json for the JSON object.
BENCH_GUEST_ARGS ?=
bench-guest: image qemu
	$(Q)bash tools/vm/run.sh -i $(VM_DIR) -t $(VM_TIMEOUT) -- /bin/spt bench device $(BENCH_GUEST_ARGS)

# device_del with jobs in flight must not oops (not part of check-guest:
# it needs the monitor and takes a guest of its own).
check-unplug: image qemu
	$(Q)bash tools/vm/unplug-test.sh $(VM_DIR)

CHECK_SUITES += guest

.PHONY: image guest-tests check-guest suite-guest bench-guest check-unplug
