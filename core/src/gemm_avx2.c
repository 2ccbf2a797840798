/* SPDX-License-Identifier: MIT */
/*
 * AVX2 GEMM kernel: a column tile of nv vectors of 8 lanes (1 <= nv <= 8,
 * one instance per nv, so a narrow C costs no padded work).  For one row
 * of A and one block, every nonzero pair (2m, 2m+1) of A's block multiplies
 * the B pair row m of the tile with vpmaddwd into int32 sums, so the work
 * scales with A's nonzeros.  Blocks are taken kc at a time so that the
 * tile's B pairs (kc * jt * 64 bytes: 16 KB) stay in L1, rows RG at a
 * time: first the int32 sums of the group's items (sorted by entry count,
 * see gemm_internal.h) into scratch, then each row adds its block terms in
 * FP32 in increasing block order, the scalar kernel's order.  Between
 * chunks the FP32 accumulators live in C; a tile's last vector, when C
 * ends inside it, is read and written through a lane mask.  The
 * epilogue's scale, bias and ReLU are applied as the final sums are stored.
 * (A C of one tile of at most 32 columns with A of few block columns takes
 * no plan: spt_gemm_narrow_avx2() here, the stream of gemm_plan_avx2.c.)
 */
#include <immintrin.h>
#include <string.h>

#include "codec_lut.h"
#include "gemm_internal.h"

#define JT SPT_GEMM_JT_AVX2
#define RG SPT_GEMM_RG_AVX2

/*
 * Up to eight vectors, written out; in an instance with a constant nv the
 * steps k >= nv fold away.  SPT_NV: the instances.
 */
#define SPT_X8(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7)
#define SPT_NV(M) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8)

static inline __m256 spt_term(const int32_t *isum, __m256 sa, const float *sb)
{
	__m256 f = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)isum));

	return _mm256_mul_ps(_mm256_mul_ps(f, sa), _mm256_load_ps(sb));
}

/*
 * int32 sums of every item of one group and chunk into scratch (nv vectors
 * per item); the first entry initialises the sums (items without entries
 * store zeros).
 */
static inline __attribute__((always_inline)) void
spt_items(const struct spt_gemm_plan *p, const struct spt_gemm_item *it,
	  const struct spt_gemm_item *end, int32_t *scratch, const unsigned int nv)
{
	const int32_t *bt = p->b_pairs;

	for (; it < end; it++) {
		const struct spt_gemm_entry *e = p->a_ent + it->ent;
		__m256i *dst = (__m256i *)(scratch + (size_t)it->slot * nv * 8);
		const __m256i *bp;
		unsigned int c = it->cnt;
		__m256i av;
#define SPT_DECL(k) __m256i s##k = _mm256_setzero_si256();
		SPT_X8(SPT_DECL)
#undef SPT_DECL

		if (c) {
			bp = (const __m256i *)(bt + e->off);
			av = _mm256_set1_epi32(e->val);
#define SPT_FIRST(k) if (k < nv) s##k = _mm256_madd_epi16(_mm256_load_si256(bp + k), av);
			SPT_X8(SPT_FIRST)
#undef SPT_FIRST
			for (c--, e++; c; c--, e++) {
				bp = (const __m256i *)(bt + e->off);
				av = _mm256_set1_epi32(e->val);
#define SPT_MAC(k)								\
	if (k < nv)								\
		s##k = _mm256_add_epi32(s##k, _mm256_madd_epi16(_mm256_load_si256(bp + k), av));
				SPT_X8(SPT_MAC)
#undef SPT_MAC
			}
		}
#define SPT_STORE(k) if (k < nv) _mm256_store_si256(dst + k, s##k);
		SPT_X8(SPT_STORE)
#undef SPT_STORE
	}
}

/*
 * rows r0..r1-1, blocks b0..b1-1: add the block terms to the accumulators;
 * a row's last vector is read and written through the lane mask last
 * unless whole (C's columns fill the tile).
 */
static inline __attribute__((always_inline)) void
spt_rows(const struct spt_gemm_plan *p, uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
	 const int32_t *scratch, __m256i last, const int whole, const unsigned int nv,
	 struct spt_ep ep, const int fin)
{
	const float *st = p->b_scale;
	uint32_t i, b;

	for (i = r0; i < r1; i++) {
		const float *ascale = p->a_scale + (size_t)i * p->nb;
		float *crow = p->c + (size_t)i * p->ldc;
		const int32_t *sc = scratch + (size_t)(i - r0) * p->kc * nv * 8;
#define SPT_DECL(k) __m256 acc##k = _mm256_setzero_ps();
		SPT_X8(SPT_DECL)
#undef SPT_DECL

		if (b0 != 0) {
#define SPT_LOAD(k)								\
	if (k + 1 < nv || (k + 1 == nv && whole))				\
		acc##k = _mm256_loadu_ps(crow + 8 * k);				\
	else if (k + 1 == nv)							\
		acc##k = _mm256_maskload_ps(crow + 8 * k, last);
			SPT_X8(SPT_LOAD)
#undef SPT_LOAD
		}
		for (b = b0; b < b1; b++, sc += nv * 8) {
			__m256 sa = _mm256_set1_ps(ascale[b]);
			const float *sb = st + (size_t)b * p->jt;
#define SPT_ADD(k)								\
	if (k < nv)								\
		acc##k = _mm256_add_ps(acc##k, spt_term(sc + 8 * k, sa, sb + 8 * k));
			SPT_X8(SPT_ADD)
#undef SPT_ADD
		}
#define SPT_STORE(k)								\
	if (k < nv && fin)							\
		acc##k = spt_epi(ep, acc##k, k, last, k + 1 == nv && !whole);	\
	if (k + 1 < nv || (k + 1 == nv && whole))				\
		_mm256_storeu_ps(crow + 8 * k, acc##k);				\
	else if (k + 1 == nv)							\
		_mm256_maskstore_ps(crow + 8 * k, last, acc##k);
		SPT_X8(SPT_STORE)
#undef SPT_STORE
	}
}

static inline __attribute__((always_inline)) void
spt_tile(const struct spt_gemm_plan *p, const unsigned int nv)
{
	int32_t scratch[RG * SPT_GEMM_KC_AVX2 * JT] __attribute__((aligned(64)));	/* kc * jt at most */
	uint32_t nb = p->nb, kc = p->kc, h, g, tail = p->nc - 8 * (nv - 1);	/* 1 .. 8 */
	__m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)tail),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	int whole = tail == 8;
	struct spt_ep ep = spt_ep_of(p);

	for (h = 0; h < p->nchunks; h++) {
		uint32_t b0 = h * kc, b1 = nb - b0 < kc ? nb : b0 + kc;

		for (g = 0; g < p->ngroups; g++) {
			uint32_t r0 = g * RG, r1 = p->m - r0 < RG ? p->m : r0 + RG;
			const uint32_t *is = p->item_start + (size_t)g * p->nchunks + h;

			spt_items(p, p->items + is[0], p->items + is[1], scratch, nv);
			/* an instance each; fin: the final sums, apply the epilogue */
			if (ep.on && b1 == nb) {
				if (whole)
					spt_rows(p, r0, r1, b0, b1, scratch, last, 1, nv, ep, 1);
				else
					spt_rows(p, r0, r1, b0, b1, scratch, last, 0, nv, ep, 1);
			} else if (whole) {
				spt_rows(p, r0, r1, b0, b1, scratch, last, 1, nv, ep, 0);
			} else {
				spt_rows(p, r0, r1, b0, b1, scratch, last, 0, nv, ep, 0);
			}
		}
	}
}

#define SPT_TILE_FN(nv) static void spt_tile##nv(const struct spt_gemm_plan *p) { spt_tile(p, nv); }
SPT_NV(SPT_TILE_FN)
#undef SPT_TILE_FN

void spt_gemm_kernel_avx2(const struct spt_gemm_plan *p)
{
#define SPT_TILE_PTR(nv) spt_tile##nv,
	static void (*const tile[8])(const struct spt_gemm_plan *) = { SPT_NV(SPT_TILE_PTR) };
#undef SPT_TILE_PTR

	tile[p->tw / 8 - 1](p);
}

/*
 * A single block column of at most 16 elements (a small convolution's patch
 * matrix) in a tile of nv <= 2 vectors, straight from A's stream: no
 * entries, no work items.  A stored block's values go to their elements by
 * a byte shuffle per 8 (as gemm_expand()), widened to its 8 int16 pairs,
 * and each of the first np pairs is broadcast into vpmaddwd with B's pair
 * row; a row without a stored block gets the absent item's +0.  The same
 * int32 sums and float operations as spt_items()' direct store, so the same
 * bits.  The stored blocks' per-bit counts are kept as bytes in a register.
 */
static inline __attribute__((always_inline)) void
spt_narrow(const struct spt_gemm_plan *p, struct gemm_cursor *cursor, uint32_t np,
	   const unsigned int nv, const int whole, uint32_t cnt[32], uint32_t *nblk)
{
	/* locals, so that the per-block state stays in registers */
	struct gemm_cursor cur = *cursor, *it = &cur;
	const int32_t *bt = p->b_pairs;
	float *c = p->c;
	size_t ldc = p->ldc, jt = p->jt;
	uint32_t tail = p->nc - 8 * (nv - 1), rows = p->m, row = 0, pend_n = 0, m, e;
	__m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)tail),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	__m256i pend = _mm256_setzero_si256();
	__m256 sb0 = _mm256_load_ps(p->b_scale), sb1 = _mm256_load_ps(p->b_scale + 8);
	__m256 z0, z1 = _mm256_setzero_ps();
	struct spt_ep ep = spt_ep_of(p);
	uint8_t cnt8[32] __attribute__((aligned(32)));

	/* an absent row's values: the epilogue of +0 */
	z0 = ep.on ? spt_epi(ep, _mm256_setzero_ps(), 0, last, nv == 1 && !whole) :
		     _mm256_setzero_ps();
	if (nv == 2)
		z1 = ep.on ? spt_epi(ep, _mm256_setzero_ps(), 1, last, !whole) :
			     _mm256_setzero_ps();
#define SPT_PUT(k, v, crow)							\
	do {									\
		if (k + 1 == nv && !whole)					\
			_mm256_maskstore_ps((crow) + 8 * k, last, v);		\
		else								\
			_mm256_storeu_ps((crow) + 8 * k, v);			\
	} while (0)
	for (; row < rows; gemm_cursor_next(it)) {
		/* a block past the last row (a trusted tensor not the encoder's) is ignored */
		uint32_t next = it->have && it->row < rows ? it->row : rows, l2;
		float *crow;
		uint8_t tmp[32];
		const int8_t *vals;
		__m128i k8;
		__m256i pairs, s0, s1 = _mm256_setzero_si256();
		__m256 sa, v;

		for (; row < next; row++) {	/* absent rows */
			crow = c + (size_t)row * ldc;
			SPT_PUT(0, z0, crow);
			if (nv == 2)
				SPT_PUT(1, z1, crow);
		}
		if (row >= rows)
			break;
		l2 = it->l2 & 0xffffu;
		vals = it->vals;
		if (it->c->end - (const uint8_t *)vals < 16) {	/* the stream's last bytes */
			memset(tmp, 0, sizeof(tmp));
			memcpy(tmp, vals, ct_pop32(l2));
			vals = (const int8_t *)tmp;
		}
		k8 = _mm_unpacklo_epi64(
			_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)vals),
					 _mm_loadl_epi64((const __m128i *)spt_lut_expand8[l2 & 0xffu])),
			_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)
							 (vals + ct_pop32(l2 & 0xffu))),
					 _mm_loadl_epi64((const __m128i *)spt_lut_expand8[l2 >> 8])));
		pairs = _mm256_cvtepi8_epi16(k8);
		s0 = _mm256_setzero_si256();
		for (m = 0; m < np; m++) {
			__m256i av = _mm256_permutevar8x32_epi32(pairs, _mm256_set1_epi32((int)m));
			const __m256i *bp = (const __m256i *)(bt + m * jt);

			s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_load_si256(bp), av));
			if (nv == 2)
				s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_load_si256(bp + 1),
									    av));
		}
		sa = _mm256_set1_ps(spt_exp2f_exact(it->ex - 6));
		crow = c + (size_t)row * ldc;
		v = _mm256_add_ps(_mm256_setzero_ps(),
				  _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), sa), sb0));
		if (ep.on)
			v = spt_epi(ep, v, 0, last, nv == 1 && !whole);
		SPT_PUT(0, v, crow);
		if (nv == 2) {
			v = _mm256_add_ps(_mm256_setzero_ps(),
					  _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), sa),
							sb1));
			if (ep.on)
				v = spt_epi(ep, v, 1, last, !whole);
			SPT_PUT(1, v, crow);
		}
		row++;
		/* the counters' bits: byte e counts bit e, added to cnt every 255 */
		pend = _mm256_sub_epi8(pend, spt_mask_bytes(it->l2));
		if (++pend_n == 255) {
			_mm256_store_si256((__m256i *)cnt8, pend);
			for (e = 0; e < 32; e++)
				cnt[e] += cnt8[e];
			*nblk += pend_n;
			pend = _mm256_setzero_si256();
			pend_n = 0;
		}
	}
#undef SPT_PUT
	_mm256_store_si256((__m256i *)cnt8, pend);
	for (e = 0; e < 32; e++)
		cnt[e] += cnt8[e];
	*nblk += pend_n;
}

#define SPT_NARROW_FN(nv, whole)						\
	static void spt_narrow##nv##whole(const struct spt_gemm_plan *p,	\
					  struct gemm_cursor *it, uint32_t np,	\
					  uint32_t cnt[32], uint32_t *nblk)	\
	{									\
		spt_narrow(p, it, np, nv, whole, cnt, nblk);			\
	}
SPT_NARROW_FN(1, 0)
SPT_NARROW_FN(1, 1)
SPT_NARROW_FN(2, 0)
SPT_NARROW_FN(2, 1)
#undef SPT_NARROW_FN

void spt_gemm_narrow_avx2(const struct spt_gemm_plan *p, const struct gemm_ct *a,
			  uint32_t cnt[32], uint32_t *nblk)
{
	struct gemm_cursor it;
	uint32_t np = (a->cols + 1) / 2;
	int whole = p->nc % 8 == 0;

	gemm_cursor_init(&it, a);
	if (p->tw == 8)
		(whole ? spt_narrow11 : spt_narrow10)(p, &it, np, cnt, nblk);
	else
		(whole ? spt_narrow21 : spt_narrow20)(p, &it, np, cnt, nblk);
}

static inline void spt_transpose8_epi32(__m256i r[8])
{
	__m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
	__m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
	__m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
	__m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
	__m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
	__m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
	__m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
	__m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);

	r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
	r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
	r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
	r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
	r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
	r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
	r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
	r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/*
 * Rows jj .. jj+7 of a B column tile (see gemm_internal.h) from a dense
 * staging area stg[8][nb][32]: per block the eight rows' values, widened to
 * int16 pairs and transposed 8 x 8, so every store is a whole pair row of 8
 * columns.  The AVX-512 path uses it too.
 */
void spt_gemm_pack_b_avx2(const int8_t *stg, uint32_t nb, uint32_t jt, uint32_t jj,
			  int32_t *tile)
{
	uint32_t blk, r;

	for (blk = 0; blk < nb; blk++) {
		int32_t *dst = tile + (size_t)blk * SPT_GEMM_PAIRS * jt + jj;
		__m256i lo[8], hi[8];

		for (r = 0; r < 8; r++) {
			__m256i v = _mm256_load_si256((const __m256i *)
						      (stg + 32 * ((size_t)r * nb + blk)));

			lo[r] = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
			hi[r] = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
		}
		spt_transpose8_epi32(lo);
		spt_transpose8_epi32(hi);
		for (r = 0; r < 8; r++) {
			_mm256_storeu_si256((__m256i *)(dst + (size_t)r * jt), lo[r]);
			_mm256_storeu_si256((__m256i *)(dst + (size_t)(r + 8) * jt), hi[r]);
		}
	}
}


void spt_gemm_epilogue_avx2(float *y, uint32_t m, uint32_t n, int do_scale, float scale,
			    const float *bias, int relu)
{
	__m256 vs = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
	uint32_t i, j;

	for (i = 0; i < m; i++, y += n) {
		for (j = 0; j + 8 <= n; j += 8) {
			__m256 v = _mm256_loadu_ps(y + j);

			if (do_scale)
				v = _mm256_mul_ps(v, vs);
			if (bias)
				v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
			if (relu)	/* ordered compare: NaN is kept */
				v = _mm256_andnot_ps(_mm256_cmp_ps(v, zero, _CMP_LE_OQ), v);
			_mm256_storeu_ps(y + j, v);
		}
		for (; j < n; j++) {
			float v = y[j];

			if (do_scale)
				v *= scale;
			if (bias)
				v += bias[j];
			if (relu && v <= 0.0f)
				v = 0.0f;
			y[j] = v;
		}
	}
}

void spt_gemm_mask32_avx2(float *y, uint32_t keep)
{
	__m256i bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
	unsigned int g;

	for (g = 0; g < 4; g++) {
		__m256i k = _mm256_set1_epi32((int)(keep >> (8 * g) & 0xffu));
		__m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(k, bit), bit);

		_mm256_storeu_ps(y + 8 * g, _mm256_and_ps(_mm256_loadu_ps(y + 8 * g),
							  _mm256_castsi256_ps(on)));
	}
}
