// SPDX-License-Identifier: MIT
/*
 * Checkpoints: a versioned, CRC-32 checksummed little-endian file, written
 * atomically (temporary file in the same directory, fsync, rename, fsync of
 * the directory).
 *
 *   0   8  magic "SPTCKPT\0"
 *   8   4  version (1)
 *   12  4  precision
 *   16  8  total file size
 *   24  8  steps
 *   32  4  layers, 4 in_c, 4 in_h, 4 in_w, 4 classes, 4 user_len
 *   56  8  reserved (0)
 *   64     per layer: 12 u32 (kind K N relu stride pad in_c in_h in_w out_c out_h out_w)
 *          per layer: w[N*K] vw[N*K] b[N] vb[N] (f32), 4 controller records
 *          model: loss_fast, loss_slow (f64), rising (u32)
 *          user data
 *   end-4  CRC-32 (zlib polynomial) of everything before it
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes host floats as little-endian"
#endif

#define CK_MAGIC "SPTCKPT"
#define CK_VERSION 1u
#define CK_HDR 64u
#define CK_LAYER_DESC 48u
#define CK_CTL_REC 64u
#define CK_USER_MAX 4096u

struct wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

static void put(struct wbuf *b, const void *src, size_t n)
{
	if (b->err)
		return;
	if (b->len + n > b->cap) {
		size_t nc = b->cap ? b->cap : 4096;
		uint8_t *np;

		while (nc < b->len + n)
			nc *= 2;
		np = realloc(b->p, nc);
		if (!np) {
			b->err = -ENOMEM;
			return;
		}
		b->p = np;
		b->cap = nc;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put32(struct wbuf *b, uint32_t v) { put(b, &v, 4); }
static void put64(struct wbuf *b, uint64_t v) { put(b, &v, 8); }
static void putf(struct wbuf *b, float v) { put(b, &v, 4); }
static void putd(struct wbuf *b, double v) { put(b, &v, 8); }

static void layer_desc(const struct rt_layer *l, uint32_t d[12])
{
	uint32_t v[12] = { l->kind, l->K, l->N, l->relu, l->stride, l->pad,
			   l->in_c, l->in_h, l->in_w, l->out_c, l->out_h, l->out_w };

	memcpy(d, v, sizeof(v));
}

static void put_ctl(struct wbuf *b, const struct rt_ctl *c)
{
	size_t start = b->len;

	put32(b, c->cfg.mode);
	put32(b, c->cfg.kind);
	putf(b, c->cfg.tau);
	putf(b, c->cfg.target);
	put32(b, c->phase);
	putf(b, c->tau);
	putf(b, c->target);
	putf(b, c->final_target);
	putf(b, c->s_start);
	putf(b, c->s_ema);
	putf(b, c->s_nat);
	put32(b, c->started);
	put32(b, c->backoffs);
	putd(b, c->sum_abs);
	put32(b, (uint32_t)(c->nz_in > UINT32_MAX ? UINT32_MAX : c->nz_in));
	while (!b->err && b->len - start < CK_CTL_REC)
		put32(b, 0);
}

static size_t ck_size(const struct spt_model *m, size_t user_len)
{
	size_t n = CK_HDR + (size_t)m->nlayers * CK_LAYER_DESC;
	int i;

	for (i = 0; i < m->nlayers; i++) {
		const struct rt_layer *l = &m->layers[i];

		n += 4 * (2 * (size_t)l->K * l->N + 2 * (size_t)l->N) + SPT_CLASS_COUNT * CK_CTL_REC;
	}
	return n + 20 + user_len + 4;
}

static int write_atomic(const char *path, const void *data, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = malloc(plen + 16), *dcopy = NULL;
	const uint8_t *p = data;
	int fd, dfd, ret = 0;

	if (!tmp)
		return -ENOMEM;
	snprintf(tmp, plen + 16, "%s.tmpXXXXXX", path);
	fd = mkstemp(tmp);
	if (fd < 0) {
		ret = -errno;
		free(tmp);
		return ret;
	}
	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto fail;
		}
		p += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0) {
		ret = -errno;
		goto fail;
	}
	if (fchmod(fd, 0644) != 0) {
		ret = -errno;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		ret = -errno;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) != 0) {
		ret = -errno;
		goto fail;
	}
	/* make the rename itself durable */
	dcopy = strdup(path);
	if (dcopy) {
		dfd = open(dirname(dcopy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			fsync(dfd);
			close(dfd);
		}
		free(dcopy);
	}
	free(tmp);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	free(tmp);
	return ret;
}

SPT_API int spt_model_save(const struct spt_model *m, const char *path,
			   const void *user, size_t user_len)
{
	struct wbuf b = { 0 };
	uint32_t crc;
	int i, c, ret;

	if (!m || !path || !*path || !m->finalized || user_len > CK_USER_MAX ||
	    (user_len && !user))
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	put(&b, CK_MAGIC, 8);
	put32(&b, CK_VERSION);
	put32(&b, m->opts.precision);
	put64(&b, ck_size(m, user_len));
	put64(&b, m->steps);
	put32(&b, (uint32_t)m->nlayers);
	put32(&b, m->in_c);
	put32(&b, m->in_h);
	put32(&b, m->in_w);
	put32(&b, m->classes);
	put32(&b, (uint32_t)user_len);
	put64(&b, 0);
	for (i = 0; i < m->nlayers; i++) {
		uint32_t d[12];

		layer_desc(&m->layers[i], d);
		put(&b, d, sizeof(d));
	}
	for (i = 0; i < m->nlayers; i++) {
		const struct rt_layer *l = &m->layers[i];
		size_t kn = (size_t)l->K * l->N;

		put(&b, l->w, kn * 4);
		put(&b, l->vw, kn * 4);
		put(&b, l->b, l->N * 4);
		put(&b, l->vb, l->N * 4);
		for (c = 0; c < SPT_CLASS_COUNT; c++)
			put_ctl(&b, &l->ctl[c]);
	}
	putd(&b, m->loss_fast);
	putd(&b, m->loss_slow);
	put32(&b, m->rising);
	if (user_len)
		put(&b, user, user_len);
	if (b.err) {
		free(b.p);
		return b.err;
	}
	crc = (uint32_t)crc32(0L, b.p, (uInt)b.len);
	put32(&b, crc);
	if (b.err || b.len != ck_size(m, user_len)) {
		free(b.p);
		return b.err ? b.err : -EINVAL;
	}
	ret = write_atomic(path, b.p, b.len);
	free(b.p);
	return ret;
}

static int read_all(const char *path, uint8_t **out, size_t *len)
{
	struct stat sb;
	uint8_t *p;
	size_t n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		ret = S_ISREG(sb.st_mode) ? -errno : -EINVAL;
		close(fd);
		return ret;
	}
	if (sb.st_size > (off_t)1 << 33) {
		close(fd);
		return -SPT_EBADFILE;
	}
	p = malloc((size_t)sb.st_size + 1);
	if (!p) {
		close(fd);
		return -ENOMEM;
	}
	while (n < (size_t)sb.st_size) {
		ssize_t r = read(fd, p + n, (size_t)sb.st_size - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*out = p;
	*len = n;
	return 0;
}

struct rbuf {
	const uint8_t *p;
	size_t off;
};

static uint32_t get32(struct rbuf *r) { uint32_t v; memcpy(&v, r->p + r->off, 4); r->off += 4; return v; }
static uint64_t get64(struct rbuf *r) { uint64_t v; memcpy(&v, r->p + r->off, 8); r->off += 8; return v; }
static float getf(struct rbuf *r) { float v; memcpy(&v, r->p + r->off, 4); r->off += 4; return v; }
static double getd(struct rbuf *r) { double v; memcpy(&v, r->p + r->off, 8); r->off += 8; return v; }

static bool floats_ok(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		float v;

		memcpy(&v, p + 4 * i, 4);
		if (!isfinite(v))
			return false;
	}
	return true;
}

static int get_ctl(struct rbuf *r, struct rt_ctl *c)
{
	size_t start = r->off;

	rt_ctl_init(c);
	c->cfg.mode = get32(r);
	c->cfg.kind = get32(r);
	c->cfg.tau = getf(r);
	c->cfg.target = getf(r);
	c->phase = get32(r);
	c->tau = getf(r);
	c->target = getf(r);
	c->final_target = getf(r);
	c->s_start = getf(r);
	c->s_ema = getf(r);
	c->s_nat = getf(r);
	c->started = get32(r) != 0;
	c->backoffs = get32(r);
	c->sum_abs = getd(r);
	c->nz_in = get32(r);
	r->off = start + CK_CTL_REC;
	if (c->cfg.mode > SPT_SPARSITY_TARGET || c->cfg.kind > SPT_PRUNE_STOCHASTIC ||
	    !isfinite(c->tau) || !isfinite(c->cfg.tau) || c->phase > 3)
		return -SPT_EBADFILE;
	return 0;
}

SPT_API int spt_model_load(struct spt_model *m, const char *path, void *user,
			   size_t user_cap, size_t *user_len)
{
	struct rt_ctl ctl[64][SPT_CLASS_COUNT];
	uint8_t *p = NULL;
	size_t len = 0, ulen, off;
	struct rbuf r;
	uint64_t total, steps;
	uint32_t crc;
	int i, c, ret;

	if (!m || !path || !m->finalized || (user_cap && !user))
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	ret = read_all(path, &p, &len);
	if (ret)
		return ret;
	if (len < 8 ? memcmp(p, CK_MAGIC, len) : memcmp(p, CK_MAGIC, 8)) {
		ret = -SPT_EBADMAGIC;
		goto out;
	}
	if (len < CK_HDR) {
		ret = -SPT_ETRUNCATED;
		goto out;
	}
	r.p = p;
	r.off = 8;
	if (get32(&r) != CK_VERSION) {
		ret = -SPT_EVERSION;
		goto out;
	}
	r.off = 16;
	total = get64(&r);
	if (len < total) {
		ret = -SPT_ETRUNCATED;
		goto out;
	}
	if (len > total || total < CK_HDR + 4) {
		ret = -SPT_EBADFILE;
		goto out;
	}
	memcpy(&crc, p + len - 4, 4);
	if (crc != (uint32_t)crc32(0L, p, (uInt)(len - 4))) {
		ret = -SPT_ECHECKSUM;
		goto out;
	}
	r.off = 12;
	ret = -SPT_EMISMATCH;
	if (get32(&r) != m->opts.precision)
		goto out;
	r.off = 24;
	steps = get64(&r);
	if (get32(&r) != (uint32_t)m->nlayers || get32(&r) != m->in_c || get32(&r) != m->in_h ||
	    get32(&r) != m->in_w || get32(&r) != m->classes)
		goto out;
	ulen = get32(&r);
	if (ulen > CK_USER_MAX || total != ck_size(m, ulen))
		goto out;
	r.off = CK_HDR;
	for (i = 0; i < m->nlayers; i++) {
		uint32_t d[12];

		layer_desc(&m->layers[i], d);
		if (memcmp(p + r.off, d, sizeof(d)))
			goto out;
		r.off += CK_LAYER_DESC;
	}
	/* validate everything before touching the model */
	off = r.off;
	for (i = 0; i < m->nlayers; i++) {
		const struct rt_layer *l = &m->layers[i];
		size_t nf = 2 * (size_t)l->K * l->N + 2 * (size_t)l->N;

		if (!floats_ok(p + r.off, nf)) {
			ret = -SPT_EBADFILE;
			goto out;
		}
		r.off += 4 * nf;
		for (c = 0; c < SPT_CLASS_COUNT; c++) {
			ret = get_ctl(&r, &ctl[i][c]);
			if (ret)
				goto out;
		}
	}
	r.off = off;
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];
		size_t kn = (size_t)l->K * l->N;

		memcpy(l->w, p + r.off, kn * 4);
		r.off += kn * 4;
		memcpy(l->vw, p + r.off, kn * 4);
		r.off += kn * 4;
		memcpy(l->b, p + r.off, l->N * 4);
		r.off += l->N * 4;
		memcpy(l->vb, p + r.off, l->N * 4);
		r.off += l->N * 4 + SPT_CLASS_COUNT * CK_CTL_REC;
		memcpy(l->ctl, ctl[i], sizeof(l->ctl));
	}
	m->loss_fast = getd(&r);
	m->loss_slow = getd(&r);
	m->rising = get32(&r);
	m->steps = steps;
	if (user_len)
		*user_len = ulen;
	if (user && user_cap)
		memcpy(user, p + r.off, ulen < user_cap ? ulen : user_cap);
	ret = 0;
out:
	free(p);
	return ret;
}
