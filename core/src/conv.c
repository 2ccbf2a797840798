// SPDX-License-Identifier: MIT
/*
 * Convolution lowering (im2col and its adjoint col2im) on FP32 NHWC tensors,
 * the finite check and the FP32 ReLU mask of a training step.  Each output
 * element is computed by the same IEEE operations in the same order on
 * every path (copies; sums in the definition's order; bit masks), so the
 * device model and the CPU backend agree bit for bit whatever the vector
 * width (conv_rows.h, conv_avx2.c).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "spt/core.h"
#include "conv_internal.h"
#include "isa_internal.h"

#define CONV_VF 4
#define CONV_NAME(x) spt_conv_##x
#include "conv_rows.h"

#ifdef SPT_NO_SIMD
#define spt_conv_mask_run_avx2 spt_conv_mask_run
#define spt_conv_col2im_rows_avx2 spt_conv_col2im_rows
#endif

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

/* 1 if the byte ranges [a, a + an) and [b, b + bn) overlap. */
static int overlap(const void *a, size_t an, const void *b, size_t bn)
{
	uintptr_t x = (uintptr_t)a, y = (uintptr_t)b;

	return an && bn && x < y + bn && y < x + an;
}

/* im2col's 4-float copies (conv_rows.h's vectors are CONV_VF wide) */
typedef float v4f __attribute__((vector_size(16)));

/* Short runs (one channel: k floats): an inline loop beats a library call. */
static inline void copy_run(float *restrict dst, const float *restrict src, size_t n)
{
	size_t i;

	if (n >= 16) {
		memcpy(dst, src, n * sizeof(float));
		return;
	}
	for (i = 0; i < n; i++)
		dst[i] = src[i];
}

static inline void zero_run(float *dst, size_t n)
{
	size_t i;

	if (n >= 16) {
		memset(dst, 0, n * sizeof(float));
		return;
	}
	for (i = 0; i < n; i++)
		dst[i] = 0.0f;
}

/*
 * One patch row: for each kernel row ky, the window's pixels kx in [lo, hi)
 * are in the image (consecutive, one run of (hi - lo) * c floats from
 * src[ky] + x0 * c, x0 = the window's first column), the rest is padding;
 * src[ky] is NULL for a kernel row in the padding.
 */
static inline void patch_row(float *restrict dst, const float *const *src, size_t k, size_t c,
			     int64_t x0, size_t lo, size_t hi)
{
	size_t ky, kc = k * c;

	for (ky = 0; ky < k; ky++, dst += kc) {
		if (!src[ky]) {
			zero_run(dst, kc);
			continue;
		}
		zero_run(dst, lo * c);
		copy_run(dst + lo * c, src[ky] + (x0 + (int64_t)lo) * (int64_t)c, (hi - lo) * c);
		zero_run(dst + hi * c, kc - hi * c);
	}
}

/*
 * The 3 x 3 single-channel window (the first layer) fully inside the
 * image, when the image row has a float after the window (x0 + 4 <= w) and
 * the patch row is not the last: three 4-float copies, each overwriting the
 * float the one before wrote past its kernel row, the last one the first
 * float of the next patch row (written after).
 */
static inline void patch_row_3x1_wide(float *restrict dst, const float *const *src, size_t x0)
{
	v4f a, b, e;

	memcpy(&a, src[0] + x0, sizeof(a));
	memcpy(&b, src[1] + x0, sizeof(b));
	memcpy(&e, src[2] + x0, sizeof(e));
	memcpy(dst, &a, sizeof(a));
	memcpy(dst + 3, &b, sizeof(b));
	memcpy(dst + 6, &e, sizeof(e));
}

/* patch_row for output column @ox, its window clipped to the image */
static void patch_row_clipped(const struct spt_conv_shape *s, float *restrict dst,
			      const float *const *src, uint32_t ox)
{
	int64_t x0 = (int64_t)ox * s->stride - (int64_t)s->pad;
	size_t lo, hi;

	lo = x0 < 0 ? (size_t)-x0 : 0;
	hi = x0 + (int64_t)s->k > (int64_t)s->w ? (size_t)((int64_t)s->w - x0) : s->k;
	if (hi < lo)
		hi = lo;
	patch_row(dst, src, s->k, s->c, x0, lo, hi);
}

/*
 * The patch matrix in row order, one image row band (b, oy) at a time:
 * the kernel rows' source rows are found once per band, and the windows
 * that lie inside the image horizontally (ox in [in_lo, in_hi)) need no
 * clipping.
 */
static void im2col_rows(const struct spt_conv_shape *s, const struct spt_conv_dims *d,
			const float *restrict img, float *restrict col)
{
	const float *src[SPT_CONV_K_MAX];
	size_t k = s->k, c = s->c, cols = d->cols;
	uint32_t b, oy, ox, ky, in_lo, in_hi, wide_hi = 0;
	float *dst = col, *last = col + (d->rows - 1) * cols;

	conv_inner_windows(s, d, &in_lo, &in_hi);
	if (k == 3 && c == 1 && (uint64_t)s->w + s->pad >= 4) {
		/* inner windows with x0 + 4 <= w */
		wide_hi = (uint32_t)(((uint64_t)s->w + s->pad - 4) / s->stride + 1);
		if (wide_hi > in_hi)
			wide_hi = in_hi;
	}
	for (b = 0; b < s->n; b++)
		for (oy = 0; oy < d->oh; oy++) {
			int all_rows = 1;

			for (ky = 0; ky < k; ky++) {
				int64_t iy = (int64_t)oy * s->stride + ky - (int64_t)s->pad;

				src[ky] = iy < 0 || iy >= (int64_t)s->h ? NULL :
					  img + ((size_t)b * s->h + (size_t)iy) * s->w * c;
				all_rows &= src[ky] != NULL;
			}
			ox = 0;
			if (all_rows && in_lo < wide_hi) {
				for (; ox < in_lo; ox++, dst += cols)
					patch_row_clipped(s, dst, src, ox);
				for (; ox < wide_hi && dst != last; ox++, dst += cols)
					patch_row_3x1_wide(dst, src, (size_t)ox * s->stride - s->pad);
			}
			for (; ox < d->ow; ox++, dst += cols) {
				if (ox >= in_lo && ox < in_hi)
					patch_row(dst, src, k, c, (int64_t)ox * s->stride - s->pad, 0, k);
				else
					patch_row_clipped(s, dst, src, ox);
			}
		}
}

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
	if (overlap(img, img_elems * sizeof(float), col, col_elems * sizeof(float)))
		return -EINVAL;
	im2col_rows(s, &d, img, col);
	return 0;
}

int spt_col2im_relu(const struct spt_conv_shape *s, const float *col, size_t col_elems,
		    const float *y, float *img, size_t img_elems)
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
	if (overlap(img, img_elems * sizeof(float), col, col_elems * sizeof(float)) ||
	    (y && overlap(img, img_elems * sizeof(float), y, img_elems * sizeof(float))))
		return -EINVAL;
	if (spt_use_avx2())
		spt_conv_col2im_rows_avx2(s, &d, col, y, img);
	else
		spt_conv_col2im_rows(s, &d, col, y, img);
	return 0;
}

int spt_col2im(const struct spt_conv_shape *s, const float *col, size_t col_elems,
	       float *img, size_t img_elems)
{
	return spt_col2im_relu(s, col, col_elems, NULL, img, img_elems);
}

int spt_relu_mask(float *dx, const float *y, size_t n)
{
	if (n == 0)
		return 0;
	if (!dx || !y || n > SIZE_MAX / sizeof(float))
		return -EINVAL;
	/* the same array, or two that do not overlap */
	if (dx != y && overlap(dx, n * sizeof(float), y, n * sizeof(float)))
		return -EINVAL;
	if (spt_use_avx2())
		spt_conv_mask_run_avx2(dx, y, n);
	else
		spt_conv_mask_run(dx, y, n);
	return 0;
}
