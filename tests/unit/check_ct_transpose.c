/* SPDX-License-Identifier: MIT */
/*
 * spt_ct_transpose() with raw options and no statistics (the re-blocking
 * of the training step, by strips in ct_transpose.c: always through
 * spt_ct_transpose_strips(), from CTT_MIN_ROWS rows on through
 * spt_ct_transpose() too) gives exactly the bytes of decode, transpose,
 * encode on every ISA path, for tensors built record by record:
 * any exponent from -127 to 127 next to any other, non-canonical records
 * (max |k| < 64), +-127 everywhere, empty and dense blocks and tiles, tiles
 * straddling rows, ragged rows and columns.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "../../core/src/ct_transpose.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)((rng_state >> 11) % n);
}

static void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void st64(uint8_t *p, uint64_t v)
{
	st32(p, (uint32_t)v);
	st32(p + 4, (uint32_t)(v >> 32));
}

/* How a generated tensor's blocks look. */
struct gen {
	double block_p;		/* probability a block is stored */
	double elem_p;		/* probability a stored block's element is */
	int emin, emax;		/* exponent range */
	int kmode;		/* 0 any k, 1 |k| < 64, 2 +-127, 3 +-1 */
	int rowdead;		/* whole rows of blocks absent (clustered zeros) */
};

static int8_t gen_k(int kmode)
{
	int k;

	switch (kmode) {
	case 1:
		k = (int)rnd(63) + 1;
		break;
	case 2:
		k = 127;
		break;
	case 3:
		k = 1;
		break;
	default:
		k = (int)rnd(127) + 1;
		break;
	}
	return (int8_t)(rnd(2) ? -k : k);
}

/* A valid compressed rows x cols tensor, record by record; *len its size. */
static uint8_t *build(uint32_t rows, uint32_t cols, const struct gen *gp, size_t *len)
{
	uint32_t bpr = (cols + 31) / 32, ragged = cols % 32;
	uint64_t nb = (uint64_t)rows * bpr, tiles = (nb + 63) / 64, t, nzb = 0, nnz = 0;
	size_t cap = spt_ct_bound(rows, cols), pos, off = 64 + 4 * (tiles + 1);
	uint8_t *p = calloc(1, cap);

	ck_assert(p);
	pos = off;
	for (t = 0; t < tiles; t++) {
		uint64_t b, l1 = 0, l1pos = pos;

		st32(p + 64 + 4 * t, (uint32_t)(pos - off));
		pos += 8;
		for (b = t * 64; b < nb && b < t * 64 + 64; b++) {
			uint32_t r = (uint32_t)(b / bpr), c = (uint32_t)(b % bpr), l2 = 0, j;
			uint32_t n = ragged && c == bpr - 1 ? ragged : 32;

			if (gp->rowdead && (r % 7 == 3 || r % 5 == 1))
				continue;
			if ((double)rnd(1u << 20) >= gp->block_p * (1u << 20))
				continue;
			for (j = 0; j < n; j++)
				if ((double)rnd(1u << 20) < gp->elem_p * (1u << 20))
					l2 |= 1u << j;
			if (!l2)
				continue;
			st32(p + pos, l2);
			p[pos + 4] = (uint8_t)(gp->emin + (int)rnd((uint32_t)(gp->emax - gp->emin + 1)) +
					       127);
			pos += 5;
			for (j = 0; j < 32; j++)
				if (l2 >> j & 1)
					p[pos++] = (uint8_t)gen_k(gp->kmode);
			l1 |= 1ull << (b - t * 64);
			nzb++;
			nnz += (uint64_t)__builtin_popcount(l2);
		}
		st64(p + l1pos, l1);
	}
	st32(p + 64 + 4 * tiles, (uint32_t)(pos - off));
	st32(p + 0, 0x54435053u);
	p[4] = 1;
	st32(p + 8, rows);
	st32(p + 12, cols);
	st32(p + 16, bpr);
	st32(p + 20, (uint32_t)tiles);
	st64(p + 24, nzb);
	st64(p + 32, nnz);
	st32(p + 40, (uint32_t)(pos - off));
	st64(p + 48, pos);
	ck_assert_int_eq(spt_ct_validate(p, pos, NULL), 0);
	*len = pos;
	return p;
}

/* decode, transpose by hand, encode with default options: the reference */
static uint8_t *reference(const uint8_t *a, size_t la, uint32_t rows, uint32_t cols,
			  size_t *lw)
{
	size_t n = (size_t)rows * cols, cap = spt_ct_bound(cols, rows), r, c;
	float *d = malloc(n * sizeof(float)), *t = malloc(n * sizeof(float));
	uint8_t *w = malloc(cap);

	ck_assert(d && t && w);
	ck_assert_int_eq(spt_ct_decode(a, la, d, n), 0);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			t[c * rows + r] = d[r * cols + c];
	ck_assert_int_eq(spt_ct_encode(t, cols, rows, NULL, w, cap, lw, NULL), 0);
	free(d);
	free(t);
	return w;
}

static const enum spt_isa isas[] = { SPT_ISA_SCALAR, SPT_ISA_AVX2 };

/* The raw transpose of @a on every ISA against the reference, and its capacity errors. */
static void check_one(const uint8_t *a0, size_t la, uint32_t rows, uint32_t cols)
{
	size_t cap = spt_ct_bound(cols, rows), lw, lt, i, j;
	uint8_t *got = malloc(cap + 1), *want, *a = malloc(la);
	struct spt_encode_opts raw;

	/* an input of exactly la bytes: ASan sees a read past its end */
	ck_assert(got && a);
	memcpy(a, a0, la);
	spt_encode_opts_init(&raw);
	raw.round_seed = 77;	/* unused by nearest-even rounding */
	for (i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
		int ret;

		if (spt_core_set_isa(isas[i]) != 0)
			continue;
		want = reference(a, la, rows, cols, &lw);
		memset(got, 0xa5, cap + 1);
		ret = spt_ct_transpose_strips(a, la, got, cap, &lt);
		ck_assert_msg(ret == 0, "%ux%u isa %d: expected 0, got %d", rows, cols,
			      (int)isas[i], ret);
		ck_assert_msg(lt == lw && memcmp(got, want, lw) == 0,
			      "%ux%u isa %d: %zu bytes differ from decode, transpose, encode (%zu)",
			      rows, cols, (int)isas[i], lt, lw);
		ck_assert_uint_eq(got[lt], 0xa5);	/* nothing written past the end */
		/* exactly enough room, one byte short, not even the header and table */
		ck_assert_int_eq(spt_ct_transpose_strips(a, la, got, lw, &lt), 0);
		ck_assert_uint_eq(lt, lw);
		/* a short output: nothing written past its capacity */
		memset(got, 0xa5, cap + 1);
		ck_assert_int_eq(spt_ct_transpose_strips(a, la, got, lw - 1, &lt), -ENOSPC);
		ck_assert_uint_eq(got[lw - 1], 0xa5);
		memset(got, 0xa5, cap + 1);
		ck_assert_int_eq(spt_ct_transpose_strips(a, la, got, 64, &lt), -ENOSPC);
		for (j = 64; j <= cap && got[j] == 0xa5; j++)
			;
		ck_assert_msg(j > cap, "%ux%u: byte %zu written past a 64-byte output", rows, cols, j);
		/* the public entry (strips from CTT_MIN_ROWS rows on) gives the same */
		ck_assert_int_eq(spt_ct_transpose(a, la, i ? &raw : NULL, got, cap, &lt, NULL), 0);
		ck_assert_msg(lt == lw && memcmp(got, want, lw) == 0,
			      "%ux%u isa %d: spt_ct_transpose differs", rows, cols, (int)isas[i]);
		ck_assert_int_eq(spt_ct_transpose(a, la, NULL, got, lw - 1, &lt, NULL), -ENOSPC);
		free(want);
	}
	spt_core_set_isa(SPT_ISA_AUTO);
	free(got);
	free(a);
}

static void check_gen(uint32_t rows, uint32_t cols, const struct gen *gp)
{
	size_t la;
	uint8_t *a = build(rows, cols, gp, &la);

	check_one(a, la, rows, cols);
	free(a);
}

START_TEST(test_raw_transpose_random_shapes)
{
	static const struct gen gens[] = {
		{ 0.3, 0.4, -3, 3, 0, 0 },	/* sparse, similar exponents */
		{ 1.0, 1.0, -2, 2, 0, 0 },	/* dense */
		{ 0.8, 0.3, -127, 127, 0, 0 },	/* any exponent next to any */
		{ 0.7, 0.6, -127, -120, 0, 0 },	/* subnormal decoded values */
		{ 0.7, 0.6, 120, 127, 2, 0 },	/* huge, +-127 */
		{ 0.9, 0.5, -5, 5, 1, 0 },	/* non-canonical: max |k| < 64 */
		{ 0.5, 0.2, -1, 1, 3, 1 },	/* +-1 and dead rows */
		{ 0.6, 0.9, 0, 0, 2, 0 },	/* one exponent, +-127: no rounding */
	};
	int it;

	for (it = 0; it < 120; it++) {
		const struct gen *gp = &gens[it % (sizeof(gens) / sizeof(gens[0]))];
		uint32_t rows, cols;

		switch (it % 4) {
		case 0:
			rows = 1 + rnd(40);
			cols = 1 + rnd(40);
			break;
		case 1:
			rows = 1 + rnd(200);
			cols = 1 + rnd(100);
			break;
		case 2:
			rows = 32 * (1 + rnd(5)) + rnd(2);
			cols = 32 * (1 + rnd(4)) - rnd(2);
			break;
		default:
			rows = 1 + rnd(700);
			cols = 1 + rnd(12);
			break;
		}
		check_gen(rows, cols, gp);
	}
}
END_TEST

START_TEST(test_raw_transpose_edge_shapes)
{
	static const uint32_t shapes[][2] = {
		{ 1, 1 }, { 1, 2 }, { 2, 1 }, { 1, 31 }, { 1, 32 }, { 1, 33 }, { 1, 2049 },
		{ 2049, 1 }, { 31, 1 }, { 33, 33 }, { 64, 64 }, { 65, 63 }, { 96, 9 },
		{ 3, 700 }, { 700, 3 }, { 129, 144 }, { 300, 16 }, { 1024, 9 }, { 1100, 40 },
		{ 2049, 33 },
	};
	const struct gen empty = { 0.0, 0.0, 0, 0, 0, 0 };
	const struct gen dense = { 1.0, 1.0, -127, 127, 0, 0 };
	const struct gen mixed = { 0.5, 0.5, -127, 127, 0, 1 };
	size_t s;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		check_gen(shapes[s][0], shapes[s][1], &empty);
		check_gen(shapes[s][0], shapes[s][1], &dense);
		check_gen(shapes[s][0], shapes[s][1], &mixed);
	}
}
END_TEST

/* +-127 under one exponent stays +-127 (the largest k); k / 2 ties round to even. */
START_TEST(test_raw_transpose_rounding_edges)
{
	const struct gen g127 = { 1.0, 1.0, 7, 7, 2, 0 };
	const struct gen ties = { 1.0, 0.7, -1, 0, 0, 0 };	/* k / 2 ties to even */
	int i;

	for (i = 0; i < 6; i++) {
		check_gen(32 + (uint32_t)i, 32 - (uint32_t)i, &g127);
		check_gen(40 + (uint32_t)i, 70 + (uint32_t)i, &ties);
	}
}
END_TEST

/* Encoder-made input: ordinary data through the same comparison. */
START_TEST(test_raw_transpose_encoded_input)
{
	static const uint32_t shapes[][2] = { { 300, 144 }, { 1000, 9 }, { 128, 600 }, { 77, 288 },
					      { 3136, 32 }, { 1500, 144 } };
	size_t s;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint32_t rows = shapes[s][0], cols = shapes[s][1];
		size_t n = (size_t)rows * cols, cap = spt_ct_bound(rows, cols), la, i;
		float *x = malloc(n * sizeof(float));
		uint8_t *a = malloc(cap);

		ck_assert(x && a);
		for (i = 0; i < n; i++)
			x[i] = rnd(10) < 8 ? 0.0f : (float)((int)rnd(20001) - 10000) * 1e-4f;
		ck_assert_int_eq(spt_ct_encode(x, rows, cols, NULL, a, cap, &la, NULL), 0);
		check_one(a, la, rows, cols);
		free(x);
		free(a);
	}
}
END_TEST

/*
 * FP32 rows for spt_ct_encode_t(): zero w.p. @z, values over 2^-(@spread)
 * .. 1 (a row's small ones quantise to 0), runs of zero rows, and with
 * @tiny rows whose largest |x| is subnormal.
 */
static float *enc_rows(uint32_t rows, uint32_t cols, uint32_t z, uint32_t spread, int tiny)
{
	size_t n = (size_t)rows * cols, i;
	float *x = malloc(n * sizeof(float) + 1);

	ck_assert_ptr_nonnull(x);
	for (i = 0; i < n; i++) {
		float v = ldexpf((float)((int)rnd(2001) - 1000) / 1000.0f, -(int)rnd(spread + 1));

		if (tiny && (i / cols) % 5 == 1)
			v = ldexpf(v, -130);
		x[i] = rnd(100) < z || (i / cols) % 97 < 9 ? (rnd(2) ? 0.0f : -0.0f) : v;
	}
	return x;
}

/*
 * spt_ct_encode_t() against spt_ct_encode() then the raw transpose: the
 * same bytes, statistics and errors, for every width of one block per row
 * (the encoder fills the transpose's strips) and past it, few rows and
 * many (not a whole strip or tile at the end), every pruning and rounding,
 * an output with exactly the room the tensor needs (the encoder's last
 * tiles then take its record-by-record path), and short outputs.
 */
static void encode_t_case(uint32_t rows, uint32_t cols, const struct spt_encode_opts *o,
			  uint32_t z, int tiny)
{
	size_t cap = spt_ct_bound(rows, cols), tcap = spt_ct_bound(cols, rows);
	size_t l, lt, l2, lt2, exact, texact;
	uint8_t *a = malloc(cap), *t = malloc(tcap), *a2 = malloc(cap), *t2 = malloc(tcap);
	struct spt_tensor_stats st, st2;
	float *x = enc_rows(rows, cols, z, 40, tiny);
	bool old;
	int ret;

	ck_assert(a && t && a2 && t2);
	ck_assert_int_eq(spt_ct_encode(x, rows, cols, o, a, cap, &l, &st), 0);
	old = spt_ct_set_trusted(true);
	ck_assert_int_eq(spt_ct_transpose(a, l, NULL, t, tcap, &lt, NULL), 0);
	spt_ct_set_trusted(old);
	exact = l;
	texact = lt;
	/* the full bound, then exactly the room needed */
	for (cap = spt_ct_bound(rows, cols); ; cap = exact) {
		memset(a2, 0xa5, spt_ct_bound(rows, cols));
		memset(&st2, 0x5a, sizeof(st2));
		ret = spt_ct_encode_t(x, rows, cols, o, a2, cap, &l2, &st2, t2, texact, &lt2);
		ck_assert_msg(ret == 0, "%ux%u cap %zu: %d", rows, cols, cap, ret);
		ck_assert_msg(l2 == l && memcmp(a2, a, l) == 0, "%ux%u: the tensor differs", rows,
			      cols);
		ck_assert_msg(lt2 == lt && memcmp(t2, t, lt) == 0,
			      "%ux%u cap %zu: the transpose differs", rows, cols, cap);
		ck_assert(memcmp(&st2, &st, sizeof(st)) == 0);
		if (cap == exact)
			break;
	}
	/* one byte short of either output */
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, o, a2, exact - 1, &l2, NULL, t2, tcap,
					 &lt2), -ENOSPC);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, o, a2, exact, &l2, NULL, t2, texact - 1,
					 &lt2), -ENOSPC);
	free(x);
	free(a);
	free(t);
	free(a2);
	free(t2);
}

START_TEST(test_encode_t_is_encode_then_transpose)
{
	static const uint32_t rows[] = { 1024, 1025, 1057, 2048 + 31, 3000, 100, 31 };
	struct spt_encode_opts o;
	uint32_t cols;
	int k = 0;

	for (cols = 1; cols <= 34; cols++) {
		uint32_t r = rows[cols % 7];

		spt_encode_opts_init(&o);
		switch (cols % 5) {
		case 1:
			o.prune.mode = SPT_PRUNE_DETERMINISTIC;
			o.prune.tau = 0x1p-6f;
			break;
		case 2:
			o.prune.mode = SPT_PRUNE_STOCHASTIC;
			o.prune.tau = 0x1p-5f;
			o.prune.seed = 9;
			break;
		case 3:
			o.round = SPT_ROUND_STOCHASTIC;
			o.round_seed = 5;
			break;
		case 4:
			o.prune.mode = SPT_PRUNE_STOCHASTIC;
			o.prune.tau = 0x1p-8f;
			o.round = SPT_ROUND_STOCHASTIC;
			break;
		default:
			break;
		}
		encode_t_case(r, cols, &o, 50 + 10 * (uint32_t)(k % 5), k % 3 == 0);
		encode_t_case(r + 32 * (uint32_t)(k % 3), cols, &o, 95, 0);
		encode_t_case(1100, cols, &o, 0, 1);
		k++;
	}
	/* the CNN's first layer's error and patch matrix at batch 64 */
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0x1p-7f;
	encode_t_case(50176, 16, &o, 90, 0);
	encode_t_case(50176, 9, NULL, 50, 0);
}
END_TEST

START_TEST(test_encode_t_rejects_bad)
{
	uint32_t rows = 1100, cols = 16;
	size_t cap = spt_ct_bound(rows, cols), tcap = spt_ct_bound(cols, rows), l, lt;
	uint8_t *a = malloc(cap), *t = malloc(tcap);
	float *x = enc_rows(rows, cols, 50, 4, 0);
	struct spt_encode_opts o;

	ck_assert(a && t);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, a, cap, &l, NULL, t, tcap, &lt), 0);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, a, cap, &l, NULL, NULL, tcap, &lt),
			 -EINVAL);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, a, cap, &l, NULL, t, tcap, NULL),
			 -EINVAL);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, a, cap, &l, NULL, a, cap, &lt),
			 -EINVAL);
	ck_assert_int_eq(spt_ct_encode_t(NULL, rows, cols, NULL, a, cap, &l, NULL, t, tcap, &lt),
			 -EINVAL);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, NULL, cap, &l, NULL, t, tcap, &lt),
			 -EINVAL);
	ck_assert_int_eq(spt_ct_encode_t(x, rows, 0, NULL, a, cap, &l, NULL, t, tcap, &lt),
			 -EINVAL);
	spt_encode_opts_init(&o);
	o.round = (enum spt_round)7;
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, &o, a, cap, &l, NULL, t, tcap, &lt),
			 -EINVAL);
	/* a NaN: -EDOM, as the encoder gives it */
	x[700 * cols + 3] = __builtin_nanf("");
	ck_assert_int_eq(spt_ct_encode_t(x, rows, cols, NULL, a, cap, &l, NULL, t, tcap, &lt),
			 -EDOM);
	free(x);
	free(a);
	free(t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ct_transpose");
	TCase *tc = tcase_create("raw");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_raw_transpose_random_shapes);
	tcase_add_test(tc, test_raw_transpose_edge_shapes);
	tcase_add_test(tc, test_raw_transpose_rounding_edges);
	tcase_add_test(tc, test_raw_transpose_encoded_input);
	tcase_add_test(tc, test_encode_t_is_encode_then_transpose);
	tcase_add_test(tc, test_encode_t_rejects_bad);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
