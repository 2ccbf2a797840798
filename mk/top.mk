# spt top (tools/spt/top.c): the driver's generic netlink family through
# libnl-genl-3.  A static link of bin/spt (the guest's copy) needs
# $(TOP_NL_STATIC_LIBS).  tests/guest/spt_top_test links top.c itself and
# runs it as "spt_top_test top ARGS".

TOP_NL_CFLAGS := $(shell pkg-config --cflags libnl-genl-3.0)
TOP_NL_LIBS   := $(shell pkg-config --libs libnl-genl-3.0)
TOP_NL_STATIC_LIBS := $(shell pkg-config --static --libs libnl-genl-3.0)

SPT_LIBS += $(TOP_NL_LIBS)
$(BUILD)/rel/tools/spt/top.o: BASE_CFLAGS += $(TOP_NL_CFLAGS)
$(BUILD)/san/tools/spt/top.o: BASE_CFLAGS += $(TOP_NL_CFLAGS)

$(BUILD)/guest/spt_top_test: tests/guest/spt_top_test.c tools/spt/top.c tools/spt/spt.h \
		driver/spt_genl.h tests/guest/spt_test.h uapi/drm/spt_accel.h uapi/spt_hw.h \
		$(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(GUEST_CFLAGS) $(TOP_NL_CFLAGS) -o $@ tests/guest/spt_top_test.c tools/spt/top.c \
		$(GUEST_LIBS) $(TOP_NL_STATIC_LIBS)
