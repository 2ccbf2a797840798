/* SPDX-License-Identifier: MIT */
/*
 * The raw transpose's strip work on AVX2 (ct_transpose.c): a strip's values
 * stay int8 (32 rows x 32 bytes per source block column, with the rows'
 * E8M0 bytes), a block column is transposed 32 x 32 in registers, and each
 * output block is k * scale (decode's products) quantised with the float
 * operations of the AVX2 encoder (enc_block of codec_avx2.c without
 * pruning), so the records are the encoder's.
 */
#include <immintrin.h>

#include "codec_lut.h"
#include "ct_transpose.h"

#define TILE_BYTES (SPT_BLOCK_ELEMS * SPT_BLOCK_ELEMS)

/* Block c of the strip's row i: its values expanded to 32 bytes (0 where absent). */
static void scatter_avx2(struct ctt *x, uint32_t c, uint32_t i, const uint8_t *q, uint32_t l2,
			 const uint8_t *bend)
{
	uint8_t *dst = ctt_tile(x, c) + i * SPT_BLOCK_ELEMS;
	const uint8_t *v = q + 5;

	x->touch[c] = 1;	/* a store, not an OR: no chain through memory */
	ctt_e8(x, c)[i] = q[4];
	if (__builtin_expect(bend - q >= 5 + 32, 1)) {
		uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
		uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
		uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);
#define EXP8(off, m, o)									\
	_mm_storel_epi64((__m128i *)(dst + (o)),					\
			 _mm_shuffle_epi8(_mm_loadl_epi64((const __m128i *)(v + (off))),	\
					  _mm_loadl_epi64((const __m128i *)spt_lut_expand8[m])))
		EXP8(0, l2 & 0xff, 0);
		EXP8(c0, (l2 >> 8) & 0xff, 8);
		EXP8(c1, (l2 >> 16) & 0xff, 16);
		EXP8(c2, l2 >> 24, 24);
#undef EXP8
	} else {
		uint32_t m;

		for (m = l2; m; m &= m - 1)
			dst[_tzcnt_u32(m)] = *v++;
	}
}

/*
 * The 32 x 32 bytes at @src (rows of 32) into @dst transposed, @src cleared;
 * returns the mask of the columns with a nonzero byte.
 * Four rounds of unpacks transpose each 16 x 16 quarter within the 128-bit
 * lanes (register k then holds column bitrev4(k) of its quarter); the lane
 * permutes put the halves together.
 */
static uint32_t transpose32(uint8_t *src, uint8_t *dst)
{
	static const uint8_t rev4[16] = { 0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15 };
	const __m256i z = _mm256_setzero_si256();
	__m256i a[32], b[32], any = z;
	unsigned int h, i;

#pragma GCC unroll 32
	for (i = 0; i < 32; i++) {
		a[i] = _mm256_load_si256((const __m256i *)(src + 32 * i));
		_mm256_store_si256((__m256i *)(src + 32 * i), z);
		any = _mm256_or_si256(any, a[i]);
	}
#pragma GCC unroll 2
	for (h = 0; h < 32; h += 16) {
#pragma GCC unroll 8
		for (i = 0; i < 8; i++) {
			b[h + i] = _mm256_unpacklo_epi8(a[h + 2 * i], a[h + 2 * i + 1]);
			b[h + i + 8] = _mm256_unpackhi_epi8(a[h + 2 * i], a[h + 2 * i + 1]);
		}
#pragma GCC unroll 8
		for (i = 0; i < 8; i++) {
			a[h + i] = _mm256_unpacklo_epi16(b[h + 2 * i], b[h + 2 * i + 1]);
			a[h + i + 8] = _mm256_unpackhi_epi16(b[h + 2 * i], b[h + 2 * i + 1]);
		}
#pragma GCC unroll 8
		for (i = 0; i < 8; i++) {
			b[h + i] = _mm256_unpacklo_epi32(a[h + 2 * i], a[h + 2 * i + 1]);
			b[h + i + 8] = _mm256_unpackhi_epi32(a[h + 2 * i], a[h + 2 * i + 1]);
		}
#pragma GCC unroll 8
		for (i = 0; i < 8; i++) {
			a[h + i] = _mm256_unpacklo_epi64(b[h + 2 * i], b[h + 2 * i + 1]);
			a[h + i + 8] = _mm256_unpackhi_epi64(b[h + 2 * i], b[h + 2 * i + 1]);
		}
	}
#pragma GCC unroll 16
	for (i = 0; i < 16; i++) {
		_mm256_store_si256((__m256i *)(dst + 32 * rev4[i]),
				   _mm256_permute2x128_si256(a[i], a[i + 16], 0x20));
		_mm256_store_si256((__m256i *)(dst + 32 * (rev4[i] + 16)),
				   _mm256_permute2x128_si256(a[i], a[i + 16], 0x31));
	}
	return ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(any, z));
}

/*
 * The output block of the 32 int8 k at @k scaled by @sc (lanes 8g..8g+7 in
 * sc[g]): its quantised values stored at @kout, its E8M0 byte returned.
 */
AINLINE uint32_t quant_block(const uint8_t *k, const __m256 sc[4], uint8_t *kout)
{
	const __m256i abs = _mm256_set1_epi32(0x7fffffff);
	__m256 x0, x1, x2, x3;
	__m256i m, r0, r1, r2, r3;
	__m128i h;
	uint32_t umax, B;

#define LD8(g) _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(			\
		_mm_loadl_epi64((const __m128i *)(k + 8 * (g))))), sc[g])
	x0 = LD8(0);
	x1 = LD8(1);
	x2 = LD8(2);
	x3 = LD8(3);
#undef LD8
	/* |x| bit patterns order like the values */
	m = _mm256_max_epu32(
		_mm256_max_epu32(_mm256_and_si256(_mm256_castps_si256(x0), abs),
				 _mm256_and_si256(_mm256_castps_si256(x1), abs)),
		_mm256_max_epu32(_mm256_and_si256(_mm256_castps_si256(x2), abs),
				 _mm256_and_si256(_mm256_castps_si256(x3), abs)));
	h = _mm_max_epu32(_mm256_castsi256_si128(m), _mm256_extracti128_si256(m, 1));
	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(1, 0, 3, 2)));
	h = _mm_max_epu32(h, _mm_shuffle_epi32(h, _MM_SHUFFLE(2, 3, 0, 1)));
	umax = (uint32_t)_mm_cvtsi128_si32(h);
	B = umax >> 23;
	scale4_v(&x0, &x1, &x2, &x3, B);
#define RNE(v) _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC))
	r0 = RNE(x0);
	r1 = RNE(x1);
	r2 = RNE(x2);
	r3 = RNE(x3);
#undef RNE
	_mm256_store_si256((__m256i *)kout, pack_k4(r0, r1, r2, r3));
	return B;
}

/* The record of the 32 k at @k with E8M0 byte @B at @dst (up to CTT_SLACK bytes past it). */
AINLINE uint32_t put_record(const uint8_t *k, uint32_t B, uint8_t *dst)
{
	__m256i b = _mm256_load_si256((const __m256i *)k);
	uint32_t l2 = nz_mask32(b);
	__m128i lo = _mm256_castsi256_si128(b), hi = _mm256_extracti128_si256(b, 1);
	uint32_t c0 = (uint32_t)_mm_popcnt_u32(l2 & 0xffu);
	uint32_t c1 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffu);
	uint32_t c2 = (uint32_t)_mm_popcnt_u32(l2 & 0xffffffu);

	stu64(dst, (uint64_t)l2 | (uint64_t)B << 32);
	dst += 5;
#define CMP8(d, src, t, msk)								\
	_mm_storel_epi64((__m128i *)(d), _mm_shuffle_epi8(src, _mm_loadl_epi64(		\
		(const __m128i *)spt_lut_compress8[t][msk])))
	CMP8(dst, lo, 0, l2 & 0xff);
	CMP8(dst + c0, lo, 1, (l2 >> 8) & 0xff);
	CMP8(dst + c1, hi, 0, (l2 >> 16) & 0xff);
	CMP8(dst + c2, hi, 1, l2 >> 24);
#undef CMP8
	return l2;
}

/*
 * Each block column with a value: transposed (the rows with a value are
 * the columns with a nonzero byte), the rows' scales looked up
 * (lanes of absent blocks keep a stale finite scale: their k are 0), every
 * touched row quantised, then (a second loop: the quantisations do not
 * wait on the record writes) the records written.
 */
static void flush_avx2(struct ctt *x, uint32_t s)
{
	uint8_t tr[TILE_BYTES] __attribute__((aligned(32)));
	uint8_t kq[TILE_BYTES] __attribute__((aligned(32)));
	uint8_t eq[SPT_BLOCK_ELEMS];
	uint64_t nzb = 0, nnz = 0;
	uint32_t c, g;

	for (c = 0; c < x->bpr; c++) {
		const uint8_t *e = ctt_e8(x, c);
		uint32_t m, mm;
		__m256 sc[4];

		if (!x->touch[c])
			continue;
		x->touch[c] = 0;
		m = transpose32(ctt_tile(x, c), tr);
		for (g = 0; g < 4; g++)
			sc[g] = _mm256_i32gather_ps(spt_lut_e8m0_scale, _mm256_cvtepu8_epi32(
				_mm_loadl_epi64((const __m128i *)(e + 8 * g))), 4);
		for (mm = m; mm; mm &= mm - 1) {
			uint32_t jj = _tzcnt_u32(mm);

			eq[jj] = (uint8_t)quant_block(tr + jj * SPT_BLOCK_ELEMS, sc,
						      kq + jj * SPT_BLOCK_ELEMS);
		}
		for (; m; m &= m - 1) {
			uint32_t jj = _tzcnt_u32(m), j = c * SPT_BLOCK_ELEMS + jj, l2, n;
			uint64_t b = (uint64_t)j * x->obpr + s;
			uint8_t *dst;

			dst = x->st + j * x->sstride + x->slen[j];
			l2 = put_record(kq + jj * SPT_BLOCK_ELEMS, eq[jj], dst);
			/* the stream's next line, written a few strips on */
			_mm_prefetch((const char *)dst + 64, _MM_HINT_T0);
			if (__builtin_expect(!l2, 0))
				continue;
			n = (uint32_t)_mm_popcnt_u32(l2);
			x->slen[j] += 5 + n;
			x->bits[b / 64] |= 1ull << (b % 64);
			x->tbytes[b / 64] += 5 + n;
			nzb++;
			nnz += n;
		}
	}
	x->nzb += nzb;
	x->nnz += nnz;
}

void spt_ctt_walk_avx2(struct ctt *x, const uint8_t *p, const struct ct_hdr *h)
{
	ctt_walk(x, p, h, scatter_avx2, flush_avx2);
}

void spt_ctt_scatter_avx2(struct ctt *x, uint32_t c, uint32_t i, const uint8_t *q,
			  uint32_t l2, const uint8_t *bend)
{
	scatter_avx2(x, c, i, q, l2, bend);
}

void spt_ctt_flush_avx2(struct ctt *x, uint32_t s)
{
	flush_avx2(x, s);
}
