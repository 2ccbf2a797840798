// SPDX-License-Identifier: MIT
/*
 * Writes the seed corpus of fuzz_decode: small valid encodings made by the
 * real encoder (dense, ragged, sparse, an empty tile, pruned) and a few
 * corrupt ones.  Usage: gen_corpus DIR
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"

#define MAX_SEED 4096

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd32(void)
{
	state = state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(state >> 32);
}

/* Uniform in [-1, 1) times 2^(-3..4). */
static float rnd(void)
{
	int32_t m = (int32_t)rnd32();

	return ldexpf((float)m / 2147483648.0f, (int)(rnd32() & 7) - 3);
}

static int write_seed(const char *dir, const char *name, const uint8_t *p, size_t len)
{
	char path[4096];
	FILE *f;

	if (len >= MAX_SEED) {
		fprintf(stderr, "gen_corpus: %s: %zu bytes, over the %d byte limit\n", name, len,
			MAX_SEED);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "gen_corpus: %s: %s\n", path, strerror(errno));
		return 1;
	}
	return 0;
}

/* Encode rows x cols values; @zero in [0, 1]: fraction of exact zeros. */
static size_t make(uint8_t *out, uint32_t rows, uint32_t cols, double zero,
		   const struct spt_encode_opts *o)
{
	size_t n = (size_t)rows * cols, len = 0, i;
	float *x = malloc(n * sizeof(float));
	int ret;

	if (!x)
		exit(1);
	for (i = 0; i < n; i++) {
		float v = rnd();

		x[i] = (double)rnd32() / 4294967296.0 < zero ? 0.0f : v;
	}
	ret = spt_ct_encode(x, rows, cols, o, out, MAX_SEED, &len, NULL);
	free(x);
	if (ret) {
		fprintf(stderr, "gen_corpus: encode %ux%u: %s\n", rows, cols, spt_core_strerror(ret));
		exit(1);
	}
	return len;
}

int main(int argc, char **argv)
{
	static uint8_t buf[MAX_SEED], bad[MAX_SEED];
	struct spt_encode_opts o;
	const char *dir;
	size_t len;
	int err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus DIR\n");
		return 2;
	}
	dir = argv[1];

	len = make(buf, 1, 1, 0.0, NULL);
	err |= write_seed(dir, "valid-1x1", buf, len);
	len = make(buf, 1, 3, 0.0, NULL);
	err |= write_seed(dir, "valid-1x3", buf, len);
	len = make(buf, 3, 33, 0.0, NULL);
	err |= write_seed(dir, "valid-3x33-ragged-dense", buf, len);
	len = make(buf, 20, 70, 0.9, NULL);
	err |= write_seed(dir, "valid-20x70-sparse", buf, len);
	len = make(buf, 130, 32, 1.0, NULL);
	err |= write_seed(dir, "valid-130x32-all-zero", buf, len);
	{
		/* three tiles, the middle one with an empty L1 mask */
		uint32_t rows = 96, cols = 64, i;
		float *x = calloc((size_t)rows * cols, sizeof(float));

		if (!x)
			return 1;
		for (i = 0; i < rows * cols; i += 37)
			if (i < 32 * 64 || i >= 64 * 64)
				x[i] = rnd();
		if (spt_ct_encode(x, rows, cols, NULL, buf, MAX_SEED, &len, NULL))
			return 1;
		free(x);
		err |= write_seed(dir, "valid-96x64-empty-tile", buf, len);
	}
	spt_encode_opts_init(&o);
	o.round = SPT_ROUND_STOCHASTIC;
	o.round_seed = 1;
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0.5f;
	o.prune.seed = 2;
	len = make(buf, 17, 45, 0.0, &o);
	err |= write_seed(dir, "valid-17x45-pruned", buf, len);

	/* corrupt variants of a small ragged tensor (1 x 40: one tile, two blocks) */
	len = make(buf, 1, 40, 0.0, NULL);
	err |= write_seed(dir, "valid-1x40", buf, len);
	err |= write_seed(dir, "bad-truncated", buf, len - 1);
	memcpy(bad, buf, len);
	bad[0] ^= 1;
	err |= write_seed(dir, "bad-magic", bad, len);
	memcpy(bad, buf, len);
	bad[len] = 0;
	err |= write_seed(dir, "bad-trailing-byte", bad, len + 1);
	memcpy(bad, buf, len);
	bad[64 + 8 + 8 + 4] = 0xff;	/* first block's exponent */
	err |= write_seed(dir, "bad-exponent-nan", bad, len);
	memcpy(bad, buf, len);
	bad[64 + 8 + 8 + 5] = 0x80;	/* first value -128 */
	err |= write_seed(dir, "bad-value-minus-128", bad, len);
	memcpy(bad, buf, len);
	bad[64 + 8] |= 0x04;		/* L1 bit for a block beyond the last */
	err |= write_seed(dir, "bad-l1-beyond-end", bad, len);
	{
		/*
		 * an image of 16 channels (4 x 24 pixels) whose pixels' exponents
		 * differ: im2col in the compressed domain joins pairs of them
		 */
		uint32_t rows = 96, cols = 16, i;
		float *x = calloc((size_t)rows * cols, sizeof(float));

		if (!x)
			return 1;
		for (i = 0; i < rows * cols; i++)
			if ((i / cols) % 7 != 3 && i % 5 != 2)
				x[i] = rnd() * (float)(1u << (i / cols) % 9) / 16.0f;
		if (spt_ct_encode(x, rows, cols, NULL, buf, MAX_SEED, &len, NULL))
			return 1;
		free(x);
		err |= write_seed(dir, "valid-96x16-image", buf, len);
	}
	return err;
}
