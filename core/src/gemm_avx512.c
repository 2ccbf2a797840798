/* SPDX-License-Identifier: MIT */
/*
 * AVX-512 GEMM kernel: gemm_avx2.c line for line, with the 64 columns of a
 * tile in 4 x 16 lanes instead of 8 x 8, and vpdpwssd (VNNI) in place of
 * vpmaddwd + vpaddd.  Both compute the same int32 sums: a pair's two
 * products are at most 2 * 127 * 127 and a block sum at most 32 * 127 * 127,
 * far from any overflow.  The plan (tiles, groups, chunks, items) and the
 * B packing (spt_gemm_pack_b_avx2) are shared with the AVX2 path.
 */
#include <immintrin.h>

#include "gemm_internal.h"

#define JT SPT_GEMM_JT_AVX512
#define RG SPT_GEMM_RG_AVX512
#define KC SPT_GEMM_KC_AVX512

/* Four lanes of vectors, written out: JT = 64 columns = 4 x 16 lanes. */
#define SPT_X4(M) M(0) M(1) M(2) M(3)

static inline __m512 spt_term(const int32_t *isum, __m512 sa, const float *sb)
{
	__m512 f = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)isum));

	return _mm512_mul_ps(_mm512_mul_ps(f, sa), _mm512_load_ps(sb));
}

/*
 * int32 sums of every item of one group and chunk into scratch; the first
 * entry initialises the sums (items without entries store zeros).
 */
static void spt_items(const struct spt_gemm_plan *p, const int32_t *bt,
		      const struct spt_gemm_item *it, const struct spt_gemm_item *end,
		      int32_t *scratch)
{
	for (; it < end; it++) {
		const struct spt_gemm_entry *e = p->a_ent + it->ent;
		__m512i *dst = (__m512i *)(scratch + (size_t)it->slot * JT);
		const __m512i *bp;
		unsigned int c = it->cnt;
		__m512i av;
#define SPT_DECL(k) __m512i s##k;
		SPT_X4(SPT_DECL)
#undef SPT_DECL

		if (!c) {
#define SPT_ZERO(k) _mm512_store_si512(dst + k, _mm512_setzero_si512());
			SPT_X4(SPT_ZERO)
#undef SPT_ZERO
			continue;
		}
		bp = (const __m512i *)(bt + e->off);
		av = _mm512_set1_epi32(e->val);
#define SPT_FIRST(k) s##k = _mm512_madd_epi16(_mm512_load_si512(bp + k), av);
		SPT_X4(SPT_FIRST)
#undef SPT_FIRST
		for (c--, e++; c; c--, e++) {
			bp = (const __m512i *)(bt + e->off);
			av = _mm512_set1_epi32(e->val);
#define SPT_MAC(k) s##k = _mm512_dpwssd_epi32(s##k, _mm512_load_si512(bp + k), av);
			SPT_X4(SPT_MAC)
#undef SPT_MAC
		}
#define SPT_STORE(k) _mm512_store_si512(dst + k, s##k);
		SPT_X4(SPT_STORE)
#undef SPT_STORE
	}
}

/* rows r0..r1-1, blocks b0..b1-1: add the block terms to the accumulators */
static void spt_rows(const struct spt_gemm_plan *p, const float *st,
		     uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
		     const int32_t *scratch)
{
	uint32_t i, b;

	for (i = r0; i < r1; i++) {
		const float *ascale = p->a_scale + (size_t)i * p->nb;
		float *crow = p->c + (size_t)i * p->ldc;
		const int32_t *sc = scratch + (size_t)(i - r0) * KC * JT;
#define SPT_DECL(k) __m512 acc##k;
		SPT_X4(SPT_DECL)
#undef SPT_DECL

		if (b0 == 0) {
#define SPT_ZERO(k) acc##k = _mm512_setzero_ps();
			SPT_X4(SPT_ZERO)
#undef SPT_ZERO
		} else {
#define SPT_LOAD(k) acc##k = _mm512_loadu_ps(crow + 16 * k);
			SPT_X4(SPT_LOAD)
#undef SPT_LOAD
		}
		for (b = b0; b < b1; b++, sc += JT) {
			__m512 sa = _mm512_set1_ps(ascale[b]);
			const float *sb = st + (size_t)b * JT;
#define SPT_ADD(k) acc##k = _mm512_add_ps(acc##k, spt_term(sc + 16 * k, sa, sb + 16 * k));
			SPT_X4(SPT_ADD)
#undef SPT_ADD
		}
#define SPT_STORE(k) _mm512_storeu_ps(crow + 16 * k, acc##k);
		SPT_X4(SPT_STORE)
#undef SPT_STORE
	}
}

void spt_gemm_kernel_avx512(const struct spt_gemm_plan *p)
{
	int32_t scratch[RG * KC * JT] __attribute__((aligned(64)));
	uint32_t nb = p->nb, h, g;

	for (h = 0; h < p->nchunks; h++) {
		uint32_t b0 = h * KC, b1 = nb - b0 < KC ? nb : b0 + KC;

		for (g = 0; g < p->ngroups; g++) {
			uint32_t r0 = g * RG, r1 = p->m - r0 < RG ? p->m : r0 + RG;
			const uint32_t *is = p->item_start + (size_t)g * p->nchunks + h;

			spt_items(p, p->b_pairs, p->items + is[0], p->items + is[1], scratch);
			spt_rows(p, p->b_scale, r0, r1, b0, b1, scratch);
		}
	}
}
