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

#include <stdint.h>

#include "ct_internal.h"

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
 * B: the N columns of C are cut into tiles of jt columns (the last padded
 * with zero columns), built and consumed one at a time.  For tile t,
 * b_pairs[b][m][jj] = the int16 pair (k[2m], k[2m+1]) of B block
 * (t*jt+jj, b) as one int32 (same packing as an entry's val), and
 * b_scale[b][jj] = 2^(Eb-6), or 0 for absent blocks and padding columns.
 * b_pairs and b_scale are 64-byte aligned.
 *
 * The kernels first compute the int32 sums of every item of a group and
 * chunk into a scratch area (absent items: zero), then add the block terms
 * row by row in increasing block order.
 */
struct spt_gemm_plan {
	uint32_t m, n, nb;
	uint32_t jt, ntiles;
	uint32_t rg, kc, ngroups, nchunks;
	const uint32_t *item_start;
	const struct spt_gemm_item *items;
	const struct spt_gemm_entry *a_ent;
	const float *a_scale;
	const int32_t *b_pairs;
	const float *b_scale;
	float *c;		/* the current column tile of C: m x jt, row stride ldc */
	size_t ldc;
};

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
/* columns per tile, rows per group, blocks per chunk */
#define SPT_GEMM_JT_AVX2	64u
#define SPT_GEMM_RG_AVX2	8u
#define SPT_GEMM_KC_AVX2	4u
#define SPT_GEMM_JT_AVX512	64u
#define SPT_GEMM_RG_AVX512	8u
#define SPT_GEMM_KC_AVX512	4u
/* One column tile of C into p->c; p->b_pairs and p->b_scale hold that tile of B. */
void spt_gemm_kernel_avx2(const struct spt_gemm_plan *p);
void spt_gemm_kernel_avx512(const struct spt_gemm_plan *p);
/* The 16 entries of a full A block at column offset off0 (AVX2). */
void spt_gemm_entries_full_avx2(const int8_t *vals, uint32_t off0, uint32_t jt,
				struct spt_gemm_entry *out);
/* Block values from packed nonzeros; reads 32 bytes at vals (BMI2). */
void spt_gemm_expand_avx2(uint32_t l2, const int8_t *vals, int8_t *k);
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
#endif

#endif
