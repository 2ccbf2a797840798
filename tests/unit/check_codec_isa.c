/* SPDX-License-Identifier: MIT */
/* Every SIMD path of the codec gives the scalar path's bytes and floats. */
#include <check.h>
#include <errno.h>
#include <fenv.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"

static uint64_t rng_state = 88172645463325252ull;

static double urand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (double)(rng_state >> 11) * 0x1p-53;
}

/* Awkward data: exact zeros, -0, subnormals, ties, huge and tiny magnitudes. */
static void fill(float *x, size_t n, double sparsity, int kind)
{
	size_t i;

	for (i = 0; i < n; i++) {
		double u = urand();

		if (u < sparsity) {
			x[i] = (i & 1) ? -0.0f : 0.0f;
			continue;
		}
		switch (kind) {
		case 0:
			x[i] = (float)(urand() * 4.0 - 2.0);
			break;
		case 1:	/* ties: k + 0.5 steps of 2^-6 under a block max of 1 */
			x[i] = (float)((double)((int)(urand() * 120) - 60) + 0.5) / 64.0f;
			break;
		case 2:
			x[i] = (float)(urand() - 0.5) * 1e-39f;	/* subnormal */
			break;
		case 3:
			x[i] = (float)(urand() - 0.5) * 3e38f;
			break;
		default:
			x[i] = (float)ldexp(urand() - 0.5, (int)(urand() * 60) - 30);
			break;
		}
	}
}

struct result {
	unsigned char *buf;
	size_t len;
	struct spt_tensor_stats st;
	float *dec;
};

static void run(enum spt_isa isa, const float *x, uint32_t r, uint32_t c,
		const struct spt_encode_opts *o, struct result *res)
{
	size_t cap = spt_ct_bound(r, c);

	ck_assert_int_eq(spt_core_set_isa(isa), 0);
	res->buf = malloc(cap);
	res->dec = malloc((size_t)r * c * sizeof(float));
	ck_assert_int_eq(spt_ct_encode(x, r, c, o, res->buf, cap, &res->len, &res->st), 0);
	ck_assert_int_eq(spt_ct_decode(res->buf, res->len, res->dec, (size_t)r * c), 0);
}

START_TEST(test_simd_paths_match_scalar)
{
	static const uint32_t shapes[][2] = { { 1, 32 }, { 7, 64 }, { 33, 100 },
					      { 64, 1024 }, { 3, 31 }, { 129, 33 } };
	static const double sparsities[] = { 0.0, 0.5, 0.9, 0.99 };
	enum spt_isa isa;

	for (isa = SPT_ISA_AVX2; isa <= SPT_ISA_AVX512; isa++) {
		size_t s, p, kind, prune;

		if (!spt_core_isa_supported(isa))
			continue;
		for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (p = 0; p < 4; p++)
		for (kind = 0; kind < 5; kind++)
		for (prune = 0; prune < 2; prune++) {
			uint32_t r = shapes[s][0], c = shapes[s][1];
			float *x = malloc((size_t)r * c * sizeof(float));
			struct spt_encode_opts o;
			struct result a, b;

			fill(x, (size_t)r * c, sparsities[p], (int)kind);
			spt_encode_opts_init(&o);
			if (prune) {
				o.prune.mode = SPT_PRUNE_DETERMINISTIC;
				o.prune.tau = kind == 2 ? 1e-40f : kind == 3 ? 1e37f : 0.3f;
			}
			run(SPT_ISA_SCALAR, x, r, c, &o, &a);
			run(isa, x, r, c, &o, &b);
			ck_assert_msg(a.len == b.len && !memcmp(a.buf, b.buf, a.len),
				      "%s: encoded bytes differ from scalar (%ux%u, sparsity %.2f, kind %zu, prune %zu)",
				      spt_core_isa_name(isa), r, c, sparsities[p], kind, prune);
			ck_assert(!memcmp(a.dec, b.dec, (size_t)r * c * sizeof(float)));
			ck_assert(a.st.natural_zeros == b.st.natural_zeros);
			ck_assert(a.st.pruned == b.st.pruned);
			ck_assert(a.st.underflow == b.st.underflow);
			ck_assert(a.st.nonzeros == b.st.nonzeros);
			ck_assert_msg(a.st.sum_abs == b.st.sum_abs && a.st.sum_abs_kept == b.st.sum_abs_kept,
				      "sums differ: %.17g/%.17g vs %.17g/%.17g", a.st.sum_abs,
				      a.st.sum_abs_kept, b.st.sum_abs, b.st.sum_abs_kept);
			free(a.buf);
			free(a.dec);
			free(b.buf);
			free(b.dec);
			free(x);
		}
	}
	spt_core_set_isa(SPT_ISA_AUTO);
}
END_TEST

START_TEST(test_simd_encode_rejects_nan_like_scalar)
{
	float x[64];
	unsigned char buf[1024];
	size_t len;
	int i;

	for (i = 0; i < 64; i++)
		x[i] = (float)i;
	x[40] = NAN;
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
	ck_assert_int_eq(spt_ct_encode(x, 1, 64, NULL, buf, sizeof(buf), &len, NULL), -EDOM);
	spt_core_set_isa(SPT_ISA_AUTO);
	ck_assert_int_eq(spt_ct_encode(x, 1, 64, NULL, buf, sizeof(buf), &len, NULL), -EDOM);
	x[40] = -INFINITY;
	ck_assert_int_eq(spt_ct_encode(x, 2, 32, NULL, buf, sizeof(buf), &len, NULL), -EDOM);
}
END_TEST

START_TEST(test_simd_encode_tight_capacity)
{
	/* The packer writes 8-byte chunks: with an exact-size buffer it must
	 * fall back and never write past the end. */
	float x[4096];
	unsigned char *buf, *ref;
	size_t len, len2, cap = spt_ct_bound(64, 64);
	int i;

	for (i = 0; i < 4096; i++)
		x[i] = (float)((i * 37) % 101) - 50.0f;
	ref = malloc(cap);
	ck_assert_int_eq(spt_ct_encode(x, 64, 64, NULL, ref, cap, &len, NULL), 0);
	buf = malloc(len + 16);
	memset(buf, 0xa5, len + 16);
	ck_assert_int_eq(spt_ct_encode(x, 64, 64, NULL, buf, len, &len2, NULL), 0);
	ck_assert_uint_eq(len, len2);
	ck_assert(!memcmp(buf, ref, len));
	for (i = 0; i < 16; i++)
		ck_assert_uint_eq(buf[len + (size_t)i], 0xa5);
	ck_assert_int_eq(spt_ct_encode(x, 64, 64, NULL, buf, len - 1, &len2, NULL), -ENOSPC);
	free(buf);
	free(ref);
}
END_TEST

/* Every SIMD path the CPU has, SCALAR excluded. */
static int next_isa(enum spt_isa *isa)
{
	while (++*isa <= SPT_ISA_AVX512)
		if (spt_core_isa_supported(*isa))
			return 1;
	return 0;
}

static void compare_encodings(const float *x, uint32_t r, uint32_t c,
			      const struct spt_encode_opts *o, const char *what)
{
	enum spt_isa isa = SPT_ISA_SCALAR;
	struct result a, b;

	run(SPT_ISA_SCALAR, x, r, c, o, &a);
	while (next_isa(&isa)) {
		run(isa, x, r, c, o, &b);
		ck_assert_msg(a.len == b.len && !memcmp(a.buf, b.buf, a.len),
			      "%s: %s: %ux%u: encoded bytes differ", what, spt_core_isa_name(isa), r, c);
		ck_assert_msg(!memcmp(a.dec, b.dec, (size_t)r * c * sizeof(float)),
			      "%s: %s: %ux%u: decoded floats differ", what, spt_core_isa_name(isa), r, c);
		ck_assert_msg(!memcmp(&a.st, &b.st, sizeof(a.st)), "%s: %s: statistics differ",
			      what, spt_core_isa_name(isa));
		free(b.buf);
		free(b.dec);
	}
	free(a.buf);
	free(a.dec);
	spt_core_set_isa(SPT_ISA_AUTO);
}

START_TEST(test_simd_more_shapes_and_options)
{
	/* full/partial tiles, ragged columns, one block per row, long rows */
	static const uint32_t shapes[][2] = { { 1, 1 }, { 2, 2048 }, { 8, 256 }, { 9, 96 },
					      { 65, 32 }, { 3, 4100 }, { 200, 7 }, { 17, 63 },
					      { 130, 64 } };
	static const double sparsities[] = { 0.0, 0.3, 0.9, 0.97, 1.0 };
	size_t s, p, kind;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
	for (p = 0; p < sizeof(sparsities) / sizeof(sparsities[0]); p++)
	for (kind = 0; kind < 5; kind++) {
		uint32_t r = shapes[s][0], c = shapes[s][1];
		float *x = malloc((size_t)r * c * sizeof(float));
		struct spt_encode_opts o;

		fill(x, (size_t)r * c, sparsities[p], (int)kind);
		spt_encode_opts_init(&o);
		compare_encodings(x, r, c, &o, "default");
		o.prune.mode = SPT_PRUNE_DETERMINISTIC;
		o.prune.tau = kind == 2 ? 3e-40f : kind == 3 ? 5e37f : 0.7f;
		compare_encodings(x, r, c, &o, "pruned");
		o.prune.tau = 0.0f;
		compare_encodings(x, r, c, &o, "tau 0");
		free(x);
	}
}
END_TEST

/*
 * The re-blocked transpose (its own transposed decode per ISA): the same bytes
 * and statistics as on the scalar path, for awkward values, row counts that
 * leave a short last group of rows, ragged rows and options that re-prune.
 */
START_TEST(test_simd_transpose_matches_scalar)
{
	static const uint32_t shapes[][2] = { { 1, 1 }, { 8, 8 }, { 9, 96 }, { 17, 63 },
					      { 200, 7 }, { 65, 129 }, { 3, 4100 } };
	static const double sparsities[] = { 0.0, 0.5, 0.97, 1.0 };
	size_t s, p, kind, opt;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
	for (p = 0; p < sizeof(sparsities) / sizeof(sparsities[0]); p++)
	for (kind = 0; kind < 5; kind++)
	for (opt = 0; opt < 2; opt++) {
		uint32_t r = shapes[s][0], c = shapes[s][1];
		size_t cap = spt_ct_bound(c, r), la, lt_a, lt_b;
		float *x = malloc((size_t)r * c * sizeof(float));
		unsigned char *a = malloc(spt_ct_bound(r, c)), *ta = malloc(cap), *tb = malloc(cap);
		struct spt_tensor_stats sa, sb;
		struct spt_encode_opts o;
		enum spt_isa isa = SPT_ISA_SCALAR;

		ck_assert(x && a && ta && tb);
		fill(x, (size_t)r * c, sparsities[p], (int)kind);
		spt_encode_opts_init(&o);
		ck_assert_int_eq(spt_ct_encode(x, r, c, &o, a, spt_ct_bound(r, c), &la, NULL), 0);
		if (opt) {
			o.prune.mode = SPT_PRUNE_DETERMINISTIC;
			o.prune.tau = kind == 2 ? 3e-40f : kind == 3 ? 5e37f : 0.7f;
		}
		while (next_isa(&isa)) {
			/* SIMD first: its scratch must not inherit the scalar result */
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			ck_assert_int_eq(spt_ct_transpose(a, la, &o, tb, cap, &lt_b, &sb), 0);
			ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
			ck_assert_int_eq(spt_ct_transpose(a, la, &o, ta, cap, &lt_a, &sa), 0);
			ck_assert_msg(lt_a == lt_b && !memcmp(ta, tb, lt_a),
				      "%s: %ux%u transpose: bytes differ from scalar",
				      spt_core_isa_name(isa), r, c);
			ck_assert_msg(!memcmp(&sa, &sb, sizeof(sa)),
				      "%s: %ux%u transpose: statistics differ from scalar",
				      spt_core_isa_name(isa), r, c);
		}
		spt_core_set_isa(SPT_ISA_AUTO);
		free(x);
		free(a);
		free(ta);
		free(tb);
	}
}
END_TEST

/*
 * Blocks whose maximum is subnormal (E = -127): some quantise to all zeros
 * and are absent although they hold nonzero inputs; next to normal blocks,
 * at every position of a group of blocks, in full and ragged blocks.
 */
START_TEST(test_simd_subnormal_blocks)
{
	static const uint32_t colss[] = { 32 * 64, 32 * 9, 32 * 9 + 5 };
	size_t ci;

	for (ci = 0; ci < sizeof(colss) / sizeof(colss[0]); ci++) {
		uint32_t r = 5, c = colss[ci];
		size_t n = (size_t)r * c, i;
		float *x = malloc(n * sizeof(float));
		struct spt_encode_opts o;

		for (i = 0; i < n; i++) {
			size_t blk = i / 32;

			switch (blk % 5) {
			case 0:	/* vanishes: max 2^-135 -> k = round(0.25) = 0 */
				x[i] = (i % 3) ? 0x1p-135f : -0x1p-137f;
				break;
			case 1:	/* subnormal max that survives in part */
				x[i] = (float)((int)(i % 7) - 3) * 0x1p-131f;
				break;
			case 2:	/* normal block with a few subnormal members */
				x[i] = (i % 4) ? 1.5f : 1e-41f;
				break;
			case 3:
				x[i] = (i % 2) ? -0.0f : 0x1p-149f;
				break;
			default:
				x[i] = (float)(i % 11) - 5.0f;
				break;
			}
		}
		spt_encode_opts_init(&o);
		compare_encodings(x, r, c, &o, "subnormal");
		o.prune.mode = SPT_PRUNE_DETERMINISTIC;
		o.prune.tau = 0x1p-136f;
		compare_encodings(x, r, c, &o, "subnormal pruned");
		free(x);
	}
}
END_TEST

/* -EDOM from every position: each block of a group, a ragged block. */
START_TEST(test_simd_nan_every_position)
{
	uint32_t r = 3, c = 32 * 9 + 7;
	size_t n = (size_t)r * c, pos, cap = spt_ct_bound(r, c), len;
	float *x = malloc(n * sizeof(float));
	unsigned char *buf = malloc(cap);
	enum spt_isa isa = SPT_ISA_SCALAR;

	while (next_isa(&isa)) {
		for (pos = 0; pos < n; pos += 13) {
			struct spt_encode_opts o;
			int v;

			fill(x, n, 0.5, 0);
			x[pos] = (pos & 1) ? NAN : -INFINITY;
			spt_encode_opts_init(&o);
			for (v = 0; v < 2; v++) {
				ck_assert_int_eq(spt_core_set_isa(isa), 0);
				ck_assert_int_eq(spt_ct_encode(x, r, c, &o, buf, cap, &len, NULL), -EDOM);
				ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
				ck_assert_int_eq(spt_ct_encode(x, r, c, &o, buf, cap, &len, NULL), -EDOM);
				o.prune.mode = SPT_PRUNE_DETERMINISTIC;
				o.prune.tau = 1e30f;	/* NaN/Inf are never pruned */
			}
		}
	}
	spt_core_set_isa(SPT_ISA_AUTO);
	free(x);
	free(buf);
}
END_TEST

/* Every capacity below the size: the same error, nothing written past cap. */
START_TEST(test_simd_every_capacity)
{
	static const uint32_t shapes[][2] = { { 40, 64 }, { 9, 100 } };
	size_t s;

	for (s = 0; s < 2; s++) {
		uint32_t r = shapes[s][0], c = shapes[s][1];
		size_t n = (size_t)r * c, len, cap, got;
		float *x = malloc(n * sizeof(float));
		unsigned char *ref = malloc(spt_ct_bound(r, c)), *buf;
		enum spt_isa isa = SPT_ISA_SCALAR;

		fill(x, n, 0.6, 0);
		ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
		ck_assert_int_eq(spt_ct_encode(x, r, c, NULL, ref, spt_ct_bound(r, c), &len, NULL), 0);
		buf = malloc(len + 64);
		while (next_isa(&isa)) {
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			for (cap = 0; cap <= len; cap++) {
				size_t i;
				int ret;

				memset(buf, 0xa5, len + 64);
				ret = spt_ct_encode(x, r, c, NULL, buf, cap, &got, NULL);
				ck_assert_int_eq(ret, cap < len ? -ENOSPC : 0);
				for (i = cap; i < len + 64; i++)
					ck_assert_uint_eq(buf[i], 0xa5);
				if (!ret)
					ck_assert(got == len && !memcmp(buf, ref, len));
			}
		}
		spt_core_set_isa(SPT_ISA_AUTO);
		free(buf);
		free(ref);
		free(x);
	}
}
END_TEST

/* Options of mode @mode (0..5) for data of kind @kind: every rounding and pruning pairing. */
static void mode_opts(struct spt_encode_opts *o, unsigned int mode, size_t kind, uint64_t seed)
{
	spt_encode_opts_init(o);
	o->round = mode % 2 ? SPT_ROUND_STOCHASTIC : SPT_ROUND_EVEN;
	o->round_seed = seed;
	if (mode >= 2) {
		o->prune.mode = mode >= 4 ? SPT_PRUNE_DETERMINISTIC : SPT_PRUNE_STOCHASTIC;
		o->prune.seed = seed * 7 + 1;
		o->prune.tau = kind == 2 ? 3e-40f : kind == 3 ? 5e37f : 0.7f;
	}
}

/* The transpose of the encoding of @x on @isa, under @o; bytes and statistics. */
static void transpose_isa(enum spt_isa isa, const unsigned char *a, size_t la, uint32_t r,
			  uint32_t c, const struct spt_encode_opts *o, struct result *res)
{
	size_t cap = spt_ct_bound(c, r);

	ck_assert_int_eq(spt_core_set_isa(isa), 0);
	res->buf = malloc(cap);
	res->dec = NULL;
	ck_assert(res->buf);
	ck_assert_int_eq(spt_ct_transpose(a, la, o, res->buf, cap, &res->len, &res->st), 0);
}

/*
 * Rows narrower than a block (every block ragged) and ragged last blocks:
 * widths 1..70, 144, 288, 300 and 784, short and tall, in every rounding and pruning
 * mode: every ISA gives the scalar bytes, decoded floats (into a buffer of
 * exactly rows x cols floats: the decoder writes nothing past it) and
 * statistics, and so does the re-blocked transpose, raw and re-pruned.
 */
START_TEST(test_simd_narrow_and_ragged_widths)
{
	/* 300 and 784: groups of 8 whole blocks of a row between ragged ends */
	static const uint32_t wide[] = { 144, 288, 300, 784 };
	static const double sparsities[] = { 0.0, 0.5, 0.9, 1.0 };
	const uint32_t widths = 70 + sizeof(wide) / sizeof(wide[0]);
	uint32_t it;

	for (it = 0; it < widths * 6; it++) {
		uint32_t w = it / 6, mode = it % 6;
		uint32_t c = w < 70 ? w + 1 : wide[w - 70];
		/* tall: thousands of rows for the narrow widths; or a few, or one */
		uint32_t r = it % 4 == 0 ? 1 + 20000 / c : it % 4 == 1 ? 1 : 1 + (it * 37) % 150;
		size_t kind = (it / 2) % 5, n = (size_t)r * c;
		float *x = malloc(n * sizeof(float));
		struct spt_encode_opts o, raw;
		enum spt_isa isa = SPT_ISA_SCALAR;
		struct result a, b;

		ck_assert(x);
		fill(x, n, sparsities[it % 4], (int)kind);
		mode_opts(&o, mode, kind, 1000u + it);
		spt_encode_opts_init(&raw);
		compare_encodings(x, r, c, &o, "narrow/ragged");
		run(SPT_ISA_SCALAR, x, r, c, &o, &a);
		while (next_isa(&isa)) {
			struct result ta, tb;
			int k;

			for (k = 0; k < 2; k++) {
				const struct spt_encode_opts *to = k ? &o : &raw;

				transpose_isa(isa, a.buf, a.len, r, c, to, &tb);
				transpose_isa(SPT_ISA_SCALAR, a.buf, a.len, r, c, to, &ta);
				ck_assert_msg(ta.len == tb.len && !memcmp(ta.buf, tb.buf, ta.len),
					      "%s: %ux%u mode %u: transpose bytes differ",
					      spt_core_isa_name(isa), r, c, mode);
				ck_assert_msg(!memcmp(&ta.st, &tb.st, sizeof(ta.st)),
					      "%s: %ux%u mode %u: transpose statistics differ",
					      spt_core_isa_name(isa), r, c, mode);
				free(ta.buf);
				free(tb.buf);
			}
			/* the SIMD decode of the scalar encoding, on its own */
			ck_assert_int_eq(spt_core_set_isa(isa), 0);
			b.dec = malloc(n * sizeof(float));
			ck_assert(b.dec);
			ck_assert_int_eq(spt_ct_decode(a.buf, a.len, b.dec, n), 0);
			ck_assert_msg(!memcmp(a.dec, b.dec, n * sizeof(float)),
				      "%s: %ux%u: decoded floats differ", spt_core_isa_name(isa), r, c);
			free(b.dec);
		}
		/* the other MXCSR rounding modes, on the narrow widths */
		if (c < 32 && it % 3 == 0) {
			ck_assert_int_eq(fesetround(FE_UPWARD), 0);
			compare_encodings(x, r, c, &o, "narrow, rounding upward");
			ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
		}
		spt_core_set_isa(SPT_ISA_AUTO);
		free(a.buf);
		free(a.dec);
		free(x);
	}
}
END_TEST

/* The SIMD encoder follows the rounding mode in force, as the scalar one. */
START_TEST(test_simd_other_rounding_modes)
{
	static const int modes[] = { FE_TOWARDZERO, FE_UPWARD, FE_DOWNWARD };
	uint32_t r = 16, c = 96;
	float *x = malloc((size_t)r * c * sizeof(float));
	size_t m, kind;

	for (m = 0; m < 3; m++)
		for (kind = 0; kind < 5; kind++) {
			struct spt_encode_opts o;

			fill(x, (size_t)r * c, 0.3, (int)kind);
			spt_encode_opts_init(&o);
			ck_assert_int_eq(fesetround(modes[m]), 0);
			compare_encodings(x, r, c, &o, "rounding mode");
			ck_assert_int_eq(fesetround(FE_TONEAREST), 0);
		}
	free(x);
}
END_TEST

static uint64_t mut_state = 0x9e3779b97f4a7c15ull;

static uint32_t mrand(uint32_t n)
{
	mut_state ^= mut_state << 13;
	mut_state ^= mut_state >> 7;
	mut_state ^= mut_state << 17;
	return (uint32_t)((mut_state >> 16) % n);
}

/*
 * Validation and decoding of corrupted buffers: every path gives the
 * scalar verdict, decodes valid ones to the same floats and leaves the
 * output untouched on rejection.
 */
static void check_same_verdict(const unsigned char *buf, size_t len, uint32_t r, uint32_t c)
{
	size_t n = (size_t)r * c;
	float *ref = malloc(n * sizeof(float) + 1), *got = malloc(n * sizeof(float) + 1);
	enum spt_isa isa = SPT_ISA_SCALAR;
	unsigned char *copy = malloc(len ? len : 1);
	int want, wd;

	memcpy(copy, buf, len);	/* exact size: ASan sees any overread */
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
	want = spt_ct_validate(copy, len, NULL);
	memset(ref, 0x5a, n * sizeof(float));
	wd = spt_ct_decode(copy, len, ref, n);
	ck_assert_int_eq(want, wd == -EINVAL ? want : wd);
	while (next_isa(&isa)) {
		ck_assert_int_eq(spt_core_set_isa(isa), 0);
		ck_assert_int_eq(spt_ct_validate(copy, len, NULL), want);
		memset(got, 0x5a, n * sizeof(float));
		ck_assert_int_eq(spt_ct_decode(copy, len, got, n), wd);
		ck_assert(!memcmp(ref, got, n * sizeof(float)));
	}
	spt_core_set_isa(SPT_ISA_AUTO);
	free(copy);
	free(ref);
	free(got);
}

START_TEST(test_simd_validate_matches_scalar)
{
	static const uint32_t shapes[][2] = { { 64, 64 }, { 33, 70 }, { 5, 1000 }, { 100, 31 } };
	static const double sparsities[] = { 0.0, 0.6, 0.95 };
	size_t s, p, t;

	for (s = 0; s < 4; s++)
	for (p = 0; p < 3; p++) {
		uint32_t r = shapes[s][0], c = shapes[s][1];
		size_t n = (size_t)r * c, cap = spt_ct_bound(r, c), len;
		float *x = malloc(n * sizeof(float));
		unsigned char *orig = malloc(cap), *m = malloc(cap + 64);

		fill(x, n, sparsities[p], 0);
		ck_assert_int_eq(spt_ct_encode(x, r, c, NULL, orig, cap, &len, NULL), 0);
		check_same_verdict(orig, len, r, c);
		for (t = 0; t < 300; t++) {
			size_t l = len, at, hdr = 64 + 4 * ((((size_t)r * ((c + 31) / 32)) + 63) / 64 + 1);

			memcpy(m, orig, len);
			at = hdr + mrand((uint32_t)(len - hdr));
			switch (t % 8) {
			case 0:	/* a bit anywhere in the payload */
				m[at] ^= (unsigned char)(1u << mrand(8));
				break;
			case 1:	/* a value byte to 0 or -128, or a mask byte cleared */
				m[at] = (t & 8) ? 0x80 : 0;
				break;
			case 2:	/* exponent NaN */
				m[at] = 0xff;
				break;
			case 3:	/* truncated or extended */
				l = len - 1 - mrand(16 < len - hdr ? 16 : 1);
				break;
			case 4:	/* a high L2 bit (ragged) */
				m[at] |= 0x80;
				break;
			case 5:	/* a tile offset */
				if (hdr > 72) {
					size_t e = 64 + 4 * (1 + mrand((uint32_t)((hdr - 68) / 4)));

					m[e] += (unsigned char)(mrand(2) ? 1 : 255);
				}
				break;
			case 6:	/* two random bytes */
				m[at] = (unsigned char)mrand(256);
				m[hdr + mrand((uint32_t)(len - hdr))] = (unsigned char)mrand(256);
				break;
			default:	/* a swapped pair of bytes */
				if (at + 1 < len) {
					unsigned char u = m[at];

					m[at] = m[at + 1];
					m[at + 1] = u;
				}
				break;
			}
			check_same_verdict(m, l, r, c);
		}
		free(x);
		free(orig);
		free(m);
	}
}
END_TEST

/*
 * Rows of mixed kinds for the narrow paths: all-zero rows, a run of zero rows
 * long enough for an all-zero tile, rows with no |x| below tau = 0.7 (the
 * stochastic pruner draws nothing there), dense rows and awkward values.
 */
static void fill_rows(float *x, uint32_t r, uint32_t c, size_t kind)
{
	uint32_t i, j, z0 = r > 200 ? (uint32_t)(urand() * (r - 150)) : r;

	for (i = 0; i < r; i++) {
		double u = urand();
		float *row = x + (size_t)i * c;

		if ((i >= z0 && i < z0 + 140) || u < 0.2) {
			for (j = 0; j < c; j++)
				row[j] = (j & 1) ? -0.0f : 0.0f;
		} else if (u < 0.5) {
			for (j = 0; j < c; j++) {
				double v = urand();

				row[j] = v < 0.4 ? 0.0f : (float)((v < 0.7 ? -1 : 1) * (0.7 + urand()));
			}
		} else if (u < 0.8) {
			fill(row, c, 0.4, 0);
		} else {
			fill(row, c, 0.3, (int)kind);
		}
	}
}

/* spt_ct_colsum of @buf on every ISA: the scalar answer, and the decoded sum. */
static void compare_colsums(const unsigned char *buf0, size_t len, const float *dec, uint32_t r,
			    uint32_t c)
{
	float *ref = malloc(c * sizeof(float)), *got = malloc(c * sizeof(float));
	unsigned char *buf = malloc(len);
	enum spt_isa isa = SPT_ISA_SCALAR;
	uint32_t i, j;

	/* exactly @len bytes: ASan sees a read past the end of the tensor */
	ck_assert(ref && got && buf);
	memcpy(buf, buf0, len);
	for (j = 0; j < c; j++)
		ref[j] = 0.0f;
	for (i = 0; i < r; i++)
		for (j = 0; j < c; j++)
			ref[j] += dec[(size_t)i * c + j];
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
	ck_assert_int_eq(spt_ct_colsum(buf, len, got, c), 0);
	ck_assert(!memcmp(ref, got, c * sizeof(float)));
	while (next_isa(&isa)) {
		ck_assert_int_eq(spt_core_set_isa(isa), 0);
		memset(got, 0xa5, c * sizeof(float));
		ck_assert_int_eq(spt_ct_colsum(buf, len, got, c), 0);
		ck_assert_msg(!memcmp(ref, got, c * sizeof(float)), "%s: colsum of %ux%u differs",
			      spt_core_isa_name(isa), r, c);
	}
	spt_core_set_isa(SPT_ISA_AUTO);
	free(ref);
	free(got);
	free(buf);
}

/*
 * Tall narrow tensors (one block per row, ragged below 32 columns) and a few
 * wider ones, random row counts: every rounding and pruning pairing gives the
 * scalar bytes, floats and statistics; decode and column sums match too.
 */
START_TEST(test_simd_tall_narrow_random)
{
	static const uint32_t wide[] = { 64, 96, 144 };
	uint32_t w;

	for (w = 1; w <= 40 + 3; w++) {
		uint32_t c = w <= 40 ? w : wide[w - 41], k;

		for (k = 0; k < 3; k++) {
			uint32_t r = k == 2 ? (c <= 40 ? 3000 : 700) : 1 + (uint32_t)(urand() * 300);
			size_t kind = (size_t)(urand() * 5), n = (size_t)r * c;
			float *x = malloc(n * sizeof(float));
			unsigned int mode;

			ck_assert(x);
			fill_rows(x, r, c, kind);
			for (mode = 0; mode < 6; mode++) {
				struct spt_encode_opts o;
				struct result a;

				if (k == 2 && mode % 2)
					continue;
				mode_opts(&o, mode, kind, 1000 + w * 7 + k);
				if (kind == 2 || kind == 3)
					o.prune.tau = mode >= 2 ? 0.7f : o.prune.tau;
				compare_encodings(x, r, c, &o, "tall narrow");
				run(SPT_ISA_SCALAR, x, r, c, &o, &a);
				compare_colsums(a.buf, a.len, a.dec, r, c);
				free(a.buf);
				free(a.dec);
			}
			free(x);
		}
	}
}
END_TEST

int main(void)
{
	Suite *s = suite_create("codec_isa");
	TCase *tc = tcase_create("simd");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_simd_paths_match_scalar);
	tcase_add_test(tc, test_simd_encode_rejects_nan_like_scalar);
	tcase_add_test(tc, test_simd_encode_tight_capacity);
	tcase_add_test(tc, test_simd_transpose_matches_scalar);
	tcase_add_test(tc, test_simd_more_shapes_and_options);
	tcase_add_test(tc, test_simd_subnormal_blocks);
	tcase_add_test(tc, test_simd_nan_every_position);
	tcase_add_test(tc, test_simd_every_capacity);
	tcase_add_test(tc, test_simd_other_rounding_modes);
	tcase_add_test(tc, test_simd_validate_matches_scalar);
	tcase_add_test(tc, test_simd_narrow_and_ragged_widths);
	tcase_add_test(tc, test_simd_tall_narrow_random);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
