/* SPDX-License-Identifier: MIT */
/*
 * AVX2 paths of the codec: whole-tensor encode, validation and decode.
 * Each computes exactly what the scalar code in codec.c computes (same float
 * operations in the same order, the same checks), so the encoded bytes,
 * decoded floats, statistics and accept/reject verdicts are identical;
 * check_codec_isa tests that.
 */
#include <errno.h>
#include <immintrin.h>
#include <string.h>

#include "codec_block.h"
#include "codec_lut.h"
#include "codec_simd.h"
#include "ct_transpose.h"

/* ---- encode ------------------------------------------------------------ */

/* The fixed summation order of spt_block_sum() on the lanes of 4 vectors. */
AINLINE float block_sum(__m256 v0, __m256 v1, __m256 v2, __m256 v3)
{
	__m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(v0, v1), v2), v3);
	__m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));

	h = _mm_add_ps(h, _mm_movehl_ps(h, h));
	h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
	return _mm_cvtss_f32(h);
}

/* Largest lane as unsigned bits (for |x| bit patterns: the largest |x|). */
AINLINE uint32_t hmax_u32(__m256i m)
{
	__m128i h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));

	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
	return (uint32_t)_mm_cvtsi128_si32(h);
}

/*
 * Per element, 0xff if its |x| bit pattern (non-negative as int32) is zero:
 * the saturating packs keep zero and nonzero apart.  Byte lanes of a block
 * are permuted, which counting does not mind.
 */
AINLINE __m256i zero_bytes(__m256 a0, __m256 a1, __m256 a2, __m256 a3)
{
	__m256i p = _mm256_packs_epi16(
		_mm256_packus_epi32(_mm256_castps_si256(a0), _mm256_castps_si256(a1)),
		_mm256_packus_epi32(_mm256_castps_si256(a2), _mm256_castps_si256(a3)));

	return _mm256_cmpeq_epi8(p, _mm256_setzero_si256());
}

/* spt_rng_h32 on eight lanes */
AINLINE __m256i h32_v(__m256i x)
{
	x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
	x = _mm256_mullo_epi32(x, _mm256_set1_epi32(0x7feb352d));
	x = _mm256_xor_si256(x, _mm256_srli_epi32(x, 15));
	x = _mm256_mullo_epi32(x, _mm256_set1_epi32((int)0x846ca68bu));
	return _mm256_xor_si256(x, _mm256_srli_epi32(x, 16));
}

/* The stochastic rounding draws' key, recomputed when index >> 32 changes. */
struct rng_ctx {
	uint64_t seed;
	uint32_t hi, valid;
	__m256i kl, kh;
};

/*
 * u[j] lanes = spt_rng_unit(seed, index + 8j + lane), as rng_block gives
 * them, for j < nv; u[j] = 0 for the rest (the lanes past a ragged block's
 * end, which hold +0 and round and prune to +0 whatever their draw).
 */
AINLINE void rng_u(struct rng_ctx *r, uint64_t index, __m256 u[4], unsigned int nv)
{
	uint32_t lo0 = (uint32_t)index, hi = (uint32_t)(index >> 32);
	__m256i lo;
	unsigned int j;

	if (__builtin_expect(lo0 > UINT32_MAX - 31, 0)) {	/* crosses 2^32 */
		float uu[32];

		rng_block(r->seed, index, uu);
		for (j = 0; j < 4; j++)
			u[j] = _mm256_loadu_ps(uu + 8 * j);
		return;
	}
	if (__builtin_expect(!r->valid || hi != r->hi, 0)) {
		uint64_t key = spt_rng_key(r->seed, hi);

		r->kl = _mm256_set1_epi32((int)(uint32_t)key);
		r->kh = _mm256_set1_epi32((int)(uint32_t)(key >> 32));
		r->hi = hi;
		r->valid = 1;
	}
	lo = _mm256_add_epi32(_mm256_set1_epi32((int)lo0), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
#pragma GCC unroll 4
	for (j = 0; j < 4; j++) {
		__m256i x;

		if (j >= nv) {
			u[j] = _mm256_setzero_ps();
			continue;
		}
		x = h32_v(_mm256_xor_si256(h32_v(_mm256_xor_si256(lo, r->kl)), r->kh));
		u[j] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(x, 8)),
				     _mm256_set1_ps(0x1p-24f));
		lo = _mm256_add_epi32(lo, _mm256_set1_epi32(8));
	}
}

/*
 * round_stochastic() of bfp8.c on eight lanes (|y| < 128): its fl is
 * floor(y), exact in float, and so is d = y - fl; k = fl + (u < d).  The
 * clamp is the packs' job.
 */
AINLINE __m256i round_stoch_v(__m256 y, __m256 u)
{
	__m256 fl = _mm256_round_ps(y, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
	__m256 d = _mm256_sub_ps(y, fl);

	return _mm256_sub_epi32(_mm256_cvttps_epi32(fl),
				_mm256_castps_si256(_mm256_cmp_ps(u, d, _CMP_LT_OQ)));
}

/*
 * spt_prune_value() on eight lanes of x (|x| in a) below tau: sign(x) * tau
 * if u < |x| / tau (the float division), else +0; x itself at or above tau
 * (NaN and Inf too: they show in the kept maximum).  *k gets the kept |x|.
 */
AINLINE __m256 sprune_v(__m256 x, __m256 a, __m256 vtau, __m256 u, __m256 *k)
{
	__m256 below = _mm256_cmp_ps(a, vtau, _CMP_LT_OQ);
	__m256 promote = _mm256_and_ps(below, _mm256_cmp_ps(u, _mm256_div_ps(a, vtau),
							    _CMP_LT_OQ));
	__m256 t = _mm256_or_ps(_mm256_and_ps(x, _mm256_set1_ps(-0.0f)), vtau);

	*k = _mm256_or_ps(_mm256_andnot_ps(below, a), _mm256_and_ps(promote, vtau));
	return _mm256_or_ps(_mm256_andnot_ps(below, x), _mm256_and_ps(promote, t));
}

struct enc_ctx {
	__m256 vtau;
	unsigned int rnv;	/* vectors of a ragged block with elements */
	/* per byte lane, minus the count of |x| == 0 and of kept == 0 (<= 64) */
	__m256i zacc, kzacc;
	double sum_abs, sum_kept;
};

#define BAD_BITS 0x7f800000u	/* |x| bits at or above: Inf or NaN */

/*
 * Lanes 8j..8j+7 of a block at x: all of them without @mk, else those that
 * mk[j] selects (the others read as +0, never touched: a ragged block at
 * the end of a row, or of the tensor, reads no element past it).
 */
#define LDB(x, mk, j) ((mk) ? _mm256_maskload_ps((x) + 8 * (j), (mk)[j]) :	\
		       _mm256_loadu_ps((x) + 8 * (j)))

/*
 * LDB for the group paths, where @masked and @nv are constants: without
 * @masked a plain load; vectors j >= nv are +0 without a load (a block
 * narrower than 8 * nv elements).
 */
AINLINE __m256 ldv(const float *x, const __m256i *mk, int masked, unsigned int nv, unsigned int j)
{
	if (j >= nv)
		return _mm256_setzero_ps();
	return masked ? LDB(x, mk, j) : _mm256_loadu_ps(x + 8 * j);
}

/*
 * Prune and quantise one 32-element block: its 32 k packed in element order
 * to *@bp and its E8M0 byte to *@Bp; 0 (nothing written) when every value
 * is +-0 after pruning, or, with *bad set, on NaN/Inf.  Same arithmetic as
 * the scalar encode: |x| < tau is pruned (with @sprune to sign(x) * tau or
 * 0 by the draws of @rp), E from the largest kept |x|, k = clamp(
 * round(x * s1 * s2)) to nearest even or, with @stoch, stochastically with
 * the draws of element @index on, sums in spt_block_sum order.
 */
AINLINE int enc_block_k(struct enc_ctx *cx, const float *x, const __m256i *mk, int prune,
			int sprune, struct rng_ctx *rp, int stoch, struct rng_ctx *rc,
			uint64_t index, __m256i *bp, uint32_t *Bp, int *bad)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 x0 = LDB(x, mk, 0), x1 = LDB(x, mk, 1);
	__m256 x2 = LDB(x, mk, 2), x3 = LDB(x, mk, 3);
	__m256 a0 = _mm256_andnot_ps(sign, x0), a1 = _mm256_andnot_ps(sign, x1);
	__m256 a2 = _mm256_andnot_ps(sign, x2), a3 = _mm256_andnot_ps(sign, x3);
	__m256 k0, k1, k2, k3;
	__m256i z, m, r0, r1, r2, r3;
	uint32_t umax, B;

	z = zero_bytes(a0, a1, a2, a3);
	cx->zacc = _mm256_add_epi8(cx->zacc, z);
	cx->sum_abs += block_sum(a0, a1, a2, a3);
	if (sprune) {
		__m256 u[4];

		rng_u(rp, index, u, mk ? cx->rnv : 4);
		x0 = sprune_v(x0, a0, cx->vtau, u[0], &k0);
		x1 = sprune_v(x1, a1, cx->vtau, u[1], &k1);
		x2 = sprune_v(x2, a2, cx->vtau, u[2], &k2);
		x3 = sprune_v(x3, a3, cx->vtau, u[3], &k3);
		z = zero_bytes(k0, k1, k2, k3);
		cx->kzacc = _mm256_add_epi8(cx->kzacc, z);
		cx->sum_kept += block_sum(k0, k1, k2, k3);
	} else if (prune) {
		__m256 p0 = _mm256_cmp_ps(a0, cx->vtau, _CMP_LT_OQ);
		__m256 p1 = _mm256_cmp_ps(a1, cx->vtau, _CMP_LT_OQ);
		__m256 p2 = _mm256_cmp_ps(a2, cx->vtau, _CMP_LT_OQ);
		__m256 p3 = _mm256_cmp_ps(a3, cx->vtau, _CMP_LT_OQ);

		k0 = _mm256_andnot_ps(p0, a0);
		k1 = _mm256_andnot_ps(p1, a1);
		k2 = _mm256_andnot_ps(p2, a2);
		k3 = _mm256_andnot_ps(p3, a3);
		x0 = _mm256_andnot_ps(p0, x0);
		x1 = _mm256_andnot_ps(p1, x1);
		x2 = _mm256_andnot_ps(p2, x2);
		x3 = _mm256_andnot_ps(p3, x3);
		z = zero_bytes(k0, k1, k2, k3);
		cx->kzacc = _mm256_add_epi8(cx->kzacc, z);
		cx->sum_kept += block_sum(k0, k1, k2, k3);
	} else {
		k0 = a0;
		k1 = a1;
		k2 = a2;
		k3 = a3;
	}
	/* NaN (not below tau) and Inf lanes are kept: they show in the max */
	m = _mm256_max_epu32(_mm256_max_epu32(_mm256_castps_si256(k0), _mm256_castps_si256(k1)),
			     _mm256_max_epu32(_mm256_castps_si256(k2), _mm256_castps_si256(k3)));
	umax = hmax_u32(m);
	if (__builtin_expect(umax >= BAD_BITS, 0)) {
		*bad = 1;
		return 0;
	}
	/* all +-0 after pruning: no record, and no draws for the rounding */
	if (!umax)
		return 0;
	/* E + 127 is the biased float exponent of the max (0: subnormal, E = -127) */
	B = umax >> 23;
	*Bp = B;
	scale4_v(&x0, &x1, &x2, &x3, B);
	if (stoch) {
		__m256 u[4];

		rng_u(rc, index, u, mk ? cx->rnv : 4);
		r0 = round_stoch_v(x0, u[0]);
		r1 = round_stoch_v(x1, u[1]);
		r2 = round_stoch_v(x2, u[2]);
		r3 = round_stoch_v(x3, u[3]);
	} else {
#define RNE(v) _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
		r0 = RNE(x0);
		r1 = RNE(x1);
		r2 = RNE(x2);
		r3 = RNE(x3);
#undef RNE
	}
	*bp = pack_k4(r0, r1, r2, r3);
	return 1;
}

/*
 * Prune, quantise and write one 32-element block record at @dst (l2, E8M0
 * byte, packed values; up to 37 bytes are written whatever the size).
 * Returns the L2 mask; *bad set on NaN/Inf.  The arithmetic is
 * enc_block_k()'s.
 */
AINLINE uint32_t enc_block(struct enc_ctx *cx, const float *x, const __m256i *mk, int prune,
			   int sprune, struct rng_ctx *rp, int stoch, struct rng_ctx *rc,
			   uint64_t index, uint8_t *dst, int *bad)
{
	__m256i b;
	__m128i lo, hi;
	uint32_t B, l2, c0, c1, c2;

	if (!enc_block_k(cx, x, mk, prune, sprune, rp, stoch, rc, index, &b, &B, bad))
		return 0;
	l2 = nz_mask32(b);
	/* record: l2, E8M0 byte, then the nonzero k compacted 8 lanes at a time */
	stu64(dst, (uint64_t)l2 | (uint64_t)B << 32);
	lo = _mm256_castsi256_si128(b);
	hi = _mm256_extracti128_si256(b, 1);
	c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);
	dst += 5;
	_mm_storel_epi64((__m128i *)dst,
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[0][l2 & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c0),
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[1][(l2 >> 8) & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c1),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[0][(l2 >> 16) & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c2),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[1][l2 >> 24])));
	return l2;
}

/*
 * Eight blocks at once, first pass: per block the sum of |x| and of the kept
 * |x| in spt_block_sum order and the largest kept |x|, reduced across blocks
 * with a transpose so that every lane does exactly the scalar tree:
 * level 1 adds the 128-bit halves (s[j] + s[j+4]), level 2 s[0]+s[2] and
 * s[1]+s[3], level 3 their sum.  Lanes end in the order 0 2 4 6 1 3 5 7.
 */
#define L1S(a, b) _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31))
#define L2S(a, b) _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x44), _mm256_shuffle_ps(a, b, 0xee))
#define L3S(a, b) _mm256_add_ps(_mm256_shuffle_ps(a, b, 0x88), _mm256_shuffle_ps(a, b, 0xdd))
#define L1M(a, b) _mm256_max_epu32(_mm256_permute2x128_si256(a, b, 0x20),		\
				   _mm256_permute2x128_si256(a, b, 0x31))
#define SHUFI(a, b, i) _mm256_castps_si256(_mm256_shuffle_ps(_mm256_castsi256_ps(a),	\
							     _mm256_castsi256_ps(b), i))
#define L2M(a, b) _mm256_max_epu32(SHUFI(a, b, 0x44), SHUFI(a, b, 0xee))
#define L3M(a, b) _mm256_max_epu32(SHUFI(a, b, 0x88), SHUFI(a, b, 0xdd))

struct grp {
	float sa[8], sk[8];
	uint32_t s1[8], B[8], adv[8];
	uint64_t hdr[8];	/* E8M0 byte << 32 */
	uint32_t bad, need2, present;
};

AINLINE void scan_block(const float *x, const __m256i *mk, int masked, unsigned int nv, int prune,
			int sprune, struct rng_ctx *rp, uint64_t index, float *vst, __m256 vtau,
			__m256i *zacc, __m256i *kzacc, __m256 *S, __m256 *K, __m256i *M)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 x0 = ldv(x, mk, masked, nv, 0), x1 = ldv(x, mk, masked, nv, 1);
	__m256 x2 = ldv(x, mk, masked, nv, 2), x3 = ldv(x, mk, masked, nv, 3);
	__m256 a0 = _mm256_andnot_ps(sign, x0), a1 = _mm256_andnot_ps(sign, x1);
	__m256 a2 = _mm256_andnot_ps(sign, x2), a3 = _mm256_andnot_ps(sign, x3);
	__m256i z;

	z = zero_bytes(a0, a1, a2, a3);
	*zacc = _mm256_add_epi8(*zacc, z);
	*S = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3);
	if (sprune) {
		/* the pruned block goes to @vst for the second pass */
		__m256 u[4];

		rng_u(rp, index, u, nv);
		/* lanes past nv hold +0, which prunes to +0 */
		_mm256_storeu_ps(vst, sprune_v(x0, a0, vtau, u[0], &a0));
		_mm256_storeu_ps(vst + 8, nv > 1 ? sprune_v(x1, a1, vtau, u[1], &a1) : x1);
		_mm256_storeu_ps(vst + 16, nv > 2 ? sprune_v(x2, a2, vtau, u[2], &a2) : x2);
		_mm256_storeu_ps(vst + 24, nv > 3 ? sprune_v(x3, a3, vtau, u[3], &a3) : x3);
		z = zero_bytes(a0, a1, a2, a3);
		*kzacc = _mm256_add_epi8(*kzacc, z);
		*K = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3);
	} else if (prune) {
		a0 = _mm256_andnot_ps(_mm256_cmp_ps(a0, vtau, _CMP_LT_OQ), a0);
		a1 = _mm256_andnot_ps(_mm256_cmp_ps(a1, vtau, _CMP_LT_OQ), a1);
		a2 = _mm256_andnot_ps(_mm256_cmp_ps(a2, vtau, _CMP_LT_OQ), a2);
		a3 = _mm256_andnot_ps(_mm256_cmp_ps(a3, vtau, _CMP_LT_OQ), a3);
		z = zero_bytes(a0, a1, a2, a3);
		*kzacc = _mm256_add_epi8(*kzacc, z);
		*K = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), a2), a3);
	}
	*M = _mm256_max_epu32(_mm256_max_epu32(_mm256_castps_si256(a0), _mm256_castps_si256(a1)),
			      _mm256_max_epu32(_mm256_castps_si256(a2), _mm256_castps_si256(a3)));
}

/*
 * Blocks x + 32j (elements index + 32j on), or, with @xp, blocks xp[j] read
 * through masks mk[j] (elements idx[j] on).
 */
AINLINE void scan8(const float *x, const float *const *xp, const __m256i *const *mk,
		   const uint64_t *idx, unsigned int nv, int prune, int sprune, struct rng_ctx *rp,
		   uint64_t index, float *vst, __m256 vtau, __m256i *zacc, __m256i *kzacc, struct grp *gr)
{
	const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	__m256 S[8], K[8], s0, s1, k0 = _mm256_setzero_ps(), k1 = _mm256_setzero_ps();
	__m256i M[8], m0, m1, mv, bv, small, s1v, nz;
	unsigned int j;

	/* unrolled: the scheduler overlaps the blocks (measured: 12% faster) */
#pragma GCC unroll 8
	for (j = 0; j < 8; j++)
		scan_block(xp ? xp[j] : x + 32 * j, xp ? mk[j] : NULL, xp != NULL, nv, prune, sprune, rp,
			   xp ? idx[j] : index + 32 * j, vst + 32 * j, vtau,
			   zacc, kzacc, &S[j], &K[j], &M[j]);
	s0 = L2S(L1S(S[0], S[1]), L1S(S[2], S[3]));
	s1 = L2S(L1S(S[4], S[5]), L1S(S[6], S[7]));
	if (prune) {
		k0 = L2S(L1S(K[0], K[1]), L1S(K[2], K[3]));
		k1 = L2S(L1S(K[4], K[5]), L1S(K[6], K[7]));
	}
	m0 = L2M(L1M(M[0], M[1]), L1M(M[2], M[3]));
	m1 = L2M(L1M(M[4], M[5]), L1M(M[6], M[7]));
	_mm256_storeu_ps(gr->sa, _mm256_permutevar8x32_ps(L3S(s0, s1), order));
	if (prune)
		_mm256_storeu_ps(gr->sk, _mm256_permutevar8x32_ps(L3S(k0, k1), order));
	mv = _mm256_permutevar8x32_epi32(L3M(m0, m1), order);
	gr->bad = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(
		_mm256_cmpgt_epi32(mv, _mm256_set1_epi32((int)BAD_BITS - 1))));
	bv = _mm256_srli_epi32(mv, 23);
	small = _mm256_cmpgt_epi32(_mm256_set1_epi32(6), bv);	/* B < 6: scale in two steps */
	s1v = _mm256_blendv_epi8(_mm256_slli_epi32(_mm256_sub_epi32(_mm256_set1_epi32(260), bv), 23),
				 _mm256_set1_epi32((127 + 64) << 23), small);
	_mm256_storeu_si256((__m256i *)gr->B, bv);
	_mm256_storeu_si256((__m256i *)gr->s1, s1v);
	_mm256_storeu_si256((__m256i *)gr->hdr,
			    _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_castsi256_si128(bv)), 32));
	_mm256_storeu_si256((__m256i *)(gr->hdr + 4),
			    _mm256_slli_epi64(_mm256_cvtepu32_epi64(_mm256_extracti128_si256(bv, 1)), 32));
	/*
	 * A block with a nonzero kept |x| is stored: its maximum quantises to
	 * 64..127, unless it is subnormal (need2 covers that case).
	 */
	nz = _mm256_andnot_si256(_mm256_cmpeq_epi32(mv, _mm256_setzero_si256()),
				 _mm256_set1_epi32(-1));
	gr->present = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(nz));
	_mm256_storeu_si256((__m256i *)gr->adv, _mm256_and_si256(nz, _mm256_set1_epi32(5)));
	/* all-zero blocks (max 0) need no second step: their k are 0 anyway */
	gr->need2 = (uint32_t)_mm256_movemask_ps(_mm256_castsi256_ps(
		_mm256_andnot_si256(_mm256_cmpeq_epi32(mv, _mm256_setzero_si256()), small)));
}

/* Second pass of one block: quantise with the scale found by scan8, write. */
AINLINE __m256i quant_bytes(const float *x, const __m256i *mk, int masked, unsigned int nv,
			    int prune, int csr_rne, int stoch, struct rng_ctx *rc, uint64_t index,
			    __m256 vtau, uint32_t s1, uint32_t B, int two_step)
{
	const __m256 sign = _mm256_set1_ps(-0.0f);
	__m256 x0 = ldv(x, mk, masked, nv, 0), x1 = ldv(x, mk, masked, nv, 1);
	__m256 x2 = ldv(x, mk, masked, nv, 2), x3 = ldv(x, mk, masked, nv, 3);
	__m256 vs1 = _mm256_castsi256_ps(_mm256_set1_epi32((int)s1));
	__m256i r0, r1, r2, r3;

	if (prune) {
		x0 = _mm256_andnot_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, x0), vtau, _CMP_LT_OQ), x0);
		x1 = _mm256_andnot_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, x1), vtau, _CMP_LT_OQ), x1);
		x2 = _mm256_andnot_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, x2), vtau, _CMP_LT_OQ), x2);
		x3 = _mm256_andnot_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, x3), vtau, _CMP_LT_OQ), x3);
	}
	x0 = _mm256_mul_ps(x0, vs1);
	x1 = _mm256_mul_ps(x1, vs1);
	x2 = _mm256_mul_ps(x2, vs1);
	x3 = _mm256_mul_ps(x3, vs1);
	if (__builtin_expect(two_step, 0)) {
		__m256 vs2 = _mm256_castsi256_ps(_mm256_set1_epi32((int)((196u - B) << 23)));

		x0 = _mm256_mul_ps(x0, vs2);
		x1 = _mm256_mul_ps(x1, vs2);
		x2 = _mm256_mul_ps(x2, vs2);
		x3 = _mm256_mul_ps(x3, vs2);
	}
	if (stoch) {
		__m256 u[4];

		rng_u(rc, index, u, nv);
		r0 = round_stoch_v(x0, u[0]);
		r1 = round_stoch_v(x1, u[1]);
		r2 = round_stoch_v(x2, u[2]);
		r3 = round_stoch_v(x3, u[3]);
	} else {
		/* with MXCSR rounding to nearest-even, the conversion alone rounds */
#define RNE(v) _mm256_cvtps_epi32(csr_rne ? (v) :						\
		_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
		r0 = RNE(x0);
		r1 = RNE(x1);
		r2 = RNE(x2);
		r3 = RNE(x3);
#undef RNE
	}
	return pack_k4(r0, r1, r2, r3);
}

/* Write the record of a block with values k (32 bytes) and mask l2 at dst. */
AINLINE void write_record(const int8_t *k, uint32_t l2, uint64_t hdr, uint8_t *dst)
{
	__m128i lo = _mm_loadu_si128((const __m128i *)k);
	__m128i hi = _mm_loadu_si128((const __m128i *)(k + 16));
	uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);

	stu64(dst, (uint64_t)l2 | hdr);
	dst += 5;
	_mm_storel_epi64((__m128i *)dst,
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[0][l2 & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c0),
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[1][(l2 >> 8) & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c1),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[0][(l2 >> 16) & 0xff])));
	_mm_storel_epi64((__m128i *)(dst + c2),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[1][l2 >> 24])));
}

AINLINE uint64_t hsum_neg_u8(__m256i v)
{
	__m256i t = _mm256_sad_epu8(_mm256_sub_epi8(_mm256_setzero_si256(), v),
				    _mm256_setzero_si256());
	__m128i h = _mm_add_epi64(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));

	return (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1);
}

/* Flush the per-lane counters once a tile (at most 64 per byte lane). */
AINLINE void enc_flush(struct enc_ctx *cx, struct ct_enc_acc *acc, int prune)
{
	uint64_t z = hsum_neg_u8(cx->zacc);

	acc->natural_zeros += z;
	if (prune)
		acc->pruned += hsum_neg_u8(cx->kzacc) - z;
	cx->zacc = cx->kzacc = _mm256_setzero_si256();
}

/* Lanes of a ragged block of @ragged elements (lane masks per vector). */
AINLINE void ragged_masks(uint32_t ragged, __m256i m[4])
{
	unsigned int c;

	for (c = 0; c < 4; c++)
		m[c] = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)ragged - 8 * (int)c),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/*
 * An encoder context for threshold @tau and ragged blocks of @ragged
 * elements (0: none), its sums continuing those of @acc.
 */
AINLINE void enc_begin(struct enc_ctx *cx, float tau, uint32_t ragged,
		       const struct ct_enc_acc *acc)
{
	cx->vtau = _mm256_set1_ps(tau);
	cx->rnv = (ragged + 7) / 8;
	cx->zacc = cx->kzacc = _mm256_setzero_si256();
	cx->sum_abs = acc->sum_abs;
	cx->sum_kept = acc->sum_abs_kept;
}

/*
 * The context's last counts and its sums into @acc, less the zero padding
 * of @rows ragged blocks of @ragged elements, which counted as zeros.
 */
AINLINE void enc_end(struct enc_ctx *cx, struct ct_enc_acc *acc, int prune, uint64_t rows,
		     uint32_t ragged)
{
	enc_flush(cx, acc, prune);
	if (ragged)
		acc->natural_zeros -= rows * (SPT_BLOCK_ELEMS - ragged);
	acc->sum_abs = cx->sum_abs;
	acc->sum_abs_kept = prune ? cx->sum_kept : cx->sum_abs;
}

/*
 * A group's first pass (scan8()) and its sums added to *sa and *sk in block
 * order; -EDOM on a NaN or Inf.
 */
AINLINE int group_scan(const float *x, const float *const *xp, const __m256i *const *mk,
		       const uint64_t *idx, unsigned int nv, int prune, int sprune,
		       struct rng_ctx *rp, uint64_t index, float *vst, struct enc_ctx *cx,
		       double *sa, double *sk, struct grp *gr)
{
	unsigned int j;

	scan8(x, xp, mk, idx, nv, prune, sprune, rp, index, vst, cx->vtau, &cx->zacc, &cx->kzacc,
	      gr);
	/* read the group's per-block fields as plain loads */
	__asm__ volatile("" : "+m"(*gr));
	if (__builtin_expect(gr->bad, 0))
		return -EDOM;
	for (j = 0; j < 8; j++) {
		*sa += gr->sa[j];
		if (prune)
			*sk += gr->sk[j];
	}
	return 0;
}

/*
 * Encode 8 blocks (@x, @xp, @mk, @idx and @index as for scan8) in place at
 * *qp with room for 8 dense records; their presence goes to bits i.. of
 * *l1, their sums to *sa and *sk.  -EDOM on NaN or Inf.
 */
AINLINE int enc_group8_k(const float *x, const float *const *xp, const __m256i *const *mk,
			 const uint64_t *idx, uint64_t index, unsigned int nv, int prune, int sprune,
			 int csr_rne, int stoch, struct rng_ctx *rp, struct rng_ctx *rc,
			 struct enc_ctx *cx, double *sa, double *sk, uint8_t **qp, uint64_t *l1,
			 uint64_t i)
{
	struct grp gr;
	int8_t kb[8][32] __attribute__((aligned(32)));
	/* stochastic pruning: the pruned blocks, quantised as such */
	float vst[8 * 32] __attribute__((aligned(32)));
	uint32_t l2s[8];
	uint8_t *q = *qp;
	unsigned int j;

	if (group_scan(x, xp, mk, idx, nv, prune, sprune, rp, index, vst, cx, sa, sk, &gr))
		return -EDOM;
	/* eight blocks of +-0 (dead units' rows of a weight gradient): no record, no draws */
	if (!gr.present)
		return 0;
#pragma GCC unroll 8
	for (j = 0; j < 8; j++) {
		__m256i b = quant_bytes(sprune ? vst + 32 * j : xp ? xp[j] : x + 32 * j,
					sprune || !xp ? NULL : mk[j], !sprune && xp, nv,
					prune && !sprune, csr_rne,
					stoch, rc, xp ? idx[j] : index + 32 * j, cx->vtau,
					gr.s1[j], gr.B[j], (gr.need2 >> j) & 1);

		_mm256_store_si256((__m256i *)kb[j], b);
		l2s[j] = nz_mask32(b);
	}
#pragma GCC unroll 8
	for (j = 0; j < 8; j++) {
		uint32_t l2 = l2s[j], adv = gr.adv[j];

		write_record(kb[j], l2, gr.hdr[j], q);
		/* a subnormal maximum may quantise to all zeros */
		if (__builtin_expect((gr.need2 >> j) & 1, 0)) {
			if (!l2) {
				adv = 0;
				gr.present &= ~(1u << j);
			}
		}
		/* absent: the record written is dropped */
		q += (uint32_t)_mm_popcnt_u32(l2) + adv;
	}
	*l1 |= (uint64_t)gr.present << i;
	*qp = q;
	return 0;
}

/*
 * Nonzero if a lane of the 32-element block at x (read as LDB reads it) has
 * 0 < |x| < tau: only such lanes use their stochastic pruning draw.
 */
AINLINE int needs_draws(const float *x, const __m256i *mk, int masked, unsigned int nv,
			__m256 vtau)
{
	const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
	__m256 acc = zero;
	unsigned int j;

	for (j = 0; j < 4 && j < nv; j++) {
		__m256 a = _mm256_andnot_ps(sign, masked ? LDB(x, mk, j) : _mm256_loadu_ps(x + 8 * j));

		acc = _mm256_or_ps(acc, _mm256_and_ps(_mm256_cmp_ps(a, zero, _CMP_GT_OQ),
						      _mm256_cmp_ps(a, vtau, _CMP_LT_OQ)));
	}
	return !_mm256_testz_ps(acc, acc);
}

/*
 * enc_group8_k(); under stochastic pruning, a group without a lane
 * 0 < |x| < tau takes the deterministic path, which gives the same result
 * there (x kept at or above tau, +0 for a zero) without the draws.
 */
AINLINE int enc_group8(const float *x, const float *const *xp, const __m256i *const *mk,
		       const uint64_t *idx, uint64_t index, unsigned int nv, int prune, int sprune, int csr_rne,
		       int stoch, struct rng_ctx *rp, struct rng_ctx *rc, struct enc_ctx *cx,
		       double *sa, double *sk, uint8_t **qp, uint64_t *l1, uint64_t i)
{
	if (sprune) {
		int need = 0;
		unsigned int j;

		for (j = 0; j < 8; j++)
			need |= needs_draws(xp ? xp[j] : x + 32 * j, xp ? mk[j] : NULL, xp != NULL, nv,
					    cx->vtau);
		if (need)
			return enc_group8_k(x, xp, mk, idx, index, nv, 1, 1, csr_rne, stoch, rp, rc,
					    cx, sa, sk, qp, l1, i);
		return enc_group8_k(x, xp, mk, idx, index, nv, 1, 0, csr_rne, stoch, rp, rc, cx,
				    sa, sk, qp, l1, i);
	}
	return enc_group8_k(x, xp, mk, idx, index, nv, prune, 0, csr_rne, stoch, rp, rc, cx, sa, sk,
			    qp, l1, i);
}

/*
 * One row of a tensor of one block per row (cols <= 32), elements @index on, in vectors 0..nv-1 (@nv = ceil(cols / 8), a
 * constant; lanes past cols are +0 through @lm, vectors nv.. are +0 and
 * left out: adding +0 to the non-negative sums of spt_block_sum() is exact).
 * With @plain the vectors are read whole and masked (the caller checked that
 * they stay inside the tensor), else through maskloads.  Writes the record
 * at @q (up to 5 + 8 * nv + 8 bytes) and returns its mask (0: no record).
 * The sums go to *sa and *sk in row order, zero counts (negated, per lane)
 * to cx.  Same arithmetic as enc_block(), which quant_bytes() and scan8()
 * repeat; *bad set on NaN or Inf.
 */
AINLINE __m256i enc_row1(struct enc_ctx *cx, const float *x, const __m256i *lm, int plain,
			 unsigned int nv, int prune, int sprune, struct rng_ctx *rp, int csr_rne,
			 int stoch, struct rng_ctx *rc, uint64_t index, uint32_t *bp, double *sa,
			 double *sk, __m256i *zv, __m256i *kzv, int *bad)
{
	const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps();
	__m256 v[4], a[4], k[4], sv, kv, vs1;
	__m256i m, r[4];
	uint32_t umax, B, s1;
	unsigned int j;

#pragma GCC unroll 4
	for (j = 0; j < 4; j++) {
		if (j >= nv) {
			v[j] = a[j] = zero;
			continue;
		}
		v[j] = plain ? _mm256_and_ps(_mm256_loadu_ps(x + 8 * j), _mm256_castsi256_ps(lm[j])) :
			       _mm256_maskload_ps(x + 8 * j, lm[j]);
		a[j] = _mm256_andnot_ps(sign, v[j]);
		zv[j] = _mm256_sub_epi32(zv[j], _mm256_castps_si256(
			_mm256_cmp_ps(a[j], zero, _CMP_EQ_OQ)));
	}
	sv = a[0];
#pragma GCC unroll 4
	for (j = 1; j < nv; j++)
		sv = _mm256_add_ps(sv, a[j]);
	if (prune) {
		__m256 below[4], need = zero;

#pragma GCC unroll 4
		for (j = 0; j < nv; j++) {
			below[j] = _mm256_cmp_ps(a[j], cx->vtau, _CMP_LT_OQ);
			if (sprune)
				need = _mm256_or_ps(need, _mm256_and_ps(below[j],
						    _mm256_cmp_ps(a[j], zero, _CMP_GT_OQ)));
		}
		if (sprune && __builtin_expect(!_mm256_testz_ps(need, need), 0)) {
			/* a lane 0 < |x| < tau: its draw decides */
			__m256 u[4];

			rng_u(rp, index, u, nv);
#pragma GCC unroll 4
			for (j = 0; j < nv; j++)
				v[j] = sprune_v(v[j], a[j], cx->vtau, u[j], &k[j]);
		} else {
#pragma GCC unroll 4
			for (j = 0; j < nv; j++) {
				k[j] = _mm256_andnot_ps(below[j], a[j]);
				v[j] = _mm256_andnot_ps(below[j], v[j]);
			}
		}
#pragma GCC unroll 4
		for (j = 0; j < nv; j++)
			kzv[j] = _mm256_sub_epi32(kzv[j], _mm256_castps_si256(
				_mm256_cmp_ps(k[j], zero, _CMP_EQ_OQ)));
		kv = k[0];
#pragma GCC unroll 4
		for (j = 1; j < nv; j++)
			kv = _mm256_add_ps(kv, k[j]);
#pragma GCC unroll 4
		for (j = nv; j < 4; j++)
			k[j] = zero;
	} else {
#pragma GCC unroll 4
		for (j = 0; j < 4; j++)
			k[j] = a[j];
		kv = sv;
	}
	*sa += block_sum(sv, zero, zero, zero);
	if (prune)
		*sk += block_sum(kv, zero, zero, zero);
	m = _mm256_castps_si256(k[0]);
#pragma GCC unroll 4
	for (j = 1; j < nv; j++)
		m = _mm256_max_epu32(m, _mm256_castps_si256(k[j]));
	umax = hmax_u32(m);
	if (__builtin_expect(umax >= BAD_BITS, 0)) {
		*bad = 1;
		return _mm256_setzero_si256();
	}
	B = umax >> 23;
	s1 = B >= 6 ? (260u - B) << 23 : (127u + 64u) << 23;	/* 2^(6-E) or 2^64 */
	vs1 = _mm256_castsi256_ps(_mm256_set1_epi32((int)s1));
#pragma GCC unroll 4
	for (j = 0; j < nv; j++)
		v[j] = _mm256_mul_ps(v[j], vs1);
	if (__builtin_expect(B < 6, 0)) {
		__m256 vs2 = _mm256_castsi256_ps(_mm256_set1_epi32((int)((196u - B) << 23)));

#pragma GCC unroll 4
		for (j = 0; j < nv; j++)
			v[j] = _mm256_mul_ps(v[j], vs2);
	}
	if (stoch) {
		__m256 u[4];

		rng_u(rc, index, u, nv);
#pragma GCC unroll 4
		for (j = 0; j < nv; j++)
			r[j] = round_stoch_v(v[j], u[j]);
	} else {
#pragma GCC unroll 4
		for (j = 0; j < nv; j++)
			r[j] = _mm256_cvtps_epi32(csr_rne ? v[j] :
				_mm256_round_ps(v[j], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
	}
#pragma GCC unroll 4
	for (j = nv; j < 4; j++)
		r[j] = _mm256_setzero_si256();
	*bp = B;
	return pack_k4(r[0], r[1], r[2], r[3]);
}

/* The record of a row's packed k @b (nv vectors' worth) with E8M0 byte @B at @q; its L2. */
AINLINE uint32_t put_row1(__m256i b, uint32_t B, unsigned int nv, uint8_t *q)
{
	__m128i lo, hi;
	uint32_t l2, c0, c1, c2;

	l2 = nz_mask32(b);
	stu64(q, (uint64_t)l2 | (uint64_t)B << 32);
	lo = _mm256_castsi256_si128(b);
	q += 5;
	_mm_storel_epi64((__m128i *)q,
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[0][l2 & 0xff])));
	if (nv < 2)
		return l2;
	c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	_mm_storel_epi64((__m128i *)(q + c0),
			 _mm_shuffle_epi8(lo, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[1][(l2 >> 8) & 0xff])));
	if (nv < 3)
		return l2;
	hi = _mm256_extracti128_si256(b, 1);
	c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	_mm_storel_epi64((__m128i *)(q + c1),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)
							      spt_lut_compress8[0][(l2 >> 16) & 0xff])));
	if (nv < 4)
		return l2;
	c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);
	_mm_storel_epi64((__m128i *)(q + c2),
			 _mm_shuffle_epi8(hi, _mm_loadl_epi64((const __m128i *)spt_lut_compress8[1][l2 >> 24])));
	return l2;
}

/*
 * spt_ct_encode_t(): a row's values (@b, its record's k in element order)
 * and E8M0 byte into lane row % 32 of the strip of the transpose @tx, as
 * its scatter would put them there from the record.
 */
AINLINE void ctt_row(struct ctt *tx, uint64_t row, __m256i b, uint32_t B)
{
	uint32_t i = (uint32_t)(row % SPT_BLOCK_ELEMS);

	_mm256_store_si256((__m256i *)(ctt_tile(tx, 0) + SPT_BLOCK_ELEMS * i), b);
	ctt_e8(tx, 0)[i] = (uint8_t)B;
	tx->touch[0] = 1;
}

/* Rows up to @row done: the strip quantised when @row is its last. */
AINLINE void ctt_rows_done(struct ctt *tx, uint64_t row)
{
	if ((row + 1) % SPT_BLOCK_ELEMS == 0)
		spt_ctt_flush_avx2(tx, (uint32_t)(row / SPT_BLOCK_ELEMS));
}

/*
 * A tile of a tensor of one block per row (cols <= 32) with room for its densest record:
 * rows x .. x + nb - 1 through enc_row1(); the counters and sums as
 * encode_tiles() keeps them.  Returns 0 or -EDOM.
 */
AINLINE int enc_tile_rows1(struct enc_ctx *cx, const float *in, const float *xend,
			   const float **xp, uint32_t cols, unsigned int nv, const __m256i *lm,
			   uint64_t nb, int prune, int sprune, struct rng_ctx *rp, int csr_rne,
			   int stoch, struct rng_ctx *rc, uint8_t **qp, uint64_t *l1p,
			   struct ct_enc_acc *acc, struct ctt *tx, uint64_t row0)
{
	const float *x = *xp;
	uint8_t *q = *qp, *q0 = q;
	double sa = cx->sum_abs, sk = cx->sum_kept;
	__m256i zv[4], kzv[4];
	uint64_t l1 = 0, i, nzb;
	unsigned int j;
	int bad = 0;

	for (j = 0; j < 4; j++)
		zv[j] = kzv[j] = _mm256_setzero_si256();
	/*
	 * Two rows are quantised before either record is written: a record's
	 * place depends on the row before, the quantisation on its own row
	 * only, so the two chains overlap.
	 */
	for (i = 0; i < nb; i += 2, x += 2 * cols) {
		uint64_t index = (uint64_t)(x - in);
		uint32_t l2, B0, B1 = 0;
		__m256i b0, b1 = _mm256_setzero_si256();
		int two = i + 1 < nb;

		if (__builtin_expect(xend - x >= (ptrdiff_t)cols + 8 * (ptrdiff_t)nv, 1)) {
			if (two) {
				/*
				 * Two rows of +-0 (half the rows of a ReLU
				 * layer's error, in runs): counted as natural
				 * zeros (and kept zeros), nothing stored, the
				 * sums unchanged (+0 added).
				 */
				__m256 o = _mm256_setzero_ps();

				for (j = 0; j < nv; j++)
					o = _mm256_or_ps(o, _mm256_or_ps(
						_mm256_and_ps(_mm256_loadu_ps(x + 8 * j),
							      _mm256_castsi256_ps(lm[j])),
						_mm256_and_ps(_mm256_loadu_ps(x + cols + 8 * j),
							      _mm256_castsi256_ps(lm[j]))));
				if (_mm256_testz_si256(_mm256_castps_si256(o),
						       _mm256_set1_epi32(0x7fffffff))) {
					for (j = 0; j < nv; j++) {
						zv[j] = _mm256_add_epi32(zv[j], _mm256_set1_epi32(2));
						if (prune)
							kzv[j] = _mm256_add_epi32(kzv[j],
										  _mm256_set1_epi32(2));
					}
					if (tx)
						ctt_rows_done(tx, row0 + i + 1);
					continue;
				}
			}
			b0 = enc_row1(cx, x, lm, 1, nv, prune, sprune, rp, csr_rne, stoch, rc, index,
				      &B0, &sa, &sk, zv, kzv, &bad);
			if (two)
				b1 = enc_row1(cx, x + cols, lm, 1, nv, prune, sprune, rp, csr_rne, stoch,
					      rc, index + cols, &B1, &sa, &sk, zv, kzv, &bad);
		} else {
			b0 = enc_row1(cx, x, lm, 0, nv, prune, sprune, rp, csr_rne, stoch, rc, index,
				      &B0, &sa, &sk, zv, kzv, &bad);
			if (two)
				b1 = enc_row1(cx, x + cols, lm, 0, nv, prune, sprune, rp, csr_rne, stoch,
					      rc, index + cols, &B1, &sa, &sk, zv, kzv, &bad);
		}
		if (__builtin_expect(bad, 0))
			return -EDOM;
		l2 = put_row1(b0, B0, nv, q);
		l1 |= (uint64_t)(l2 != 0) << i;
		q += (uint32_t)_mm_popcnt_u32(l2) + ((0u - (l2 != 0)) & 5u);
		if (tx && l2)
			ctt_row(tx, row0 + i, b0, B0);
		if (!two) {
			if (tx)
				ctt_rows_done(tx, row0 + i);
			x += cols;
			break;
		}
		l2 = put_row1(b1, B1, nv, q);
		l1 |= (uint64_t)(l2 != 0) << (i + 1);
		q += (uint32_t)_mm_popcnt_u32(l2) + ((0u - (l2 != 0)) & 5u);
		if (tx) {
			if (l2)
				ctt_row(tx, row0 + i + 1, b1, B1);
			ctt_rows_done(tx, row0 + i + 1);
		}
	}
	/* per-lane counts (negated) of the nv vectors, lanes past cols included */
	for (j = 1; j < nv; j++) {
		zv[0] = _mm256_add_epi32(zv[0], zv[j]);
		kzv[0] = _mm256_add_epi32(kzv[0], kzv[j]);
	}
	{
		uint32_t z[8], kz[8];
		uint64_t zs = 0, kzs = 0;

		_mm256_storeu_si256((__m256i *)z, zv[0]);
		_mm256_storeu_si256((__m256i *)kz, kzv[0]);
		for (j = 0; j < 8; j++) {
			zs += z[j];
			kzs += kz[j];
		}
		/*
		 * counted as 32-lane blocks, as scan8() counts them: the lanes
		 * past cols come off at the end of encode_tiles()
		 */
		zs += nb * (32 - 8 * nv);
		kzs += nb * (32 - 8 * nv);
		acc->natural_zeros += zs;
		if (prune)
			acc->pruned += kzs - zs;
	}
	cx->sum_abs = sa;
	cx->sum_kept = sk;
	nzb = (uint64_t)_mm_popcnt_u64(l1);
	acc->nz_blocks += nzb;
	acc->nonzeros += (uint64_t)(q - q0) - 5 * nzb;
	*l1p = l1;
	*qp = q;
	*xp = x;
	return 0;
}

/*
 * @rag (a constant, so that each kind of tensor runs code without the
 * others' paths): 2 + nv if every row is one block of cols <= 8 * nv
 * elements (nv = ceil(cols / 8); vectors nv.. are +0 and left out), else 0
 * if cols is a multiple of 32, else 1.
 */
AINLINE int encode_tiles(const float *in, const struct ct_geom *g, float tau, int prune,
			 int sprune, uint64_t pseed, int csr_rne, int stoch, uint64_t seed,
			 uint8_t *p, size_t cap, uint64_t *pos_io, struct ct_enc_acc *acc, int rag,
			 struct ctt *tx)
{
	uint8_t *tab = p + SPT_CT_HEADER_SIZE, stage[64] __attribute__((aligned(32)));
	uint32_t ragged = rag ? g->cols % SPT_BLOCK_ELEMS : 0, c = 0, last = g->bpr - 1;
	unsigned int gnv = rag >= 2 ? (unsigned int)rag - 2 : 4;
	__m256i rmask[4], lmask[4];
	uint64_t pos = *pos_io, t;
	const float *x = in, *xend = in + (size_t)g->rows * g->cols;
	struct enc_ctx cx;
	struct rng_ctx rc, rp;
	int bad = 0;

	ragged_masks(ragged, rmask);
	for (c = 0; c < 4; c++)
		lmask[c] = ragged ? rmask[c] : _mm256_set1_epi32(-1);
	c = 0;
	memset(&rc, 0, sizeof(rc));
	rc.seed = seed;
	memset(&rp, 0, sizeof(rp));
	rp.seed = pseed;
	enc_begin(&cx, tau, ragged, acc);
	for (t = 0; t < g->tiles; t++) {
		uint64_t nb = g->nblocks - t * SPT_TILE_BLOCKS, l1 = 0, l1pos = pos, i;
		uint8_t *q;

		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		if (pos - g->payload_off > UINT32_MAX)
			return -E2BIG;
		stu32(tab + 4 * t, (uint32_t)(pos - g->payload_off));
		if (cap - pos < 8)
			return -ENOSPC;
		q = p + pos + 8;
		if (rag >= 2 && cap - pos >= CT_TILE_MAX + CT_SLACK) {
			/* rows of one block, one row at a time */
			if (enc_tile_rows1(&cx, in, xend, &x, g->cols, gnv, lmask, nb, prune, sprune, &rp,
					   csr_rne, stoch, &rc, &q, &l1, acc, tx, t * SPT_TILE_BLOCKS))
				return -EDOM;
		} else if (!ragged && cap - pos >= CT_TILE_MAX + CT_SLACK) {
			uint64_t nzb, nnz;
			/* hot loop: contiguous full blocks, room for a dense tile */
			const uint8_t *q0 = q;
			double sa = cx.sum_abs, sk = cx.sum_kept;

			for (i = 0; i + 8 <= nb; i += 8)
				if (enc_group8(x + 32 * i, NULL, NULL, NULL, (uint64_t)(x - in) + 32 * i, 4,
					       prune, sprune, csr_rne, stoch, &rp, &rc, &cx, &sa, &sk,
					       &q, &l1, i))
					return -EDOM;
			cx.sum_abs = sa;
			cx.sum_kept = sk;
			for (; i < nb; i++) {
				uint32_t l2 = enc_block(&cx, x + 32 * i, NULL, prune, sprune, &rp, stoch, &rc,
							(uint64_t)(x - in) + 32 * i, q, &bad);
				uint32_t present = l2 != 0;

				if (__builtin_expect(bad, 0))
					return -EDOM;
				l1 |= (uint64_t)present << i;
				q += (uint32_t)_mm_popcnt_u32(l2) + ((0u - present) & 5u);
			}
			/* a record is 5 bytes and its values */
			nzb = (uint64_t)_mm_popcnt_u64(l1);
			nnz = (uint64_t)(q - q0) - 5 * nzb;
			x += 32 * nb;
			acc->nz_blocks += nzb;
			acc->nonzeros += nnz;
		} else if (rag && cap - pos >= CT_TILE_MAX + CT_SLACK) {
			uint64_t nzb, nnz;
			/*
			 * ragged rows, room for a dense tile: groups of 8 blocks,
			 * read in place when they are whole blocks of one row,
			 * else through pointers (several rows when narrower than
			 * 8 blocks), each row's last block through the ragged mask
			 */
			const uint8_t *q0 = q;
			double sa = cx.sum_abs, sk = cx.sum_kept;
			const float *xp[8];
			const __m256i *mk[8];
			uint64_t idx[8];
			unsigned int j;

			for (i = 0; i + 8 <= nb; i += 8) {
				if (c + 8 <= last) {
					if (enc_group8(x, NULL, NULL, NULL, (uint64_t)(x - in), 4, prune,
						       sprune, csr_rne, stoch, &rp, &rc, &cx, &sa, &sk,
						       &q, &l1, i))
						return -EDOM;
					x += 8 * SPT_BLOCK_ELEMS;
					c += 8;
					continue;
				}
				for (j = 0; j < 8; j++) {
					xp[j] = x;
					idx[j] = (uint64_t)(x - in);
					if (c == last) {
						mk[j] = rmask;
						x += ragged;
						c = 0;
					} else {
						mk[j] = NULL;
						x += SPT_BLOCK_ELEMS;
						c++;
					}
				}
				if (enc_group8(NULL, xp, mk, idx, 0, gnv, prune, sprune, csr_rne, stoch, &rp,
					       &rc, &cx, &sa, &sk, &q, &l1, i))
					return -EDOM;
			}
			cx.sum_abs = sa;
			cx.sum_kept = sk;
			for (; i < nb; i++) {
				const float *src = x;
				uint64_t index = (uint64_t)(x - in);
				uint32_t l2, present;

				if (c == last) {
					l2 = enc_block(&cx, src, rmask, prune, sprune, &rp, stoch, &rc, index,
						       q, &bad);
					x += ragged;
					c = 0;
				} else {
					l2 = enc_block(&cx, src, NULL, prune, sprune, &rp, stoch, &rc, index,
						       q, &bad);
					x += SPT_BLOCK_ELEMS;
					c++;
				}
				if (__builtin_expect(bad, 0))
					return -EDOM;
				present = l2 != 0;
				l1 |= (uint64_t)present << i;
				q += (uint32_t)_mm_popcnt_u32(l2) + ((0u - present) & 5u);
			}
			nzb = (uint64_t)_mm_popcnt_u64(l1);
			nnz = (uint64_t)(q - q0) - 5 * nzb;
			acc->nz_blocks += nzb;
			acc->nonzeros += nnz;
		} else {
			for (i = 0; i < nb; i++) {
				const float *src = x;
				const __m256i *m = NULL;
				uint64_t index = (uint64_t)(x - in);
				uint32_t n = SPT_BLOCK_ELEMS, l2, cnt;
				int room;

				if (ragged) {
					if (c == last) {
						n = ragged;
						m = rmask;
						c = 0;
					} else {
						c++;
					}
				}
				x += n;
				/* with room for any record, write in place, not staged */
				room = cap - (uint64_t)(q - p) >= 5 + SPT_BLOCK_ELEMS + CT_SLACK;
				l2 = enc_block(&cx, src, m, prune, sprune, &rp, stoch, &rc, index,
					       room ? q : stage,
					       &bad);
				if (bad)
					return -EDOM;
				if (tx) {	/* rows of one block: block i is a row */
					uint64_t row = t * SPT_TILE_BLOCKS + i;

					if (l2)
						spt_ctt_scatter_avx2(tx, 0, (uint32_t)(row % SPT_BLOCK_ELEMS),
								     room ? q : stage, l2,
								     room ? p + cap : stage + sizeof(stage));
					ctt_rows_done(tx, row);
				}
				if (!l2)
					continue;
				cnt = (uint32_t)_mm_popcnt_u32(l2);
				if (!room) {
					if (cap - (uint64_t)(q - p) < 5 + cnt)
						return -ENOSPC;
					memcpy(q, stage, 5 + cnt);
				}
				q += 5 + cnt;
				l1 |= 1ull << i;
				acc->nz_blocks++;
				acc->nonzeros += cnt;
			}
		}
		stu64(p + l1pos, l1);
		pos = (uint64_t)(q - p);
		enc_flush(&cx, acc, prune);
	}
	if (tx && g->rows % SPT_BLOCK_ELEMS)	/* the last strip, partial */
		spt_ctt_flush_avx2(tx, g->rows / SPT_BLOCK_ELEMS);
	enc_end(&cx, acc, prune, g->rows, ragged);
	*pos_io = pos;
	return 0;
}

AINLINE int encode_mode(const float *in, const struct ct_geom *g, float tau, int sprune,
			uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			size_t cap, uint64_t *pos, struct ct_enc_acc *acc, int rag, struct ctt *tx)
{
	/* tau = 0 prunes nothing (|x| < 0 never holds) */
	/* RC bits 00: the conversion rounds to nearest-even by itself */
	int csr_rne = (_mm_getcsr() & 0x6000u) == 0;

	if (!(tau > 0.0f))
		sprune = 0;
	/* stochastic rounding truncates and compares: no MXCSR dependence */
	if (round == SPT_ROUND_STOCHASTIC) {
		if (sprune)
			return encode_tiles(in, g, tau, 1, 1, pseed, 1, 1, seed, p, cap, pos, acc, rag, tx);
		return tau > 0.0f ?
			encode_tiles(in, g, tau, 1, 0, 0, 1, 1, seed, p, cap, pos, acc, rag, tx) :
			encode_tiles(in, g, 0.0f, 0, 0, 0, 1, 1, seed, p, cap, pos, acc, rag, tx);
	}
	if (sprune)
		return csr_rne ? encode_tiles(in, g, tau, 1, 1, pseed, 1, 0, 0, p, cap, pos, acc, rag, tx) :
				 encode_tiles(in, g, tau, 1, 1, pseed, 0, 0, 0, p, cap, pos, acc, rag, tx);
	if (tau > 0.0f)
		return csr_rne ? encode_tiles(in, g, tau, 1, 0, 0, 1, 0, 0, p, cap, pos, acc, rag, tx) :
				 encode_tiles(in, g, tau, 1, 0, 0, 0, 0, 0, p, cap, pos, acc, rag, tx);
	return csr_rne ? encode_tiles(in, g, 0.0f, 0, 0, 0, 1, 0, 0, p, cap, pos, acc, rag, tx) :
			 encode_tiles(in, g, 0.0f, 0, 0, 0, 0, 0, 0, p, cap, pos, acc, rag, tx);
}

/*
 * Eight whole blocks at @x, pruned below cx->vtau with @prune, quantised as
 * enc_group8_k() quantises them, to k (8 x 32), e8 and l2 as
 * spt_ct_quant_rows_avx2() gives them; the sums added to *sa and *sk in
 * block order.  0 or -EDOM.
 */
AINLINE int quant_group8(const float *x, int prune, int csr_rne, struct enc_ctx *cx,
			 double *sa, double *sk, int8_t *k, uint8_t *e8, uint32_t *l2)
{
	struct grp gr;
	unsigned int j;

	if (group_scan(x, NULL, NULL, NULL, 4, prune, 0, NULL, 0, NULL, cx, sa, sk, &gr))
		return -EDOM;
	if (!gr.present) {
		memset(k, 0, 8 * SPT_BLOCK_ELEMS);
		memset(l2, 0, 8 * sizeof(*l2));
		return 0;
	}
#pragma GCC unroll 8
	for (j = 0; j < 8; j++) {
		__m256i b = quant_bytes(x + 32 * j, NULL, 0, 4, prune, csr_rne, 0, NULL, 0,
					cx->vtau, gr.s1[j], gr.B[j], (gr.need2 >> j) & 1);

		_mm256_storeu_si256((__m256i *)(k + 32 * j), b);
		e8[j] = (uint8_t)gr.B[j];
		l2[j] = nz_mask32(b);
	}
	return 0;
}

/*
 * spt_ct_quant_rows_avx2() (codec_simd.h): a row's whole blocks eight at a
 * time as the encoder's groups quantise them, the rest through
 * enc_block_k(); the statistics in the encoder's order.
 */
AINLINE int quant_rows(const float *in, uint32_t rows, uint32_t cols, float tau, int prune,
		       int csr_rne, int8_t *k, uint8_t *e8, uint32_t *l2, struct ct_enc_acc *acc)
{
	const __m256i zero = _mm256_setzero_si256();
	uint32_t bpr = (cols + SPT_BLOCK_ELEMS - 1) / SPT_BLOCK_ELEMS;
	uint32_t ragged = cols % SPT_BLOCK_ELEMS, whole = cols / SPT_BLOCK_ELEMS, r, c, n = 0, i;
	struct rng_ctx none;	/* no draws: deterministic pruning, nearest rounding */
	__m256i rmask[4];
	struct enc_ctx cx;
	int bad = 0;

	ragged_masks(ragged, rmask);
	memset(&none, 0, sizeof(none));
	enc_begin(&cx, tau, ragged, acc);
	for (r = 0; r < rows; r++) {
		const float *x = in + (size_t)r * cols;

		for (c = 0; c < bpr; c = i) {
			if (c + 8 <= whole) {
				if (quant_group8(x, prune, csr_rne, &cx, &cx.sum_abs, &cx.sum_kept,
						 k, e8, l2))
					return -EDOM;
				i = c + 8;
			} else {
				const __m256i *mk = c == whole ? rmask : NULL;
				__m256i b = zero;
				uint32_t B = 0;

				*l2 = 0;
				if (enc_block_k(&cx, x, mk, prune, 0, &none, 0, &none, 0, &b, &B,
						&bad))
					*l2 = nz_mask32(b);
				if (__builtin_expect(bad, 0))
					return -EDOM;
				_mm256_storeu_si256((__m256i *)k, b);
				*e8 = (uint8_t)B;
				i = c + 1;
			}
			/* the per-lane zero counts hold 64 blocks, as in a tile */
			n += i - c;
			if (n > SPT_TILE_BLOCKS - 8) {
				enc_flush(&cx, acc, prune);
				n = 0;
			}
			for (; c < i; c++, x += SPT_BLOCK_ELEMS, k += SPT_BLOCK_ELEMS, e8++, l2++)
				if (*l2) {
					acc->nz_blocks++;
					acc->nonzeros += (uint32_t)_mm_popcnt_u32(*l2);
				}
		}
	}
	enc_end(&cx, acc, prune, rows, ragged);
	return 0;
}

int spt_ct_quant_rows_avx2(const float *in, uint32_t rows, uint32_t cols, float tau,
			   int8_t *k, uint8_t *e8, uint32_t *l2, struct ct_enc_acc *acc)
{
	/* RC bits 00: the conversion rounds to nearest-even by itself */
	int csr_rne = (_mm_getcsr() & 0x6000u) == 0;

	if (!in || !k || !e8 || !l2 || !acc || !cols || cols > SPT_CT_MAX_DIM ||
	    !(tau >= 0.0f))
		return -EINVAL;
	if (tau > 0.0f)
		return csr_rne ? quant_rows(in, rows, cols, tau, 1, 1, k, e8, l2, acc) :
				 quant_rows(in, rows, cols, tau, 1, 0, k, e8, l2, acc);
	return csr_rne ? quant_rows(in, rows, cols, 0.0f, 0, 1, k, e8, l2, acc) :
			 quant_rows(in, rows, cols, 0.0f, 0, 0, k, e8, l2, acc);
}

static int encode_whole(const float *in, const struct ct_geom *g, float tau, int sprune,
			uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			size_t cap, uint64_t *pos, struct ct_enc_acc *acc)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 0, NULL);
}

static int encode_ragged(const float *in, const struct ct_geom *g, float tau, int sprune,
			 uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			 size_t cap, uint64_t *pos, struct ct_enc_acc *acc)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 1, NULL);
}

static int encode_narrow1(const float *in, const struct ct_geom *g, float tau, int sprune,
			  uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			  size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 3, tx);
}

static int encode_narrow2(const float *in, const struct ct_geom *g, float tau, int sprune,
			  uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			  size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 4, tx);
}

static int encode_narrow4(const float *in, const struct ct_geom *g, float tau, int sprune,
			  uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			  size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 6, tx);
}

static int encode_narrow3(const float *in, const struct ct_geom *g, float tau, int sprune,
			  uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			  size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx)
{
	return encode_mode(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc, 5, tx);
}

int spt_ct_encode_narrow_avx2(const float *in, const struct ct_geom *g, float tau, int sprune,
			      uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			      size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx)
{
	static int (*const narrow[4])(const float *, const struct ct_geom *, float, int, uint64_t,
				      enum spt_round, uint64_t, uint8_t *, size_t, uint64_t *,
				      struct ct_enc_acc *, struct ctt *) = {
		encode_narrow1, encode_narrow2, encode_narrow3, encode_narrow4
	};

	return narrow[(g->cols - 1) / 8](in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc,
					 tx);
}

int spt_ct_encode_avx2(const float *in, const struct ct_geom *g, float tau, int sprune,
		       uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
		       size_t cap, uint64_t *pos, struct ct_enc_acc *acc)
{
	/* one block per row: row by row */
	if (g->cols <= SPT_BLOCK_ELEMS)
		return spt_ct_encode_narrow_avx2(in, g, tau, sprune, pseed, round, seed, p, cap,
						 pos, acc, NULL);
	if (g->cols % SPT_BLOCK_ELEMS == 0)
		return encode_whole(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc);
	return encode_ragged(in, g, tau, sprune, pseed, round, seed, p, cap, pos, acc);
}

/* ---- validation ---------------------------------------------------------- */

/*
 * Bit i set: block 64t + i is the last (ragged) block of its row.  @c0 is the
 * column block of the tile's first block.
 */
static uint64_t ragged_mask(uint64_t c0, uint32_t bpr)
{
	uint64_t m = 0, o;

	for (o = bpr - 1 - c0; o < SPT_TILE_BLOCKS; o += bpr)
		m |= 1ull << o;
	return m;
}

/* Nonzero if a record's n values hold a 0 or -128 byte; reads 32 bytes. */
AINLINE uint32_t bad_values32(const uint8_t *v, uint32_t n)
{
	__m256i b = _mm256_loadu_si256((const __m256i *)v);
	__m256i z = _mm256_cmpeq_epi8(_mm256_and_si256(b, _mm256_set1_epi8(0x7f)),
				      _mm256_setzero_si256());

	return _bzhi_u32((uint32_t)_mm256_movemask_epi8(z), n);
}

static uint32_t bad_values_tail(const uint8_t *v, uint32_t n)
{
	uint32_t bad = 0, i;

	for (i = 0; i < n; i++)
		bad |= !(v[i] & 0x7f);
	return bad;
}

struct chk {
	const struct ct_geom *g;
	const uint8_t *tab, *pl, *bend;
	uint32_t ragged, hibits;
	uint64_t nzb, nnz, c0, step;
};

/* One record of the fast walk: its checks accumulate in *bad. */
AINLINE const uint8_t *chk_record(const uint8_t *q, uint32_t *bad, uint64_t *nnz)
{
	uint32_t l2 = ldu32(q), n = (uint32_t)_mm_popcnt_u32(l2);

	*bad |= (l2 == 0) | (q[4] == SPT_E8M0_NAN);
	*bad |= bad_values32(q + 5, n);
	*nnz += n;
	return q + 5 + n;
}

/* Tile t (its table entries checked before): L1, every record; 0 or -EBADMSG. */
static int chk_tile(struct chk *k, uint64_t t)
{
	uint32_t o0 = ldu32(k->tab + 4 * t), o1 = ldu32(k->tab + 4 * t + 4), bad = 0;
	uint64_t nb = k->g->nblocks - t * SPT_TILE_BLOCKS, l1, rag = 0, cnt;
	const uint8_t *q, *end;

	q = k->pl + o0;
	end = k->pl + o1;
	l1 = ldu64(q);
	q += 8;
	if (nb < SPT_TILE_BLOCKS && (l1 >> nb))
		return -EBADMSG;
	if (k->ragged) {
		rag = ragged_mask(k->c0, k->g->bpr);
		k->c0 += k->step;
		if (k->c0 >= k->g->bpr)
			k->c0 -= k->g->bpr;
	}
	cnt = (uint64_t)_mm_popcnt_u64(l1);
	k->nzb += cnt;
	if ((uint64_t)(k->bend - q) >= cnt * (5 + SPT_BLOCK_ELEMS)) {
		/*
		 * Every record is at most 37 bytes: the walk cannot leave the
		 * buffer, so only the final position needs checking.
		 */
		if (!rag) {
			for (; cnt; cnt--)
				q = chk_record(q, &bad, &k->nnz);
		} else {
			for (; l1; l1 &= l1 - 1) {
				uint32_t r = (uint32_t)(rag >> _tzcnt_u64(l1)) & 1;

				bad |= ldu32(q) & (k->hibits & (0u - r));
				q = chk_record(q, &bad, &k->nnz);
			}
		}
		return bad || q != end ? -EBADMSG : 0;
	}
	for (; l1; l1 &= l1 - 1) {
		uint32_t l2, n, r = (uint32_t)(rag >> _tzcnt_u64(l1)) & 1;

		if (end - q < 5)
			return -EBADMSG;
		l2 = ldu32(q);
		if (!l2 || q[4] == SPT_E8M0_NAN || (l2 & k->hibits & (0u - r)))
			return -EBADMSG;
		q += 5;
		n = (uint32_t)_mm_popcnt_u32(l2);
		if ((uint64_t)(end - q) < n)
			return -EBADMSG;
		if (bad_values_tail(q, n))
			return -EBADMSG;
		q += n;
		k->nnz += n;
	}
	return q != end ? -EBADMSG : 0;
}

/*
 * Tiles t and t + 1 of a tensor without ragged blocks, walked together: two
 * independent chains of record lengths instead of one.  Returns 1 if done
 * (*err set), 0 if either tile needs the careful walk of chk_tile().
 */
static int chk_pair(struct chk *k, uint64_t t, int *err)
{
	uint32_t o0 = ldu32(k->tab + 4 * t), o1 = ldu32(k->tab + 4 * t + 4);
	uint32_t o2 = ldu32(k->tab + 4 * t + 8), bad = 0;
	uint64_t nb = k->g->nblocks - (t + 1) * SPT_TILE_BLOCKS, la, lb, ca, cb;
	const uint8_t *qa, *qb;

	qa = k->pl + o0;
	qb = k->pl + o1;
	la = ldu64(qa);
	lb = ldu64(qb);
	qa += 8;
	qb += 8;
	ca = (uint64_t)_mm_popcnt_u64(la);
	cb = (uint64_t)_mm_popcnt_u64(lb);
	if ((uint64_t)(k->bend - qa) < ca * (5 + SPT_BLOCK_ELEMS) ||
	    (uint64_t)(k->bend - qb) < cb * (5 + SPT_BLOCK_ELEMS))
		return 0;
	/* tile t is full (t + 1 exists); t + 1 may be the partial last one */
	if (nb < SPT_TILE_BLOCKS && (lb >> nb)) {
		*err = -EBADMSG;
		return 1;
	}
	k->nzb += ca + cb;
#pragma GCC unroll 4
	for (; ca && cb; ca--, cb--) {
		qa = chk_record(qa, &bad, &k->nnz);
		qb = chk_record(qb, &bad, &k->nnz);
	}
	for (; ca; ca--)
		qa = chk_record(qa, &bad, &k->nnz);
	for (; cb; cb--)
		qb = chk_record(qb, &bad, &k->nnz);
	*err = bad || qa != k->pl + o1 || qb != k->pl + o2 ? -EBADMSG : 0;
	return 1;
}

int spt_ct_check_avx2(const uint8_t *p, const struct ct_hdr *h)
{
	struct chk k;
	uint64_t t;
	int err;

	k.g = &h->g;
	k.tab = p + SPT_CT_HEADER_SIZE;
	k.pl = p + h->g.payload_off;
	k.bend = p + h->total;
	k.ragged = h->g.cols % SPT_BLOCK_ELEMS;
	k.hibits = k.ragged ? ~0u << k.ragged : 0;
	k.nzb = k.nnz = k.c0 = 0;
	k.step = SPT_TILE_BLOCKS % h->g.bpr;
	for (t = 0; t < h->g.tiles;) {
		if (!k.ragged && t + 1 < h->g.tiles && chk_pair(&k, t, &err)) {
			t += 2;
		} else {
			err = chk_tile(&k, t);
			t++;
		}
		if (err)
			return err;
	}
	if (k.nzb != h->nz_blocks || k.nnz != h->nonzeros)
		return -EBADMSG;
	return 0;
}

/* ---- decode ------------------------------------------------------------ */

/* 32 floats k * s from the packed values of mask l2; reads up to vals + 40. */
AINLINE void expand32(const uint8_t *vals, uint32_t l2, __m256 vs, float *dst)
{
	uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);
#define EXP8(off, m, o)									\
	_mm256_storeu_ps(dst + (o), _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(	\
		_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(vals + (off))),		\
				 _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m])))), vs))
	EXP8(0, l2 & 0xff, 0);
	EXP8(c0, (l2 >> 8) & 0xff, 8);
	EXP8(c1, (l2 >> 16) & 0xff, 16);
	EXP8(c2, l2 >> 24, 24);
#undef EXP8
}

AINLINE void zero32(float *dst)
{
	__m256 z = _mm256_setzero_ps();

	_mm256_storeu_ps(dst, z);
	_mm256_storeu_ps(dst + 8, z);
	_mm256_storeu_ps(dst + 16, z);
	_mm256_storeu_ps(dst + 24, z);
}

/* One block of a validated tile, bounds-careful near the buffer's end. */
AINLINE const uint8_t *dec_block_safe(const uint8_t *q, const uint8_t *bend, float *dst,
				      uint32_t n)
{
	uint32_t l2 = ldu32(q), cnt = (uint32_t)_mm_popcnt_u32(l2), m;
	float s = spt_lut_e8m0_scale[q[4]], tmp[32];
	const int8_t *v = (const int8_t *)(q + 5);

	if (bend - q >= 5 + 40) {
		if (n == SPT_BLOCK_ELEMS) {
			expand32(q + 5, l2, _mm256_set1_ps(s), dst);
		} else {
			expand32(q + 5, l2, _mm256_set1_ps(s), tmp);
			memcpy(dst, tmp, n * sizeof(float));
		}
	} else {
		memset(dst, 0, n * sizeof(float));
		for (m = l2; m; m &= m - 1)
			dst[_tzcnt_u32(m)] = (float)*v++ * s;
	}
	return q + 5 + cnt;
}

/*
 * A tile of a tensor with one ragged block of @cols < 25 elements per row
 * (nv = ceil(cols / 8)) whose payload has room past it for a dense tile: @nb
 * rows into @dst, branch-free (an absent row expands l2 = 0); each row
 * writes nv vectors, the lanes past cols being zeros that the next row
 * overwrites, except where that would pass @oend.  Returns the end of the
 * tile's records.
 */
AINLINE const uint8_t *dec_tile_rows1(const uint8_t *q, uint64_t l1, uint64_t nb, uint32_t cols,
				      unsigned int nv, float *dst, const float *oend)
{
	uint64_t i;

	for (i = 0; i < nb; i++, dst += cols) {
		uint32_t bit = (uint32_t)(l1 >> i) & 1;
		uint32_t l2 = ldu32(q) & (0u - bit), c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
		uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
		__m256 vs = _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]), v[3];
		unsigned int j;

#define EXPV(off, m) _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(			\
		_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(q + 5 + (off))),		\
				 _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m])))), vs)
		v[0] = EXPV(0, l2 & 0xff);
		if (nv > 1)
			v[1] = EXPV(c0, (l2 >> 8) & 0xff);
		if (nv > 2)
			v[2] = EXPV(c1, (l2 >> 16) & 0xff);
#undef EXPV
		if (__builtin_expect(oend - dst >= 8 * (ptrdiff_t)nv, 1)) {
#pragma GCC unroll 3
			for (j = 0; j < nv; j++)
				_mm256_storeu_ps(dst + 8 * j, v[j]);
		} else {
			float tmp[24];

#pragma GCC unroll 3
			for (j = 0; j < nv; j++)
				_mm256_storeu_ps(tmp + 8 * j, v[j]);
			memcpy(dst, tmp, cols * sizeof(float));
		}
		q += 5 * bit + (uint32_t)_mm_popcnt_u32(l2);
	}
	return q;
}

void spt_ct_decode_avx2(const uint8_t *p, const struct ct_hdr *h, float *out)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	uint32_t ragged = g->cols % SPT_BLOCK_ELEMS, c = 0;
	uint64_t t;
	float *dst = out;
	const float *oend = out + (size_t)g->rows * g->cols;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, i;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		if (g->bpr == 1 && ragged && ragged <= 24 &&
		    bend - q >= (ptrdiff_t)(CT_TILE_MAX + CT_SLACK)) {
			/* one ragged block per row */
			if (ragged <= 8)
				q = dec_tile_rows1(q, l1, nb, ragged, 1, dst, oend);
			else if (ragged <= 16)
				q = dec_tile_rows1(q, l1, nb, ragged, 2, dst, oend);
			else
				q = dec_tile_rows1(q, l1, nb, ragged, 3, dst, oend);
			dst += nb * ragged;
			continue;
		}
		if (ragged) {
			for (i = 0; i < nb; i++, l1 >>= 1) {
				uint32_t n = c == g->bpr - 1 ? ragged : SPT_BLOCK_ELEMS;

				if (++c == g->bpr)
					c = 0;
				/*
				 * 32 lanes written whatever n: a ragged block's lanes past
				 * n decode to zeros (clear L2 bits) that the blocks after
				 * it overwrite; only the last ones stop at the end of @out
				 */
				if (oend - dst >= SPT_BLOCK_ELEMS) {
					if (!(l1 & 1)) {
						zero32(dst);
					} else if (bend - q >= 5 + 40) {
						uint32_t l2 = ldu32(q);

						expand32(q + 5, l2,
							 _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]),
							 dst);
						q += 5 + (uint32_t)_mm_popcnt_u32(l2);
					} else {
						q = dec_block_safe(q, bend, dst, n);
					}
				} else if (l1 & 1) {
					q = dec_block_safe(q, bend, dst, n);
				} else {
					memset(dst, 0, n * sizeof(float));
				}
				dst += n;
			}
			continue;
		}
		if (!l1) {
			for (i = 0; i < nb; i++)
				zero32(dst + 32 * i);
		} else if (bend - q >= (ptrdiff_t)(CT_TILE_MAX + CT_SLACK) &&
			   _mm_popcnt_u64(l1) >= 40) {
			/* mostly present: branch-free, an absent block expands l2 = 0 */
#pragma GCC unroll 4
			for (i = 0; i < nb; i++) {
				uint32_t bit = (uint32_t)(l1 >> i) & 1;
				uint32_t l2 = ldu32(q) & (0u - bit);
				__m256 vs = _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]);

				expand32(q + 5, l2, vs, dst + 32 * i);
				q += 5 * bit + (uint32_t)_mm_popcnt_u32(l2);
			}
		} else if (bend - q >= (ptrdiff_t)(CT_TILE_MAX + CT_SLACK)) {
			/* sparse: zero the gaps, expand the present blocks */
			uint64_t next = 0;

			for (; l1; l1 &= l1 - 1) {
				uint64_t b = _tzcnt_u64(l1);
				uint32_t l2 = ldu32(q);

				for (; next < b; next++)
					zero32(dst + 32 * next);
				expand32(q + 5, l2, _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]),
					 dst + 32 * b);
				q += 5 + (uint32_t)_mm_popcnt_u32(l2);
				next = b + 1;
			}
			for (; next < nb; next++)
				zero32(dst + 32 * next);
		} else {
			for (i = 0; i < nb; i++, l1 >>= 1) {
				if (l1 & 1)
					q = dec_block_safe(q, bend, dst + 32 * i, SPT_BLOCK_ELEMS);
				else
					zero32(dst + 32 * i);
			}
		}
		dst += 32 * nb;
	}
}

/* ---- transposed decode --------------------------------------------------- */

/* 8 x 8 floats: r[i] holds row i on entry, column i on return. */
AINLINE void transpose8_ps(__m256 r[8])
{
	__m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
	__m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
	__m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
	__m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);

	r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
	r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
	r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
	r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
	r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
	r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
	r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
	r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

/*
 * Rows r0 .. r0+nr-1 of the tensor, staged with row stride @stride (a
 * multiple of 32, >= cols), into their columns of the cols x rows transpose.
 */
static void stage_flush(const float *stg, size_t stride, uint32_t nr, uint32_t r0,
			const struct ct_geom *g, float *out)
{
	uint32_t rows = g->rows, cols = g->cols, i, j;

	if (nr < CT_T_ROWS) {
		for (j = 0; j < cols; j++)
			for (i = 0; i < nr; i++)
				out[(size_t)j * rows + r0 + i] = stg[i * stride + j];
		return;
	}
	for (j = 0; j < cols; j += 8) {
		uint32_t n = cols - j < 8 ? cols - j : 8;	/* stride pads the tail */
		float *o = out + (size_t)j * rows + r0;
		__m256 v[8];

		for (i = 0; i < 8; i++)
			v[i] = _mm256_loadu_ps(stg + i * stride + j);
		transpose8_ps(v);
		for (i = 0; i < n; i++)
			_mm256_storeu_ps(o + (size_t)i * rows, v[i]);
	}
}

/*
 * Decode eight rows at a time into @stg (8 x bpr*32 floats, every block 32
 * wide: a ragged block's L2 bits past the row end are clear, so they decode
 * to zeros that are never read) and write them out transposed.
 */
void spt_ct_decode_t_avx2(const uint8_t *p, const struct ct_hdr *h, float *out, float *stg)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	size_t stride = (size_t)g->bpr * SPT_BLOCK_ELEMS;
	uint32_t r = 0, r0 = 0, c = 0;
	float *dst = stg;
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, i;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (i = 0; i < nb; i++, l1 >>= 1) {
			if (l1 & 1)
				q = dec_block_safe(q, bend, dst, SPT_BLOCK_ELEMS);
			else
				zero32(dst);
			dst += SPT_BLOCK_ELEMS;
			if (++c < g->bpr)
				continue;
			c = 0;
			if (++r - r0 == CT_T_ROWS || r == g->rows) {
				stage_flush(stg, stride, r - r0, r0, g, out);
				r0 = r;
				dst = stg;
			}
		}
	}
}

/* ---- column sums ----------------------------------------------------------- */

/*
 * The present blocks of a tile (records at @q, room past them for a dense
 * tile) of a tensor of one block per row added to a[0..nv-1]: the lanes
 * of vectors nv.. are past cols, never stored.
 */
AINLINE void colsum_tile1(const uint8_t *q, uint64_t l1, unsigned int nv, __m256 a[4])
{
	for (; l1; l1 &= l1 - 1) {
		uint32_t l2 = ldu32(q);
		uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
		uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
		uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);
		__m256 vs = _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]);

#define EXPV(off, m) _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(			\
		_mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(q + 5 + (off))),		\
				 _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m])))), vs)
		a[0] = _mm256_add_ps(a[0], EXPV(0, l2 & 0xff));
		if (nv > 1)
			a[1] = _mm256_add_ps(a[1], EXPV(c0, (l2 >> 8) & 0xff));
		if (nv > 2)
			a[2] = _mm256_add_ps(a[2], EXPV(c1, (l2 >> 16) & 0xff));
		if (nv > 3)
			a[3] = _mm256_add_ps(a[3], EXPV(c2, l2 >> 24));
#undef EXPV
		q += 5 + (uint32_t)_mm_popcnt_u32(l2);
	}
}

/*
 * spt_ct_colsum() of a validated tensor with @bpr <= CT_COLSUM_BPR: the
 * present blocks expanded to 32 lanes and added to per-column sums in block
 * (so row) order; a lane not stored adds +0.0f, which leaves the sum as it
 * is (never -0.0f: it starts at +0.0f).  Same floats as the scalar loop.
 */
void spt_ct_colsum_avx2(const uint8_t *p, const struct ct_hdr *h, float *sum)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	float acc[CT_COLSUM_BPR * SPT_BLOCK_ELEMS] __attribute__((aligned(32)));
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	uint32_t bpr = g->bpr, c0 = 0, step = SPT_TILE_BLOCKS % bpr;
	uint64_t t;

	memset(acc, 0, sizeof(acc));
	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q);
		int room;

		q += 8;
		room = bend - q >= (ptrdiff_t)(CT_TILE_MAX + CT_SLACK);
		if (bpr == 1 && room) {
			__m256 a[4] = { a0, a1, a2, a3 };

			if (g->cols <= 8)
				colsum_tile1(q, l1, 1, a);
			else if (g->cols <= 16)
				colsum_tile1(q, l1, 2, a);
			else if (g->cols <= 24)
				colsum_tile1(q, l1, 3, a);
			else
				colsum_tile1(q, l1, 4, a);
			a0 = a[0];
			a1 = a[1];
			a2 = a[2];
			a3 = a[3];
			continue;
		}
		for (; l1; l1 &= l1 - 1) {
			uint32_t l2 = ldu32(q), c, i = (uint32_t)_tzcnt_u64(l1);
			__m256 vs = _mm256_broadcast_ss(&spt_lut_e8m0_scale[q[4]]);
			float v[32] __attribute__((aligned(32)));

			if (room) {
				expand32(q + 5, l2, vs, v);
			} else {
				const int8_t *k = (const int8_t *)(q + 5);
				uint32_t m;

				memset(v, 0, sizeof(v));
				for (m = l2; m; m &= m - 1)
					v[_tzcnt_u32(m)] = (float)*k++ * spt_lut_e8m0_scale[q[4]];
			}
			q += 5 + (uint32_t)_mm_popcnt_u32(l2);
			if (bpr == 1) {
				a0 = _mm256_add_ps(a0, _mm256_load_ps(v));
				a1 = _mm256_add_ps(a1, _mm256_load_ps(v + 8));
				a2 = _mm256_add_ps(a2, _mm256_load_ps(v + 16));
				a3 = _mm256_add_ps(a3, _mm256_load_ps(v + 24));
				continue;
			}
			c = (c0 + i) % bpr;
			for (i = 0; i < SPT_BLOCK_ELEMS; i += 8)
				_mm256_store_ps(acc + 32 * c + i,
						_mm256_add_ps(_mm256_load_ps(acc + 32 * c + i),
							      _mm256_load_ps(v + i)));
		}
		c0 += step;
		if (c0 >= bpr)
			c0 -= bpr;
	}
	if (bpr == 1) {
		_mm256_store_ps(acc, a0);
		_mm256_store_ps(acc + 8, a1);
		_mm256_store_ps(acc + 16, a2);
		_mm256_store_ps(acc + 24, a3);
	}
	memcpy(sum, acc, g->cols * sizeof(float));
}
