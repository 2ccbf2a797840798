/* SPDX-License-Identifier: MIT */
/* Error strings and the process-wide choice of SIMD path. */
#include <errno.h>
#include <stdatomic.h>

#include "spt/core.h"

const char *spt_core_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case -EINVAL:
		return "invalid argument";
	case -EDOM:
		return "NaN or infinite input";
	case -ENOSPC:
		return "output buffer too small";
	case -EBADMSG:
		return "malformed compressed tensor";
	case -E2BIG:
		return "size beyond the format's limits";
	case -ENOMEM:
		return "out of memory";
	case -ENOTSUP:
		return "not supported by this build or CPU";
	default:
		return "unknown error";
	}
}

/*
 * AVX-512 needs F, BW, VL and DQ (the file is built with them) and VNNI:
 * gemm_avx512.c is compiled with -mavx512vnni and uses vpdpwssd, so a CPU
 * without VNNI (Skylake-X) runs the AVX2 path instead.
 */
int spt_core_isa_supported(enum spt_isa isa)
{
	switch (isa) {
	case SPT_ISA_SCALAR:
		return 1;
#ifndef SPT_NO_SIMD
	case SPT_ISA_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		       __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
	case SPT_ISA_AVX512:
		return spt_core_isa_supported(SPT_ISA_AVX2) &&
		       __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
		       __builtin_cpu_supports("avx512vnni");
#endif
	default:
		return 0;
	}
}

/* 0 until first resolved; then one of SCALAR, AVX2, AVX512. */
static atomic_int spt_isa_current;

static enum spt_isa spt_isa_best(void)
{
	if (spt_core_isa_supported(SPT_ISA_AVX512))
		return SPT_ISA_AVX512;
	if (spt_core_isa_supported(SPT_ISA_AVX2))
		return SPT_ISA_AVX2;
	return SPT_ISA_SCALAR;
}

int spt_core_set_isa(enum spt_isa isa)
{
	if (isa == SPT_ISA_AUTO)
		isa = spt_isa_best();
	else if (!spt_core_isa_supported(isa))
		return -ENOTSUP;
	atomic_store(&spt_isa_current, (int)isa);
	return 0;
}

enum spt_isa spt_core_get_isa(void)
{
	int isa = atomic_load(&spt_isa_current);

	if (isa == 0) {
		int want = (int)spt_isa_best(), expected = 0;

		/* A concurrent set_isa() wins over the automatic choice. */
		if (!atomic_compare_exchange_strong(&spt_isa_current, &expected, want))
			return (enum spt_isa)expected;
		isa = want;
	}
	return (enum spt_isa)isa;
}

const char *spt_core_isa_name(enum spt_isa isa)
{
	switch (isa) {
	case SPT_ISA_AUTO:
		return "auto";
	case SPT_ISA_SCALAR:
		return "scalar";
	case SPT_ISA_AVX2:
		return "avx2";
	case SPT_ISA_AVX512:
		return "avx512";
	default:
		return "unknown";
	}
}
