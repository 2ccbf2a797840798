/* SPDX-License-Identifier: MIT */
/*
 * spt_gemm(): operand checks, counters, the re-layout for the SIMD kernels,
 * the kernel call and the fused epilogue.  The arithmetic itself is defined
 * by gemm_scalar.c; the SIMD kernels reproduce it bit for bit.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_internal.h"

static int gemm_prune_check(const struct spt_prune *pr)
{
	switch (pr->mode) {
	case SPT_PRUNE_OFF:
		return 0;
	case SPT_PRUNE_DETERMINISTIC:
	case SPT_PRUNE_STOCHASTIC:
		return isfinite(pr->tau) && pr->tau >= 0.0f ? 0 : -EINVAL;
	}
	return -EINVAL;
}


/*
 * exec_macs and block pairs without visiting the M x N x nb pairs: both are
 * bilinear, so per block column they are sums over element positions of
 * (A blocks with that bit) * (B blocks with that bit).  Per block column
 * of one operand: 32 per-bit counts, blocks present, full masks.
 */
static inline uint32_t gemm_popcount32(uint32_t x)
{
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	return (x * 0x01010101u) >> 24;
}

struct gemm_bits {
	uint64_t *v;
};

#define GEMM_BITS_STRIDE 34

static int gemm_bits_init(struct gemm_bits *c, uint32_t nb)
{
	c->v = calloc((size_t)nb * GEMM_BITS_STRIDE, sizeof(*c->v));
	return c->v ? 0 : -ENOMEM;
}

/*
 * A mostly full mask counts as full minus its clear bits: v[e] + v[33] is
 * the count of bit e, and u64 arithmetic wraps back to it exactly.
 */
static inline void gemm_bits_add(struct gemm_bits *c, uint32_t col, uint32_t l2)
{
	uint64_t *v = c->v + (size_t)col * GEMM_BITS_STRIDE;

	v[32]++;
	if (l2 == 0xffffffffu) {
		v[33]++;
		return;
	}
	if (gemm_popcount32(l2) > 16) {
		uint32_t m;

		v[33]++;
		for (m = ~l2; m; m &= m - 1)
			v[__builtin_ctz(m)]--;
		return;
	}
	for (; l2; l2 &= l2 - 1)
		v[__builtin_ctz(l2)]++;
}

static void gemm_bits_finish(const struct gemm_bits *a, const struct gemm_bits *b,
			     uint32_t nb, struct spt_counters *c)
{
	uint32_t col, e;

	for (col = 0; col < nb; col++) {
		const uint64_t *va = a->v + (size_t)col * GEMM_BITS_STRIDE;
		const uint64_t *vb = b->v + (size_t)col * GEMM_BITS_STRIDE;

		for (e = 0; e < 32; e++)
			c->exec_macs += (va[e] + va[33]) * (vb[e] + vb[33]);
		c->blocks += va[32] * vb[32];
	}
}

static void gemm_bits_unpacked(struct gemm_bits *c, const struct spt_unpacked *u)
{
	uint64_t x;

	for (x = 0; x < u->nblocks; x++)
		if (u->exp[x] != SPT_EXP_ABSENT)
			gemm_bits_add(c, (uint32_t)(x % u->bpr), u->l2[x]);
}

/* Shapes of the operation, the same on every path. */
struct gemm_shape {
	uint32_t m, n, k, nb;
};

/* The reference path: full unpack, then the scalar kernel. */
static int gemm_run_scalar(const void *a, size_t a_len, const void *b, size_t b_len,
			   struct gemm_shape *sh, struct gemm_bits *ba,
			   struct gemm_bits *bb, float **c, float *y_user)
{
	struct spt_unpacked ua, ub;
	int err;

	memset(&ub, 0, sizeof(ub));
	err = spt_ct_unpack(a, a_len, &ua);
	if (err)
		return err;
	err = spt_ct_unpack(b, b_len, &ub);
	if (err)
		goto out;
	err = -EINVAL;
	if (ua.cols != ub.cols)
		goto out;
	sh->m = ua.rows;
	sh->n = ub.rows;
	sh->k = ua.cols;
	sh->nb = ua.bpr;
	err = -ENOMEM;
	if (gemm_bits_init(ba, sh->nb) || gemm_bits_init(bb, sh->nb))
		goto out;
	gemm_bits_unpacked(ba, &ua);
	gemm_bits_unpacked(bb, &ub);
	*c = y_user ? y_user : malloc((size_t)sh->m * sh->n * sizeof(float));
	if (!*c)
		goto out;
	spt_gemm_kernel_scalar(&ua, &ub, *c);
	err = 0;
out:
	spt_unpacked_free(&ua);
	spt_unpacked_free(&ub);
	return err;
}

/*
 * A compressed tensor checked by spt_ct_validate(), read in place: the SIMD
 * path re-lays it out straight from the stream, with no dense unpack, and
 * the ReLU-gradient mask is applied from it.
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

static int gemm_ct_open(const void *buf, size_t len, struct gemm_ct *c)
{
	struct spt_ct_info info;
	int err = spt_ct_validate(buf, len, &info);

	if (err)
		return err;
	c->rows = info.rows;
	c->cols = info.cols;
	c->bpr = info.blocks_per_row;
	c->tiles = info.tiles;
	c->nblocks = (uint64_t)info.rows * info.blocks_per_row;
	c->nonzeros = info.nonzeros;
	c->tab = (const uint8_t *)buf + SPT_CT_HEADER_SIZE;
	c->payload = c->tab + 4 * ((uint64_t)info.tiles + 1);
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
	it->q += 5 + (it->l2 == 0xffffffffu ? 32 : gemm_popcount32(it->l2));
}

static void gemm_cursor_init(struct gemm_cursor *it, const struct gemm_ct *c)
{
	memset(it, 0, sizeof(*it));
	it->c = c;
	gemm_cursor_next(it);
}

#ifndef SPT_NO_SIMD
static inline int32_t gemm_pack_pair(int8_t lo, int8_t hi)
{
	return (int32_t)((uint32_t)(uint16_t)lo | (uint32_t)(uint16_t)hi << 16);
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
	struct spt_gemm_entry *a_ent;	/* in item order */
	uint32_t *a_dest;	/* per block: index of its first entry in a_ent */
	float *a_scale;
	int32_t *b_pairs;	/* one column tile */
	float *b_scale;
	int8_t *stg;		/* 8 rows of B, dense */
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
	GEMM_TAKE(a_ent, nonzeros ? nonzeros : 1);
	GEMM_TAKE(a_dest, nblk);
	GEMM_TAKE(a_scale, nblk);
	GEMM_TAKE(b_pairs, (size_t)p->nb * SPT_GEMM_PAIRS * p->jt);
	GEMM_TAKE(b_scale, (size_t)p->nb * p->jt);
	GEMM_TAKE(stg, (size_t)8 * p->nb * 32);
	if (pad_c)
		GEMM_TAKE(cpad, (size_t)p->m * p->jt);
	if (own_y)
		GEMM_TAKE(y, (size_t)p->m * p->n);
#undef GEMM_TAKE
	return off;
}

/*
 * Work items of one row group and block chunk, sorted by entry count; each
 * item's entries get the next *n of a_ent (a_dest records where).
 */
static void gemm_sort_items(const struct spt_gemm_plan *p, const uint32_t *cnt,
			    uint32_t r0, uint32_t r1, uint32_t b0, uint32_t b1,
			    struct spt_gemm_item *out, uint32_t *dest, uint64_t *n)
{
	uint32_t pos[SPT_GEMM_PAIRS + 2] = { 0 }, r, b, c, i, total;

	for (r = r0; r < r1; r++)
		for (b = b0; b < b1; b++)
			pos[cnt[(uint64_t)r * p->nb + b] + 1]++;
	for (c = 1; c < SPT_GEMM_PAIRS + 2; c++)
		pos[c] += pos[c - 1];
	for (r = r0; r < r1; r++)
		for (b = b0; b < b1; b++) {
			uint64_t x = (uint64_t)r * p->nb + b;
			struct spt_gemm_item *it = &out[pos[cnt[x]]++];

			it->ent = (uint32_t)x;	/* the block, for now */
			it->cnt = (uint16_t)cnt[x];
			it->slot = (uint16_t)((r - r0) * p->kc + (b - b0));
		}
	total = (r1 - r0) * (b1 - b0);
	for (i = 0; i < total; i++) {
		dest[out[i].ent] = (uint32_t)*n;
		out[i].ent = (uint32_t)*n;
		*n += out[i].cnt;
	}
}

/*
 * A as entries (nonzero pairs) in item order and sorted work items; see
 * gemm_internal.h.  Two walks of the stream: counts, scales and counters
 * first, then, once the items are sorted, the entries in their places.
 */
static void gemm_plan_a(const struct gemm_ct *c, struct spt_gemm_plan *p,
			struct gemm_bufs *g, struct gemm_bits *bits)
{
	struct gemm_cursor it;
	uint64_t nblk = c->nblocks, n = 0;
	uint32_t gi, h, *cnt;

	/* a_dest holds the per-block entry counts until the sort */
	cnt = g->a_dest;
	memset(g->a_dest, 0, nblk * sizeof(*g->a_dest));
	memset(g->a_scale, 0, nblk * sizeof(*g->a_scale));
	for (gemm_cursor_init(&it, c); it.have; gemm_cursor_next(&it)) {
		g->a_scale[it.blk] = spt_exp2f_exact(it.ex - 6);
		cnt[it.blk] = gemm_popcount32((it.l2 | it.l2 >> 1) & 0x55555555u);
	}
	for (gi = 0; gi < p->ngroups; gi++) {
		uint32_t r0 = gi * p->rg, r1 = p->m - r0 < p->rg ? p->m : r0 + p->rg;

		for (h = 0; h < p->nchunks; h++) {
			uint32_t b0 = h * p->kc, b1 = p->nb - b0 < p->kc ? p->nb : b0 + p->kc;
			size_t first = (size_t)gi * p->rg * p->nb + (size_t)(r1 - r0) * b0;

			g->item_start[(size_t)gi * p->nchunks + h] = (uint32_t)first;
			/* counts are read before dest overwrites them: same block */
			gemm_sort_items(p, cnt, r0, r1, b0, b1, g->items + first, g->a_dest, &n);
		}
	}
	g->item_start[(size_t)p->ngroups * p->nchunks] = (uint32_t)nblk;
	for (gemm_cursor_init(&it, c); it.have; gemm_cursor_next(&it)) {
		struct spt_gemm_entry *e = g->a_ent + g->a_dest[it.blk];
		uint32_t off0 = it.col * SPT_GEMM_PAIRS * p->jt, pm;
		uint64_t *v = bits->v + (size_t)it.col * GEMM_BITS_STRIDE;
		int8_t k[32];

		/* the counters too (gemm_bits_add, folded into the pair loop) */
		v[32]++;
		if (it.l2 == 0xffffffffu) {
			v[33]++;
			spt_gemm_entries_full_avx2(it.vals, off0, p->jt, e);
			continue;
		}
		gemm_expand(&it, k);
		for (pm = (it.l2 | it.l2 >> 1) & 0x55555555u; pm; pm &= pm - 1) {
			unsigned int b = (unsigned int)__builtin_ctz(pm);

			v[b] += it.l2 >> b & 1;
			v[b + 1] += it.l2 >> (b + 1) & 1;
			e->val = gemm_pack_pair(k[b], k[b + 1]);
			e->off = off0 + b / 2 * p->jt;
			e++;
		}
	}
}

/*
 * B's column tile t (rows t*jt ..) as int16 pairs and scales, see
 * gemm_internal.h: eight rows at a time are expanded into a dense staging
 * area (absent blocks and padding rows: the gaps between stored blocks,
 * zeroed) and packed with 8 x 8 transposes.  The cursor walks B's stream
 * once over all tiles.
 */
static void gemm_pack_tile(struct gemm_cursor *it, const struct gemm_ct *c,
			   const struct spt_gemm_plan *p, uint32_t t,
			   struct gemm_bufs *g, struct gemm_bits *bits)
{
	uint32_t nb = c->bpr, jt = p->jt, jj;

	memset(g->b_scale, 0, (size_t)nb * jt * sizeof(float));
	for (jj = 0; jj < jt; jj += 8) {
		uint64_t j0 = (uint64_t)t * jt + jj;
		size_t done = 0;	/* staged blocks written; the gaps are absent */

		for (; it->have && it->row < j0 + 8; gemm_cursor_next(it)) {
			uint32_t col = it->col;
			uint32_t r = (uint32_t)(it->row - j0);
			size_t at = (size_t)r * nb + col;

			memset(g->stg + done * 32, 0, (at - done) * 32);
			gemm_bits_add(bits, col, it->l2);
			g->b_scale[(size_t)col * jt + jj + r] = spt_exp2f_exact(it->ex - 6);
			gemm_expand(it, g->stg + at * 32);
			done = at + 1;
		}
		memset(g->stg + done * 32, 0, ((size_t)8 * nb - done) * 32);
		spt_gemm_pack_b_avx2(g->stg, nb, jt, jj, g->b_pairs);
	}
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
		p->jt = SPT_GEMM_JT_AVX2;
		p->rg = SPT_GEMM_RG_AVX2;
		p->kc = SPT_GEMM_KC_AVX2;
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
static int gemm_run_simd(enum spt_isa isa, const void *a, size_t a_len,
			 const void *b, size_t b_len, struct gemm_shape *sh,
			 struct gemm_bits *ba, struct gemm_bits *bb, float **c,
			 float *y_user, void **arena)
{
	struct gemm_bufs g;
	struct gemm_ct ca, cb;
	struct gemm_cursor cur;
	struct spt_gemm_plan p;
	uint32_t t, i;
	int err;

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
	if (gemm_bits_init(ba, sh->nb) || gemm_bits_init(bb, sh->nb))
		return -ENOMEM;
	memset(&g, 0, sizeof(g));
	gemm_plan_init(isa, &ca, &cb, &p);
	/* the kernels write whole tiles: a partial last tile goes to cpad first */
	g.arena = aligned_alloc(64, gemm_bufs_carve(&g, &p, ca.nblocks, ca.nonzeros,
						    p.n % p.jt != 0, !y_user));
	if (!g.arena)
		return -ENOMEM;
	*arena = g.arena;
	gemm_bufs_carve(&g, &p, ca.nblocks, ca.nonzeros, p.n % p.jt != 0, !y_user);
	*c = y_user ? y_user : g.y;
	gemm_plan_a(&ca, &p, &g, ba);
	p.item_start = g.item_start;
	p.items = g.items;
	p.a_ent = g.a_ent;
	p.a_scale = g.a_scale;
	p.b_pairs = g.b_pairs;
	p.b_scale = g.b_scale;
	gemm_cursor_init(&cur, &cb);
	for (t = 0; t < p.ntiles; t++) {
		int part = (t + 1) * p.jt > p.n;

		p.c = part ? g.cpad : *c + (size_t)t * p.jt;
		p.ldc = part ? p.jt : p.n;
		gemm_pack_tile(&cur, &cb, &p, t, &g, bb);
		if (isa == SPT_ISA_AVX512)
			spt_gemm_kernel_avx512(&p);
		else
			spt_gemm_kernel_avx2(&p);
		for (i = 0; part && i < p.m; i++)
			memcpy(*c + (size_t)i * p.n + (size_t)t * p.jt, g.cpad + (size_t)i * p.jt,
			       (p.n - t * p.jt) * sizeof(float));
	}
	return 0;
}
#endif

/* Clear the elements of a run of n <= 32 whose bit in keep is clear. */
static inline void gemm_mask_run(float *y, uint32_t n, uint32_t keep, int simd)
{
	uint32_t clear = ~keep & (n == 32 ? 0xffffffffu : (1u << n) - 1);

#ifndef SPT_NO_SIMD
	if (simd && n == 32) {
		spt_gemm_mask32_avx2(y, keep);
		return;
	}
#else
	(void)simd;
#endif
	for (; clear; clear &= clear - 1)
		y[__builtin_ctz(clear)] = 0.0f;
}

/*
 * ReLU gradient: y is zero wherever the mask's element is not stored.  The
 * mask is read in place; its blocks cover consecutive runs of y in storage
 * order (a ragged block is followed by the next row), so the runs between
 * two stored blocks are cleared whole.
 */
static int gemm_mask_apply(const struct spt_gemm_epilogue *ep, uint32_t m, uint32_t n,
			   float *y, uint64_t *bytes_read, int simd)
{
	struct gemm_cursor it;
	struct gemm_ct c;
	size_t done = 0, total = (size_t)m * n;
	int err = gemm_ct_open(ep->mask, ep->mask_len, &c);

	if (err)
		return err;
	if (c.rows != m || c.cols != n)
		return -EINVAL;
	for (gemm_cursor_init(&it, &c); it.have; gemm_cursor_next(&it)) {
		size_t at = (size_t)it.row * n + (size_t)it.col * SPT_BLOCK_ELEMS;
		uint32_t len = n - it.col * SPT_BLOCK_ELEMS;

		if (len > SPT_BLOCK_ELEMS)
			len = SPT_BLOCK_ELEMS;
		memset(y + done, 0, (at - done) * sizeof(float));
		gemm_mask_run(y + at, len, it.l2, simd);
		done = at + len;
	}
	memset(y + done, 0, (total - done) * sizeof(float));
	*bytes_read += ep->mask_len;
	return 0;
}

/* scale, bias, activation: in that order, per element. */
static int gemm_epilogue(const struct spt_gemm_epilogue *ep, uint32_t m, uint32_t n,
			 float *y, uint64_t *bytes_read, int simd)
{
	int do_scale, relu;
	size_t i, j;

	if (!ep)
		return 0;
	do_scale = ep->scale != 0.0f && ep->scale != 1.0f;
	relu = ep->act == SPT_ACT_RELU;
	if (do_scale || ep->bias || relu) {
#ifndef SPT_NO_SIMD
		if (simd)
			spt_gemm_epilogue_avx2(y, m, n, do_scale, ep->scale, ep->bias, relu);
		else
#endif
		for (i = 0; i < m; i++)
			for (j = 0; j < n; j++) {
				float v = y[i * n + j];

				if (do_scale)
					v *= ep->scale;
				if (ep->bias)
					v += ep->bias[j];
				/* -0 becomes +0; NaN stays NaN (and the encoder rejects it). */
				if (relu && v <= 0.0f)
					v = 0.0f;
				y[i * n + j] = v;
			}
	}
	if (ep->act == SPT_ACT_RELU_GRAD)
		return gemm_mask_apply(ep, m, n, y, bytes_read, simd);
	return 0;
}

static int gemm_args_check(enum spt_pass pass, const void *a, const void *b,
			   const struct spt_gemm_epilogue *ep, const struct spt_gemm_out *out)
{
	if (pass != SPT_PASS_FWD && pass != SPT_PASS_BWD && pass != SPT_PASS_WG)
		return -EINVAL;
	if (!a || !b || !out || (!out->y && !out->ct))
		return -EINVAL;
	if (ep) {
		if (!isfinite(ep->scale))
			return -EINVAL;
		if (ep->act != SPT_ACT_NONE && ep->act != SPT_ACT_RELU &&
		    ep->act != SPT_ACT_RELU_GRAD)
			return -EINVAL;
		if (ep->act == SPT_ACT_RELU_GRAD && !ep->mask)
			return -EINVAL;
	}
	if (out->enc.round != SPT_ROUND_EVEN && out->enc.round != SPT_ROUND_STOCHASTIC)
		return -EINVAL;
	return gemm_prune_check(&out->enc.prune);
}

/*
 * out->y, when set, receives the result after the epilogue's scale, bias
 * and activation and after out->enc's pruning (the encoder's rule and random
 * draws, element index = row * N + column), before quantisation; so out->ct
 * decodes to spt_bfp8_quantize() of y.  The pass only names the operation:
 * all three run the same kernel on the operands as given.
 */
int spt_gemm(enum spt_pass pass, const void *a, size_t a_len,
	     const void *b, size_t b_len, const struct spt_gemm_epilogue *ep,
	     struct spt_gemm_out *out, struct spt_counters *cnt)
{
	struct gemm_bits ba = { NULL }, bb = { NULL };
	struct gemm_shape sh = { 0, 0, 0, 0 };
	struct spt_counters c;
	enum spt_isa isa = spt_core_get_isa();
	size_t total, i;
	float *y = NULL;
	void *arena = NULL;
	int err;

	err = gemm_args_check(pass, a, b, ep, out);
	if (err)
		return err;
#ifndef SPT_NO_SIMD
	err = isa != SPT_ISA_SCALAR ?
	      gemm_run_simd(isa, a, a_len, b, b_len, &sh, &ba, &bb, &y, out->y, &arena) : 1;
	if (err == 1)
#else
	(void)isa;
#endif
		err = gemm_run_scalar(a, a_len, b, b_len, &sh, &ba, &bb, &y, out->y);
	if (err)
		goto out_free;
	total = (size_t)sh.m * sh.n;
	memset(&c, 0, sizeof(c));
	c.dense_macs = (uint64_t)sh.m * sh.n * sh.k;
	c.bytes_read = a_len + b_len;
	c.dense_fp16_bytes = 2 * ((uint64_t)sh.m * sh.k + (uint64_t)sh.n * sh.k + total);
	c.elements_out = total;
	gemm_bits_finish(&ba, &bb, sh.nb, &c);
	err = gemm_epilogue(ep, sh.m, sh.n, y, &c.bytes_read, isa != SPT_ISA_SCALAR);
	if (err)
		goto out_free;

	out->ct_len = 0;
	memset(&out->stats, 0, sizeof(out->stats));
	if (out->ct) {
		err = spt_ct_encode(y, sh.m, sh.n, &out->enc, out->ct, out->ct_cap,
				    &out->ct_len, &out->stats);
		if (err)
			goto out_free;
		c.bytes_written += out->ct_len;
	}
	if (out->y) {
		/* y holds the values the encoder quantised: after pruning. */
		if (out->enc.prune.mode != SPT_PRUNE_OFF)
			for (i = 0; i < total; i++)
				y[i] = spt_prune_value(&out->enc.prune, y[i], i);
		c.bytes_written += 4 * (uint64_t)total;
	}
	if (cnt)
		*cnt = c;
out_free:
	free(ba.v);
	free(bb.v);
	if (arena)
		free(arena);	/* y, if ours, lived there */
	else if (y != out->y)
		free(y);
	return err;
}
