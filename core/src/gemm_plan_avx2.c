/* SPDX-License-Identifier: MIT */
/*
 * The SIMD GEMM path of spt_gemm() (gemm.c): the operands re-laid out for the
 * kernels straight from their streams (see gemm_internal.h), then the
 * kernel, one column tile of B at a time.  Built with the AVX2 flags; only
 * called when the CPU has AVX2 (the AVX-512 kernel shares it).
 */
#include <immintrin.h>

#include "codec_lut.h"
#include "gemm_internal.h"

/*
 * The counters' bit counts (see gemm_bits in gemm_internal.h), u32 words
 * per block column: [0..31] per-bit counts of the masks flushed so far,
 * [32..39] the per-bit counts of up to 254 newer masks as bytes, [40] how
 * many masks those are, [41] masks flushed.  Every mask counts its bits,
 * full ones too (the reference's full-mask count is not needed).  Counts
 * are at most the rows of an operand, SPT_CT_MAX_DIM = 2^24.
 */
#define BITS32_STRIDE 48u
#define BITS_PENDING 32u
#define BITS_NPENDING 40u
#define BITS_FLUSHED 41u

/* One column's pending byte counts added to its u32 counts. */
static inline void bits_fold(uint32_t *v)
{
	__m128i *pend = (__m128i *)(v + BITS_PENDING);
	unsigned int h;

	for (h = 0; h < 2; h++) {
		__m128i b = _mm_load_si128(pend + h);
		__m256i *d = (__m256i *)(v + 16 * h);

		_mm256_storeu_si256(d, _mm256_add_epi32(_mm256_loadu_si256(d),
							_mm256_cvtepu8_epi32(b)));
		_mm256_storeu_si256(d + 1, _mm256_add_epi32(_mm256_loadu_si256(d + 1),
							    _mm256_cvtepu8_epi32(_mm_srli_si128(b, 8))));
		_mm_store_si128(pend + h, _mm_setzero_si128());
	}
	v[BITS_FLUSHED] += v[BITS_NPENDING];
	v[BITS_NPENDING] = 0;
}

/* bits_fold() every 255 masks, out of the hot loops' way */
static __attribute__((noinline, cold)) void bits_flush(uint32_t *v)
{
	bits_fold(v);
}

/* cnt: 64-byte aligned, so each column's pending bytes are 32-byte aligned. */
static inline __attribute__((always_inline)) void bits_add(uint32_t *cnt, uint32_t col,
							   uint32_t l2)
{
	uint32_t *v = cnt + (size_t)col * BITS32_STRIDE;
	__m256i *pend = (__m256i *)(v + BITS_PENDING);

	_mm256_store_si256(pend, _mm256_sub_epi8(_mm256_load_si256(pend), spt_mask_bytes(l2)));
	if (++v[BITS_NPENDING] == 255)
		bits_flush(v);
}

/*
 * The counters' sums (gemm_bits_finish() of gemm.c) straight from both
 * operands' counts: per block column, the dot product of the per-bit
 * counts, and the product of the masks counted (u64 sums, so the same
 * wrapping as there).
 */
static void bits_total(uint32_t *ca, uint32_t *cb, uint32_t nb, uint64_t *exec,
		       uint64_t *blocks)
{
	__m256i acc = _mm256_setzero_si256();
	uint64_t bl = 0, lane[4];
	uint32_t col, e;

	for (col = 0; col < nb; col++) {
		uint32_t *va = ca + (size_t)col * BITS32_STRIDE, *vb = cb + (size_t)col * BITS32_STRIDE;

		bits_fold(va);
		bits_fold(vb);
		for (e = 0; e < 32; e += 8) {
			__m256i x = _mm256_loadu_si256((const __m256i *)(va + e));
			__m256i y = _mm256_loadu_si256((const __m256i *)(vb + e));

			acc = _mm256_add_epi64(acc, _mm256_mul_epu32(x, y));
			acc = _mm256_add_epi64(acc, _mm256_mul_epu32(_mm256_srli_epi64(x, 32),
								     _mm256_srli_epi64(y, 32)));
		}
		bl += (uint64_t)va[BITS_FLUSHED] * vb[BITS_FLUSHED];
	}
	_mm256_storeu_si256((__m256i *)lane, acc);
	*exec = lane[0] + lane[1] + lane[2] + lane[3];
	*blocks = bl;
}

/*
 * The 32 values of a block, zeros where the L2 bit is clear: values to
 * their elements by a byte shuffle per 16, ranks from a table (as in
 * plan_entries).  Reads 32 bytes at vals unless they pass the stream's end.
 */
static inline void gemm_expand(const struct gemm_cursor *it, int8_t *k)
{
	uint32_t l2 = it->l2;
	const int8_t *vals = it->vals;

	if (l2 == 0xffffffffu) {
		memcpy(k, vals, 32);
		return;
	}
	if (it->c->end - (const uint8_t *)vals >= 32) {
		uint64_t q0 = spt_ld64(spt_lut_expand8[l2 & 0xffu]);
		uint64_t q1 = spt_ld64(spt_lut_expand8[(l2 >> 8) & 0xffu]) +
			      ct_pop32(l2 & 0xffu) * 0x0101010101010101ull;
		uint64_t q2 = spt_ld64(spt_lut_expand8[(l2 >> 16) & 0xffu]);
		uint64_t q3 = spt_ld64(spt_lut_expand8[l2 >> 24]) +
			      ct_pop32((l2 >> 16) & 0xffu) * 0x0101010101010101ull;
		__m128i lo = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)vals),
					      _mm_set_epi64x((long long)q1, (long long)q0));
		__m128i hi = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)
							      (vals + ct_pop32(l2 & 0xffffu))),
					      _mm_set_epi64x((long long)q3, (long long)q2));

		_mm256_storeu_si256((__m256i *)k, _mm256_set_m128i(hi, lo));
		return;
	}
	memset(k, 0, 32);
	for (; l2; l2 &= l2 - 1)
		k[__builtin_ctz(l2)] = *vals++;
}

/*
 * Every buffer of one call carved from a single allocation: freed and
 * allocated again on the next call, one block keeps the allocator from
 * returning the pages to the system in between (fresh pages fault).
 */
struct gemm_bufs {
	void *arena;
	uint32_t *item_start;
	struct spt_gemm_item *items;
	struct spt_gemm_entry *a_ent;	/* in block order, then room for 16 */
	uint32_t *a_dest;	/* per block: index of its first entry in a_ent; then the total */
	float *a_scale;
	int32_t *b_pairs;	/* one column tile */
	float *b_scale;
	int8_t *stg;		/* 8 rows of B, dense */
	uint8_t *w_e8;		/* B from FP32: the staged blocks' E8M0 bytes */
	uint32_t *w_l2;		/* and L2 masks */
	uint32_t *bits_a, *bits_b;	/* BITS32_STRIDE per block column */
	float *y;		/* the result when the caller wants only ct */
	int ex_hi;		/* the largest exponent of B's blocks, and A's if streamed */
};

static size_t gemm_round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* Carve the buffers (64-byte aligned) out of one block; NULL arena: size only. */
static size_t gemm_bufs_carve(struct gemm_bufs *g, const struct spt_gemm_plan *p,
			      uint64_t nblk, uint64_t nonzeros, int own_y)
{
	uint8_t *base = g->arena;
	size_t off = 0;
#define GEMM_TAKE(field, count)							\
	do {									\
		if (base)							\
			g->field = (void *)(base + off);			\
		off += gemm_round64((size_t)(count) * sizeof(*g->field));	\
	} while (0)

	GEMM_TAKE(item_start, (size_t)p->ngroups * p->nchunks + 1);
	GEMM_TAKE(items, nblk);
	GEMM_TAKE(a_ent, nonzeros + SPT_GEMM_PAIRS);
	GEMM_TAKE(a_dest, nblk + 1);
	GEMM_TAKE(a_scale, nblk);
	GEMM_TAKE(b_pairs, (size_t)p->nb * SPT_GEMM_PAIRS * p->jt);
	GEMM_TAKE(b_scale, (size_t)p->nb * p->jt);
	GEMM_TAKE(stg, (size_t)8 * p->nb * 32);
	GEMM_TAKE(w_e8, (size_t)8 * p->nb);
	GEMM_TAKE(w_l2, (size_t)8 * p->nb);
	GEMM_TAKE(bits_a, (size_t)p->nb * BITS32_STRIDE);
	GEMM_TAKE(bits_b, (size_t)p->nb * BITS32_STRIDE);
	if (own_y)
		GEMM_TAKE(y, (size_t)p->m * p->n);
#undef GEMM_TAKE
	return off;
}

/* byte i: 1 if i > j, for the ranks of gemm_sort_items */
static const uint8_t sort_after[32][32] __attribute__((aligned(32))) = {
#define AFTER8(j, i) (i) > (j), (i) + 1 > (j), (i) + 2 > (j), (i) + 3 > (j), \
		     (i) + 4 > (j), (i) + 5 > (j), (i) + 6 > (j), (i) + 7 > (j)
#define AFTER(j) { AFTER8(j, 0), AFTER8(j, 8), AFTER8(j, 16), AFTER8(j, 24) }
	AFTER(0), AFTER(1), AFTER(2), AFTER(3), AFTER(4), AFTER(5), AFTER(6), AFTER(7),
	AFTER(8), AFTER(9), AFTER(10), AFTER(11), AFTER(12), AFTER(13), AFTER(14), AFTER(15),
	AFTER(16), AFTER(17), AFTER(18), AFTER(19), AFTER(20), AFTER(21), AFTER(22), AFTER(23),
	AFTER(24), AFTER(25), AFTER(26), AFTER(27), AFTER(28), AFTER(29), AFTER(30), AFTER(31),
#undef AFTER
#undef AFTER8
};

/* One layer of a sorting network: the lanes in imm take the larger of v and t. */
#define SORT8_LAYER(v, t, imm) \
	_mm256_blend_epi32(_mm256_min_epu32(v, t), _mm256_max_epu32(v, t), imm)

/* Eight distinct u32 keys in increasing order (a bitonic network). */
static inline __m256i sort8_epu32(__m256i v)
{
	v = SORT8_LAYER(v, _mm256_shuffle_epi32(v, 0xb1), 0x66);
	v = SORT8_LAYER(v, _mm256_shuffle_epi32(v, 0x4e), 0x3c);
	v = SORT8_LAYER(v, _mm256_shuffle_epi32(v, 0xb1), 0x5a);
	v = SORT8_LAYER(v, _mm256_permute4x64_epi64(v, 0x4e), 0xf0);
	v = SORT8_LAYER(v, _mm256_shuffle_epi32(v, 0x4e), 0xcc);
	v = SORT8_LAYER(v, _mm256_shuffle_epi32(v, 0xb1), 0xaa);
	return v;
}

/*
 * The items of eight rows and one block (a chunk of one block, as when A
 * has a single block column): the keys count * 8 + row sorted in a
 * register, then each item's first entry fetched by its row.
 */
static void gemm_sort_column(const struct spt_gemm_plan *p, const uint32_t *start,
			     uint32_t r0, uint32_t b0, struct spt_gemm_item *out)
{
	const __m256i row = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	const uint32_t *s = start + (uint64_t)r0 * p->nb + b0;
	__m256i s0, s1, key, idx, ent, w, a0, a1;

	if (p->nb == 1) {
		s0 = _mm256_loadu_si256((const __m256i *)s);
		s1 = _mm256_loadu_si256((const __m256i *)(s + 1));
	} else {
		__m256i at = _mm256_mullo_epi32(row, _mm256_set1_epi32((int)p->nb));

		s0 = _mm256_i32gather_epi32((const int *)s, at, 4);
		s1 = _mm256_i32gather_epi32((const int *)(s + 1), at, 4);
	}
	key = sort8_epu32(_mm256_or_si256(_mm256_slli_epi32(_mm256_sub_epi32(s1, s0), 3), row));
	idx = _mm256_and_si256(key, _mm256_set1_epi32(7));
	ent = _mm256_permutevar8x32_epi32(s0, idx);
	w = _mm256_or_si256(_mm256_srli_epi32(key, 3),
			    _mm256_slli_epi32(_mm256_mullo_epi32(idx, _mm256_set1_epi32((int)p->kc)),
					      16));
	a0 = _mm256_unpacklo_epi32(ent, w);
	a1 = _mm256_unpackhi_epi32(ent, w);
	_mm256_storeu_si256((__m256i *)out, _mm256_permute2x128_si256(a0, a1, 0x20));
	_mm256_storeu_si256((__m256i *)(out + 4), _mm256_permute2x128_si256(a0, a1, 0x31));
}

/*
 * The items of a chunk too large to rank (more than 8 rows or 4 blocks): a
 * counting sort by entry count, stable.
 */
static void gemm_sort_counting(const struct spt_gemm_plan *p, const uint32_t *start,
			       uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
			       struct spt_gemm_item *out)
{
	uint32_t pos[SPT_GEMM_PAIRS + 2] = { 0 }, r, b, c;

	for (r = r0; r < r1; r++)
		for (b = b0; b < b1; b++) {
			uint64_t x = (uint64_t)r * p->nb + b;

			pos[start[x + 1] - start[x] + 1]++;
		}
	for (c = 1; c < SPT_GEMM_PAIRS + 2; c++)
		pos[c] += pos[c - 1];
	for (r = r0; r < r1; r++)
		for (b = b0; b < b1; b++) {
			uint64_t x = (uint64_t)r * p->nb + b;
			uint32_t n = start[x + 1] - start[x];
			struct spt_gemm_item *it = &out[pos[n]++];

			it->ent = start[x];
			it->cnt = (uint16_t)n;
			it->slot = (uint16_t)((r - r0) * p->kc + (b - b0));
		}
}

/*
 * The items of up to 8 rows of up to 8 blocks (a chunk of a tile of 32
 * columns): item (row r, block b) has lane i = 8 * r + b in two vectors of
 * byte keys, ranked as in gemm_sort_items; the lanes past b1 and r1 hold no
 * item and are never ranked against.
 */
static void gemm_sort_rank64(const struct spt_gemm_plan *p, const uint32_t *start,
			     uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
			     struct spt_gemm_item *out)
{
	uint8_t key[64] __attribute__((aligned(32))), place[64] __attribute__((aligned(32)));
	struct spt_gemm_item item[64];
	uint32_t nr = r1 - r0, nbk = b1 - b0, r, b;
	const __m256i l0 = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
					    16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
					    29, 30, 31);
	const __m256i l1 = _mm256_add_epi8(l0, _mm256_set1_epi8(32));
	__m256i k0, k1, rank0 = _mm256_setzero_si256(), rank1 = _mm256_setzero_si256();

	memset(key, 0x7f, sizeof(key));
	for (r = 0; r < nr; r++) {
		const uint32_t *s = start + (uint64_t)(r0 + r) * p->nb + b0;

		for (b = 0; b < nbk; b++) {
			uint32_t n = s[b + 1] - s[b];

			key[8 * r + b] = (uint8_t)(2 * n);
			item[8 * r + b].ent = s[b];
			item[8 * r + b].cnt = (uint16_t)n;
			item[8 * r + b].slot = (uint16_t)(r * p->kc + b);
		}
	}
	k0 = _mm256_load_si256((const __m256i *)key);
	k1 = _mm256_load_si256((const __m256i *)(key + 32));
	for (r = 0; r < nr; r++)
		for (b = 0; b < nbk; b++) {
			uint32_t j = 8 * r + b;
			__m256i vj = _mm256_set1_epi8((char)j), kj = _mm256_set1_epi8((char)key[j]);
			/* key_i + (i > j): cmpgt gives -1 */
			__m256i a0 = _mm256_sub_epi8(k0, _mm256_cmpgt_epi8(l0, vj));
			__m256i a1 = _mm256_sub_epi8(k1, _mm256_cmpgt_epi8(l1, vj));

			rank0 = _mm256_sub_epi8(rank0, _mm256_cmpgt_epi8(a0, kj));
			rank1 = _mm256_sub_epi8(rank1, _mm256_cmpgt_epi8(a1, kj));
		}
	_mm256_store_si256((__m256i *)place, rank0);
	_mm256_store_si256((__m256i *)(place + 32), rank1);
	for (r = 0; r < nr; r++)
		for (b = 0; b < nbk; b++)
			out[place[8 * r + b]] = item[8 * r + b];
}

/*
 * Work items of one row group and block chunk, sorted by entry count, ties
 * in (row, block) order; start holds each block's first entry in a_ent
 * (block order), start[x + 1] - start[x] its count.  Up to 8 rows of 4
 * blocks are ranked: item (row r, block b) has lane i = 4 * r + b; its
 * place is the number of items before it: with key 2 * count (0x7f for
 * lanes without an item), item j comes first when key_i + (i > j) > key_j.
 */
static void gemm_sort_items(const struct spt_gemm_plan *p, const uint32_t *start,
			    uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
			    struct spt_gemm_item *out)
{
	uint8_t key[32] __attribute__((aligned(32))), place[32] __attribute__((aligned(32)));
	uint64_t item[32];
	uint32_t nr = r1 - r0, nbk = b1 - b0, r, b, k4;
	const __m128i lane = _mm_setr_epi32(0, 1, 2, 3);
	const __m128i none = _mm_cmpgt_epi32(lane, _mm_set1_epi32((int)nbk - 1));
	__m256i k, rank = _mm256_setzero_si256();

	if (nr == 8 && nbk == 1) {
		gemm_sort_column(p, start, r0, b0, out);
		return;
	}
	if (nr <= 8 && nbk > 4 && nbk <= 8) {
		gemm_sort_rank64(p, start, r0, r1, b0, b1, out);
		return;
	}
	if (nr > 8 || nbk > 4) {
		gemm_sort_counting(p, start, r0, r1, b0, b1, out);
		return;
	}
	for (r = 0; r < nr; r++) {
		const uint32_t *s = start + (uint64_t)(r0 + r) * p->nb + b0;
		uint32_t t[5] = { 0, 0, 0, 0, 0 };
		__m128i s0, s1, c, w, slot;

		if (nbk < 4) {	/* start[x + nbk] is the last one there */
			memcpy(t, s, (nbk + 1) * sizeof(*t));
			s = t;
		}
		s0 = _mm_loadu_si128((const __m128i *)s);
		s1 = _mm_loadu_si128((const __m128i *)(s + 1));
		c = _mm_sub_epi32(s1, s0);
		slot = _mm_add_epi32(lane, _mm_set1_epi32((int)(r * p->kc)));
		w = _mm_or_si128(c, _mm_slli_epi32(slot, 16));
		_mm_storeu_si128((__m128i *)(item + 4 * r), _mm_unpacklo_epi32(s0, w));
		_mm_storeu_si128((__m128i *)(item + 4 * r + 2), _mm_unpackhi_epi32(s0, w));
		c = _mm_blendv_epi8(_mm_add_epi32(c, c), _mm_set1_epi32(0x7f), none);
		c = _mm_packus_epi32(c, c);
		k4 = (uint32_t)_mm_cvtsi128_si32(_mm_packus_epi16(c, c));
		memcpy(key + 4 * r, &k4, 4);
	}
	for (; r < 8; r++)
		memset(key + 4 * r, 0x7f, 4);
	k = _mm256_load_si256((const __m256i *)key);
	for (r = 0; r < nr; r++)
		for (b = 0; b < nbk; b++) {
			uint32_t j = 4 * r + b;
			__m256i ki = _mm256_add_epi8(k, _mm256_load_si256((const __m256i *)
									  sort_after[j]));

			rank = _mm256_sub_epi8(rank,
					       _mm256_cmpgt_epi8(ki, _mm256_set1_epi8((char)key[j])));
		}
	_mm256_store_si256((__m256i *)place, rank);
	for (r = 0; r < nr; r++)
		for (b = 0; b < nbk; b++)
			memcpy(out + place[4 * r + b], item + 4 * r + b, sizeof(*out));
}

/*
 * Entries of the eight pairs of one half block: k its 16 values (zeros
 * where absent), off the pairs' offsets, m8 the nonzero pairs (bit m: pair
 * m).  Writes popcount(m8) entries, then garbage up to out + 8.
 */
static inline __attribute__((always_inline)) void
plan_entries_half(__m128i k, __m256i off, uint32_t m8, struct spt_gemm_entry *out)
{
	__m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)
							   spt_lut_compress8[0][m8]));
	__m256i v = _mm256_permutevar8x32_epi32(_mm256_cvtepi8_epi16(k), idx);
	__m256i o = _mm256_permutevar8x32_epi32(off, idx);
	__m256i a0 = _mm256_unpacklo_epi32(v, o), a1 = _mm256_unpackhi_epi32(v, o);
	__m256i *dst = (__m256i *)out;

	_mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(a0, a1, 0x20));
	_mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(a0, a1, 0x31));
}

/*
 * The entries of one stored A block (see gemm_internal.h) at out, in pair
 * order; off: the offsets of pairs 0..7 and 8..15; wide: 0 if the block has
 * no values past element 15.  Returns their count; writes garbage after
 * them up to out + 16.
 */
static inline __attribute__((always_inline)) uint32_t
plan_entries(const struct gemm_cursor *it, __m256i off_lo, __m256i off_hi, int wide,
	     struct spt_gemm_entry *out)
{
	uint32_t l2 = it->l2, pm, m16;
	const int8_t *vals = it->vals;
	int8_t tail[32];
	__m128i klo, khi;
	uint64_t q0, q1, q2, q3;

	if (l2 == 0xffffffffu) {
		__m256i v = _mm256_loadu_si256((const __m256i *)vals);
		__m256i lo = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v));
		__m256i hi = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1));
		__m256i a0 = _mm256_unpacklo_epi32(lo, off_lo);
		__m256i a1 = _mm256_unpackhi_epi32(lo, off_lo);
		__m256i b0 = _mm256_unpacklo_epi32(hi, off_hi);
		__m256i b1 = _mm256_unpackhi_epi32(hi, off_hi);
		__m256i *dst = (__m256i *)out;

		_mm256_storeu_si256(dst + 0, _mm256_permute2x128_si256(a0, a1, 0x20));
		_mm256_storeu_si256(dst + 1, _mm256_permute2x128_si256(a0, a1, 0x31));
		_mm256_storeu_si256(dst + 2, _mm256_permute2x128_si256(b0, b1, 0x20));
		_mm256_storeu_si256(dst + 3, _mm256_permute2x128_si256(b0, b1, 0x31));
		return SPT_GEMM_PAIRS;
	}
	if (it->c->end - (const uint8_t *)vals < 32) {	/* the stream's last bytes */
		memset(tail, 0, sizeof(tail));
		memcpy(tail, vals, ct_pop32(l2));
		vals = tail;
	}
	/* values to their elements: a byte shuffle per 16, ranks from a table */
	q0 = spt_ld64(spt_lut_expand8[l2 & 0xffu]);
	q1 = spt_ld64(spt_lut_expand8[(l2 >> 8) & 0xffu]) +
	     ct_pop32(l2 & 0xffu) * 0x0101010101010101ull;
	q2 = spt_ld64(spt_lut_expand8[(l2 >> 16) & 0xffu]);
	q3 = spt_ld64(spt_lut_expand8[l2 >> 24]) +
	     ct_pop32((l2 >> 16) & 0xffu) * 0x0101010101010101ull;
	klo = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)vals),
			       _mm_set_epi64x((long long)q1, (long long)q0));
	khi = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)
					       (vals + ct_pop32(l2 & 0xffffu))),
			       _mm_set_epi64x((long long)q3, (long long)q2));
	pm = (l2 | l2 >> 1) & 0x55555555u;
	m16 = _pext_u32(pm, 0x55555555u);
	plan_entries_half(klo, off_lo, m16 & 0xffu, out);
	if (wide)
		plan_entries_half(khi, off_hi, m16 >> 8, out + ct_pop32(m16 & 0xffu));
	return ct_pop32(m16);
}

/*
 * A as entries (nonzero pairs) in block order and sorted work items; see
 * gemm_internal.h.  One walk of the stream, a row group at a time: each
 * block's first entry (start), scale, entries and counters, then the
 * group's items, sorted while its counts are in cache.  Each block's
 * stores may run past its entries into the next block's place, which the
 * next block then overwrites; a_ent has room for 16 more.
 */
static inline __attribute__((always_inline)) void
plan_a_walk(const struct gemm_ct *c, struct spt_gemm_plan *p, struct gemm_bufs *g, const int wide)
{
	struct gemm_cursor it;
	struct spt_gemm_entry *e = g->a_ent;
	uint64_t x = 0;
	uint32_t gi, h, run = 0, *start = g->a_dest;
	float *scale = g->a_scale;
	const __m256i step = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
						_mm256_set1_epi32((int)p->jt));
	const __m256i half = _mm256_set1_epi32((int)(8 * p->jt));

	gemm_cursor_init(&it, c);
	for (gi = 0; gi < p->ngroups; gi++) {
		uint32_t r0 = gi * p->rg, r1 = p->m - r0 < p->rg ? p->m : r0 + p->rg;
		uint64_t x1 = (uint64_t)r1 * p->nb;

		for (; it.have && it.blk < x1; gemm_cursor_next(&it)) {
			__m256i off_lo = _mm256_add_epi32(_mm256_set1_epi32((int)(it.col *
										   SPT_GEMM_PAIRS *
										   p->jt)), step);

			for (; x < it.blk; x++) {	/* absent blocks */
				start[x] = run;
				scale[x] = 0.0f;
			}
			start[x] = run;
			scale[x] = spt_exp2f_exact(it.ex - 6);
			x++;
			run += plan_entries(&it, off_lo, _mm256_add_epi32(off_lo, half),
					    wide, e + run);
			bits_add(g->bits_a, it.col, it.l2);
		}
		for (; x < x1; x++) {
			start[x] = run;
			scale[x] = 0.0f;
		}
		start[x1] = run;
		for (h = 0; h < p->nchunks; h++) {
			uint32_t b0 = h * p->kc, b1 = p->nb - b0 < p->kc ? p->nb : b0 + p->kc;
			size_t first = (size_t)gi * p->rg * p->nb + (size_t)(r1 - r0) * b0;

			g->item_start[(size_t)gi * p->nchunks + h] = (uint32_t)first;
			gemm_sort_items(p, start, r0, r1, b0, b1, g->items + first);
		}
	}
	g->item_start[(size_t)p->ngroups * p->nchunks] = (uint32_t)c->nblocks;
}

/* A single column of at most 16 elements (a small convolution's im2col) has its own copy. */
static void gemm_plan_a(const struct gemm_ct *c, struct spt_gemm_plan *p,
			struct gemm_bufs *g)
{
	if (c->cols <= 16)
		plan_a_walk(c, p, g, 0);
	else
		plan_a_walk(c, p, g, 1);
}

/* Rows jj .. jj+7 of a B column tile all zero (jt, jj: multiples of 8; AVX-512's padding). */
static void gemm_zero_rows(int32_t *tile, uint32_t nb, uint32_t jt, uint32_t jj)
{
	size_t x, rows = (size_t)nb * SPT_GEMM_PAIRS;

	for (x = 0; x < rows; x++)
		_mm256_store_si256((__m256i *)(tile + x * jt + jj), _mm256_setzero_si256());
}

/* A B tile's scales zeroed: its tw rows of each of nb block columns. */
static void b_scale_clear(float *b_scale, uint32_t nb, uint32_t jt, uint32_t tw)
{
	uint32_t blk;

	if (tw == jt)
		memset(b_scale, 0, (size_t)nb * jt * sizeof(float));
	else
		for (blk = 0; blk < nb; blk++)
			memset(b_scale + (size_t)blk * jt, 0, tw * sizeof(float));
}

/*
 * B's column tile t (rows t*jt .. t*jt+tw-1) as int16 pairs and scales, see
 * gemm_internal.h: eight rows at a time are expanded into a dense staging
 * area (absent blocks and padding rows: the gaps between stored blocks,
 * zeroed) and packed with 8 x 8 transposes.  The cursor walks B's stream
 * once over all tiles.
 */
static void gemm_pack_tile(struct gemm_cursor *cursor, const struct gemm_ct *c,
			   const struct spt_gemm_plan *p, uint32_t t,
			   struct gemm_bufs *g)
{
	/* locals, so that the per-block state stays in registers */
	struct gemm_cursor it = *cursor;
	uint32_t nb = c->bpr, jt = p->jt, tw = p->tw, jj;
	float *b_scale = g->b_scale;
	uint32_t *bits = g->bits_b;
	int8_t *stg = g->stg;
	int ex_hi = g->ex_hi;

	b_scale_clear(b_scale, nb, jt, tw);
	for (jj = 0; jj < tw; jj += 8) {
		uint64_t j0 = (uint64_t)t * jt + jj;
		size_t done = 0;	/* staged blocks written; the gaps are absent */

		if (j0 >= p->n) {	/* padding rows only: zero pairs, no staging */
			gemm_zero_rows(g->b_pairs, nb, jt, jj);
			continue;
		}
		for (; it.have && it.row < j0 + 8; gemm_cursor_next(&it)) {
			uint32_t col = it.col;
			uint32_t r = (uint32_t)(it.row - j0);
			size_t at = (size_t)r * nb + col;

			if (at > done)
				memset(stg + done * 32, 0, (at - done) * 32);
			bits_add(bits, col, it.l2);
			b_scale[(size_t)col * jt + jj + r] = spt_exp2f_exact(it.ex - 6);
			ex_hi = it.ex > ex_hi ? it.ex : ex_hi;
			gemm_expand(&it, stg + at * 32);
			done = at + 1;
		}
		memset(stg + done * 32, 0, ((size_t)8 * nb - done) * 32);
		spt_gemm_pack_b_avx2(stg, nb, jt, jj, g->b_pairs);
	}
	g->ex_hi = ex_hi;
	*cursor = it;
}

/*
 * gemm_pack_tile() with B from FP32: eight rows at a time quantised straight
 * into the staging area (spt_ct_quant_rows_avx2(), which zeroes the blocks
 * the encoder would not store), their stored blocks' scales and counts
 * taken as the cursor would give them.  0 or -EDOM.
 */
static int gemm_pack_tile_w(struct gemm_wsrc *w, const struct spt_gemm_plan *p, uint32_t t,
			    struct gemm_bufs *g)
{
	uint32_t nb = p->nb, jt = p->jt, tw = p->tw, jj, r, col, nr;
	float *b_scale = g->b_scale;
	int ex_hi = g->ex_hi;

	b_scale_clear(b_scale, nb, jt, tw);
	for (jj = 0; jj < tw; jj += 8) {
		uint64_t j0 = (uint64_t)t * jt + jj;

		if (j0 >= p->n) {	/* padding rows only: zero pairs, no staging */
			gemm_zero_rows(g->b_pairs, nb, jt, jj);
			continue;
		}
		nr = p->n - j0 < 8 ? (uint32_t)(p->n - j0) : 8;
		if (spt_ct_quant_rows_avx2(w->w + j0 * w->k, nr, w->k, w->tau, g->stg, g->w_e8,
					   g->w_l2, &w->acc))
			return -EDOM;
		if (nr < 8)
			memset(g->stg + (size_t)nr * nb * 32, 0, (size_t)(8 - nr) * nb * 32);
		for (r = 0; r < nr; r++)
			for (col = 0; col < nb; col++) {
				uint32_t l2 = g->w_l2[r * nb + col];
				int ex = (int)g->w_e8[r * nb + col] - SPT_E8M0_BIAS;

				if (!l2)
					continue;
				bits_add(g->bits_b, col, l2);
				b_scale[(size_t)col * jt + jj + r] = spt_exp2f_exact(ex - 6);
				ex_hi = ex > ex_hi ? ex : ex_hi;
			}
		spt_gemm_pack_b_avx2(g->stg, nb, jt, jj, g->b_pairs);
	}
	g->ex_hi = ex_hi;
	return 0;
}

/*
 * A in a single column tile of at most four vectors, straight from A's
 * stream: no entries, no sorted work items.  Each stored block's nonzero
 * pairs are broadcast into vpmaddwd with B's pair rows (its int32 sums),
 * and its term is added to its row's FP32 sums in increasing block order,
 * as spt_rows() adds them; the epilogue as the row is stored.  Absent
 * blocks add nothing: their terms are +-0, and a row's sums are never -0
 * (gemm_internal.h).  So the same bits as the plan and
 * spt_gemm_kernel_avx2().  The counters' bits of each stored block are
 * added as the plan adds them.  An A of at most STREAM_NB block columns is
 * taken row by row (its B tile stays in L1); a longer one in chunks of kc
 * block columns, STREAM_RG rows at a time, each row with a cursor of its
 * own and its sums in C between chunks.
 */
#define STREAM_NB 16u
#define STREAM_RG 32u

/* Up to four vectors, written out: steps k >= nv fold away in each instance. */
#define STREAM_X4(M) M(0) M(1) M(2) M(3)

/* The stored block at @it into its row's sums a[0..nv-1]. */
static inline __attribute__((always_inline)) void
stream_block(const struct spt_gemm_plan *p, const struct gemm_cursor *it, uint32_t *bits,
	     const unsigned int nv, __m256 a[4], int *ex_hi)
{
	int32_t pairs[SPT_GEMM_PAIRS] __attribute__((aligned(32)));
	int8_t kb[SPT_BLOCK_ELEMS] __attribute__((aligned(32)));
	uint32_t l2 = it->l2, col = it->col;
	uint32_t pm = _pext_u32((l2 | l2 >> 1) & 0x55555555u, 0x55555555u);
	const int32_t *bcol = p->b_pairs + (size_t)col * SPT_GEMM_PAIRS * p->jt;
	const float *sb = p->b_scale + (size_t)col * p->jt;
	__m256i s0, s1, s2, s3;
	__m256 sa;

	gemm_expand(it, kb);
	_mm256_store_si256((__m256i *)pairs,
			   _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)kb)));
	_mm256_store_si256((__m256i *)(pairs + 8),
			   _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(kb + 16))));
	s0 = s1 = s2 = s3 = _mm256_setzero_si256();
	for (; pm; pm &= pm - 1) {
		uint32_t m = _tzcnt_u32(pm);
		__m256i av = _mm256_set1_epi32(pairs[m]);
		const __m256i *bp = (const __m256i *)(bcol + m * p->jt);

#define STREAM_MAC(k)								\
	if (k < nv)								\
		s##k = _mm256_add_epi32(s##k, _mm256_madd_epi16(_mm256_load_si256(bp + k), av));
		STREAM_X4(STREAM_MAC)
#undef STREAM_MAC
	}
	sa = _mm256_set1_ps(spt_exp2f_exact(it->ex - 6));
#define STREAM_ACC(k)								\
	if (k < nv)								\
		a[k] = _mm256_add_ps(a[k], _mm256_mul_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s##k), sa), \
							 _mm256_load_ps(sb + 8 * k)));
	STREAM_X4(STREAM_ACC)
#undef STREAM_ACC
	bits_add(bits, col, l2);
	*ex_hi = it->ex > *ex_hi ? it->ex : *ex_hi;
}

/* Row @crow's sums: vector k of nv, its last through the lane mask unless whole. */
static inline __attribute__((always_inline)) void
stream_put(float *crow, const __m256 a[4], __m256i last, const unsigned int nv, const int whole)
{
#define STREAM_PUT(k)								\
	if (k + 1 == nv && !whole)						\
		_mm256_maskstore_ps(crow + 8 * k, last, a[k]);			\
	else if (k < nv)							\
		_mm256_storeu_ps(crow + 8 * k, a[k]);
	STREAM_X4(STREAM_PUT)
#undef STREAM_PUT
}

static inline __attribute__((always_inline)) void
stream_get(const float *crow, __m256 a[4], __m256i last, const unsigned int nv, const int whole)
{
#define STREAM_GET(k)								\
	if (k + 1 == nv && !whole)						\
		a[k] = _mm256_maskload_ps(crow + 8 * k, last);			\
	else if (k < nv)							\
		a[k] = _mm256_loadu_ps(crow + 8 * k);
	STREAM_X4(STREAM_GET)
#undef STREAM_GET
}

static inline __attribute__((always_inline)) void
stream_fin(struct spt_ep ep, __m256 a[4], __m256i last, const unsigned int nv, const int whole)
{
#define STREAM_FIN(k)								\
	if (k < nv)								\
		a[k] = spt_epi(ep, a[k], k, last, k + 1 == nv && !whole);
	STREAM_X4(STREAM_FIN)
#undef STREAM_FIN
}

static inline __attribute__((always_inline)) void
stream_rows(const struct spt_gemm_plan *p, const struct gemm_ct *a, uint32_t *bits,
	    const unsigned int nv, const int whole, int *ex_hi)
{
	int ex = *ex_hi;
	struct gemm_cursor it;
	uint32_t rows = p->m, row, tail = p->nc - 8 * (nv - 1);
	__m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)tail),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	struct spt_ep ep = spt_ep_of(p);
	__m256 z[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
			_mm256_setzero_ps() };

	/* a row without stored blocks: the epilogue of +0 */
	stream_fin(ep, z, last, nv, whole);
	gemm_cursor_init(&it, a);
	for (row = 0; row < rows; row++) {
		float *crow = p->c + (size_t)row * p->ldc;
		__m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
				  _mm256_setzero_ps() };

		if (!it.have || it.row != row) {
			stream_put(crow, z, last, nv, whole);
			continue;
		}
		do {
			stream_block(p, &it, bits, nv, acc, &ex);
			gemm_cursor_next(&it);
		} while (it.have && it.row == row);
		stream_fin(ep, acc, last, nv, whole);
		stream_put(crow, acc, last, nv, whole);
	}
	*ex_hi = ex;
}

static inline __attribute__((always_inline)) void
stream_chunks(const struct spt_gemm_plan *p, const struct gemm_ct *a, uint32_t *bits,
	      const unsigned int nv, const int whole, int *ex_hi)
{
	int ex = *ex_hi;
	struct gemm_cursor cur[STREAM_RG];
	uint32_t rows = p->m, r0, r1, r, h, tail = p->nc - 8 * (nv - 1);
	__m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)tail),
					  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
	struct spt_ep ep = spt_ep_of(p);

	for (r0 = 0; r0 < rows; r0 = r1) {
		r1 = rows - r0 < STREAM_RG ? rows : r0 + STREAM_RG;
		for (r = r0; r < r1; r++)
			gemm_cursor_seek(&cur[r - r0], a, (uint64_t)r * a->bpr);
		for (h = 0; h < p->nchunks; h++) {
			uint32_t b1 = p->nb - h * p->kc <= p->kc ? p->nb : (h + 1) * p->kc;
			int fin = b1 == p->nb;

			for (r = r0; r < r1; r++) {
				/* a local copy, so that the cursor stays in registers */
				struct gemm_cursor it = cur[r - r0];
				float *crow = p->c + (size_t)r * p->ldc;
				__m256 acc[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(),
						  _mm256_setzero_ps(), _mm256_setzero_ps() };
				int any = it.have && it.row == r && it.col < b1;

				if (!any && h && !fin)
					continue;
				if (h)
					stream_get(crow, acc, last, nv, whole);
				for (; it.have && it.row == r && it.col < b1; gemm_cursor_next(&it))
					stream_block(p, &it, bits, nv, acc, &ex);
				if (fin)
					stream_fin(ep, acc, last, nv, whole);
				stream_put(crow, acc, last, nv, whole);
				cur[r - r0] = it;
			}
		}
	}
	*ex_hi = ex;
}

/* An instance per width and tail; rows and chunks apart, so each keeps its state in registers. */
#define STREAM_FN(nv, whole)							\
	static void stream_rows##nv##whole(const struct spt_gemm_plan *p,	\
					   const struct gemm_ct *a, uint32_t *bits,	\
					   int *ex_hi)					\
	{									\
		stream_rows(p, a, bits, nv, whole, ex_hi);			\
	}									\
	static void stream_chunks##nv##whole(const struct spt_gemm_plan *p,	\
					     const struct gemm_ct *a, uint32_t *bits, \
					     int *ex_hi)				\
	{									\
		stream_chunks(p, a, bits, nv, whole, ex_hi);			\
	}
STREAM_FN(1, 0)
STREAM_FN(1, 1)
STREAM_FN(2, 0)
STREAM_FN(2, 1)
STREAM_FN(3, 0)
STREAM_FN(3, 1)
STREAM_FN(4, 0)
STREAM_FN(4, 1)
#undef STREAM_FN

typedef void stream_fn(const struct spt_gemm_plan *, const struct gemm_ct *, uint32_t *, int *);

static void gemm_stream(const struct spt_gemm_plan *p, const struct gemm_ct *a, uint32_t *bits,
			int *ex_hi)
{
	static stream_fn *const rows[4][2] = {
		{ stream_rows10, stream_rows11 }, { stream_rows20, stream_rows21 },
		{ stream_rows30, stream_rows31 }, { stream_rows40, stream_rows41 },
	};
	static stream_fn *const chunks[4][2] = {
		{ stream_chunks10, stream_chunks11 }, { stream_chunks20, stream_chunks21 },
		{ stream_chunks30, stream_chunks31 }, { stream_chunks40, stream_chunks41 },
	};

	(p->nb <= STREAM_NB ? rows : chunks)[p->tw / 8 - 1][p->nc % 8 == 0](p, a, bits, ex_hi);
}

static void gemm_plan_init(enum spt_isa isa, const struct gemm_ct *a,
			   const struct gemm_ct *b, struct spt_gemm_plan *p)
{
	/* the AVX2 kernel takes an AVX-512 run's partial tile: the same plan */
	_Static_assert(SPT_GEMM_JT_AVX512 == SPT_GEMM_JT_AVX2 &&
		       SPT_GEMM_RG_AVX512 == SPT_GEMM_RG_AVX2 &&
		       SPT_GEMM_KC_AVX512 == SPT_GEMM_KC_AVX2,
		       "one plan serves both kernels");
	memset(p, 0, sizeof(*p));
	p->m = a->rows;
	p->n = b->rows;
	p->nb = a->bpr;
	if (isa == SPT_ISA_AVX512) {
		p->jt = SPT_GEMM_JT_AVX512;
		p->rg = SPT_GEMM_RG_AVX512;
		p->kc = SPT_GEMM_KC_AVX512;
	} else {
		/* no wider than C: a narrow C costs no padding */
		p->jt = p->n < SPT_GEMM_JT_AVX2 ? (p->n + 7) & ~7u : SPT_GEMM_JT_AVX2;
		p->rg = SPT_GEMM_RG_AVX2;
		/* as many blocks as the widest tile's chunk holds */
		p->kc = SPT_GEMM_KC_AVX2 * SPT_GEMM_JT_AVX2 / p->jt;
	}
	p->ntiles = (p->n + p->jt - 1) / p->jt;
	p->ngroups = (p->m + p->rg - 1) / p->rg;
	p->nchunks = (p->nb + p->kc - 1) / p->kc;
}

/*
 * C of one tile of at most 32 columns takes no plan when A has at most
 * STREAM_NB block columns, or more of them but at most 40% of its values
 * nonzero: denser, the plan's sorted items keep the pair loop's branches
 * predictable (measured on random operands).
 */
static int gemm_streams(const struct gemm_ct *a, uint32_t n)
{
	return n <= 32 &&
	       (a->bpr <= STREAM_NB || a->nonzeros * 5 <= (uint64_t)a->rows * a->cols * 2);
}

/*
 * Re-lay out and multiply the opened operands, one column tile of B at a
 * time (the tile's pairs stay in L2).  Without y_user the result lives in
 * *arena, which the caller frees.  *ex_hi: the largest block exponent seen
 * in A and B when C is streamed, else the largest possible.
 */
static int gemm_run(enum spt_isa isa, const struct gemm_ct *ca, const struct gemm_ct *cb,
		    struct gemm_wsrc *wb, const struct spt_gemm_epilogue *ep, uint64_t *exec_macs,
		    uint64_t *blocks, float **c, float *y_user, void **arena, int *ep_done,
		    int *ex_hi)
{
	struct gemm_bufs g;
	struct gemm_cursor cur;
	struct spt_gemm_plan p;
	uint32_t t;
	int stream;

	memset(&g, 0, sizeof(g));
	gemm_plan_init(isa, ca, cb, &p);
	if (isa == SPT_ISA_AVX2 && ep) {	/* the AVX2 kernel applies it as it stores */
		p.ep_fused = 1;
		p.do_scale = ep->scale != 0.0f && ep->scale != 1.0f;
		p.scale = ep->scale;
		p.bias = ep->bias;
		p.relu = ep->act == SPT_ACT_RELU;
	}
	*ep_done = p.ep_fused;
	g.arena = aligned_alloc(64, gemm_bufs_carve(&g, &p, ca->nblocks, ca->nonzeros, !y_user));
	if (!g.arena)
		return -ENOMEM;
	*arena = g.arena;
	gemm_bufs_carve(&g, &p, ca->nblocks, ca->nonzeros, !y_user);
	*c = y_user ? y_user : g.y;
	memset(g.bits_a, 0, (size_t)p.nb * BITS32_STRIDE * sizeof(*g.bits_a));
	memset(g.bits_b, 0, (size_t)p.nb * BITS32_STRIDE * sizeof(*g.bits_b));
	g.ex_hi = -SPT_E8M0_BIAS;
	stream = isa == SPT_ISA_AVX2 && gemm_streams(ca, p.n);
	if (!stream) {
		g.ex_hi = SPT_E8M0_BIAS;	/* not tracked */
		gemm_plan_a(ca, &p, &g);
		p.item_start = g.item_start;
		p.items = g.items;
		p.a_ent = g.a_ent;
		p.a_scale = g.a_scale;
	}
	p.b_pairs = g.b_pairs;
	p.b_scale = g.b_scale;
	if (!wb)
		gemm_cursor_init(&cur, cb);
	for (t = 0; t < p.ntiles; t++) {
		int wide;

		p.nc = p.n - t * p.jt < p.jt ? p.n - t * p.jt : p.jt;
		/*
		 * AVX-512 writes whole tiles: a partial last tile takes the
		 * AVX2 kernel, whose plan (tile, group and chunk sizes) is the
		 * same, without the epilogue (not fused on AVX-512)
		 */
		wide = isa == SPT_ISA_AVX512 && p.nc == p.jt;
		p.tw = wide ? p.jt : (p.nc + 7) & ~7u;
		p.c = *c + (size_t)t * p.jt;
		p.col0 = t * p.jt;
		p.ldc = p.n;
		if (!wb)
			gemm_pack_tile(&cur, cb, &p, t, &g);
		else if (gemm_pack_tile_w(wb, &p, t, &g))
			return -EDOM;
		if (stream && p.nb == 1 && ca->cols <= 16 && p.n <= 16) {	/* a small conv's patches */
			spt_gemm_narrow_avx2(&p, ca, g.bits_a, &g.bits_a[BITS_FLUSHED]);
			g.ex_hi = SPT_E8M0_BIAS;	/* not tracked */
		} else if (stream)
			gemm_stream(&p, ca, g.bits_a, &g.ex_hi);
		else if (wide)
			spt_gemm_kernel_avx512(&p);
		else
			spt_gemm_kernel_avx2(&p);
	}
	bits_total(g.bits_a, g.bits_b, p.nb, exec_macs, blocks);
	*ex_hi = g.ex_hi;
	return 0;
}

/*
 * Largest block exponent for which C^T = B A^T gives C's bits: a term is
 * (float)isum * 2^(ea-6) * 2^(eb-6), |isum| < 2^19 an exact float, and
 * while neither intermediate product overflows, both orders of the two
 * scalings are exact up to the final product's single rounding.
 */
#define SWAP_EX_MAX 100

/*
 * C (m x n) as the transpose of C^T = B A^T when A has at most 32 rows and
 * B more (a weight gradient: dY^T of a few output channels times a wide
 * patch matrix): C^T is one column tile, streamed from B with the small A
 * packed, where C itself would pack all of B and plan A.  Each element is
 * the same sum of the same terms in the same block order; the epilogue is
 * left to the caller.  1: an exponent past SWAP_EX_MAX, take the usual way.
 */
static int gemm_run_swapped(const struct gemm_ct *ca, const struct gemm_ct *cb,
			    uint64_t *exec_macs, uint64_t *blocks, float **c, float *y_user,
			    void **arena, int *ep_done)
{
	uint32_t m = ca->rows, n = cb->rows, i, j;
	void *tmp_arena = NULL;
	float *ct, *dst;
	int err, done, ex_hi;

	err = gemm_run(SPT_ISA_AVX2, cb, ca, NULL, NULL, exec_macs, blocks, &ct, NULL,
		       &tmp_arena, &done, &ex_hi);
	if (err || ex_hi > SWAP_EX_MAX) {
		free(tmp_arena);
		return err ? err : 1;
	}
	dst = y_user;
	if (!dst) {
		*arena = aligned_alloc(64, ((size_t)m * n * sizeof(float) + 63) & ~(size_t)63);
		if (!*arena) {
			free(tmp_arena);
			return -ENOMEM;
		}
		dst = *arena;
	}
	for (i = 0; i < m; i++)
		for (j = 0; j < n; j++)
			dst[(size_t)i * n + j] = ct[(size_t)j * m + i];
	free(tmp_arena);
	*c = dst;
	*ep_done = 0;
	return 0;
}

/* The blocks stored in @c: the tiles' L1 masks counted. */
static uint64_t gemm_stored_blocks(const struct gemm_ct *c)
{
	uint64_t n = 0;
	uint32_t t;

	for (t = 0; t < c->tiles; t++)
		n += (uint64_t)_mm_popcnt_u64(spt_ld64(c->payload + spt_ld32(c->tab + 4 * t)));
	return n;
}

/*
 * Whether C^T pays: A of at most 32 rows (C^T one streamed column tile) of
 * more than 16 columns (the narrow kernel does not track exponents).  A
 * stream costs per stored block of the streamed operand, packing per block
 * whether stored or not.  So when C is streamed too (B of at most 32 rows)
 * the operand with fewer stored blocks is streamed; a wider B is streamed
 * when at most SWAP_B_STORED of its blocks are stored (measured on the
 * convolutions' weight gradients).
 */
#define SWAP_B_STORED(nblocks) ((nblocks) / 8 * 5)

static int gemm_swap_pays(const struct gemm_ct *ca, const struct gemm_ct *cb)
{
	/* B becomes the A of the run: its sizes within that path's u32 indices */
	if (ca->rows > 32 || ca->cols <= 16 || cb->nonzeros >= UINT32_MAX ||
	    cb->nblocks >= UINT32_MAX || !gemm_streams(cb, ca->rows))
		return 0;
	if (cb->rows <= 32)
		return gemm_stored_blocks(cb) < gemm_stored_blocks(ca);
	return gemm_stored_blocks(cb) <= SWAP_B_STORED(cb->nblocks);
}

/*
 * The ISA a GEMM's run takes for C = A B^T, C of @n columns, on a CPU that
 * has @isa; @swap: C^T pays (gemm_swap_pays()).  The AVX-512 kernel takes
 * whole tiles of SPT_GEMM_JT_AVX512 columns only, so a narrower C would run
 * on the AVX2 kernel anyway; run as AVX2 it also gets the AVX2-only paths:
 * C streamed without a plan, the narrow kernel of the first convolution,
 * the fused epilogue.  C^T is an AVX2 path too, and so is the plain run
 * that follows a C^T that gives up.  (Measured: with all of these on the
 * AVX-512 kernel, padded to whole tiles, the CNN's step took about 1.3x as
 * long.)  Every path gives the same bits, so this is a choice of speed only.
 */
static enum spt_isa gemm_kernel_isa(enum spt_isa isa, uint32_t n, int swap)
{
	if (isa == SPT_ISA_AVX512 && (n < SPT_GEMM_JT_AVX512 || swap))
		return SPT_ISA_AVX2;
	return isa;
}

/*
 * Validate, re-lay out and multiply.  1: too large for this path's u32
 * indices, use the reference path.  Without y_user the result lives in
 * *arena, which the caller frees.
 */
int spt_gemm_run_simd(enum spt_isa isa, const void *a, size_t a_len,
		      const void *b, size_t b_len, const struct spt_gemm_epilogue *ep,
		      struct gemm_shape *sh, uint64_t *exec_macs, uint64_t *blocks,
		      float **c, float *y_user, void **arena, int *ep_done)
{
	struct gemm_ct ca, cb;
	int err, ex_hi, swap;

	err = gemm_ct_open(a, a_len, &ca);
	if (err)
		return err;
	err = gemm_ct_open(b, b_len, &cb);
	if (err)
		return err;
	if (ca.cols != cb.cols)
		return -EINVAL;
	if (ca.nonzeros >= UINT32_MAX || ca.nblocks >= UINT32_MAX)
		return 1;
	sh->m = ca.rows;
	sh->n = cb.rows;
	sh->k = ca.cols;
	sh->nb = ca.bpr;
	swap = gemm_swap_pays(&ca, &cb);
	isa = gemm_kernel_isa(isa, cb.rows, swap);
	if (swap) {
		err = gemm_run_swapped(&ca, &cb, exec_macs, blocks, c, y_user, arena, ep_done);
		if (err != 1)
			return err;
	}
	return gemm_run(isa, &ca, &cb, NULL, ep, exec_macs, blocks, c, y_user, arena, ep_done,
			&ex_hi);
}

int spt_gemm_run_simd_w(enum spt_isa isa, const void *a, size_t a_len, struct gemm_wsrc *w,
			const struct spt_gemm_epilogue *ep, struct gemm_shape *sh,
			uint64_t *exec_macs, uint64_t *blocks, float **c, void **arena,
			int *ep_done)
{
	struct gemm_ct ca, cb;
	int err, ex_hi;

	err = gemm_ct_open(a, a_len, &ca);
	if (err)
		return err;
	if (ca.cols != w->k || !w->n)
		return -EINVAL;
	if (ca.nonzeros >= UINT32_MAX || ca.nblocks >= UINT32_MAX)
		return 1;
	/* B's geometry only: gemm_run() reads its rows, the quantiser the rest */
	memset(&cb, 0, sizeof(cb));
	cb.rows = w->n;
	cb.cols = w->k;
	cb.bpr = ca.bpr;
	cb.nblocks = (uint64_t)w->n * ca.bpr;
	sh->m = ca.rows;
	sh->n = w->n;
	sh->k = ca.cols;
	sh->nb = ca.bpr;
	/* no C^T here: it streams B's records */
	return gemm_run(gemm_kernel_isa(isa, w->n, 0), &ca, &cb, w, ep, exec_macs, blocks, c,
			NULL, arena, ep_done, &ex_hi);
}
