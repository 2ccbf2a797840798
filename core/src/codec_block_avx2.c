/* SPDX-License-Identifier: MIT */
/*
 * encode_block_vec() of codec_block.h built with -mavx2 at -O3 (see the
 * Makefile), stochastic rounding inlined: the scalar tile loop of codec.c
 * calls it per block when pruning stochastically on an AVX2 CPU (everything
 * else goes to spt_ct_encode_avx2).  The same float operations as
 * encode_block(), so the same bytes and statistics; check_simd compares them.
 */
#include <immintrin.h>

#include "codec_block.h"
#include "codec_lut.h"

#ifndef SPT_NO_SIMD

/*
 * Compact the nonzero k to the front, in lane order (the record's value
 * bytes), 8 lanes per shuffle rather than one ctz step per value.
 * c <= 24 before the last 8-byte store, so out[32] holds them all.
 * Inlined: called as a function, GCC 12 entered it with the upper halves of
 * the ymm registers dirty and returned from the encoder without vzeroupper,
 * which made the SSE code of the caller several times slower.
 */
__attribute__((always_inline))	/* see below */
static inline void pack_values(uint32_t l2, int8_t k[32])
{
	int8_t out[32];
	unsigned int j, c = 0;

	for (j = 0; j < 4; j++) {
		uint32_t m = (l2 >> (8 * j)) & 0xffu;
		__m128i v = _mm_loadl_epi64((const __m128i *)(k + 8 * j));
		__m128i sel = _mm_loadl_epi64((const __m128i *)spt_lut_compress8[0][m]);

		_mm_storel_epi64((__m128i *)(out + c), _mm_shuffle_epi8(v, sel));
		c += (unsigned int)_mm_popcnt_u32(m);
	}
	memcpy(k, out, 32);
}

uint32_t spt_encode_block_sprune_avx2(struct enc_state *s, const float *x, unsigned int n,
				      uint64_t index, float tau, int8_t k[32], int *exp,
				      int *err)
{
	uint32_t l2 = encode_block_vec(s, x, n, index, tau, k, exp, err, 1, 1);

	pack_values(l2, k);
	return l2;
}

#endif
