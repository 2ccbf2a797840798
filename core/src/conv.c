// SPDX-License-Identifier: MIT
/*
 * Convolution lowering (im2col and its adjoint col2im) on FP32 NHWC tensors,
 * the finite check and the FP32 ReLU mask of a training step.  Plain scalar
 * code in a fixed order, so the device model and the CPU backend agree bit
 * for bit.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spt/core.h"

/* a * b into *r; 1 on overflow of 64 bits. */
static int mul_ovf(uint64_t a, uint64_t b, uint64_t *r)
{
	return __builtin_mul_overflow(a, b, r);
}

int spt_conv_shape_check(const struct spt_conv_shape *s, struct spt_conv_dims *d)
{
	struct spt_conv_dims o;
	uint64_t eh, ew, t;

	if (!s)
		return -EINVAL;
	if (!s->n || !s->h || !s->w || !s->c)
		return -EINVAL;
	if (s->k < 1 || s->k > SPT_CONV_K_MAX || s->stride < 1 ||
	    s->stride > SPT_CONV_STRIDE_MAX || s->pad >= s->k)
		return -EINVAL;
	eh = (uint64_t)s->h + 2 * (uint64_t)s->pad;	/* no overflow: < 2^34 */
	ew = (uint64_t)s->w + 2 * (uint64_t)s->pad;
	if (eh < s->k || ew < s->k)
		return -EINVAL;
	/* with stride 1 and padding, oh can exceed 32 bits */
	eh = (eh - s->k) / s->stride + 1;
	ew = (ew - s->k) / s->stride + 1;
	if (eh > UINT32_MAX || ew > UINT32_MAX)
		return -E2BIG;
	o.oh = (uint32_t)eh;
	o.ow = (uint32_t)ew;
	o.cols = (uint64_t)s->k * s->k * s->c;	/* <= 2^8 * 2^32 */
	if (mul_ovf(s->n, o.oh, &t) || mul_ovf(t, o.ow, &o.rows) ||
	    mul_ovf(o.rows, o.cols, &o.col_elems) ||
	    mul_ovf(s->n, s->h, &t) || mul_ovf(t, s->w, &t) || mul_ovf(t, s->c, &o.img_elems))
		return -E2BIG;
	if (o.col_elems > SIZE_MAX / sizeof(float) || o.img_elems > SIZE_MAX / sizeof(float) ||
	    o.col_elems > UINT64_MAX / sizeof(float) || o.img_elems > UINT64_MAX / sizeof(float))
		return -E2BIG;
	if (d)
		*d = o;
	return 0;
}

/* Row of the input that patch row @o, kernel offset @kk reads; -1 in the padding. */
static inline int64_t src_index(uint32_t o, uint32_t kk, const struct spt_conv_shape *s,
				uint32_t lim)
{
	int64_t i = (int64_t)o * s->stride + kk - (int64_t)s->pad;

	return i < 0 || i >= (int64_t)lim ? -1 : i;
}

/*
 * Walk the patch matrix in row order, (ky, kx) within a row: the body sees
 * px, the index of the pixel's first channel in the image (SIZE_MAX in the
 * padding), and cx, the index of its c columns in the patch matrix.
 */
#define FOR_EACH_PATCH_SLICE(s, d, BODY)					\
	do {										\
		uint64_t row_ = 0;							\
		uint32_t b_, oy_, ox_, ky_, kx_;					\
		for (b_ = 0; b_ < (s)->n; b_++)						\
			for (oy_ = 0; oy_ < (d)->oh; oy_++)				\
				for (ox_ = 0; ox_ < (d)->ow; ox_++, row_++)		\
					for (ky_ = 0; ky_ < (s)->k; ky_++)		\
						for (kx_ = 0; kx_ < (s)->k; kx_++) {	\
							int64_t iy_ = src_index(oy_, ky_, s, (s)->h); \
							int64_t ix_ = src_index(ox_, kx_, s, (s)->w); \
							size_t px = iy_ < 0 || ix_ < 0 ? SIZE_MAX : \
								((((size_t)b_ * (s)->h + (size_t)iy_) * (s)->w + \
								  (size_t)ix_) * (s)->c);	\
							size_t cx = (size_t)row_ * (size_t)(d)->cols + \
								((size_t)ky_ * (s)->k + kx_) * (s)->c; \
							BODY					\
						}					\
	} while (0)

int spt_im2col(const struct spt_conv_shape *s, const float *img, size_t img_elems,
	       float *col, size_t col_elems)
{
	struct spt_conv_dims d;
	int err;

	if (!img || !col)
		return -EINVAL;
	err = spt_conv_shape_check(s, &d);
	if (err)
		return err;
	if (img_elems != d.img_elems || col_elems != d.col_elems)
		return -EINVAL;
	FOR_EACH_PATCH_SLICE(s, &d, {
		if (px == SIZE_MAX)
			memset(col + cx, 0, (size_t)s->c * sizeof(float));
		else
			memcpy(col + cx, img + px, (size_t)s->c * sizeof(float));
	});
	return 0;
}

int spt_col2im(const struct spt_conv_shape *s, const float *col, size_t col_elems,
	       float *img, size_t img_elems)
{
	struct spt_conv_dims d;
	int err;

	if (!img || !col)
		return -EINVAL;
	err = spt_conv_shape_check(s, &d);
	if (err)
		return err;
	if (img_elems != d.img_elems || col_elems != d.col_elems)
		return -EINVAL;
	memset(img, 0, img_elems * sizeof(float));
	FOR_EACH_PATCH_SLICE(s, &d, {
		if (px != SIZE_MAX) {
			float *dst = img + px;
			const float *src = col + cx;
			uint32_t ch;

			for (ch = 0; ch < s->c; ch++)
				dst[ch] += src[ch];
		}
	});
	return 0;
}

static inline uint32_t not_finite(float x)
{
	uint32_t u;

	memcpy(&u, &x, sizeof(u));
	return (u & 0x7f800000u) == 0x7f800000u;
}

int spt_check_finite(const float *x, size_t n)
{
	uint32_t bad = 0;
	size_t i;

	if (n == 0)
		return 0;
	if (!x)
		return -EINVAL;
	for (i = 0; i < n; i++)
		bad |= not_finite(x[i]);
	return bad ? -EDOM : 0;
}

int spt_relu_mask(float *dx, const float *y, size_t n)
{
	uintptr_t a, b;
	size_t i;

	if (n == 0)
		return 0;
	if (!dx || !y || n > SIZE_MAX / sizeof(float))
		return -EINVAL;
	a = (uintptr_t)dx;
	b = (uintptr_t)y;
	/* the same array, or two that do not overlap */
	if (a != b && a < b + n * sizeof(float) && b < a + n * sizeof(float))
		return -EINVAL;
	for (i = 0; i < n; i++) {
		uint32_t d, v;

		memcpy(&v, &y[i], sizeof(v));
		memcpy(&d, &dx[i], sizeof(d));
		d &= (v << 1) ? 0xffffffffu : 0u;
		memcpy(&dx[i], &d, sizeof(d));
	}
	return 0;
}
