// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: untrusted bytes as a compressed tensor.
 *
 * Properties checked (abort on violation):
 *  - validate, decode and unpack agree on accept/reject, with -EBADMSG;
 *  - unpack's block grid gives decode's floats (k * 2^(E-6));
 *  - re-encoding the decoded floats with default options has the same size
 *    (same masks), decodes to the same floats, and is byte-identical when
 *    the input's blocks are canonical (max |k| >= 64 unless E = -127);
 *  - transpose (and its strip path) succeeds on valid input and matches a
 *    transposed decode;
 *  - SGD on the compressed tensor rejects what validate rejects and
 *    otherwise equals decode followed by spt_sgd_momentum, bit for bit;
 *  - im2col in the compressed domain (16 channels, or a multiple of 32)
 *    rejects what validate rejects and otherwise gives the bytes of encode
 *    of im2col of the decoded image, also trusted when the blocks are
 *    canonical.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "../../core/src/ct_internal.h"
#include "../../core/src/ct_transpose.h"

#define MAX_ELEMS (1u << 22)
#define MAX_TRANSPOSE_ELEMS (1u << 18)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                        \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "fuzz_decode: %s:%d: %s\n", __FILE__, \
				__LINE__, #cond);                            \
			abort();                                             \
		}                                                            \
	} while (0)

static int canonical(const struct spt_unpacked *u)
{
	uint64_t b;

	for (b = 0; b < u->nblocks; b++) {
		int j, m = 0;

		if (u->exp[b] == SPT_EXP_ABSENT || u->exp[b] == SPT_EXP_MIN)
			continue;
		for (j = 0; j < 32; j++) {
			int a = abs(u->k[32 * b + j]);

			m = a > m ? a : m;
		}
		if (m < 64)
			return 0;
	}
	return 1;
}

static void check_unpack_matches(const struct spt_unpacked *u, const float *x)
{
	uint64_t b;

	for (b = 0; b < u->nblocks; b++) {
		uint32_t r = (uint32_t)(b / u->bpr), c0 = (uint32_t)(b % u->bpr) * 32, j;

		for (j = 0; j < 32 && c0 + j < u->cols; j++) {
			float want = u->exp[b] == SPT_EXP_ABSENT ?
					     0.0f :
					     spt_bfp8_value(u->k[32 * b + j], u->exp[b]);

			REQUIRE(((u->l2[b] >> j) & 1) == (u->k[32 * b + j] != 0));
			REQUIRE(memcmp(&want, &x[(size_t)r * u->cols + c0 + j], sizeof(float)) == 0);
		}
		for (; j < 32; j++)
			REQUIRE(u->k[32 * b + j] == 0 && !((u->l2[b] >> j) & 1));
	}
}

static void check_reencode(const uint8_t *data, size_t size, const struct spt_ct_info *info,
			   const float *x, int is_canonical)
{
	size_t n = (size_t)info->rows * info->cols, cap = spt_ct_bound(info->rows, info->cols);
	struct spt_tensor_stats st;
	uint8_t *p = malloc(cap);
	float *y = malloc(n * sizeof(float));
	size_t len = 0;

	REQUIRE(p && y);
	REQUIRE(spt_ct_encode(x, info->rows, info->cols, NULL, p, cap, &len, &st) == 0);
	REQUIRE(len == size && st.bytes == len);
	REQUIRE(st.nonzeros == info->nonzeros && st.nz_blocks == info->nz_blocks);
	REQUIRE(st.underflow == 0 && st.pruned == 0);
	REQUIRE(spt_ct_decode(p, len, y, n) == 0);
	REQUIRE(memcmp(x, y, n * sizeof(float)) == 0);
	if (is_canonical)
		REQUIRE(memcmp(p, data, size) == 0);
	free(p);
	free(y);
}

/* spt_ct_transpose is defined as decode, transpose, encode: check exactly that. */
static void check_transpose(const uint8_t *data, size_t size, const struct spt_ct_info *info,
			    const float *x)
{
	size_t n = (size_t)info->rows * info->cols, cap = spt_ct_bound(info->cols, info->rows);
	uint8_t *p = malloc(cap), *q = malloc(cap);
	float *t = malloc(n * sizeof(float));
	size_t len = 0, qlen = 0, r, c;

	REQUIRE(p && q && t);
	REQUIRE(spt_ct_transpose(data, size, NULL, p, cap, &len, NULL) == 0);
	for (r = 0; r < info->rows; r++)
		for (c = 0; c < info->cols; c++)
			t[c * info->rows + r] = x[r * info->cols + c];
	REQUIRE(spt_ct_encode(t, info->cols, info->rows, NULL, q, cap, &qlen, NULL) == 0);
	REQUIRE(len == qlen && memcmp(p, q, len) == 0);
	REQUIRE(spt_ct_validate(p, len, NULL) == 0);
	/* the strip path, which spt_ct_transpose takes on tall tensors */
	REQUIRE(spt_ct_transpose_strips(data, size, p, cap, &len) == 0);
	REQUIRE(len == qlen && memcmp(p, q, len) == 0);
	free(p);
	free(q);
	free(t);
}

/* spt_sgd_momentum_ct is defined as decode then spt_sgd_momentum: check exactly that. */
static void check_sgd(const uint8_t *data, size_t size, const float *g, size_t n)
{
	float *w = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
	float *w2 = malloc(n * sizeof(float)), *v2 = malloc(n * sizeof(float));
	size_t i;

	REQUIRE(w && v && w2 && v2);
	for (i = 0; i < n; i++) {
		w[i] = w2[i] = (float)((int)(i % 17) - 8) * 0.125f;
		v[i] = v2[i] = (float)((int)(i % 5) - 2) * -0.0625f;
	}
	REQUIRE(spt_sgd_momentum_ct(w, v, data, size, n + 1, 0.1f, 0.9f, 5e-4f) == -EINVAL);
	REQUIRE(spt_sgd_momentum(w2, v2, g, n, 0.1f, 0.9f, 5e-4f) == 0);
	REQUIRE(spt_sgd_momentum_ct(w, v, data, size, n, 0.1f, 0.9f, 5e-4f) == 0);
	REQUIRE(memcmp(w, w2, n * sizeof(float)) == 0 && memcmp(v, v2, n * sizeof(float)) == 0);
	free(w);
	free(v);
	free(w2);
	free(v2);
}

/*
 * The tensor as an image of rows pixels of cols channels (4 rows of pixels
 * when they divide, else one), a 3 x 3 kernel, padding 1, stride 1 or 2.
 */
static void check_im2col(const uint8_t *data, size_t size, const struct spt_ct_info *info,
			 const float *x, int is_canonical)
{
	struct spt_conv_shape s = { 1, info->rows % 4 ? 1 : 4, 0, info->cols, 3,
				    1 + (uint32_t)(size & 1), 1 };
	struct spt_conv_dims d;
	size_t cap, len = 0, qlen = 0;
	uint8_t *p, *q;
	float *col;

	if (info->cols != 16 && info->cols % 32)
		return;
	s.w = info->rows / s.h;
	REQUIRE(spt_conv_shape_check(&s, &d) == 0);
	if (d.col_elems > 9 * (uint64_t)MAX_TRANSPOSE_ELEMS)
		return;
	cap = spt_ct_bound((uint32_t)d.rows, (uint32_t)d.cols);
	p = malloc(cap);
	q = malloc(cap);
	col = malloc(d.col_elems * sizeof(float));
	REQUIRE(p && q && col);
	REQUIRE(spt_im2col(&s, x, d.img_elems, col, d.col_elems) == 0);
	REQUIRE(spt_ct_encode(col, (uint32_t)d.rows, (uint32_t)d.cols, NULL, q, cap, &qlen,
			      NULL) == 0);
	REQUIRE(spt_im2col_ct(&s, data, size, p, cap, &len) == 0);
	REQUIRE(len == qlen && memcmp(p, q, len) == 0);
	if (is_canonical) {
		REQUIRE(!spt_ct_set_trusted(true));
		REQUIRE(spt_im2col_ct(&s, data, size, p, cap, &len) == 0);
		REQUIRE(spt_ct_set_trusted(false));
		REQUIRE(len == qlen && memcmp(p, q, len) == 0);
	}
	free(p);
	free(q);
	free(col);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spt_ct_info info;
	struct spt_unpacked u;
	float dummy[1], sw = 1.0f, sv = 2.0f;
	float *x;
	size_t n;
	int v, d, k;

	v = spt_ct_validate(data, size, &info);
	if (v) {
		REQUIRE(v == -EBADMSG);
		d = spt_ct_decode(data, size, dummy, 1);
		REQUIRE(d == v);
		k = spt_ct_unpack(data, size, &u);
		REQUIRE(k == v);
		k = spt_sgd_momentum_ct(&sw, &sv, data, size, 1, 0.1f, 0.9f, 0.0f);
		REQUIRE(k == v && sw == 1.0f && sv == 2.0f);
		{
			struct spt_conv_shape s = { 1, 1, 1, 16, 1, 1, 0 };
			uint8_t out[128];
			size_t len;

			/* a shape of one pixel: the tensor's own faults come first */
			k = spt_im2col_ct(&s, data, size, out, sizeof(out), &len);
			REQUIRE(k == v || k == -EINVAL);
		}
		return 0;
	}
	REQUIRE(info.total_bytes == size);
	REQUIRE(info.rows >= 1 && info.cols >= 1 && info.blocks_per_row == (info.cols + 31) / 32);
	n = (size_t)info.rows * info.cols;
	if (n > MAX_ELEMS)
		return 0;
	x = malloc(n * sizeof(float));
	REQUIRE(x);
	if (n > 1)
		REQUIRE(spt_ct_decode(data, size, x, n - 1) == -EINVAL);
	REQUIRE(spt_ct_decode(data, size, x, n) == 0);
	REQUIRE(spt_ct_unpack(data, size, &u) == 0);
	REQUIRE(u.rows == info.rows && u.cols == info.cols && u.bytes == size);
	REQUIRE(u.nz_blocks == info.nz_blocks && u.nonzeros == info.nonzeros);
	check_unpack_matches(&u, x);
	check_reencode(data, size, &info, x, canonical(&u));
	if (n <= MAX_TRANSPOSE_ELEMS) {
		check_transpose(data, size, &info, x);
		check_sgd(data, size, x, n);
		check_im2col(data, size, &info, x, canonical(&u));
	}
	spt_unpacked_free(&u);
	free(x);
	return 0;
}
