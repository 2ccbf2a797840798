// SPDX-License-Identifier: MIT
/*
 * libspt's device backend on the emulated chip: short training runs (MLP
 * and CNN, the device ones through the asynchronous submit/wait API) give
 * exactly the CPU backend's losses, statistics, weights and logits for the
 * same seed (both compute with core/); an MLP step is one job; a step that
 * diverges fails before the update and leaves weights and momentum as they
 * were; the backend refuses bad arguments, and device errors (a corrupt
 * tensor, an injected DMA error, an injected hang) come back as clear
 * negative codes without breaking the context.
 *
 * "spt_runtime_test bench [STEPS [BATCH [mlp|cnn]]]" instead times training
 * steps on the device backend against the device's own busy time (fdinfo
 * drm-engine-spt, summed from the completion records' t_start_ns/t_end_ns,
 * and spt_step_stats.device_seconds) and prints the ratio.
 */
#include <math.h>
#include <sys/stat.h>

#include "spt_test.h"
#include "spt/spt.h"
#include "internal.h"
#include "backend_device_exec.h"

#define MAX_STEPS 8
#define MAX_LAYERS 8

static struct spt_dataset *train_ds, *test_ds;
static char dbgdir[256];

struct run {
	int nl;
	struct spt_step_stats st[MAX_STEPS];
	float *w[MAX_LAYERS], *b[MAX_LAYERS];
	float logits[64 * 10];
};

static void run_free(struct run *r)
{
	int i;

	for (i = 0; i < r->nl; i++) {
		free(r->w[i]);
		free(r->b[i]);
	}
	memset(r, 0, sizeof(*r));
}

static double now_s(void)
{
	return (double)spt_now_ns() / 1e9;
}

/* Device busy time of this process's accel files (fdinfo drm-engine-spt), ns. */
static uint64_t engine_ns(void)
{
	DIR *d = opendir("/proc/self/fdinfo");
	struct dirent *de;
	uint64_t sum = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300], line[256];
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%s", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			unsigned long long v;

			if (sscanf(line, "drm-engine-spt: %llu", &v) == 1)
				sum += v;
		}
		fclose(f);
	}
	closedir(d);
	return sum;
}

static int make_model(struct spt_ctx *ctx, bool cnn, uint32_t batch, int steps,
		      struct spt_model **out)
{
	struct spt_sparsity wg = { .mode = SPT_SPARSITY_TARGET, .kind = SPT_PRUNE_STOCHASTIC,
				   .target = 0.5f };
	struct spt_sparsity wc = { .mode = SPT_SPARSITY_TARGET, .kind = SPT_PRUNE_DETERMINISTIC,
				   .target = 0.3f };
	struct spt_train_opts o;
	struct spt_model *m;
	int ret;

	if (cnn) {
		ret = spt_model_create(ctx, 1, 28, 28, 10, &m);
		if (!ret)
			/*
			 * convolutions after convolutions of 16 and 32 channels:
			 * the CPU backend takes their patch matrices from the
			 * compressed activations, the device decodes, im2col, encode
			 */
			ret = spt_model_add_conv2d(m, 16, 2, 1) ?: spt_model_add_relu(m) ?:
			      spt_model_add_conv2d(m, 32, 2, 1) ?: spt_model_add_relu(m) ?:
			      spt_model_add_conv2d(m, 32, 2, 1) ?: spt_model_add_relu(m) ?:
			      spt_model_add_linear(m, 32) ?: spt_model_add_relu(m) ?:
			      spt_model_add_linear(m, 10);
	} else {
		ret = spt_model_create_preset(ctx, "mlp", &m);
	}
	if (ret)
		return ret;
	spt_train_opts_init(&o, (uint64_t)steps);
	o.batch = batch;
	o.seed = 7;
	o.ctl.warmup_steps = 1;
	o.ctl.ramp_steps = 2;
	ret = spt_model_finalize(m, &o) ?:
	      spt_model_set_target_sparsity(m, 0.9f, SPT_PRUNE_DETERMINISTIC);
	if (!ret && !cnn)	/* also the compressed weight-gradient and weight-copy paths */
		ret = spt_model_set_sparsity(m, -1, SPT_CLASS_WGRAD, &wg) ?:
		      spt_model_set_sparsity(m, 1, SPT_CLASS_WCOPY, &wc);
	if (ret) {
		spt_model_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

static int train_run(enum spt_backend be, bool cnn, uint32_t batch, int steps, struct run *r)
{
	struct spt_ctx_opts co = { .backend = be };
	uint32_t idx[256], i, n_test = 64;
	float *x = malloc((size_t)256 * 784 * sizeof(float));
	uint8_t lab[256];
	struct spt_ctx *ctx = NULL;
	struct spt_model *m = NULL;
	int s, ret;

	memset(r, 0, sizeof(*r));
	if (!x || batch > 256)
		return -ENOMEM;
	ret = spt_ctx_open(&co, &ctx) ?: make_model(ctx, cnn, batch, steps, &m);
	for (s = 0; !ret && s < steps; s++) {
		for (i = 0; i < batch; i++)
			idx[i] = (uint32_t)s * batch + i;
		ret = spt_dataset_gather(train_ds, idx, batch, x, lab);
		if (ret)
			break;
		if (be == SPT_BACKEND_CPU) {
			ret = spt_model_train_step(m, x, lab, batch, &r->st[s]);
			continue;
		}
		/* the device: one step ahead, batch s uploaded while step s - 1 runs */
		ret = spt_model_train_step_submit(m, x, lab, batch);
		if (!ret && s > 0)
			ret = spt_model_train_step_wait(m, &r->st[s - 1]);
		if (!ret && s == steps - 1)
			ret = spt_model_train_step_wait(m, &r->st[s]);
	}
	if (!ret) {
		for (i = 0; i < n_test; i++)
			idx[i] = i;
		ret = spt_dataset_gather(test_ds, idx, n_test, x, lab) ?:
		      spt_model_evaluate(m, x, lab, n_test, NULL, NULL, r->logits);
	}
	if (!ret) {
		r->nl = spt_model_num_layers(m);
		for (i = 0; !ret && i < (uint32_t)r->nl; i++) {
			struct spt_layer_info li;

			ret = spt_model_layer_info(m, (int)i, &li);
			if (ret)
				break;
			r->w[i] = malloc((size_t)li.gemm_n * li.gemm_k * sizeof(float));
			r->b[i] = malloc(li.gemm_n * sizeof(float));
			ret = !r->w[i] || !r->b[i] ? -ENOMEM :
			      spt_model_get_params(m, (int)i, r->w[i], r->b[i]);
		}
	}
	spt_model_free(m);
	spt_ctx_close(ctx);
	free(x);
	return ret;
}

static bool same_runs(struct run *c, struct run *d, bool cnn, int steps)
{
	int s, i;

	for (s = 0; s < steps; s++) {
		const struct spt_step_stats *a = &c->st[s], *b = &d->st[s];

		CHECK(memcmp(&a->loss, &b->loss, sizeof(a->loss)) == 0,
		      "step %d loss cpu %.9g device %.9g", s, a->loss, b->loss);
		CHECK(a->correct == b->correct && a->interim_zeros == b->interim_zeros &&
		      a->interim_elements == b->interim_elements,
		      "step %d stats differ", s);
		CHECK(a->total.dense_macs == b->total.dense_macs &&
		      a->total.exec_macs == b->total.exec_macs &&
		      a->total.bytes_read == b->total.bytes_read &&
		      a->total.bytes_written == b->total.bytes_written &&
		      a->total.blocks == b->total.blocks,
		      "step %d counters differ: exec %llu/%llu read %llu/%llu written %llu/%llu", s,
		      (unsigned long long)a->total.exec_macs, (unsigned long long)b->total.exec_macs,
		      (unsigned long long)a->total.bytes_read, (unsigned long long)b->total.bytes_read,
		      (unsigned long long)a->total.bytes_written,
		      (unsigned long long)b->total.bytes_written);
	}
	CHECK(c->nl == d->nl && c->nl > 0, "layers %d vs %d", c->nl, d->nl);
	/* weight shapes (out x in) of the two models */
	for (i = 0; i < c->nl; i++) {
		static const size_t mlp[3][2] = { { 512, 784 }, { 256, 512 }, { 10, 256 } };
		static const size_t cnnsz[5][2] = {
			{ 16, 9 }, { 32, 144 }, { 32, 288 }, { 32, 32 * 4 * 4 }, { 10, 32 },
		};
		const size_t *sz = cnn ? cnnsz[i] : mlp[i];

		CHECK(memcmp(c->w[i], d->w[i], sz[0] * sz[1] * sizeof(float)) == 0,
		      "layer %d weights differ", i);
		CHECK(memcmp(c->b[i], d->b[i], sz[0] * sizeof(float)) == 0,
		      "layer %d biases differ", i);
	}
	CHECK(memcmp(c->logits, d->logits, sizeof(c->logits)) == 0, "evaluation logits differ");
	ktap_diag("%d steps: loss %.6f -> %.6f, interim sparsity %.3f, exec/dense MACs %.3f",
		  steps, c->st[0].loss, c->st[steps - 1].loss, c->st[steps - 1].interim_sparsity,
		  (double)c->st[steps - 1].total.exec_macs /
		  (double)(c->st[steps - 1].total.dense_macs ? c->st[steps - 1].total.dense_macs : 1));
	return true;
}

static bool compare(bool cnn, uint32_t batch, int steps)
{
	static struct run c, d;
	double t0, t1, t2;
	bool ok;

	if (!train_ds) {
		ktap_diag("no Fashion-MNIST in the image");
		return false;
	}
	t0 = now_s();
	CHECK_ERR(train_run(SPT_BACKEND_CPU, cnn, batch, steps, &c), 0);
	t1 = now_s();
	CHECK_ERR(train_run(SPT_BACKEND_DEVICE, cnn, batch, steps, &d), 0);
	t2 = now_s();
	ktap_diag("cpu backend %.2f s, device backend %.2f s", t1 - t0, t2 - t1);
	ok = same_runs(&c, &d, cnn, steps);
	run_free(&c);
	run_free(&d);
	return ok;
}

static bool mlp_identical(void)
{
	return compare(false, 32, 6);
}

static bool cnn_identical(void)
{
	return compare(true, 8, 3);
}

/* Every layer's weights, bias and momentum, copied out of the model. */
struct snap {
	int nl;
	float *p[MAX_LAYERS][4];
	size_t n[MAX_LAYERS][4];
};

static void snap_take(const struct spt_model *m, struct snap *sn)
{
	int i, k;

	sn->nl = m->nlayers;
	for (i = 0; i < m->nlayers; i++) {
		const struct rt_layer *l = &m->layers[i];
		const float *src[4] = { l->w, l->b, l->vw, l->vb };
		size_t n[4] = { (size_t)l->K * l->N, l->N, (size_t)l->K * l->N, l->N };

		for (k = 0; k < 4; k++) {
			sn->n[i][k] = n[k];
			sn->p[i][k] = malloc(n[k] * sizeof(float));
			if (sn->p[i][k])
				memcpy(sn->p[i][k], src[k], n[k] * sizeof(float));
		}
	}
}

static bool snap_same(const struct spt_model *m, struct snap *sn)
{
	bool same = true;
	int i, k;

	for (i = 0; i < sn->nl; i++) {
		const struct rt_layer *l = &m->layers[i];
		const float *now[4] = { l->w, l->b, l->vw, l->vb };

		for (k = 0; k < 4; k++) {
			same = same && sn->p[i][k] &&
			       !memcmp(sn->p[i][k], now[k], sn->n[i][k] * sizeof(float));
			free(sn->p[i][k]);
		}
	}
	return same;
}

/* A batch of the training set, from sample @first. */
static void gather(uint32_t first, uint32_t n, float *x, uint8_t *lab)
{
	uint32_t idx[256], i;

	for (i = 0; i < n; i++)
		idx[i] = first + i;
	spt_dataset_gather(train_ds, idx, n, x, lab);
}

/* A training step on the device backend is one job, the CNN's ReLU masks included. */
static bool step_is_one_job(bool cnn, uint32_t batch)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE };
	static float x[32 * 784];
	uint8_t lab[32];
	struct spt_step_stats st;
	struct spt_ctx *ctx;
	struct spt_model *m;
	uint64_t j0;
	int s;

	if (!train_ds || batch > 32)
		return false;
	CHECK_ERR(spt_ctx_open(&co, &ctx), 0);
	CHECK_ERR(make_model(ctx, cnn, batch, 4, &m), 0);
	for (s = 0; s < 3; s++) {
		gather((uint32_t)s * batch, batch, x, lab);
		j0 = rt_dx_jobs(ctx);
		CHECK_ERR(spt_model_train_step(m, x, lab, batch, &st), 0);
		CHECK(rt_dx_jobs(ctx) - j0 == 1, "step %d took %llu jobs, expected 1", s,
		      (unsigned long long)(rt_dx_jobs(ctx) - j0));
		CHECK(st.device_seconds > 0 && st.device_seconds <= st.host_seconds,
		      "step %d: device %.6f s, host %.6f s", s, st.device_seconds, st.host_seconds);
	}
	ktap_diag("last step: host %.2f ms, device %.2f ms", st.host_seconds * 1e3,
		  st.device_seconds * 1e3);
	spt_model_free(m);
	spt_ctx_close(ctx);
	return true;
}

static bool mlp_step_is_one_job(void)
{
	return step_is_one_job(false, 32);
}

static bool cnn_step_is_one_job(void)
{
	return step_is_one_job(true, 8);
}

/*
 * An infinite bias makes the logits infinite: the step fails with
 * -SPT_EDIVERGED before its update, on both backends alike.
 */
static bool diverged_step_touches_nothing(void)
{
	static float x[32 * 784];
	enum spt_backend be[2] = { SPT_BACKEND_CPU, SPT_BACKEND_DEVICE };
	uint8_t lab[32];
	int k;

	if (!train_ds)
		return false;
	gather(0, 32, x, lab);
	for (k = 0; k < 2; k++) {
		struct spt_ctx_opts co = { .backend = be[k] };
		struct spt_ctx *ctx;
		struct spt_model *m;
		struct snap sn;

		CHECK_ERR(spt_ctx_open(&co, &ctx), 0);
		CHECK_ERR(make_model(ctx, false, 32, 4, &m), 0);
		CHECK_ERR(spt_model_train_step(m, x, lab, 32, NULL), 0);	/* momentum != 0 */
		m->layers[m->nlayers - 1].b[3] = INFINITY;
		snap_take(m, &sn);
		CHECK_ERR(spt_model_train_step(m, x, lab, 32, NULL), -SPT_EDIVERGED);
		CHECK(snap_same(m, &sn), "%s: a diverged step changed weights or momentum",
		      be[k] == SPT_BACKEND_CPU ? "cpu" : "device");
		CHECK(spt_model_steps(m) == 1, "steps %llu", (unsigned long long)spt_model_steps(m));
		spt_model_free(m);
		spt_ctx_close(ctx);
	}
	return true;
}

/* CHECK_FINITE fails the job where it stands: the SGD queued after it never runs. */
static bool check_finite_stops_the_update(void)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE };
	const struct spt_backend_ops *ops;
	struct spt_buf w, v, g;
	float ref_w[256], ref_v[256], *gp;
	struct spt_ctx *ctx;
	int i;

	CHECK_ERR(spt_ctx_open(&co, &ctx), 0);
	ops = ctx->ops;
	CHECK_ERR(ops->buf_alloc(ctx, &w, sizeof(ref_w)) ?: ops->buf_alloc(ctx, &v, sizeof(ref_w)) ?:
		  ops->buf_alloc(ctx, &g, sizeof(ref_w)), 0);
	gp = g.host;
	for (i = 0; i < 256; i++) {
		((float *)w.host)[i] = (float)i / 64.0f;
		((float *)v.host)[i] = 0.5f;
		gp[i] = 1.0f;
	}
	memcpy(ref_w, w.host, sizeof(ref_w));
	memcpy(ref_v, v.host, sizeof(ref_v));
	gp[77] = NAN;
	CHECK_ERR(ops->check_finite(ctx, &g, 256), 0);
	CHECK_ERR(ops->sgd(ctx, &w, &v, &g, 256, 0.1f, 0.9f, 0.0f), 0);
	CHECK_ERR(ops->sync(ctx), -EDOM);
	CHECK(!memcmp(ref_w, w.host, sizeof(ref_w)) && !memcmp(ref_v, v.host, sizeof(ref_v)),
	      "the update ran after a failed finite check");
	gp[77] = 1.0f;
	CHECK_ERR(ops->check_finite(ctx, &g, 256), 0);
	CHECK_ERR(ops->sgd(ctx, &w, &v, &g, 256, 0.1f, 0.9f, 0.0f), 0);
	CHECK_ERR(ops->sync(ctx), 0);
	CHECK(memcmp(ref_w, w.host, sizeof(ref_w)) != 0, "the update did not run");
	ops->buf_free(ctx, &w);
	ops->buf_free(ctx, &v);
	ops->buf_free(ctx, &g);
	spt_ctx_close(ctx);
	return true;
}

static bool info_and_refusals(void)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE };
	struct spt_ctx_info info;
	struct spt_train_opts o;
	struct spt_ctx *ctx;
	struct spt_model *m;

	CHECK_ERR(spt_ctx_open(&co, &ctx), 0);
	CHECK_ERR(spt_ctx_info(ctx, &info), 0);
	CHECK(info.has_bfp8 && !info.has_fp32 && !info.query_only, "info: bfp8 %d fp32 %d q %d",
	      info.has_bfp8, info.has_fp32, info.query_only);
	/* the chip has no dense FP32 path */
	CHECK_ERR(spt_model_create_preset(ctx, "mlp", &m), 0);
	spt_train_opts_init(&o, 10);
	o.precision = SPT_PRECISION_FP32;
	CHECK_ERR(spt_model_finalize(m, &o), -SPT_ENOBACKEND);
	spt_model_free(m);
	spt_ctx_close(ctx);
	/* query-only contexts cannot hold tensors */
	co.flags = SPT_CTX_QUERY_ONLY;
	CHECK_ERR(spt_ctx_open(&co, &ctx), 0);
	CHECK_ERR(spt_model_create_preset(ctx, "mlp", &m), 0);
	spt_train_opts_init(&o, 10);
	CHECK_ERR(spt_model_finalize(m, &o), -SPT_ENOBACKEND);
	spt_model_free(m);
	spt_ctx_close(ctx);
	/* not an spt node */
	co.flags = 0;
	co.device_path = "/dev/null";
	CHECK_ERR(spt_ctx_open(&co, &ctx), -SPT_ENODEVICE);
	co.device_path = "/dev/accel/accel99";
	CHECK_ERR(spt_ctx_open(&co, &ctx), -SPT_ENODEVICE);
	return true;
}

/* Direct backend calls: argument checks and device errors. */
struct dctx {
	struct spt_ctx *ctx;
	const struct spt_backend_ops *ops;
	struct spt_buf x, a, b, y, big;
};

static int dctx_open(struct dctx *d)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE };
	float *x;
	int ret, i;

	memset(d, 0, sizeof(*d));
	ret = spt_ctx_open(&co, &d->ctx);
	if (ret)
		return ret;
	d->ops = d->ctx->ops;
	ret = d->ops->buf_alloc(d->ctx, &d->x, 64 * 64 * 4) ?:
	      d->ops->buf_alloc(d->ctx, &d->a, spt_ct_bound(64, 64)) ?:
	      d->ops->buf_alloc(d->ctx, &d->b, spt_ct_bound(64, 64)) ?:
	      d->ops->buf_alloc(d->ctx, &d->y, 64 * 64 * 4) ?:
	      d->ops->buf_alloc(d->ctx, &d->big, 1 << 20);
	if (ret)
		return ret;
	x = d->x.host;
	for (i = 0; i < 64 * 64; i++)
		x[i] = (float)((i * 37) % 101 - 50) / 16.0f;
	return d->ops->encode(d->ctx, &d->x, 64, 64, NULL, &d->a, NULL) ?:
	       d->ops->encode(d->ctx, &d->x, 64, 64, NULL, &d->b, NULL) ?:
	       d->ops->sync(d->ctx);
}

static void dctx_close(struct dctx *d)
{
	struct spt_buf *bufs[] = { &d->x, &d->a, &d->b, &d->y, &d->big };
	unsigned int i;

	for (i = 0; i < 5; i++)
		if (bufs[i]->host)
			d->ops->buf_free(d->ctx, bufs[i]);
	spt_ctx_close(d->ctx);
}

static bool gemm_ok(struct dctx *d)
{
	struct spt_counters cnt;
	float ref[64 * 64];
	struct spt_gemm_out out = { .y = ref };

	spt_encode_opts_init(&out.enc);
	CHECK_ERR(d->ops->gemm(d->ctx, SPT_PASS_FWD, &d->a, &d->b, NULL, SPT_ACT_NONE, NULL,
			       &d->y, NULL, NULL, NULL, &cnt), 0);
	CHECK_ERR(d->ops->sync(d->ctx), 0);	/* results are there after sync() */
	CHECK_ERR(spt_gemm(SPT_PASS_FWD, d->a.host, d->a.len, d->b.host, d->b.len, NULL, &out,
			   NULL), 0);
	CHECK(memcmp(ref, d->y.host, sizeof(ref)) == 0, "device GEMM differs from core");
	return true;
}

/*
 * encode_t and gemm_t (one ENCODE v2 / GEMM v2 command each) write the
 * re-blocked copy that spt_ct_transpose with raw options gives on the host,
 * bit for bit, next to the result itself; bad pairings are refused.
 */
static bool fused_transposes_match_core(void)
{
	struct dctx d;
	struct spt_buf t, ct;
	struct spt_encode_opts o;
	size_t cap = spt_ct_bound(64, 64), len = 0;
	uint8_t *want = malloc(cap);

	CHECK(want != NULL, "out of memory");
	CHECK_ERR(dctx_open(&d), 0);
	CHECK_ERR(d.ops->buf_alloc(d.ctx, &t, cap), 0);
	CHECK_ERR(d.ops->buf_alloc(d.ctx, &ct, cap), 0);
	spt_encode_opts_init(&o);
	o.prune.mode = SPT_PRUNE_DETERMINISTIC;
	o.prune.tau = 0.5f;
	CHECK_ERR(d.ops->encode_t(d.ctx, &d.x, 64, 64, &o, &d.a, NULL, &t), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	CHECK_ERR(spt_ct_transpose(d.a.host, d.a.len, NULL, want, cap, &len, NULL), 0);
	CHECK(t.len == len && memcmp(t.host, want, len) == 0,
	      "encode_t's transpose differs from core's (%zu / %zu bytes)", t.len, len);
	CHECK_ERR(d.ops->gemm_t(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_RELU, NULL, NULL,
				&ct, NULL, NULL, NULL, &t), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	CHECK_ERR(spt_ct_transpose(ct.host, ct.len, NULL, want, cap, &len, NULL), 0);
	CHECK(t.len == len && memcmp(t.host, want, len) == 0,
	      "gemm_t's transpose differs from core's (%zu / %zu bytes)", t.len, len);
	/* the copy needs a compressed result, a buffer of its own */
	CHECK_ERR(d.ops->gemm_t(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, &d.y,
				NULL, NULL, NULL, NULL, &t), -EINVAL);
	CHECK_ERR(d.ops->gemm_t(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, NULL,
				&ct, NULL, NULL, NULL, &ct), -EINVAL);
	CHECK_ERR(d.ops->encode_t(d.ctx, &d.x, 64, 64, NULL, &t, NULL, &t), -EINVAL);
	CHECK_ERR(d.ops->encode_t(d.ctx, &d.x, 64, 64, NULL, &d.a, NULL, NULL), -EINVAL);
	d.ops->buf_free(d.ctx, &t);
	d.ops->buf_free(d.ctx, &ct);
	free(want);
	dctx_close(&d);
	return true;
}

static bool backend_bad_args(void)
{
	struct dctx d;
	struct spt_buf empty = { 0 }, small;
	struct spt_encode_opts bad;
	uint8_t save[64];

	CHECK_ERR(dctx_open(&d), 0);
	small = d.x;
	small.cap = 16;
	/* encode: source smaller than rows x cols, zero dims, bad options */
	CHECK_ERR(d.ops->encode(d.ctx, &small, 64, 64, NULL, &d.a, NULL), -EINVAL);
	CHECK_ERR(d.ops->encode(d.ctx, &d.x, 0, 64, NULL, &d.a, NULL), -EINVAL);
	spt_encode_opts_init(&bad);
	bad.prune.tau = -1.0f;
	CHECK_ERR(d.ops->encode(d.ctx, &d.x, 64, 64, &bad, &d.a, NULL), -EINVAL);
	/* decode: wrong element count, output too small, empty source */
	CHECK_ERR(d.ops->decode(d.ctx, &d.a, &d.y, 63 * 64), -EINVAL);
	CHECK_ERR(d.ops->decode(d.ctx, &d.a, &small, 64 * 64), -EINVAL);
	CHECK_ERR(d.ops->decode(d.ctx, &empty, &d.y, 64 * 64), -EINVAL);
	/* transpose of nothing */
	CHECK_ERR(d.ops->transpose(d.ctx, &empty, NULL, &d.b, NULL), -EINVAL);
	/* gemm: no output, RELU_GRAD without mask, mask without RELU_GRAD, shapes */
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, NULL,
			      NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_BWD, &d.a, &d.b, NULL, SPT_ACT_RELU_GRAD, NULL,
			      &d.y, NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, &d.a,
			      &d.y, NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(d.ops->gemm(d.ctx, (enum spt_pass)7, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL,
			      &d.y, NULL, NULL, NULL, NULL), -EINVAL);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL,
			      &small, NULL, NULL, NULL, NULL), -EINVAL);
	/* relu_mask: no elements, more than a buffer holds, no buffer */
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.y, &d.x, 0), -EINVAL);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &small, &d.x, 64), -EINVAL);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.y, &small, 64), -EINVAL);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &empty, &d.x, 64), -EINVAL);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.y, &d.x, 64 * 64 + 1), -EINVAL);
	/* a bad magic is refused before submission */
	memcpy(save, d.a.host, 64);
	memset(d.a.host, 0xee, 4);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL,
			      &d.y, NULL, NULL, NULL, NULL), -EBADMSG);
	memcpy(d.a.host, save, 64);
	/* the context still works */
	if (!gemm_ok(&d))
		return false;
	dctx_close(&d);
	return true;
}

/*
 * The device backend's relu_mask against core's on the host, bit for bit:
 * ReLU outputs with +0.0f and -0.0f (and NaNs), queued right behind the
 * decode that writes its dx (no sync between); then dx with NaN payloads;
 * then in place.
 */
static bool relu_mask_matches_core(void)
{
	static float want[64 * 64], y[64 * 64];
	const uint32_t n = 64 * 64;
	struct dctx d;
	uint32_t i, masked = 0, u;
	float *dx, *yd;

	CHECK_ERR(dctx_open(&d), 0);
	dx = d.y.host;
	yd = d.big.host;
	for (i = 0; i < n; i++) {
		u = i % 7 == 0 ? 0x7fc00000u | i : i % 11 == 0 ? 0xff800001u + i : 0u;
		if (u)
			memcpy(&y[i], &u, 4);
		else
			y[i] = i % 3 == 0 ? 0.0f : i % 5 == 0 ? -0.0f : (float)(i % 13) + 0.5f;
		yd[i] = y[i];
		masked += y[i] == 0.0f;
	}
	CHECK(masked > n / 4, "only %u masked", masked);
	CHECK_ERR(spt_ct_decode(d.a.host, d.a.len, want, n), 0);
	CHECK_ERR(spt_relu_mask(want, y, n), 0);
	memset(dx, 0xff, n * sizeof(float));
	CHECK_ERR(d.ops->decode(d.ctx, &d.a, &d.y, n), 0);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.y, &d.big, n), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	CHECK(!memcmp(dx, want, n * sizeof(float)), "device relu_mask differs from core");
	CHECK(!memcmp(yd, y, n * sizeof(float)), "relu_mask wrote y");
	/* NaN payloads in dx keep their bits where y is not zero */
	for (i = 0; i < n; i += 3) {
		u = (i & 1 ? 0x7fa00000u : 0xffc00000u) + i;
		memcpy(&dx[i], &u, 4);
	}
	memcpy(want, dx, n * sizeof(float));
	CHECK_ERR(spt_relu_mask(want, y, n), 0);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.y, &d.big, n), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	CHECK(!memcmp(dx, want, n * sizeof(float)), "device relu_mask differs on NaN payloads");
	/* in place: -0.0f becomes +0.0f */
	CHECK_ERR(spt_relu_mask(y, y, n), 0);
	CHECK_ERR(d.ops->relu_mask(d.ctx, &d.big, &d.big, n), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	CHECK(!memcmp(yd, y, n * sizeof(float)), "in-place relu_mask differs from core");
	dctx_close(&d);
	return true;
}

static bool corrupt_tensor_is_eio(void)
{
	struct dctx d;
	uint8_t *p;

	CHECK_ERR(dctx_open(&d), 0);
	/* a valid header over a garbage payload: only the device can tell */
	p = d.a.host;
	memset(p + SPT_CT_HEADER_SIZE, 0xff, 8);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, &d.y,
			      NULL, NULL, NULL, NULL), 0);
	CHECK_ERR(d.ops->sync(d.ctx), -EIO);
	CHECK_ERR(d.ops->encode(d.ctx, &d.x, 64, 64, NULL, &d.a, NULL), 0);
	CHECK_ERR(d.ops->sync(d.ctx), 0);
	if (!gemm_ok(&d))
		return false;
	dctx_close(&d);
	return true;
}

static int write_knob(const char *name, const char *val)
{
	char path[400];
	int f, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dbgdir, name);
	f = open(path, O_WRONLY);
	if (f < 0)
		return -errno;
	if (write(f, val, strlen(val)) < 0)
		r = -errno;
	close(f);
	return r;
}

static bool injected_dma_error_is_eio(void)
{
	struct dctx d;

	CHECK_ERR(dctx_open(&d), 0);
	CHECK_ERR(write_knob("fi_dma_err_after", "1"), 0);
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, &d.y,
			      NULL, NULL, NULL, NULL), 0);
	CHECK_ERR(d.ops->sync(d.ctx), -EIO);
	if (!gemm_ok(&d))
		return false;
	dctx_close(&d);
	return true;
}

static bool injected_hang_is_etimedout(void)
{
	struct dctx d;
	double t0;

	CHECK_ERR(dctx_open(&d), 0);
	CHECK_ERR(write_knob("fi_hang_after", "1"), 0);
	t0 = now_s();
	CHECK_ERR(d.ops->gemm(d.ctx, SPT_PASS_FWD, &d.a, &d.b, NULL, SPT_ACT_NONE, NULL, &d.y,
			      NULL, NULL, NULL, NULL), 0);
	CHECK_ERR(d.ops->sync(d.ctx), -ETIMEDOUT);
	ktap_diag("hang reported after %.1f s (driver reset)", now_s() - t0);
	if (!gemm_ok(&d))
		return false;
	dctx_close(&d);
	return true;
}

static void find_debugfs(void)
{
	char link[96], target[200];
	ssize_t n;

	snprintf(link, sizeof(link), "/sys/class/accel/accel%d/device", spt_accel_index());
	n = readlink(link, target, sizeof(target) - 1);
	target[n > 0 ? n : 0] = 0;
	snprintf(dbgdir, sizeof(dbgdir), "/sys/kernel/debug/accel/%s",
		 strrchr(target, '/') ? strrchr(target, '/') + 1 : target);
}

static int load_data(uint32_t ntrain)
{
	int ret = spt_dataset_load_fashion_mnist(NULL, true, &train_ds);

	if (!ret)
		ret = spt_dataset_truncate(train_ds, ntrain) ?:
		      spt_dataset_load_fashion_mnist(NULL, false, &test_ds);
	if (ret) {
		printf("# Fashion-MNIST: %s\n", spt_strerror(ret));
		spt_dataset_free(train_ds);
		train_ds = NULL;
	}
	return ret;
}

/*
 * Device backend step time against device busy time: the wall time of
 * spt_model_train_step() per step over the device's busy time (fdinfo and
 * spt_step_stats.device_seconds), then the same steps pipelined with the
 * async API, gather included, against the synchronous loop.
 */
static int bench(int steps, uint32_t batch, bool cnn)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE };
	float *x = malloc((size_t)batch * 784 * sizeof(float));
	uint8_t *lab = malloc(batch);
	uint32_t *idx = malloc(batch * sizeof(*idx)), i;
	double host = 0, t0, energy = 0, sparsity = 0, dsec = 0, loop[2] = { 0, 0 };
	uint64_t dev = 0, e0, bytes = 0, dense = 0, exec = 0, j0, jobs = 0;
	struct spt_step_stats st;
	struct spt_ctx *ctx;
	struct spt_model *m;
	int s, pass, ret;

	if (!x || !lab || !idx || load_data((uint32_t)(steps + 1) * batch))
		return 1;
	ret = spt_ctx_open(&co, &ctx);
	if (!ret && cnn) {	/* the preset CNN, as spt train --model cnn */
		struct spt_train_opts o;

		spt_train_opts_init(&o, 3 * (uint64_t)(steps + 1));
		o.batch = batch;
		ret = spt_model_create_preset(ctx, "cnn", &m) ?: spt_model_finalize(m, &o) ?:
		      spt_model_set_target_sparsity(m, 0.9f, SPT_PRUNE_DETERMINISTIC);
	} else if (!ret) {
		ret = make_model(ctx, false, batch, 3 * (steps + 1), &m);
	}
	if (ret) {
		printf("bench: %s\n", spt_strerror(ret));
		return 1;
	}
	for (s = 0; s <= steps; s++) {
		for (i = 0; i < batch; i++)
			idx[i] = (uint32_t)s * batch + i;
		ret = spt_dataset_gather(train_ds, idx, batch, x, lab);
		e0 = engine_ns();
		j0 = rt_dx_jobs(ctx);
		t0 = now_s();
		ret = ret ?: spt_model_train_step(m, x, lab, batch, &st);
		if (ret) {
			printf("bench: step %d: %s\n", s, spt_strerror(ret));
			return 1;
		}
		if (s == 0)
			continue;	/* warm-up: first touch of the pools */
		host += now_s() - t0;
		dev += engine_ns() - e0;
		jobs += rt_dx_jobs(ctx) - j0;
		dsec += st.device_seconds;
		bytes += st.total.bytes_read + st.total.bytes_written;
		dense += st.total.dense_macs;
		exec += st.total.exec_macs;
		energy += st.total.energy_pj;
		sparsity += st.interim_sparsity;
	}
	/* the loop a trainer runs, gather included: synchronous, then one step ahead */
	for (pass = 0; pass < 2; pass++) {
		t0 = now_s();
		for (s = 0; s < steps; s++) {
			for (i = 0; i < batch; i++)
				idx[i] = (uint32_t)s * batch + i;
			ret = spt_dataset_gather(train_ds, idx, batch, x, lab);
			if (!ret && pass == 0)
				ret = spt_model_train_step(m, x, lab, batch, NULL);
			else if (!ret)
				ret = spt_model_train_step_submit(m, x, lab, batch) ?:
				      (s ? spt_model_train_step_wait(m, NULL) : 0);
			if (ret)
				break;
		}
		if (!ret && pass == 1)
			ret = spt_model_train_step_wait(m, NULL);
		if (ret) {
			printf("bench: loop %d step %d: %s\n", pass, s, spt_strerror(ret));
			return 1;
		}
		loop[pass] = now_s() - t0;
	}
	printf("device backend, %s, batch %u, %d steps (after 1 warm-up)\n",
	       cnn ? "CNN preset" : "MLP 784-512-256-10", batch, steps);
	printf("  step time     %.2f ms (wall, per step), %.2f jobs per step\n",
	       host * 1e3 / steps, (double)jobs / steps);
	printf("  device busy   %.2f ms (fdinfo drm-engine-spt, per step), %.2f ms "
	       "(spt_step_stats.device_seconds)\n", (double)dev / 1e6 / steps, dsec * 1e3 / steps);
	printf("  ratio         %.2f (target <= 1.5); by device_seconds %.2f\n",
	       dev ? host * 1e9 / (double)dev : 0.0, dsec > 0 ? host / dsec : 0.0);
	printf("  training loop with gather, per step: sync %.2f ms, async %.2f ms (%.2fx)\n",
	       loop[0] * 1e3 / steps, loop[1] * 1e3 / steps, loop[1] > 0 ? loop[0] / loop[1] : 0.0);
	printf("  per step: %.2f MB moved (compressed operands and outputs), interim sparsity "
	       "%.3f,\n  executed/dense MACs %.3f, modeled %.2f TOPS/W effective\n",
	       (double)bytes / 1e6 / steps, sparsity / steps, dense ? (double)exec / dense : 0.0,
	       energy > 0 ? 2.0 * (double)dense / energy : 0.0);
	spt_model_free(m);
	spt_ctx_close(ctx);
	return 0;
}

static const struct ktap_case cases[] = {
	{ "device_backend_info_and_refusals", info_and_refusals },
	{ "mlp_steps_identical_to_cpu_backend", mlp_identical },
	{ "cnn_steps_identical_to_cpu_backend", cnn_identical },
	{ "mlp_step_is_one_job", mlp_step_is_one_job },
	{ "cnn_step_is_one_job", cnn_step_is_one_job },
	{ "relu_mask_matches_core", relu_mask_matches_core },
	{ "diverged_step_touches_nothing", diverged_step_touches_nothing },
	{ "check_finite_stops_the_update", check_finite_stops_the_update },
	{ "fused_transposes_match_core", fused_transposes_match_core },
	{ "backend_bad_arguments", backend_bad_args },
	{ "corrupt_tensor_is_eio", corrupt_tensor_is_eio },
	{ "injected_dma_error_is_eio", injected_dma_error_is_eio },
	{ "injected_hang_is_etimedout", injected_hang_is_etimedout },
};

int main(int argc, char **argv)
{
	struct stat st;
	int fd = spt_open();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "bench"))
		return bench(argc > 2 ? atoi(argv[2]) : 10,
			     argc > 3 ? (uint32_t)atoi(argv[3]) : 64,
			     argc > 4 && !strcmp(argv[4], "cnn"));
	if (fd < 0) {
		printf("KTAP version 1\n1..0 # SKIP no spt device\n");
		return 1;
	}
	close(fd);
	find_debugfs();
	if (stat(dbgdir, &st)) {
		printf("KTAP version 1\n1..0 # SKIP needs debugfs and -device spt,debug=on\n");
		return 1;
	}
	load_data(256);
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
