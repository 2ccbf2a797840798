/* SPDX-License-Identifier: MIT */
/*
 * Internal interface between spt_gemm() (gemm.c) and its kernels.
 *
 * Every kernel computes, for each output element c[i][j] independently,
 *
 *	acc = +0.0f
 *	for b = 0 .. nb-1, A block (i,b) and B block (j,b) both present:
 *		acc += ((float)isum * 2^(Ea-6)) * 2^(Eb-6)
 *
 * with isum the exact int32 dot product of the two blocks.  The SIMD kernels
 * also "add" blocks whose B block is absent or whose isum is 0: such a term
 * is +-0.0f, and acc + (+-0.0f) == acc bit for bit because acc is never -0.0f
 * (it starts at +0.0f and a round-to-nearest sum is -0.0f only when both
 * addends are).  So all kernels produce identical bits.
 */
#ifndef SPT_GEMM_INTERNAL_H
#define SPT_GEMM_INTERNAL_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ct_internal.h"
#include "codec_simd.h"

/* Pairs of adjacent elements in a 32-element block. */
#define SPT_GEMM_PAIRS	16u

/* One nonzero pair (elements 2m, 2m+1) of an A block. */
struct spt_gemm_entry {
	int32_t val;	/* (uint16_t)k[2m] | (uint32_t)(uint16_t)k[2m+1] << 16 */
	uint32_t off;	/* (b * 16 + m) * jt: its B pair row inside a column tile */
};

/*
 * One (row, block) work item of A: its entries a_ent[ent .. ent+cnt) and its
 * scratch slot (row - first row of the group) * kc + (block - first block of
 * the chunk).
 */
struct spt_gemm_item {
	uint32_t ent;
	uint16_t cnt;
	uint16_t slot;
};

/*
 * Operands re-laid out for the SIMD kernels.
 *
 * A: rows are taken in groups of rg, blocks in chunks of kc.  For group g
 * and chunk h, items[item_start[g * nchunks + h] .. item_start[... + 1])
 * cover every (row, block) of the group and chunk once, sorted by entry
 * count so that the kernels' inner loop trip counts repeat (few branch
 * mispredictions).  An item's entries list the nonzero pairs of the block;
 * a_scale[i * nb + b] = 2^(Ea-6), or 0 for an absent block.
 *
 * B: the N columns of C are cut into tiles of jt columns (jt a multiple of
 * 8: N rounded up to 8, at most the kernel's widest tile), built and
 * consumed one at a time.  The current tile has nc columns of C (jt, less
 * in the last tile) and tw computed columns: nc rounded up to 8 (AVX2) or
 * jt (AVX-512), the columns past nc padding.  For tile t, b_pairs[b][m][jj]
 * (row stride jt) = the int16 pair (k[2m], k[2m+1]) of B block (t*jt+jj, b)
 * as one int32 (same packing as an entry's val), and b_scale[b][jj] =
 * 2^(Eb-6), or 0 for absent blocks and padding columns; for jj < tw.
 * b_pairs and b_scale are 64-byte aligned.
 *
 * The kernels first compute the int32 sums of every item of a group and
 * chunk into a scratch area (absent items: zero), then add the block terms
 * row by row in increasing block order.  On AVX2, a C of one tile of at
 * most 32 columns with A of at most 16 block columns takes no plan at all:
 * A is read straight from its stream, row by row (gemm_plan_avx2.c; a
 * single column of at most 16 elements, spt_gemm_narrow_avx2()).
 *
 * ep_fused: the AVX2 kernel applies the epilogue's element-wise part as it
 * stores a row's final sums, per element in the order of
 * spt_gemm_epilogue_avx2(): y *= scale (if do_scale), y += bias[column] (if
 * bias: N floats, the tile's first column is col0), ReLU if relu.
 */
struct spt_gemm_plan {
	uint32_t m, n, nb;
	uint32_t jt, ntiles;
	uint32_t nc, tw;	/* the current tile's columns of C, computed columns */
	uint32_t rg, kc, ngroups, nchunks;
	const uint32_t *item_start;
	const struct spt_gemm_item *items;
	const struct spt_gemm_entry *a_ent;
	const float *a_scale;
	const int32_t *b_pairs;
	const float *b_scale;
	float *c;		/* the current column tile of C: m x nc, row stride ldc */
	size_t ldc;
	uint32_t col0;		/* the current tile's first column of C */
	int ep_fused, do_scale, relu;
	float scale;
	const float *bias;
};

/*
 * exec_macs and block pairs without visiting the M x N x nb pairs: both are
 * bilinear, so per block column they are sums over element positions of
 * (A blocks with that bit) * (B blocks with that bit).  Per block column
 * of one operand: [0..31] per-bit counts, [32] blocks present, [33] full
 * masks; a bit's count is v[e] + v[33] (a full or mostly full mask counts
 * in v[33]).  The reference path's; the SIMD path keeps its own counts
 * (gemm_plan_avx2.c) and gives the sums.
 */
struct gemm_bits {
	uint64_t *v;
};

#define GEMM_BITS_STRIDE 34

/* Shapes of the operation, the same on every path. */
struct gemm_shape {
	uint32_t m, n, k, nb;
};

/*
 * A compressed tensor checked by spt_ct_open() (in full, or trusted), read
 * in place: the SIMD path re-lays it out straight from the stream, with no
 * dense unpack, and the ReLU-gradient mask is applied from it.
 */
struct gemm_ct {
	uint32_t rows, cols, bpr, tiles;
	uint64_t nblocks, nonzeros;
	const uint8_t *tab, *payload, *end;
};

/* A cursor over the stored blocks in increasing block order. */
struct gemm_cursor {
	const struct gemm_ct *c;
	uint64_t t, l1;
	const uint8_t *q;
	int have;		/* the fields below hold a block */
	uint64_t blk;
	uint32_t row, col;	/* blk = row * bpr + col, kept without dividing */
	uint32_t l2;
	int ex;
	const int8_t *vals;
};

static inline int gemm_ct_open(const void *buf, size_t len, struct gemm_ct *c)
{
	struct ct_hdr h;
	int err = spt_ct_open(buf, len, &h);

	if (err)
		return err;
	c->rows = h.g.rows;
	c->cols = h.g.cols;
	c->bpr = h.g.bpr;
	c->tiles = (uint32_t)h.g.tiles;
	c->nblocks = (uint64_t)h.g.rows * h.g.bpr;
	c->nonzeros = h.nonzeros;
	c->tab = (const uint8_t *)buf + SPT_CT_HEADER_SIZE;
	c->payload = c->tab + 4 * (h.g.tiles + 1);
	c->end = (const uint8_t *)buf + len;
	return 0;
}

/* Inlined: called once per stored block on the hot paths. */
static inline __attribute__((always_inline)) void gemm_cursor_next(struct gemm_cursor *it)
{
	uint64_t blk, step;

	while (!it->l1) {
		if (it->t >= it->c->tiles) {
			it->have = 0;
			return;
		}
		it->q = it->c->payload + spt_ld32(it->c->tab + 4 * it->t);
		it->l1 = spt_ld64(it->q);
		it->q += 8;
		it->t++;
	}
	blk = (it->t - 1) * SPT_TILE_BLOCKS + (unsigned int)__builtin_ctzll(it->l1);
	step = blk - it->blk;
	it->blk = blk;
	if (step < it->c->bpr) {
		it->col += (uint32_t)step;
		if (it->col >= it->c->bpr) {
			it->col -= it->c->bpr;
			it->row++;
		}
	} else {
		it->row = (uint32_t)(blk / it->c->bpr);
		it->col = (uint32_t)(blk % it->c->bpr);
	}
	it->have = 1;
	it->l1 &= it->l1 - 1;
	it->l2 = spt_ld32(it->q);
	it->ex = (int)it->q[4] - SPT_E8M0_BIAS;
	it->vals = (const int8_t *)(it->q + 5);
	it->q += 5 + (it->l2 == 0xffffffffu ? 32 : ct_pop32(it->l2));
}

static inline void gemm_cursor_init(struct gemm_cursor *it, const struct gemm_ct *c)
{
	memset(it, 0, sizeof(*it));
	it->c = c;
	gemm_cursor_next(it);
}

/*
 * A cursor at the first stored block at or after block @x: its tile from
 * the tile table, the records before x in that tile stepped over.
 */
static inline void gemm_cursor_seek(struct gemm_cursor *it, const struct gemm_ct *c, uint64_t x)
{
	uint64_t t = x / SPT_TILE_BLOCKS, skip;

	memset(it, 0, sizeof(*it));
	it->c = c;
	it->t = t;
	it->blk = x;
	it->row = (uint32_t)(x / c->bpr);
	it->col = (uint32_t)(x % c->bpr);
	if (t < c->tiles) {
		it->q = c->payload + spt_ld32(c->tab + 4 * t);
		it->l1 = spt_ld64(it->q);
		it->q += 8;
		it->t = t + 1;
		skip = it->l1 & ((1ull << (x % SPT_TILE_BLOCKS)) - 1);
		for (; skip; skip &= skip - 1) {
			uint32_t l2 = spt_ld32(it->q);

			it->q += 5 + (l2 == 0xffffffffu ? 32 : ct_pop32(l2));
			it->l1 &= it->l1 - 1;
		}
	}
	gemm_cursor_next(it);
}

/*
 * The SIMD path (gemm_plan_avx2.c): validate, re-lay out and multiply.
 * Returns 0, a negative error, or 1 when the operands are too large for its
 * u32 indices (use the reference path).  Fills *sh, the counters'
 * *exec_macs and *blocks (what gemm_bits_finish() of gemm.c gives on the
 * operands' bits), *c = y_user or a result inside *arena, which the caller
 * frees.  *ep_done: 1 if ep's scale, bias and ReLU (not the ReLU-gradient
 * mask) have been applied to *c.
 */
int spt_gemm_run_simd(enum spt_isa isa, const void *a, size_t a_len,
		      const void *b, size_t b_len, const struct spt_gemm_epilogue *ep,
		      struct gemm_shape *sh, uint64_t *exec_macs, uint64_t *blocks,
		      float **c, float *y_user, void **arena, int *ep_done);

/*
 * B given as FP32 (spt_gemm_wq()): the n x k matrix @w, quantised tile by
 * tile as spt_ct_encode() would quantise it, nearest-even, pruned below
 * @tau (0: none); the encoder's statistics gather in @acc.
 */
struct gemm_wsrc {
	const float *w;
	uint32_t n, k;
	float tau;
	struct ct_enc_acc acc;
};

/*
 * spt_gemm_run_simd() with B from @w instead of a compressed tensor (a CPU
 * with AVX2, @isa AVX2 or AVX512; no C^T path, which streams B's records):
 * the same results, counters and *c, which is inside *arena (the caller
 * frees it).  -EDOM on a NaN or Inf in @w, then *c unspecified.
 */
int spt_gemm_run_simd_w(enum spt_isa isa, const void *a, size_t a_len, struct gemm_wsrc *w,
			const struct spt_gemm_epilogue *ep, struct gemm_shape *sh,
			uint64_t *exec_macs, uint64_t *blocks, float **c, void **arena,
			int *ep_done);

/* 2^e exactly as a float, for e in [-149, 127]. */
static inline float spt_exp2f_exact(int e)
{
	union { uint32_t u; float f; } v;

	if (e >= -126)
		v.u = (uint32_t)(e + 127) << 23;
	else
		v.u = (uint32_t)1 << (e + 149);
	return v.f;
}

/* The reference: straight from the definition, on unpacked operands. */
void spt_gemm_kernel_scalar(const struct spt_unpacked *a,
			    const struct spt_unpacked *b, float *c);

#ifndef SPT_NO_SIMD
/*
 * columns per tile (AVX2: at most, in multiples of 8; AVX-512: always),
 * rows per group, blocks per chunk (AVX2: at the widest tile; a tile of jt
 * columns takes KC * JT / jt)
 */
#define SPT_GEMM_JT_AVX2	64u
#define SPT_GEMM_RG_AVX2	8u
#define SPT_GEMM_KC_AVX2	4u
#define SPT_GEMM_JT_AVX512	64u
#define SPT_GEMM_RG_AVX512	8u
#define SPT_GEMM_KC_AVX512	4u
/*
 * One column tile of C into p->c; p->b_pairs and p->b_scale hold that tile
 * of B.  AVX2 writes the tile's nc columns; AVX-512 takes whole tiles only
 * (nc = jt), a partial last tile going to the AVX2 kernel.
 */
void spt_gemm_kernel_avx2(const struct spt_gemm_plan *p);
void spt_gemm_kernel_avx512(const struct spt_gemm_plan *p);
/* Rows jj..jj+7 of a B tile from dense int8 staging stg[8][nb][32] (AVX2). */
void spt_gemm_pack_b_avx2(const int8_t *stg, uint32_t nb, uint32_t jt, uint32_t jj,
			  int32_t *tile);
/*
 * The epilogue's element-wise part on the m x n result y, per element in
 * this order: y *= scale (if do_scale), y += bias[column] (if bias), ReLU
 * (y <= 0 becomes +0, NaN stays) if relu.
 */
void spt_gemm_epilogue_avx2(float *y, uint32_t m, uint32_t n, int do_scale, float scale,
			    const float *bias, int relu);
/* Clear the elements of a 32-element run of y whose bit in keep is clear. */
void spt_gemm_mask32_avx2(float *y, uint32_t keep);
/*
 * The one column tile (nc <= 16 columns) of C for an A of a single block
 * column of at most 16 elements, straight from A's stream (no plan): p's
 * B tile, C and epilogue fields as for spt_gemm_kernel_avx2(); the stored
 * A blocks' per-bit counts added to cnt, their number to *nblk.
 */
void spt_gemm_narrow_avx2(const struct spt_gemm_plan *p, const struct gemm_ct *a,
			  uint32_t cnt[32], uint32_t *nblk);
#endif

#ifdef __AVX2__
/*
 * The epilogue on vector k of a row's final sums (see spt_gemm_plan): the
 * same operations as spt_gemm_epilogue_avx2() (the AVX2 kernels).  A tail vector reads its
 * bias through the lane mask.
 */
struct spt_ep {
	int on, do_scale, relu;	/* on: any of the three */
	float scale;
	const float *bias;	/* at the tile's first column, or NULL */
};

/* Copied out of the plan: locals stay in registers across the stores to C. */
static inline struct spt_ep spt_ep_of(const struct spt_gemm_plan *p)
{
	struct spt_ep e = { 0, 0, 0, 1.0f, NULL };

	if (p->ep_fused) {
		e.do_scale = p->do_scale;
		e.relu = p->relu;
		e.scale = p->scale;
		e.bias = p->bias ? p->bias + p->col0 : NULL;
		e.on = e.do_scale || e.relu || e.bias;
	}
	return e;
}

static inline __attribute__((always_inline)) __m256
spt_epi(struct spt_ep ep, __m256 v, unsigned int k, __m256i last, int tail)
{
	if (ep.do_scale)
		v = _mm256_mul_ps(v, _mm256_set1_ps(ep.scale));
	if (ep.bias) {
		const float *bias = ep.bias + 8 * k;

		v = _mm256_add_ps(v, tail ? _mm256_maskload_ps(bias, last) : _mm256_loadu_ps(bias));
	}
	if (ep.relu)	/* ordered compare: NaN is kept */
		v = _mm256_andnot_ps(_mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ), v);
	return v;
}

/* 0xff in byte e where bit e of l2 is set, else 0. */
static inline __m256i spt_mask_bytes(uint32_t l2)
{
	const __m256i from = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
					      2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)l2), from);

	return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}
#endif

#endif
