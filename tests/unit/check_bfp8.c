// SPDX-License-Identifier: MIT
/*
 * BFP8 (MXINT8) quantisation: golden vectors for the rules in core.h,
 * an independent double-precision reference, stochastic rounding.
 */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"

/* ck_assert_msg reports every passing check to the parent: too slow in loops. */
#define EXPECT(cond, ...)                          \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* ---- an independent reference (double precision, exact) ---------------- */

static int ref_exponent(const float *x, unsigned int n)
{
	double m = 0.0;
	unsigned int i;
	int e;

	for (i = 0; i < n; i++)
		if (fabs((double)x[i]) > m)
			m = fabs((double)x[i]);
	if (m == 0.0)
		return -127;
	frexp(m, &e);		/* m = f * 2^e, f in [0.5, 1): floor(log2 m) = e - 1 */
	e -= 1;
	return e < -127 ? -127 : e > 127 ? 127 : e;
}

/* Ties to even (the default FP rounding mode of nearbyint). */
static void ref_quantize_block(const float *x, unsigned int n, int8_t k[32], int *exp)
{
	int e = ref_exponent(x, n);
	unsigned int i;

	for (i = 0; i < 32; i++) {
		double v = i < n ? nearbyint(ldexp((double)x[i], 6 - e)) : 0.0;

		v = v > 127 ? 127 : v < -127 ? -127 : v;
		k[i] = (int8_t)v;
	}
	*exp = e;
}

static void ref_quantize(const float *in, float *out, size_t rows, size_t cols)
{
	size_t r, c, j;

	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c += 32) {
			unsigned int n = (unsigned int)(cols - c < 32 ? cols - c : 32);
			int8_t k[32];
			int e;

			ref_quantize_block(in + r * cols + c, n, k, &e);
			for (j = 0; j < n; j++)
				out[r * cols + c + j] = (float)ldexp(k[j], e - 6);
		}
}

static uint64_t lcg_state = 0x853c49e6748fea9bull;

static uint32_t rnd32(void)
{
	lcg_state = lcg_state * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(lcg_state >> 32);
}

/* Random floats over many binades, with some exact zeros and negatives. */
static float rnd_float(void)
{
	uint32_t r = rnd32();
	float m = (float)(rnd32() >> 8) / 16777216.0f;

	if (r % 11 == 0)
		return 0.0f;
	return ldexpf(r & 1 ? -m : m, (int)(r >> 8) % 40 - 20);
}

static void expect_block(const float *x, unsigned int n, const int8_t *want_k, int want_e)
{
	int8_t k[32];
	int e = 12345, i;

	memset(k, 0x55, sizeof(k));
	ck_assert_int_eq(spt_bfp8_quantize_block(x, n, SPT_ROUND_EVEN, 0, 0, k, &e), 0);
	EXPECT(e == want_e, "exponent: expected %d, got %d", want_e, e);
	for (i = 0; i < 32; i++) {
		int w = i < (int)n ? want_k[i] : 0;

		EXPECT(k[i] == w, "k[%d] (x = %a): expected %d, got %d", i,
			      i < (int)n ? (double)x[i] : 0.0, w, k[i]);
	}
}

/* ---- golden vectors -------------------------------------------------------- */

START_TEST(test_ties_round_to_even)
{
	/* block max 1.0: E = 0, scale 64; x * 64 = k + 0.5 exactly */
	const float x[] = { 1.0f, 2.5f / 64, 3.5f / 64, -2.5f / 64, -3.5f / 64, 0.5f / 64,
			    -0.5f / 64, 1.5f / 64, 126.5f / 64, -125.5f / 64, 0.25f / 64,
			    0.75f / 64, 2.25f / 64, 2.75f / 64 };
	const int8_t k[] = { 64, 2, 4, -2, -4, 0, 0, 2, 126, -126, 0, 1, 2, 3 };

	expect_block(x, sizeof(x) / sizeof(x[0]), k, 0);
}
END_TEST

START_TEST(test_block_max_rounding_to_128_saturates)
{
	/* 1.9999 * 64 = 127.99 -> 128 -> 127; 127.5 is a tie that rounds up to 128 */
	const float x1[] = { 1.9999f, -1.9999f, 0.5f };
	const int8_t k1[] = { 127, -127, 32 };
	const float x2[] = { 127.5f / 64, -127.5f / 64, 126.5f / 64 };
	const int8_t k2[] = { 127, -127, 126 };
	const float x3[] = { FLT_MAX, -FLT_MAX, 0x1p121f };
	const int8_t k3[] = { 127, -127, 1 };

	expect_block(x1, 3, k1, 0);
	expect_block(x2, 3, k2, 0);
	expect_block(x3, 3, k3, 127);
}
END_TEST

START_TEST(test_all_zero_block_has_exponent_minus_127)
{
	float x[32] = { 0 };
	int8_t k[32] = { 0 };

	expect_block(x, 32, k, -127);
	x[3] = -0.0f;
	x[7] = -0.0f;
	expect_block(x, 32, k, -127);
	expect_block(x, 1, k, -127);
}
END_TEST

START_TEST(test_subnormal_inputs_clamp_exponent_to_minus_127)
{
	/* floor(log2(1e-40)) = -133, clamped to -127: k = round(x * 2^133) */
	const float x1[] = { 1e-40f, -1e-40f, 0x1p-127f, 0x1.8p-127f, 0x1p-149f, 0x1.4p-128f };
	int8_t k1[6];
	const float x2[] = { 0x1p-126f, 0x1p-127f, 0x1p-133f, 0x1p-134f, 0x1.8p-133f };
	const int8_t k2[] = { 64, 32, 0, 0, 1 };	/* E = -126: x * 2^132 */
	const float x3[] = { 0x1p-120f, 0x1p-130f, 0x1p-125f, 0x1.8p-126f };
	const int8_t k3[] = { 64, 0, 2, 2 };	/* E = -120: x * 2^126 */
	int i;

	for (i = 0; i < 6; i++)
		k1[i] = (int8_t)nearbyint(ldexp((double)x1[i], 133));
	ck_assert_int_eq(k1[0], 1);	/* 1e-40 * 2^133 = 1.0889 */
	ck_assert_int_eq(k1[2], 64);
	ck_assert_int_eq(k1[3], 96);
	ck_assert_int_eq(k1[4], 0);
	ck_assert_int_eq(k1[5], 40);
	expect_block(x1, 6, k1, -127);
	expect_block(x1, 2, k1, -127);	/* max 1e-40 alone: E = -133 clamped */
	expect_block(x1 + 4, 1, k1 + 4, -127);	/* 2^-149: E = -149 clamped, k = 0 */
	expect_block(x1 + 5, 1, k1 + 5, -127);
	expect_block(x2, 5, k2, -126);
	expect_block(x3, 4, k3, -120);
}
END_TEST

START_TEST(test_largest_exponent_is_127)
{
	/* 2^127 <= 3e38 < 2^128: E = 127; 1e38 < 2^127: E = 126 */
	const float x1[] = { 3e38f, -1e38f, 0x1p120f };
	int8_t k1[3];
	const float x2[] = { 1e38f, 0x1p126f };
	const int8_t k2[] = { (int8_t)nearbyint(ldexp(1e38, -120)), 64 };
	int i;

	for (i = 0; i < 3; i++)
		k1[i] = (int8_t)nearbyint(ldexp((double)x1[i], -121));
	ck_assert_int_eq(k1[0], 113);
	ck_assert_int_eq(k1[2], 0);	/* 2^120 * 2^-121 = 0.5: tie to even 0 */
	expect_block(x1, 3, k1, 127);
	expect_block(x2, 2, k2, 126);
}
END_TEST

START_TEST(test_negative_values_mirror_positive)
{
	float x[32], nx[32];
	int8_t k[32], nk[32];
	int e, ne, i;

	for (i = 0; i < 32; i++) {
		x[i] = ldexpf((float)(i * 7 + 1) + 0.5f, -5);
		nx[i] = -x[i];
	}
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_EVEN, 0, 0, k, &e), 0);
	ck_assert_int_eq(spt_bfp8_quantize_block(nx, 32, SPT_ROUND_EVEN, 0, 0, nk, &ne), 0);
	ck_assert_int_eq(e, ne);
	for (i = 0; i < 32; i++)
		EXPECT(nk[i] == -k[i], "k[%d]: expected %d, got %d", i, -k[i], nk[i]);
}
END_TEST

START_TEST(test_short_block_zeroes_tail)
{
	const float x[] = { 0.75f, -0.25f, 0.125f };
	const int8_t want[] = { 96, -32, 16 };

	expect_block(x, 3, want, -1);
	expect_block(x, 1, want, -1);
}
END_TEST

START_TEST(test_block_matches_reference_on_random_data)
{
	int t;

	for (t = 0; t < 2000; t++) {
		float x[32];
		int8_t want[32];
		unsigned int n = 1 + rnd32() % 32, i;
		int e;

		for (i = 0; i < 32; i++)
			x[i] = rnd_float();
		if (t % 7 == 0)	/* a wide block: small members lose bits */
			x[rnd32() % n] = ldexpf(1.0f, (int)(rnd32() % 250) - 125);
		ref_quantize_block(x, n, want, &e);
		expect_block(x, n, want, e);
	}
}
END_TEST

/* ---- errors ----------------------------------------------------------------- */

START_TEST(test_nan_or_inf_input_is_edom)
{
	const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
	float x[32];
	int8_t k[32];
	int e, i, pos;

	for (i = 0; i < 4; i++)
		for (pos = 0; pos < 32; pos += 31) {
			int ret;

			memset(x, 0, sizeof(x));
			x[0] = 1.0f;
			x[pos] = bad[i];
			ret = spt_bfp8_quantize_block(x, 32, SPT_ROUND_EVEN, 0, 0, k, &e);
			EXPECT(ret == -EDOM, "x[%d] = %f: expected -EDOM, got %d", pos,
				      (double)bad[i], ret);
			ret = spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, 1, 0, k, &e);
			EXPECT(ret == -EDOM, "stochastic, x[%d] = %f: expected -EDOM, got %d",
				      pos, (double)bad[i], ret);
		}
}
END_TEST

START_TEST(test_nan_in_matrix_is_edom)
{
	float in[3 * 40], out[3 * 40];
	int i, ret;

	for (i = 0; i < 120; i++)
		in[i] = (float)i / 16;
	in[119] = INFINITY;
	ret = spt_bfp8_quantize(in, out, 3, 40, SPT_ROUND_EVEN, 0);
	EXPECT(ret == -EDOM, "expected -EDOM, got %d", ret);
	in[119] = NAN;
	ret = spt_bfp8_quantize(in, in, 3, 40, SPT_ROUND_EVEN, 0);
	EXPECT(ret == -EDOM, "in place: expected -EDOM, got %d", ret);
}
END_TEST

START_TEST(test_bad_arguments_are_einval)
{
	float x[32] = { 1.0f }, out[32];
	int8_t k[32];
	int e;

	ck_assert_int_eq(spt_bfp8_quantize_block(NULL, 32, SPT_ROUND_EVEN, 0, 0, k, &e), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_EVEN, 0, 0, NULL, &e), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_EVEN, 0, 0, k, NULL), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 0, SPT_ROUND_EVEN, 0, 0, k, &e), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 33, SPT_ROUND_EVEN, 0, 0, k, &e), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, (enum spt_round)7, 0, 0, k, &e), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize(NULL, out, 1, 32, SPT_ROUND_EVEN, 0), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize(x, NULL, 1, 32, SPT_ROUND_EVEN, 0), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize(x, out, 0, 32, SPT_ROUND_EVEN, 0), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize(x, out, 1, 0, SPT_ROUND_EVEN, 0), -EINVAL);
	ck_assert_int_eq(spt_bfp8_quantize(x, out, 1, 32, (enum spt_round)2, 0), -EINVAL);
}
END_TEST

/* ---- spt_bfp8_value ---------------------------------------------------------- */

START_TEST(test_value_is_k_times_2_pow_e_minus_6)
{
	ck_assert_float_eq(spt_bfp8_value(64, 0), 1.0f);
	ck_assert_float_eq(spt_bfp8_value(-64, 0), -1.0f);
	ck_assert_float_eq(spt_bfp8_value(1, 0), 0.015625f);
	ck_assert_float_eq(spt_bfp8_value(0, 5), 0.0f);
	ck_assert_float_eq(spt_bfp8_value(127, -3), 127.0f / 512);
	ck_assert_float_eq(spt_bfp8_value(-127, 127), -0x1.fcp127f);
	ck_assert_float_eq(spt_bfp8_value(127, 127), 0x1.fcp127f);
	/* results below FLT_MIN are exact subnormals, not flushed */
	ck_assert_float_eq(spt_bfp8_value(1, -127), 0x1p-133f);
	ck_assert_float_eq(spt_bfp8_value(-3, -127), -0x1.8p-132f);
	ck_assert_float_eq(spt_bfp8_value(127, -127), 0x1.fcp-127f);
}
END_TEST

START_TEST(test_value_round_trips_every_k_and_exponent)
{
	int k, e;

	for (e = -127; e <= 127; e++)
		for (k = -127; k <= 127; k++) {
			float want = (float)ldexp(k, e - 6), got = spt_bfp8_value((int8_t)k, e);

			EXPECT(want == got, "value(%d, %d): expected %a, got %a", k, e,
				      (double)want, (double)got);
		}
}
END_TEST

/* ---- spt_bfp8_quantize --------------------------------------------------------- */

static void check_matrix(size_t rows, size_t cols)
{
	size_t n = rows * cols, i;
	float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
	float *want = malloc(n * sizeof(float));

	ck_assert(in && out && want);
	for (i = 0; i < n; i++)
		in[i] = rnd_float();
	ref_quantize(in, want, rows, cols);
	ck_assert_int_eq(spt_bfp8_quantize(in, out, rows, cols, SPT_ROUND_EVEN, 0), 0);
	for (i = 0; i < n; i++)
		EXPECT(memcmp(&want[i], &out[i], sizeof(float)) == 0,
			      "%zux%zu element %zu (x = %a): expected %a, got %a", rows, cols, i,
			      (double)in[i], (double)want[i], (double)out[i]);
	free(in);
	free(out);
	free(want);
}

START_TEST(test_matrix_blocks_along_columns_with_ragged_tail)
{
	check_matrix(1, 1);
	check_matrix(1, 32);
	check_matrix(3, 33);
	check_matrix(5, 70);
	check_matrix(7, 31);
	check_matrix(17, 128);
	check_matrix(2, 1000);
}
END_TEST

START_TEST(test_ragged_block_exponent_ignores_next_row)
{
	/* cols = 33: row 0's second block is x[32] alone; row 1 starts with a big value */
	float in[2 * 33] = { 0 }, out[2 * 33];

	in[0] = 1.0f;
	in[32] = 0.375f;	/* its own block: E = -2, k = 96 */
	in[33] = 64.0f;
	in[34] = 0.375f;	/* in row 1's first block: E = 6, k = round(0.375) = 0 */
	ck_assert_int_eq(spt_bfp8_quantize(in, out, 2, 33, SPT_ROUND_EVEN, 0), 0);
	EXPECT(out[32] == 0.375f, "expected 0.375, got %a", (double)out[32]);
	EXPECT(out[34] == 0.0f, "expected 0, got %a", (double)out[34]);
	EXPECT(out[33] == 64.0f, "expected 64, got %a", (double)out[33]);
}
END_TEST

START_TEST(test_quantize_in_place_equals_out_of_place)
{
	size_t rows = 9, cols = 70, n = rows * cols, i;
	float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
	int round;

	ck_assert(a && b);
	for (round = 0; round < 2; round++) {
		for (i = 0; i < n; i++)
			a[i] = rnd_float();
		ck_assert_int_eq(spt_bfp8_quantize(a, b, rows, cols, (enum spt_round)round, 42), 0);
		ck_assert_int_eq(spt_bfp8_quantize(a, a, rows, cols, (enum spt_round)round, 42), 0);
		EXPECT(memcmp(a, b, n * sizeof(float)) == 0,
			      "round %d: in-place result differs", round);
	}
	free(a);
	free(b);
}
END_TEST

START_TEST(test_quantize_is_idempotent)
{
	size_t rows = 4, cols = 100, n = rows * cols, i;
	float *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));

	ck_assert(a && b);
	for (i = 0; i < n; i++)
		a[i] = rnd_float();
	ck_assert_int_eq(spt_bfp8_quantize(a, a, rows, cols, SPT_ROUND_EVEN, 0), 0);
	ck_assert_int_eq(spt_bfp8_quantize(a, b, rows, cols, SPT_ROUND_STOCHASTIC, 3), 0);
	for (i = 0; i < n; i++)
		EXPECT(a[i] == b[i], "element %zu: expected %a, got %a", i, (double)a[i],
			      (double)b[i]);
	free(a);
	free(b);
}
END_TEST

/* ---- stochastic rounding ----------------------------------------------------------- */

static void fill_block(float *x, float v)
{
	int i;

	x[0] = 1.0f;	/* fixes E = 0 */
	for (i = 1; i < 32; i++)
		x[i] = (i & 1) ? v : -v;
}

START_TEST(test_stochastic_rounding_is_deterministic_in_seed)
{
	float x[32];
	int8_t k1[32], k2[32];
	int e1, e2;

	fill_block(x, 0.3f);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, 99, 640, k1, &e1), 0);
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, 99, 640, k2, &e2), 0);
	ck_assert_int_eq(e1, e2);
	EXPECT(memcmp(k1, k2, 32) == 0, "same seed and index gave different k");
}
END_TEST

START_TEST(test_stochastic_rounding_differs_across_seeds)
{
	size_t n = 4 * 256, i, differ = 0;
	float *in = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float));
	float *b = malloc(n * sizeof(float));

	ck_assert(in && a && b);
	for (i = 0; i < n; i++)
		in[i] = (i % 32 == 0) ? 1.0f : 0.3f;
	ck_assert_int_eq(spt_bfp8_quantize(in, a, 4, 256, SPT_ROUND_STOCHASTIC, 1), 0);
	ck_assert_int_eq(spt_bfp8_quantize(in, b, 4, 256, SPT_ROUND_STOCHASTIC, 2), 0);
	for (i = 0; i < n; i++)
		differ += a[i] != b[i];
	/* each element is 19/64 or 20/64 with P(20) = 0.2: ~320 differences expected */
	EXPECT(differ > 100, "seeds 1 and 2: expected many differing elements, got %zu",
		      differ);
	free(in);
	free(a);
	free(b);
}
END_TEST

START_TEST(test_stochastic_rounding_depends_on_global_index)
{
	float x[32];
	int8_t full[32], tail[32];
	int e1, e2, j;

	fill_block(x, 0.3f);
	x[31] = 1.0f;	/* the tail block keeps max 1.0, E = 0 */
	ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, 7, 1000, full, &e1), 0);
	ck_assert_int_eq(spt_bfp8_quantize_block(x + 5, 27, SPT_ROUND_STOCHASTIC, 7, 1005, tail, &e2),
			 0);
	ck_assert_int_eq(e1, e2);
	for (j = 0; j < 27; j++)
		EXPECT(full[j + 5] == tail[j],
			      "element index %d: expected %d (from offset 0), got %d", 1005 + j,
			      full[j + 5], tail[j]);
}
END_TEST

START_TEST(test_stochastic_rounding_picks_floor_or_ceil)
{
	int s, j;

	for (s = 0; s < 200; s++) {
		float x[32];
		int8_t k[32];
		int e;

		fill_block(x, 0.3f);	/* 0.3 * 64 = 19.2 */
		ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, (uint64_t)s, 0,
							 k, &e), 0);
		ck_assert_int_eq(e, 0);
		ck_assert_int_eq(k[0], 64);
		for (j = 1; j < 32; j++) {
			int a = (j & 1) ? k[j] : -k[j];

			EXPECT(a == 19 || a == 20, "seed %d k[%d]: expected +-19 or +-20, got %d",
				      s, j, k[j]);
		}
	}
}
END_TEST

START_TEST(test_stochastic_rounding_keeps_exact_values)
{
	const float x[] = { 1.0f, 0.25f, -0.5f, 1.0f / 64 };
	const int8_t want[] = { 64, 16, -32, 1 };
	int8_t k[32];
	int s, e, j;

	for (s = 0; s < 100; s++) {
		ck_assert_int_eq(spt_bfp8_quantize_block(x, 4, SPT_ROUND_STOCHASTIC, (uint64_t)s,
							 (uint64_t)s * 32, k, &e), 0);
		for (j = 0; j < 4; j++)
			EXPECT(k[j] == want[j], "seed %d, x = %g: expected %d, got %d", s,
				      (double)x[j], want[j], k[j]);
	}
}
END_TEST

START_TEST(test_stochastic_rounding_saturates_like_nearest)
{
	/* 1.9999 * 64 = 127.99: rounds up to 128 almost always, clamped to 127 */
	const float x[] = { 1.9999f, -1.9999f };
	int8_t k[32];
	int s, e;

	for (s = 0; s < 100; s++) {
		ck_assert_int_eq(spt_bfp8_quantize_block(x, 2, SPT_ROUND_STOCHASTIC, (uint64_t)s, 0, k,
							 &e), 0);
		ck_assert_int_eq(e, 0);
		EXPECT(k[0] == 127, "expected 127, got %d", k[0]);
		EXPECT(k[1] == -127, "expected -127, got %d", k[1]);
	}
}
END_TEST

static void check_unbiased(float v, uint64_t seed)
{
	/* rows of blocks [1.0, v, v, ...]: E = 0, so each v -> k/64 with k in {floor, ceil}(64 v) */
	size_t rows = 64, cols = 1024, n = rows * cols, i, cnt = 0;
	float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
	double sum = 0.0, frac, sigma, mean;

	ck_assert(in && out);
	for (i = 0; i < n; i++)
		in[i] = (i % 32 == 0) ? 1.0f : v;
	ck_assert_int_eq(spt_bfp8_quantize(in, out, rows, cols, SPT_ROUND_STOCHASTIC, seed), 0);
	for (i = 0; i < n; i++) {
		if (i % 32 == 0)
			continue;
		sum += out[i];
		cnt++;
	}
	mean = sum / (double)cnt;
	frac = (double)v * 64 - floor((double)v * 64);
	sigma = sqrt(frac * (1 - frac)) / 64 / sqrt((double)cnt);
	EXPECT(fabs(mean - v) <= 5 * sigma + 1e-12,
		      "v = %.9g seed %llu: expected mean within 5 sigma (%.3g) of v, got %.9g",
		      (double)v, (unsigned long long)seed, 5 * sigma, mean);
	free(in);
	free(out);
}

START_TEST(test_stochastic_rounding_is_unbiased)
{
	check_unbiased(0.3f, 1);
	check_unbiased(-0.3f, 2);
	check_unbiased(0.01f, 3);
	check_unbiased(0.50390625f + 0.001f, 4);
	check_unbiased(0.9921875f - 0.0001f, 5);
	check_unbiased(0.0078125f / 3, 6);	/* below half an ulp: nearest would give 0 */
}
END_TEST

START_TEST(test_stochastic_rounding_probability_matches_fraction)
{
	/* P(round up) = frac: check the rate itself, not only the mean */
	size_t rows = 32, cols = 1024, n = rows * cols, i, up = 0, cnt = 0;
	float *in = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
	double p = 0.75, rate, sigma;

	ck_assert(in && out);
	for (i = 0; i < n; i++)
		in[i] = (i % 32 == 0) ? 1.0f : (float)((10 + p) / 64);
	ck_assert_int_eq(spt_bfp8_quantize(in, out, rows, cols, SPT_ROUND_STOCHASTIC, 77), 0);
	for (i = 0; i < n; i++) {
		if (i % 32 == 0)
			continue;
		ck_assert(out[i] == 10.0f / 64 || out[i] == 11.0f / 64);
		up += out[i] == 11.0f / 64;
		cnt++;
	}
	rate = (double)up / (double)cnt;
	sigma = sqrt(p * (1 - p) / (double)cnt);
	EXPECT(fabs(rate - p) <= 5 * sigma, "expected round-up rate %.3f +- %.4f, got %.4f",
		      p, 5 * sigma, rate);
	free(in);
	free(out);
}
END_TEST

START_TEST(test_matrix_stochastic_uses_row_major_element_index)
{
	/* spt_bfp8_quantize block (r, c) is quantize_block with index r*cols + 32c */
	size_t rows = 3, cols = 70, r, c, j;
	float in[3 * 70], out[3 * 70];

	for (j = 0; j < rows * cols; j++)
		in[j] = (j % 32 == 0) ? 1.0f : 0.3f + (float)j / 4096;
	ck_assert_int_eq(spt_bfp8_quantize(in, out, rows, cols, SPT_ROUND_STOCHASTIC, 5), 0);
	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c += 32) {
			unsigned int n = (unsigned int)(cols - c < 32 ? cols - c : 32);
			int8_t k[32];
			int e;

			ck_assert_int_eq(spt_bfp8_quantize_block(in + r * cols + c, n,
								 SPT_ROUND_STOCHASTIC, 5,
								 r * cols + c, k, &e), 0);
			for (j = 0; j < n; j++) {
				float want = spt_bfp8_value(k[j], e);

				EXPECT(out[r * cols + c + j] == want,
					      "row %zu col %zu: expected %a, got %a", r, c + j,
					      (double)want, (double)out[r * cols + c + j]);
			}
		}
}
END_TEST

static Suite *bfp8_suite(void)
{
	Suite *s = suite_create("bfp8");
	TCase *golden = tcase_create("golden");
	TCase *errors = tcase_create("errors");
	TCase *value = tcase_create("value");
	TCase *matrix = tcase_create("matrix");
	TCase *stoch = tcase_create("stochastic");

	tcase_add_test(golden, test_ties_round_to_even);
	tcase_add_test(golden, test_block_max_rounding_to_128_saturates);
	tcase_add_test(golden, test_all_zero_block_has_exponent_minus_127);
	tcase_add_test(golden, test_subnormal_inputs_clamp_exponent_to_minus_127);
	tcase_add_test(golden, test_largest_exponent_is_127);
	tcase_add_test(golden, test_negative_values_mirror_positive);
	tcase_add_test(golden, test_short_block_zeroes_tail);
	tcase_add_test(golden, test_block_matches_reference_on_random_data);
	suite_add_tcase(s, golden);

	tcase_add_test(errors, test_nan_or_inf_input_is_edom);
	tcase_add_test(errors, test_nan_in_matrix_is_edom);
	tcase_add_test(errors, test_bad_arguments_are_einval);
	suite_add_tcase(s, errors);

	tcase_add_test(value, test_value_is_k_times_2_pow_e_minus_6);
	tcase_add_test(value, test_value_round_trips_every_k_and_exponent);
	suite_add_tcase(s, value);

	tcase_add_test(matrix, test_matrix_blocks_along_columns_with_ragged_tail);
	tcase_add_test(matrix, test_ragged_block_exponent_ignores_next_row);
	tcase_add_test(matrix, test_quantize_in_place_equals_out_of_place);
	tcase_add_test(matrix, test_quantize_is_idempotent);
	suite_add_tcase(s, matrix);

	tcase_add_test(stoch, test_stochastic_rounding_is_deterministic_in_seed);
	tcase_add_test(stoch, test_stochastic_rounding_differs_across_seeds);
	tcase_add_test(stoch, test_stochastic_rounding_depends_on_global_index);
	tcase_add_test(stoch, test_stochastic_rounding_picks_floor_or_ceil);
	tcase_add_test(stoch, test_stochastic_rounding_keeps_exact_values);
	tcase_add_test(stoch, test_stochastic_rounding_saturates_like_nearest);
	tcase_add_test(stoch, test_stochastic_rounding_is_unbiased);
	tcase_add_test(stoch, test_stochastic_rounding_probability_matches_fraction);
	tcase_add_test(stoch, test_matrix_stochastic_uses_row_major_element_index);
	tcase_set_timeout(stoch, 30);
	suite_add_tcase(s, stoch);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bfp8_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
