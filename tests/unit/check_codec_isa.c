/* SPDX-License-Identifier: MIT */
/* Every SIMD path of the codec gives the scalar path's bytes and floats. */
#include <check.h>
#include <errno.h>
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
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
