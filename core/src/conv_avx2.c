/* SPDX-License-Identifier: MIT */
/*
 * AVX2 path of the FP32 lowering's element loops (col2im's rows with the
 * ReLU mask, and spt_relu_mask): conv_rows.h eight floats at a time.  Same
 * bits as the generic path (check_simd).
 */
#include "conv_internal.h"

#define CONV_VF 8
#define CONV_NAME(x) spt_conv_##x##_avx2
#include "conv_rows.h"
