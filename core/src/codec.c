/* SPDX-License-Identifier: MIT */
/*
 * The hierarchical bit-mask compressed tensor format (uapi/spt_format.h):
 * encode with fused threshold pruning, validate, decode, unpack, transpose.
 */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "ct_internal.h"
#include "codec_block.h"
#include "codec_lut.h"
#include "codec_simd.h"
#include "ct_transpose.h"
#include "isa_internal.h"

static int geom_init(uint32_t rows, uint32_t cols, struct ct_geom *g)
{
	if (rows == 0 || cols == 0)
		return -EINVAL;
	if (rows > SPT_CT_MAX_DIM || cols > SPT_CT_MAX_DIM)
		return -E2BIG;
	g->rows = rows;
	g->cols = cols;
	g->bpr = (cols + SPT_BLOCK_ELEMS - 1) / SPT_BLOCK_ELEMS;
	g->nblocks = (uint64_t)rows * g->bpr;
	g->tiles = (g->nblocks + SPT_TILE_BLOCKS - 1) / SPT_TILE_BLOCKS;
	g->payload_off = SPT_CT_HEADER_SIZE + 4 * (g->tiles + 1);
	return 0;
}

uint64_t ct_size(const struct ct_geom *g, uint64_t nzb, uint64_t nnz)
{
	return g->payload_off + 8 * g->tiles + 5 * nzb + nnz;
}

void ct_acc_stats(const struct ct_enc_acc *acc, uint32_t rows, uint32_t cols,
		  struct spt_tensor_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->elements = (uint64_t)rows * cols;
	st->natural_zeros = acc->natural_zeros;
	st->pruned = acc->pruned;
	st->nonzeros = acc->nonzeros;
	st->nz_blocks = acc->nz_blocks;
	/* every element is a natural zero, pruned, stored or underflowed */
	st->underflow = st->elements - acc->natural_zeros - acc->pruned - acc->nonzeros;
	st->sum_abs = acc->sum_abs;
	st->sum_abs_kept = acc->sum_abs_kept;
}

size_t spt_ct_bound(uint32_t rows, uint32_t cols)
{
	struct ct_geom g;
	uint64_t b;

	if (geom_init(rows, cols, &g))
		return 0;
	b = ct_size(&g, g.nblocks, g.nblocks * SPT_BLOCK_ELEMS);
	if (b > SIZE_MAX)
		return 0;
	return (size_t)b;
}

void spt_encode_opts_init(struct spt_encode_opts *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->round = SPT_ROUND_EVEN;
	o->prune.mode = SPT_PRUNE_OFF;
}

static int opts_check(const struct spt_encode_opts *o)
{
	if (o->round != SPT_ROUND_EVEN && o->round != SPT_ROUND_STOCHASTIC)
		return -EINVAL;
	switch (o->prune.mode) {
	case SPT_PRUNE_OFF:
		return 0;
	case SPT_PRUNE_DETERMINISTIC:
	case SPT_PRUNE_STOCHASTIC:
		if (!isfinite(o->prune.tau) || o->prune.tau < 0.0f)
			return -EINVAL;
		return 0;
	}
	return -EINVAL;
}

/* Sum of 32 lanes in the fixed order every path uses (codec_block.h). */
float spt_block_sum(const float v[32])
{
	return block_sum32(v);
}

/*
 * Prune and quantise one block, the general (stochastic) reference.  Returns
 * its L2 mask (0: absent block) and fills k/exp; -EDOM through *err on NaN/Inf.
 */
float spt_prune_value(const struct spt_prune *pr, float x, uint64_t index)
{
	float a = fabsf(x);

	if (x == 0.0f)
		return 0.0f;
	if (pr->mode == SPT_PRUNE_OFF || !(a < pr->tau))
		return x;
	if (pr->mode == SPT_PRUNE_STOCHASTIC &&
	    spt_rng_unit(pr->seed ^ SPT_PRUNE_SALT, index) < a / pr->tau)
		return copysignf(pr->tau, x);
	return 0.0f;
}

static uint32_t encode_block(struct enc_state *s, const float *x, unsigned int n,
			     uint64_t index, int8_t k[32], int *exp, int *err)
{
	const struct spt_prune *pr = &s->o->prune;
	float v[32], a_all[32], a_kept[32];
	float amax = 0.0f;
	uint32_t l2 = 0;
	unsigned int i;

	for (i = 0; i < n; i++) {
		float xi = x[i], a = fabsf(xi);

		if (!isfinite(a)) {
			*err = -EDOM;
			return 0;
		}
		a_all[i] = a;
		if (xi == 0.0f) {
			s->st.natural_zeros++;
			xi = 0.0f;
		} else if (pr->mode != SPT_PRUNE_OFF && a < pr->tau) {
			xi = spt_prune_value(pr, xi, index + i);
			a = fabsf(xi);
			if (xi == 0.0f)
				s->st.pruned++;
		}
		v[i] = xi;
		a_kept[i] = a;
		if (a > amax)
			amax = a;
	}
	for (; i < SPT_BLOCK_ELEMS; i++)
		v[i] = a_all[i] = a_kept[i] = 0.0f;
	s->st.sum_abs += spt_block_sum(a_all);
	s->st.sum_abs_kept += spt_block_sum(a_kept);
	if (amax == 0.0f)
		return 0;
	*exp = spt_bfp8_exponent(amax);
	spt_bfp8_quantize_known(v, n, *exp, s->o->round, s->o->round_seed, index, k);
	for (i = 0; i < n; i++) {
		if (k[i])
			l2 |= 1u << i;
		else if (v[i] != 0.0f)
			s->st.underflow++;
	}
	return l2;
}

static void header_write(uint8_t *p, const struct ct_geom *g, uint64_t nzb,
			 uint64_t nnz, uint32_t payload, uint64_t total)
{
	memset(p, 0, SPT_CT_HEADER_SIZE);
	spt_st32(p + 0, SPT_CT_MAGIC);
	p[4] = SPT_CT_VERSION & 0xff;
	p[5] = SPT_CT_VERSION >> 8;
	spt_st32(p + 8, g->rows);
	spt_st32(p + 12, g->cols);
	spt_st32(p + 16, g->bpr);
	spt_st32(p + 20, (uint32_t)g->tiles);
	spt_st64(p + 24, nzb);
	spt_st64(p + 32, nnz);
	spt_st32(p + 40, payload);
	spt_st64(p + 48, total);
}

int ct_out_begin(uint32_t rows, uint32_t cols, size_t cap, struct ct_geom *g)
{
	int err = geom_init(rows, cols, g);

	if (err)
		return err;
	if (g->tiles > UINT32_MAX)
		return -E2BIG;
	if (cap < g->payload_off)
		return -ENOSPC;
	return 0;
}

int ct_out_end(uint8_t *p, const struct ct_geom *g, uint64_t nzb, uint64_t nnz, uint64_t pos,
	       size_t *out_len)
{
	if (pos - g->payload_off > UINT32_MAX)
		return -E2BIG;
	spt_st32(p + SPT_CT_HEADER_SIZE + 4 * g->tiles, (uint32_t)(pos - g->payload_off));
	header_write(p, g, nzb, nnz, (uint32_t)(pos - g->payload_off), pos);
	*out_len = (size_t)pos;
	return 0;
}

/* The scalar tile loop; returns 0 or the first error, as every path does. */
static int encode_scalar(struct enc_state *s, const float *in, const struct ct_geom *g,
			 uint8_t *p, size_t cap, uint64_t *pos_io)
{
	const struct spt_encode_opts *o = s->o;
	int sprune = o->prune.mode == SPT_PRUNE_STOCHASTIC;
	float tau = o->prune.mode != SPT_PRUNE_OFF ? o->prune.tau : 0.0f;
	uint8_t *table = p + SPT_CT_HEADER_SIZE;
	uint64_t pos = *pos_io, t;
	uint32_t r = 0, c = 0;
	int err = 0;

	for (t = 0; t < g->tiles; t++) {
		uint64_t b, b0 = t * SPT_TILE_BLOCKS, b1 = b0 + SPT_TILE_BLOCKS;
		uint64_t l1 = 0, l1pos = pos;

		if (b1 > g->nblocks)
			b1 = g->nblocks;
		if (pos - g->payload_off > UINT32_MAX)
			return -E2BIG;
		spt_st32(table + 4 * t, (uint32_t)(pos - g->payload_off));
		if (cap - pos < 8)
			return -ENOSPC;
		pos += 8;
		for (b = b0; b < b1; b++) {
			uint32_t c0 = c * SPT_BLOCK_ELEMS;
			unsigned int n = g->cols - c0 < SPT_BLOCK_ELEMS ? g->cols - c0 : SPT_BLOCK_ELEMS;
			uint64_t index = (uint64_t)r * g->cols + c0;
			uint32_t l2, m;
			int8_t k[32];
			int e = 0;
			unsigned int cnt;

			if (!sprune)
				l2 = encode_block_vec(s, in + index, n, index, tau, k, &e, &err);
			else
				l2 = encode_block(s, in + index, n, index, k, &e, &err);
			if (err)
				return err;
			if (++c == g->bpr) {
				c = 0;
				r++;
			}
			if (!l2)
				continue;
			cnt = ct_pop32(l2);
			if (cap - pos < 5 + cnt)
				return -ENOSPC;
			spt_st32(p + pos, l2);
			p[pos + 4] = (uint8_t)(e + SPT_E8M0_BIAS);
			pos += 5;
			for (m = l2; m; m &= m - 1)
				p[pos++] = (uint8_t)k[__builtin_ctz(m)];
			l1 |= 1ull << (b - b0);
			s->st.nz_blocks++;
			s->st.nonzeros += cnt;
		}
		spt_st64(p + l1pos, l1);
	}
	*pos_io = pos;
	return 0;
}

/* spt_ct_encode(); with @tx (AVX2, cols <= 32) the transpose's strips filled too. */
static int encode_impl(const float *in, uint32_t rows, uint32_t cols,
		       const struct spt_encode_opts *o, void *out, size_t cap,
		       size_t *out_len, struct spt_tensor_stats *stats, struct ctt *tx)
{
	struct spt_encode_opts def;
	struct enc_state s;
	struct ct_geom g;
	uint8_t *p = out;
	uint64_t pos;
	int err = 0;

	if (!o) {
		spt_encode_opts_init(&def);
		o = &def;
	}
	if (!in || !out || !out_len)
		return -EINVAL;
	err = opts_check(o);
	if (err)
		return err;
	err = ct_out_begin(rows, cols, cap, &g);
	if (err)
		return err;
	memset(&s, 0, sizeof(s));
	s.o = o;
	pos = g.payload_off;
#ifndef SPT_NO_SIMD
	if (spt_use_avx2()) {
		struct ct_enc_acc acc = { 0, 0, 0, 0, 0.0, 0.0 };
		float tau = o->prune.mode != SPT_PRUNE_OFF ? o->prune.tau : 0.0f;
		int sprune = o->prune.mode == SPT_PRUNE_STOCHASTIC;
		uint64_t pseed = o->prune.seed ^ SPT_PRUNE_SALT;

		err = tx ? spt_ct_encode_narrow_avx2(in, &g, tau, sprune, pseed, o->round,
						     o->round_seed, p, cap, &pos, &acc, tx) :
		      spt_ct_encode_avx2(in, &g, tau, sprune, pseed, o->round, o->round_seed, p,
					 cap, &pos, &acc);
		ct_acc_stats(&acc, rows, cols, &s.st);
	} else
#endif
	{
		err = encode_scalar(&s, in, &g, p, cap, &pos);
	}
	if (err)
		return err;
	err = ct_out_end(p, &g, s.st.nz_blocks, s.st.nonzeros, pos, out_len);
	if (err)
		return err;
	if (stats) {
		s.st.elements = (uint64_t)rows * cols;
		s.st.bytes = pos;
		*stats = s.st;
	}
	return 0;
}

int spt_ct_encode(const float *in, uint32_t rows, uint32_t cols,
		  const struct spt_encode_opts *o, void *out, size_t cap,
		  size_t *out_len, struct spt_tensor_stats *stats)
{
	return encode_impl(in, rows, cols, o, out, cap, out_len, stats, NULL);
}

int spt_ct_encode_t(const float *in, uint32_t rows, uint32_t cols,
		    const struct spt_encode_opts *o, void *out, size_t cap, size_t *out_len,
		    struct spt_tensor_stats *stats, void *t, size_t t_cap, size_t *t_len)
{
	struct ct_geom g, og;
	struct ctt x;
	uint64_t pos, nzb, nnz;
	bool old;
	int err;

	if (!t || !t_len || t == out)
		return -EINVAL;
#ifndef SPT_NO_SIMD
	/*
	 * One block per row, enough rows for the strips (see CTT_MIN_ROWS),
	 * and both outputs' geometry fine: the strips filled by the encoder.
	 */
	if (spt_use_avx2() && in && out && out_len && cols >= 1 && cols <= SPT_BLOCK_ELEMS &&
	    rows >= CTT_MIN_ROWS && !ct_out_begin(rows, cols, cap, &g) &&
	    !ct_out_begin(cols, rows, t_cap, &og)) {
		err = spt_ctt_init(&x, &g, &og, 1);
		if (err)
			return err;
		err = encode_impl(in, rows, cols, o, out, cap, out_len, stats, &x);
		if (err) {
			spt_ctt_free(&x);
			return err;
		}
		pos = og.payload_off;
		err = spt_ctt_finish(&x, &og, t, t_cap, &pos, &nzb, &nnz);
		return err ? err : ct_out_end(t, &og, nzb, nnz, pos, t_len);
	}
#endif
	err = encode_impl(in, rows, cols, o, out, cap, out_len, stats, NULL);
	if (err)
		return err;
	/* the records just written are the encoder's */
	old = spt_ct_set_trusted(true);
	err = spt_ct_transpose(out, *out_len, NULL, t, t_cap, t_len, NULL);
	spt_ct_set_trusted(old);
	return err;
}

/* ---- reading -------------------------------------------------------- */

static int header_parse(const uint8_t *p, size_t len, struct ct_hdr *h)
{
	uint32_t bpr, tiles;

	if (len < SPT_CT_HEADER_SIZE)
		return -EBADMSG;
	if (spt_ld32(p) != SPT_CT_MAGIC ||
	    (p[4] | p[5] << 8) != SPT_CT_VERSION || (p[6] | p[7]) != 0 ||
	    spt_ld32(p + 44) != 0 || spt_ld64(p + 56) != 0)
		return -EBADMSG;
	if (geom_init(spt_ld32(p + 8), spt_ld32(p + 12), &h->g))
		return -EBADMSG;
	bpr = spt_ld32(p + 16);
	tiles = spt_ld32(p + 20);
	h->nz_blocks = spt_ld64(p + 24);
	h->nonzeros = spt_ld64(p + 32);
	h->payload = spt_ld32(p + 40);
	h->total = spt_ld64(p + 48);
	if (bpr != h->g.bpr || tiles != h->g.tiles || h->total != len ||
	    h->g.payload_off > len || len - h->g.payload_off != h->payload)
		return -EBADMSG;
	return 0;
}

static inline uint64_t has_zero_byte(uint64_t v)
{
	return (v - 0x0101010101010101ull) & ~v & 0x8080808080808080ull;
}

/* No value byte is 0 or -128 (0x80): checked eight bytes at a time. */
static int values_valid(const uint8_t *q, size_t n)
{
	uint64_t bad = 0, v;

	for (; n >= 8; n -= 8, q += 8) {
		memcpy(&v, q, 8);
		bad |= has_zero_byte(v) | has_zero_byte(v ^ 0x8080808080808080ull);
	}
	if (n) {
		v = 0x0101010101010101ull;
		memcpy(&v, q, n);
		bad |= has_zero_byte(v) | has_zero_byte(v ^ 0x8080808080808080ull);
	}
	return !bad;
}

/*
 * The tile offset table (rule 4 of docs/formats.md): entry 0 is 0, the last
 * is payload_bytes, each tile spans at least 8 bytes, so every tile lies in
 * the payload.  O(tiles); every check of the records comes after it.
 */
static int table_check(const uint8_t *p, const struct ct_hdr *h)
{
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE;
	uint32_t o0 = spt_ld32(tab), o1;
	uint64_t t;

	if (o0 != 0 || spt_ld32(tab + 4 * h->g.tiles) != h->payload)
		return -EBADMSG;
	for (t = 1; t <= h->g.tiles; t++, o0 = o1) {
		o1 = spt_ld32(tab + 4 * t);
		if (o1 < o0 || o1 - o0 < 8)
			return -EBADMSG;
	}
	return 0;
}

/* The records (rules 5 and 6), after table_check(). */
static int tiles_check(const uint8_t *p, const struct ct_hdr *h)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	uint32_t ragged = g->cols % SPT_BLOCK_ELEMS;
	uint64_t nzb = 0, nnz = 0, t;

	for (t = 0; t < g->tiles; t++) {
		uint32_t o0 = spt_ld32(tab + 4 * t), o1 = spt_ld32(tab + 4 * t + 4);
		uint64_t nb = g->nblocks - t * SPT_TILE_BLOCKS, l1;
		const uint8_t *q, *end;

		q = pl + o0;
		end = pl + o1;
		l1 = spt_ld64(q);
		q += 8;
		if (nb < SPT_TILE_BLOCKS && (l1 >> nb))
			return -EBADMSG;
		for (; l1; l1 &= l1 - 1) {
			uint64_t b = t * SPT_TILE_BLOCKS + (unsigned int)__builtin_ctzll(l1);
			uint32_t l2;
			size_t n;

			if (end - q < 5)
				return -EBADMSG;
			l2 = spt_ld32(q);
			if (!l2 || q[4] == SPT_E8M0_NAN)
				return -EBADMSG;
			if (ragged && b % g->bpr == g->bpr - 1 && (l2 >> ragged))
				return -EBADMSG;
			q += 5;
			n = (size_t)ct_pop32(l2);
			if ((size_t)(end - q) < n)
				return -EBADMSG;
			if (!values_valid(q, n))
				return -EBADMSG;
			q += n;
			nzb++;
			nnz += n;
		}
		if (q != end)
			return -EBADMSG;
	}
	if (nzb != h->nz_blocks || nnz != h->nonzeros)
		return -EBADMSG;
	return 0;
}

/* Per thread: see spt_ct_set_trusted(). */
static _Thread_local bool ct_trusted;

bool spt_ct_set_trusted(bool on)
{
	bool old = ct_trusted;

	ct_trusted = on;
	return old;
}

bool ct_is_trusted(void)
{
	return ct_trusted;
}

/* Parse and check @buf: in full unless @trusted (then header and table only). */
static int ct_check(const void *buf, size_t len, struct ct_hdr *h, bool trusted)
{
	int err;

	if (!buf)
		return -EINVAL;
	err = header_parse(buf, len, h);
	if (!err)
		err = table_check(buf, h);
	if (err || trusted)
		return err;
#ifndef SPT_NO_SIMD
	if (spt_use_avx2())
		return spt_ct_check_avx2(buf, h);
#endif
	return tiles_check(buf, h);
}

/* The readers' check: see spt_ct_set_trusted(). */
static int ct_open(const void *buf, size_t len, struct ct_hdr *h)
{
	return ct_check(buf, len, h, ct_trusted);
}

int spt_ct_open(const void *buf, size_t len, struct ct_hdr *h)
{
	return ct_open(buf, len, h);
}

int spt_ct_validate(const void *buf, size_t len, struct spt_ct_info *info)
{
	struct ct_hdr h;
	int err = ct_check(buf, len, &h, false);

	if (err)
		return err;
	if (info) {
		info->rows = h.g.rows;
		info->cols = h.g.cols;
		info->blocks_per_row = h.g.bpr;
		info->tiles = (uint32_t)h.g.tiles;
		info->nz_blocks = h.nz_blocks;
		info->nonzeros = h.nonzeros;
		info->total_bytes = h.total;
	}
	return 0;
}

/* Walk a validated tensor's blocks: fn(ctx, block, l2, exp, packed values). */
#define FOR_EACH_BLOCK(p, h, BODY)							\
	do {										\
		const uint8_t *tab_ = (p) + SPT_CT_HEADER_SIZE;				\
		const uint8_t *pl_ = (p) + (h)->g.payload_off;				\
		uint64_t t_;								\
		for (t_ = 0; t_ < (h)->g.tiles; t_++) {					\
			const uint8_t *q_ = pl_ + spt_ld32(tab_ + 4 * t_);		\
			uint64_t l1_ = spt_ld64(q_);					\
			q_ += 8;							\
			for (; l1_; l1_ &= l1_ - 1) {					\
				uint64_t blk = t_ * SPT_TILE_BLOCKS +			\
					       (unsigned int)__builtin_ctzll(l1_);	\
				uint32_t l2 = spt_ld32(q_);				\
				int ex = (int)q_[4] - SPT_E8M0_BIAS;			\
				const int8_t *vals = (const int8_t *)(q_ + 5);		\
				q_ += 5 + ct_pop32(l2);					\
				BODY							\
			}								\
		}									\
	} while (0)

/*
 * Block by block in storage order (blocks cover consecutive elements of
 * @out: a ragged block is followed by the next row), each element written
 * once or cleared and then placed; no division per block.  k * 2^(E-6) is
 * exact (spt_lut_e8m0_scale holds 2^(B-133) for the E8M0 byte B).
 */
static void decode_scalar(const uint8_t *p, const struct ct_hdr *h, float *out)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	uint32_t ragged = g->cols % SPT_BLOCK_ELEMS, c = 0;
	float *dst = out;
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + spt_ld32(tab + 4 * t);
		uint64_t l1 = spt_ld64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, i;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (i = 0; i < nb; i++, l1 >>= 1) {
			unsigned int n = ragged && c == g->bpr - 1 ? ragged : SPT_BLOCK_ELEMS;

			if (++c == g->bpr)
				c = 0;
			if (!(l1 & 1)) {
				memset(dst, 0, n * sizeof(float));
			} else {
				uint32_t l2 = spt_ld32(q), m;
				float s = spt_lut_e8m0_scale[q[4]];
				const int8_t *v = (const int8_t *)(q + 5);
				unsigned int j;

				if (l2 == 0xffffffffu) {
					for (j = 0; j < SPT_BLOCK_ELEMS; j++)
						dst[j] = (float)v[j] * s;
				} else {
					memset(dst, 0, n * sizeof(float));
					for (m = l2; m; m &= m - 1)
						dst[__builtin_ctz(m)] = (float)*v++ * s;
				}
				q += 5 + ct_pop32(l2);
			}
			dst += n;
		}
	}
}

static void decode_trusted(const uint8_t *p, const struct ct_hdr *h, float *out)
{
#ifndef SPT_NO_SIMD
	if (spt_use_avx2()) {
		spt_ct_decode_avx2(p, h, out);
		return;
	}
#endif
	decode_scalar(p, h, out);
}

int spt_ct_decode(const void *buf, size_t len, float *out, size_t elems)
{
	struct ct_hdr h;
	int err;

	if (!buf || !out)
		return -EINVAL;
	err = ct_open(buf, len, &h);
	if (err)
		return err;
	if (elems != (uint64_t)h.g.rows * h.g.cols)
		return -EINVAL;
	decode_trusted(buf, &h, out);
	return 0;
}

/*
 * Stored elements only, blocks in storage order (row-major): per column the
 * adds run in row order, as in a sum over the decoded tensor; the elements
 * not stored would add +0.0f to a sum that is never -0.0f (it starts at +0.0f
 * and a round-to-nearest sum is -0.0f only when both terms are), so skipping
 * them gives the same bits.  Values as decode_scalar computes them.
 */
int spt_ct_colsum(const void *buf, size_t len, float *sum, size_t cols)
{
	const uint8_t *p = buf;
	struct ct_hdr h;
	size_t j;
	int err;

	if (!buf || !sum)
		return -EINVAL;
	err = ct_open(buf, len, &h);
	if (err)
		return err;
	if (cols != h.g.cols)
		return -EINVAL;
#ifndef SPT_NO_SIMD
	if (spt_use_avx2() && h.g.bpr <= CT_COLSUM_BPR) {
		spt_ct_colsum_avx2(p, &h, sum);
		return 0;
	}
#endif
	for (j = 0; j < cols; j++)
		sum[j] = 0.0f;
	FOR_EACH_BLOCK(p, &h, {
		float *dst = sum + (size_t)(blk % h.g.bpr) * SPT_BLOCK_ELEMS;
		float s = spt_lut_e8m0_scale[(uint8_t)(ex + SPT_E8M0_BIAS)];
		uint32_t m;

		for (m = l2; m; m &= m - 1)
			dst[__builtin_ctz(m)] += (float)*vals++ * s;
	});
	return 0;
}

void spt_unpacked_free(struct spt_unpacked *u)
{
	if (!u)
		return;
	free(u->exp);
	free(u->l2);
	free(u->k);
	memset(u, 0, sizeof(*u));
}

int spt_ct_unpack(const void *buf, size_t len, struct spt_unpacked *u)
{
	struct ct_hdr h;
	uint64_t b;
	size_t kbytes;
	int err;

	if (!buf || !u)
		return -EINVAL;
	memset(u, 0, sizeof(*u));
	err = ct_open(buf, len, &h);
	if (err)
		return err;
	if (h.g.nblocks > SIZE_MAX / 64)
		return -E2BIG;
	kbytes = (size_t)h.g.nblocks * SPT_BLOCK_ELEMS;
	u->exp = malloc((size_t)h.g.nblocks * sizeof(*u->exp));
	u->l2 = calloc((size_t)h.g.nblocks, sizeof(*u->l2));
	u->k = aligned_alloc(64, (kbytes + 63) & ~(size_t)63);
	if (!u->exp || !u->l2 || !u->k) {
		spt_unpacked_free(u);
		return -ENOMEM;
	}
	memset(u->k, 0, kbytes);
	for (b = 0; b < h.g.nblocks; b++)
		u->exp[b] = SPT_EXP_ABSENT;
	u->rows = h.g.rows;
	u->cols = h.g.cols;
	u->bpr = h.g.bpr;
	u->nblocks = h.g.nblocks;
	u->nz_blocks = h.nz_blocks;
	u->nonzeros = h.nonzeros;
	u->bytes = h.total;
	FOR_EACH_BLOCK((const uint8_t *)buf, &h, {
		int8_t *dst = u->k + blk * SPT_BLOCK_ELEMS;
		uint32_t m;

		u->exp[blk] = (int16_t)ex;
		u->l2[blk] = l2;
		for (m = l2; m; m &= m - 1)
			dst[__builtin_ctz(m)] = *vals++;
	});
	return 0;
}

/*
 * decode_scalar into the cols x rows transpose: CT_T_ROWS rows at a time are
 * decoded into @stg (row stride bpr * 32, every block 32 wide) and then
 * written out column by column.
 */
static void decode_t_scalar(const uint8_t *p, const struct ct_hdr *h, float *out, float *stg)
{
	const struct ct_geom *g = &h->g;
	const uint8_t *tab = p + SPT_CT_HEADER_SIZE, *pl = p + g->payload_off;
	size_t stride = (size_t)g->bpr * SPT_BLOCK_ELEMS;
	uint32_t r = 0, r0 = 0, c = 0, i, j;
	float *dst = stg;
	uint64_t t;

	for (t = 0; t < g->tiles; t++) {
		const uint8_t *q = pl + spt_ld32(tab + 4 * t);
		uint64_t l1 = spt_ld64(q), nb = g->nblocks - t * SPT_TILE_BLOCKS, b;

		q += 8;
		if (nb > SPT_TILE_BLOCKS)
			nb = SPT_TILE_BLOCKS;
		for (b = 0; b < nb; b++, l1 >>= 1) {
			memset(dst, 0, SPT_BLOCK_ELEMS * sizeof(float));
			if (l1 & 1) {
				uint32_t l2 = spt_ld32(q), m;
				float s = spt_lut_e8m0_scale[q[4]];
				const int8_t *v = (const int8_t *)(q + 5);

				for (m = l2; m; m &= m - 1)
					dst[__builtin_ctz(m)] = (float)*v++ * s;
				q += 5 + ct_pop32(l2);
			}
			dst += SPT_BLOCK_ELEMS;
			if (++c < g->bpr)
				continue;
			c = 0;
			if (++r - r0 < CT_T_ROWS && r < g->rows)
				continue;
			for (j = 0; j < g->cols; j++)
				for (i = 0; i < r - r0; i++)
					out[(size_t)j * g->rows + r0 + i] = stg[i * stride + j];
			r0 = r;
			dst = stg;
		}
	}
}

/*
 * Raw options, no statistics (the re-blocking in the training step): the
 * records from the stored values without an FP32 copy (ct_transpose.c).
 */
static int transpose_raw(const uint8_t *in, const struct ct_hdr *h, uint8_t *out, size_t cap,
			 size_t *out_len)
{
	struct ct_geom og;
	uint64_t pos, nzb, nnz;
	int err;

	if (!out || !out_len)
		return -EINVAL;
	err = ct_out_begin(h->g.cols, h->g.rows, cap, &og);
	if (err)
		return err;
	pos = og.payload_off;
	err = spt_ct_transpose_raw(in, h, &og, out, cap, &pos, &nzb, &nnz);
	return err ? err : ct_out_end(out, &og, nzb, nnz, pos, out_len);
}

int spt_ct_transpose_strips(const void *in, size_t in_len, void *out, size_t cap,
			    size_t *out_len)
{
	struct ct_hdr h;
	int err = ct_open(in, in_len, &h);

	return err ? err : transpose_raw(in, &h, out, cap, out_len);
}

/*
 * Decode, transpose, encode; the decode writes the transpose directly
 * (through a small staging area), so a call makes one allocation and reads
 * the decoded floats once.
 */
int spt_ct_transpose(const void *in, size_t in_len,
		     const struct spt_encode_opts *o, void *out, size_t cap,
		     size_t *out_len, struct spt_tensor_stats *stats)
{
	struct ct_hdr h;
	size_t elems, stg_elems;
	float *t;
	int err;

	if (!in || !out || !out_len)
		return -EINVAL;
	err = ct_open(in, in_len, &h);
	if (err)
		return err;
	if (!stats && (!o || (o->round == SPT_ROUND_EVEN && o->prune.mode == SPT_PRUNE_OFF)) &&
	    h.g.rows >= CTT_MIN_ROWS)
		return transpose_raw(in, &h, out, cap, out_len);
	elems = (size_t)h.g.rows * h.g.cols;
	stg_elems = (size_t)CT_T_ROWS * h.g.bpr * SPT_BLOCK_ELEMS;
	if (elems > SIZE_MAX / 2 / sizeof(float) - stg_elems)
		return -E2BIG;
	t = malloc((elems + stg_elems) * sizeof(float));
	if (!t)
		return -ENOMEM;
#ifndef SPT_NO_SIMD
	if (spt_use_avx2())
		spt_ct_decode_t_avx2(in, &h, t, t + elems);
	else
#endif
		decode_t_scalar(in, &h, t, t + elems);
	err = spt_ct_encode(t, h.g.cols, h.g.rows, o, out, cap, out_len, stats);
	free(t);
	return err;
}
