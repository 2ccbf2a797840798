/* SPDX-License-Identifier: MIT */
/*
 * spt bench: measure libsptcore on this CPU, and the SPT device.
 *
 *   spt bench core|train|device [--json] [--quick]
 *
 * core and train: single-threaded.  Encode/decode of FP32 data against memcpy of the same
 * bytes, and spt_gemm for the three training passes against OpenBLAS
 * cblas_sgemm on the same shapes (FP32 dense data).  Best-of-N wall time
 * with CLOCK_MONOTONIC.  device: bench_device.c.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cblas.h>

#include "spt/core.h"
#include "spt.h"

/* Declared by OpenBLAS's cblas.h; repeated in case another cblas.h is found. */
void openblas_set_num_threads(int num_threads);

#define BENCH_M		256u
#define BENCH_K		1024u
#define BENCH_N		1024u
#define CODEC_ROWS	1024u
#define CODEC_COLS	1024u
#define CODEC_SPARSITY	0.9

static const double bench_sparsity[] = { 0.0, 0.5, 0.9, 0.95 };
#define NSPARSITY (sizeof(bench_sparsity) / sizeof(bench_sparsity[0]))

static const char *const pass_name[] = { "fwd", "bwd", "wg" };

struct bench_opts {
	int json;
	int quick;
};

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double now_s(void)
{
	return clock_s(CLOCK_MONOTONIC);
}

/* Thread CPU time: less disturbed than wall time when the CPU is shared. */
static double cpu_s(void)
{
	return clock_s(CLOCK_THREAD_CPUTIME_ID);
}

/* xorshift64*: reproducible data without touching the library's RNG. */
static uint64_t rng_state = 0x853c49e6748fea9bull;

static double rng_unit(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

/* i.i.d.: zero with probability s, else uniform in +-[0.05, 1). */
static void fill(float *x, size_t n, double s)
{
	size_t i;

	for (i = 0; i < n; i++) {
		double u = rng_unit(), v = 0.05 + 0.95 * rng_unit();

		x[i] = u < s ? 0.0f : (float)(rng_unit() < 0.5 ? -v : v);
	}
}

static void transpose(const float *in, float *out, size_t rows, size_t cols)
{
	size_t r, c;

	for (r = 0; r < rows; r++)
		for (c = 0; c < cols; c++)
			out[c * rows + r] = in[r * cols + c];
}

struct ct {
	void *buf;
	size_t len;
};

static int ct_make(const float *x, uint32_t rows, uint32_t cols, struct ct *ct)
{
	size_t cap = spt_ct_bound(rows, cols);
	int err;

	ct->buf = malloc(cap);
	if (!ct->buf)
		return spt_err("out of memory");
	err = spt_ct_encode(x, rows, cols, NULL, ct->buf, cap, &ct->len, NULL);
	if (err)
		return spt_err("encode: %s", spt_core_strerror(err));
	return 0;
}

static int reps_of(const struct bench_opts *o)
{
	return o->quick ? 3 : 15;
}

/* ---- codec -------------------------------------------------------------- */

struct codec_result {
	double enc_ratio, dec_ratio;
	double memcpy_gbs, enc_gbs, dec_gbs;
};

static int bench_codec(const struct bench_opts *o, struct codec_result *r)
{
	size_t n = (size_t)CODEC_ROWS * CODEC_COLS, bytes = n * sizeof(float);
	size_t cap = spt_ct_bound(CODEC_ROWS, CODEC_COLS), len = 0;
	float *x = malloc(bytes), *y = malloc(bytes);
	void *ct = malloc(cap);
	double best_cp = 1e30, best_enc = 1e30, best_dec = 1e30;
	int i, err = 0, ret = 0;

	if (!x || !y || !ct) {
		ret = spt_err("out of memory");
		goto out;
	}
	fill(x, n, CODEC_SPARSITY);
	memset(y, 0, bytes);
	for (i = 0; i < reps_of(o); i++) {
		double t0 = now_s(), t1, t2, t3;

		memcpy(y, x, bytes);
		t1 = now_s();
		err = spt_ct_encode(x, CODEC_ROWS, CODEC_COLS, NULL, ct, cap, &len, NULL);
		t2 = now_s();
		if (!err)
			err = spt_ct_decode(ct, len, y, n);
		t3 = now_s();
		if (err) {
			ret = spt_err("codec: %s", spt_core_strerror(err));
			goto out;
		}
		best_cp = fmin(best_cp, t1 - t0);
		best_enc = fmin(best_enc, t2 - t1);
		best_dec = fmin(best_dec, t3 - t2);
	}
	r->memcpy_gbs = (double)bytes / best_cp * 1e-9;
	r->enc_gbs = (double)bytes / best_enc * 1e-9;
	r->dec_gbs = (double)bytes / best_dec * 1e-9;
	r->enc_ratio = best_cp / best_enc;
	r->dec_ratio = best_cp / best_dec;
out:
	free(x);
	free(y);
	free(ct);
	return ret;
}

/* ---- GEMM --------------------------------------------------------------- */

struct gemm_result {
	int pass;
	double sparsity;
	double t_spt, t_sgemm;		/* best wall time */
	double c_spt, c_sgemm;		/* best thread CPU time */
	struct spt_counters cnt;
};

/*
 * Operands of one pass at A-operand sparsity s.  The B operand is dense:
 * W for fwd and bwd, a dense dY for wg.
 */
struct pass_data {
	uint32_t m, n, k;		/* C[m x n] = A[m x k] * B[n x k]^T */
	struct ct a, b;
	/* sgemm view: C = op(P) * op(Q), row-major */
	const float *p, *q;
	enum CBLAS_TRANSPOSE tp, tq;
	int ldp, ldq;
};

struct bench_data {
	float *x, *w, *dy, *dy_dense, *xt, *wt, *dyt_dense;
};

static void bench_data_free(struct bench_data *d)
{
	free(d->x);
	free(d->w);
	free(d->dy);
	free(d->dy_dense);
	free(d->xt);
	free(d->wt);
	free(d->dyt_dense);
}

static int pass_setup(int pass, const struct bench_data *d, struct pass_data *p)
{
	const uint32_t M = BENCH_M, K = BENCH_K, N = BENCH_N;
	int err;

	memset(p, 0, sizeof(*p));
	switch (pass) {
	case SPT_PASS_FWD:	/* Y[M x N] = X[M x K] W[K x N] */
		p->m = M; p->n = N; p->k = K;
		err = ct_make(d->x, M, K, &p->a) || ct_make(d->wt, N, K, &p->b);
		p->p = d->x; p->tp = CblasNoTrans; p->ldp = (int)K;
		p->q = d->w; p->tq = CblasNoTrans; p->ldq = (int)N;
		break;
	case SPT_PASS_BWD:	/* dX[M x K] = dY[M x N] W^T */
		p->m = M; p->n = K; p->k = N;
		err = ct_make(d->dy, M, N, &p->a) || ct_make(d->w, K, N, &p->b);
		p->p = d->dy; p->tp = CblasNoTrans; p->ldp = (int)N;
		p->q = d->w; p->tq = CblasTrans; p->ldq = (int)N;
		break;
	default:		/* dW[K x N] = X^T dY */
		p->m = K; p->n = N; p->k = M;
		err = ct_make(d->xt, K, M, &p->a) || ct_make(d->dyt_dense, N, M, &p->b);
		p->p = d->x; p->tp = CblasTrans; p->ldp = (int)K;
		p->q = d->dy_dense; p->tq = CblasNoTrans; p->ldq = (int)N;
		break;
	}
	return err;
}

static int bench_pass(const struct bench_opts *o, int pass, double s,
		      const struct bench_data *d, float *c, struct gemm_result *r)
{
	struct spt_energy_model model;
	struct pass_data p;
	int i, err, ret = 0;

	r->pass = pass;
	r->sparsity = s;
	r->t_spt = r->t_sgemm = r->c_spt = r->c_sgemm = 1e30;
	if (pass_setup(pass, d, &p)) {
		ret = 1;
		goto out;
	}
	for (i = 0; i < reps_of(o); i++) {
		struct spt_gemm_out out;
		double t0, t1, t2, c0, c1, c2;

		memset(&out, 0, sizeof(out));
		spt_encode_opts_init(&out.enc);
		out.y = c;
		c0 = cpu_s();
		t0 = now_s();
		err = spt_gemm((enum spt_pass)pass, p.a.buf, p.a.len, p.b.buf, p.b.len,
			       NULL, &out, &r->cnt);
		t1 = now_s();
		c1 = cpu_s();
		if (err) {
			ret = spt_err("spt_gemm: %s", spt_core_strerror(err));
			goto out;
		}
		cblas_sgemm(CblasRowMajor, p.tp, p.tq, (int)p.m, (int)p.n, (int)p.k,
			    1.0f, p.p, p.ldp, p.q, p.ldq, 0.0f, c, (int)p.n);
		t2 = now_s();
		c2 = cpu_s();
		r->c_spt = fmin(r->c_spt, c1 - c0);
		r->c_sgemm = fmin(r->c_sgemm, c2 - c1);
		r->t_spt = fmin(r->t_spt, t1 - t0);
		r->t_sgemm = fmin(r->t_sgemm, t2 - t1);
	}
	spt_energy_model_init(&model);
	spt_model_apply(&model, &r->cnt);
out:
	free(p.a.buf);
	free(p.b.buf);
	return ret;
}

static int bench_data_make(double s, struct bench_data *d)
{
	const size_t M = BENCH_M, K = BENCH_K, N = BENCH_N;

	memset(d, 0, sizeof(*d));
	d->x = malloc(M * K * sizeof(float));
	d->w = malloc(K * N * sizeof(float));
	d->dy = malloc(M * N * sizeof(float));
	d->dy_dense = malloc(M * N * sizeof(float));
	d->xt = malloc(M * K * sizeof(float));
	d->wt = malloc(K * N * sizeof(float));
	d->dyt_dense = malloc(M * N * sizeof(float));
	if (!d->x || !d->w || !d->dy || !d->dy_dense || !d->xt || !d->wt || !d->dyt_dense)
		return spt_err("out of memory");
	fill(d->x, M * K, s);
	fill(d->w, K * N, 0.0);
	fill(d->dy, M * N, s);
	fill(d->dy_dense, M * N, 0.0);
	transpose(d->x, d->xt, M, K);
	transpose(d->w, d->wt, K, N);
	transpose(d->dy_dense, d->dyt_dense, M, N);
	return 0;
}

/* ---- output ------------------------------------------------------------- */

static void print_human(const struct codec_result *cr, const struct gemm_result *g, size_t ng,
			int reps)
{
	size_t i;

	printf("spt bench core: single thread, SIMD path %s\n\n",
	       spt_core_isa_name(spt_core_get_isa()));
	printf("codec: %ux%u FP32, %.0f%% i.i.d. zeros, nearest-even, no pruning\n",
	       CODEC_ROWS, CODEC_COLS, CODEC_SPARSITY * 100);
	printf("  memcpy  %7.2f GB/s\n", cr->memcpy_gbs);
	printf("  encode  %7.2f GB/s  %.3f x memcpy\n", cr->enc_gbs, cr->enc_ratio);
	printf("  decode  %7.2f GB/s  %.3f x memcpy\n\n", cr->dec_gbs, cr->dec_ratio);
	printf("gemm: M=%u K=%u N=%u (wg: %ux%u output, reduction %u); operands pre-encoded,\n"
	       "      spt_gemm time includes validation and re-layout, FP32 output y, no\n"
	       "      epilogue; A operand i.i.d. sparse, B dense; sgemm = OpenBLAS, dense FP32;\n"
	       "      best of %d, the two timed alternately; speedup = sgemm / spt wall\n"
	       "      time, (cpu) the same in thread CPU time\n",
	       BENCH_M, BENCH_K, BENCH_N, BENCH_K, BENCH_N, BENCH_M, reps);
	printf("  %-4s %8s %9s %9s %8s %9s %11s %12s\n", "pass", "sparsity", "spt ms",
	       "sgemm ms", "speedup", "(cpu)", "exec/dense", "eff TOPS/W*");
	for (i = 0; i < ng; i++)
		printf("  %-4s %8.2f %9.3f %9.3f %7.2fx %8.2fx %11.4f %12.1f\n",
		       pass_name[g[i].pass], g[i].sparsity, g[i].t_spt * 1e3,
		       g[i].t_sgemm * 1e3, g[i].t_sgemm / g[i].t_spt,
		       g[i].c_sgemm / g[i].c_spt,
		       (double)g[i].cnt.exec_macs / (double)g[i].cnt.dense_macs,
		       g[i].cnt.eff_tops_per_w);
	printf("  * modeled (spt_model_apply with default constants), not measured\n");
}

static void print_json(const struct codec_result *cr, const struct gemm_result *g, size_t ng)
{
	size_t i;

	printf("{\"isa\":\"%s\",\"threads\":1,", spt_core_isa_name(spt_core_get_isa()));
	printf("\"codec\":{\"rows\":%u,\"cols\":%u,\"sparsity\":%.2f,"
	       "\"memcpy_gbs\":%.3f,\"encode_gbs\":%.3f,\"decode_gbs\":%.3f},",
	       CODEC_ROWS, CODEC_COLS, CODEC_SPARSITY, cr->memcpy_gbs, cr->enc_gbs, cr->dec_gbs);
	printf("\"encode_vs_memcpy\":%.4f,\"decode_vs_memcpy\":%.4f,", cr->enc_ratio, cr->dec_ratio);
	printf("\"gemm_note\":\"operands pre-encoded; spt_gemm time includes validation and "
	       "re-layout; FP32 output; A operand sparse, B dense; best of N, alternating\",");
	printf("\"gemm\":[");
	for (i = 0; i < ng; i++) {
		const struct spt_counters *c = &g[i].cnt;

		printf("%s{\"pass\":\"%s\",\"sparsity\":%.2f,\"m\":%u,\"k\":%u,\"n\":%u,"
		       "\"spt_ms\":%.4f,\"sgemm_ms\":%.4f,\"speedup_vs_sgemm\":%.4f,"
		       "\"spt_cpu_ms\":%.4f,\"sgemm_cpu_ms\":%.4f,\"speedup_cpu\":%.4f,"
		       "\"modeled\":{\"dense_macs\":%llu,\"exec_macs\":%llu,\"blocks\":%llu,"
		       "\"bytes_read\":%llu,\"bytes_written\":%llu,\"cycles\":%llu,"
		       "\"energy_pj\":%.1f,\"eff_tops_per_w\":%.2f,\"exec_tops_per_w\":%.2f}}",
		       i ? "," : "", pass_name[g[i].pass], g[i].sparsity,
		       g[i].pass == SPT_PASS_WG ? BENCH_K : BENCH_M,
		       g[i].pass == SPT_PASS_WG ? BENCH_M : BENCH_K, BENCH_N,
		       g[i].t_spt * 1e3, g[i].t_sgemm * 1e3, g[i].t_sgemm / g[i].t_spt,
		       g[i].c_spt * 1e3, g[i].c_sgemm * 1e3, g[i].c_sgemm / g[i].c_spt,
		       (unsigned long long)c->dense_macs, (unsigned long long)c->exec_macs,
		       (unsigned long long)c->blocks, (unsigned long long)c->bytes_read,
		       (unsigned long long)c->bytes_written, (unsigned long long)c->cycles,
		       c->energy_pj, c->eff_tops_per_w, c->exec_tops_per_w);
	}
	printf("]}\n");
}

/* ---- targets ------------------------------------------------------------ */

static int bench_core(const struct bench_opts *o)
{
	struct gemm_result res[3 * NSPARSITY];
	struct codec_result cr = { 0, 0, 0, 0, 0 };
	float *c = malloc((size_t)BENCH_K * BENCH_N * sizeof(float));
	size_t si, ng = 0;
	int pass, ret = 0;

	if (!c)
		return spt_err("out of memory");
	memset(res, 0, sizeof(res));
	openblas_set_num_threads(1);
	ret = bench_codec(o, &cr);
	for (si = 0; si < NSPARSITY && !ret; si++) {
		struct bench_data d;

		ret = bench_data_make(bench_sparsity[si], &d);
		for (pass = SPT_PASS_FWD; pass <= SPT_PASS_WG && !ret; pass++)
			ret = bench_pass(o, pass, bench_sparsity[si], &d, c, &res[ng++]);
		bench_data_free(&d);
	}
	free(c);
	if (ret)
		return ret;
	if (o->json)
		print_json(&cr, res, ng);
	else
		print_human(&cr, res, ng, reps_of(o));
	return 0;
}

/*
 * One training step of the MLP on the CPU backend: BFP8 at target sparsity
 * 0.9 (controller in steady state) against the FP32 OpenBLAS baseline of the
 * same model, in the same run.
 */
static int bench_train(const struct bench_opts *o)
{
	static const unsigned int batches[] = { 64, 256 };
	double fp32[2], bfp8[2], sp[2];
	unsigned int steps = o->quick ? 10 : 40;
	size_t i;

	openblas_set_num_threads(1);
	for (i = 0; i < 2; i++)
		if (spt_train_bench("mlp", batches[i], 0.9f, steps, &fp32[i], &bfp8[i], &sp[i]))
			return 1;
	if (o->json) {
		printf("{\"train\": [");
		for (i = 0; i < 2; i++)
			printf("%s{\"model\": \"mlp\", \"batch\": %u, \"fp32_ms\": %.3f, "
			       "\"bfp8_ms\": %.3f, \"sparsity\": %.4f, \"speedup_vs_fp32\": %.3f}",
			       i ? ", " : "", batches[i], fp32[i], bfp8[i], sp[i], fp32[i] / bfp8[i]);
		printf("]}\n");
		return 0;
	}
	printf("spt bench train: MLP 784-512-256-10 training step, CPU backend, single thread,\n"
	       "%u timed steps per configuration, interleaved in rounds (wall time)\n", steps);
	printf("  batch  fp32 OpenBLAS ms  bfp8@0.9 ms  sparsity  speedup\n");
	for (i = 0; i < 2; i++)
		printf("  %5u  %16.3f  %11.3f  %8.3f  %6.2fx\n", batches[i], fp32[i], bfp8[i],
		       sp[i], fp32[i] / bfp8[i]);
	return 0;
}

static int bench_device(const struct bench_opts *o)
{
	return spt_bench_device(o->json, o->quick);
}

struct bench_target {
	const char *name;
	int (*fn)(const struct bench_opts *o);
	const char *help;
};

static const struct bench_target bench_targets[] = {
	{ "core", bench_core, "libsptcore on this CPU: codec vs memcpy, GEMMs vs OpenBLAS sgemm" },
	{ "train", bench_train, "a training step on the CPU backend vs the FP32 OpenBLAS baseline" },
	{ "device", bench_device, "the SPT device: job round trips, a training step (needs one)" },
};

static void bench_usage(FILE *f)
{
	size_t i;

	fprintf(f, "usage: spt bench <target> [--json] [--quick]\n\ntargets:\n");
	for (i = 0; i < sizeof(bench_targets) / sizeof(bench_targets[0]); i++)
		fprintf(f, "  %-8s %s\n", bench_targets[i].name, bench_targets[i].help);
	fprintf(f, "\noptions:\n"
		"  -j, --json   print one JSON object\n"
		"  --quick      fewer repetitions\n"
		"  -h, --help   this text\n"
		"\nexit status: 0, 1 error, 2 bad arguments, %d no SPT device (device)\n",
		SPT_EXIT_NO_DEVICE);
}

int cmd_bench(int argc, char **argv)
{
	const struct bench_target *t = NULL;
	struct bench_opts o = { 0, 0 };
	int i;
	size_t j;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			bench_usage(stdout);
			return 0;
		}
	}
	if (argc < 2) {
		bench_usage(stderr);
		return 2;
	}
	for (j = 0; j < sizeof(bench_targets) / sizeof(bench_targets[0]); j++)
		if (!strcmp(argv[1], bench_targets[j].name))
			t = &bench_targets[j];
	if (!t) {
		spt_err("bench: unknown target '%s'", argv[1]);
		bench_usage(stderr);
		return 2;
	}
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j")) {
			o.json = 1;
		} else if (!strcmp(argv[i], "--quick")) {
			o.quick = 1;
		} else {
			spt_err("bench: unknown argument '%s'", argv[i]);
			bench_usage(stderr);
			return 2;
		}
	}
	return t->fn(&o);
}
