/* SPDX-License-Identifier: MIT */
/*
 * Whole-tensor SIMD paths of the codec (codec_avx2.c) and the geometry they
 * share with codec.c.  Every path computes exactly what the scalar code in
 * codec.c computes: same bytes, same floats, same statistics.
 */
#ifndef SPT_CODEC_SIMD_H
#define SPT_CODEC_SIMD_H

#include <string.h>

#include "ct_internal.h"

/* Force-inlined helpers of the SIMD files (codec_avx2.c, sgd_ct_avx2.c). */
#define AINLINE static inline __attribute__((always_inline))

/* Unaligned native-order loads and stores of the records (x86 is little-endian). */
AINLINE uint32_t ldu32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

AINLINE uint64_t ldu64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

AINLINE void stu32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

AINLINE void stu64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

#ifdef __AVX2__
#include <immintrin.h>

/*
 * A block's four vectors times 2^(6-E), exactly (bfp8.c's block_scale()),
 * where @B = E + 127 is the biased float exponent of its largest |x| (0 for
 * a subnormal maximum, E = -127): 2^(6-E) in one multiply, or 2^64 and
 * then the rest when it is not a float.
 */
AINLINE void scale4_v(__m256 *x0, __m256 *x1, __m256 *x2, __m256 *x3, uint32_t B)
{
	uint32_t s1 = B >= 6 ? (260u - B) << 23 : (127u + 64u) << 23;
	__m256 vs1 = _mm256_castsi256_ps(_mm256_set1_epi32((int)s1));

	*x0 = _mm256_mul_ps(*x0, vs1);
	*x1 = _mm256_mul_ps(*x1, vs1);
	*x2 = _mm256_mul_ps(*x2, vs1);
	*x3 = _mm256_mul_ps(*x3, vs1);
	if (__builtin_expect(B < 6, 0)) {
		__m256 vs2 = _mm256_castsi256_ps(_mm256_set1_epi32((int)((196u - B) << 23)));

		*x0 = _mm256_mul_ps(*x0, vs2);
		*x1 = _mm256_mul_ps(*x1, vs2);
		*x2 = _mm256_mul_ps(*x2, vs2);
		*x3 = _mm256_mul_ps(*x3, vs2);
	}
}

/*
 * The 32 int32 k of a block (lanes 8g..8g+7 in rg, |k| <= 128) as 32 int8 in
 * element order: the int16 pack is exact, the int8 pack saturates 128 to
 * 127, and -128 is raised to -127.
 */
AINLINE __m256i pack_k4(__m256i r0, __m256i r1, __m256i r2, __m256i r3)
{
	__m256i b = _mm256_packs_epi16(_mm256_packs_epi32(r0, r1), _mm256_packs_epi32(r2, r3));

	b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	return _mm256_max_epi8(b, _mm256_set1_epi8(-SPT_KMAX));
}

/* The L2 mask of a block's 32 packed k: bit j set where k[j] != 0. */
AINLINE uint32_t nz_mask32(__m256i b)
{
	return ~(uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(b, _mm256_setzero_si256()));
}
#endif

struct ct_geom {
	uint32_t rows, cols, bpr;
	uint64_t nblocks, tiles;
	uint64_t payload_off;	/* header + tile table */
};

/* A parsed (header-checked) compressed tensor. */
struct ct_hdr {
	struct ct_geom g;
	uint64_t nz_blocks, nonzeros, payload, total;
};

/*
 * An output tensor of @rows x @cols in @cap bytes (codec.c): its geometry @g, or the
 * encoder's errors in its order (-EINVAL, -E2BIG for the dimensions or a
 * tile table past u32, -ENOSPC without room for the header and table).
 */
int ct_out_begin(uint32_t rows, uint32_t cols, size_t cap, struct ct_geom *g);
/*
 * Its tile table's end and header once its payload ends at @pos, *@out_len
 * = @pos; -E2BIG if the payload is past u32 offsets.
 */
int ct_out_end(uint8_t *p, const struct ct_geom *g, uint64_t nzb, uint64_t nnz, uint64_t pos,
	       size_t *out_len);

/* Statistics the encoder accumulates (underflow is derived at the end). */
struct ct_enc_acc {
	uint64_t natural_zeros, pruned, nonzeros, nz_blocks;
	double sum_abs, sum_abs_kept;
};

/* The encoded size of a tensor of geometry @g with @nzb stored blocks and @nnz values. */
uint64_t ct_size(const struct ct_geom *g, uint64_t nzb, uint64_t nnz);
/* The statistics of a @rows x @cols encoding from its accumulator (not @st->bytes: 0). */
void ct_acc_stats(const struct ct_enc_acc *acc, uint32_t rows, uint32_t cols,
		  struct spt_tensor_stats *st);

/*
 * Largest record a tile can hold (L1 mask and 64 dense block records) and the
 * slack the SIMD paths may touch past a record (8-byte chunk stores/loads).
 */
#define CT_TILE_MAX	(8u + SPT_TILE_BLOCKS * (5u + SPT_BLOCK_ELEMS))
#define CT_SLACK	64u

/*
 * Decode a validated tensor into @out as its cols x rows transpose, through
 * @stg (CT_T_ROWS * bpr * 32 floats of scratch).
 */
#define CT_T_ROWS	8u
void spt_ct_decode_t_avx2(const uint8_t *p, const struct ct_hdr *h, float *out, float *stg);

/*
 * Encode every tile of @in (pruning below @tau, 0: none, deterministic or,
 * with @sprune, stochastic as spt_prune_value() decides it with the draws
 * of seed @pseed = prune.seed ^ SPT_PRUNE_SALT; nearest-even or stochastic
 * rounding with @seed) into @p from payload offset *@pos on, writing the
 * tile table too.  Returns 0, -EDOM, -ENOSPC or -E2BIG exactly where the
 * scalar loop would.
 */
int spt_ct_encode_avx2(const float *in, const struct ct_geom *g, float tau, int sprune,
		       uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
		       size_t cap, uint64_t *pos, struct ct_enc_acc *acc);

/*
 * @rows rows of @in (@cols floats each) pruned below @tau (0: none,
 * deterministic) and quantised to nearest-even exactly as spt_ct_encode()
 * quantises them, without writing records: block c of row r (its 32 k,
 * zero for a block the encoder would not store) at k + 32 * (r * bpr + c),
 * its L2 mask at l2[r * bpr + c] (0: not stored) and, when stored, its E8M0
 * byte at e8[r * bpr + c].  The
 * statistics are added to @acc as the encoder adds them (so calls on
 * consecutive rows give a whole tensor's).  0, -EINVAL, or -EDOM on a NaN
 * or Inf (the outputs then partly written).
 */
int spt_ct_quant_rows_avx2(const float *in, uint32_t rows, uint32_t cols, float tau,
			   int8_t *k, uint8_t *e8, uint32_t *l2, struct ct_enc_acc *acc);

struct ctt;
/*
 * spt_ct_encode_avx2() of a tensor of one block per row (cols <= 32); with
 * @tx, each stored row's values also go to the strips of the transpose @tx
 * (spt_ctt_init() for this geometry), each strip flushed when complete, so
 * that spt_ctt_finish() gives the transpose of the result.
 */
int spt_ct_encode_narrow_avx2(const float *in, const struct ct_geom *g, float tau, int sprune,
			      uint64_t pseed, enum spt_round round, uint64_t seed, uint8_t *p,
			      size_t cap, uint64_t *pos, struct ct_enc_acc *acc, struct ctt *tx);

/*
 * Parse and validate @buf as the readers do (0, -EINVAL for NULL, -EBADMSG)
 * and fill @h, for code outside codec.c that walks the records: in full as
 * spt_ct_validate() does, or, while spt_ct_set_trusted() is on for the
 * calling thread, its header, length and tile table only.
 */
int spt_ct_open(const void *buf, size_t len, struct ct_hdr *h);
/* Whether spt_ct_set_trusted() is on for the calling thread. */
bool ct_is_trusted(void);

/*
 * tiles_check() of codec.c: the same checks, the same verdict; like it,
 * called once the header and the tile table are checked (ct_check()).
 */
int spt_ct_check_avx2(const uint8_t *p, const struct ct_hdr *h);

/* Decode a validated tensor into @out (rows * cols floats). */
void spt_ct_decode_avx2(const uint8_t *p, const struct ct_hdr *h, float *out);

/* spt_ct_colsum() of a validated tensor of at most CT_COLSUM_BPR blocks per row. */
#define CT_COLSUM_BPR	8u
void spt_ct_colsum_avx2(const uint8_t *p, const struct ct_hdr *h, float *sum);

/* SGD parameters of spt_sgd_momentum_ct(). */
struct sgd_params {
	float lr, momentum, weight_decay;
};

/*
 * spt_sgd_momentum_ct() on AVX2 after the validation: -EDOM (nothing
 * changed) if a w or v is not finite, else the update with the gradient
 * decoded from the validated tensor @p in registers.
 */
int spt_sgd_ct_avx2(float *w, float *v, const uint8_t *p, const struct ct_hdr *h,
		    const struct sgd_params *sp);

#endif
