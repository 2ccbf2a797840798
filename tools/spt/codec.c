// SPDX-License-Identifier: MIT
/*
 * spt codec: quantise, encode, decode and inspect tensors.
 *
 * Raw tensors are little-endian float32, row-major.  Compressed tensors
 * follow uapi/spt_format.h; inspect reads their records directly (after the
 * core has validated them), since the layout is a published contract.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spt/core.h"
#include "spt_format.h"
#include "spt.h"

#define EXIT_USAGE 2

struct codec_args {
	unsigned int rows, cols;
	int have_shape;
	struct spt_encode_opts enc;
	int quiet, json;
	const char *in, *out;
};

static const char codec_usage[] =
	"usage: spt codec <command> [options]\n"
	"\n"
	"commands:\n"
	"  quantize  round a float32 tensor to BFP8 (MXINT8) and write the dequantised values\n"
	"  encode    prune, quantise and compress a float32 tensor\n"
	"  decode    decompress a tensor to float32\n"
	"  inspect   describe a compressed tensor\n"
	"\n"
	"Raw tensors are little-endian float32, row-major, blocked along the columns.\n"
	"'spt codec <command> --help' describes a command.\n";

static const char quantize_usage[] =
	"usage: spt codec quantize --shape R,C [--round even|stochastic] [--seed N] IN OUT\n"
	"\n"
	"Quantise the R x C float32 tensor IN block-wise (32 columns) to MXINT8 and\n"
	"write the dequantised float32 values to OUT.\n"
	"\n"
	"  -s, --shape R,C     rows and columns of IN (required)\n"
	"  -r, --round MODE    even (nearest, ties to even; default) or stochastic\n"
	"      --seed N        seed of stochastic rounding (default 0)\n"
	"  -h, --help          show this help\n";

static const char encode_usage[] =
	"usage: spt codec encode --shape R,C [options] IN OUT\n"
	"\n"
	"Prune, quantise and compress the R x C float32 tensor IN into OUT\n"
	"(format: docs/formats.md) and print statistics.\n"
	"\n"
	"  -s, --shape R,C        rows and columns of IN (required)\n"
	"  -r, --round MODE       even (default) or stochastic\n"
	"      --seed N           seed of stochastic rounding (default 0)\n"
	"  -p, --prune MODE       off (default), deterministic (|x| < tau -> 0) or\n"
	"                         stochastic (|x| < tau -> sign(x) tau w.p. |x|/tau, else 0)\n"
	"  -t, --tau T            pruning threshold, finite and >= 0 (default 0)\n"
	"      --prune-seed N     seed of stochastic pruning (default 0)\n"
	"  -j, --json             statistics as JSON\n"
	"  -q, --quiet            print nothing\n"
	"  -h, --help             show this help\n";

static const char decode_usage[] =
	"usage: spt codec decode IN OUT\n"
	"\n"
	"Validate the compressed tensor IN and write its values to OUT as float32.\n"
	"\n"
	"  -q, --quiet     print nothing\n"
	"  -h, --help      show this help\n";

static const char inspect_usage[] =
	"usage: spt codec inspect [--json] IN\n"
	"\n"
	"Validate the compressed tensor IN and describe it: shape, sparsity, size,\n"
	"level-1 (tile) and level-2 (block) mask statistics, exponent range.\n"
	"\n"
	"  -j, --json      output as JSON\n"
	"  -h, --help      show this help\n";

enum { OPT_SEED = 256, OPT_PRUNE_SEED };

static const struct option codec_options[] = {
	{ "shape", required_argument, NULL, 's' },
	{ "round", required_argument, NULL, 'r' },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "prune", required_argument, NULL, 'p' },
	{ "tau", required_argument, NULL, 't' },
	{ "prune-seed", required_argument, NULL, OPT_PRUNE_SEED },
	{ "json", no_argument, NULL, 'j' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The error, the usage line and a pointer to --help; exit status 2. */
static int usage_error(const char *usage, const char *fmt, const char *arg)
{
	const char *nl = strchr(usage, '\n');

	fputs("spt: ", stderr);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n%.*s\nTry '--help' for more information.\n",
		(int)(nl ? nl - usage : (long)strlen(usage)), usage);
	return EXIT_USAGE;
}

static int parse_tau(const char *s, float *tau)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < 0 || v > 3.4e38)
		return -1;
	*tau = (float)v;
	return 0;
}

/* @allowed names the short options a command takes; the seeds go with r and p. */
static int option_allowed(const char *allowed, int c)
{
	switch (c) {
	case OPT_SEED:
		return strchr(allowed, 'r') != NULL;
	case OPT_PRUNE_SEED:
		return strchr(allowed, 'p') != NULL;
	case 'h':
		return 1;
	default:
		return c > 0 && c < 128 && strchr(allowed, (char)c) != NULL;
	}
}

/*
 * Parse the options @allowed (a getopt short-option string naming which of
 * the shared options this command takes) and exactly @npos positionals.
 * Returns -1 to go on, else the exit status.
 */
static int parse_args(int argc, char **argv, const char *usage, const char *allowed,
		      int npos, struct codec_args *a)
{
	unsigned long long u;
	int c, longidx = -1;
	char name[32];

	memset(a, 0, sizeof(*a));
	spt_encode_opts_init(&a->enc);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "s:r:p:t:jqh", codec_options, &longidx)) != -1) {
		if (longidx >= 0)
			snprintf(name, sizeof(name), "--%s", codec_options[longidx].name);
		else
			snprintf(name, sizeof(name), "-%c", c);
		longidx = -1;
		if (c == 'h') {
			fputs(usage, stdout);
			return 0;
		}
		if (c == '?')
			return usage_error(usage, "unknown or incomplete option '%s'",
					   argv[optind - 1]);
		if (!option_allowed(allowed, c))
			return usage_error(usage, "option '%s' does not apply here", name);
		switch (c) {
		case 's':
			if (spt_parse_shape(optarg, &a->rows, &a->cols))
				return usage_error(usage, "bad shape '%s' (expected R,C with R, C >= 1)",
						   optarg);
			a->have_shape = 1;
			break;
		case 'r':
			if (!strcmp(optarg, "even"))
				a->enc.round = SPT_ROUND_EVEN;
			else if (!strcmp(optarg, "stochastic"))
				a->enc.round = SPT_ROUND_STOCHASTIC;
			else
				return usage_error(usage,
						   "bad rounding mode '%s' (expected even or stochastic)",
						   optarg);
			break;
		case OPT_SEED:
			if (spt_parse_u64(optarg, &u))
				return usage_error(usage, "bad seed '%s'", optarg);
			a->enc.round_seed = u;
			break;
		case 'p':
			if (!strcmp(optarg, "off"))
				a->enc.prune.mode = SPT_PRUNE_OFF;
			else if (!strcmp(optarg, "deterministic"))
				a->enc.prune.mode = SPT_PRUNE_DETERMINISTIC;
			else if (!strcmp(optarg, "stochastic"))
				a->enc.prune.mode = SPT_PRUNE_STOCHASTIC;
			else
				return usage_error(usage,
						   "bad pruning mode '%s' (expected off, deterministic or stochastic)",
						   optarg);
			break;
		case 't':
			if (parse_tau(optarg, &a->enc.prune.tau))
				return usage_error(usage, "bad threshold '%s' (expected a finite number >= 0)",
						   optarg);
			break;
		case OPT_PRUNE_SEED:
			if (spt_parse_u64(optarg, &u))
				return usage_error(usage, "bad pruning seed '%s'", optarg);
			a->enc.prune.seed = u;
			break;
		case 'j':
			a->json = 1;
			break;
		case 'q':
			a->quiet = 1;
			break;
		}
	}
	if (strchr(allowed, 's') && !a->have_shape)
		return usage_error(usage, "%s", "missing --shape R,C");
	if (argc - optind < npos)
		return usage_error(usage, "%s", "missing file argument");
	if (argc - optind > npos)
		return usage_error(usage, "unexpected argument '%s'", argv[optind + npos]);
	a->in = argv[optind];
	a->out = npos > 1 ? argv[optind + 1] : NULL;
	return -1;
}

static float *load_f32(const char *path, unsigned int rows, unsigned int cols)
{
	size_t len, n = (size_t)rows * cols, i;
	unsigned char *raw;
	float *x;

	if (n > SIZE_MAX / 4) {
		spt_err("shape %ux%u is too large", rows, cols);
		return NULL;
	}
	raw = spt_read_file(path, &len);
	if (!raw)
		return NULL;
	if (len != n * 4) {
		spt_err("%s: %zu bytes do not match shape %ux%u (expected %zu bytes of float32)",
			path, len, rows, cols, n * 4);
		free(raw);
		return NULL;
	}
	x = malloc(n ? n * sizeof(float) : 1);
	if (!x) {
		spt_err("%s: out of memory", path);
		free(raw);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		uint32_t u = (uint32_t)raw[4 * i] | (uint32_t)raw[4 * i + 1] << 8 |
			     (uint32_t)raw[4 * i + 2] << 16 | (uint32_t)raw[4 * i + 3] << 24;

		memcpy(&x[i], &u, 4);
		if (!isfinite(x[i])) {
			spt_err("%s: element %zu (row %zu, column %zu) is %s", path, i, i / cols,
				i % cols, isnan(x[i]) ? "NaN" : "infinite");
			free(raw);
			free(x);
			return NULL;
		}
	}
	free(raw);
	return x;
}

static int store_f32(const char *path, const float *x, size_t n)
{
	unsigned char *raw = malloc(n ? n * 4 : 1);
	size_t i;
	int ret;

	if (!raw)
		return spt_err("%s: out of memory", path);
	for (i = 0; i < n; i++) {
		uint32_t u;

		memcpy(&u, &x[i], 4);
		raw[4 * i] = (unsigned char)u;
		raw[4 * i + 1] = (unsigned char)(u >> 8);
		raw[4 * i + 2] = (unsigned char)(u >> 16);
		raw[4 * i + 3] = (unsigned char)(u >> 24);
	}
	ret = spt_write_file(path, raw, n * 4);
	free(raw);
	return ret;
}

static int codec_quantize(int argc, char **argv)
{
	struct codec_args a;
	float *x;
	int ret;

	ret = parse_args(argc, argv, quantize_usage, "sr", 2, &a);
	if (ret >= 0)
		return ret;
	x = load_f32(a.in, a.rows, a.cols);
	if (!x)
		return 1;
	ret = spt_bfp8_quantize(x, x, a.rows, a.cols, a.enc.round, a.enc.round_seed);
	if (ret) {
		free(x);
		return spt_err("%s: cannot quantise: %s", a.in, spt_core_strerror(ret));
	}
	ret = store_f32(a.out, x, (size_t)a.rows * a.cols);
	free(x);
	return ret;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0.0;
}

static void print_encode_stats(const struct codec_args *a, const struct spt_tensor_stats *s)
{
	uint64_t blocks = (uint64_t)a->rows * ((a->cols + 31) / 32);
	double bpe = s->elements ? 8.0 * (double)s->bytes / (double)s->elements : 0.0;

	if (a->json) {
		printf("{\"rows\":%u,\"cols\":%u,\"elements\":%llu,\"natural_zeros\":%llu,"
		       "\"pruned\":%llu,\"underflow\":%llu,\"nonzeros\":%llu,\"sparsity\":%.6f,"
		       "\"blocks\":%llu,\"nz_blocks\":%llu,\"bytes\":%llu,\"bits_per_element\":%.4f,"
		       "\"sum_abs\":%.9g,\"sum_abs_kept\":%.9g}\n",
		       a->rows, a->cols, (unsigned long long)s->elements,
		       (unsigned long long)s->natural_zeros, (unsigned long long)s->pruned,
		       (unsigned long long)s->underflow, (unsigned long long)s->nonzeros,
		       1.0 - (s->elements ? (double)s->nonzeros / (double)s->elements : 0.0),
		       (unsigned long long)blocks, (unsigned long long)s->nz_blocks,
		       (unsigned long long)s->bytes, bpe, s->sum_abs, s->sum_abs_kept);
		return;
	}
	printf("shape          %u x %u (%llu elements)\n", a->rows, a->cols,
	       (unsigned long long)s->elements);
	printf("natural zeros  %llu (%.2f%%)\n", (unsigned long long)s->natural_zeros,
	       pct(s->natural_zeros, s->elements));
	printf("pruned         %llu (%.2f%%)\n", (unsigned long long)s->pruned,
	       pct(s->pruned, s->elements));
	printf("underflow      %llu (%.2f%%)\n", (unsigned long long)s->underflow,
	       pct(s->underflow, s->elements));
	printf("nonzeros       %llu (sparsity %.2f%%)\n", (unsigned long long)s->nonzeros,
	       100.0 - pct(s->nonzeros, s->elements));
	printf("blocks         %llu of %llu nonzero\n", (unsigned long long)s->nz_blocks,
	       (unsigned long long)blocks);
	printf("bytes          %llu (%.3f bits/element, %.2fx smaller than float32)\n",
	       (unsigned long long)s->bytes, bpe, bpe > 0 ? 32.0 / bpe : 0.0);
	printf("sum |x|        %.9g (kept %.9g)\n", s->sum_abs, s->sum_abs_kept);
}

static int codec_encode(int argc, char **argv)
{
	struct spt_tensor_stats st;
	struct codec_args a;
	size_t cap, len = 0;
	void *buf;
	float *x;
	int ret;

	ret = parse_args(argc, argv, encode_usage, "srptjq", 2, &a);
	if (ret >= 0)
		return ret;
	cap = spt_ct_bound(a.rows, a.cols);
	if (!cap)
		return spt_err("shape %ux%u is beyond the format's limits", a.rows, a.cols);
	x = load_f32(a.in, a.rows, a.cols);
	if (!x)
		return 1;
	buf = malloc(cap);
	if (!buf) {
		free(x);
		return spt_err("out of memory");
	}
	ret = spt_ct_encode(x, a.rows, a.cols, &a.enc, buf, cap, &len, &st);
	free(x);
	if (ret) {
		free(buf);
		return spt_err("%s: cannot encode: %s", a.in, spt_core_strerror(ret));
	}
	ret = spt_write_file(a.out, buf, len);
	free(buf);
	if (!ret && !a.quiet)
		print_encode_stats(&a, &st);
	return ret;
}

/* Read and validate a compressed tensor file; NULL (message printed) on error. */
static void *read_compressed(const char *path, size_t *len, struct spt_ct_info *info)
{
	void *buf = spt_read_file(path, len);
	int ret;

	if (!buf)
		return NULL;
	ret = spt_ct_validate(buf, *len, info);
	if (ret) {
		free(buf);
		spt_err("%s: not a valid compressed tensor: %s", path, spt_core_strerror(ret));
		return NULL;
	}
	return buf;
}

static int codec_decode(int argc, char **argv)
{
	struct spt_ct_info info;
	struct codec_args a;
	size_t len, n;
	void *buf;
	float *x;
	int ret;

	ret = parse_args(argc, argv, decode_usage, "q", 2, &a);
	if (ret >= 0)
		return ret;
	buf = read_compressed(a.in, &len, &info);
	if (!buf)
		return 1;
	n = (size_t)info.rows * info.cols;
	x = malloc(n * sizeof(float));
	if (!x) {
		free(buf);
		return spt_err("%s: out of memory for %ux%u floats", a.in, info.rows, info.cols);
	}
	ret = spt_ct_decode(buf, len, x, n);
	free(buf);
	if (ret) {
		free(x);
		return spt_err("%s: cannot decode: %s", a.in, spt_core_strerror(ret));
	}
	ret = store_f32(a.out, x, n);
	free(x);
	if (!ret && !a.quiet)
		printf("%s: %u x %u float32\n", a.out, info.rows, info.cols);
	return ret;
}

struct ct_summary {
	uint64_t tiles, empty_tiles, blocks, nz_blocks, nonzeros;
	unsigned int nz_min, nz_max;
	int exp_min, exp_max;
};

/* Walk a validated compressed tensor's records. */
static void summarise(const unsigned char *p, const struct spt_ct_info *info,
		      struct ct_summary *s)
{
	const unsigned char *payload = p + SPT_CT_HEADER_SIZE + 4 * ((size_t)info->tiles + 1);
	uint64_t t;

	memset(s, 0, sizeof(*s));
	s->tiles = info->tiles;
	s->blocks = (uint64_t)info->rows * info->blocks_per_row;
	s->nz_min = 32;
	s->exp_min = SPT_EXP_MAX;
	s->exp_max = SPT_EXP_MIN;
	for (t = 0; t < info->tiles; t++) {
		const unsigned char *q = p + SPT_CT_HEADER_SIZE + 4 * t, *r;
		uint32_t off = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
			       (uint32_t)q[3] << 24;
		uint64_t l1 = 0;
		int i;

		r = payload + off;
		for (i = 7; i >= 0; i--)
			l1 = l1 << 8 | r[i];
		r += 8;
		if (!l1)
			s->empty_tiles++;
		for (; l1; l1 &= l1 - 1) {
			uint32_t l2 = (uint32_t)r[0] | (uint32_t)r[1] << 8 | (uint32_t)r[2] << 16 |
				      (uint32_t)r[3] << 24;
			unsigned int pc = (unsigned int)__builtin_popcount(l2);
			int e = (int)r[4] - SPT_E8M0_BIAS;

			s->nz_blocks++;
			s->nonzeros += pc;
			if (pc < s->nz_min)
				s->nz_min = pc;
			if (pc > s->nz_max)
				s->nz_max = pc;
			if (e < s->exp_min)
				s->exp_min = e;
			if (e > s->exp_max)
				s->exp_max = e;
			r += 5 + pc;
		}
	}
}

static int codec_inspect(int argc, char **argv)
{
	struct spt_ct_info info;
	struct ct_summary s;
	struct codec_args a;
	uint64_t elems;
	double sparsity, bpe, nz_mean;
	size_t len;
	void *buf;
	int ret;

	ret = parse_args(argc, argv, inspect_usage, "j", 1, &a);
	if (ret >= 0)
		return ret;
	buf = read_compressed(a.in, &len, &info);
	if (!buf)
		return 1;
	summarise(buf, &info, &s);
	free(buf);
	elems = (uint64_t)info.rows * info.cols;
	sparsity = 1.0 - (double)s.nonzeros / (double)elems;
	bpe = 8.0 * (double)len / (double)elems;
	nz_mean = s.nz_blocks ? (double)s.nonzeros / (double)s.nz_blocks : 0.0;

	if (a.json) {
		printf("{\"format_version\":%u,\"rows\":%u,\"cols\":%u,\"elements\":%llu,"
		       "\"nonzeros\":%llu,\"sparsity\":%.6f,\"bytes\":%zu,\"bits_per_element\":%.4f,"
		       "\"level1\":{\"tiles\":%llu,\"empty_tiles\":%llu,\"blocks\":%llu,"
		       "\"nz_blocks\":%llu},",
		       SPT_CT_VERSION, info.rows, info.cols, (unsigned long long)elems,
		       (unsigned long long)s.nonzeros, sparsity, len, bpe,
		       (unsigned long long)s.tiles, (unsigned long long)s.empty_tiles,
		       (unsigned long long)s.blocks, (unsigned long long)s.nz_blocks);
		if (s.nz_blocks)
			printf("\"level2\":{\"nz_per_block_mean\":%.4f,\"nz_per_block_min\":%u,"
			       "\"nz_per_block_max\":%u},\"exponent\":{\"min\":%d,\"max\":%d}}\n",
			       nz_mean, s.nz_min, s.nz_max, s.exp_min, s.exp_max);
		else
			printf("\"level2\":{\"nz_per_block_mean\":0,\"nz_per_block_min\":null,"
			       "\"nz_per_block_max\":null},\"exponent\":{\"min\":null,\"max\":null}}\n");
		return 0;
	}
	printf("format         SPT compressed tensor, version %u\n", SPT_CT_VERSION);
	printf("shape          %u x %u (%llu elements, %u blocks per row)\n", info.rows, info.cols,
	       (unsigned long long)elems, info.blocks_per_row);
	printf("nonzeros       %llu (sparsity %.2f%%)\n", (unsigned long long)s.nonzeros,
	       100.0 * sparsity);
	printf("bytes          %zu (%.3f bits/element, %.2fx smaller than float32)\n", len, bpe,
	       32.0 / bpe);
	printf("level 1        tiles %llu (%llu empty), nonzero blocks %llu of %llu (%.2f%%)\n",
	       (unsigned long long)s.tiles, (unsigned long long)s.empty_tiles,
	       (unsigned long long)s.nz_blocks, (unsigned long long)s.blocks,
	       pct(s.nz_blocks, s.blocks));
	if (s.nz_blocks) {
		printf("level 2        nonzeros per nonzero block: mean %.2f, min %u, max %u\n",
		       nz_mean, s.nz_min, s.nz_max);
		printf("exponent       %d .. %d\n", s.exp_min, s.exp_max);
	} else {
		printf("level 2        no nonzero blocks\n");
		printf("exponent       none\n");
	}
	return 0;
}

int cmd_codec(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{ "quantize", codec_quantize },
		{ "encode", codec_encode },
		{ "decode", codec_decode },
		{ "inspect", codec_inspect },
	};
	size_t i;

	if (argc < 2) {
		fputs(codec_usage, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		fputs(codec_usage, stdout);
		return 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	spt_err("unknown codec command '%s'", argv[1]);
	fputs(codec_usage, stderr);
	return EXIT_USAGE;
}
