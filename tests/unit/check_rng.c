// SPDX-License-Identifier: MIT
/*
 * The counter-based random numbers behind stochastic rounding and pruning
 * (docs/formats.md): known answers, an independent implementation of the
 * documented definition, the uniformity and independence of the draws, and
 * blocks whose indices cross a multiple of 2^32 on every ISA.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "../../core/src/ct_internal.h"

#define EXPECT(cond, ...)                          \
	do {                                       \
		if (!(cond))                       \
			ck_abort_msg(__VA_ARGS__); \
	} while (0)

/* ---- the definition, written out again from docs/formats.md ---------------- */

static uint64_t ref_mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t ref_h32(uint32_t x)
{
	x = (x ^ (x >> 16)) * 0x7feb352du;
	x = (x ^ (x >> 15)) * 0x846ca68bu;
	return x ^ (x >> 16);
}

/* the 24 random bits of element @index */
static uint32_t ref_bits24(uint64_t seed, uint64_t index)
{
	uint64_t hi = index >> 32;
	uint64_t key = ref_mix64(ref_mix64(hi + 0x9e3779b97f4a7c15ull) ^
				 (seed * 0xd1b54a32d192ed03ull + 0x2545f4914f6cdd1dull));
	uint32_t lo = (uint32_t)(index & 0xffffffffu);
	uint32_t x = ref_h32(lo ^ (uint32_t)(key & 0xffffffffu));

	x = ref_h32(x ^ (uint32_t)(key >> 32));
	return x >> 8;
}

/* spt_rng_unit as the integer it encodes, after checking it is one */
static uint32_t unit_bits24(uint64_t seed, uint64_t index)
{
	float u = spt_rng_unit(seed, index);
	double v = ldexp((double)u, 24);

	EXPECT(u >= 0.0f && u < 1.0f && v == floor(v),
	       "spt_rng_unit(%llu, %llu) = %a: expected a multiple of 2^-24 in [0, 1)",
	       (unsigned long long)seed, (unsigned long long)index, (double)u);
	return (uint32_t)v;
}

START_TEST(test_known_answers)
{
	/* computed from the definition by a separate Python implementation */
	static const struct {
		uint64_t seed, index;
		uint32_t bits;
	} kat[] = {
		{ 0x0ull, 0x0ull, 0x6319a1 },
		{ 0x1ull, 0x0ull, 0x851f6b },
		{ 0x0ull, 0x1ull, 0x53aba3 },
		{ 0x2aull, 0x3e8ull, 0xb3e7b8 },
		{ 0x70726e65736c7421ull, 0x7ull, 0x96e25a },
		{ 0x7e8ull, 0xffffffffull, 0x6d9c89 },
		{ 0x7e8ull, 0x100000000ull, 0xe18f12 },
		{ 0xffffffffffffffffull, 0xffffffffffffull, 0x977484 },
	};
	size_t i;

	for (i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		uint32_t got = unit_bits24(kat[i].seed, kat[i].index);

		EXPECT(got == kat[i].bits,
		       "spt_rng_unit(%#llx, %#llx): expected %#08x * 2^-24, got %#08x * 2^-24",
		       (unsigned long long)kat[i].seed, (unsigned long long)kat[i].index,
		       kat[i].bits, got);
		EXPECT(ref_bits24(kat[i].seed, kat[i].index) == kat[i].bits,
		       "the test's reference disagrees with known answer %zu", i);
	}
}
END_TEST

START_TEST(test_matches_independent_reference)
{
	uint64_t s = 0x243f6a8885a308d3ull;
	int i;

	for (i = 0; i < 200000; i++) {
		uint64_t seed, index;
		uint32_t want, got;

		s = ref_mix64(s + 0x9e3779b97f4a7c15ull);
		seed = s;
		s = ref_mix64(s + 0x9e3779b97f4a7c15ull);
		/* every index width, up to the 2^48 elements of the largest tensor */
		index = s >> (16 + (i % 48));
		want = ref_bits24(seed, index);
		got = unit_bits24(seed, index);
		EXPECT(got == want, "seed %#llx index %#llx: expected %#08x, got %#08x",
		       (unsigned long long)seed, (unsigned long long)index, want, got);
	}
}
END_TEST

/* ---- statistics -------------------------------------------------------------- */

#define NDRAWS 1000000

/*
 * Chi-square bounds for 63 degrees of freedom at p = 1e-6 in either tail
 * (Wilson-Hilferty): a fixed-seed test that fails is far outside chance.
 */
#define CHI2_63_LO 23.0
#define CHI2_63_HI 131.0

static double chi2_64(const uint64_t cnt[64], uint64_t total)
{
	double e = (double)total / 64, c = 0.0;
	int b;

	for (b = 0; b < 64; b++)
		c += ((double)cnt[b] - e) * ((double)cnt[b] - e) / e;
	return c;
}

START_TEST(test_mean_is_one_half)
{
	static const uint64_t seeds[] = { 0, 1, 0x70726e65736c7421ull };
	size_t k;

	for (k = 0; k < 3; k++) {
		double sum = 0.0, mean, sigma = sqrt(1.0 / 12 / NDRAWS);
		uint64_t i;

		for (i = 0; i < NDRAWS; i++)
			sum += spt_rng_unit(seeds[k], i);
		mean = sum / NDRAWS;
		EXPECT(fabs(mean - 0.5) < 5 * sigma,
		       "seed %#llx: expected mean 0.5 +- %.5f over %d draws, got %.6f",
		       (unsigned long long)seeds[k], 5 * sigma, NDRAWS, mean);
	}
}
END_TEST

START_TEST(test_top_and_low_bits_are_uniform)
{
	uint64_t top[64], low[64], i;
	double ct, cl;

	memset(top, 0, sizeof(top));
	memset(low, 0, sizeof(low));
	for (i = 0; i < NDRAWS; i++) {
		uint32_t b = unit_bits24(7, 3 * i + ((uint64_t)5 << 32));

		top[b >> 18]++;
		low[b & 63]++;
	}
	ct = chi2_64(top, NDRAWS);
	cl = chi2_64(low, NDRAWS);
	EXPECT(ct > CHI2_63_LO && ct < CHI2_63_HI,
	       "64 bins of the top 6 bits: expected chi-square in (%g, %g), got %.1f",
	       CHI2_63_LO, CHI2_63_HI, ct);
	EXPECT(cl > CHI2_63_LO && cl < CHI2_63_HI,
	       "64 bins of the low 6 bits: expected chi-square in (%g, %g), got %.1f",
	       CHI2_63_LO, CHI2_63_HI, cl);
}
END_TEST

/*
 * The pairs (a(i), b(i)) of two streams over 8 x 8 bins: independent
 * streams fill them evenly.  Also their correlation.
 */
static void check_pairs(const char *what, uint64_t sa, uint64_t ia, uint64_t sb, uint64_t ib,
			uint64_t step)
{
	uint64_t cnt[64], i, same = 0;
	double sxy = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, n = NDRAWS, r, c;

	memset(cnt, 0, sizeof(cnt));
	for (i = 0; i < NDRAWS; i++) {
		float a = spt_rng_unit(sa, ia + i * step), b = spt_rng_unit(sb, ib + i * step);

		cnt[(int)(a * 8) * 8 + (int)(b * 8)]++;
		same += a == b;
		sx += a;
		sy += b;
		sxx += (double)a * a;
		syy += (double)b * b;
		sxy += (double)a * b;
	}
	r = (sxy - sx * sy / n) / sqrt((sxx - sx * sx / n) * (syy - sy * sy / n));
	c = chi2_64(cnt, NDRAWS);
	EXPECT(fabs(r) < 5 / sqrt(n), "%s: expected correlation 0 +- %.4f, got %.5f", what,
	       5 / sqrt(n), r);
	EXPECT(c > CHI2_63_LO && c < CHI2_63_HI,
	       "%s: 8 x 8 joint bins: expected chi-square in (%g, %g), got %.1f", what,
	       CHI2_63_LO, CHI2_63_HI, c);
	/* equal draws happen with probability 2^-24 each */
	EXPECT(same < 10, "%s: expected about %.2f equal draws, got %llu", what, n / 16777216,
	       (unsigned long long)same);
}

START_TEST(test_seeds_are_decorrelated)
{
	check_pairs("seeds 1 and 2", 1, 0, 2, 0, 1);
	check_pairs("seeds 0 and 1 << 63", 0, 0, 1ull << 63, 0, 1);
	check_pairs("seed and seed ^ prune salt", 99, 0, 99 ^ SPT_PRUNE_SALT, 0, 1);
	check_pairs("seeds 3 and 4, every 32nd index", 3, 0, 4, 0, 32);
}
END_TEST

START_TEST(test_neighbouring_indices_are_decorrelated)
{
	check_pairs("index i and i + 1", 11, 0, 11, 1, 1);
	check_pairs("index i and i + 32", 11, 0, 11, 32, 1);
	check_pairs("index i and i + 2^16", 11, 0, 11, 1u << 16, 1);
}
END_TEST

START_TEST(test_index_high_bits_matter)
{
	check_pairs("index i and i + 2^32", 5, 0, 5, 1ull << 32, 1);
	check_pairs("index i and i + 2^47", 5, 123, 5, 123 + (1ull << 47), 1);
	check_pairs("index 2^32 - 2^19 + i and its 2^32 neighbour", 5, (1ull << 32) - (1u << 19),
		    5, (2ull << 32) - (1u << 19), 1);
}
END_TEST

/* ---- blocks that cross a multiple of 2^32 ----------------------------------- */

/*
 * Stochastic rounding of one block whose element indices run across 2^32
 * (the vector paths key each block once, and twice where it crosses):
 * every element must use its own index's draw, on every ISA.
 */
START_TEST(test_block_across_2_32_uses_each_elements_index)
{
	static const uint64_t first[] = { (1ull << 32) - 31, (1ull << 32) - 9, (1ull << 32) - 1,
					  (7ull << 32) - 16, 1ull << 32 };
	enum spt_isa isa;
	size_t f;

	for (isa = SPT_ISA_SCALAR; isa <= SPT_ISA_AVX512; isa++) {
		if (!spt_core_isa_supported(isa))
			continue;
		ck_assert_int_eq(spt_core_set_isa(isa), 0);
		for (f = 0; f < sizeof(first) / sizeof(first[0]); f++) {
			float x[32];
			int8_t k[32];
			int e, j;

			x[0] = 1.0f;	/* E = 0: k = floor(64 x) + (u < frac(64 x)) */
			for (j = 1; j < 32; j++)
				x[j] = (float)(0.1 + 0.025 * j) * ((j & 1) ? 1.0f : -1.0f);
			ck_assert_int_eq(spt_bfp8_quantize_block(x, 32, SPT_ROUND_STOCHASTIC, 77,
								 first[f], k, &e), 0);
			ck_assert_int_eq(e, 0);
			for (j = 0; j < 32; j++) {
				float y = x[j] * 64.0f, fl = floorf(y);
				float u = (float)ref_bits24(77, first[f] + (uint64_t)j) * 0x1p-24f;
				int want = (int)fl + (u < y - fl);

				EXPECT(k[j] == want,
				       "%s: block at %#llx, element %d: expected %d, got %d",
				       spt_core_isa_name(isa), (unsigned long long)first[f], j,
				       want, k[j]);
			}
		}
	}
	ck_assert_int_eq(spt_core_set_isa(SPT_ISA_AUTO), 0);
}
END_TEST

static Suite *rng_suite(void)
{
	Suite *s = suite_create("rng");
	TCase *def = tcase_create("definition");
	TCase *stats = tcase_create("statistics");

	tcase_add_test(def, test_known_answers);
	tcase_add_test(def, test_matches_independent_reference);
	tcase_add_test(def, test_block_across_2_32_uses_each_elements_index);
	suite_add_tcase(s, def);

	tcase_add_test(stats, test_mean_is_one_half);
	tcase_add_test(stats, test_top_and_low_bits_are_uniform);
	tcase_add_test(stats, test_seeds_are_decorrelated);
	tcase_add_test(stats, test_neighbouring_indices_are_decorrelated);
	tcase_add_test(stats, test_index_high_bits_matter);
	tcase_set_timeout(stats, 120);
	suite_add_tcase(s, stats);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rng_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
