/* SPDX-License-Identifier: MIT */
/*
 * spt_ct_transpose() with raw options and no statistics, strip by strip:
 * the bytes spt_ct_encode() gives on the decoded, transposed tensor,
 * without that tensor.  A decoded value k * 2^(E-6) is exact in a float, so
 * quantising the values gathered in @t with the encoder's float operations
 * gives the encoder's records.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec_block.h"
#include "codec_lut.h"
#include "ct_transpose.h"
#include "isa_internal.h"

/*
 * One output block from the 32 floats at @v (encode_block_vec() and
 * bfp8_even_block() of codec_block.h without pruning): its record at @dst,
 * the L2 mask returned (0: no record).
 */
static uint32_t quant_block(const float *v, uint8_t *dst)
{
	uint32_t umax = 0, l2 = 0, B, n = 0;
	float s1, s2;
	int8_t k[32];
	unsigned int i;

	for (i = 0; i < SPT_BLOCK_ELEMS; i++) {
		uint32_t a = f2u(v[i]) & 0x7fffffffu;

		umax = a > umax ? a : umax;
	}
	if (!umax)
		return 0;
	B = umax >> 23;
	block_scales(B, &s1, &s2);
	bfp8_even_block(v, s1, s2, k);
	for (i = 0; i < SPT_BLOCK_ELEMS; i++) {
		if (k[i]) {
			l2 |= 1u << i;
			dst[5 + n++] = (uint8_t)k[i];
		}
	}
	if (l2) {
		spt_st32(dst, l2);
		dst[4] = (uint8_t)B;
	}
	return l2;
}

/* The values k * s, exactly decode's, down lane @i of the rows of block column @c. */
static void scatter_scalar(struct ctt *x, uint32_t c, uint32_t i, const uint8_t *q, uint32_t l2,
			   const uint8_t *bend)
{
	float sc = spt_lut_e8m0_scale[q[4]];
	float *col = (float *)x->t + (size_t)c * SPT_BLOCK_ELEMS * SPT_BLOCK_ELEMS + i;
	const int8_t *v = (const int8_t *)(q + 5);
	uint32_t m;

	(void)bend;
	x->touch[c] |= l2;
	for (m = l2; m; m &= m - 1)
		col[__builtin_ctz(m) * SPT_BLOCK_ELEMS] = (float)*v++ * sc;
}

static void flush_scalar(struct ctt *x, uint32_t s)
{
	uint32_t c;

	for (c = 0; c < x->bpr; c++) {
		uint32_t m = x->touch[c];

		x->touch[c] = 0;
		for (; m; m &= m - 1) {
			uint32_t j = c * SPT_BLOCK_ELEMS + (uint32_t)__builtin_ctz(m), l2, n;
			float *v = (float *)x->t + (size_t)j * SPT_BLOCK_ELEMS;
			uint64_t b = (uint64_t)j * x->obpr + s;

			l2 = quant_block(v, x->st + j * x->sstride + x->slen[j]);
			memset(v, 0, SPT_BLOCK_ELEMS * sizeof(float));
			if (!l2)
				continue;
			n = ct_pop32(l2);
			x->slen[j] += 5 + n;
			x->bits[b / 64] |= 1ull << (b % 64);
			x->tbytes[b / 64] += 5 + n;
			x->nzb++;
			x->nnz += n;
		}
	}
}

/*
 * The tiles from the streams: tile t's L1 mask is bits[t] and its records,
 * tbytes[t] bytes, are those of its blocks in order: the rest of the
 * current row's stream if that row ends in the tile, then whole streams,
 * then the start of the stream of the row the tile ends in.  The checks are
 * spt_ct_encode()'s, in its order (a tile fits or not as a whole).
 */
static int assemble(const struct ctt *x, const struct ct_geom *og, uint8_t *out, size_t cap,
		    uint64_t *pos_io)
{
	uint8_t *table = out + SPT_CT_HEADER_SIZE;
	uint64_t pos = *pos_io, t;
	uint32_t j = 0, off = 0;

	for (t = 0; t < og->tiles; t++) {
		uint32_t left = x->tbytes[t];

		if (pos - og->payload_off > UINT32_MAX)
			return -E2BIG;
		spt_st32(table + 4 * t, (uint32_t)(pos - og->payload_off));
		if (cap - pos < 8 || cap - pos - 8 < left)
			return -ENOSPC;
		spt_st64(out + pos, x->bits[t]);
		pos += 8;
		while (left) {
			uint32_t avail = x->slen[j] - off, n = avail < left ? avail : left;

			memcpy(out + pos, x->st + j * x->sstride + off, n);
			pos += n;
			left -= n;
			off += n;
			if (n == avail) {	/* the row ends in this tile */
				j++;
				off = 0;
			}
		}
	}
	*pos_io = pos;
	return 0;
}

int spt_ctt_init(struct ctt *x, const struct ct_geom *g, const struct ct_geom *og, int avx2)
{
	size_t tbytes, sbytes, o_touch, o_slen, o_bits, o_tb, o_st;
	uint8_t *mem;

	/*
	 * dims <= 2^24, so every term below is under 2^56 and the offsets add
	 * up without overflow where size_t has 64 bits; the streams' product
	 * and the total are checked
	 */
	_Static_assert(SIZE_MAX >= UINT64_MAX, "the scratch sizes assume a 64-bit size_t");
	x->orows = g->cols;
	x->obpr = og->bpr;
	x->bpr = g->bpr;
	x->sstride = ((size_t)og->bpr * (5 + SPT_BLOCK_ELEMS) + CTT_SLACK + 63) & ~(size_t)63;
	/* scalar: 32 x 32 floats per block column; AVX2: 32 x 32 int8 and 32 E8M0 bytes */
	tbytes = (size_t)g->bpr * SPT_BLOCK_ELEMS * (avx2 ? SPT_BLOCK_ELEMS + 1 :
					       SPT_BLOCK_ELEMS * sizeof(float));
	tbytes = (tbytes + 63) & ~(size_t)63;
	sbytes = (size_t)x->orows * x->sstride;
	o_touch = tbytes;
	o_slen = o_touch + (((size_t)g->bpr * 4 + 63) & ~(size_t)63);
	o_bits = o_slen + (((size_t)x->orows * 4 + 63) & ~(size_t)63);
	o_tb = o_bits + (size_t)og->tiles * 8;
	o_st = o_tb + (size_t)og->tiles * 4;
	o_st = (o_st + 63) & ~(size_t)63;
	if (sbytes / x->sstride != x->orows || o_st > SIZE_MAX - sbytes)
		return -ENOMEM;
	mem = aligned_alloc(64, o_st + sbytes);
	if (!mem)
		return -ENOMEM;
	memset(mem, 0, o_st);	/* all but the streams */
	x->mem = mem;
	x->t = mem;
	x->touch = (uint32_t *)(mem + o_touch);
	x->slen = (uint32_t *)(mem + o_slen);
	x->bits = (uint64_t *)(mem + o_bits);
	x->tbytes = (uint32_t *)(mem + o_tb);
	x->st = mem + o_st;
	x->nzb = x->nnz = 0;
	return 0;
}

void spt_ctt_free(struct ctt *x)
{
	free(x->mem);
	x->mem = NULL;
}

int spt_ctt_finish(struct ctt *x, const struct ct_geom *og, uint8_t *out, size_t cap,
		   uint64_t *pos, uint64_t *nzb, uint64_t *nnz)
{
	int err = assemble(x, og, out, cap, pos);

	*nzb = x->nzb;
	*nnz = x->nnz;
	spt_ctt_free(x);
	return err;
}

int spt_ct_transpose_raw(const uint8_t *p, const struct ct_hdr *h, const struct ct_geom *og,
			 uint8_t *out, size_t cap, uint64_t *pos, uint64_t *nzb, uint64_t *nnz)
{
	struct ctt x;
	int avx2 = spt_use_avx2(), err;

	err = spt_ctt_init(&x, &h->g, og, avx2);
	if (err)
		return err;
#ifndef SPT_NO_SIMD
	if (avx2)
		spt_ctt_walk_avx2(&x, p, h);
	else
#endif
		ctt_walk(&x, p, h, scatter_scalar, flush_scalar);
	return spt_ctt_finish(&x, og, out, cap, pos, nzb, nnz);
}
