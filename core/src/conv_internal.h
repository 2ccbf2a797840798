/* SPDX-License-Identifier: MIT */
/*
 * The FP32 lowering's element loops (conv_rows.h), instantiated at the
 * generic vector width in conv.c and at eight floats in conv_avx2.c.
 */
#ifndef SPT_CONV_INTERNAL_H
#define SPT_CONV_INTERNAL_H

#include <stddef.h>

#include "spt/core.h"

void spt_conv_mask_run(float *dx, const float *y, size_t n);
void spt_conv_col2im_rows(const struct spt_conv_shape *s, const struct spt_conv_dims *d,
			  const float *restrict col, const float *restrict y,
			  float *restrict img);
void spt_conv_mask_run_avx2(float *dx, const float *y, size_t n);
void spt_conv_col2im_rows_avx2(const struct spt_conv_shape *s, const struct spt_conv_dims *d,
			       const float *restrict col, const float *restrict y,
			       float *restrict img);

#endif
