/* SPDX-License-Identifier: MIT */
/*
 * AVX2 path of spt_sgd_momentum_ct(): one pass checking w and v, then one
 * update pass that expands each block's values in registers (as
 * spt_ct_decode_avx2() does, without storing them) and applies the float
 * operations of sgd_update() in its order, eight lanes at a time.  Absent
 * blocks update with g = +0.0f.  Same bits as the scalar path (check_simd).
 */
#include <errno.h>
#include <immintrin.h>
#include <string.h>

#include "codec_lut.h"
#include "codec_simd.h"

/* A block record is read 8 bytes at a time up to here past its l2 field. */
#define REC_READ (5u + 40u)

struct vparams {
	__m256 lr, mom, wd;
	const struct sgd_params *sp;
};

/* |x| bits, as unsigned, at or above this: Inf or NaN. */
#define BAD_BITS 0x7f800000u

static int wv_finite(const float *w, const float *v, size_t n)
{
	const __m256i abs = _mm256_set1_epi32(0x7fffffff);
	__m256i m0 = _mm256_setzero_si256(), m1 = m0, m2 = m0, m3 = m0;
	uint32_t tail = 0, u;
	__m128i h;
	size_t i = 0;

#define ABSI(p) _mm256_and_si256(_mm256_loadu_si256((const __m256i *)(p)), abs)
	for (; i + 16 <= n; i += 16) {
		m0 = _mm256_max_epu32(m0, ABSI(w + i));
		m1 = _mm256_max_epu32(m1, ABSI(v + i));
		m2 = _mm256_max_epu32(m2, ABSI(w + i + 8));
		m3 = _mm256_max_epu32(m3, ABSI(v + i + 8));
	}
	for (; i + 8 <= n; i += 8) {
		m0 = _mm256_max_epu32(m0, ABSI(w + i));
		m1 = _mm256_max_epu32(m1, ABSI(v + i));
	}
#undef ABSI
	for (; i < n; i++) {
		memcpy(&u, &w[i], 4);
		tail |= (u & BAD_BITS) == BAD_BITS;
		memcpy(&u, &v[i], 4);
		tail |= (u & BAD_BITS) == BAD_BITS;
	}
	m0 = _mm256_max_epu32(_mm256_max_epu32(m0, m1), _mm256_max_epu32(m2, m3));
	h = _mm_max_epu32(_mm256_castsi256_si128(m0), _mm256_extracti128_si256(m0, 1));
	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
	return !tail && (uint32_t)_mm_cvtsi128_si32(h) < BAD_BITS;
}

/* sgd_update() on eight lanes: gd = wd*w, gp = g+gd, vn = mom*v + gp, w -= lr*vn. */
AINLINE void upd8(float *w, float *v, __m256 g, const struct vparams *vp)
{
	__m256 wv = _mm256_loadu_ps(w), vv = _mm256_loadu_ps(v);
	__m256 gp = _mm256_add_ps(g, _mm256_mul_ps(vp->wd, wv));
	__m256 vn = _mm256_add_ps(_mm256_mul_ps(vp->mom, vv), gp);

	_mm256_storeu_ps(v, vn);
	_mm256_storeu_ps(w, _mm256_sub_ps(wv, _mm256_mul_ps(vp->lr, vn)));
}

/* The same on one element, for the tails. */
AINLINE void upd1(float *w, float *v, float g, const struct sgd_params *sp)
{
	float gd = sp->weight_decay * *w;
	float gp = g + gd;
	float mv = sp->momentum * *v;
	float vn = mv + gp;

	*v = vn;
	*w = *w - sp->lr * vn;
}

/* @n elements with the gradients @g (NULL: all +0.0f). */
static void upd_span(float *w, float *v, const float *g, size_t n, const struct vparams *vp)
{
	const __m256 zero = _mm256_setzero_ps();
	size_t i = 0;

	if (g) {
		for (; i + 8 <= n; i += 8)
			upd8(w + i, v + i, _mm256_loadu_ps(g + i), vp);
		for (; i < n; i++)
			upd1(w + i, v + i, g[i], vp->sp);
		return;
	}
	for (; i + 32 <= n; i += 32) {
		upd8(w + i, v + i, zero, vp);
		upd8(w + i + 8, v + i + 8, zero, vp);
		upd8(w + i + 16, v + i + 16, zero, vp);
		upd8(w + i + 24, v + i + 24, zero, vp);
	}
	for (; i + 8 <= n; i += 8)
		upd8(w + i, v + i, zero, vp);
	for (; i < n; i++)
		upd1(w + i, v + i, 0.0f, vp->sp);
}

/* Eight gradients k * s of mask byte @m from the packed values at @vals (reads 8 bytes). */
AINLINE __m256 grad8(const uint8_t *vals, uint32_t m, __m256 vs)
{
	__m128i k = _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)vals),
				     _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m]));

	return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(k)), vs);
}

/* A full present block whose record has REC_READ readable bytes. */
AINLINE void upd_block32(float *w, float *v, const uint8_t *q, uint32_t l2,
			 const struct vparams *vp)
{
	const uint8_t *vals = q + 5;
	__m256 vs = _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]);
	uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);

	upd8(w, v, grad8(vals, l2 & 0xff, vs), vp);
	upd8(w + 8, v + 8, grad8(vals + c0, (l2 >> 8) & 0xff, vs), vp);
	upd8(w + 16, v + 16, grad8(vals + c1, (l2 >> 16) & 0xff, vs), vp);
	upd8(w + 24, v + 24, grad8(vals + c2, l2 >> 24, vs), vp);
}

/* Any present block (@n <= 32 elements), careful near the buffer's end. */
static void upd_block_any(float *w, float *v, const uint8_t *q, const uint8_t *bend,
			  uint32_t n, const struct vparams *vp)
{
	uint32_t l2 = ldu32(q), m;
	float s = spt_lut_e8m0_scale[q[4]], g[SPT_BLOCK_ELEMS] __attribute__((aligned(32)));
	const int8_t *k = (const int8_t *)(q + 5);

	if (n == SPT_BLOCK_ELEMS && bend - q >= (ptrdiff_t)REC_READ) {
		upd_block32(w, v, q, l2, vp);
		return;
	}
	memset(g, 0, sizeof(g));
	for (m = l2; m; m &= m - 1)
		g[_tzcnt_u32(m)] = (float)*k++ * s;
	upd_span(w, v, g, n, vp);
}

/*
 * A tensor with ragged rows: blocks in storage order cover consecutive
 * elements, so a run of absent blocks (across rows too) is one span.
 */
static void sgd_ragged(float *w, float *v, const uint8_t *p, const struct ct_hdr *h,
		       const struct vparams *vp)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	uint32_t ragged = g->cols % SPT_BLOCK_ELEMS, c = 0;
	size_t off = 0, zs = 0;	/* absent elements from zs to off */
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, i;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (i = 0; i < nb; i++, l1 >>= 1) {
			uint32_t n = c == g->bpr - 1 ? ragged : SPT_BLOCK_ELEMS;

			if (++c == g->bpr)
				c = 0;
			if (l1 & 1) {
				uint32_t l2 = ldu32(q);

				if (off > zs)
					upd_span(w + zs, v + zs, NULL, off - zs, vp);
				if (n == SPT_BLOCK_ELEMS && bend - q >= (ptrdiff_t)REC_READ)
					upd_block32(w + off, v + off, q, l2, vp);
				else
					upd_block_any(w + off, v + off, q, bend, n, vp);
				q += 5 + (uint32_t)_mm_popcnt_u32(l2);
				zs = off + n;
			}
			off += n;
		}
	}
	if (off > zs)
		upd_span(w + zs, v + zs, NULL, off - zs, vp);
}

/* Rows of whole blocks: block b of a tile covers elements 32 b .. 32 b + 31 of it. */
static void sgd_aligned(float *w, float *v, const uint8_t *p, const struct ct_hdr *h,
			const struct vparams *vp)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, next = 0;
		size_t off = (size_t)t * SPT_TILE_BLOCKS * SPT_BLOCK_ELEMS;
		float *tw = w + off, *tv = v + off;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (; l1; l1 &= l1 - 1) {
			uint64_t b = _tzcnt_u64(l1);
			uint32_t l2 = ldu32(q);

			if (b > next)
				upd_span(tw + 32 * next, tv + 32 * next, NULL, 32 * (b - next), vp);
			if (bend - q >= (ptrdiff_t)REC_READ)
				upd_block32(tw + 32 * b, tv + 32 * b, q, l2, vp);
			else
				upd_block_any(tw + 32 * b, tv + 32 * b, q, bend, SPT_BLOCK_ELEMS, vp);
			q += 5 + (uint32_t)_mm_popcnt_u32(l2);
			next = b + 1;
		}
		if (nb > next)
			upd_span(tw + 32 * next, tv + 32 * next, NULL, 32 * (nb - next), vp);
	}
}

int spt_sgd_ct_avx2(float *w, float *v, const uint8_t *p, const struct ct_hdr *h,
		    const struct sgd_params *sp)
{
	struct vparams vp;

	if (!wv_finite(w, v, (size_t)h->g.rows * h->g.cols))
		return -EDOM;
	vp.lr = _mm256_set1_ps(sp->lr);
	vp.mom = _mm256_set1_ps(sp->momentum);
	vp.wd = _mm256_set1_ps(sp->weight_decay);
	vp.sp = sp;
	if (h->g.cols % SPT_BLOCK_ELEMS)
		sgd_ragged(w, v, p, h, &vp);
	else
		sgd_aligned(w, v, p, h, &vp);
	return 0;
}
