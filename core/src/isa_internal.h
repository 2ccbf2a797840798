/* SPDX-License-Identifier: MIT */
/*
 * Whether to take a file's AVX2 path: the ISA chosen at run time
 * (spt_core_get_isa()), or never in a build without SIMD, where the macro's
 * constant 0 lets the compiler drop the calls to *_avx2 functions that such
 * a build does not contain.
 */
#ifndef SPT_ISA_INTERNAL_H
#define SPT_ISA_INTERNAL_H

#include "spt/core.h"

#ifdef SPT_NO_SIMD
#define spt_use_avx2() 0
#else
#define spt_use_avx2() (spt_core_get_isa() >= SPT_ISA_AVX2)
#endif

#endif
