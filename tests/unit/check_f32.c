// SPDX-License-Identifier: MIT
/*
 * The dense FP32 helpers: bias + ReLU, statistics and column sums against
 * plain loops written here, on every ISA path this CPU has, with NaN,
 * infinities, signed zeros and row widths that are and are not whole
 * vectors; and their argument checks.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "test_util.h"

/* zeros (both signs), NaN and infinities among random values */
static float *rand_vec(size_t n, int specials)
{
	float *x = malloc((n ? n : 1) * sizeof(float));
	size_t i;

	ck_assert_ptr_nonnull(x);
	for (i = 0; i < n; i++) {
		double u = unit();

		if (u < 0.2)
			x[i] = u < 0.1 ? 0.0f : -0.0f;
		else if (specials && u < 0.23)
			x[i] = u < 0.21 ? NAN : (u < 0.22 ? INFINITY : -INFINITY);
		else
			x[i] = ldexpf((float)(unit() * 2 - 1), (int)(unit() * 40) - 20);
	}
	return x;
}

static int same_bits(const float *a, const float *b, size_t n)
{
	return !memcmp(a, b, n * sizeof(float));
}

/* the same bits, or both NaN (C leaves the payload of NaN + NaN to the compiler's operand order) */
static int same_sums(const float *a, const float *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (memcmp(&a[i], &b[i], sizeof(float)) && !(isnan(a[i]) && isnan(b[i])))
			return 0;
	return 1;
}

static int same_double(double a, double b)
{
	return !memcmp(&a, &b, sizeof(a));
}

/* The definition in core.h, written out. */
static void ref_stats(const float *x, size_t n, struct spt_tensor_stats *st)
{
	double s[8] = { 0 };
	size_t e;

	memset(st, 0, sizeof(*st));
	st->elements = n;
	for (e = 0; e < n; e++) {
		st->natural_zeros += x[e] == 0.0f;
		s[e % 8] += fabsf(x[e]);
	}
	st->nonzeros = n - st->natural_zeros;
	st->sum_abs = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static void check_stats(const struct spt_tensor_stats *a, const struct spt_tensor_stats *b)
{
	ck_assert_uint_eq(a->elements, b->elements);
	ck_assert_uint_eq(a->natural_zeros, b->natural_zeros);
	ck_assert_uint_eq(a->nonzeros, b->nonzeros);
	ck_assert_uint_eq(a->pruned, 0);
	ck_assert_uint_eq(a->nz_blocks, 0);
	ck_assert_msg(same_double(a->sum_abs, b->sum_abs), "sum_abs %.17g vs %.17g",
		      a->sum_abs, b->sum_abs);
}

static const enum spt_isa isas[] = { SPT_ISA_SCALAR, SPT_ISA_AVX2, SPT_ISA_AVX512 };

START_TEST(test_bias_act_matches_plain_loops)
{
	static const uint32_t widths[] = { 1, 3, 7, 8, 9, 10, 16, 24, 32, 40, 128, 130 };
	enum spt_isa saved = spt_core_get_isa();
	size_t w, k;

	for (w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
		uint32_t cols = widths[w], c;
		size_t rows = 1 + (size_t)(unit() * 37), n = rows * cols, r;
		float *x = rand_vec(n, 1), *bias = rand_vec(cols, 0), *want = malloc(n * 4);
		int relu, use_bias;

		ck_assert_ptr_nonnull(want);
		for (relu = 0; relu < 2; relu++)
			for (use_bias = 0; use_bias < 2; use_bias++) {
				struct spt_tensor_stats ws;

				for (r = 0; r < rows; r++)
					for (c = 0; c < cols; c++) {
						float v = x[r * cols + c];

						if (use_bias)
							v += bias[c];
						want[r * cols + c] = relu && !(v > 0.0f) ? 0.0f : v;
					}
				ref_stats(want, n, &ws);
				for (k = 0; k < 3; k++) {
					struct spt_tensor_stats st;
					float *y;

					if (!spt_core_isa_supported(isas[k]))
						continue;
					y = malloc(n * 4);
					ck_assert_int_eq(spt_core_set_isa(isas[k]), 0);
					ck_assert_ptr_nonnull(y);
					memcpy(y, x, n * 4);
					ck_assert_int_eq(spt_f32_bias_act(y, rows, cols,
									  use_bias ? bias : NULL,
									  relu, &st), 0);
					ck_assert_msg(same_bits(y, want, n), "isa %s cols %u relu %d",
						      spt_core_isa_name(isas[k]), cols, relu);
					check_stats(&st, &ws);
					memcpy(y, x, n * 4);
					ck_assert_int_eq(spt_f32_bias_act(y, rows, cols,
									  use_bias ? bias : NULL,
									  relu, NULL), 0);
					ck_assert(same_bits(y, want, n));
					free(y);
				}
			}
		free(x);
		free(bias);
		free(want);
	}
	spt_core_set_isa(saved);
}
END_TEST

START_TEST(test_stats_match_definition)
{
	static const size_t sizes[] = { 0, 1, 5, 8, 9, 15, 16, 17, 100, 1001, 4096 };
	enum spt_isa saved = spt_core_get_isa();
	size_t s, k;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		float *x = rand_vec(sizes[s], s & 1);
		struct spt_tensor_stats want;

		ref_stats(x, sizes[s], &want);
		for (k = 0; k < 3; k++) {
			struct spt_tensor_stats st;

			if (!spt_core_isa_supported(isas[k]))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isas[k]), 0);
			ck_assert_int_eq(spt_f32_stats(x, sizes[s], &st), 0);
			check_stats(&st, &want);
		}
		free(x);
	}
	spt_core_set_isa(saved);
}
END_TEST

/* -0.0f counts as a zero, NaN as a nonzero; the sum of |x| is exact here. */
START_TEST(test_stats_known_values)
{
	float x[11] = { 0.0f, -0.0f, 1.0f, -2.0f, 0.5f, 0.0f, -0.25f, 4.0f, 8.0f, -16.0f, 0.0f };
	struct spt_tensor_stats st;

	ck_assert_int_eq(spt_f32_stats(x, 11, &st), 0);
	ck_assert_uint_eq(st.elements, 11);
	ck_assert_uint_eq(st.natural_zeros, 4);
	ck_assert_uint_eq(st.nonzeros, 7);
	ck_assert(st.sum_abs == 31.75);
	x[2] = NAN;
	ck_assert_int_eq(spt_f32_stats(x, 11, &st), 0);
	ck_assert_uint_eq(st.nonzeros, 7);
	ck_assert(isnan(st.sum_abs));
}
END_TEST

START_TEST(test_colsum_matches_plain_loop)
{
	static const uint32_t widths[] = { 1, 7, 8, 9, 16, 32, 40, 64, 72, 128, 136 };
	enum spt_isa saved = spt_core_get_isa();
	size_t w, k;

	for (w = 0; w < sizeof(widths) / sizeof(widths[0]); w++) {
		uint32_t cols = widths[w], c;
		size_t rows = (size_t)(unit() * 300), r;
		float *x = rand_vec(rows * cols, w & 1), want[136], out[136];

		for (c = 0; c < cols; c++)
			want[c] = 0.0f;
		for (r = 0; r < rows; r++)
			for (c = 0; c < cols; c++)
				want[c] += x[r * cols + c];
		for (k = 0; k < 3; k++) {
			if (!spt_core_isa_supported(isas[k]))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isas[k]), 0);
			memset(out, 0xa5, sizeof(out));
			ck_assert_int_eq(spt_f32_colsum(x, rows, cols, out), 0);
			ck_assert_msg(same_sums(out, want, cols), "isa %s cols %u rows %zu",
				      spt_core_isa_name(isas[k]), cols, rows);
		}
		free(x);
	}
	spt_core_set_isa(saved);
}
END_TEST

START_TEST(test_bad_arguments)
{
	float y[4] = { 1, 2, 3, 4 }, out[4];
	struct spt_tensor_stats st;

	ck_assert_int_eq(spt_f32_bias_act(NULL, 1, 4, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(spt_f32_bias_act(y, 1, 0, NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(spt_f32_bias_act(y, 1, 4, NULL, 2, NULL), -EINVAL);
	ck_assert_int_eq(spt_f32_bias_act(y, SIZE_MAX / 2, 4, NULL, 0, NULL), -E2BIG);
	ck_assert_int_eq(spt_f32_stats(NULL, 1, &st), -EINVAL);
	ck_assert_int_eq(spt_f32_stats(y, 4, NULL), -EINVAL);
	ck_assert_int_eq(spt_f32_stats(NULL, 0, &st), 0);
	ck_assert_uint_eq(st.elements, 0);
	ck_assert_int_eq(spt_f32_colsum(NULL, 1, 4, out), -EINVAL);
	ck_assert_int_eq(spt_f32_colsum(y, 1, 4, NULL), -EINVAL);
	ck_assert_int_eq(spt_f32_colsum(y, 1, 0, out), -EINVAL);
	ck_assert_int_eq(spt_f32_colsum(y, SIZE_MAX / 2, 4, out), -E2BIG);
	/* nothing was written by the refused calls */
	ck_assert(y[0] == 1 && y[3] == 4);
}
END_TEST

/* Every ISA finds a NaN or infinity at any position, and nothing else. */
START_TEST(test_check_finite_each_isa)
{
	static const size_t sizes[] = { 1, 7, 8, 9, 31, 32, 33, 64, 100, 1027 };
	const float bad[] = { NAN, -NAN, INFINITY, -INFINITY };
	enum spt_isa saved = spt_core_get_isa();
	size_t s, k, i, j;

	for (s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		float *x = rand_vec(n, 0);

		x[0] = 3.4028235e38f;		/* FLT_MAX */
		x[n - 1] = -1e-45f;		/* subnormal */
		for (k = 0; k < 3; k++) {
			if (!spt_core_isa_supported(isas[k]))
				continue;
			ck_assert_int_eq(spt_core_set_isa(isas[k]), 0);
			ck_assert_int_eq(spt_check_finite(x, n), 0);
			for (i = 0; i < n; i += 1 + i / 3)
				for (j = 0; j < 4; j++) {
					float keep = x[i];

					x[i] = bad[j];
					ck_assert_msg(spt_check_finite(x, n) == -EDOM,
						      "isa %s n %zu at %zu",
						      spt_core_isa_name(isas[k]), n, i);
					ck_assert_int_eq(spt_check_finite(x, i + 1), -EDOM);
					ck_assert_int_eq(spt_check_finite(x, i), 0);
					x[i] = keep;
				}
		}
		free(x);
	}
	spt_core_set_isa(saved);
}
END_TEST

static Suite *f32_suite(void)
{
	Suite *s = suite_create("f32");
	TCase *tc = tcase_create("ops");

	tcase_add_test(tc, test_bias_act_matches_plain_loops);
	tcase_add_test(tc, test_stats_match_definition);
	tcase_add_test(tc, test_stats_known_values);
	tcase_add_test(tc, test_colsum_matches_plain_loop);
	tcase_add_test(tc, test_check_finite_each_isa);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(f32_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
