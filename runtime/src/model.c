// SPDX-License-Identifier: MIT
/* Contexts, model construction, parameters and statistics getters. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define RT_MAX_LAYERS 64
#define RT_MAX_DIM (1u << 20)

SPT_API int spt_ctx_open(const struct spt_ctx_opts *opts, struct spt_ctx **out)
{
	struct spt_ctx *ctx;
	int ret;

	if (!opts || !out || (opts->flags & ~SPT_CTX_QUERY_ONLY))
		return -EINVAL;
	*out = NULL;
	if (opts->backend != SPT_BACKEND_CPU && opts->backend != SPT_BACKEND_DEVICE)
		return -EINVAL;
	ctx = rt_zalloc(sizeof(*ctx));
	if (!ctx)
		return -ENOMEM;
	ctx->kind = opts->backend;
	ctx->ops = opts->backend == SPT_BACKEND_CPU ? &spt_cpu_backend : &spt_device_backend;
	spt_energy_model_init(&ctx->energy);
	ret = ctx->ops->open(ctx, opts);
	if (ret) {
		free(ctx);
		return ret;
	}
	*out = ctx;
	return 0;
}

SPT_API void spt_ctx_close(struct spt_ctx *ctx)
{
	if (!ctx)
		return;
	ctx->ops->close(ctx);
	free(ctx);
}

SPT_API int spt_ctx_info(const struct spt_ctx *ctx, struct spt_ctx_info *info)
{
	if (!ctx || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->backend = ctx->kind;
	snprintf(info->backend_name, sizeof(info->backend_name), "%s", ctx->ops->name);
	snprintf(info->device, sizeof(info->device), "%s", ctx->device);
	snprintf(info->driver, sizeof(info->driver), "%s", ctx->driver);
	snprintf(info->isa, sizeof(info->isa), "%s", spt_core_isa_name(spt_core_get_isa()));
	info->ct_format_version = SPT_CT_VERSION;
	info->abi_version = ctx->abi_version;
	info->lib_major = SPT_VERSION_MAJOR;
	info->lib_minor = SPT_VERSION_MINOR;
	info->lib_patch = SPT_VERSION_PATCH;
	info->energy = ctx->energy;
	return ctx->ops->info(ctx, info);
}

SPT_API int spt_ctx_set_energy_model(struct spt_ctx *ctx, const struct spt_energy_model *m)
{
	int ret;

	if (!ctx || !m)
		return -EINVAL;
	ret = spt_energy_model_check(m);
	if (ret)
		return ret;
	ctx->energy = *m;
	return 0;
}

SPT_API void spt_train_opts_init(struct spt_train_opts *o, uint64_t total_steps)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->precision = SPT_PRECISION_BFP8;
	o->batch = 64;
	o->lr = 0.05f;
	o->momentum = 0.9f;
	o->weight_decay = 5e-4f;
	o->lr_schedule = SPT_LR_COSINE;
	o->lr_min_frac = 0.0f;
	o->total_steps = total_steps;
	o->seed = 1;
	o->ctl.warmup_steps = (uint32_t)(total_steps / 20);
	o->ctl.ramp_steps = (uint32_t)(total_steps / 4);
	o->ctl.eta = 4.0f;
	o->ctl.ema = 0.1f;
	o->ctl.backoff_window = 200;
	o->ctl.backoff_step = 0.02f;
	o->ctl.backoff_floor = 0.5f;
}

static int opts_check(const struct spt_train_opts *o)
{
	if (o->flags || (o->precision != SPT_PRECISION_BFP8 && o->precision != SPT_PRECISION_FP32))
		return -EINVAL;
	if (o->batch == 0 || o->batch > 65536)
		return -EINVAL;
	if (!isfinite(o->lr) || o->lr < 0 || !isfinite(o->momentum) || o->momentum < 0 ||
	    o->momentum >= 1 || !isfinite(o->weight_decay) || o->weight_decay < 0)
		return -EINVAL;
	if (o->lr_schedule > SPT_LR_STEP || !isfinite(o->lr_min_frac) || o->lr_min_frac < 0 ||
	    o->lr_min_frac > 1)
		return -EINVAL;
	if (!isfinite(o->ctl.eta) || o->ctl.eta < 0 || o->ctl.eta > 100 ||
	    !isfinite(o->ctl.ema) || o->ctl.ema <= 0 || o->ctl.ema > 1 ||
	    !isfinite(o->ctl.backoff_step) || o->ctl.backoff_step < 0 ||
	    !isfinite(o->ctl.backoff_floor) || o->ctl.backoff_floor < 0 || o->ctl.backoff_floor > 1)
		return -EINVAL;
	return 0;
}

SPT_API int spt_model_create(struct spt_ctx *ctx, uint32_t in_c, uint32_t in_h,
			     uint32_t in_w, uint32_t classes, struct spt_model **out)
{
	struct spt_model *m;

	if (!ctx || !out)
		return -EINVAL;
	*out = NULL;
	if (!in_c || !in_h || !in_w || classes < 2 || classes > 256 ||
	    (uint64_t)in_c * in_h * in_w > RT_MAX_DIM)
		return -EINVAL;
	m = rt_zalloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->ctx = ctx;
	m->in_c = in_c;
	m->in_h = in_h;
	m->in_w = in_w;
	m->classes = classes;
	m->layers = rt_zalloc(RT_MAX_LAYERS * sizeof(*m->layers));
	if (!m->layers) {
		free(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

/* Output shape of the last layer added (or the input). */
static void cur_shape(const struct spt_model *m, uint32_t *c, uint32_t *h, uint32_t *w)
{
	if (m->nlayers == 0) {
		*c = m->in_c;
		*h = m->in_h;
		*w = m->in_w;
		return;
	}
	*c = m->layers[m->nlayers - 1].out_c;
	*h = m->layers[m->nlayers - 1].out_h;
	*w = m->layers[m->nlayers - 1].out_w;
}

static struct rt_layer *layer_new(struct spt_model *m)
{
	struct rt_layer *l;
	int i;

	if (m->finalized || m->nlayers >= RT_MAX_LAYERS)
		return NULL;
	l = &m->layers[m->nlayers];
	memset(l, 0, sizeof(*l));
	for (i = 0; i < SPT_CLASS_COUNT; i++)
		rt_ctl_init(&l->ctl[i]);
	cur_shape(m, &l->in_c, &l->in_h, &l->in_w);
	return l;
}

SPT_API int spt_model_add_linear(struct spt_model *m, uint32_t out_features)
{
	struct rt_layer *l;

	if (!m || out_features == 0 || out_features > RT_MAX_DIM)
		return -EINVAL;
	l = layer_new(m);
	if (!l)
		return -EINVAL;
	l->kind = RT_LINEAR;
	l->in_c = l->in_c * l->in_h * l->in_w;
	l->in_h = l->in_w = 1;
	l->out_c = out_features;
	l->out_h = l->out_w = 1;
	l->K = l->in_c;
	l->N = out_features;
	l->rows_per_sample = 1;
	m->nlayers++;
	return 0;
}

SPT_API int spt_model_add_conv2d(struct spt_model *m, uint32_t out_channels,
				 uint32_t stride, uint32_t padding)
{
	struct rt_layer *l;

	if (!m || out_channels == 0 || out_channels > 4096 || (stride != 1 && stride != 2) ||
	    padding > 1)
		return -EINVAL;
	l = layer_new(m);
	if (!l)
		return -EINVAL;
	if (l->in_h + 2 * padding < 3 || l->in_w + 2 * padding < 3 || l->in_c > 4096)
		return -EINVAL;
	l->kind = RT_CONV;
	l->stride = stride;
	l->pad = padding;
	l->out_c = out_channels;
	l->out_h = (l->in_h + 2 * padding - 3) / stride + 1;
	l->out_w = (l->in_w + 2 * padding - 3) / stride + 1;
	l->K = 9 * l->in_c;
	l->N = out_channels;
	l->rows_per_sample = l->out_h * l->out_w;
	m->nlayers++;
	return 0;
}

SPT_API int spt_model_add_relu(struct spt_model *m)
{
	if (!m || m->finalized || m->nlayers == 0 || m->layers[m->nlayers - 1].relu)
		return -EINVAL;
	m->layers[m->nlayers - 1].relu = true;
	return 0;
}

SPT_API int spt_model_add_flatten(struct spt_model *m)
{
	if (!m || m->finalized)
		return -EINVAL;
	return 0;
}

SPT_API int spt_model_create_preset(struct spt_ctx *ctx, const char *name,
				    struct spt_model **out)
{
	struct spt_model *m;
	int ret;

	if (!ctx || !name || !out)
		return -EINVAL;
	if (strcmp(name, "mlp") && strcmp(name, "cnn"))
		return -EINVAL;
	ret = spt_model_create(ctx, 1, 28, 28, 10, &m);
	if (ret)
		return ret;
	if (!strcmp(name, "mlp")) {
		ret = spt_model_add_linear(m, 512) ?: spt_model_add_relu(m) ?:
		      spt_model_add_linear(m, 256) ?: spt_model_add_relu(m) ?:
		      spt_model_add_linear(m, 10);
	} else {
		ret = spt_model_add_conv2d(m, 16, 1, 1) ?: spt_model_add_relu(m) ?:
		      spt_model_add_conv2d(m, 32, 2, 1) ?: spt_model_add_relu(m) ?:
		      spt_model_add_conv2d(m, 32, 2, 1) ?: spt_model_add_relu(m) ?:
		      spt_model_add_flatten(m) ?: spt_model_add_linear(m, 128) ?:
		      spt_model_add_relu(m) ?: spt_model_add_linear(m, 10);
	}
	if (ret) {
		spt_model_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

static int buf(struct spt_model *m, struct spt_buf *b, size_t bytes)
{
	return m->ctx->ops->buf_alloc ? m->ctx->ops->buf_alloc(m->ctx, b, bytes) : -SPT_ENOBACKEND;
}

static int ct_buf(struct spt_model *m, struct spt_buf *b, uint64_t rows, uint64_t cols)
{
	size_t n;

	if (rows > SPT_CT_MAX_DIM || cols > SPT_CT_MAX_DIM)
		return -E2BIG;
	n = spt_ct_bound((uint32_t)rows, (uint32_t)cols);
	if (!n)
		return -E2BIG;
	return buf(m, b, n);
}

static int layer_alloc(struct spt_model *m, struct rt_layer *l)
{
	uint64_t B = m->opts.batch, M = B * l->rows_per_sample, K = l->K, N = l->N;
	size_t kn = (size_t)K * N;
	bool bfp8 = m->opts.precision == SPT_PRECISION_BFP8;
	int ret = 0;

	/* master weights, momentum and gradients live in backend buffers (device BOs) */
	ret = ret ?: buf(m, &l->wb, kn * sizeof(float));
	ret = ret ?: buf(m, &l->vwb, kn * sizeof(float));
	ret = ret ?: buf(m, &l->bb, N * sizeof(float));
	ret = ret ?: buf(m, &l->vbb, N * sizeof(float));
	ret = ret ?: buf(m, &l->gbb, N * sizeof(float));
	if (ret)
		return ret;
	l->w = l->wb.host;
	l->vw = l->vwb.host;
	l->b = l->bb.host;
	l->vb = l->vbb.host;
	l->gb = l->gbb.host;
	ret = ret ?: buf(m, &l->x, B * l->in_c * l->in_h * l->in_w * sizeof(float));
	if (l->kind == RT_CONV)
		ret = ret ?: buf(m, &l->col, M * K * sizeof(float));
	ret = ret ?: buf(m, &l->y, M * N * sizeof(float));
	ret = ret ?: buf(m, &l->dy, M * N * sizeof(float));
	ret = ret ?: buf(m, &l->dcol, M * K * sizeof(float));
	ret = ret ?: buf(m, &l->gwt, kn * sizeof(float));
	l->gw = l->gwt.host;
	if (bfp8) {
		ret = ret ?: ct_buf(m, &l->a_ct, M, K);
		ret = ret ?: ct_buf(m, &l->at_ct, K, M > N ? M : N);
		ret = ret ?: ct_buf(m, &l->wg_ct, N, K);
		ret = ret ?: ct_buf(m, &l->wt_ct, N, K);
		ret = ret ?: ct_buf(m, &l->w_ct, K, N);
		ret = ret ?: ct_buf(m, &l->y_ct, M, N);
		ret = ret ?: ct_buf(m, &l->dy_ct, M, N);
		ret = ret ?: ct_buf(m, &l->dyt_ct, N, M);
	}
	return ret;
}

SPT_API int spt_model_finalize(struct spt_model *m, const struct spt_train_opts *opts)
{
	uint64_t rng;
	int i, ret;

	if (!m || !opts || m->finalized || m->nlayers == 0)
		return -EINVAL;
	ret = opts_check(opts);
	if (ret)
		return ret;
	if (m->layers[m->nlayers - 1].kind != RT_LINEAR ||
	    m->layers[m->nlayers - 1].N != m->classes || m->layers[m->nlayers - 1].relu)
		return -EINVAL;
	if (!m->ctx->ops->buf_alloc || (opts->precision == SPT_PRECISION_FP32 && !m->ctx->ops->sgemm) ||
	    (opts->precision == SPT_PRECISION_BFP8 && !m->ctx->ops->gemm))
		return -SPT_ENOBACKEND;
	m->opts = *opts;
	m->labels = rt_zalloc(opts->batch);
	if (!m->labels)
		return -ENOMEM;
	ret = buf(m, &m->lossb, 8);
	for (i = 0; !ret && i < RT_MAX_PENDING; i++)
		ret = buf(m, &m->slot[i].x, (size_t)opts->batch * m->in_c * m->in_h * m->in_w *
				      sizeof(float)) ?:
		      buf(m, &m->slot[i].labels, opts->batch);
	if (ret)
		return ret;
	rng = opts->seed ^ 0x5350545f494e4954ULL;
	for (i = 0; i < m->nlayers; i++) {
		struct rt_layer *l = &m->layers[i];
		double std = sqrt(2.0 / l->K);
		size_t j, kn;

		ret = layer_alloc(m, l);
		if (ret)
			return ret;
		kn = (size_t)l->K * l->N;
		for (j = 0; j < kn; j++)
			l->w[j] = (float)(rt_rng_normal(&rng) * std);
	}
	m->finalized = true;
	return 0;
}

static void layer_free(struct spt_model *m, struct rt_layer *l)
{
	struct spt_buf *bufs[] = { &l->x, &l->col, &l->a_ct, &l->at_ct, &l->wg_ct, &l->wt_ct,
				   &l->w_ct, &l->y, &l->y_ct, &l->dy, &l->dy_ct, &l->dyt_ct,
				   &l->dcol, &l->gwt, &l->wb, &l->vwb, &l->bb, &l->vbb, &l->gbb };
	size_t i;

	l->w = l->b = l->vw = l->vb = l->gb = l->gw = NULL;
	for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		if (bufs[i]->host && m->ctx->ops->buf_free)
			m->ctx->ops->buf_free(m->ctx, bufs[i]);
}

SPT_API void spt_model_free(struct spt_model *m)
{
	int i, j;

	if (!m)
		return;
	rt_step_drain(m);
	for (i = 0; i < RT_MAX_PENDING; i++) {
		struct spt_buf *b[] = { &m->slot[i].x, &m->slot[i].labels, &m->lossb };

		for (j = 0; j < 3; j++)
			if (b[j]->host)
				m->ctx->ops->buf_free(m->ctx, b[j]);
	}
	for (i = 0; i < m->nlayers; i++)
		layer_free(m, &m->layers[i]);
	free(m->layers);
	free(m->labels);
	free(m);
}

SPT_API int spt_model_num_layers(const struct spt_model *m)
{
	return m ? m->nlayers : -EINVAL;
}

static const struct rt_layer *layer_get(const struct spt_model *m, int layer)
{
	if (!m || layer < 0 || layer >= m->nlayers)
		return NULL;
	return &m->layers[layer];
}

SPT_API int spt_model_layer_info(const struct spt_model *m, int layer,
				 struct spt_layer_info *info)
{
	const struct rt_layer *l = layer_get(m, layer);

	if (!l || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	snprintf(info->kind, sizeof(info->kind), "%s", l->kind == RT_LINEAR ? "linear" : "conv2d");
	info->in_c = l->in_c;
	info->in_h = l->in_h;
	info->in_w = l->in_w;
	info->out_c = l->out_c;
	info->out_h = l->out_h;
	info->out_w = l->out_w;
	info->stride = l->stride;
	info->padding = l->pad;
	info->relu = l->relu;
	info->gemm_k = l->K;
	info->gemm_n = l->N;
	info->params = (uint64_t)l->K * l->N + l->N;
	return 0;
}

static int sparsity_check(const struct spt_sparsity *s)
{
	if (s->mode > SPT_SPARSITY_TARGET)
		return -EINVAL;
	if (s->mode == SPT_SPARSITY_OFF)
		return 0;
	if (s->kind != SPT_PRUNE_DETERMINISTIC && s->kind != SPT_PRUNE_STOCHASTIC)
		return -EINVAL;
	if (s->mode == SPT_SPARSITY_STATIC && (!isfinite(s->tau) || s->tau < 0))
		return -EINVAL;
	if (s->mode == SPT_SPARSITY_TARGET && (!isfinite(s->target) || s->target < 0 ||
					       s->target > 0.999f))
		return -EINVAL;
	return 0;
}

/* The network input and dL/dlogits are never pruned. */
static bool protected_tensor(const struct spt_model *m, int layer, enum spt_tensor_class cls)
{
	return (cls == SPT_CLASS_ACT && layer == 0) ||
	       (cls == SPT_CLASS_ERR && layer == m->nlayers - 1);
}

static void ctl_set(struct rt_ctl *c, const struct spt_sparsity *s)
{
	rt_ctl_init(c);
	c->cfg = *s;
	if (s->mode == SPT_SPARSITY_STATIC)
		c->tau = s->tau;
	if (s->mode == SPT_SPARSITY_TARGET)
		c->final_target = s->target;
}

SPT_API int spt_model_set_sparsity(struct spt_model *m, int layer,
				   enum spt_tensor_class cls, const struct spt_sparsity *s)
{
	int i, ret;

	if (!m || !s || !m->finalized || (unsigned int)cls >= SPT_CLASS_COUNT ||
	    layer < -1 || layer >= m->nlayers)
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	ret = sparsity_check(s);
	if (ret)
		return ret;
	if (s->mode != SPT_SPARSITY_OFF && m->opts.precision != SPT_PRECISION_BFP8)
		return -ENOTSUP;
	if (layer >= 0) {
		if (s->mode != SPT_SPARSITY_OFF && protected_tensor(m, layer, cls))
			return -EINVAL;
		ctl_set(&m->layers[layer].ctl[cls], s);
		return 0;
	}
	for (i = 0; i < m->nlayers; i++)
		if (s->mode == SPT_SPARSITY_OFF || !protected_tensor(m, i, cls))
			ctl_set(&m->layers[i].ctl[cls], s);
	return 0;
}

SPT_API int spt_model_set_target_sparsity(struct spt_model *m, float target,
					  enum spt_prune_mode act_kind)
{
	struct spt_sparsity act = { .mode = SPT_SPARSITY_TARGET, .kind = act_kind, .target = target };
	struct spt_sparsity err = { .mode = SPT_SPARSITY_TARGET, .kind = SPT_PRUNE_STOCHASTIC,
				    .target = target };

	if (!m)
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	if (target == 0.0f) {
		struct spt_sparsity off = { 0 };

		return spt_model_set_sparsity(m, -1, SPT_CLASS_ACT, &off) ?:
		       spt_model_set_sparsity(m, -1, SPT_CLASS_ERR, &off);
	}
	return spt_model_set_sparsity(m, -1, SPT_CLASS_ACT, &act) ?:
	       spt_model_set_sparsity(m, -1, SPT_CLASS_ERR, &err);
}

SPT_API int spt_model_layer_stats(const struct spt_model *m, int layer,
				  struct spt_layer_stats *st)
{
	const struct rt_layer *l = layer_get(m, layer);

	if (!l || !st)
		return -EINVAL;
	*st = m->running ? l->st_done : l->st;
	return 0;
}

SPT_API int spt_model_controller_state(const struct spt_model *m, int layer,
				       enum spt_tensor_class cls,
				       struct spt_controller_state *cs)
{
	const struct rt_layer *l = layer_get(m, layer);
	const struct rt_ctl *c;

	if (!l || !cs || (unsigned int)cls >= SPT_CLASS_COUNT)
		return -EINVAL;
	c = m->running ? &l->ctl_done[cls] : &l->ctl[cls];
	memset(cs, 0, sizeof(*cs));
	cs->mode = c->cfg.mode;
	cs->kind = c->cfg.mode == SPT_SPARSITY_OFF ? SPT_PRUNE_OFF : c->cfg.kind;
	cs->phase = c->phase;
	cs->tau = c->tau;
	cs->target = c->target;
	cs->final_target = c->final_target;
	cs->s_ema = c->s_ema;
	cs->s_natural = c->s_nat;
	cs->backoffs = c->backoffs;
	return 0;
}

SPT_API uint64_t spt_model_steps(const struct spt_model *m)
{
	return m ? m->steps : 0;
}

SPT_API int spt_model_get_params(const struct spt_model *m, int layer, float *w, float *b)
{
	const struct rt_layer *l = layer_get(m, layer);

	if (!l || !m->finalized || (!w && !b))
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	if (w)
		memcpy(w, l->w, (size_t)l->K * l->N * sizeof(float));
	if (b)
		memcpy(b, l->b, l->N * sizeof(float));
	return 0;
}

SPT_API int spt_model_set_params(struct spt_model *m, int layer, const float *w, const float *b)
{
	struct rt_layer *l;
	size_t i, kn;

	if (!m || layer < 0 || layer >= m->nlayers || !m->finalized || (!w && !b))
		return -EINVAL;
	if (rt_busy(m))
		return -EBUSY;
	l = &m->layers[layer];
	kn = (size_t)l->K * l->N;
	for (i = 0; w && i < kn; i++)
		if (!isfinite(w[i]))
			return -EDOM;
	for (i = 0; b && i < l->N; i++)
		if (!isfinite(b[i]))
			return -EDOM;
	if (w)
		memcpy(l->w, w, kn * sizeof(float));
	if (b)
		memcpy(l->b, b, l->N * sizeof(float));
	return 0;
}
