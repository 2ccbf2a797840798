# The kernel module: make module, make lint-driver.
# Built against the installed Debian 6.12 headers (KVER overridable), in a
# copy of the sources under $(BUILD)/module so the work tree stays clean.

# The newest installed 6.12 amd64 headers (tools/deps.sh installs them from
# bookworm-backports); the guest kernel image is fetched at the same version.
ifeq ($(origin KVER),undefined)
KVER        := $(or $(shell ls -d /usr/src/linux-headers-6.12*-amd64 2>/dev/null | \
		 sed 's|.*/linux-headers-||' | sort -V | tail -n 1),6.12.95+deb12-amd64)
endif
KDIR        ?= /lib/modules/$(KVER)/build
MODULE_DIR  := $(BUILD)/module
SPARSE_DIR  := $(BUILD)/module-sparse
DRIVER_SRC  := Kbuild $(sort $(wildcard driver/*.c driver/*.h)) uapi/spt_hw.h uapi/drm/spt_accel.h
SPT_KO      := $(MODULE_DIR)/spt.ko
KSRC_CACHE  ?= $(SPT_CACHE)/linux-source-6.12
CHECKPATCH  := $(KSRC_CACHE)/scripts/checkpatch.pl
# uapi headers cannot use BIT(): checkpatch exempts include/uapi/, we say so.
CHECKPATCH_FLAGS := --no-tree --strict --quiet --max-line-length=100 \
		    --ignore FILE_PATH_CHANGES,SPDX_LICENSE_TAG
KMAKE        = $(MAKE) --no-print-directory -j2 -C $(KDIR) M=$(abspath $1)

# $(call sync_src,dir)
sync_src = mkdir -p $1 && cp --parents -u $(DRIVER_SRC) $1/

$(SPT_KO): $(DRIVER_SRC)
	$(Q)$(call sync_src,$(MODULE_DIR))
	$(Q)$(call KMAKE,$(MODULE_DIR)) modules >$(MODULE_DIR)/build.log 2>&1 || \
		{ cat $(MODULE_DIR)/build.log; exit 1; }
	$(Q)grep -E 'warning|error' $(MODULE_DIR)/build.log || true

module: $(SPT_KO)

$(CHECKPATCH):
	$(Q)mkdir -p $(dir $(KSRC_CACHE))
	$(Q)tar -xJf /usr/src/linux-source-6.12.tar.xz -C $(dir $(KSRC_CACHE)) \
		linux-source-6.12/scripts/checkpatch.pl linux-source-6.12/scripts/spelling.txt \
		linux-source-6.12/scripts/const_structs.checkpatch

# Zero findings from checkpatch --strict and sparse (W=1) or the target fails.
# checkpatch runs in the copy: in a git work tree it leaves a cache file.
lint-driver: $(CHECKPATCH)
	$(Q)$(call sync_src,$(SPARSE_DIR))
	$(Q)cd $(SPARSE_DIR) && $(CHECKPATCH) $(CHECKPATCH_FLAGS) -f $(filter driver/%,$(DRIVER_SRC))
	$(Q)cd $(SPARSE_DIR) && $(CHECKPATCH) $(CHECKPATCH_FLAGS) --ignore BIT_MACRO -f uapi/drm/spt_accel.h
	$(Q)$(call KMAKE,$(SPARSE_DIR)) C=2 CHECK=sparse W=1 modules >$(SPARSE_DIR)/sparse.log 2>&1 || \
		{ cat $(SPARSE_DIR)/sparse.log; exit 1; }
	$(Q)if grep -E 'warning:|error:' $(SPARSE_DIR)/sparse.log; then exit 1; fi
	$(Q)echo "lint-driver: checkpatch and sparse clean"

.PHONY: module lint-driver

# make check: the kernel lint as a suite of its own.
CHECK_SUITES += lint-driver
suite-lint-driver:
	$(Q)mkdir -p $(RESULTS)
	-$(Q)if $(MAKE) --no-print-directory lint-driver; then r="1 0"; else r="0 1"; fi; \
		echo "$$r" >$(RESULTS)/lint-driver

# DKMS source tree: $(DESTDIR)/usr/src/spt-1.0 (see dkms.conf).
DKMS_VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"/\1/p' dkms.conf)
dkms-src:
	$(Q)install -d $(DESTDIR)/usr/src/spt-$(DKMS_VERSION)
	$(Q)cp --parents $(DRIVER_SRC) dkms.conf $(DESTDIR)/usr/src/spt-$(DKMS_VERSION)/

.PHONY: dkms-src
