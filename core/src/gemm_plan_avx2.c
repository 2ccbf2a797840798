/* SPDX-License-Identifier: MIT */
/*
 * The SIMD GEMM path of spt_gemm() (gemm.c): the operands re-laid out for the
 * kernels straight from their streams (see gemm_internal.h), then the
 * kernel, one column tile of B at a time.  Built with the AVX2 flags; only
 * called when the CPU has AVX2 (the AVX-512 kernel shares it).
 */
#include <immintrin.h>

#include "gemm_internal.h"

/*
 * The counters' bit counts (see gemm_bits in gemm_internal.h) as u32 lanes
 * per block column: [0..31] per-bit counts of partial masks, [32] blocks,
 * [33] full masks; exported to the u64 layout at the end.  Counts are at
 * most the rows of an operand, SPT_CT_MAX_DIM = 2^24.
 */
#define BITS32_STRIDE 40u

static inline __attribute__((always_inline)) void bits_add(uint32_t *cnt, uint32_t col,
							   uint32_t l2)
{
	uint32_t *v = cnt + (size_t)col * BITS32_STRIDE;
	__m256i sel = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
	unsigned int g;

	v[32]++;
	if (l2 == 0xffffffffu) {
		v[33]++;
		return;
	}
	for (g = 0; g < 4; g++) {
		__m256i l = _mm256_set1_epi32((int)(l2 >> (8 * g) & 0xffu));
		__m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(l, sel), sel);	/* -1: set */
		__m256i *d = (__m256i *)(v + 8 * g);

		_mm256_storeu_si256(d, _mm256_sub_epi32(_mm256_loadu_si256(d), on));
	}
}

static int bits_export(struct gemm_bits *out, const uint32_t *cnt, uint32_t nb)
{
	uint32_t col, e;

	out->v = malloc((size_t)nb * GEMM_BITS_STRIDE * sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	for (col = 0; col < nb; col++)
		for (e = 0; e < GEMM_BITS_STRIDE; e++)
			out->v[(size_t)col * GEMM_BITS_STRIDE + e] =
				cnt[(size_t)col * BITS32_STRIDE + e];
	return 0;
}

/* The 32 values of a block, zeros where the L2 bit is clear. */
static inline void gemm_expand(const struct gemm_cursor *it, int8_t *k)
{
	uint32_t l2 = it->l2;
	const int8_t *vals = it->vals;

	if (l2 == 0xffffffffu) {
		memcpy(k, vals, 32);
		return;
	}
	if (it->c->end - (const uint8_t *)vals >= 32) {
		spt_gemm_expand_avx2(l2, vals, k);
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
	uint32_t *bits_a, *bits_b;	/* BITS32_STRIDE per block column */
	float *cpad;
	float *y;		/* the result when the caller wants only ct */
};

static size_t gemm_round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* Carve the buffers (64-byte aligned) out of one block; NULL arena: size only. */
static size_t gemm_bufs_carve(struct gemm_bufs *g, const struct spt_gemm_plan *p,
			      uint64_t nblk, uint64_t nonzeros, int pad_c, int own_y)
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
	GEMM_TAKE(bits_a, (size_t)p->nb * BITS32_STRIDE);
	GEMM_TAKE(bits_b, (size_t)p->nb * BITS32_STRIDE);
	if (pad_c)
		GEMM_TAKE(cpad, (size_t)p->m * p->jt);
	if (own_y)
		GEMM_TAKE(y, (size_t)p->m * p->n);
#undef GEMM_TAKE
	return off;
}

/*
 * Work items of one row group and block chunk, sorted by entry count; start
 * holds each block's first entry in a_ent (block order), start[x + 1] -
 * start[x] its count.
 */
static void gemm_sort_items(const struct spt_gemm_plan *p, const uint32_t *start,
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
 * A as entries (nonzero pairs) in block order and sorted work items; see
 * gemm_internal.h.  Two walks of the stream: counts (as each block's first
 * entry), scales and counters first, then the entries, written in order
 * (each block's stores may run past its entries into the next block's
 * place, which the next block then overwrites; a_ent has room for 16 more).
 */
static void gemm_plan_a(const struct gemm_ct *c, struct spt_gemm_plan *p,
			struct gemm_bufs *g)
{
	struct gemm_cursor it;
	struct spt_gemm_entry *e = g->a_ent;
	uint64_t nblk = c->nblocks, next = 0;
	uint32_t gi, h, run = 0, *start = g->a_dest;

	for (gemm_cursor_init(&it, c); it.have; gemm_cursor_next(&it)) {
		for (; next < it.blk; next++) {	/* absent blocks */
			start[next] = run;
			g->a_scale[next] = 0.0f;
		}
		start[next] = run;
		g->a_scale[next] = spt_exp2f_exact(it.ex - 6);
		next++;
		run += gemm_popcount32((it.l2 | it.l2 >> 1) & 0x55555555u);
		bits_add(g->bits_a, it.col, it.l2);
	}
	for (; next < nblk; next++) {
		start[next] = run;
		g->a_scale[next] = 0.0f;
	}
	start[nblk] = run;
	for (gi = 0; gi < p->ngroups; gi++) {
		uint32_t r0 = gi * p->rg, r1 = p->m - r0 < p->rg ? p->m : r0 + p->rg;

		for (h = 0; h < p->nchunks; h++) {
			uint32_t b0 = h * p->kc, b1 = p->nb - b0 < p->kc ? p->nb : b0 + p->kc;
			size_t first = (size_t)gi * p->rg * p->nb + (size_t)(r1 - r0) * b0;

			g->item_start[(size_t)gi * p->nchunks + h] = (uint32_t)first;
			gemm_sort_items(p, start, r0, r1, b0, b1, g->items + first);
		}
	}
	g->item_start[(size_t)p->ngroups * p->nchunks] = (uint32_t)nblk;
	for (gemm_cursor_init(&it, c); it.have; gemm_cursor_next(&it)) {
		uint32_t off0 = it.col * SPT_GEMM_PAIRS * p->jt, pm;
		int8_t k[32];

		if (it.l2 == 0xffffffffu) {
			spt_gemm_entries_full_avx2(it.vals, off0, p->jt, e);
			e += SPT_GEMM_PAIRS;
			continue;
		}
		pm = (it.l2 | it.l2 >> 1) & 0x55555555u;
		gemm_expand(&it, k);
		spt_gemm_entries_part_avx2(k, pm, off0, p->jt, e);
		e += gemm_popcount32(pm);
	}
}

/* Rows jj .. jj+7 of a B column tile all zero (jt, jj: multiples of 8; AVX-512's padding). */
static void gemm_zero_rows(int32_t *tile, uint32_t nb, uint32_t jt, uint32_t jj)
{
	size_t x, rows = (size_t)nb * SPT_GEMM_PAIRS;

	for (x = 0; x < rows; x++)
		_mm256_store_si256((__m256i *)(tile + x * jt + jj), _mm256_setzero_si256());
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
	uint32_t nb = c->bpr, jt = p->jt, tw = p->tw, jj, blk;
	float *b_scale = g->b_scale;
	uint32_t *bits = g->bits_b;
	int8_t *stg = g->stg;

	if (tw == jt)
		memset(b_scale, 0, (size_t)nb * jt * sizeof(float));
	else
		for (blk = 0; blk < nb; blk++)
			memset(b_scale + (size_t)blk * jt, 0, tw * sizeof(float));
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
			gemm_expand(&it, stg + at * 32);
			done = at + 1;
		}
		memset(stg + done * 32, 0, ((size_t)8 * nb - done) * 32);
		spt_gemm_pack_b_avx2(stg, nb, jt, jj, g->b_pairs);
	}
	*cursor = it;
}

/*
 * n < jt floats of a partial tile's row (AVX-512): inline, a library call
 * per row costs more.
 */
static inline void gemm_copy_row(float *dst, const float *src, uint32_t n)
{
	uint32_t j;

	for (j = 0; j + 8 <= n; j += 8)
		_mm256_storeu_ps(dst + j, _mm256_loadu_ps(src + j));
	for (; j < n; j++)
		dst[j] = src[j];
}

static void gemm_plan_init(enum spt_isa isa, const struct gemm_ct *a,
			   const struct gemm_ct *b, struct spt_gemm_plan *p)
{
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
 * Validate, re-lay out and multiply, one column tile of B at a time (the
 * tile's pairs stay in L2).  1: too large for this path's u32 indices, use
 * the reference path.  Without y_user the result lives in *arena, which the
 * caller frees.
 */
int spt_gemm_run_simd(enum spt_isa isa, const void *a, size_t a_len,
		      const void *b, size_t b_len, struct gemm_shape *sh,
		      struct gemm_bits *ba, struct gemm_bits *bb, float **c,
		      float *y_user, void **arena)
{
	struct gemm_bufs g;
	struct gemm_ct ca, cb;
	struct gemm_cursor cur;
	struct spt_gemm_plan p;
	uint32_t t, i;
	int err, pad_c;

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
	memset(&g, 0, sizeof(g));
	gemm_plan_init(isa, &ca, &cb, &p);
	/* AVX-512 writes whole tiles: a partial last tile goes to cpad first */
	pad_c = isa == SPT_ISA_AVX512 && p.n % p.jt != 0;
	g.arena = aligned_alloc(64, gemm_bufs_carve(&g, &p, ca.nblocks, ca.nonzeros,
						    pad_c, !y_user));
	if (!g.arena)
		return -ENOMEM;
	*arena = g.arena;
	gemm_bufs_carve(&g, &p, ca.nblocks, ca.nonzeros, pad_c, !y_user);
	*c = y_user ? y_user : g.y;
	memset(g.bits_a, 0, (size_t)p.nb * BITS32_STRIDE * sizeof(*g.bits_a));
	memset(g.bits_b, 0, (size_t)p.nb * BITS32_STRIDE * sizeof(*g.bits_b));
	gemm_plan_a(&ca, &p, &g);
	p.item_start = g.item_start;
	p.items = g.items;
	p.a_ent = g.a_ent;
	p.a_scale = g.a_scale;
	p.b_pairs = g.b_pairs;
	p.b_scale = g.b_scale;
	gemm_cursor_init(&cur, &cb);
	for (t = 0; t < p.ntiles; t++) {
		int part;

		p.nc = p.n - t * p.jt < p.jt ? p.n - t * p.jt : p.jt;
		p.tw = isa == SPT_ISA_AVX512 ? p.jt : (p.nc + 7) & ~7u;
		part = pad_c && p.nc < p.jt;
		p.c = part ? g.cpad : *c + (size_t)t * p.jt;
		p.ldc = part ? p.jt : p.n;
		gemm_pack_tile(&cur, &cb, &p, t, &g);
		if (isa == SPT_ISA_AVX512)
			spt_gemm_kernel_avx512(&p);
		else
			spt_gemm_kernel_avx2(&p);
		for (i = 0; part && i < p.m; i++)
			gemm_copy_row(*c + (size_t)i * p.n + (size_t)t * p.jt,
				      g.cpad + (size_t)i * p.jt, p.nc);
	}
	err = bits_export(ba, g.bits_a, p.nb);
	return err ? err : bits_export(bb, g.bits_b, p.nb);
}
