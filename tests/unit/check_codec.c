// SPDX-License-Identifier: MIT
/*
 * The compressed tensor format: an independent serializer written from
 * uapi/spt_format.h checks the encoder byte for byte and builds corrupt
 * inputs one fault at a time for the validator.  Also the training helpers.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "../../core/src/ct_internal.h"

/* ck_assert_msg reports every passing check to the parent: too slow in loops. */
#define EXPECT(cond, ...)                          \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* ---- random data ------------------------------------------------------------- */

static uint64_t lcg_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd32(void)
{
	lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(lcg_state >> 32);
}

static double rnd_unit(void)
{
	return (double)(rnd32() >> 8) / 16777216.0;
}

/* Values over a few binades; exact zeros with probability @zero. */
static float *rnd_tensor(size_t rows, size_t cols, double zero)
{
	size_t n = rows * cols, i;
	float *x = malloc(n * sizeof(float));

	ck_assert(x);
	for (i = 0; i < n; i++) {
		float m = (float)(rnd_unit() * 2.0 - 1.0);

		x[i] = rnd_unit() < zero ? 0.0f : ldexpf(m, (int)(rnd32() % 12) - 6);
	}
	return x;
}

/* ---- an independent model of the format ------------------------------------- */

/*
 * A block grid with room for whole tiles, so that faults such as an L1 bit
 * beyond the last block can be expressed.  exp8 is the biased exponent.
 */
struct grid {
	uint32_t rows, cols, bpr, tiles;
	uint64_t nblocks, slots;
	uint8_t *present;
	uint32_t *l2;
	uint8_t *exp8;
	int8_t *k;	/* 32 per slot, element order (not packed) */
	unsigned int tile_pad;	/* zero bytes after each tile's records (a fault) */
};

static void grid_init(struct grid *g, uint32_t rows, uint32_t cols)
{
	g->rows = rows;
	g->cols = cols;
	g->bpr = (cols + 31) / 32;
	g->nblocks = (uint64_t)rows * g->bpr;
	g->tiles = (uint32_t)((g->nblocks + 63) / 64);
	g->slots = (uint64_t)g->tiles * 64;
	g->present = calloc(g->slots, 1);
	g->l2 = calloc(g->slots, sizeof(uint32_t));
	g->exp8 = calloc(g->slots, 1);
	g->k = calloc(g->slots * 32, 1);
	g->tile_pad = 0;
	ck_assert(g->present && g->l2 && g->exp8 && g->k);
}

static void grid_free(struct grid *g)
{
	free(g->present);
	free(g->l2);
	free(g->exp8);
	free(g->k);
}

/* The grid of x quantised with nearest-even (spt_bfp8_quantize_block is tested elsewhere). */
static void grid_from_floats(struct grid *g, const float *x, uint32_t rows, uint32_t cols)
{
	uint64_t b;

	grid_init(g, rows, cols);
	for (b = 0; b < g->nblocks; b++) {
		uint32_t r = (uint32_t)(b / g->bpr), c0 = (uint32_t)(b % g->bpr) * 32;
		unsigned int n = cols - c0 < 32 ? cols - c0 : 32, j;
		int8_t *k = g->k + 32 * b;
		int e;

		ck_assert_int_eq(spt_bfp8_quantize_block(x + (size_t)r * cols + c0, n,
							 SPT_ROUND_EVEN, 0, 0, k, &e), 0);
		for (j = 0; j < 32; j++)
			if (k[j])
				g->l2[b] |= 1u << j;
		g->present[b] = g->l2[b] != 0;
		g->exp8[b] = (uint8_t)(e + 127);
	}
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* Header field offsets, from struct spt_ct_header. */
enum {
	H_MAGIC = 0, H_VERSION = 4, H_FLAGS = 6, H_ROWS = 8, H_COLS = 12, H_BPR = 16,
	H_TILES = 20, H_NZB = 24, H_NNZ = 32, H_PAYLOAD = 40, H_RES0 = 44, H_TOTAL = 48,
	H_RES1 = 56,
};

/* Serialise a grid as uapi/spt_format.h describes; every derived field consistent. */
static uint8_t *serialize(const struct grid *g, size_t *len)
{
	size_t table = 64, payload = table + 4 * ((size_t)g->tiles + 1), pos = payload, cap;
	uint64_t nzb = 0, nnz = 0, t, b;
	uint8_t *p;

	cap = payload + (8 + g->tile_pad) * (size_t)g->tiles + g->slots * 37;
	p = calloc(cap, 1);
	ck_assert(p);
	for (t = 0; t < g->tiles; t++) {
		uint64_t l1 = 0;
		size_t l1pos = pos;

		put32(p + table + 4 * t, (uint32_t)(pos - payload));
		pos += 8;
		for (b = t * 64; b < t * 64 + 64; b++) {
			unsigned int j;

			if (!g->present[b])
				continue;
			l1 |= 1ull << (b - t * 64);
			put32(p + pos, g->l2[b]);
			p[pos + 4] = g->exp8[b];
			pos += 5;
			for (j = 0; j < 32; j++)
				if (g->l2[b] >> j & 1) {
					p[pos++] = (uint8_t)g->k[32 * b + j];
					nnz++;
				}
			nzb++;
		}
		put64(p + l1pos, l1);
		pos += g->tile_pad;
	}
	put32(p + table + 4 * (size_t)g->tiles, (uint32_t)(pos - payload));
	put32(p + H_MAGIC, 0x54435053u);
	p[H_VERSION] = 1;
	put32(p + H_ROWS, g->rows);
	put32(p + H_COLS, g->cols);
	put32(p + H_BPR, g->bpr);
	put32(p + H_TILES, g->tiles);
	put64(p + H_NZB, nzb);
	put64(p + H_NNZ, nnz);
	put32(p + H_PAYLOAD, (uint32_t)(pos - payload));
	put64(p + H_TOTAL, pos);
	*len = pos;
	return p;
}

static uint8_t *encode_alloc(const float *x, uint32_t rows, uint32_t cols,
			     const struct spt_encode_opts *o, size_t *len,
			     struct spt_tensor_stats *st)
{
	size_t cap = spt_ct_bound(rows, cols);
	uint8_t *p;
	int ret;

	EXPECT(cap > 0, "bound(%u, %u): expected > 0, got 0", rows, cols);
	p = malloc(cap);
	ck_assert(p);
	ret = spt_ct_encode(x, rows, cols, o, p, cap, len, st);
	EXPECT(ret == 0, "encode %ux%u: expected 0, got %d", rows, cols, ret);
	EXPECT(*len <= cap, "encode %ux%u: length %zu beyond bound %zu", rows, cols, *len,
		      cap);
	return p;
}

/* A copy in a buffer of exactly @len bytes, so ASan sees any over-read. */
static uint8_t *exact_copy(const uint8_t *p, size_t len)
{
	uint8_t *q = malloc(len ? len : 1);

	ck_assert(q);
	memcpy(q, p, len);
	return q;
}

static int validate_copy(const uint8_t *p, size_t len)
{
	uint8_t *q = exact_copy(p, len);
	int ret = spt_ct_validate(q, len, NULL);

	free(q);
	return ret;
}

/* ---- layout ----------------------------------------------------------------- */

static void check_matches_serializer(uint32_t rows, uint32_t cols, double zero)
{
	float *x = rnd_tensor(rows, cols, zero);
	struct grid g;
	size_t len, want_len, i;
	uint8_t *got, *want;

	got = encode_alloc(x, rows, cols, NULL, &len, NULL);
	grid_from_floats(&g, x, rows, cols);
	want = serialize(&g, &want_len);
	EXPECT(len == want_len, "%ux%u zero %.2f: expected %zu bytes, got %zu", rows, cols,
		      zero, want_len, len);
	for (i = 0; i < len; i++)
		EXPECT(got[i] == want[i],
			      "%ux%u zero %.2f: byte %zu: expected 0x%02x, got 0x%02x", rows, cols,
			      zero, i, want[i], got[i]);
	grid_free(&g);
	free(got);
	free(want);
	free(x);
}

START_TEST(test_encoding_matches_independent_serializer)
{
	check_matches_serializer(1, 1, 0.0);
	check_matches_serializer(1, 32, 0.0);
	check_matches_serializer(3, 33, 0.3);
	check_matches_serializer(5, 70, 0.5);
	check_matches_serializer(64, 32, 0.9);
	check_matches_serializer(65, 32, 0.97);
	check_matches_serializer(13, 300, 0.99);
	check_matches_serializer(40, 129, 1.0);
}
END_TEST

START_TEST(test_header_is_little_endian_at_documented_offsets)
{
	const float x[3] = { 1.0f, 0.0f, -0.5f };
	uint8_t *p;
	size_t len;

	p = encode_alloc(x, 1, 3, NULL, &len, NULL);
	/* 64 header + 8 table + 8 L1 + 4 L2 + 1 exp + 2 values */
	ck_assert_uint_eq(len, 87);
	EXPECT(memcmp(p, "SPCT", 4) == 0, "magic: expected \"SPCT\"");
	ck_assert_uint_eq(p[H_VERSION], 1);
	ck_assert_uint_eq(p[H_VERSION + 1], 0);
	ck_assert_uint_eq(get32(p + H_FLAGS) & 0xffff, 0);
	ck_assert_uint_eq(get32(p + H_ROWS), 1);
	ck_assert_uint_eq(get32(p + H_COLS), 3);
	ck_assert_uint_eq(get32(p + H_BPR), 1);
	ck_assert_uint_eq(get32(p + H_TILES), 1);
	ck_assert_uint_eq(get64(p + H_NZB), 1);
	ck_assert_uint_eq(get64(p + H_NNZ), 2);
	ck_assert_uint_eq(get32(p + H_PAYLOAD), 15);
	ck_assert_uint_eq(get32(p + H_RES0), 0);
	ck_assert_uint_eq(get64(p + H_TOTAL), 87);
	ck_assert_uint_eq(get64(p + H_RES1), 0);
	ck_assert_uint_eq(get32(p + 64), 0);	/* tile 0 at payload offset 0 */
	ck_assert_uint_eq(get32(p + 68), 15);	/* payload size */
	ck_assert_uint_eq(get64(p + 72), 1);	/* L1: block 0 */
	ck_assert_uint_eq(get32(p + 80), 5);	/* L2: elements 0 and 2 */
	ck_assert_uint_eq(p[84], 127);		/* E = 0 */
	ck_assert_uint_eq(p[85], 64);
	ck_assert_uint_eq(p[86], (uint8_t)-32);
	free(p);
}
END_TEST

static size_t worst_size(uint64_t rows, uint64_t cols)
{
	uint64_t nblocks = rows * ((cols + 31) / 32), tiles = (nblocks + 63) / 64;

	return (size_t)(64 + 4 * (tiles + 1) + 8 * tiles + 5 * nblocks + rows * cols);
}

START_TEST(test_dense_tensor_size_is_exact)
{
	const uint32_t shapes[][2] = { { 1, 1 }, { 1, 31 }, { 2, 33 }, { 64, 32 }, { 65, 64 },
				       { 7, 300 } };
	size_t i;

	for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		uint32_t r = shapes[i][0], c = shapes[i][1];
		float *x = rnd_tensor(r, c, 0.0);
		size_t len, j;
		uint8_t *p;

		for (j = 0; j < (size_t)r * c; j++)	/* all nonzero after quantisation */
			x[j] = (j & 1) ? 1.0f : -0.75f;
		p = encode_alloc(x, r, c, NULL, &len, NULL);
		EXPECT(len == worst_size(r, c), "%ux%u: expected %zu bytes, got %zu", r, c,
			      worst_size(r, c), len);
		EXPECT(spt_ct_bound(r, c) >= len, "%ux%u: bound %zu below dense size %zu", r,
			      c, spt_ct_bound(r, c), len);
		free(p);
		free(x);
	}
}
END_TEST

START_TEST(test_all_zero_tensor_is_empty_tiles)
{
	uint32_t rows = 100, cols = 70;	/* 300 blocks, 5 tiles */
	float *x = calloc((size_t)rows * cols, sizeof(float));
	struct spt_tensor_stats st;
	size_t len, t;
	uint8_t *p;

	ck_assert(x);
	x[5] = -0.0f;
	p = encode_alloc(x, rows, cols, NULL, &len, &st);
	ck_assert_uint_eq(len, 64 + 4 * 6 + 8 * 5);
	for (t = 0; t < 5; t++) {
		ck_assert_uint_eq(get32(p + 64 + 4 * t), 8 * t);
		ck_assert_uint_eq(get64(p + 88 + 8 * t), 0);
	}
	ck_assert_uint_eq(st.nonzeros, 0);
	ck_assert_uint_eq(st.nz_blocks, 0);
	ck_assert_uint_eq(st.natural_zeros, (uint64_t)rows * cols);
	free(p);
	free(x);
}
END_TEST

/* ---- round trips ---------------------------------------------------------------- */

static void check_round_trip(uint32_t rows, uint32_t cols, double zero, enum spt_round round,
			     uint64_t seed)
{
	size_t n = (size_t)rows * cols, len, i;
	float *x = rnd_tensor(rows, cols, zero);
	float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
	struct spt_encode_opts o;
	uint8_t *p;

	ck_assert(want && got);
	spt_encode_opts_init(&o);
	o.round = round;
	o.round_seed = seed;
	p = encode_alloc(x, rows, cols, &o, &len, NULL);
	ck_assert_int_eq(spt_bfp8_quantize(x, want, rows, cols, round, seed), 0);
	memset(got, 0xff, n * sizeof(float));
	ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
	for (i = 0; i < n; i++)
		EXPECT(memcmp(&want[i], &got[i], sizeof(float)) == 0,
			      "%ux%u round %d: element %zu: expected %a, got %a", rows, cols, round,
			      i, (double)want[i], (double)got[i]);
	free(p);
	free(x);
	free(want);
	free(got);
}

START_TEST(test_decode_equals_quantize_bit_for_bit)
{
	check_round_trip(1, 1, 0.0, SPT_ROUND_EVEN, 0);
	check_round_trip(1, 1, 1.0, SPT_ROUND_EVEN, 0);
	check_round_trip(3, 33, 0.2, SPT_ROUND_EVEN, 0);
	check_round_trip(9, 70, 0.5, SPT_ROUND_EVEN, 0);
	check_round_trip(17, 45, 0.9, SPT_ROUND_EVEN, 0);	/* 34 blocks: partial tile */
	check_round_trip(300, 1000, 0.6, SPT_ROUND_EVEN, 0);
	check_round_trip(9, 70, 0.5, SPT_ROUND_STOCHASTIC, 11);
	check_round_trip(300, 1000, 0.6, SPT_ROUND_STOCHASTIC, 12);
}
END_TEST

START_TEST(test_round_trip_extreme_exponents)
{
	/* each row in its own binade: subnormals (E clamped to -127) up to FLT_MAX */
	const int binades[] = { -149, -140, -133, -128, -127, -126, -121, -120, -60, 0,
				 60, 120, 126, 127 };
	uint32_t rows = sizeof(binades) / sizeof(binades[0]), cols = 70, r, c;
	size_t n = (size_t)rows * cols, len, i;
	float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
	float *got = malloc(n * sizeof(float));
	struct grid g;
	uint8_t *p, *ref;
	size_t ref_len;

	ck_assert(x && want && got);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++) {
			float m = (float)(rnd_unit() * 2.0 - 1.0);

			x[(size_t)r * cols + c] = ldexpf(m, binades[r]);
		}
	x[cols - 1] = FLT_MAX;		/* row 0's ragged block: E = 127 */
	x[2 * cols] = -FLT_MAX;
	x[3 * cols + 5] = FLT_TRUE_MIN;
	p = encode_alloc(x, rows, cols, NULL, &len, NULL);
	ck_assert_int_eq(spt_bfp8_quantize(x, want, rows, cols, SPT_ROUND_EVEN, 0), 0);
	ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
	for (i = 0; i < n; i++)
		EXPECT(memcmp(&want[i], &got[i], sizeof(float)) == 0,
		       "element %zu (x = %a): expected %a, got %a", i, (double)x[i],
		       (double)want[i], (double)got[i]);
	grid_from_floats(&g, x, rows, cols);
	ref = serialize(&g, &ref_len);
	EXPECT(ref_len == len && memcmp(ref, p, len) == 0,
	       "extreme exponents: encoding differs from the serializer");
	grid_free(&g);
	free(ref);
	free(p);
	free(x);
	free(want);
	free(got);
}
END_TEST

START_TEST(test_round_trip_random_shapes)
{
	int t;

	for (t = 0; t < 40; t++) {
		uint32_t rows = 1 + rnd32() % 50, cols = 1 + rnd32() % 200;
		double zero = (double)(rnd32() % 101) / 100;

		check_round_trip(rows, cols, zero, (enum spt_round)(t & 1), (uint64_t)t);
		if (t % 4 == 0)
			check_matches_serializer(rows, cols, zero);
	}
}
END_TEST

START_TEST(test_stats_describe_the_encoding)
{
	uint32_t rows = 37, cols = 90;
	size_t n = (size_t)rows * cols, len, i;
	float *x = rnd_tensor(rows, cols, 0.4), *q = malloc(n * sizeof(float));
	struct spt_tensor_stats st;
	uint64_t zeros = 0, nz = 0, underflow = 0, nzb = 0;
	double sum = 0.0;
	uint8_t *p;
	uint32_t r, c;

	ck_assert(q);
	x[7] = -0.0f;
	x[100] = 1.0f;	/* its block's E >= 0 */
	x[101] = 1e-4f;	/* 1e-4 * 64 rounds to 0: underflow */
	memset(&st, 0xaa, sizeof(st));
	p = encode_alloc(x, rows, cols, NULL, &len, &st);
	ck_assert_int_eq(spt_bfp8_quantize(x, q, rows, cols, SPT_ROUND_EVEN, 0), 0);
	for (i = 0; i < n; i++) {
		zeros += x[i] == 0.0f;
		nz += q[i] != 0.0f;
		underflow += x[i] != 0.0f && q[i] == 0.0f;
		sum += fabs((double)x[i]);
	}
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c += 32) {
			int any = 0;

			for (i = c; i < c + 32 && i < cols; i++)
				any |= q[(size_t)r * cols + i] != 0.0f;
			nzb += any;
		}
	ck_assert_uint_eq(st.elements, n);
	ck_assert_uint_eq(st.natural_zeros, zeros);
	ck_assert_uint_eq(st.pruned, 0);
	ck_assert_uint_eq(st.underflow, underflow);
	ck_assert_uint_ge(st.underflow, 1);
	ck_assert_uint_eq(st.nonzeros, nz);
	ck_assert_uint_eq(st.nz_blocks, nzb);
	ck_assert_uint_eq(st.bytes, len);
	EXPECT(fabs(st.sum_abs - sum) <= 1e-6 * sum, "sum_abs: expected %.9g, got %.9g", sum,
		      st.sum_abs);
	EXPECT(st.sum_abs_kept == st.sum_abs,
		      "sum_abs_kept without pruning: expected %.9g, got %.9g", st.sum_abs,
		      st.sum_abs_kept);
	ck_assert_uint_eq(get64(p + H_NZB), nzb);
	ck_assert_uint_eq(get64(p + H_NNZ), nz);
	free(p);
	free(x);
	free(q);
}
END_TEST

START_TEST(test_stats_may_be_null_and_opts_default)
{
	float *x = rnd_tensor(4, 50, 0.3);
	struct spt_encode_opts o;
	uint8_t *a, *b;
	size_t la, lb;

	spt_encode_opts_init(&o);
	ck_assert_int_eq(o.round, SPT_ROUND_EVEN);
	ck_assert_int_eq(o.prune.mode, SPT_PRUNE_OFF);
	a = encode_alloc(x, 4, 50, NULL, &la, NULL);
	b = encode_alloc(x, 4, 50, &o, &lb, NULL);
	ck_assert_uint_eq(la, lb);
	EXPECT(memcmp(a, b, la) == 0, "NULL options differ from spt_encode_opts_init");
	free(a);
	free(b);
	free(x);
}
END_TEST

/* ---- pruning ------------------------------------------------------------------------ */

START_TEST(test_deterministic_pruning_zeroes_below_tau)
{
	uint32_t rows = 20, cols = 77;
	size_t n = (size_t)rows * cols, len, i;
	float *x = rnd_tensor(rows, cols, 0.1), *pr = malloc(n * sizeof(float));
	float *want = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
	struct spt_encode_opts o;
	struct spt_tensor_stats st;
	uint64_t pruned = 0, zeros = 0;
	double kept = 0.0;
	uint8_t *p;

	ck_assert(pr && want && got);
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_DETERMINISTIC;
	o.prune.tau = 0.25f;
	x[3] = 0.25f;				/* |x| == tau is kept */
	x[4] = -0.25f;
	x[5] = nextafterf(0.25f, 0.0f);		/* just below: pruned */
	x[6] = -nextafterf(0.25f, 0.0f);
	for (i = 0; i < n; i++) {
		float a = fabsf(x[i]);

		zeros += x[i] == 0.0f;
		if (x[i] != 0.0f && a < o.prune.tau) {
			pr[i] = 0.0f;
			pruned++;
		} else {
			pr[i] = x[i];
			kept += a;
		}
	}
	p = encode_alloc(x, rows, cols, &o, &len, &st);
	ck_assert_int_eq(spt_bfp8_quantize(pr, want, rows, cols, SPT_ROUND_EVEN, 0), 0);
	ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
	for (i = 0; i < n; i++)
		EXPECT(want[i] == got[i], "element %zu (x = %a): expected %a, got %a", i,
			      (double)x[i], (double)want[i], (double)got[i]);
	EXPECT(got[3] == 0.25f && got[4] == -0.25f, "|x| == tau: expected kept, got %a %a",
		      (double)got[3], (double)got[4]);
	EXPECT(got[5] == 0.0f && got[6] == 0.0f, "|x| < tau: expected 0, got %a %a",
		      (double)got[5], (double)got[6]);
	ck_assert_uint_eq(st.pruned, pruned);
	ck_assert_uint_eq(st.natural_zeros, zeros);
	EXPECT(fabs(st.sum_abs_kept - kept) <= 1e-6 * kept,
		      "sum_abs_kept: expected %.9g, got %.9g", kept, st.sum_abs_kept);
	free(p);
	free(x);
	free(pr);
	free(want);
	free(got);
}
END_TEST

START_TEST(test_pruning_tau_zero_keeps_everything)
{
	float *x = rnd_tensor(5, 64, 0.2);
	struct spt_encode_opts o;
	struct spt_tensor_stats st;
	uint8_t *a, *b;
	size_t la, lb;
	int mode;

	a = encode_alloc(x, 5, 64, NULL, &la, NULL);
	for (mode = 1; mode <= 2; mode++) {
		spt_encode_opts_init(&o);
		o.prune.mode = (enum spt_prune_mode)mode;
		o.prune.tau = 0.0f;
		b = encode_alloc(x, 5, 64, &o, &lb, &st);
		ck_assert_uint_eq(st.pruned, 0);
		EXPECT(la == lb && memcmp(a, b, la) == 0, "mode %d, tau 0: encoding differs",
			      mode);
		free(b);
	}
	free(a);
	free(x);
}
END_TEST

START_TEST(test_stochastic_pruning_is_unbiased)
{
	/* all elements 0.25 (or -0.25) with tau = 1: each becomes +-1 w.p. 1/4, else 0 */
	uint32_t rows = 128, cols = 256;
	size_t n = (size_t)rows * cols, len, i, ones = 0, zeroed = 0;
	float *x = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
	struct spt_encode_opts o;
	struct spt_tensor_stats st;
	double sum = 0.0, mean, sigma;
	uint8_t *p;

	ck_assert(x && got);
	for (i = 0; i < n; i++)
		x[i] = (i & 1) ? 0.25f : -0.25f;
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 1.0f;
	o.prune.seed = 2024;
	p = encode_alloc(x, rows, cols, &o, &len, &st);
	ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
	for (i = 0; i < n; i++) {
		float want = (i & 1) ? 1.0f : -1.0f;

		EXPECT(got[i] == 0.0f || got[i] == want,
			      "element %zu: expected 0 or %g, got %a", i, (double)want,
			      (double)got[i]);
		ones += got[i] != 0.0f;
		zeroed += got[i] == 0.0f;
		sum += (i & 1) ? got[i] : -got[i];
	}
	mean = sum / (double)n;
	sigma = sqrt(0.25 * 0.75 / (double)n);
	EXPECT(fabs(mean - 0.25) <= 5 * sigma,
		      "mean |value|: expected 0.25 +- %.4f, got %.5f", 5 * sigma, mean);
	ck_assert_uint_eq(st.pruned, zeroed);
	ck_assert_uint_eq(st.nonzeros, ones);
	EXPECT(fabs(st.sum_abs_kept - (double)ones) < 1e-6 * (double)n,
		      "sum_abs_kept: expected %zu (promoted to tau), got %.9g", ones, st.sum_abs_kept);
	free(p);
	free(x);
	free(got);
}
END_TEST

START_TEST(test_stochastic_pruning_keeps_expectation_of_mixed_values)
{
	/* values below tau: E[out] = x; values above tau untouched (up to quantisation) */
	uint32_t rows = 200, cols = 160;
	size_t n = (size_t)rows * cols, len, i, cnt = 0;
	float *x = malloc(n * sizeof(float)), *got = malloc(n * sizeof(float));
	struct spt_encode_opts o;
	double sum = 0.0, var = 0.0, want = 0.0;
	uint8_t *p;

	ck_assert(x && got);
	for (i = 0; i < n; i++)
		x[i] = (i % 5 == 0) ? 1.0f : (float)(0.05 + 0.4 * (double)(i % 7) / 7);
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0.5f;
	o.prune.seed = 9;
	p = encode_alloc(x, rows, cols, &o, &len, NULL);
	ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
	for (i = 0; i < n; i++) {
		if (i % 5 == 0) {
			EXPECT(got[i] == 1.0f, "element %zu above tau: expected 1, got %a", i,
				      (double)got[i]);
			continue;
		}
		EXPECT(got[i] == 0.0f || got[i] == 0.5f, "element %zu: expected 0 or 0.5, got %a",
			      i, (double)got[i]);
		sum += got[i];
		want += x[i];
		var += (double)x[i] * (0.5 - (double)x[i]);
		cnt++;
	}
	EXPECT(fabs(sum - want) <= 5 * sqrt(var),
		      "sum of pruned values: expected %.3f +- %.3f, got %.3f", want, 5 * sqrt(var),
		      sum);
	ck_assert(cnt > 0);
	free(p);
	free(x);
	free(got);
}
END_TEST

/*
 * Each element below tau becomes sign(x) * tau iff u < |x|/tau (float
 * division), u = spt_rng_unit(prune_seed ^ salt, r * cols + c), else 0,
 * with exact ties u == |x|/tau (dropped) and their next float up (kept).
 * Blocks hold 0.75 and tau = 0.5 (E = -1), so every stored value is exact.
 */
START_TEST(test_stochastic_pruning_follows_the_rule_per_element)
{
	const uint32_t rows = 5, cols = 70;
	const float tau = 0.5f;
	const uint64_t seed = 77;
	size_t n = (size_t)rows * cols, len, i;
	float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
	float *got = malloc(n * sizeof(float));
	int round;

	ck_assert(x && want && got);
	for (round = SPT_ROUND_EVEN; round <= SPT_ROUND_STOCHASTIC; round++) {
		struct spt_encode_opts o;
		struct spt_tensor_stats st;
		uint64_t pruned = 0, nonzeros = 0;
		uint8_t *p;

		for (i = 0; i < n; i++) {
			float u = spt_rng_unit(seed ^ SPT_PRUNE_SALT, i), sign = (i & 2) ? -1.0f : 1.0f;
			float a;

			switch (i % 4) {
			case 0:
				a = u * tau;			/* exact: |x|/tau == u */
				break;
			case 1:
				a = nextafterf(u * tau, 1.0f);	/* |x|/tau just above u */
				break;
			case 2:
				a = (float)(rnd_unit() * 0.5);
				break;
			default:
				a = 0.75f;
				break;
			}
			x[i] = sign * a;
			if (a >= tau)
				want[i] = x[i];
			else if (a != 0.0f && u < a / tau)
				want[i] = sign * tau;
			else
				want[i] = 0.0f;
			EXPECT(i % 4 != 0 || a == 0.0f || want[i] == 0.0f,
			       "element %zu: a tie must be dropped", i);
			EXPECT(i % 4 != 1 || want[i] == sign * tau,
			       "element %zu: above the tie must be kept", i);
			pruned += a != 0.0f && want[i] == 0.0f;
			nonzeros += want[i] != 0.0f;
		}
		spt_encode_opts_init(&o);
		o.round = (enum spt_round)round;
		o.round_seed = 5;
		o.prune.mode = SPT_PRUNE_STOCHASTIC;
		o.prune.tau = tau;
		o.prune.seed = seed;
		p = encode_alloc(x, rows, cols, &o, &len, &st);
		ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
		for (i = 0; i < n; i++)
			EXPECT(got[i] == want[i], "round %d, element %zu (x = %a): expected %a, got %a",
			       round, i, (double)x[i], (double)want[i], (double)got[i]);
		ck_assert_uint_eq(st.pruned, pruned);
		ck_assert_uint_eq(st.nonzeros, nonzeros);
		ck_assert_uint_eq(st.underflow, 0);
		free(p);
	}
	free(x);
	free(want);
	free(got);
}
END_TEST

/*
 * Stochastic rounding k = floor(y) + (u < y - floor(y)) with
 * u = spt_rng_unit(round_seed, r * cols + c): blocks [1, ...] have E = 0 and
 * y = 64 x, so x = u/64 and (u - 1)/64 are exact ties y - floor(y) == u
 * (rounded down) and the next float of u just above; whole-block and
 * ragged widths.
 */
START_TEST(test_stochastic_rounding_ties_round_down)
{
	static const uint32_t widths[] = { 256, 70 };
	const uint64_t seed = 31;
	size_t w;

	/* also through the stochastic-pruning encoder (tau = 0 prunes nothing) */
	for (w = 0; w < 4; w++) {
		uint32_t rows = 9, cols = widths[w % 2];
		size_t n = (size_t)rows * cols, len, i;
		float *x = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
		float *got = malloc(n * sizeof(float));
		struct spt_encode_opts o;
		uint8_t *p;

		ck_assert(x && want && got);
		size_t ties = 0;

		for (i = 0; i < n; i++) {
			float u = spt_rng_unit(seed, i), f = (i & 1) ? u : nextafterf(u, 1.0f);
			float y, fl;

			if ((i % cols) % 32 == 0)
				x[i] = 1.0f;
			else
				x[i] = ((i & 4) ? f - 1.0f : f) / 64;	/* y = 64 x exactly */
			y = x[i] * 64;
			fl = floorf(y);
			want[i] = (fl + (float)(u < y - fl)) / 64;
			ties += (i % cols) % 32 != 0 && y - fl == u;
		}
		EXPECT(ties > n / 3, "%u columns: expected ties in half the elements, got %zu of %zu",
		       cols, ties, n);
		spt_encode_opts_init(&o);
		o.round = SPT_ROUND_STOCHASTIC;
		o.round_seed = seed;
		if (w >= 2)
			o.prune.mode = SPT_PRUNE_STOCHASTIC;
		p = encode_alloc(x, rows, cols, &o, &len, NULL);
		ck_assert_int_eq(spt_ct_decode(p, len, got, n), 0);
		for (i = 0; i < n; i++)
			EXPECT(got[i] == want[i],
			       "%ux%u prune %d element %zu (x = %a): expected %a, got %a", rows,
			       cols, o.prune.mode, i, (double)x[i], (double)want[i], (double)got[i]);
		free(p);
		free(x);
		free(want);
		free(got);
	}
}
END_TEST

START_TEST(test_stochastic_pruning_is_deterministic_in_seed)
{
	float *x = rnd_tensor(30, 100, 0.0);
	struct spt_encode_opts o;
	uint8_t *a, *b, *c;
	size_t la, lb, lc;

	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0.1f;
	o.prune.seed = 5;
	a = encode_alloc(x, 30, 100, &o, &la, NULL);
	b = encode_alloc(x, 30, 100, &o, &lb, NULL);
	o.prune.seed = 6;
	c = encode_alloc(x, 30, 100, &o, &lc, NULL);
	EXPECT(la == lb && memcmp(a, b, la) == 0, "same prune seed: encodings differ");
	EXPECT(la != lc || memcmp(a, c, la) != 0, "prune seeds 5 and 6: same encoding");
	free(a);
	free(b);
	free(c);
	free(x);
}
END_TEST

START_TEST(test_bad_options_are_einval)
{
	float x[4] = { 1, 2, 3, 4 };
	uint8_t buf[256];
	struct spt_encode_opts o;
	size_t len;
	const float bad_tau[] = { -1.0f, NAN, INFINITY, -0.001f };
	size_t i;
	int ret;

	for (i = 0; i < sizeof(bad_tau) / sizeof(bad_tau[0]); i++) {
		spt_encode_opts_init(&o);
		o.prune.mode = SPT_PRUNE_DETERMINISTIC;
		o.prune.tau = bad_tau[i];
		ret = spt_ct_encode(x, 1, 4, &o, buf, sizeof(buf), &len, NULL);
		EXPECT(ret == -EINVAL, "tau %g: expected -EINVAL, got %d", (double)bad_tau[i],
			      ret);
	}
	spt_encode_opts_init(&o);
	o.prune.mode = (enum spt_prune_mode)3;
	ck_assert_int_eq(spt_ct_encode(x, 1, 4, &o, buf, sizeof(buf), &len, NULL), -EINVAL);
	spt_encode_opts_init(&o);
	o.round = (enum spt_round)2;
	ck_assert_int_eq(spt_ct_encode(x, 1, 4, &o, buf, sizeof(buf), &len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_encode(NULL, 1, 4, NULL, buf, sizeof(buf), &len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_encode(x, 1, 4, NULL, NULL, sizeof(buf), &len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_encode(x, 1, 4, NULL, buf, sizeof(buf), NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_encode(x, 0, 4, NULL, buf, sizeof(buf), &len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_encode(x, 4, 0, NULL, buf, sizeof(buf), &len, NULL), -EINVAL);
	ret = spt_ct_encode(x, SPT_CT_MAX_DIM + 1, 1, NULL, buf, sizeof(buf), &len, NULL);
	EXPECT(ret == -E2BIG, "rows beyond SPT_CT_MAX_DIM: expected -E2BIG, got %d", ret);
	x[2] = NAN;
	ck_assert_int_eq(spt_ct_encode(x, 1, 4, NULL, buf, sizeof(buf), &len, NULL), -EDOM);
	x[2] = -INFINITY;
	ck_assert_int_eq(spt_ct_encode(x, 2, 2, NULL, buf, sizeof(buf), &len, NULL), -EDOM);
}
END_TEST

/* ---- bounds and -ENOSPC ------------------------------------------------------------ */

START_TEST(test_bound_covers_every_encoding)
{
	int t;

	ck_assert_uint_eq(spt_ct_bound(0, 5), 0);
	ck_assert_uint_eq(spt_ct_bound(5, 0), 0);
	ck_assert_uint_eq(spt_ct_bound(SPT_CT_MAX_DIM + 1, 1), 0);
	ck_assert_uint_eq(spt_ct_bound(1, SPT_CT_MAX_DIM + 1), 0);
	ck_assert_uint_ge(spt_ct_bound(SPT_CT_MAX_DIM, 1), worst_size(SPT_CT_MAX_DIM, 1));
	for (t = 0; t < 60; t++) {
		uint32_t r = 1 + rnd32() % 40, c = 1 + rnd32() % 300;
		float *x = rnd_tensor(r, c, (double)(t % 3) / 4);
		size_t len;
		uint8_t *p = encode_alloc(x, r, c, NULL, &len, NULL);

		ck_assert_uint_ge(spt_ct_bound(r, c), worst_size(r, c));
		free(p);
		free(x);
	}
}
END_TEST

/* Either rounding, without and with stochastic pruning, ragged and whole blocks. */
static void check_small_capacity(uint32_t rows, uint32_t cols)
{
	enum { GUARD = 64 };
	float *x = rnd_tensor(rows, cols, 0.5);
	int v;

	for (v = 0; v < 4; v++) {
		int round = v & 1;
		struct spt_encode_opts o;
		size_t len, cap, i;
		uint8_t *full, *buf;

		spt_encode_opts_init(&o);
		o.round = (enum spt_round)round;
		o.round_seed = 17;
		if (v >= 2) {
			o.prune.mode = SPT_PRUNE_STOCHASTIC;
			o.prune.tau = 0.3f;
			o.prune.seed = 18;
		}
		full = encode_alloc(x, rows, cols, &o, &len, NULL);
		buf = malloc(len + GUARD);
		ck_assert(buf);
		for (cap = 0; cap < len; cap++) {
			size_t got = 12345;
			int ret;

			memset(buf, 0xa5, len + GUARD);
			ret = spt_ct_encode(x, rows, cols, &o, buf, cap, &got, NULL);
			EXPECT(ret == -ENOSPC, "round %d, cap %zu of %zu: expected -ENOSPC, got %d",
			       round, cap, len, ret);
			for (i = cap; i < len + GUARD; i++)
				EXPECT(buf[i] == 0xa5, "round %d, cap %zu: byte %zu beyond cap written",
				       round, cap, i);
		}
		memset(buf, 0xa5, len + GUARD);
		ck_assert_int_eq(spt_ct_encode(x, rows, cols, &o, buf, len, &cap, NULL), 0);
		ck_assert_uint_eq(cap, len);
		EXPECT(memcmp(buf, full, len) == 0, "round %d, exact capacity: different bytes",
		       round);
		for (i = len; i < len + GUARD; i++)
			EXPECT(buf[i] == 0xa5, "round %d, exact capacity: byte %zu beyond written",
			       round, i);
		free(buf);
		free(full);
	}
	free(x);
}

START_TEST(test_small_capacity_is_enospc_and_writes_nothing_beyond)
{
	check_small_capacity(3, 70);
	check_small_capacity(6, 64);
}
END_TEST

/* ---- validation -------------------------------------------------------------------- */

/* A small sparse tensor spanning 3 tiles with a ragged last block column. */
static uint8_t *sample(size_t *len, float **xout)
{
	uint32_t rows = 50, cols = 70;	/* bpr 3, 150 blocks, 3 tiles */
	float *x = rnd_tensor(rows, cols, 0.7);
	size_t i;
	uint8_t *p;

	for (i = 0; i < 32; i++)	/* row 0 block 1 entirely zero */
		x[32 + i] = 0.0f;
	for (i = 21 * 70; i < 43 * 70; i++)
		x[i] = 0.0f;	/* blocks 63..128: tile 1 has an empty L1 mask */
	p = encode_alloc(x, rows, cols, NULL, len, NULL);
	if (xout)
		*xout = x;
	else
		free(x);
	return p;
}

START_TEST(test_valid_tensor_reports_info)
{
	struct spt_ct_info info;
	size_t len;
	uint8_t *p = sample(&len, NULL);

	memset(&info, 0xee, sizeof(info));
	ck_assert_int_eq(spt_ct_validate(p, len, &info), 0);
	ck_assert_uint_eq(info.rows, 50);
	ck_assert_uint_eq(info.cols, 70);
	ck_assert_uint_eq(info.blocks_per_row, 3);
	ck_assert_uint_eq(info.tiles, 3);
	ck_assert_uint_eq(info.nz_blocks, get64(p + H_NZB));
	ck_assert_uint_eq(info.nonzeros, get64(p + H_NNZ));
	ck_assert_uint_eq(info.total_bytes, len);
	ck_assert_int_eq(spt_ct_validate(p, len, NULL), 0);
	ck_assert_int_eq(validate_copy(p, len), 0);
	ck_assert_int_eq(spt_ct_validate(NULL, len, &info), -EINVAL);
	free(p);
}
END_TEST

static void *decode_untrusted_thread(void *arg)
{
	const uint8_t *q = arg;
	static float out[50 * 70];
	static int ret;

	ret = spt_ct_decode(q, get64(q + H_TOTAL), out, 50 * 70);
	return &ret;
}

/*
 * spt_ct_set_trusted(): the readers skip the tile records' check (a bad value
 * byte passes) but still check the header, the length and the tile table;
 * spt_ct_validate() and other threads still check everything.
 */
START_TEST(test_trusted_mode_checks_header_and_table_only)
{
	size_t len, i;
	uint8_t *p = sample(&len, NULL);
	uint32_t tiles = get32(p + H_TILES), pl = 64 + 4 * (tiles + 1);
	uint8_t *bad = exact_copy(p, len), *tab;
	float ref[50 * 70], out[50 * 70];
	pthread_t th;
	void *res;

	ck_assert_uint_eq(tiles, 3);
	ck_assert(get64(p + pl) & 1);	/* block 0 is stored: its first value at pl + 13 */
	bad[pl + 13] = 0x80;		/* -128: invalid */
	ck_assert_int_eq(spt_ct_decode(p, len, ref, 50 * 70), 0);
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), -EBADMSG);

	ck_assert(!spt_ct_set_trusted(true));
	ck_assert(spt_ct_set_trusted(true));
	/* a valid tensor decodes to the same floats */
	memset(out, 0xee, sizeof(out));
	ck_assert_int_eq(spt_ct_decode(p, len, out, 50 * 70), 0);
	ck_assert_mem_eq(out, ref, sizeof(ref));
	/* the records are not read for checking, but validate checks them */
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), 0);
	ck_assert_int_eq(spt_ct_validate(bad, len, NULL), -EBADMSG);
	/* another thread is not trusted */
	ck_assert_int_eq(pthread_create(&th, NULL, decode_untrusted_thread, bad), 0);
	ck_assert_int_eq(pthread_join(th, &res), 0);
	ck_assert_int_eq(*(int *)res, -EBADMSG);
	/* header, length and table are still checked */
	for (i = 0; i < len; i += 7) {
		uint8_t *q = exact_copy(p, i);

		ck_assert_int_eq(spt_ct_decode(q, i, out, 50 * 70), -EBADMSG);
		free(q);
	}
	memcpy(bad, p, len);
	bad[H_MAGIC] ^= 1;
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), -EBADMSG);
	memcpy(bad, p, len);
	put64(bad + H_TOTAL, len - 1);
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), -EBADMSG);
	/* tile 1 is an empty L1 mask: make it 4 bytes long, then reversed */
	memcpy(bad, p, len);
	tab = bad + 64;
	ck_assert_uint_eq(get32(tab + 8) - get32(tab + 4), 8);
	put32(tab + 8, get32(tab + 4) + 4);
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), -EBADMSG);
	put32(tab + 8, get32(tab + 4) - 1);
	ck_assert_int_eq(spt_ct_colsum(bad, len, out, 70), -EBADMSG);
	memcpy(bad, p, len);
	put32(tab, 1);
	ck_assert_int_eq(spt_ct_decode(bad, len, out, 50 * 70), -EBADMSG);

	ck_assert(spt_ct_set_trusted(false));
	ck_assert(!spt_ct_set_trusted(false));
	free(bad);
	free(p);
}
END_TEST

START_TEST(test_every_truncation_is_rejected)
{
	size_t len, l;
	uint8_t *p = sample(&len, NULL);
	float out[50 * 70];

	for (l = 0; l < len; l++) {
		uint8_t *q = exact_copy(p, l);
		int ret = spt_ct_validate(q, l, NULL);

		EXPECT(ret == -EBADMSG, "prefix of %zu of %zu bytes: expected -EBADMSG, got %d",
			      l, len, ret);
		ret = spt_ct_decode(q, l, out, 50 * 70);
		EXPECT(ret == -EBADMSG, "decode prefix %zu: expected -EBADMSG, got %d", l, ret);
		free(q);
	}
	free(p);
}
END_TEST

START_TEST(test_trailing_garbage_is_rejected)
{
	size_t len;
	uint8_t *p = sample(&len, NULL), *q = malloc(len + 4);

	ck_assert(q);
	memcpy(q, p, len);
	q[len] = 0;
	ck_assert_int_eq(validate_copy(q, len + 1), -EBADMSG);
	/* also with total_bytes claiming the longer length */
	put64(q + H_TOTAL, len + 4);
	ck_assert_int_eq(validate_copy(q, len + 4), -EBADMSG);
	free(p);
	free(q);
}
END_TEST

struct header_fault {
	const char *what;
	unsigned int off, size;
	uint64_t value;
	int add;	/* value is added to the field */
};

START_TEST(test_header_faults_are_rejected)
{
	const struct header_fault faults[] = {
		{ "magic", H_MAGIC, 4, 0x54435054u, 0 },
		{ "magic byte order", H_MAGIC, 4, 0x53504354u, 0 },
		{ "version 0", H_VERSION, 2, 0, 0 },
		{ "version 2", H_VERSION, 2, 2, 0 },
		{ "version 0x101", H_VERSION, 2, 0x101, 0 },
		{ "flags bit 0", H_FLAGS, 2, 1, 0 },
		{ "flags bit 15", H_FLAGS, 2, 0x8000, 0 },
		{ "rows 0", H_ROWS, 4, 0, 0 },
		{ "cols 0", H_COLS, 4, 0, 0 },
		{ "rows + 22 (more tiles)", H_ROWS, 4, 22, 1 },
		{ "cols - 7 (fewer blocks per row)", H_COLS, 4, (uint64_t)-7, 1 },
		{ "cols + 30 (more blocks per row)", H_COLS, 4, 30, 1 },
		{ "blocks_per_row + 1", H_BPR, 4, 1, 1 },
		{ "blocks_per_row - 1", H_BPR, 4, (uint64_t)-1, 1 },
		{ "tiles + 1", H_TILES, 4, 1, 1 },
		{ "tiles - 1", H_TILES, 4, (uint64_t)-1, 1 },
		{ "nz_blocks + 1", H_NZB, 8, 1, 1 },
		{ "nz_blocks - 1", H_NZB, 8, (uint64_t)-1, 1 },
		{ "nonzeros + 1", H_NNZ, 8, 1, 1 },
		{ "nonzeros - 1", H_NNZ, 8, (uint64_t)-1, 1 },
		{ "payload_bytes + 1", H_PAYLOAD, 4, 1, 1 },
		{ "payload_bytes - 1", H_PAYLOAD, 4, (uint64_t)-1, 1 },
		{ "reserved0", H_RES0, 4, 1, 0 },
		{ "total_bytes + 1", H_TOTAL, 8, 1, 1 },
		{ "total_bytes - 1", H_TOTAL, 8, (uint64_t)-1, 1 },
		{ "total_bytes high bit", H_TOTAL, 8, 1ull << 63, 1 },
		{ "reserved1[0]", H_RES1, 4, 1, 0 },
		{ "reserved1[1]", H_RES1 + 4, 4, 0x80000000u, 0 },
		{ "rows huge", H_ROWS, 4, 0xffffffffu, 0 },
		{ "cols huge", H_COLS, 4, 0xffffffffu, 0 },
	};
	size_t len, i;
	uint8_t *p = sample(&len, NULL);
	float *out = malloc(50 * 70 * sizeof(float));

	ck_assert(out);
	for (i = 0; i < sizeof(faults) / sizeof(faults[0]); i++) {
		const struct header_fault *f = &faults[i];
		uint8_t *q = exact_copy(p, len);
		uint64_t v = f->size == 8 ? get64(q + f->off) :
			     f->size == 4 ? get32(q + f->off) :
					    (uint64_t)(q[f->off] | q[f->off + 1] << 8);
		int ret;

		v = f->add ? v + f->value : f->value;
		if (f->size == 8)
			put64(q + f->off, v);
		else if (f->size == 4)
			put32(q + f->off, (uint32_t)v);
		else {
			q[f->off] = (uint8_t)v;
			q[f->off + 1] = (uint8_t)(v >> 8);
		}
		ret = spt_ct_validate(q, len, NULL);
		EXPECT(ret == -EBADMSG, "header fault '%s': expected -EBADMSG, got %d",
			      f->what, ret);
		ret = spt_ct_decode(q, len, out, 50 * 70);
		EXPECT(ret == -EBADMSG, "decode, header fault '%s': expected -EBADMSG, got %d",
			      f->what, ret);
		free(q);
	}
	free(out);
	free(p);
}
END_TEST

START_TEST(test_consistent_huge_header_is_rejected_without_overread)
{
	/* every derived field consistent with a huge shape, but no payload */
	const uint32_t dims[][2] = { { SPT_CT_MAX_DIM, SPT_CT_MAX_DIM },
				     { SPT_CT_MAX_DIM + 1, 1 },
				     { 0xffffffffu, 0xffffffffu },
				     { 1000, 1000 } };
	size_t i;

	for (i = 0; i < sizeof(dims) / sizeof(dims[0]); i++) {
		uint64_t rows = dims[i][0], cols = dims[i][1], bpr = (cols + 31) / 32;
		uint64_t tiles = (rows * bpr + 63) / 64;
		uint8_t h[64 + 8 + 8] = { 0 };
		int ret;

		put32(h + H_MAGIC, SPT_CT_MAGIC);
		h[H_VERSION] = 1;
		put32(h + H_ROWS, (uint32_t)rows);
		put32(h + H_COLS, (uint32_t)cols);
		put32(h + H_BPR, (uint32_t)bpr);
		put32(h + H_TILES, (uint32_t)tiles);
		put32(h + H_PAYLOAD, (uint32_t)(8 * tiles));
		put64(h + H_TOTAL, 64 + 4 * (tiles + 1) + 8 * tiles);
		put32(h + 68, 8);
		ret = validate_copy(h, sizeof(h));
		EXPECT(ret == -EBADMSG, "%llux%llu header on %zu bytes: expected -EBADMSG, got %d",
			      (unsigned long long)rows, (unsigned long long)cols, sizeof(h), ret);
	}
}
END_TEST

static void expect_grid_rejected(const struct grid *g, const char *what)
{
	size_t len;
	uint8_t *p = serialize(g, &len), *q = exact_copy(p, len);
	float *out = malloc((size_t)g->rows * g->cols * sizeof(float));
	struct spt_unpacked u;
	int ret;

	ck_assert(out);
	ret = spt_ct_validate(q, len, NULL);
	EXPECT(ret == -EBADMSG, "%s: expected -EBADMSG, got %d", what, ret);
	ret = spt_ct_decode(q, len, out, (size_t)g->rows * g->cols);
	EXPECT(ret == -EBADMSG, "decode, %s: expected -EBADMSG, got %d", what, ret);
	ret = spt_ct_unpack(q, len, &u);
	EXPECT(ret == -EBADMSG, "unpack, %s: expected -EBADMSG, got %d", what, ret);
	free(out);
	free(p);
	free(q);
}

static void expect_grid_accepted(const struct grid *g, const char *what)
{
	size_t len;
	uint8_t *p = serialize(g, &len), *q = exact_copy(p, len);
	int ret = spt_ct_validate(q, len, NULL);

	EXPECT(ret == 0, "%s: expected 0, got %d", what, ret);
	free(p);
	free(q);
}

/* A hand-made grid: rows x 40 (bpr 2, last block 8 wide), a few present blocks. */
static void small_grid(struct grid *g, uint32_t rows)
{
	uint64_t b;

	grid_init(g, rows, 40);
	for (b = 0; b < g->nblocks; b += 3) {
		g->present[b] = 1;
		g->l2[b] = 0x81;
		g->exp8[b] = 120;
		g->k[32 * b] = 5;
		g->k[32 * b + 7] = -127;
	}
}

START_TEST(test_record_faults_are_rejected)
{
	struct grid g;

	small_grid(&g, 20);	/* 40 blocks: one partial tile */
	expect_grid_accepted(&g, "hand-made grid");
	g.present[40] = 1;	/* L1 bit beyond the last block */
	g.l2[40] = 1;
	g.k[32 * 40] = 1;
	expect_grid_rejected(&g, "L1 bit beyond the last block");
	g.present[40] = 0;

	g.l2[1] = 1u << 8;	/* block 1 is row 0's ragged block: columns 32..39 */
	g.present[1] = 1;
	g.k[32 + 8] = 3;
	g.exp8[1] = 127;
	expect_grid_rejected(&g, "L2 bit beyond cols in a ragged block");
	g.l2[1] = 1u << 7;
	g.k[32 + 7] = 3;
	expect_grid_accepted(&g, "L2 bit on the last column of a ragged block");
	g.l2[1] = 1u << 31;
	g.k[32 + 31] = 3;
	expect_grid_rejected(&g, "L2 bit 31 in a ragged block");
	g.present[1] = 0;

	g.l2[3] = 0;
	expect_grid_rejected(&g, "present block with an empty L2 mask");
	g.l2[3] = 0x81;

	g.exp8[3] = 0xff;
	expect_grid_rejected(&g, "exponent 0xFF");
	g.exp8[3] = 0xfe;
	expect_grid_accepted(&g, "exponent 0xFE (E = 127)");
	g.exp8[3] = 0x00;
	expect_grid_accepted(&g, "exponent 0x00 (E = -127)");
	g.exp8[3] = 120;

	g.k[32 * 6 + 7] = 0;
	expect_grid_rejected(&g, "stored value 0");
	g.k[32 * 6 + 7] = -128;
	expect_grid_rejected(&g, "stored value -128");
	g.k[32 * 6 + 7] = 127;
	expect_grid_accepted(&g, "stored value 127");

	g.tile_pad = 1;
	expect_grid_rejected(&g, "a byte after a tile's records, offsets consistent");
	g.tile_pad = 8;
	expect_grid_rejected(&g, "8 bytes after a tile's records, offsets consistent");
	g.tile_pad = 0;
	grid_free(&g);
}
END_TEST

START_TEST(test_bad_value_at_any_position_is_rejected)
{
	const int8_t bad[2] = { 0, -128 };
	struct grid g;
	int j, i;
	char what[64];

	grid_init(&g, 2, 64);	/* 4 dense blocks */
	for (j = 0; j < 4 * 32; j++)
		g.k[j] = (int8_t)(j % 2 ? 1 + j % 127 : -1 - j % 127);
	for (j = 0; j < 4; j++) {
		g.present[j] = 1;
		g.l2[j] = 0xffffffffu;
		g.exp8[j] = 100;
	}
	expect_grid_accepted(&g, "dense grid");
	for (i = 0; i < 2; i++)
		for (j = 0; j < 4 * 32; j += 3) {
			int8_t saved = g.k[j];

			g.k[j] = bad[i];
			snprintf(what, sizeof(what), "value %d at element %d", bad[i], j);
			expect_grid_rejected(&g, what);
			g.k[j] = saved;
		}
	grid_free(&g);
}
END_TEST

START_TEST(test_offset_table_faults_are_rejected)
{
	struct grid g;
	size_t len;
	uint8_t *p, *q;
	uint32_t o1, o2, o3;

	small_grid(&g, 96);	/* 192 blocks: 3 tiles */
	p = serialize(&g, &len);
	ck_assert_int_eq(validate_copy(p, len), 0);
	o1 = get32(p + 68);
	o2 = get32(p + 72);
	o3 = get32(p + 76);
	ck_assert_uint_eq(o3, get32(p + H_PAYLOAD));

	q = exact_copy(p, len);
	put32(q + 64, 1);
	EXPECT(validate_copy(q, len) == -EBADMSG, "tile 0 not at offset 0 accepted");
	free(q);

	/* a pad byte before tile 0, every offset shifted: only entry 0 != 0 is wrong */
	q = calloc(1, len + 1);
	ck_assert(q);
	memcpy(q, p, 80);
	memcpy(q + 81, p + 80, len - 80);
	put32(q + 64, 1);
	put32(q + 68, o1 + 1);
	put32(q + 72, o2 + 1);
	put32(q + 76, o3 + 1);
	put32(q + H_PAYLOAD, o3 + 1);
	put64(q + H_TOTAL, len + 1);
	EXPECT(validate_copy(q, len + 1) == -EBADMSG, "payload not starting with tile 0 accepted");
	put32(q + 64, 0);
	EXPECT(validate_copy(q, len + 1) == -EBADMSG, "pad byte read as tile 0 accepted");
	free(q);

	q = exact_copy(p, len);
	put32(q + 68, o2);	/* tile 1 starting where tile 2 starts */
	EXPECT(validate_copy(q, len) == -EBADMSG, "tile 0 overlong accepted");
	memcpy(q, p, len);
	put32(q + 68, o2 + 1);	/* decreasing: o1 > o2 */
	EXPECT(validate_copy(q, len) == -EBADMSG, "decreasing offsets accepted");
	memcpy(q, p, len);
	put32(q + 72, o1 - 1);	/* decreasing: o2 < o1 */
	EXPECT(validate_copy(q, len) == -EBADMSG, "decreasing offsets accepted");
	memcpy(q, p, len);
	put32(q + 72, o3 + 8);	/* beyond the payload */
	EXPECT(validate_copy(q, len) == -EBADMSG, "offset beyond the payload accepted");
	memcpy(q, p, len);
	put32(q + 72, 0xfffffff0u);
	EXPECT(validate_copy(q, len) == -EBADMSG, "offset near 2^32 accepted");
	memcpy(q, p, len);
	put32(q + 76, o3 - 1);	/* last entry not the payload size */
	EXPECT(validate_copy(q, len) == -EBADMSG, "table end != payload_bytes accepted");
	free(q);
	free(p);
	grid_free(&g);
}
END_TEST

START_TEST(test_every_bit_flip_keeps_validate_and_decode_consistent)
{
	struct spt_ct_info info;
	size_t len, i;
	int bit, rejected = 0, total = 0;
	float *x;
	uint8_t *p = sample(&len, &x);
	float *out = malloc(50 * 70 * sizeof(float));

	ck_assert(out);
	for (i = 0; i < len; i++)
		for (bit = 0; bit < 8; bit++) {
			uint8_t *q = exact_copy(p, len);
			int v, d;

			q[i] ^= (uint8_t)(1u << bit);
			v = spt_ct_validate(q, len, &info);
			d = spt_ct_decode(q, len, out, 50 * 70);
			EXPECT(v == 0 || v == -EBADMSG, "flip %zu.%d: validate returned %d", i,
				      bit, v);
			if (v == 0)
				EXPECT(d == 0 || (d == -EINVAL &&
							 (uint64_t)info.rows * info.cols != 50 * 70),
					      "flip %zu.%d: valid but decode returned %d", i, bit, d);
			else
				EXPECT(d == -EBADMSG, "flip %zu.%d: invalid but decode returned %d",
					      i, bit, d);
			if (i < 8 || (i >= 16 && i < 64))	/* all but rows and cols */
				EXPECT(v == -EBADMSG, "header flip %zu.%d: expected -EBADMSG, got %d",
					      i, bit, v);
			rejected += v != 0;
			total++;
			free(q);
		}
	EXPECT(rejected > total / 4, "expected most bit flips rejected, got %d of %d",
		      rejected, total);
	free(out);
	free(p);
	free(x);
}
END_TEST

START_TEST(test_decode_checks_its_arguments)
{
	size_t len;
	uint8_t *p = sample(&len, NULL);
	float *out = malloc(50 * 70 * sizeof(float));

	ck_assert(out);
	ck_assert_int_eq(spt_ct_decode(NULL, len, out, 50 * 70), -EINVAL);
	ck_assert_int_eq(spt_ct_decode(p, len, NULL, 50 * 70), -EINVAL);
	ck_assert_int_eq(spt_ct_decode(p, len, out, 50 * 70 - 1), -EINVAL);
	ck_assert_int_eq(spt_ct_decode(p, len, out, 50 * 70 + 1), -EINVAL);
	ck_assert_int_eq(spt_ct_decode(p, len, out, 50 * 70), 0);
	free(out);
	free(p);
}
END_TEST

/* ---- transpose --------------------------------------------------------------------- */

static void check_transpose_z(uint32_t rows, uint32_t cols, double zero,
			      const struct spt_encode_opts *o)
{
	size_t n = (size_t)rows * cols, la, lb, lt, r, c;
	float *x = rnd_tensor(rows, cols, zero), *d = malloc(n * sizeof(float));
	float *t = malloc(n * sizeof(float));
	struct spt_tensor_stats sa, sb;
	uint8_t *a, *want, *got;
	size_t cap;
	int ret;

	ck_assert(d && t);
	a = encode_alloc(x, rows, cols, NULL, &la, NULL);
	ck_assert_int_eq(spt_ct_decode(a, la, d, n), 0);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			t[c * rows + r] = d[r * cols + c];
	want = encode_alloc(t, cols, rows, o, &lb, &sb);
	cap = spt_ct_bound(cols, rows);
	got = malloc(cap);
	ck_assert(got);
	ret = spt_ct_transpose(a, la, o, got, cap, &lt, &sa);
	EXPECT(ret == 0, "transpose %ux%u: expected 0, got %d", rows, cols, ret);
	EXPECT(lt == lb && memcmp(got, want, lb) == 0,
		      "transpose %ux%u: differs from decode, transpose, encode (%zu vs %zu bytes)",
		      rows, cols, lt, lb);
	ck_assert_uint_eq(sa.elements, sb.elements);
	ck_assert_uint_eq(sa.natural_zeros, sb.natural_zeros);
	ck_assert_uint_eq(sa.pruned, sb.pruned);
	ck_assert_uint_eq(sa.underflow, sb.underflow);
	ck_assert_uint_eq(sa.nonzeros, sb.nonzeros);
	ck_assert_uint_eq(sa.nz_blocks, sb.nz_blocks);
	EXPECT(sa.sum_abs == sb.sum_abs && sa.sum_abs_kept == sb.sum_abs_kept,
	       "transpose %ux%u: sums %.17g/%.17g, expected %.17g/%.17g", rows, cols,
	       sa.sum_abs, sa.sum_abs_kept, sb.sum_abs, sb.sum_abs_kept);
	ck_assert_uint_eq(sa.bytes, lt);
	if (lt > 0) {
		ret = spt_ct_transpose(a, la, o, got, lt - 1, &lt, NULL);
		EXPECT(ret == -ENOSPC, "transpose into %zu bytes: expected -ENOSPC, got %d",
			      lb - 1, ret);
	}
	free(a);
	free(want);
	free(got);
	free(x);
	free(d);
	free(t);
}

static void check_transpose(uint32_t rows, uint32_t cols, const struct spt_encode_opts *o)
{
	check_transpose_z(rows, cols, 0.5, o);
}

START_TEST(test_transpose_equals_decode_transpose_encode)
{
	struct spt_encode_opts o;

	check_transpose(1, 1, NULL);
	check_transpose(1, 100, NULL);
	check_transpose(70, 33, NULL);
	check_transpose(64, 64, NULL);
	check_transpose(45, 129, NULL);
	spt_encode_opts_init(&o);
	o.round = SPT_ROUND_STOCHASTIC;
	o.round_seed = 3;
	check_transpose(45, 129, &o);
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0.05f;
	o.prune.seed = 4;
	check_transpose(33, 70, &o);
	o.prune.mode = SPT_PRUNE_DETERMINISTIC;
	check_transpose(33, 70, &o);
}
END_TEST

/* Row groups of every size, ragged rows and columns, empty and dense tensors. */
START_TEST(test_transpose_shapes_and_densities)
{
	static const uint32_t shapes[][2] = {
		{ 8, 8 }, { 9, 31 }, { 16, 32 }, { 17, 40 }, { 7, 200 }, { 200, 7 },
		{ 15, 64 }, { 24, 33 }, { 130, 97 }, { 257, 300 }, { 512, 10 },
	};
	static const double zeros[] = { 0.0, 0.3, 0.9, 0.999 };
	struct spt_encode_opts o;
	size_t s, z;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++)
		for (z = 0; z < sizeof(zeros) / sizeof(zeros[0]); z++)
			check_transpose_z(shapes[s][0], shapes[s][1], zeros[z], NULL);
	check_transpose_z(1, 1, 1.0, NULL);	/* one zero element */
	check_transpose_z(1, 1, 0.0, NULL);	/* one nonzero element */
	check_transpose_z(40, 70, 1.0, NULL);	/* all zero: no stored block */
	check_transpose_z(1, 513, 0.0, NULL);
	check_transpose_z(513, 1, 0.0, NULL);
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_DETERMINISTIC;
	o.prune.tau = 0.02f;
	check_transpose_z(130, 97, 0.2, &o);
	o.round = SPT_ROUND_STOCHASTIC;
	o.round_seed = 9;
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.seed = 10;
	check_transpose_z(97, 130, 0.2, &o);
}
END_TEST

START_TEST(test_transpose_rejects_bad_input)
{
	size_t len, out_len;
	uint8_t *p = sample(&len, NULL), out[64];
	size_t cap = spt_ct_bound(70, 50);
	uint8_t *big = malloc(cap);

	ck_assert(big);
	p[H_VERSION] = 2;
	ck_assert_int_eq(spt_ct_transpose(p, len, NULL, big, cap, &out_len, NULL), -EBADMSG);
	p[H_VERSION] = 1;
	ck_assert_int_eq(spt_ct_transpose(p, len - 1, NULL, big, cap, &out_len, NULL), -EBADMSG);
	ck_assert_int_eq(spt_ct_transpose(NULL, len, NULL, big, cap, &out_len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_transpose(p, len, NULL, NULL, cap, &out_len, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_transpose(p, len, NULL, big, cap, NULL, NULL), -EINVAL);
	ck_assert_int_eq(spt_ct_transpose(p, len, NULL, out, sizeof(out), &out_len, NULL), -ENOSPC);
	ck_assert_int_eq(spt_ct_transpose(p, len, NULL, big, cap, &out_len, NULL), 0);
	ck_assert_int_eq(spt_ct_validate(big, out_len, NULL), 0);
	free(big);
	free(p);
}
END_TEST

/* ---- unpack -------------------------------------------------------------------------- */

START_TEST(test_unpack_gives_the_block_grid)
{
	const uint32_t shapes[][2] = { { 1, 1 }, { 50, 70 }, { 3, 300 }, { 65, 32 } };
	size_t s;

	for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
		uint32_t rows = shapes[s][0], cols = shapes[s][1];
		float *x = rnd_tensor(rows, cols, 0.8);
		struct spt_unpacked u;
		struct grid g;
		size_t len;
		uint64_t b, nzb = 0, nnz = 0;
		uint8_t *p;
		int j;

		p = encode_alloc(x, rows, cols, NULL, &len, NULL);
		grid_from_floats(&g, x, rows, cols);
		ck_assert_int_eq(spt_ct_unpack(p, len, &u), 0);
		ck_assert_uint_eq(u.rows, rows);
		ck_assert_uint_eq(u.cols, cols);
		ck_assert_uint_eq(u.bpr, g.bpr);
		ck_assert_uint_eq(u.nblocks, g.nblocks);
		ck_assert_uint_eq(u.bytes, len);
		EXPECT(((uintptr_t)u.k & 63) == 0, "k: expected 64-byte alignment, got %p",
			      (void *)u.k);
		for (b = 0; b < g.nblocks; b++) {
			if (!g.present[b]) {
				EXPECT(u.exp[b] == SPT_EXP_ABSENT,
					      "%ux%u block %llu absent: expected SPT_EXP_ABSENT, got %d",
					      rows, cols, (unsigned long long)b, u.exp[b]);
				ck_assert_uint_eq(u.l2[b], 0);
			} else {
				EXPECT(u.exp[b] == g.exp8[b] - 127,
					      "%ux%u block %llu: expected exponent %d, got %d", rows,
					      cols, (unsigned long long)b, g.exp8[b] - 127, u.exp[b]);
				ck_assert_uint_eq(u.l2[b], g.l2[b]);
				nzb++;
				nnz += (uint64_t)__builtin_popcount(g.l2[b]);
			}
			for (j = 0; j < 32; j++)
				EXPECT(u.k[32 * b + j] == g.k[32 * b + j],
					      "%ux%u block %llu k[%d]: expected %d, got %d", rows, cols,
					      (unsigned long long)b, j, g.k[32 * b + j],
					      u.k[32 * b + j]);
		}
		ck_assert_uint_eq(u.nz_blocks, nzb);
		ck_assert_uint_eq(u.nonzeros, nnz);
		spt_unpacked_free(&u);
		spt_unpacked_free(&u);	/* idempotent after free */
		grid_free(&g);
		free(p);
		free(x);
	}
}
END_TEST

START_TEST(test_unpack_rejects_bad_input)
{
	struct spt_unpacked u;
	size_t len;
	uint8_t *p = sample(&len, NULL);

	ck_assert_int_eq(spt_ct_unpack(p, len - 1, &u), -EBADMSG);
	ck_assert_int_eq(spt_ct_unpack(NULL, len, &u), -EINVAL);
	ck_assert_int_eq(spt_ct_unpack(p, len, NULL), -EINVAL);
	free(p);
}
END_TEST

/* ---- training helpers ---------------------------------------------------------------- */

static double ref_xent(const float *l, const uint8_t *lab, uint32_t rows, uint32_t classes,
		       double *grad)
{
	double total = 0.0;
	uint32_t r, c;

	for (r = 0; r < rows; r++) {
		const float *x = l + (size_t)r * classes;
		double m = x[0], s = 0.0;

		for (c = 1; c < classes; c++)
			m = x[c] > m ? x[c] : m;
		for (c = 0; c < classes; c++)
			s += exp((double)x[c] - m);
		total += log(s) + m - x[lab[r]];
		if (grad)
			for (c = 0; c < classes; c++)
				grad[(size_t)r * classes + c] =
					(exp((double)x[c] - m) / s - (c == lab[r])) / rows;
	}
	return total / rows;
}

START_TEST(test_softmax_xent_matches_double_reference)
{
	enum { ROWS = 16, CLASSES = 10 };
	float l[ROWS * CLASSES], d[ROWS * CLASSES], loss = -1;
	double g[ROWS * CLASSES], want;
	uint8_t lab[ROWS];
	uint32_t correct = 999, want_correct = 0, r, c;
	size_t i;

	for (i = 0; i < ROWS * CLASSES; i++)
		l[i] = (float)(rnd_unit() * 8 - 4);
	for (r = 0; r < ROWS; r++) {
		uint32_t am = 0;

		lab[r] = (uint8_t)(rnd32() % CLASSES);
		if (r % 3 == 0)
			l[r * CLASSES + lab[r]] = 9.0f;	/* some rows right */
		for (c = 1; c < CLASSES; c++)
			if (l[r * CLASSES + c] > l[r * CLASSES + am])
				am = c;
		want_correct += am == lab[r];
	}
	want = ref_xent(l, lab, ROWS, CLASSES, g);
	ck_assert_int_eq(spt_softmax_xent(l, lab, ROWS, CLASSES, &loss, &correct, d), 0);
	EXPECT(fabs(loss - want) <= 1e-6 * fabs(want), "loss: expected %.9g, got %.9g", want,
		      (double)loss);
	EXPECT(correct == want_correct, "correct: expected %u, got %u", want_correct, correct);
	for (i = 0; i < ROWS * CLASSES; i++)
		EXPECT(fabs(d[i] - g[i]) <= 1e-7, "dlogits[%zu]: expected %.9g, got %.9g", i,
			      g[i], (double)d[i]);
	/* NULL correct and dlogits are allowed */
	ck_assert_int_eq(spt_softmax_xent(l, lab, ROWS, CLASSES, &loss, NULL, NULL), 0);
	EXPECT(fabs(loss - want) <= 1e-6 * fabs(want), "loss: expected %.9g, got %.9g", want,
		      (double)loss);
}
END_TEST

START_TEST(test_softmax_xent_gradient_matches_finite_differences)
{
	enum { ROWS = 3, CLASSES = 5 };
	float l[ROWS * CLASSES], d[ROWS * CLASSES], loss;
	const uint8_t lab[ROWS] = { 0, 4, 2 };
	size_t i;

	for (i = 0; i < ROWS * CLASSES; i++)
		l[i] = (float)(rnd_unit() * 2 - 1);
	ck_assert_int_eq(spt_softmax_xent(l, lab, ROWS, CLASSES, &loss, NULL, d), 0);
	for (i = 0; i < ROWS * CLASSES; i++) {
		const float h = 1.0f / 64;
		float saved = l[i], up, down;
		double fd;

		l[i] = saved + h;
		ck_assert_int_eq(spt_softmax_xent(l, lab, ROWS, CLASSES, &up, NULL, NULL), 0);
		l[i] = saved - h;
		ck_assert_int_eq(spt_softmax_xent(l, lab, ROWS, CLASSES, &down, NULL, NULL), 0);
		l[i] = saved;
		fd = ((double)up - (double)down) / (2.0 * h);
		EXPECT(fabs(fd - d[i]) <= 5e-4, "d loss/d logit %zu: expected %.6f (finite "
			      "difference), got %.6f", i, fd, (double)d[i]);
	}
}
END_TEST

START_TEST(test_softmax_xent_is_numerically_stable)
{
	const float big[4] = { 1000.0f, 1001.0f, 999.0f, 1000.5f };
	const float small[4] = { 0.0f, 1.0f, -1.0f, 0.5f };
	const float neg[4] = { -1e30f, -1e30f, 5.0f, -1e30f };
	uint8_t lab[1] = { 1 };
	float lb, ls, d[4], dn[4];
	int i;

	ck_assert_int_eq(spt_softmax_xent(big, lab, 1, 4, &lb, NULL, d), 0);
	ck_assert_int_eq(spt_softmax_xent(small, lab, 1, 4, &ls, NULL, NULL), 0);
	EXPECT(isfinite(lb) && fabsf(lb - ls) < 1e-5f,
		      "shifted logits: expected loss %.7g, got %.7g", (double)ls, (double)lb);
	for (i = 0; i < 4; i++)
		ck_assert(isfinite(d[i]));
	lab[0] = 2;
	ck_assert_int_eq(spt_softmax_xent(neg, lab, 1, 4, &lb, NULL, dn), 0);
	EXPECT(lb == 0.0f, "certain prediction: expected loss 0, got %g", (double)lb);
	lab[0] = 0;
	ck_assert_int_eq(spt_softmax_xent(neg, lab, 1, 4, &lb, NULL, dn), 0);
	EXPECT(isfinite(lb) && lb > 1e29f, "impossible label: expected loss ~1e30, got %g",
		      (double)lb);
}
END_TEST

START_TEST(test_softmax_xent_rejects_bad_input)
{
	float l[6] = { 1, 2, 3, 4, 5, 6 }, loss = 42.0f, d[6];
	uint8_t lab[2] = { 0, 2 };
	uint32_t correct;
	int ret;

	ck_assert_int_eq(spt_softmax_xent(NULL, lab, 2, 3, &loss, &correct, d), -EINVAL);
	ck_assert_int_eq(spt_softmax_xent(l, NULL, 2, 3, &loss, &correct, d), -EINVAL);
	ck_assert_int_eq(spt_softmax_xent(l, lab, 2, 3, NULL, &correct, d), -EINVAL);
	ck_assert_int_eq(spt_softmax_xent(l, lab, 0, 3, &loss, &correct, d), -EINVAL);
	ck_assert_int_eq(spt_softmax_xent(l, lab, 2, 0, &loss, &correct, d), -EINVAL);
	lab[1] = 3;
	ret = spt_softmax_xent(l, lab, 2, 3, &loss, &correct, d);
	EXPECT(ret == -EINVAL, "label 3 of 3 classes: expected -EINVAL, got %d", ret);
	lab[1] = 2;
	l[4] = NAN;
	ret = spt_softmax_xent(l, lab, 2, 3, &loss, &correct, d);
	EXPECT(ret == -EDOM, "NaN logit: expected -EDOM, got %d", ret);
	l[4] = -INFINITY;
	ret = spt_softmax_xent(l, lab, 2, 3, &loss, &correct, d);
	EXPECT(ret == -EDOM, "-Inf logit: expected -EDOM, got %d", ret);
	EXPECT(loss == 42.0f, "loss written on error: got %g", (double)loss);
}
END_TEST

START_TEST(test_sgd_momentum_follows_the_formula)
{
	enum { N = 257 };
	float w[N], v[N], g[N], w0[N], v0[N];
	const float lr = 0.05f, mom = 0.9f, wd = 5e-4f;
	int i, step;

	for (i = 0; i < N; i++) {
		w[i] = w0[i] = (float)(rnd_unit() - 0.5);
		v[i] = v0[i] = (float)(rnd_unit() - 0.5) / 10;
	}
	for (step = 0; step < 3; step++) {
		for (i = 0; i < N; i++)
			g[i] = (float)(rnd_unit() - 0.5);
		ck_assert_int_eq(spt_sgd_momentum(w, v, g, N, lr, mom, wd), 0);
		for (i = 0; i < N; i++) {
			float gp = g[i] + wd * w0[i];

			v0[i] = mom * v0[i] + gp;
			w0[i] = w0[i] - lr * v0[i];
			EXPECT(v[i] == v0[i] && w[i] == w0[i],
				      "step %d element %d: expected w %a v %a, got w %a v %a", step,
				      i, (double)w0[i], (double)v0[i], (double)w[i], (double)v[i]);
		}
	}
}
END_TEST

START_TEST(test_sgd_momentum_rejects_bad_input)
{
	float w[3] = { 1, 2, 3 }, v[3] = { 0 }, g[3] = { 1, NAN, 1 };
	int ret;

	ck_assert_int_eq(spt_sgd_momentum(w, v, g, 0, 0.1f, 0.9f, 0.0f), 0);
	ck_assert_int_eq(spt_sgd_momentum(NULL, v, g, 3, 0.1f, 0.9f, 0.0f), -EINVAL);
	ck_assert_int_eq(spt_sgd_momentum(w, NULL, g, 3, 0.1f, 0.9f, 0.0f), -EINVAL);
	ck_assert_int_eq(spt_sgd_momentum(w, v, NULL, 3, 0.1f, 0.9f, 0.0f), -EINVAL);
	ck_assert_int_eq(spt_sgd_momentum(w, v, g, 3, NAN, 0.9f, 0.0f), -EINVAL);
	ck_assert_int_eq(spt_sgd_momentum(w, v, g, 3, 0.1f, INFINITY, 0.0f), -EINVAL);
	ret = spt_sgd_momentum(w, v, g, 3, 0.1f, 0.9f, 0.0f);
	EXPECT(ret == -EDOM, "NaN gradient: expected -EDOM, got %d", ret);
	EXPECT(w[0] == 1 && w[1] == 2 && w[2] == 3 && v[0] == 0,
		      "weights changed by a rejected update");
}
END_TEST

START_TEST(test_norm_ppf_known_values)
{
	const double p[] = { 0.75, 0.9, 0.95, 0.975, 0.5, 0.025, 0.01, 0.001, 1e-10, 0.99999 };
	/* Python's statistics.NormalDist().inv_cdf */
	const double want[] = { 0.6744897501960817, 1.2815515655446008, 1.6448536269514715,
				1.9599639845400536, 0.0, -1.9599639845400538, -2.3263478740408408,
				-3.090232306167813, -6.361340902404056, 4.26489079392384 };
	size_t i;

	for (i = 0; i < sizeof(p) / sizeof(p[0]); i++) {
		double got = spt_norm_ppf(p[i]);

		EXPECT(fabs(got - want[i]) <= 1e-9 * (1 + fabs(want[i])),
			      "ppf(%g): expected %.12f, got %.12f", p[i], want[i], got);
	}
}
END_TEST

START_TEST(test_norm_ppf_inverts_the_cdf)
{
	int i;

	for (i = 1; i < 1000; i++) {
		double p = i / 1000.0, x = spt_norm_ppf(p), back = 0.5 * erfc(-x / sqrt(2.0));

		EXPECT(fabs(back - p) <= 1e-12, "Phi(ppf(%g)): expected %g, got %.15g", p, p,
			      back);
		EXPECT(fabs(x + spt_norm_ppf(1 - p)) <= 1e-9, "ppf(%g) not antisymmetric", p);
	}
	ck_assert(isfinite(spt_norm_ppf(1e-300)));
	ck_assert(spt_norm_ppf(1e-300) < -37.0);
}
END_TEST

START_TEST(test_norm_ppf_outside_open_interval_is_nan)
{
	const double bad[] = { 0.0, 1.0, -0.5, 1.5, NAN, INFINITY, -INFINITY };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT(isnan(spt_norm_ppf(bad[i])), "ppf(%g): expected NaN, got %g", bad[i],
			      spt_norm_ppf(bad[i]));
}
END_TEST

START_TEST(test_every_isa_encodes_and_decodes_identically)
{
	const enum spt_isa isas[] = { SPT_ISA_SCALAR, SPT_ISA_AVX2, SPT_ISA_AVX512 };
	uint32_t rows = 77, cols = 333;
	size_t n = (size_t)rows * cols, i, len0 = 0, len;
	float *x = rnd_tensor(rows, cols, 0.6), *d0 = malloc(n * sizeof(float));
	float *d = malloc(n * sizeof(float));
	struct spt_tensor_stats st0, st;
	struct spt_encode_opts o;
	uint8_t *p0 = NULL, *p;

	ck_assert(d0 && d);
	spt_encode_opts_init(&o);
	o.round = SPT_ROUND_STOCHASTIC;
	o.round_seed = 8;
	o.prune.mode = SPT_PRUNE_STOCHASTIC;
	o.prune.tau = 0.01f;
	for (i = 0; i < sizeof(isas) / sizeof(isas[0]); i++) {
		if (!spt_core_isa_supported(isas[i]))
			continue;
		ck_assert_int_eq(spt_core_set_isa(isas[i]), 0);
		p = encode_alloc(x, rows, cols, &o, &len, &st);
		ck_assert_int_eq(spt_ct_decode(p, len, d, n), 0);
		if (!p0) {
			p0 = p;
			len0 = len;
			st0 = st;
			memcpy(d0, d, n * sizeof(float));
			continue;
		}
		EXPECT(len == len0 && memcmp(p, p0, len) == 0,
			      "%s: encoding differs from scalar", spt_core_isa_name(isas[i]));
		EXPECT(memcmp(&st, &st0, sizeof(st)) == 0, "%s: stats differ from scalar",
			      spt_core_isa_name(isas[i]));
		EXPECT(memcmp(d, d0, n * sizeof(float)) == 0, "%s: decode differs from scalar",
			      spt_core_isa_name(isas[i]));
		free(p);
	}
	free(p0);
	free(x);
	free(d0);
	free(d);
}
END_TEST

/* ---- SGD on the compressed gradient ------------------------------------------- */

/*
 * A gradient from the independent serializer: each block present w.p. @dens
 * with a full, random or single-element mask, k in [-127, 127] \ {0} and an
 * E8M0 byte from the whole range 0..254 (@wide) or around 2^0.
 */
static uint8_t *rnd_grad(uint32_t rows, uint32_t cols, double dens, int wide, size_t *len)
{
	struct grid g;
	uint8_t *p, *q;
	uint64_t b;

	grid_init(&g, rows, cols);
	for (b = 0; b < g.nblocks; b++) {
		uint32_t c0 = (uint32_t)(b % g.bpr) * 32, n = cols - c0 < 32 ? cols - c0 : 32;
		uint32_t valid = n == 32 ? ~0u : (1u << n) - 1, l2, j;

		if (rnd_unit() >= dens)
			continue;
		switch (rnd32() % 3) {
		case 0:
			l2 = valid;
			break;
		case 1:
			l2 = rnd32() & valid;
			break;
		default:
			l2 = 1u << (rnd32() % n);
			break;
		}
		if (!l2)
			l2 = 1;
		for (j = 0; j < 32; j++)
			if (l2 >> j & 1)
				g.k[32 * b + j] = (int8_t)((rnd32() % 2 ? 1 : -1) *
							   (int)(1 + rnd32() % 127));
		g.l2[b] = l2;
		g.present[b] = 1;
		g.exp8[b] = (uint8_t)(wide ? rnd32() % 255 : 120 + rnd32() % 10);
	}
	q = serialize(&g, len);
	p = exact_copy(q, *len);
	free(q);
	grid_free(&g);
	return p;
}

/* w, v over a few binades, with exact zeros of both signs. */
static float *rnd_state(size_t n)
{
	float *x = malloc((n ? n : 1) * sizeof(float));
	size_t i;

	ck_assert(x);
	for (i = 0; i < n; i++) {
		uint32_t r = rnd32() % 16;

		x[i] = r == 0 ? 0.0f : r == 1 ? -0.0f :
		       ldexpf((float)(rnd_unit() * 2.0 - 1.0), (int)(rnd32() % 16) - 8);
	}
	return x;
}

/*
 * Two steps of spt_sgd_momentum_ct on @ct against spt_ct_decode then
 * spt_sgd_momentum on copies of the same w and v: the same bits.
 */
static void check_sgd_ct(const uint8_t *ct, size_t len, uint32_t rows, uint32_t cols,
			 const char *what)
{
	static const float hp[][3] = {
		{ 0.05f, 0.9f, 5e-4f }, { 0.1f, 0.0f, 0.0f }, { -0.01f, 0.99f, 1e-2f },
	};
	size_t n = (size_t)rows * cols, i;
	float *w = rnd_state(n), *v = rnd_state(n), *w2 = malloc(n * sizeof(float));
	float *v2 = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
	unsigned int step;
	int ret;

	ck_assert(w2 && v2 && g);
	memcpy(w2, w, n * sizeof(float));
	memcpy(v2, v, n * sizeof(float));
	ck_assert_int_eq(spt_ct_decode(ct, len, g, n), 0);
	for (step = 0; step < 3; step++) {
		const float *h = hp[step];

		ck_assert_int_eq(spt_sgd_momentum(w2, v2, g, n, h[0], h[1], h[2]), 0);
		ret = spt_sgd_momentum_ct(w, v, ct, len, n, h[0], h[1], h[2]);
		EXPECT(ret == 0, "%s %ux%u step %u: expected 0, got %d", what, rows, cols, step,
		       ret);
		for (i = 0; i < n; i++)
			EXPECT(!memcmp(&w[i], &w2[i], 4) && !memcmp(&v[i], &v2[i], 4),
			       "%s %ux%u step %u element %zu (g %a): expected w %a v %a, got w %a v %a",
			       what, rows, cols, step, i, (double)g[i], (double)w2[i],
			       (double)v2[i], (double)w[i], (double)v[i]);
	}
	free(w);
	free(v);
	free(w2);
	free(v2);
	free(g);
}

START_TEST(test_sgd_ct_equals_decode_then_sgd_on_random_tensors)
{
	static const double dens[] = { 0.0, 0.1, 0.5, 0.9, 1.0 };
	static const uint32_t shapes[][2] = {
		{ 1, 1 }, { 1, 32 }, { 2, 31 }, { 64, 32 }, { 3, 2048 }, { 130, 96 },
		{ 7, 33 }, { 9, 784 }, { 65, 64 }, { 1, 4097 },
	};
	unsigned int it;

	for (it = 0; it < 60; it++) {
		uint32_t rows, cols;
		size_t len;
		uint8_t *ct;

		if (it < 10) {
			rows = shapes[it][0];
			cols = shapes[it][1];
		} else {
			rows = 1 + rnd32() % 70;
			cols = 1 + rnd32() % 300;
		}
		ct = rnd_grad(rows, cols, dens[it % 5], it % 2, &len);
		check_sgd_ct(ct, len, rows, cols, it % 2 ? "wide exponents" : "serialized");
		free(ct);
	}
}
END_TEST

/* What the step feeds it: stochastic rounding and pruning, and an all-zero tensor. */
START_TEST(test_sgd_ct_equals_decode_then_sgd_on_encoded_gradients)
{
	static const double zero[] = { 0.0, 0.5, 0.95 };
	unsigned int it;

	for (it = 0; it < 18; it++) {
		uint32_t rows = 1 + rnd32() % 80, cols = it % 3 ? 1 + rnd32() % 400 : 32 * (1 + it);
		float *x = rnd_tensor(rows, cols, zero[it % 3]);
		struct spt_encode_opts o;
		size_t len;
		uint8_t *ct, *exact;

		spt_encode_opts_init(&o);
		o.round = SPT_ROUND_STOCHASTIC;
		o.round_seed = 77 + it;
		o.prune.mode = it % 2 ? SPT_PRUNE_STOCHASTIC : SPT_PRUNE_DETERMINISTIC;
		o.prune.tau = it % 6 < 3 ? 0.05f : 0.0f;
		o.prune.seed = it;
		ct = encode_alloc(x, rows, cols, &o, &len, NULL);
		exact = exact_copy(ct, len);
		check_sgd_ct(exact, len, rows, cols, "encoded");
		free(exact);
		free(ct);
		memset(x, 0, (size_t)rows * cols * sizeof(float));
		ct = encode_alloc(x, rows, cols, &o, &len, NULL);
		exact = exact_copy(ct, len);
		check_sgd_ct(exact, len, rows, cols, "all-zero");
		free(exact);
		free(ct);
		free(x);
	}
}
END_TEST

/* Every error leaves w and v as they were. */
static void expect_sgd_ct_err(float *w, float *v, const uint8_t *ct, size_t len, size_t n,
			      float lr, float mom, float wd, int want, const char *what)
{
	float w0[3 * 40], v0[3 * 40];
	int ret;

	if (w)
		memcpy(w0, w, 3 * 40 * sizeof(float));
	if (v)
		memcpy(v0, v, 3 * 40 * sizeof(float));
	ret = spt_sgd_momentum_ct(w, v, ct, len, n, lr, mom, wd);
	EXPECT(ret == want, "%s: expected %d, got %d", what, want, ret);
	EXPECT(!w || !memcmp(w, w0, sizeof(w0)), "%s: w changed", what);
	EXPECT(!v || !memcmp(v, v0, sizeof(v0)), "%s: v changed", what);
}

START_TEST(test_sgd_ct_rejects_bad_input)
{
	enum { R = 3, C = 40, N = R * C };
	float w[N], v[N];
	size_t len, i;
	uint8_t *ct = rnd_grad(R, C, 1.0, 0, &len), *bad;

	for (i = 0; i < N; i++) {
		w[i] = (float)i / N - 0.5f;
		v[i] = (float)i / (2 * N);
	}
	expect_sgd_ct_err(NULL, v, ct, len, N, 0.1f, 0.9f, 0.0f, -EINVAL, "NULL w");
	expect_sgd_ct_err(w, NULL, ct, len, N, 0.1f, 0.9f, 0.0f, -EINVAL, "NULL v");
	expect_sgd_ct_err(w, v, NULL, len, N, 0.1f, 0.9f, 0.0f, -EINVAL, "NULL gradient");
	expect_sgd_ct_err(w, v, ct, len, N - 1, 0.1f, 0.9f, 0.0f, -EINVAL, "n one short");
	expect_sgd_ct_err(w, v, ct, len, N + 1, 0.1f, 0.9f, 0.0f, -EINVAL, "n one over");
	expect_sgd_ct_err(w, v, ct, len, 0, 0.1f, 0.9f, 0.0f, -EINVAL, "n zero");
	expect_sgd_ct_err(w, v, ct, len, N, NAN, 0.9f, 0.0f, -EINVAL, "NaN lr");
	expect_sgd_ct_err(w, v, ct, len, N, INFINITY, 0.9f, 0.0f, -EINVAL, "Inf lr");
	expect_sgd_ct_err(w, v, ct, len, N, 0.1f, -INFINITY, 0.0f, -EINVAL, "-Inf momentum");
	expect_sgd_ct_err(w, v, ct, len, N, 0.1f, 0.9f, NAN, -EINVAL, "NaN weight decay");
	/* the tensor: truncated, one byte more, a corrupt header, a corrupt record */
	for (i = 0; i < len; i++) {
		bad = exact_copy(ct, i);
		expect_sgd_ct_err(w, v, bad, i, N, 0.1f, 0.9f, 0.0f, -EBADMSG, "truncated");
		free(bad);
	}
	bad = malloc(len + 1);
	ck_assert(bad);
	memcpy(bad, ct, len);
	bad[len] = 0;
	expect_sgd_ct_err(w, v, bad, len + 1, N, 0.1f, 0.9f, 0.0f, -EBADMSG, "trailing byte");
	memcpy(bad, ct, len);
	bad[H_MAGIC] ^= 1;
	expect_sgd_ct_err(w, v, bad, len, N, 0.1f, 0.9f, 0.0f, -EBADMSG, "bad magic");
	memcpy(bad, ct, len);
	bad[len - 1] = 0;	/* the last value byte: k = 0 is not stored */
	expect_sgd_ct_err(w, v, bad, len, N, 0.1f, 0.9f, 0.0f, -EBADMSG, "zero value byte");
	memcpy(bad, ct, len);
	bad[len - 1] = 0x80;	/* k = -128 */
	expect_sgd_ct_err(w, v, bad, len, N, 0.1f, 0.9f, 0.0f, -EBADMSG, "value -128");
	free(bad);
	/* non-finite w or v anywhere: first, in the middle, the scalar tail */
	for (i = 0; i < N; i += 17) {
		float keep = w[i];

		w[i] = NAN;
		expect_sgd_ct_err(w, v, ct, len, N, 0.1f, 0.9f, 0.0f, -EDOM, "NaN w");
		w[i] = -INFINITY;
		expect_sgd_ct_err(w, v, ct, len, N, 0.1f, 0.9f, 0.0f, -EDOM, "-Inf w");
		w[i] = keep;
		keep = v[N - 1 - i];
		v[N - 1 - i] = INFINITY;
		expect_sgd_ct_err(w, v, ct, len, N, 0.1f, 0.9f, 0.0f, -EDOM, "Inf v");
		v[N - 1 - i] = keep;
	}
	/* and the same arguments, all valid, do the update */
	{
		float w2[N], v2[N], g[N];

		memcpy(w2, w, sizeof(w));
		memcpy(v2, v, sizeof(v));
		ck_assert_int_eq(spt_ct_decode(ct, len, g, N), 0);
		ck_assert_int_eq(spt_sgd_momentum(w2, v2, g, N, 0.1f, 0.9f, 0.0f), 0);
		ck_assert_int_eq(spt_sgd_momentum_ct(w, v, ct, len, N, 0.1f, 0.9f, 0.0f), 0);
		ck_assert_mem_eq(w, w2, sizeof(w));
		ck_assert_mem_eq(v, v2, sizeof(v));
		EXPECT(v[N - 1] != (float)(N - 1) / (2 * N), "v not updated: %a", (double)v[N - 1]);
	}
	free(ct);
}
END_TEST

/* One set of cases per SIMD path this CPU supports; the fixture picks the path. */
static void use_scalar(void)
{
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_SCALAR), 0);
}

static void use_avx2(void)
{
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AVX2), 0);
}

static void use_avx512(void)
{
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AVX512), 0);
}

static TCase *isa_case(Suite *s, const char *name, enum spt_isa isa, SFun setup)
{
	static char names[32][32];	/* Check keeps the pointer */
	static unsigned int used;
	TCase *tc;

	if (used >= 32)
		abort();
	snprintf(names[used], sizeof(names[used]), "%s/%s", name, spt_core_isa_name(isa));
	tc = tcase_create(names[used++]);
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	suite_add_tcase(s, tc);
	return tc;
}

static void add_codec_cases(Suite *s, enum spt_isa isa, SFun setup)
{
	TCase *layout = isa_case(s, "layout", isa, setup);
	TCase *rt = isa_case(s, "roundtrip", isa, setup);
	TCase *prune = isa_case(s, "pruning", isa, setup);
	TCase *bounds = isa_case(s, "bounds", isa, setup);
	TCase *valid = isa_case(s, "validate", isa, setup);
	TCase *tr = isa_case(s, "transpose", isa, setup);
	TCase *unpack = isa_case(s, "unpack", isa, setup);
	TCase *sgd = isa_case(s, "sgd_ct", isa, setup);

	tcase_add_test(layout, test_encoding_matches_independent_serializer);
	tcase_add_test(layout, test_header_is_little_endian_at_documented_offsets);
	tcase_add_test(layout, test_dense_tensor_size_is_exact);
	tcase_add_test(layout, test_all_zero_tensor_is_empty_tiles);

	tcase_add_test(rt, test_decode_equals_quantize_bit_for_bit);
	tcase_add_test(rt, test_round_trip_extreme_exponents);
	tcase_add_test(rt, test_round_trip_random_shapes);
	tcase_add_test(rt, test_stats_describe_the_encoding);
	tcase_add_test(rt, test_stats_may_be_null_and_opts_default);

	tcase_add_test(prune, test_deterministic_pruning_zeroes_below_tau);
	tcase_add_test(prune, test_pruning_tau_zero_keeps_everything);
	tcase_add_test(prune, test_stochastic_pruning_is_unbiased);
	tcase_add_test(prune, test_stochastic_pruning_keeps_expectation_of_mixed_values);
	tcase_add_test(prune, test_stochastic_pruning_follows_the_rule_per_element);
	tcase_add_test(rt, test_stochastic_rounding_ties_round_down);
	tcase_add_test(prune, test_stochastic_pruning_is_deterministic_in_seed);
	tcase_add_test(prune, test_bad_options_are_einval);

	tcase_add_test(bounds, test_bound_covers_every_encoding);
	tcase_add_test(bounds, test_small_capacity_is_enospc_and_writes_nothing_beyond);

	tcase_add_test(valid, test_valid_tensor_reports_info);
	tcase_add_test(valid, test_every_truncation_is_rejected);
	tcase_add_test(valid, test_trailing_garbage_is_rejected);
	tcase_add_test(valid, test_header_faults_are_rejected);
	tcase_add_test(valid, test_consistent_huge_header_is_rejected_without_overread);
	tcase_add_test(valid, test_record_faults_are_rejected);
	tcase_add_test(valid, test_bad_value_at_any_position_is_rejected);
	tcase_add_test(valid, test_offset_table_faults_are_rejected);
	tcase_add_test(valid, test_every_bit_flip_keeps_validate_and_decode_consistent);
	tcase_add_test(valid, test_trusted_mode_checks_header_and_table_only);
	tcase_add_test(valid, test_decode_checks_its_arguments);

	tcase_add_test(tr, test_transpose_equals_decode_transpose_encode);
	tcase_add_test(tr, test_transpose_shapes_and_densities);
	tcase_add_test(tr, test_transpose_rejects_bad_input);

	tcase_add_test(unpack, test_unpack_gives_the_block_grid);
	tcase_add_test(unpack, test_unpack_rejects_bad_input);

	tcase_add_test(sgd, test_sgd_ct_equals_decode_then_sgd_on_random_tensors);
	tcase_add_test(sgd, test_sgd_ct_equals_decode_then_sgd_on_encoded_gradients);
	tcase_add_test(sgd, test_sgd_ct_rejects_bad_input);
}

static Suite *codec_suite(void)
{
	Suite *s = suite_create("codec");
	TCase *isa = tcase_create("isa");
	TCase *train = tcase_create("train_ops");

	add_codec_cases(s, SPT_ISA_SCALAR, use_scalar);
	if (spt_core_isa_supported(SPT_ISA_AVX2))
		add_codec_cases(s, SPT_ISA_AVX2, use_avx2);
	if (spt_core_isa_supported(SPT_ISA_AVX512))
		add_codec_cases(s, SPT_ISA_AVX512, use_avx512);

	tcase_add_test(isa, test_every_isa_encodes_and_decodes_identically);
	suite_add_tcase(s, isa);

	tcase_add_test(train, test_softmax_xent_matches_double_reference);
	tcase_add_test(train, test_softmax_xent_gradient_matches_finite_differences);
	tcase_add_test(train, test_softmax_xent_is_numerically_stable);
	tcase_add_test(train, test_softmax_xent_rejects_bad_input);
	tcase_add_test(train, test_sgd_momentum_follows_the_formula);
	tcase_add_test(train, test_sgd_momentum_rejects_bad_input);
	tcase_add_test(train, test_norm_ppf_known_values);
	tcase_add_test(train, test_norm_ppf_inverts_the_cdf);
	tcase_add_test(train, test_norm_ppf_outside_open_interval_is_nan);
	suite_add_tcase(s, train);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(codec_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
