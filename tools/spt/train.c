// SPDX-License-Identifier: MIT
/* spt train: train a model on Fashion-MNIST with sparsity scaling. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "spt/core.h"
#include "spt/spt.h"
#include "spt.h"

#define MAX_LAYERS 16

struct train_args {
	enum spt_backend backend;
	const char *device;
	const char *model;
	const char *data;
	unsigned long epochs, batch, limit_train, limit_test, bench_steps;
	float lr, momentum, wd, lr_min;
	enum spt_lr_schedule sched;
	unsigned long long seed;
	enum spt_precision precision;
	enum spt_isa isa;
	float target, wcopy, wgrad;
	float act_targets[MAX_LAYERS], wcopy_targets[MAX_LAYERS], wgrad_targets[MAX_LAYERS];
	int n_act_targets, n_wcopy_targets, n_wgrad_targets;
	enum spt_prune_mode act_kind, err_kind, wcopy_kind;
	double warmup_frac, ramp_frac;
	long warmup_steps, ramp_steps;
	const char *save, *resume, *report;
	bool json, bench, quiet;
};

/*
 * What a checkpoint remembers besides the model (its caller data).  Version 2
 * adds the seed: weights, shuffles and every stochastic draw depend on it,
 * so a resume with another seed would silently train a different run.
 * Version-1 records (no seed) still load.
 */
#define RESUME_MAGIC_V1	0x53505452u
#define RESUME_MAGIC	0x32505452u

struct resume_state {
	uint32_t magic;
	uint32_t epochs_done;
	uint32_t step_in_epoch;	/* > 0: interrupted inside epoch epochs_done */
	uint64_t shuffle_rng;	/* state before that epoch's shuffle */
	uint64_t seed;		/* version 2 */
};

#define RESUME_V1_SIZE	offsetof(struct resume_state, seed)

/* Per-step record for the report. */
struct step_rec {
	uint32_t epoch;
	float loss, acc, lr, interim, bytes_ratio, seconds;
	double energy_pj, tops_w;
	uint64_t dense_macs, exec_macs, cycles;
	float act_s[MAX_LAYERS], err_s[MAX_LAYERS], act_tau[MAX_LAYERS], err_tau[MAX_LAYERS];
};

struct epoch_rec {
	double train_loss, train_acc, test_loss, test_acc, interim, bytes_ratio, tops_w, seconds;
};

/*
 * Where one epoch's traffic goes, per layer: bytes read and written by each
 * GEMM pass and by the re-blocking transposes, the dense FP16 bytes of each
 * pass, and the stored nonzeros of each tensor class.
 */
#define TR_PARTS 4	/* SPT_PASS_FWD, _BWD, _WG, then the re-blocking transposes */
struct traffic {
	double rd[MAX_LAYERS][TR_PARTS], wr[MAX_LAYERS][TR_PARTS], fp16[MAX_LAYERS][TR_PARTS];
	double nz[MAX_LAYERS][SPT_CLASS_COUNT], el[MAX_LAYERS][SPT_CLASS_COUNT];
};

static void traffic_add(struct traffic *t, int l, const struct spt_layer_stats *ls)
{
	double rd = 0, wr = 0;
	int p, c;

	for (p = 0; p < 3; p++) {
		t->rd[l][p] += (double)ls->pass[p].bytes_read;
		t->wr[l][p] += (double)ls->pass[p].bytes_written;
		t->fp16[l][p] += (double)ls->pass[p].dense_fp16_bytes;
		rd += (double)ls->pass[p].bytes_read;
		wr += (double)ls->pass[p].bytes_written;
	}
	t->rd[l][3] += (double)ls->total.bytes_read - rd;
	t->wr[l][3] += (double)ls->total.bytes_written - wr;
	for (c = 0; c < SPT_CLASS_COUNT; c++) {
		t->nz[l][c] += (double)ls->cls[c].nonzeros;
		t->el[l][c] += (double)ls->cls[c].elements;
	}
}


static volatile sig_atomic_t stop_requested;

static double spt_now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU time of the whole process (all threads): robust on a loaded machine. */
static double cpu_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void on_sigint(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void train_usage(FILE *f)
{
	fprintf(f,
"usage: spt train [options]\n"
"\n"
"Train a model on Fashion-MNIST (Debian's dataset-fashion-mnist) with the\n"
"chip's BFP8 arithmetic and sparsity scaling, or the FP32 dense baseline.\n"
"\n"
"  --backend cpu|device      where the steps run (default cpu)\n"
"  --device PATH             accel node for --backend device (default: discover)\n"
"  --model mlp|cnn           mlp: 784-512-256-10; cnn: 3 convs + 2 linear (default mlp)\n"
"  --precision bfp8|fp32     fp32 is the dense OpenBLAS baseline (default bfp8)\n"
"  --epochs N                (default 1)\n"
"  --batch N                 (default 64)\n"
"  --lr X                    initial learning rate (default 0.05)\n"
"  --lr-schedule cosine|step|constant   (default cosine)\n"
"  --momentum X, --weight-decay X        (default 0.9, 5e-4)\n"
"  --seed N                  weights, shuffling and pruning draws (default 1)\n"
"  --target-sparsity S       mean interim (activation and error) sparsity target\n"
"                            for the closed-loop controller, 0 = dense (default 0)\n"
"  --act-targets S1,S2,...   per-layer activation targets (layers 1..), overriding S\n"
"  --prune deterministic|stochastic   activation pruning kind (default deterministic)\n"
"  --err-prune deterministic|stochastic  error pruning kind (default stochastic;\n"
"                            deterministic error pruning is biased)\n"
"  --wcopy-sparsity S        also prune the BFP8 weight copies toward S\n"
"  --wcopy-targets S0,S1,..  per-layer weight-copy targets (layers 0..; 0 = off),\n"
"                            overriding --wcopy-sparsity\n"
"  --wcopy-prune deterministic|stochastic  weight-copy pruning kind (default\n"
"                            deterministic)\n"
"  --wgrad-sparsity S        also prune weight gradients toward S (stochastic,\n"
"                            unbiased; the gradient is written compressed\n"
"                            either way)\n"
"  --wgrad-targets S0,S1,..  per-layer weight-gradient targets (layers 0..; 0 = off)\n"
"  --warmup F, --ramp F      dense warm-up and cubic ramp as fractions of the run\n"
"                            (default 0.05 and 0.25)\n"
"  --warmup-steps N, --ramp-steps N   the same in steps\n"
"  --limit-train N, --limit-test N    use only the first N samples\n"
"  --data DIR                dataset directory (default " SPT_FASHION_MNIST_DIR ")\n"
"  --save PATH               checkpoint after every epoch and on SIGINT\n"
"  --resume PATH             continue from a checkpoint\n"
"  --report DIR              per-step and per-epoch CSV and SVG plots\n"
"  --bench                   time training steps: FP32 OpenBLAS dense vs this config\n"
"  --bench-steps N           steps timed per configuration (default 50)\n"
"  --isa auto|scalar|avx2|avx512   the CPU backend's SIMD path (default auto:\n"
"                            the best this CPU has; every path gives the same bits)\n"
"  -j, --json                print one JSON object at the end\n"
"  -q, --quiet               no progress output\n"
"\n"
"Energy, cycles and TOPS/W are modeled (libsptcore's analytic model).\n"
"SIGINT finishes the current step, saves if --save was given and exits.\n");
}

static int parse_float(const char *s, float lo, float hi, float *v)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(d) || d < lo || d > hi)
		return -1;
	*v = (float)d;
	return 0;
}

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *v)
{
	unsigned long long x;

	if (spt_parse_u64(s, &x) || x < lo || x > hi)
		return -1;
	*v = (unsigned long)x;
	return 0;
}

static int parse_kind(const char *s, enum spt_prune_mode *k)
{
	if (!strcmp(s, "deterministic"))
		*k = SPT_PRUNE_DETERMINISTIC;
	else if (!strcmp(s, "stochastic"))
		*k = SPT_PRUNE_STOCHASTIC;
	else
		return -1;
	return 0;
}

static int parse_isa(const char *s, enum spt_isa *isa)
{
	static const enum spt_isa all[] = { SPT_ISA_AUTO, SPT_ISA_SCALAR, SPT_ISA_AVX2,
					    SPT_ISA_AVX512 };
	size_t i;

	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (!strcmp(s, spt_core_isa_name(all[i]))) {
			*isa = all[i];
			return 0;
		}
	}
	return -1;
}

enum {
	OPT_BACKEND = 256, OPT_DEVICE, OPT_MODEL, OPT_PRECISION, OPT_EPOCHS, OPT_BATCH, OPT_LR,
	OPT_SCHED, OPT_MOM, OPT_WD, OPT_SEED, OPT_TARGET, OPT_ACT_TARGETS, OPT_PRUNE,
	OPT_ERR_PRUNE, OPT_WCOPY, OPT_WGRAD, OPT_WARMUP, OPT_RAMP, OPT_WARMUP_STEPS,
	OPT_RAMP_STEPS, OPT_LIMIT_TRAIN, OPT_LIMIT_TEST, OPT_DATA, OPT_SAVE, OPT_RESUME,
	OPT_REPORT, OPT_BENCH, OPT_BENCH_STEPS, OPT_LR_MIN, OPT_WCOPY_TARGETS, OPT_WCOPY_PRUNE,
	OPT_WGRAD_TARGETS, OPT_ISA,
};

static const struct option train_opts[] = {
	{ "backend", required_argument, NULL, OPT_BACKEND },
	{ "device", required_argument, NULL, OPT_DEVICE },
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "precision", required_argument, NULL, OPT_PRECISION },
	{ "epochs", required_argument, NULL, OPT_EPOCHS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "lr", required_argument, NULL, OPT_LR },
	{ "lr-schedule", required_argument, NULL, OPT_SCHED },
	{ "lr-min", required_argument, NULL, OPT_LR_MIN },
	{ "momentum", required_argument, NULL, OPT_MOM },
	{ "weight-decay", required_argument, NULL, OPT_WD },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "target-sparsity", required_argument, NULL, OPT_TARGET },
	{ "act-targets", required_argument, NULL, OPT_ACT_TARGETS },
	{ "prune", required_argument, NULL, OPT_PRUNE },
	{ "err-prune", required_argument, NULL, OPT_ERR_PRUNE },
	{ "wcopy-sparsity", required_argument, NULL, OPT_WCOPY },
	{ "wgrad-sparsity", required_argument, NULL, OPT_WGRAD },
	{ "wcopy-targets", required_argument, NULL, OPT_WCOPY_TARGETS },
	{ "wcopy-prune", required_argument, NULL, OPT_WCOPY_PRUNE },
	{ "wgrad-targets", required_argument, NULL, OPT_WGRAD_TARGETS },
	{ "warmup", required_argument, NULL, OPT_WARMUP },
	{ "ramp", required_argument, NULL, OPT_RAMP },
	{ "warmup-steps", required_argument, NULL, OPT_WARMUP_STEPS },
	{ "ramp-steps", required_argument, NULL, OPT_RAMP_STEPS },
	{ "limit-train", required_argument, NULL, OPT_LIMIT_TRAIN },
	{ "limit-test", required_argument, NULL, OPT_LIMIT_TEST },
	{ "data", required_argument, NULL, OPT_DATA },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "report", required_argument, NULL, OPT_REPORT },
	{ "bench", no_argument, NULL, OPT_BENCH },
	{ "bench-steps", required_argument, NULL, OPT_BENCH_STEPS },
	{ "isa", required_argument, NULL, OPT_ISA },
	{ "json", no_argument, NULL, 'j' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int parse_targets(const char *s, float *targets, int *count)
{
	char *dup = strdup(s), *tok, *save = NULL;
	int n = 0;

	if (!dup)
		return -1;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n >= MAX_LAYERS || parse_float(tok, 0, 0.999f, &targets[n])) {
			free(dup);
			return -1;
		}
		n++;
	}
	free(dup);
	*count = n;
	return n ? 0 : -1;
}

static int parse_args(int argc, char **argv, struct train_args *a)
{
	unsigned long ul;
	float f;
	int c;

	memset(a, 0, sizeof(*a));
	a->model = "mlp";
	a->epochs = 1;
	a->batch = 64;
	a->lr = 0.05f;
	a->momentum = 0.9f;
	a->wd = 5e-4f;
	a->sched = SPT_LR_COSINE;
	a->seed = 1;
	a->act_kind = SPT_PRUNE_DETERMINISTIC;
	a->err_kind = SPT_PRUNE_STOCHASTIC;
	a->wcopy_kind = SPT_PRUNE_DETERMINISTIC;
	a->warmup_frac = 0.05;
	a->ramp_frac = 0.25;
	a->warmup_steps = a->ramp_steps = -1;
	a->bench_steps = 50;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jqh", train_opts, NULL)) != -1) {
		switch (c) {
		case OPT_BACKEND:
			if (!strcmp(optarg, "cpu"))
				a->backend = SPT_BACKEND_CPU;
			else if (!strcmp(optarg, "device"))
				a->backend = SPT_BACKEND_DEVICE;
			else
				return spt_err("--backend: expected cpu or device, got '%s'", optarg);
			break;
		case OPT_DEVICE: a->device = optarg; break;
		case OPT_MODEL:
			if (strcmp(optarg, "mlp") && strcmp(optarg, "cnn"))
				return spt_err("--model: expected mlp or cnn, got '%s'", optarg);
			a->model = optarg;
			break;
		case OPT_PRECISION:
			if (!strcmp(optarg, "bfp8"))
				a->precision = SPT_PRECISION_BFP8;
			else if (!strcmp(optarg, "fp32"))
				a->precision = SPT_PRECISION_FP32;
			else
				return spt_err("--precision: expected bfp8 or fp32, got '%s'", optarg);
			break;
		case OPT_EPOCHS:
			if (parse_ulong(optarg, 1, 1000, &a->epochs))
				return spt_err("--epochs: expected 1..1000, got '%s'", optarg);
			break;
		case OPT_BATCH:
			if (parse_ulong(optarg, 1, 4096, &a->batch))
				return spt_err("--batch: expected 1..4096, got '%s'", optarg);
			break;
		case OPT_LR:
			if (parse_float(optarg, 0, 10, &a->lr))
				return spt_err("--lr: expected 0..10, got '%s'", optarg);
			break;
		case OPT_LR_MIN:
			if (parse_float(optarg, 0, 1, &a->lr_min))
				return spt_err("--lr-min: expected a fraction 0..1, got '%s'", optarg);
			break;
		case OPT_SCHED:
			if (!strcmp(optarg, "cosine"))
				a->sched = SPT_LR_COSINE;
			else if (!strcmp(optarg, "step"))
				a->sched = SPT_LR_STEP;
			else if (!strcmp(optarg, "constant"))
				a->sched = SPT_LR_CONSTANT;
			else
				return spt_err("--lr-schedule: expected cosine, step or constant");
			break;
		case OPT_MOM:
			if (parse_float(optarg, 0, 0.999f, &a->momentum))
				return spt_err("--momentum: expected 0..0.999, got '%s'", optarg);
			break;
		case OPT_WD:
			if (parse_float(optarg, 0, 1, &a->wd))
				return spt_err("--weight-decay: expected 0..1, got '%s'", optarg);
			break;
		case OPT_SEED:
			if (spt_parse_u64(optarg, &a->seed))
				return spt_err("--seed: expected an unsigned integer, got '%s'", optarg);
			break;
		case OPT_TARGET:
			if (parse_float(optarg, 0, 0.999f, &a->target))
				return spt_err("--target-sparsity: expected 0..0.999, got '%s'", optarg);
			break;
		case OPT_ACT_TARGETS:
			if (parse_targets(optarg, a->act_targets, &a->n_act_targets))
				return spt_err("--act-targets: expected comma-separated values 0..0.999");
			break;
		case OPT_WCOPY_TARGETS:
			if (parse_targets(optarg, a->wcopy_targets, &a->n_wcopy_targets))
				return spt_err("--wcopy-targets: expected comma-separated values 0..0.999");
			break;
		case OPT_WGRAD_TARGETS:
			if (parse_targets(optarg, a->wgrad_targets, &a->n_wgrad_targets))
				return spt_err("--wgrad-targets: expected comma-separated values 0..0.999");
			break;
		case OPT_WCOPY_PRUNE:
			if (parse_kind(optarg, &a->wcopy_kind))
				return spt_err("--wcopy-prune: expected deterministic or stochastic");
			break;
		case OPT_PRUNE:
			if (parse_kind(optarg, &a->act_kind))
				return spt_err("--prune: expected deterministic or stochastic");
			break;
		case OPT_ERR_PRUNE:
			if (parse_kind(optarg, &a->err_kind))
				return spt_err("--err-prune: expected deterministic or stochastic");
			break;
		case OPT_WCOPY:
			if (parse_float(optarg, 0, 0.999f, &a->wcopy))
				return spt_err("--wcopy-sparsity: expected 0..0.999");
			break;
		case OPT_WGRAD:
			if (parse_float(optarg, 0, 0.999f, &a->wgrad))
				return spt_err("--wgrad-sparsity: expected 0..0.999");
			break;
		case OPT_WARMUP:
			if (parse_float(optarg, 0, 1, &f))
				return spt_err("--warmup: expected a fraction 0..1");
			a->warmup_frac = f;
			break;
		case OPT_RAMP:
			if (parse_float(optarg, 0, 1, &f))
				return spt_err("--ramp: expected a fraction 0..1");
			a->ramp_frac = f;
			break;
		case OPT_WARMUP_STEPS:
			if (parse_ulong(optarg, 0, 100000000, &ul))
				return spt_err("--warmup-steps: expected a step count");
			a->warmup_steps = (long)ul;
			break;
		case OPT_RAMP_STEPS:
			if (parse_ulong(optarg, 0, 100000000, &ul))
				return spt_err("--ramp-steps: expected a step count");
			a->ramp_steps = (long)ul;
			break;
		case OPT_LIMIT_TRAIN:
			if (parse_ulong(optarg, 1, 100000000, &a->limit_train))
				return spt_err("--limit-train: expected a positive count");
			break;
		case OPT_LIMIT_TEST:
			if (parse_ulong(optarg, 1, 100000000, &a->limit_test))
				return spt_err("--limit-test: expected a positive count");
			break;
		case OPT_DATA: a->data = optarg; break;
		case OPT_SAVE: a->save = optarg; break;
		case OPT_RESUME: a->resume = optarg; break;
		case OPT_REPORT: a->report = optarg; break;
		case OPT_BENCH: a->bench = true; break;
		case OPT_BENCH_STEPS:
			if (parse_ulong(optarg, 1, 100000, &a->bench_steps))
				return spt_err("--bench-steps: expected 1..100000");
			break;
		case OPT_ISA:
			if (parse_isa(optarg, &a->isa))
				return spt_err("--isa: expected auto, scalar, avx2 or avx512, got '%s'",
					       optarg);
			break;
		case 'j': a->json = true; break;
		case 'q': a->quiet = true; break;
		case 'h':
			train_usage(stdout);
			return -1;
		default:
			train_usage(stderr);
			return 2;
		}
	}
	if (optind < argc)
		return spt_err("unexpected argument '%s' (see spt train --help)", argv[optind]);
	if (a->precision == SPT_PRECISION_FP32 && (a->target > 0 || a->wcopy > 0 || a->wgrad > 0 ||
						   a->n_act_targets || a->n_wcopy_targets ||
						   a->n_wgrad_targets))
		return spt_err("--precision fp32 is the dense baseline: sparsity needs --precision bfp8");
	return 0;
}

/* ---- progress ------------------------------------------------------------- */

static void progress(bool tty, unsigned long epoch, unsigned long epochs, uint64_t done,
		     uint64_t total, double elapsed, float loss, double sparsity)
{
	double rate = elapsed > 0 ? done / elapsed : 0;
	double eta = rate > 0 ? (total - done) / rate : 0;
	int width = 28, fill = total ? (int)(width * done / total) : 0, i;

	if (tty) {
		fprintf(stderr, "\repoch %lu/%lu [", epoch, epochs);
		for (i = 0; i < width; i++)
			fputc(i < fill ? '#' : '.', stderr);
		fprintf(stderr, "] %llu/%llu %.1f it/s ETA %3.0fs loss %.4f sparsity %.3f ",
			(unsigned long long)done, (unsigned long long)total, rate, eta, loss,
			sparsity);
	} else {
		fprintf(stderr, "epoch %lu/%lu step %llu/%llu %.1f it/s loss %.4f sparsity %.3f\n",
			epoch, epochs, (unsigned long long)done, (unsigned long long)total, rate,
			loss, sparsity);
	}
	fflush(stderr);
}

/* ---- report --------------------------------------------------------------- */

struct series {
	const char *name;
	const float *y;		/* n values, stride floats apart */
	size_t stride;
};

static const char *palette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
				 "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf" };

static int svg_plot(const char *path, const char *title, const char *xlabel,
		    const char *ylabel, const struct series *s, int ns, size_t n)
{
	const double W = 720, H = 400, L = 70, R = 170, T = 40, B = 50;
	double ymin = INFINITY, ymax = -INFINITY, pw = W - L - R, ph = H - T - B;
	size_t i, step = n > 1500 ? n / 1500 : 1;
	FILE *f;
	int k, t;

	if (n == 0)
		return 0;
	for (k = 0; k < ns; k++)
		for (i = 0; i < n; i++) {
			double v = s[k].y[i * s[k].stride];

			if (isfinite(v)) {
				ymin = v < ymin ? v : ymin;
				ymax = v > ymax ? v : ymax;
			}
		}
	if (!isfinite(ymin)) {
		ymin = 0;
		ymax = 1;
	}
	if (ymax - ymin < 1e-9) {
		ymax += 0.5;
		ymin -= 0.5;
	}
	f = fopen(path, "w");
	if (!f)
		return spt_err("cannot write %s: %s", path, strerror(errno));
	fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
		   "font-family=\"sans-serif\" font-size=\"12\">\n", W, H);
	fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
	fprintf(f, "<text x=\"%.0f\" y=\"22\" font-size=\"15\">%s</text>\n", L, title);
	fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" "
		   "stroke=\"#444\"/>\n", L, T, pw, ph);
	for (t = 0; t <= 4; t++) {
		double v = ymin + (ymax - ymin) * t / 4, y = T + ph - ph * t / 4;
		double xv = 1 + (double)(n - 1) * t / 4, x = L + pw * t / 4;

		fprintf(f, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>"
			   "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n",
			L, y, L + pw, y, L - 6, y + 4, v);
		fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.0f</text>\n",
			x, T + ph + 18, xv);
	}
	fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n",
		L + pw / 2, H - 10, xlabel);
	fprintf(f, "<text x=\"16\" y=\"%.1f\" transform=\"rotate(-90 16 %.1f)\" "
		   "text-anchor=\"middle\">%s</text>\n", T + ph / 2, T + ph / 2, ylabel);
	for (k = 0; k < ns; k++) {
		const char *col = palette[k % 10];

		fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
		for (i = 0; i < n; i += step) {
			double v = s[k].y[i * s[k].stride];
			double x = L + (n > 1 ? pw * i / (n - 1) : pw / 2);

			if (!isfinite(v))
				continue;
			fprintf(f, "%.1f,%.1f ", x, T + ph - ph * (v - ymin) / (ymax - ymin));
		}
		fprintf(f, "\"/>\n");
		if (n == 1)
			fprintf(f, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", L + pw / 2,
				T + ph - ph * (s[k].y[0] - ymin) / (ymax - ymin), col);
		fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"12\" height=\"3\" fill=\"%s\"/>"
			   "<text x=\"%.0f\" y=\"%.0f\">%s</text>\n", W - R + 12, T + 8 + 18.0 * k,
			col, W - R + 30, T + 13 + 18.0 * k, s[k].name);
	}
	fprintf(f, "</svg>\n");
	if (fclose(f))
		return spt_err("cannot write %s", path);
	return 0;
}

static FILE *report_open(const char *dir, const char *name)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		spt_err("cannot write %s: %s", path, strerror(errno));
	return f;
}

/* traffic.csv: one row per layer and part, in bytes per step, and the class sparsities. */
static int write_traffic(const char *dir, const struct traffic *t, double steps, int nl)
{
	static const char *const part[TR_PARTS] = { "fwd", "bwd", "wg", "reblock" };
	static const char *const cls[SPT_CLASS_COUNT] = { "act", "err", "wcopy", "wgrad" };
	double all = 0;
	FILE *f = report_open(dir, "traffic.csv");
	int l, p, c;

	if (!f)
		return 1;
	for (l = 0; l < nl; l++)
		for (p = 0; p < TR_PARTS; p++)
			all += t->fp16[l][p];
	fprintf(f, "layer,part,bytes_read,bytes_written,dense_fp16_bytes,share_of_fp16_total");
	for (c = 0; c < SPT_CLASS_COUNT; c++)
		fprintf(f, ",%s_sparsity", cls[c]);
	fputc('\n', f);
	for (l = 0; l < nl; l++)
		for (p = 0; p < TR_PARTS; p++) {
			fprintf(f, "%d,%s,%.0f,%.0f,%.0f,%.5f", l, part[p], t->rd[l][p] / steps,
				t->wr[l][p] / steps, t->fp16[l][p] / steps,
				all > 0 ? (t->rd[l][p] + t->wr[l][p]) / all : 0);
			for (c = 0; c < SPT_CLASS_COUNT; c++)
				if (t->el[l][c] > 0)
					fprintf(f, ",%.5f", 1.0 - t->nz[l][c] / t->el[l][c]);
				else
					fprintf(f, ",");
			fputc('\n', f);
		}
	fclose(f);
	return 0;
}

static int write_report(const char *dir, const struct step_rec *sr, size_t nsteps,
			const struct epoch_rec *er, size_t nep, int nl)
{
	char path[4096], names[4 * MAX_LAYERS][32];
	struct series s[4 * MAX_LAYERS];
	FILE *f;
	size_t i;
	int l, k;
	float *tmp;

	if (mkdir(dir, 0755) && errno != EEXIST)
		return spt_err("cannot create %s: %s", dir, strerror(errno));
	f = report_open(dir, "steps.csv");
	if (!f)
		return 1;
	fprintf(f, "step,epoch,loss,accuracy,lr,interim_sparsity,bytes_vs_fp16,dense_macs,"
		   "exec_macs,modeled_cycles,modeled_energy_pj,modeled_tops_per_watt,seconds");
	for (l = 0; l < nl; l++)
		fprintf(f, ",act_sparsity_l%d,act_tau_l%d,err_sparsity_l%d,err_tau_l%d", l, l, l, l);
	fputc('\n', f);
	for (i = 0; i < nsteps; i++) {
		const struct step_rec *r = &sr[i];

		fprintf(f, "%zu,%u,%.6f,%.4f,%.6g,%.5f,%.5f,%llu,%llu,%llu,%.6g,%.6g,%.6f", i + 1,
			r->epoch, r->loss, r->acc, r->lr, r->interim, r->bytes_ratio,
			(unsigned long long)r->dense_macs, (unsigned long long)r->exec_macs,
			(unsigned long long)r->cycles, r->energy_pj, r->tops_w, r->seconds);
		for (l = 0; l < nl; l++)
			fprintf(f, ",%.5f,%.6g,%.5f,%.6g", r->act_s[l], r->act_tau[l], r->err_s[l],
				r->err_tau[l]);
		fputc('\n', f);
	}
	fclose(f);
	f = report_open(dir, "epochs.csv");
	if (!f)
		return 1;
	fprintf(f, "epoch,train_loss,train_accuracy,test_loss,test_accuracy,interim_sparsity,"
		   "bytes_vs_fp16,modeled_tops_per_watt,seconds\n");
	for (i = 0; i < nep; i++)
		fprintf(f, "%zu,%.6f,%.5f,%.6f,%.5f,%.5f,%.5f,%.6g,%.2f\n", i + 1, er[i].train_loss,
			er[i].train_acc, er[i].test_loss, er[i].test_acc, er[i].interim,
			er[i].bytes_ratio, er[i].tops_w, er[i].seconds);
	fclose(f);

	/* per-epoch plots */
	tmp = calloc(nep * 4 + 1, sizeof(float));
	if (!tmp)
		return spt_err("out of memory");
	for (i = 0; i < nep; i++) {
		tmp[i] = (float)er[i].train_acc;
		tmp[nep + i] = (float)er[i].test_acc;
		tmp[2 * nep + i] = (float)er[i].train_loss;
		tmp[3 * nep + i] = (float)er[i].test_loss;
	}
	s[0] = (struct series){ "train", tmp, 1 };
	s[1] = (struct series){ "test", tmp + nep, 1 };
	snprintf(path, sizeof(path), "%s/accuracy.svg", dir);
	svg_plot(path, "Accuracy per epoch", "epoch", "accuracy", s, 2, nep);
	s[0] = (struct series){ "train", tmp + 2 * nep, 1 };
	s[1] = (struct series){ "test", tmp + 3 * nep, 1 };
	snprintf(path, sizeof(path), "%s/loss.svg", dir);
	svg_plot(path, "Loss per epoch", "epoch", "cross-entropy", s, 2, nep);
	free(tmp);

	/* per-step plots (fields of struct step_rec, stride in floats) */
	if (nsteps == 0)
		return 0;
	k = 0;
	for (l = 0; l < nl && k + 2 <= 4 * MAX_LAYERS; l++) {
		if (l > 0) {
			snprintf(names[k], sizeof(names[k]), "ACT layer %d", l);
			s[k] = (struct series){ names[k], &sr[0].act_s[l],
						sizeof(struct step_rec) / sizeof(float) };
			k++;
		}
		snprintf(names[k], sizeof(names[k]), "ERR layer %d", l);
		s[k] = (struct series){ names[k], &sr[0].err_s[l],
					sizeof(struct step_rec) / sizeof(float) };
		k++;
	}
	snprintf(path, sizeof(path), "%s/sparsity.svg", dir);
	svg_plot(path, "Interim sparsity per layer per step", "step", "sparsity", s, k, nsteps);
	s[0] = (struct series){ "bytes / dense FP16", &sr[0].bytes_ratio,
				sizeof(struct step_rec) / sizeof(float) };
	s[1] = (struct series){ "interim sparsity", &sr[0].interim,
				sizeof(struct step_rec) / sizeof(float) };
	snprintf(path, sizeof(path), "%s/bytes.svg", dir);
	svg_plot(path, "Bytes moved vs dense FP16 per step", "step", "ratio", s, 2, nsteps);
	tmp = calloc(nsteps, sizeof(float));
	if (!tmp)
		return spt_err("out of memory");
	for (i = 0; i < nsteps; i++)
		tmp[i] = (float)(sr[i].energy_pj * 1e-6);
	s[0] = (struct series){ "energy (uJ)", tmp, 1 };
	snprintf(path, sizeof(path), "%s/energy.svg", dir);
	svg_plot(path, "Modeled energy per step", "step", "uJ (modeled)", s, 1, nsteps);
	free(tmp);
	return 0;
}

/* ---- training ---------------------------------------------------------------- */

static int setup_sparsity(struct spt_model *m, const struct train_args *a)
{
	int nl = spt_model_num_layers(m), l, ret = 0;
	struct spt_sparsity s = { .mode = SPT_SPARSITY_TARGET };

	if (a->precision != SPT_PRECISION_BFP8)
		return 0;
	if (a->target > 0) {
		ret = spt_model_set_target_sparsity(m, a->target, a->act_kind);
		if (ret)
			return ret;
		s.kind = a->err_kind;
		s.target = a->target;
		ret = spt_model_set_sparsity(m, -1, SPT_CLASS_ERR, &s);
		if (ret)
			return ret;
	}
	for (l = 1; l < nl && l - 1 < a->n_act_targets; l++) {
		s.kind = a->act_kind;
		s.target = a->act_targets[l - 1];
		s.mode = s.target > 0 ? SPT_SPARSITY_TARGET : SPT_SPARSITY_OFF;
		ret = spt_model_set_sparsity(m, l, SPT_CLASS_ACT, &s);
		if (ret)
			return ret;
	}
	if (a->wcopy > 0) {
		s.mode = SPT_SPARSITY_TARGET;
		s.kind = a->wcopy_kind;
		s.target = a->wcopy;
		ret = spt_model_set_sparsity(m, -1, SPT_CLASS_WCOPY, &s);
		if (ret)
			return ret;
	}
	for (l = 0; l < nl && l < a->n_wcopy_targets; l++) {
		s.kind = a->wcopy_kind;
		s.target = a->wcopy_targets[l];
		s.mode = s.target > 0 ? SPT_SPARSITY_TARGET : SPT_SPARSITY_OFF;
		ret = spt_model_set_sparsity(m, l, SPT_CLASS_WCOPY, &s);
		if (ret)
			return ret;
	}
	if (a->wgrad > 0) {
		s.mode = SPT_SPARSITY_TARGET;
		s.kind = SPT_PRUNE_STOCHASTIC;
		s.target = a->wgrad;
		ret = spt_model_set_sparsity(m, -1, SPT_CLASS_WGRAD, &s);
		if (ret)
			return ret;
	}
	for (l = 0; l < nl && l < a->n_wgrad_targets; l++) {
		s.kind = SPT_PRUNE_STOCHASTIC;
		s.target = a->wgrad_targets[l];
		s.mode = s.target > 0 ? SPT_SPARSITY_TARGET : SPT_SPARSITY_OFF;
		ret = spt_model_set_sparsity(m, l, SPT_CLASS_WGRAD, &s);
		if (ret)
			return ret;
	}
	return 0;
}

static void shuffle(uint32_t *idx, uint32_t n, uint64_t *rng)
{
	uint32_t i;

	for (i = 0; i < n; i++)
		idx[i] = i;
	for (i = n; i > 1; i--) {
		uint64_t z = (*rng += 0x9e3779b97f4a7c15ULL);
		uint32_t j;

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		z ^= z >> 31;
		j = (uint32_t)(z % i);
		uint32_t t = idx[i - 1];
		idx[i - 1] = idx[j];
		idx[j] = t;
	}
}

static int evaluate(struct spt_model *m, const struct spt_dataset *ds, double *loss,
		    double *acc)
{
	uint32_t count, rows, cols, off, chunk = 1000, *idx;
	uint64_t hits = 0;
	double lsum = 0;
	float *x;
	uint8_t *lab;
	int ret = 0;

	spt_dataset_shape(ds, &count, &rows, &cols, NULL);
	idx = malloc(chunk * sizeof(*idx));
	x = malloc((size_t)chunk * rows * cols * sizeof(float));
	lab = malloc(chunk);
	if (!idx || !x || !lab) {
		ret = -ENOMEM;
		goto out;
	}
	for (off = 0; off < count; off += chunk) {
		uint32_t k = count - off < chunk ? count - off : chunk, i, h;
		double ls;

		for (i = 0; i < k; i++)
			idx[i] = off + i;
		ret = spt_dataset_gather(ds, idx, k, x, lab) ?:
		      spt_model_evaluate(m, x, lab, k, &ls, &h, NULL);
		if (ret)
			goto out;
		hits += h;
		lsum += ls;
	}
	*loss = lsum / count;
	*acc = (double)hits / count;
out:
	free(idx);
	free(x);
	free(lab);
	return ret;
}

static int load_data(const struct train_args *a, struct spt_dataset **tr, struct spt_dataset **te)
{
	const char *dir = a->data ? a->data : SPT_FASHION_MNIST_DIR;
	uint32_t n;
	int ret;

	ret = spt_dataset_load_fashion_mnist(dir, true, tr);
	if (ret)
		return spt_err("cannot load the training set from %s: %s (install the "
			       "dataset-fashion-mnist package or give --data DIR)", dir,
			       spt_strerror(ret));
	ret = spt_dataset_load_fashion_mnist(dir, false, te);
	if (ret)
		return spt_err("cannot load the test set from %s: %s", dir, spt_strerror(ret));
	spt_dataset_shape(*tr, &n, NULL, NULL, NULL);
	if (a->limit_train && a->limit_train < n)
		spt_dataset_truncate(*tr, (uint32_t)a->limit_train);
	spt_dataset_shape(*te, &n, NULL, NULL, NULL);
	if (a->limit_test && a->limit_test < n)
		spt_dataset_truncate(*te, (uint32_t)a->limit_test);
	return 0;
}

static int open_ctx(const struct train_args *a, struct spt_ctx **ctx)
{
	struct spt_ctx_opts co = { .backend = a->backend, .device_path = a->device };
	int ret = spt_ctx_open(&co, ctx);

	if (ret == -SPT_ENOBACKEND)
		return spt_err("--backend device: an SPT device was found but this build of "
			       "libspt cannot submit work to it (no device command-stream "
			       "support yet); use --backend cpu");
	if (ret == -SPT_ENODEVICE)
		return spt_err("--backend device: no SPT device found (no /dev/accel/accel* "
			       "node driven by 'spt'; set SPT_DEVICE or load the driver); "
			       "use --backend cpu");
	if (ret)
		return spt_err("cannot open the %s backend: %s",
			       a->backend == SPT_BACKEND_CPU ? "cpu" : "device", spt_strerror(ret));
	return 0;
}

static int build_model(struct spt_ctx *ctx, const struct train_args *a, uint64_t total_steps,
		       struct spt_model **m)
{
	struct spt_train_opts o;
	int ret;

	spt_train_opts_init(&o, total_steps);
	o.precision = a->precision;
	o.batch = (uint32_t)a->batch;
	o.lr = a->lr;
	o.momentum = a->momentum;
	o.weight_decay = a->wd;
	o.lr_schedule = a->sched;
	o.lr_min_frac = a->lr_min;
	o.seed = a->seed;
	o.ctl.warmup_steps = a->warmup_steps >= 0 ? (uint32_t)a->warmup_steps :
						     (uint32_t)(a->warmup_frac * total_steps);
	o.ctl.ramp_steps = a->ramp_steps >= 0 ? (uint32_t)a->ramp_steps :
						 (uint32_t)(a->ramp_frac * total_steps);
	ret = spt_model_create_preset(ctx, a->model, m);
	if (ret)
		return spt_err("cannot create model %s: %s", a->model, spt_strerror(ret));
	ret = spt_model_finalize(*m, &o);
	if (!ret)
		ret = setup_sparsity(*m, a);
	if (ret) {
		spt_model_free(*m);
		*m = NULL;
		return spt_err("cannot set up the model: %s", spt_strerror(ret));
	}
	return 0;
}

static void print_epoch_header(void)
{
	fprintf(stderr, "%5s %10s %9s %9s %9s %9s %10s %12s %8s\n", "epoch", "train_loss",
		"train_acc", "test_loss", "test_acc", "sparsity", "bytes/fp16", "TOPS/W(mod)",
		"seconds");
}

static void print_epoch(size_t e, const struct epoch_rec *r)
{
	fprintf(stderr, "%5zu %10.4f %9.4f %9.4f %9.4f %9.4f %10.4f %12.2f %8.1f\n", e,
		r->train_loss, r->train_acc, r->test_loss, r->test_acc, r->interim, r->bytes_ratio,
		r->tops_w, r->seconds);
}

static int do_bench(const struct train_args *a);

int cmd_train(int argc, char **argv)
{
	struct train_args a;
	struct spt_dataset *tr = NULL, *te = NULL;
	struct spt_ctx *ctx = NULL;
	struct spt_model *m = NULL;
	struct step_rec *sr = NULL;
	struct epoch_rec *er = NULL;
	struct resume_state rs = { .magic = RESUME_MAGIC };
	struct traffic *tr_last = NULL;
	double tr_steps = 0;
	uint32_t ntrain, rows, cols, *idx = NULL, steps_per_epoch;
	uint64_t total_steps, done_steps = 0;
	float *x = NULL;
	uint8_t *lab = NULL;
	double t_start = 0, seconds;
	bool tty = isatty(STDERR_FILENO), interrupted = false;
	struct sigaction sa = { 0 }, old_sa;
	unsigned long e, first_epoch = 0;
	int ret, status = 1, nl;

	ret = parse_args(argc, argv, &a);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (spt_core_set_isa(a.isa))
		return spt_err("--isa %s: this CPU does not have it", spt_core_isa_name(a.isa));
	if (a.bench)
		return do_bench(&a);
	if (open_ctx(&a, &ctx))
		return 1;
	if (load_data(&a, &tr, &te))
		goto out;
	spt_dataset_shape(tr, &ntrain, &rows, &cols, NULL);
	steps_per_epoch = (ntrain + (uint32_t)a.batch - 1) / (uint32_t)a.batch;
	total_steps = (uint64_t)steps_per_epoch * a.epochs;
	if (build_model(ctx, &a, total_steps, &m))
		goto out;
	nl = spt_model_num_layers(m);
	rs.shuffle_rng = a.seed * 0x2545f4914f6cdd1dULL + 1;
	rs.seed = a.seed;
	if (a.resume) {
		struct resume_state got = { 0 };
		size_t glen = 0;

		ret = spt_model_load(m, a.resume, &got, sizeof(got), &glen);
		if (ret) {
			spt_err("cannot resume from %s: %s", a.resume, spt_strerror(ret));
			goto out;
		}
		if (!(glen == sizeof(got) && got.magic == RESUME_MAGIC) &&
		    !(glen == RESUME_V1_SIZE && got.magic == RESUME_MAGIC_V1)) {
			spt_err("%s: not a checkpoint written by spt train", a.resume);
			goto out;
		}
		if (got.magic == RESUME_MAGIC && got.seed != a.seed) {
			spt_err("%s was trained with --seed %llu, not %llu: resume with --seed %llu",
				a.resume, (unsigned long long)got.seed,
				(unsigned long long)a.seed, (unsigned long long)got.seed);
			goto out;
		}
		rs = got;
		rs.magic = RESUME_MAGIC;	/* saved again as version 2 */
		rs.seed = a.seed;
		first_epoch = rs.epochs_done;
		if (first_epoch >= a.epochs) {
			spt_err("%s already holds %lu epochs (asked for %lu)", a.resume,
				first_epoch, a.epochs);
			goto out;
		}
	}
	idx = malloc(ntrain * sizeof(*idx));
	x = malloc((size_t)a.batch * rows * cols * sizeof(float));
	lab = malloc(a.batch);
	sr = calloc(total_steps + 1, sizeof(*sr));
	er = calloc(a.epochs + 1, sizeof(*er));
	tr_last = calloc(1, sizeof(*tr_last));
	if (!idx || !x || !lab || !sr || !er || !tr_last) {
		spt_err("out of memory");
		goto out;
	}
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_sa);
	stop_requested = 0;
	if (!a.quiet && !a.json)
		fprintf(stderr, "spt train: %s, %s, backend %s, %u training samples, %llu steps%s\n",
			a.model, a.precision == SPT_PRECISION_BFP8 ? "bfp8" : "fp32",
			a.backend == SPT_BACKEND_CPU ? "cpu" : "device", ntrain,
			(unsigned long long)total_steps, a.resume ? " (resumed)" : "");
	t_start = spt_now_seconds();
	for (e = first_epoch; e < a.epochs && !interrupted; e++) {
		struct epoch_rec *r = &er[e];
		double t_ep = spt_now_seconds(), loss_sum = 0, el = 0, ez = 0, eb = 0, ef = 0;
		double en = 0, dm = 0;
		uint64_t hits = 0, seen = 0;
		uint64_t epoch_rng = rs.shuffle_rng;
		uint32_t off, s = 0;
		bool ahead;

		shuffle(idx, ntrain, &rs.shuffle_rng);
		memset(tr_last, 0, sizeof(*tr_last));	/* the report keeps the last epoch's */
		tr_steps = 0;
		if (rs.step_in_epoch) {	/* resuming inside this epoch */
			s = rs.step_in_epoch;
			rs.step_in_epoch = 0;
		}
		ahead = false;
		for (off = s * (uint32_t)a.batch; off < ntrain; off += (uint32_t)a.batch, s++) {
			uint32_t k = ntrain - off < a.batch ? ntrain - off : (uint32_t)a.batch;
			uint32_t kn = ntrain - off - k < a.batch ? ntrain - off - k : (uint32_t)a.batch;
			struct spt_step_stats st;
			struct step_rec *q = &sr[done_steps];
			int l;

			ret = ahead ? 0 : spt_dataset_gather(tr, idx + off, k, x, lab) ?:
					  spt_model_train_step_submit(m, x, lab, k);
			/* one step ahead: the next batch is gathered and uploaded while this one runs */
			ahead = !ret && kn && !stop_requested;
			if (ahead)
				ret = spt_dataset_gather(tr, idx + off + k, kn, x, lab) ?:
				      spt_model_train_step_submit(m, x, lab, kn);
			ret = ret ?: spt_model_train_step_wait(m, &st);
			if (ret) {
				if (tty)
					fputc('\n', stderr);
				spt_err("training step %llu failed: %s",
					(unsigned long long)spt_model_steps(m) + 1, spt_strerror(ret));
				goto out;
			}
			loss_sum += st.loss * k;
			hits += st.correct;
			seen += k;
			el += st.interim_elements;
			ez += st.interim_zeros;
			eb += st.total.bytes_read + st.total.bytes_written;
			ef += st.total.dense_fp16_bytes;
			en += st.total.energy_pj;
			dm += st.total.dense_macs;
			q->epoch = (uint32_t)e + 1;
			q->loss = st.loss;
			q->acc = (float)st.correct / k;
			q->lr = st.lr;
			q->interim = (float)st.interim_sparsity;
			q->bytes_ratio = (float)st.bytes_vs_fp16;
			q->seconds = (float)st.host_seconds;
			q->energy_pj = st.total.energy_pj;
			q->tops_w = st.total.eff_tops_per_w;
			q->dense_macs = st.total.dense_macs;
			q->exec_macs = st.total.exec_macs;
			q->cycles = st.total.cycles;
			for (l = 0; l < nl && l < MAX_LAYERS; l++) {
				struct spt_layer_stats ls;
				struct spt_controller_state ca, ce;

				spt_model_layer_stats(m, l, &ls);
				traffic_add(tr_last, l, &ls);
				spt_model_controller_state(m, l, SPT_CLASS_ACT, &ca);
				spt_model_controller_state(m, l, SPT_CLASS_ERR, &ce);
				q->act_s[l] = ls.cls[SPT_CLASS_ACT].elements ?
					1.0f - (float)ls.cls[SPT_CLASS_ACT].nonzeros /
					ls.cls[SPT_CLASS_ACT].elements : NAN;
				q->err_s[l] = ls.cls[SPT_CLASS_ERR].elements ?
					1.0f - (float)ls.cls[SPT_CLASS_ERR].nonzeros /
					ls.cls[SPT_CLASS_ERR].elements : NAN;
				q->act_tau[l] = ls.cls[SPT_CLASS_ACT].tau;
				q->err_tau[l] = ls.cls[SPT_CLASS_ERR].tau;
			}
			done_steps++;
			tr_steps++;
			if (!a.quiet && !a.json && (tty ? (s % 5 == 0 || off + k >= ntrain) :
						    ((s + 1) % 100 == 0)))
				progress(tty, e + 1, a.epochs, s + 1, steps_per_epoch,
					 spt_now_seconds() - t_ep, st.loss, st.interim_sparsity);
			if (stop_requested && !ahead) {
				interrupted = true;
				s++;
				break;
			}
		}
		if (tty && !a.quiet && !a.json)
			fputc('\n', stderr);
		r->train_loss = seen ? loss_sum / seen : 0;
		r->train_acc = seen ? (double)hits / seen : 0;
		r->interim = el > 0 ? ez / el : 0;
		r->bytes_ratio = ef > 0 ? eb / ef : 0;
		r->tops_w = en > 0 ? 2.0 * dm / en : 0;
		ret = evaluate(m, te, &r->test_loss, &r->test_acc);
		if (ret) {
			spt_err("evaluation failed: %s", spt_strerror(ret));
			goto out;
		}
		r->seconds = spt_now_seconds() - t_ep;
		if (!interrupted) {
			rs.epochs_done = (uint32_t)e + 1;
		} else if (off + a.batch < ntrain) {
			rs.step_in_epoch = s;
			rs.shuffle_rng = epoch_rng;
		} else {
			rs.epochs_done = (uint32_t)e + 1;
		}
		if (!a.quiet && !a.json) {
			if (e == first_epoch)
				print_epoch_header();
			print_epoch(e + 1, r);
		}
		if (a.save) {
			ret = spt_model_save(m, a.save, &rs, sizeof(rs));
			if (ret) {
				spt_err("cannot save %s: %s", a.save, spt_strerror(ret));
				goto out;
			}
		}
	}
	seconds = spt_now_seconds() - t_start;
	if (interrupted)
		fprintf(stderr, "spt train: interrupted after step %llu%s\n",
			(unsigned long long)spt_model_steps(m),
			a.save ? "; checkpoint saved" : "");
	if (a.report && write_report(a.report, sr, done_steps, er + first_epoch,
				     e - first_epoch, nl < MAX_LAYERS ? nl : MAX_LAYERS))
		goto out;
	if (a.report && tr_steps > 0 &&
	    write_traffic(a.report, tr_last, tr_steps, nl < MAX_LAYERS ? nl : MAX_LAYERS))
		goto out;
	if (a.json) {
		const struct epoch_rec *r = &er[e ? e - 1 : 0];

		printf("{\"backend\": \"%s\", \"model\": \"%s\", \"precision\": \"%s\", "
		       "\"epochs\": %lu, \"steps\": %llu, \"test_accuracy\": %.4f, "
		       "\"test_loss\": %.4f, \"train_loss\": %.4f, "
		       "\"mean_interim_sparsity\": %.4f, \"bytes_vs_fp16\": %.4f, "
		       "\"modeled_tops_per_watt\": ",
		       a.backend == SPT_BACKEND_CPU ? "cpu" : "device", a.model,
		       a.precision == SPT_PRECISION_BFP8 ? "bfp8" : "fp32", e,
		       (unsigned long long)spt_model_steps(m), r->test_acc, r->test_loss,
		       r->train_loss, r->interim, r->bytes_ratio);
		if (a.precision == SPT_PRECISION_BFP8)
			printf("%.2f", r->tops_w);
		else
			printf("null");
		printf(", \"target_sparsity\": %.3f, \"seconds\": %.2f, \"interrupted\": %s}\n",
		       a.target, seconds, interrupted ? "true" : "false");
	}
	status = interrupted ? 130 : 0;
out:
	if (sa.sa_handler)
		sigaction(SIGINT, &old_sa, NULL);
	free(idx);
	free(x);
	free(lab);
	free(sr);
	free(er);
	free(tr_last);
	spt_model_free(m);
	spt_dataset_free(tr);
	spt_dataset_free(te);
	spt_ctx_close(ctx);
	return status;
}

/* ---- benchmark: step time of this configuration vs the FP32 baseline ---------- */

/* Interleaved rounds: both configurations see the same machine load. */
#define BENCH_ROUNDS 10
#define BENCH_WARM 300

/* One configuration being timed: its model, batch buffers and timings. */
struct bench_run {
	struct train_args b;
	struct spt_ctx *ctx;
	struct spt_model *m;
	uint32_t *idx, n;
	float *x;
	uint8_t *lab;
	uint64_t i;		/* steps done */
	double zs, es;		/* interim zeros and elements of the timed steps */
	double wall, cpu;	/* seconds of the timed steps */
};

static void bench_close(struct bench_run *r)
{
	free(r->idx);
	free(r->x);
	free(r->lab);
	spt_model_free(r->m);
	spt_ctx_close(r->ctx);
	memset(r, 0, sizeof(*r));
}

/* Run @k steps; @timed adds their time and sparsity to @r's totals. */
static int bench_run_steps(struct bench_run *r, const struct spt_dataset *ds, uint64_t k,
			   bool timed, double *cpu)
{
	double t0 = spt_now_seconds(), c0 = cpu_seconds();
	uint64_t end = r->i + k;

	for (; r->i < end; r->i++) {
		uint32_t off = (uint32_t)((r->i * r->b.batch) % (r->n - r->b.batch + 1));
		struct spt_step_stats st;
		int ret = spt_dataset_gather(ds, r->idx + off, (uint32_t)r->b.batch, r->x, r->lab) ?:
			  spt_model_train_step(r->m, r->x, r->lab, (uint32_t)r->b.batch, &st);

		if (ret) {
			spt_err("bench step failed: %s", spt_strerror(ret));
			return 1;
		}
		if (timed) {
			r->zs += st.interim_zeros;
			r->es += st.interim_elements;
		}
	}
	*cpu = cpu_seconds() - c0;
	if (timed) {
		r->wall += spt_now_seconds() - t0;
		r->cpu += *cpu;
	}
	return 0;
}

/*
 * Build @a's model for @steps timed steps and warm it up.  The controller
 * is put in its steady state (no warm-up, a short ramp, then BENCH_WARM
 * untimed steps), so a sparse configuration is timed at its target.
 */
static int bench_open(const struct train_args *a, const struct spt_dataset *ds,
		      unsigned long steps, struct bench_run *r)
{
	uint64_t rng = a->seed;
	uint32_t rows, cols;
	double c;

	memset(r, 0, sizeof(*r));
	r->b = *a;
	r->b.warmup_steps = 0;
	r->b.ramp_steps = 150;
	spt_dataset_shape(ds, &r->n, &rows, &cols, NULL);
	if (open_ctx(&r->b, &r->ctx) || build_model(r->ctx, &r->b, BENCH_WARM + steps, &r->m))
		return 1;
	r->idx = malloc(r->n * sizeof(*r->idx));
	r->x = malloc(r->b.batch * rows * cols * sizeof(float));
	r->lab = malloc(r->b.batch);
	if (!r->idx || !r->x || !r->lab)
		return 1;
	shuffle(r->idx, r->n, &rng);
	return bench_run_steps(r, ds, BENCH_WARM, false, &c);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

struct bench_result {
	double base_wall, base_cpu, cfg_wall, cfg_cpu;	/* seconds per step */
	double base_sparsity, cfg_sparsity;
	double ratio_med, ratio_min, ratio_max;		/* base / cfg CPU time per round */
	unsigned int rounds;
};

/*
 * Time @steps steps of @base (the FP32 baseline) and of @cfg in up to
 * BENCH_ROUNDS interleaved rounds, alternating which goes first, so that a
 * change of machine load hits both alike.  The per-round ratios of CPU
 * time give a median and a range.
 */
static int bench_pair(const struct train_args *base, const struct train_args *cfg,
		      const struct spt_dataset *ds, unsigned long steps, struct bench_result *res)
{
	unsigned int rounds = steps < BENCH_ROUNDS ? (unsigned int)steps : BENCH_ROUNDS, k;
	struct bench_run rb, rc;
	double ratio[BENCH_ROUNDS];
	int ret = 1;

	memset(&rc, 0, sizeof(rc));
	if (bench_open(base, ds, steps, &rb) || bench_open(cfg, ds, steps, &rc))
		goto out;
	for (k = 0; k < rounds; k++) {
		/* the steps split over the rounds; the first ones take the remainder */
		uint64_t n = steps / rounds + (k < steps % rounds);
		double cb, cc;

		if (k % 2 ? bench_run_steps(&rc, ds, n, true, &cc) ||
			    bench_run_steps(&rb, ds, n, true, &cb) :
			    bench_run_steps(&rb, ds, n, true, &cb) ||
			    bench_run_steps(&rc, ds, n, true, &cc))
			goto out;
		ratio[k] = cc > 0 ? cb / cc : 0;
	}
	qsort(ratio, rounds, sizeof(ratio[0]), cmp_double);
	res->rounds = rounds;
	res->ratio_min = ratio[0];
	res->ratio_max = ratio[rounds - 1];
	res->ratio_med = rounds % 2 ? ratio[rounds / 2] :
		(ratio[rounds / 2 - 1] + ratio[rounds / 2]) / 2;
	res->base_wall = rb.wall / steps;
	res->base_cpu = rb.cpu / steps;
	res->cfg_wall = rc.wall / steps;
	res->cfg_cpu = rc.cpu / steps;
	res->base_sparsity = rb.es > 0 ? rb.zs / rb.es : 0;
	res->cfg_sparsity = rc.es > 0 ? rc.zs / rc.es : 0;
	ret = 0;
out:
	bench_close(&rb);
	bench_close(&rc);
	return ret;
}

static int do_bench(const struct train_args *a)
{
	struct spt_dataset *tr = NULL, *te = NULL;
	struct train_args base = *a;
	const char *cfg = a->precision == SPT_PRECISION_BFP8 ? "bfp8" : "fp32";
	struct bench_result r;
	int ret = 1;

	if (load_data(a, &tr, &te))
		goto out;
	base.precision = SPT_PRECISION_FP32;
	base.target = base.wcopy = base.wgrad = 0;
	base.n_act_targets = base.n_wcopy_targets = base.n_wgrad_targets = 0;
	if (bench_pair(&base, a, tr, a->bench_steps, &r))
		goto out;
	if (a->json) {
		printf("{\"model\": \"%s\", \"isa\": \"%s\", \"batch\": %lu, \"steps\": %lu, "
		       "\"rounds\": %u, "
		       "\"fp32_ms_per_step\": %.3f, \"%s_ms_per_step\": %.3f, "
		       "\"fp32_cpu_ms_per_step\": %.3f, \"%s_cpu_ms_per_step\": %.3f, "
		       "\"interim_sparsity\": %.4f, \"speedup_vs_fp32\": %.3f, "
		       "\"cpu_speedup_vs_fp32\": %.3f, \"round_cpu_speedup_median\": %.3f, "
		       "\"round_cpu_speedup_min\": %.3f, \"round_cpu_speedup_max\": %.3f}\n",
		       a->model, spt_core_isa_name(spt_core_get_isa()), a->batch, a->bench_steps,
		       r.rounds, r.base_wall * 1e3, cfg,
		       r.cfg_wall * 1e3, r.base_cpu * 1e3, cfg, r.cfg_cpu * 1e3, r.cfg_sparsity,
		       r.base_wall / r.cfg_wall, r.base_cpu / r.cfg_cpu, r.ratio_med, r.ratio_min,
		       r.ratio_max);
	} else {
		printf("model %s, batch %lu, %lu timed steps in %u interleaved rounds "
		       "(cpu backend, %s; wall and process CPU time)\n",
		       a->model, a->batch, a->bench_steps, r.rounds,
		       spt_core_isa_name(spt_core_get_isa()));
		printf("  fp32 dense (OpenBLAS)      %8.3f ms/step (cpu %8.3f)  interim sparsity %.3f\n",
		       r.base_wall * 1e3, r.base_cpu * 1e3, r.base_sparsity);
		printf("  %-26s %8.3f ms/step (cpu %8.3f)  interim sparsity %.3f  (%.2fx wall, %.2fx cpu vs fp32)\n",
		       a->precision == SPT_PRECISION_BFP8 ? "bfp8 (this config)" : "fp32 (this config)",
		       r.cfg_wall * 1e3, r.cfg_cpu * 1e3, r.cfg_sparsity, r.base_wall / r.cfg_wall,
		       r.base_cpu / r.cfg_cpu);
		printf("  fp32 / %s cpu time per round: median %.2fx, range %.2f-%.2fx\n", cfg,
		       r.ratio_med, r.ratio_min, r.ratio_max);
	}
	ret = 0;
out:
	spt_dataset_free(tr);
	spt_dataset_free(te);
	return ret;
}

int spt_train_bench(const char *model, unsigned int batch, float target, unsigned int steps,
		    double *fp32_ms, double *bfp8_ms, double *bfp8_sparsity)
{
	struct train_args a, b;
	struct spt_dataset *tr = NULL, *te = NULL;
	char *argv[] = { "train", NULL };
	struct bench_result r;
	int ret = 1;

	if (!model || !batch || !steps || !fp32_ms || !bfp8_ms || parse_args(1, argv, &a))
		return 1;
	a.model = model;
	a.batch = batch;
	a.quiet = true;
	if (load_data(&a, &tr, &te))
		return 1;
	b = a;
	b.precision = SPT_PRECISION_FP32;
	a.target = target;
	if (bench_pair(&b, &a, tr, steps, &r))
		goto out;
	*fp32_ms = r.base_wall * 1e3;
	*bfp8_ms = r.cfg_wall * 1e3;
	if (bfp8_sparsity)
		*bfp8_sparsity = r.cfg_sparsity;
	ret = 0;
out:
	spt_dataset_free(tr);
	spt_dataset_free(te);
	return ret;
}
