/* SPDX-License-Identifier: MIT */
/*
 * im2col in the compressed domain (spt_im2col_ct): the patch matrix of a
 * compressed image written record by record from the image's records.
 *
 * Why the records carry over.  The encoder gives a block the exponent
 * E = floor(log2(max |x|)) (clamped to [-127, 127]) and k = x * 2^(6-E)
 * rounded; so a block it wrote has max |k| in [64, 127], unless E = -127.
 * Call such a record canonical: encoding its decoded values k * 2^(E-6)
 * gives it back unchanged (the values are exact, and so is the product).
 * A valid record that is not canonical is made so by k << s, E - s, which
 * decode maps to the same values.  A patch row holds, for each kernel
 * position, a pixel's c channels (+0 in the padding), so:
 *  - c a multiple of 32: each patch block is one pixel block, canonical;
 *  - c = 16: a patch block joins the 16 channels of two pixels.  With both
 *    halves canonical, the encoder's exponent is the larger of the two
 *    (the larger half holds the block's maximum), so that half is kept and
 *    the other's k become k * 2^-d, d the exponent difference, rounded to
 *    nearest even: the exact product the encoder rounds.  Values that
 *    round to 0 are not stored.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "codec_simd.h"
#include "ct_internal.h"

/*
 * Each image block once, canonical, its values inline (room for @vals = 16
 * or 32; the bytes past n are copied along but never used), so a patch
 * block costs no branch on where its halves are; one more, absent, for the
 * padding.  An absent block has l2 = 0, n = 0 and E8M0 byte 0 (below every
 * stored one).
 */
struct pdesc {
	uint32_t l2;
	uint8_t e8, n, pad[2];
	int8_t v[];
};

AINLINE struct pdesc *pdesc_at(uint8_t *base, size_t stride, uint64_t i)
{
	return (struct pdesc *)(void *)(base + i * stride);
}

/*
 * The record at @q (mask @l2 of @n values, readable up to @end) as a
 * canonical descriptor; @canon: the records are the encoder's (trusted),
 * canonical already.
 */
AINLINE void pdesc_fill(struct pdesc *d, const uint8_t *q, uint32_t l2, uint32_t n,
			const uint8_t *end, const uint32_t vals, int canon)
{
	uint32_t i, amax = 0, s = 0;
	int e;

	d->l2 = l2;
	d->n = (uint8_t)n;
	d->e8 = q[4];
	/* the values past n are never read as values (the record copies run over them) */
	if (end - (q + 5) >= (ptrdiff_t)vals)
		memcpy(d->v, q + 5, vals);
	else
		memcpy(d->v, q + 5, d->n);
	if (canon)
		return;
	for (i = 0; i < d->n; i++) {
		uint32_t a = (uint32_t)(d->v[i] < 0 ? -d->v[i] : d->v[i]);

		amax = a > amax ? a : amax;
	}
	e = (int)d->e8 - SPT_E8M0_BIAS;
	while ((amax << s) < 64 && e - (int)s > SPT_EXP_MIN)
		s++;
	for (i = 0; s && i < d->n; i++)
		d->v[i] = (int8_t)(d->v[i] * (1 << s));	/* |k| << s < 128 */
	d->e8 = (uint8_t)(d->e8 - s);
}

/*
 * The image's blocks as descriptors (see struct pdesc), from the checked
 * tensor.  In trusted mode only its header and tile table were checked:
 * a record that would take this walk out of the tensor or out of a
 * descriptor is -EBADMSG (an encoder-written tensor has none).
 */
AINLINE int pdesc_walk(uint8_t *base, const uint8_t *p, const struct ct_hdr *h,
		       const uint32_t vals, size_t stride, int canon)
{
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + h->g.payload_off;
	const uint8_t *end = p + h->total;
	uint64_t t, j;

	for (t = 0; t < h->g.tiles; t++) {
		const uint8_t *q = pl + spt_ld32(tab + 4 * t);
		uint64_t l1 = spt_ld64(q), n = h->g.nblocks - t * SPT_TILE_BLOCKS, m;

		/* the tile's absent blocks */
		m = n < SPT_TILE_BLOCKS ? ~l1 & ((1ull << n) - 1) : ~l1;
		for (; m; m &= m - 1) {
			j = t * SPT_TILE_BLOCKS + (uint64_t)__builtin_ctzll(m);
			memset(pdesc_at(base, stride, j), 0, sizeof(struct pdesc));
		}
		for (q += 8; l1; l1 &= l1 - 1) {
			uint32_t l2, cnt;

			j = t * SPT_TILE_BLOCKS + (uint64_t)__builtin_ctzll(l1);
			if (j >= h->g.nblocks || end - q < 5)
				return -EBADMSG;
			l2 = spt_ld32(q);
			cnt = ct_pop32(l2);
			if (cnt > vals || (uint64_t)(end - q) < 5 + cnt)
				return -EBADMSG;
			pdesc_fill(pdesc_at(base, stride, j), q, l2, cnt, end, vals, canon);
			q += 5 + cnt;
		}
	}
	/* and the absent block the padding reads */
	memset(pdesc_at(base, stride, h->g.nblocks), 0, sizeof(struct pdesc));
	return 0;
}

/*
 * The image's blocks as descriptors (see struct pdesc), from the checked
 * tensor, and one more: absent.
 */
static int pdesc_index(const uint8_t *p, const struct ct_hdr *h, uint32_t vals, size_t stride,
		       int canon, uint8_t **out)
{
	uint8_t *base = malloc((h->g.nblocks + 1) * stride);
	int err;

	if (!base)
		return -ENOMEM;
	if (vals == 16)
		err = pdesc_walk(base, p, h, 16, stride, canon);
	else
		err = pdesc_walk(base, p, h, SPT_BLOCK_ELEMS, stride, canon);
	if (err) {
		free(base);
		return err;
	}
	*out = base;
	return 0;
}

/* k * 2^-d rounded to nearest, ties to even (|k| <= 127, d >= 1). */
AINLINE int8_t shift_even(int8_t k, uint32_t d)
{
	uint32_t a = (uint32_t)(k < 0 ? -k : k), q;

	if (d >= 8)
		return 0;
	q = (a + (1u << (d - 1)) - 1 + ((a >> d) & 1)) >> d;
	return (int8_t)(k < 0 ? -(int)q : (int)q);
}

/*
 * A half of a patch block whose exponent is @d below the block's: its
 * values rounded to the block's exponent into @v (zero padded to 16), the
 * zeros dropped; returns its new mask.
 */
static uint32_t half_lower(const struct pdesc *h, uint32_t d, int8_t v[16], uint32_t *n)
{
	uint32_t m, l2 = 0, i = 0, k = 0;

	memset(v, 0, 16);
	for (m = h->l2; m; m &= m - 1) {
		int8_t q = shift_even(h->v[i++], d);

		if (q) {
			l2 |= m & -m;
			v[k++] = q;
		}
	}
	*n = k;
	return l2;
}

/*
 * The output writer: encode_scalar()'s tile layout and checks (codec.c).
 * Values go 16 or 32 bytes at a time while the output has room for that.
 */
struct ctw {
	uint8_t *p;
	size_t cap;
	const struct ct_geom *g;
	uint64_t pos, l1pos, l1, blk, nzb, nnz;
};

AINLINE int ctw_tile(struct ctw *w)
{
	uint64_t t = w->blk / SPT_TILE_BLOCKS;

	if (w->blk)
		spt_st64(w->p + w->l1pos, w->l1);
	if (w->pos - w->g->payload_off > UINT32_MAX)
		return -E2BIG;
	spt_st32(w->p + SPT_CT_HEADER_SIZE + 4 * t, (uint32_t)(w->pos - w->g->payload_off));
	if (w->cap - w->pos < 8)
		return -ENOSPC;
	w->l1pos = w->pos;
	w->l1 = 0;
	w->pos += 8;
	return 0;
}

/*
 * The next block: mask @l2 (0: absent), E8M0 byte @e8, values @v0 (@n0 of
 * @w0 readable bytes) then @v1 (@n1 of 16).
 */
AINLINE int ctw_block(struct ctw *w, uint32_t l2, uint8_t e8, const int8_t *v0,
			    uint32_t n0, const int8_t *v1, uint32_t n1, const uint32_t w0)
{
	uint8_t *dst = w->p + w->pos;
	int err;

	if (w->blk % SPT_TILE_BLOCKS == 0) {
		err = ctw_tile(w);
		if (err)
			return err;
		dst = w->p + w->pos;
	}
	w->blk++;
	if (!l2)
		return 0;
	if (w->cap - w->pos < 5 + n0 + n1)
		return -ENOSPC;
	spt_st32(dst, l2);
	dst[4] = e8;
	if (w->cap - w->pos >= 5 + 32 + 16) {
		memcpy(dst + 5, v0, w0);
		memcpy(dst + 5 + n0, v1, 16);
	} else {
		memcpy(dst + 5, v0, n0);
		memcpy(dst + 5 + n0, v1, n1);
	}
	w->pos += 5 + n0 + n1;
	w->l1 |= 1ull << ((w->blk - 1) % SPT_TILE_BLOCKS);
	w->nzb++;
	w->nnz += n0 + n1;
	return 0;
}

/* A patch block of two 16-channel halves @a and @b (either may be absent). */
AINLINE int pair_block(struct ctw *w, const struct pdesc *a, const struct pdesc *b)
{
	int8_t va[16], vb[16];
	uint32_t la = a->l2, lb = b->l2, na = a->n, nb = b->n;

	if (a->e8 == b->e8 || !la || !lb)
		return ctw_block(w, la | lb << 16, a->e8 > b->e8 ? a->e8 : b->e8, a->v, na,
				 b->v, nb, 16);
	if (a->e8 < b->e8) {
		la = half_lower(a, (uint32_t)(b->e8 - a->e8), va, &na);
		return ctw_block(w, la | lb << 16, b->e8, va, na, b->v, nb, 16);
	}
	lb = half_lower(b, (uint32_t)(a->e8 - b->e8), vb, &nb);
	return ctw_block(w, la | lb << 16, a->e8, a->v, na, vb, nb, 16);
}

int spt_im2col_ct(const struct spt_conv_shape *s, const void *img, size_t img_len,
		  void *out, size_t cap, size_t *out_len)
{
	static const int8_t none[16];
	struct spt_conv_dims d;
	struct ct_geom g;
	struct ct_hdr h;
	struct ctw w;
	uint8_t *base;
	uint64_t pix[SPT_CONV_K_MAX * SPT_CONV_K_MAX + 1];
	int64_t row[SPT_CONV_K_MAX];
	uint32_t b, oy, ox, ky, kx, kk, j, vals, cb;
	size_t stride;
	int err;

	if (!img || !out || !out_len)
		return -EINVAL;
	err = spt_conv_shape_check(s, &d);
	if (err)
		return err;
	if (s->c % SPT_BLOCK_ELEMS && s->c != 16)
		return -EOPNOTSUPP;
	err = spt_ct_open(img, img_len, &h);
	if (err)
		return err;
	if (h.g.cols != s->c || h.g.rows != (uint64_t)s->n * s->h * s->w)
		return -EINVAL;
	if (d.rows > UINT32_MAX || d.cols > UINT32_MAX)
		return -E2BIG;
	err = ct_out_begin((uint32_t)d.rows, (uint32_t)d.cols, cap, &g);
	if (err)
		return err;
	vals = s->c == 16 ? 16 : SPT_BLOCK_ELEMS;
	cb = s->c == 16 ? 1 : s->c / SPT_BLOCK_ELEMS;
	stride = sizeof(struct pdesc) + vals;
	err = pdesc_index(img, &h, vals, stride, ct_is_trusted(), &base);
	if (err)
		return err;
	memset(&w, 0, sizeof(w));
	w.p = out;
	w.cap = cap;
	w.g = &g;
	w.pos = g.payload_off;
	kk = s->k * s->k;
	pix[kk] = h.g.nblocks;	/* a 16-channel row's odd last half: absent */
	for (b = 0; b < s->n && !err; b++)
		for (oy = 0; oy < d.oh && !err; oy++) {
			/* each kernel row's first pixel, -1 in the padding */
			for (ky = 0; ky < s->k; ky++) {
				int64_t iy = (int64_t)oy * s->stride + ky - s->pad;

				row[ky] = iy < 0 || iy >= s->h ? -1 :
					  ((int64_t)b * s->h + iy) * s->w;
			}
			for (ox = 0; ox < d.ow && !err; ox++) {
				int64_t x0 = (int64_t)ox * s->stride - s->pad;

				/* each kernel position's first block, the absent one in the padding */
				for (ky = 0; ky < s->k; ky++)
					for (kx = 0; kx < s->k; kx++)
						pix[ky * s->k + kx] =
							row[ky] < 0 || x0 + kx < 0 ||
							x0 + kx >= s->w ? h.g.nblocks :
							(uint64_t)(row[ky] + x0 + kx) * cb;
				if (s->c == 16) {
					for (j = 0; j < kk && !err; j += 2)
						err = pair_block(&w, pdesc_at(base, stride, pix[j]),
								 pdesc_at(base, stride, pix[j + 1]));
					continue;
				}
				for (j = 0; j < kk * cb && !err; j++) {
					const struct pdesc *a = pdesc_at(base, stride,
									 pix[j / cb] + j % cb);

					/* an absent pixel's blocks: the absent one, every time */
					if (pix[j / cb] == h.g.nblocks)
						a = pdesc_at(base, stride, h.g.nblocks);
					err = ctw_block(&w, a->l2, a->e8, a->v, a->n, none, 0,
							SPT_BLOCK_ELEMS);
				}
			}
		}
	free(base);
	if (err)
		return err;
	if (w.blk)
		spt_st64(w.p + w.l1pos, w.l1);
	return ct_out_end(w.p, &g, w.nzb, w.nnz, w.pos, out_len);
}
