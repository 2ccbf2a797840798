/* SPDX-License-Identifier: MIT */
/* The reference GEMM kernel: the definition in core.h, one element at a time. */
#include "gemm_internal.h"

void spt_gemm_kernel_scalar(const struct spt_unpacked *a,
			    const struct spt_unpacked *b, float *c)
{
	uint32_t nb = a->bpr, i, j, k;

	for (i = 0; i < a->rows; i++) {
		for (j = 0; j < b->rows; j++) {
			float acc = 0.0f;

			for (k = 0; k < nb; k++) {
				uint64_t ba = (uint64_t)i * nb + k, bb = (uint64_t)j * nb + k;
				const int8_t *ka = a->k + 32 * ba, *kb = b->k + 32 * bb;
				int32_t isum = 0;
				unsigned int e;

				if (a->exp[ba] == SPT_EXP_ABSENT || b->exp[bb] == SPT_EXP_ABSENT)
					continue;
				for (e = 0; e < 32; e++)
					isum += (int32_t)ka[e] * kb[e];
				acc += ((float)isum * spt_exp2f_exact(a->exp[ba] - 6)) *
				       spt_exp2f_exact(b->exp[bb] - 6);
			}
			c[(uint64_t)i * b->rows + j] = acc;
		}
	}
}
