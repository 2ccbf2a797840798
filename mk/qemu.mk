# The SPT device in QEMU: build, qtest suite, benchmark.
#   make qemu          build (or reuse from the cache) qemu-system-x86_64 with -device spt
#   make check-device  run the device's qtest suite (TAP), results in $(RESULTS)/device
#   make bench-device  device overhead: GEMM job on the device vs the same spt_gemm call
# The binary lives outside the tree: $(QEMU_BIN) (tools/qemu/README.md).

QEMU_BUILD_SH := tools/qemu/build.sh
QEMU_BIN   := $(shell bash $(QEMU_BUILD_SH) --print-path)
QEMU_QTEST := $(shell bash $(QEMU_BUILD_SH) --print-test)
QEMU_FW    := -L /usr/share/qemu -L /usr/share/seabios
export SPT_QEMU_FW := $(QEMU_FW)

CHECK_SUITES += device

qemu:
	$(Q)bash $(QEMU_BUILD_SH)

# One TAP run; counts "ok"/"not ok" lines into $(RESULTS)/device.
define run_device_tests
	$(Q)mkdir -p $(RESULTS)
	$(Q)bash tools/qemu/run-qtest.sh $(QEMU_BIN) $(QEMU_QTEST) $(RESULTS)/device
endef

check-device: qemu
	$(run_device_tests)

suite-device:
	$(Q)mkdir -p $(RESULTS)
	-$(Q)bash $(QEMU_BUILD_SH) >$(RESULTS)/qemu-build.log 2>&1 || \
		{ echo "make qemu failed:"; tail -n 40 $(RESULTS)/qemu-build.log; }
	-$(run_device_tests)

# SPT_BENCH_SIZE=MxNxK picks the GEMM (default 256x512x1024).  Run at a
# raised priority when allowed, so other load on the machine disturbs the
# thread hand-offs of the device path less.
bench-device: qemu
	$(Q)nice_cmd=$$(nice -n -10 true 2>/dev/null && echo "nice -n -10"); \
	SPT_BENCH=1 QTEST_QEMU_BINARY=$(QEMU_BIN) $$nice_cmd $(QEMU_QTEST) \
		-p /x86_64/spt/bench --tap | grep -E '^(# spt bench|ok|not ok)' 

.PHONY: qemu check-device suite-device bench-device

# The fuzz target #includes the device's QEMU-independent sources.
$(BUILD)/fuzz/fuzz_cmdstream: $(wildcard qemu-device/hw/misc/spt/spt-*.c \
	qemu-device/hw/misc/spt/spt-*.h uapi/*.h)
