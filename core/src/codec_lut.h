/* SPDX-License-Identifier: MIT */
#ifndef SPT_CODEC_LUT_H
#define SPT_CODEC_LUT_H

#include <stdint.h>

extern const uint8_t spt_lut_compress8[2][256][8];
extern const uint8_t spt_lut_expand8[256][8];
extern const float spt_lut_e8m0_scale[256];

#endif
