/* SPDX-License-Identifier: MIT */
/*
 * The re-blocking transpose of a compressed tensor with raw options (no
 * pruning, nearest-even rounding) and no statistics, without an FP32 copy
 * of the tensor (ct_transpose.c, ct_transpose_avx2.c).
 */
#ifndef SPT_CT_TRANSPOSE_H
#define SPT_CT_TRANSPOSE_H

#include "codec_simd.h"

/*
 * Scratch of one call.  The source is walked in strips of 32 rows, one
 * output block column s.  The strip's stored values go to @t, its transpose
 * (source column j is the 32-float row j of @t, lane i the strip's row i;
 * the AVX2 path keeps the strip's int8 values and E8M0 bytes there instead
 * and transposes them 32 x 32 at a time), and @touch[c] collects the L2
 * masks of the strip's blocks in source block column c, so the rows holding
 * a value are known (the AVX2 path flags the block columns with a value and
 * ORs a column's transposed rows instead).  Each such row is one output
 * block (row j, block s): quantised, its record appended to output row j's
 * stream, its L1 bit set in @bits, and the scratch cleared again.  The
 * tiles are assembled from the streams at the end.
 */
struct ctt {
	uint32_t orows, obpr;	/* output rows (source cols), blocks per output row */
	uint32_t bpr;		/* source blocks per row */
	void *t;		/* scalar: bpr * 32 rows of 32 floats, 0; AVX2: see there */
	uint32_t *touch;	/* bpr masks (AVX2: flags), 0 between strips */
	uint8_t *st;		/* orows streams of @sstride bytes */
	size_t sstride;
	uint32_t *slen;		/* bytes in each stream */
	uint64_t *bits;		/* output L1 bits, block j * obpr + s: a tile per word */
	uint32_t *tbytes;	/* record bytes of each output tile */
	uint64_t nzb, nnz;	/* output blocks and values stored */
	void *mem;		/* the one allocation behind all of the above */
};

/* Bytes a record write may touch past the record's end (8-byte chunk stores). */
#define CTT_SLACK 16u

/*
 * Every stored block of the validated tensor @p in storage order: block c of
 * source row r handed to @scatter (@i = r % 32, the lane of the strip), a
 * strip quantised by @flush when the walk leaves it.  @scatter also keeps
 * @x->touch.  Strips without a stored value cost nothing.  Each ISA's file
 * instantiates it with its own @scatter and @flush (constants: the calls
 * are inlined).
 */
typedef void ctt_scatter_fn(struct ctt *x, uint32_t c, uint32_t i, const uint8_t *q,
			    uint32_t l2, const uint8_t *bend);
typedef void ctt_flush_fn(struct ctt *x, uint32_t s);

AINLINE void ctt_walk(struct ctt *x, const uint8_t *p, const struct ct_hdr *h,
		      ctt_scatter_fn *scatter, ctt_flush_fn *flush)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	const uint8_t *bend = p + h->total;
	uint64_t t, rstart = 0;
	uint32_t r = 0, strip = 0;
	int dirty = 0;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + ldu32(tab + 4 * t);
		uint64_t l1 = ldu64(q);

		q += 8;
		for (; l1; l1 &= l1 - 1) {
			uint64_t b = t * SPT_TILE_BLOCKS + (unsigned int)__builtin_ctzll(l1);
			uint32_t l2 = ldu32(q), c;

			while (b - rstart >= g->bpr) {
				rstart += g->bpr;
				r++;
			}
			if (r / SPT_BLOCK_ELEMS != strip) {
				if (dirty)
					flush(x, strip);
				strip = r / SPT_BLOCK_ELEMS;
			}
			dirty = 1;
			c = (uint32_t)(b - rstart);
			scatter(x, c, r % SPT_BLOCK_ELEMS, q, l2, bend);
			q += 5 + ct_pop32(l2);
		}
	}
	if (dirty)
		flush(x, strip);
}

/* ctt_walk() with the AVX2 scatter and flush (ct_transpose_avx2.c). */
void spt_ctt_walk_avx2(struct ctt *x, const uint8_t *p, const struct ct_hdr *h);

/*
 * The AVX2 scatter and flush, for an encoder that fills the strips as it
 * writes the records (spt_ct_encode_t()): the record at @q (its stream
 * ending at @bend) of source block column @c in lane @i of the strip, and
 * the strip @s quantised.  The int8 strip of block column c is 32 rows of
 * 32 bytes at ctt_tile(x, c), its E8M0 bytes at ctt_e8(x, c).
 */
void spt_ctt_scatter_avx2(struct ctt *x, uint32_t c, uint32_t i, const uint8_t *q,
			  uint32_t l2, const uint8_t *bend);
void spt_ctt_flush_avx2(struct ctt *x, uint32_t s);

static inline uint8_t *ctt_tile(const struct ctt *x, uint32_t c)
{
	return (uint8_t *)x->t + (size_t)c * SPT_BLOCK_ELEMS * SPT_BLOCK_ELEMS;
}

static inline uint8_t *ctt_e8(const struct ctt *x, uint32_t c)
{
	return (uint8_t *)x->t + (size_t)x->bpr * SPT_BLOCK_ELEMS * SPT_BLOCK_ELEMS +
	       (size_t)c * SPT_BLOCK_ELEMS;
}

/*
 * The scratch of a transpose of a source of geometry @g into @og (@avx2:
 * the AVX2 strips), all cleared; free with spt_ctt_finish() or
 * spt_ctt_free().  -ENOMEM.
 */
int spt_ctt_init(struct ctt *x, const struct ct_geom *g, const struct ct_geom *og, int avx2);
void spt_ctt_free(struct ctt *x);

/*
 * The payload of the transpose from the flushed strips (see
 * spt_ct_transpose_raw()) into @out from *@pos on; the scratch freed.
 */
int spt_ctt_finish(struct ctt *x, const struct ct_geom *og, uint8_t *out, size_t cap,
		   uint64_t *pos, uint64_t *nzb, uint64_t *nnz);

/*
 * The payload (tiles, and the tile table at @out + 64) of the transpose of
 * the validated tensor @p into @out, from *@pos = the output's payload offset
 * on; *@pos, *@nzb and *@nnz get the end and the header's counts.  Returns 0,
 * -ENOMEM, or -ENOSPC / -E2BIG exactly where spt_ct_encode() would.  @og is
 * the output geometry (cols x rows), og->tiles <= UINT32_MAX.
 */
int spt_ct_transpose_raw(const uint8_t *p, const struct ct_hdr *h, const struct ct_geom *og,
			 uint8_t *out, size_t cap, uint64_t *pos, uint64_t *nzb, uint64_t *nnz);

/*
 * spt_ct_transpose() with raw options and no statistics always by strips
 * (spt_ct_transpose() takes this path for tensors of CTT_MIN_ROWS rows or
 * more: on fewer rows the encoder's narrow-row paths make decode,
 * transpose, encode as fast or faster); for the tests.
 */
#define CTT_MIN_ROWS 1024u
int spt_ct_transpose_strips(const void *in, size_t in_len, void *out, size_t cap,
			    size_t *out_len);

#endif
