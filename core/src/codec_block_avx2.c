/* SPDX-License-Identifier: MIT */
/*
 * encode_block_even() of codec_block.h built with -mavx2 at -O3 (see the
 * Makefile), stochastic rounding inlined: the scalar tile loop of codec.c
 * calls it per block when rounding stochastically on an AVX2 CPU.  The same
 * source as the scalar copy, so the same bytes and statistics; check_simd
 * compares both.
 */
#include "codec_block.h"

#ifndef SPT_NO_SIMD

uint32_t spt_encode_block_even_avx2(struct enc_state *s, const float *x, unsigned int n,
				    uint64_t index, float tau, int8_t k[32], int *exp,
				    int *err)
{
	return encode_block_even(s, x, n, index, tau, k, exp, err, 1);
}

#endif
