# Seed corpus of the fuzz targets, made by the real encoder
# (tests/fuzz/gen_corpus.c).  The seeds are committed; regenerate them with
# 'make fuzz-corpus' after a format change.
$(BUILD)/tools/gen_corpus: tests/fuzz/gen_corpus.c $(BUILD)/lib/libsptcore.a
	@mkdir -p $(@D)
	$(Q)$(CC) $(BASE_CFLAGS) -o $@ $< $(BUILD)/lib/libsptcore.a $(BLAS_LIBS) $(LIBS)

fuzz-corpus: $(BUILD)/tools/gen_corpus
	$(Q)mkdir -p tests/fuzz/corpus/fuzz_decode
	$(Q)$< tests/fuzz/corpus/fuzz_decode

.PHONY: fuzz-corpus
