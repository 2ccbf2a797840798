# Seed corpus of the fuzz targets, made by the real encoder
# (tests/fuzz/gen_corpus.c for fuzz_decode, qemu-device/fuzz/gen-seeds.c for
# fuzz_cmdstream).  The seeds are committed; regenerate them with
# 'make fuzz-corpus' after a format or command-stream change.
$(BUILD)/tools/gen_corpus: tests/fuzz/gen_corpus.c $(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(OPT) $(BASE_CFLAGS) -o $@ $< $(BUILD)/lib/libsptcore.a $(BLAS_LIBS) $(LIBS)

$(BUILD)/tools/gen-seeds: qemu-device/fuzz/gen-seeds.c $(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(CSTD) -O2 -ffp-contract=off -Iuapi -Icore/include -o $@ $< \
		$(BUILD)/lib/libsptcore.a $(LIBS)

fuzz-corpus: $(BUILD)/tools/gen_corpus $(BUILD)/tools/gen-seeds
	$(Q)mkdir -p tests/fuzz/corpus/fuzz_decode tests/fuzz/corpus/fuzz_cmdstream
	$(Q)$(BUILD)/tools/gen_corpus tests/fuzz/corpus/fuzz_decode
	$(Q)$(BUILD)/tools/gen-seeds tests/fuzz/corpus/fuzz_cmdstream

.PHONY: fuzz-corpus
