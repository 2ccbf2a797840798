/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the unit suites: pseudo-random numbers (xorshift64*, one
 * state per suite, seeded with TEST_RNG_SEED where the suite defines it
 * before including) and encoding a test matrix.
 */
#ifndef SPT_TEST_UTIL_H
#define SPT_TEST_UTIL_H

#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "spt/core.h"

#ifndef TEST_RNG_SEED
#define TEST_RNG_SEED 0x9e3779b97f4a7c15ull
#endif

static uint64_t rng = TEST_RNG_SEED;

/* Uniform on [0, 1) in steps of 2^-53. */
static inline double unit(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (double)((rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

/* Uniform on 0 .. n - 1. */
static inline uint32_t below(uint32_t n)
{
	return (uint32_t)(unit() * n);
}

/* @x (rows x cols) encoded with the default options into a new buffer of *@len bytes. */
static inline void *test_encode(const float *x, uint32_t rows, uint32_t cols, size_t *len)
{
	size_t cap = spt_ct_bound(rows, cols);
	void *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(spt_ct_encode(x, rows, cols, NULL, buf, cap, len, NULL), 0);
	return buf;
}

#endif
