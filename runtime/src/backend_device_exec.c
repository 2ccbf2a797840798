// SPDX-License-Identifier: MIT
/*
 * The device backend's execution half: every backend operation becomes a
 * command (uapi/spt_hw.h) in a command stream submitted with
 * DRM_IOCTL_SPT_SUBMIT, so the chip (core/ inside the device) computes it.
 *
 * Memory.  Tensors live in a few large buffer objects ("pools", mmapped
 * for host access) sub-allocated by a bump allocator; a pool whose last
 * buffer is freed starts over.  Master weights, momentum and gradients are
 * pool buffers (model.c), so the update copies nothing.  Host memory that
 * is not in a pool (the caller's labels, say) is copied into a staging BO
 * before the job and, for outputs, copied back after it.  Command streams,
 * encoded lengths and statistics go through one small control BO.
 *
 * Execution.  The step reads statistics and encoded lengths right after
 * each call (into locals), so every operation is one job: SUBMIT with the
 * pools listed, signal point n of a timeline syncobj, wait for it with an
 * absolute timeout, then check the file's job counters (DRM_SPT_QUERY_STATUS)
 * to tell success from an MMU fault (-EFAULT), a hang the driver reset
 * (-ETIMEDOUT) or another device error (-EIO).  The one exception is SGD:
 * the updates of a step (on pool buffers) are queued and submitted as one
 * job by sync() or by the next operation, so sync() waits only for them.
 * SOFTMAX_XENT and SGD run on core in-process on a chip without
 * CAPS.TRAIN_OPS.  The wait's deadline is SPT_WAIT_MS
 * (default 120 s: TCG is slow, and the driver's own job timeout resets real
 * hangs well before it).  SPT_DX_STATS=1 prints, at close, how many jobs ran
 * and how long the operations, the submit-to-signal waits and the host-side
 * counters took.
 *
 * Counters.  The device's per-job counters reach only the kernel (and
 * fdinfo), so a GEMM's spt_counters are derived on the host from the
 * compressed operands' masks, with the formulas of core/src/gemm.c (dense
 * and executed MACs, block pairs, bytes): the same numbers spt_gemm()
 * reports, without touching a value.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>

#include "drm/spt_accel.h"
#include "spt_format.h"
#include "spt_hw.h"
#include "backend_device_exec.h"

#define DX_POOL_MIN	(16u << 20)	/* bytes per pool BO at least */
#define DX_MAX_POOLS	64
#define DX_ALIGN	256u
#define DX_CTRL_SIZE	(64u << 10)
#define DX_CMD_MAX	4096u		/* command bytes of one job */
#define DX_RES_OFF	DX_CMD_MAX	/* results: len (u64) then spt_hw_stats */
#define DX_MAX_STAGE	8
#define DX_WAIT_MS_DEFAULT 120000	/* TCG is slow; the driver resets real hangs */

struct dx_bo {
	uint32_t handle;
	uint64_t va, size;
	uint8_t *map;
};

struct dx_pool {
	struct dx_bo bo;
	uint64_t used;
	uint32_t live;
};

struct dx_out {			/* a staged output to copy back */
	void *host;
	size_t off, bytes;
};

struct rt_dx {
	int fd;
	uint32_t queue, syncobj;
	uint64_t point;
	int wait_ms;
	struct dx_pool pool[DX_MAX_POOLS];
	int npools;
	struct dx_bo ctrl, stage;
	size_t stage_used;
	struct dx_out outs[DX_MAX_STAGE];
	int nouts;
	size_t cmd_len;
	struct drm_spt_bo_ref refs[DX_MAX_POOLS + 2];
	struct drm_spt_query_status status;
	uint64_t jobs;
	/* SGD commands queued in the control BO, submitted as one job by dx_flush() */
	struct { const float *w, *v, *g; size_t n; }
		sgd[(DX_CMD_MAX - 2 * sizeof(struct spt_cmd_timestamp)) / sizeof(struct spt_cmd_sgd)];
	int nsgd;
	/* SPT_DX_STATS=1: where the time of the backend's operations goes, printed at close */
	bool trace;
	int64_t ns_ops, ns_run, ns_count;
	uint64_t busy_ns;	/* device time of completed jobs, from their TIMESTAMPs */
};

/* ---- buffer objects ------------------------------------------------------ */

static int64_t dx_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}


static int dx_ioctl(int fd, unsigned long req, void *arg)
{
	return drmIoctl(fd, req, arg) ? -errno : 0;
}

static int dx_bo_new(struct rt_dx *x, uint64_t size, struct dx_bo *bo)
{
	struct drm_spt_bo_create c = { .size = size };
	struct drm_spt_bo_info i = { 0 };
	struct drm_gem_close cl = { 0 };
	void *p;
	int ret;

	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_BO_CREATE, &c);
	if (ret)
		return ret;
	i.handle = c.handle;
	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_BO_INFO, &i);
	if (!ret) {
		p = mmap(NULL, i.size, PROT_READ | PROT_WRITE, MAP_SHARED, x->fd,
			 (off_t)i.mmap_offset);
		if (p == MAP_FAILED)
			ret = -errno;
	}
	if (ret) {
		cl.handle = c.handle;
		dx_ioctl(x->fd, DRM_IOCTL_GEM_CLOSE, &cl);
		return ret;
	}
	bo->handle = c.handle;
	bo->va = c.va;
	bo->size = i.size;
	bo->map = p;
	return 0;
}

static void dx_bo_free(struct rt_dx *x, struct dx_bo *bo)
{
	struct drm_gem_close cl = { .handle = bo->handle };

	if (!bo->handle)
		return;
	munmap(bo->map, bo->size);
	dx_ioctl(x->fd, DRM_IOCTL_GEM_CLOSE, &cl);
	memset(bo, 0, sizeof(*bo));
}

static struct rt_dx *dx_of(struct spt_ctx *ctx)
{
	struct rt_dev_priv *p = ctx ? ctx->priv : NULL;

	return p ? p->dx : NULL;
}

int rt_dx_open(const char *path, struct rt_dx **out)
{
	struct drm_spt_queue_create q = { .priority = DRM_SPT_QUEUE_PRIORITY_NORMAL };
	struct drm_spt_dev_query dq = { .type = DRM_SPT_QUERY_STATUS };
	struct rt_dx *x = calloc(1, sizeof(*x));
	const char *env = getenv("SPT_WAIT_MS");
	int ret;

	if (!x)
		return -ENOMEM;
	x->wait_ms = env && atoi(env) > 0 ? atoi(env) : DX_WAIT_MS_DEFAULT;
	env = getenv("SPT_DX_STATS");
	x->trace = env && *env && *env != '0';
	x->fd = open(path, O_RDWR | O_CLOEXEC);
	if (x->fd < 0) {
		ret = -errno;
		free(x);
		return ret;
	}
	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_QUEUE_CREATE, &q);
	if (ret)
		goto fail;
	x->queue = q.queue_id;
	ret = drmSyncobjCreate(x->fd, 0, &x->syncobj);
	if (ret) {
		ret = ret < 0 ? ret : -EIO;
		goto fail;
	}
	ret = dx_bo_new(x, DX_CTRL_SIZE, &x->ctrl);
	if (ret)
		goto fail;
	dq.size = sizeof(x->status);
	dq.pointer = (uintptr_t)&x->status;
	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_DEV_QUERY, &dq);
	if (ret)
		goto fail;
	*out = x;
	return 0;
fail:
	rt_dx_close(x);
	return ret;
}

static int dx_flush(struct rt_dx *x);

void rt_dx_close(struct rt_dx *x)
{
	struct drm_spt_queue_destroy qd = { 0 };
	int i;

	if (!x)
		return;
	dx_flush(x);
	if (x->trace && x->jobs)
		fprintf(stderr, "spt device backend: %llu jobs, %.1f ms in operations, "
			"%.1f ms submit-to-signal, %.1f ms host-side counters\n",
			(unsigned long long)x->jobs, x->ns_ops / 1e6, x->ns_run / 1e6,
			x->ns_count / 1e6);
	for (i = 0; i < x->npools; i++)
		dx_bo_free(x, &x->pool[i].bo);
	dx_bo_free(x, &x->stage);
	dx_bo_free(x, &x->ctrl);
	if (x->syncobj)
		drmSyncobjDestroy(x->fd, x->syncobj);
	if (x->queue) {
		qd.queue_id = x->queue;
		dx_ioctl(x->fd, DRM_IOCTL_SPT_QUEUE_DESTROY, &qd);
	}
	close(x->fd);
	free(x);
}

int rt_dx_buf_alloc(struct spt_ctx *ctx, struct spt_buf *b, size_t bytes)
{
	struct rt_dx *x = dx_of(ctx);
	uint64_t sz = ((uint64_t)(bytes ? bytes : 1) + DX_ALIGN - 1) & ~(uint64_t)(DX_ALIGN - 1);
	struct dx_pool *p = NULL;
	int i, ret;

	if (!b)
		return -EINVAL;
	if (!x)
		return -SPT_ENOBACKEND;	/* opened with SPT_CTX_QUERY_ONLY */
	for (i = 0; i < x->npools && !p; i++)
		if (x->pool[i].bo.size - x->pool[i].used >= sz)
			p = &x->pool[i];
	if (!p) {
		if (x->npools == DX_MAX_POOLS)
			return -ENOMEM;
		p = &x->pool[x->npools];
		ret = dx_bo_new(x, sz > DX_POOL_MIN ? sz : DX_POOL_MIN, &p->bo);
		if (ret)
			return ret;
		x->npools++;
	}
	memset(b, 0, sizeof(*b));
	b->host = p->bo.map + p->used;
	b->dev_addr = p->bo.va + p->used;
	b->cap = bytes;
	memset(b->host, 0, sz);
	p->used += sz;
	p->live++;
	return 0;
}

void rt_dx_buf_free(struct spt_ctx *ctx, struct spt_buf *b)
{
	struct rt_dx *x = dx_of(ctx);
	int i;

	if (!x || !b || !b->host)
		return;
	for (i = 0; i < x->npools; i++) {
		struct dx_pool *p = &x->pool[i];

		if ((uint8_t *)b->host >= p->bo.map && (uint8_t *)b->host < p->bo.map + p->bo.size) {
			if (p->live && !--p->live)
				p->used = 0;
			break;
		}
	}
	memset(b, 0, sizeof(*b));
}

/* ---- operands ------------------------------------------------------------ */

/* Device VA of host bytes [p, p + bytes) if they lie in one pool, else 0. */
static uint64_t dx_lookup(const struct rt_dx *x, const void *p, size_t bytes)
{
	const uint8_t *h = p;
	int i;

	for (i = 0; i < x->npools; i++) {
		const struct dx_bo *bo = &x->pool[i].bo;

		if (h >= bo->map && h < bo->map + bo->size &&
		    bytes <= (size_t)(bo->map + bo->size - h))
			return bo->va + (uint64_t)(h - bo->map);
	}
	return 0;
}

static void dx_timestamp(struct rt_dx *x, size_t res_off);

/* Every job starts and ends with a TIMESTAMP (device busy time). */
#define DX_RES_T0	256
#define DX_RES_T1	264

static void dx_job_begin(struct rt_dx *x)
{
	x->stage_used = 0;
	x->nouts = 0;
	x->cmd_len = 0;
	dx_timestamp(x, DX_RES_T0);
}

/* Make room for @need staged bytes; only between jobs (the BO may move). */
static int dx_stage_reserve(struct rt_dx *x, size_t need)
{
	uint64_t sz = DX_POOL_MIN;

	if (x->stage.size >= need)
		return 0;
	while (sz < need)
		sz *= 2;
	dx_bo_free(x, &x->stage);
	return dx_bo_new(x, sz, &x->stage);
}

/*
 * The VA of @bytes of host memory at @p for this job: in place when it is
 * pool memory, else a staged copy (@in: copied now; @out: copied back).
 * Staging space was reserved by the caller.
 */
static int dx_operand(struct rt_dx *x, void *p, size_t bytes, bool in, bool out, uint64_t *va)
{
	size_t off;

	*va = dx_lookup(x, p, bytes);
	if (*va)
		return 0;
	off = x->stage_used;
	if (off + bytes > x->stage.size || (out && x->nouts == DX_MAX_STAGE))
		return -ENOMEM;
	x->stage_used = (off + bytes + DX_ALIGN - 1) & ~(size_t)(DX_ALIGN - 1);
	if (in)
		memcpy(x->stage.map + off, p, bytes);
	if (out) {
		x->outs[x->nouts].host = p;
		x->outs[x->nouts].off = off;
		x->outs[x->nouts].bytes = bytes;
		x->nouts++;
	}
	*va = x->stage.va + off;
	return 0;
}

/* Staging bytes @p needs if it is not pool memory. */
static size_t dx_stage_need(const struct rt_dx *x, const void *p, size_t bytes)
{
	return !p || dx_lookup(x, p, bytes) ? 0 : (bytes + DX_ALIGN - 1) & ~(size_t)(DX_ALIGN - 1);
}

static void *dx_cmd(struct rt_dx *x, uint8_t op, uint16_t size)
{
	struct spt_cmd_hdr *h = (void *)(x->ctrl.map + x->cmd_len);

	memset(h, 0, size);
	h->opcode = op;
	h->version = 1;	/* version-1 structs (valid on a version-2 device too) */
	h->size = size;
	x->cmd_len += size;
	return h;
}

static uint64_t dx_res_va(const struct rt_dx *x, size_t off)
{
	return x->ctrl.va + DX_RES_OFF + off;
}

static void *dx_res(const struct rt_dx *x, size_t off)
{
	return x->ctrl.map + DX_RES_OFF + off;
}

static void dx_timestamp(struct rt_dx *x, size_t res_off)
{
	struct spt_cmd_timestamp *t = dx_cmd(x, SPT_OP_TIMESTAMP, sizeof(*t));

	t->va = dx_res_va(x, res_off);
}

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, sizeof(u));
	return u;
}

static double f64_of(uint64_t u)
{
	double d;

	memcpy(&d, &u, sizeof(d));
	return d;
}

static int dx_hw_encode(const struct spt_encode_opts *o, struct spt_hw_encode *h)
{
	struct spt_encode_opts def;

	if (!o) {
		spt_encode_opts_init(&def);
		o = &def;
	}
	if ((o->round != SPT_ROUND_EVEN && o->round != SPT_ROUND_STOCHASTIC) ||
	    (o->prune.mode != SPT_PRUNE_OFF && o->prune.mode != SPT_PRUNE_DETERMINISTIC &&
	     o->prune.mode != SPT_PRUNE_STOCHASTIC) ||
	    !(o->prune.tau >= 0.0f) || o->prune.tau > 3.4e38f)
		return -EINVAL;
	memset(h, 0, sizeof(*h));
	h->round = o->round;
	h->round_seed = o->round_seed;
	h->prune_mode = o->prune.mode;
	h->tau = f32_bits(o->prune.tau);
	h->prune_seed = o->prune.seed;
	return 0;
}

static void dx_stats(const struct spt_hw_stats *h, struct spt_tensor_stats *st)
{
	st->elements = h->elements;
	st->natural_zeros = h->natural_zeros;
	st->pruned = h->pruned;
	st->underflow = h->underflow;
	st->nonzeros = h->nonzeros;
	st->nz_blocks = h->nz_blocks;
	st->sum_abs = f64_of(h->sum_abs);
	st->sum_abs_kept = f64_of(h->sum_abs_kept);
	st->bytes = h->bytes;
}

/* Header of a compressed operand, or -EINVAL if it cannot be one. */
static int dx_ct_header(const struct spt_buf *b, struct spt_ct_header *h)
{
	if (!b || !b->host || b->len < SPT_CT_HEADER_SIZE || b->len > b->cap)
		return -EINVAL;
	memcpy(h, b->host, sizeof(*h));
	if (h->magic != SPT_CT_MAGIC || h->version != SPT_CT_VERSION || !h->rows || !h->cols ||
	    h->total_bytes != b->len)
		return -EBADMSG;
	return 0;
}

/* ---- submission ---------------------------------------------------------- */

static int dx_query_status(struct rt_dx *x, struct drm_spt_query_status *s)
{
	struct drm_spt_dev_query dq = {
		.type = DRM_SPT_QUERY_STATUS, .size = sizeof(*s), .pointer = (uintptr_t)s,
	};

	memset(s, 0, sizeof(*s));
	return dx_ioctl(x->fd, DRM_IOCTL_SPT_DEV_QUERY, &dq);
}

/* Submit the job built since dx_job_begin(), wait for it, report its outcome. */
static int dx_run(struct rt_dx *x)
{
	struct drm_spt_submit s = { 0 };
	struct drm_spt_query_status st;
	uint32_t n = 0, first = 0;
	uint64_t point;
	int64_t t0 = dx_now_ns();
	uint64_t ts[2];
	int i, ret;

	dx_timestamp(x, DX_RES_T1);
	for (i = 0; i < x->npools; i++) {
		x->refs[n].handle = x->pool[i].bo.handle;
		x->refs[n++].flags = DRM_SPT_BO_REF_READ | DRM_SPT_BO_REF_WRITE;
	}
	if (x->stage_used) {
		x->refs[n].handle = x->stage.handle;
		x->refs[n++].flags = DRM_SPT_BO_REF_READ | DRM_SPT_BO_REF_WRITE;
	}
	x->refs[n].handle = x->ctrl.handle;
	x->refs[n++].flags = DRM_SPT_BO_REF_READ | DRM_SPT_BO_REF_WRITE;
	s.queue_id = x->queue;
	s.cmd_handle = x->ctrl.handle;
	s.cmd_size = (uint32_t)x->cmd_len;
	s.bo_count = n;
	s.bos = (uintptr_t)x->refs;
	s.out_sync = x->syncobj;
	s.out_point = point = x->point + 1;
	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_SUBMIT, &s);
	if (ret)
		return ret == -ENODEV ? -SPT_ENODEVICE : ret;
	x->point = point;
	x->jobs++;
	ret = drmSyncobjTimelineWait(x->fd, &x->syncobj, &point, 1,
				     dx_now_ns() + (int64_t)x->wait_ms * 1000000,
				     DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, &first);
	x->ns_run += dx_now_ns() - t0;
	if (ret)
		return ret == -ETIME || ret == -ETIMEDOUT ? -ETIMEDOUT : (ret < 0 ? ret : -EIO);
	/* the fence's error is not visible through SYNCOBJ_WAIT: the file's counters are */
	ret = dx_query_status(x, &st);
	if (ret)
		return ret;
	if (st.guilty_jobs != x->status.guilty_jobs)
		ret = -ETIMEDOUT;	/* hung, reset by the driver */
	else if (st.faulted_jobs != x->status.faulted_jobs)
		ret = -EFAULT;		/* MMU fault: a VA outside this file's BOs */
	else if (st.failed_jobs != x->status.failed_jobs || st.done_jobs == x->status.done_jobs)
		ret = -EIO;		/* malformed command or tensor, DMA error, cancelled */
	x->status = st;
	if (ret)
		return ret;
	memcpy(ts, dx_res(x, DX_RES_T0), sizeof(ts));
	x->busy_ns += ts[1] - ts[0];
	for (i = 0; i < x->nouts; i++)
		memcpy(x->outs[i].host, x->stage.map + x->outs[i].off, x->outs[i].bytes);
	return 0;
}

/* ---- operations ---------------------------------------------------------- */

/*
 * Open a job with one input (@src_bytes at @src) and one output (@dst_bytes
 * at @dst): staging reserved for both, device VAs in *src_va and *dst_va.
 */
static int dx_job_src_dst(struct rt_dx *x, void *src, size_t src_bytes, void *dst,
			  size_t dst_bytes, uint64_t *src_va, uint64_t *dst_va)
{
	int ret = dx_stage_reserve(x, dx_stage_need(x, src, src_bytes) +
				      dx_stage_need(x, dst, dst_bytes));

	if (ret)
		return ret;
	dx_job_begin(x);
	return dx_operand(x, src, src_bytes, true, false, src_va) ?:
	       dx_operand(x, dst, dst_bytes, false, true, dst_va);
}

/* Run a job whose command wrote a compressed length and statistics. */
static int dx_run_encoded(struct rt_dx *x, struct spt_buf *dst, struct spt_tensor_stats *st)
{
	int ret = dx_run(x);

	if (ret)
		return ret;
	memcpy(&dst->len, dx_res(x, 0), sizeof(uint64_t));
	if (st)
		dx_stats(dx_res(x, 64), st);
	return 0;
}

static int dx_encode(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		     uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		     struct spt_tensor_stats *st)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_cmd_encode *c;
	struct spt_hw_encode he;
	size_t in_bytes = (size_t)rows * cols * sizeof(float);
	uint64_t src_va, dst_va;
	int ret;

	if (!x || !src || !src->host || !dst || !dst->host || !rows || !cols ||
	    rows > SPT_CT_MAX_DIM || cols > SPT_CT_MAX_DIM || in_bytes > src->cap || !dst->cap)
		return -EINVAL;
	ret = dx_hw_encode(o, &he);
	if (ret)
		return ret;
	ret = dx_job_src_dst(x, src->host, in_bytes, dst->host, dst->cap, &src_va, &dst_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_ENCODE, sizeof(*c));
	c->src_va = src_va;
	c->rows = rows;
	c->cols = cols;
	c->dst_va = dst_va;
	c->dst_cap = dst->cap;
	c->len_va = dx_res_va(x, 0);
	c->stats_va = dx_res_va(x, 64);
	c->enc = he;
	return dx_run_encoded(x, dst, st);
}

static int dx_transpose(struct spt_ctx *ctx, const struct spt_buf *src,
			const struct spt_encode_opts *o, struct spt_buf *dst,
			struct spt_tensor_stats *st)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_cmd_transpose *c;
	struct spt_ct_header h;
	struct spt_hw_encode he;
	uint64_t src_va, dst_va;
	int ret;

	if (!x || !dst || !dst->host || !dst->cap)
		return -EINVAL;
	ret = dx_ct_header(src, &h) ?: dx_hw_encode(o, &he);
	if (ret)
		return ret;
	ret = dx_job_src_dst(x, src->host, src->len, dst->host, dst->cap, &src_va, &dst_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_TRANSPOSE, sizeof(*c));
	c->src_va = src_va;
	c->src_len = src->len;
	c->dst_va = dst_va;
	c->dst_cap = dst->cap;
	c->len_va = dx_res_va(x, 0);
	c->stats_va = dx_res_va(x, 64);
	c->enc = he;
	return dx_run_encoded(x, dst, st);
}

static int dx_decode(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		     size_t elems)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_cmd_decode *c;
	struct spt_ct_header h;
	uint64_t src_va, dst_va;
	int ret;

	if (!x || !dst || !dst->host || !elems || elems * sizeof(float) > dst->cap)
		return -EINVAL;
	ret = dx_ct_header(src, &h);
	if (ret)
		return ret;
	if ((uint64_t)h.rows * h.cols != elems)
		return -EINVAL;
	ret = dx_job_src_dst(x, src->host, src->len, dst->host, elems * sizeof(float),
			     &src_va, &dst_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_DECODE, sizeof(*c));
	c->src_va = src_va;
	c->src_len = src->len;
	c->dst_va = dst_va;
	c->dst_elems = elems;
	return dx_run(x);
}

/*
 * Per block column of a compressed operand: 32 per-bit counts and the
 * stored blocks (index 32), as core/src/gemm.c counts them.
 */
static int dx_bits(const struct spt_buf *b, const struct spt_ct_header *h, uint64_t *v)
{
	const uint8_t *base = b->host;
	const uint8_t *tab = base + SPT_CT_HEADER_SIZE;
	const uint8_t *pay = tab + 4 * ((size_t)h->tiles + 1);
	uint64_t nblocks = (uint64_t)h->rows * h->blocks_per_row;
	uint32_t t;

	if ((uint64_t)(pay - base) + h->payload_bytes > b->len)
		return -EBADMSG;
	for (t = 0; t < h->tiles; t++) {
		uint32_t off, end;
		const uint8_t *p;
		uint64_t l1;

		memcpy(&off, tab + 4 * (size_t)t, 4);
		memcpy(&end, tab + 4 * ((size_t)t + 1), 4);
		if (off > end || end > h->payload_bytes || end - off < 8)
			return -EBADMSG;
		p = pay + off;
		memcpy(&l1, p, 8);
		p += 8;
		while (l1) {
			uint64_t blk = (uint64_t)t * SPT_TILE_BLOCKS + (uint64_t)__builtin_ctzll(l1);
			uint64_t *col;
			uint32_t l2;

			l1 &= l1 - 1;
			if (blk >= nblocks || p + 5 > pay + end)
				return -EBADMSG;
			memcpy(&l2, p, 4);
			col = v + (blk % h->blocks_per_row) * 33;
			col[32]++;
			p += 5 + __builtin_popcount(l2);
			for (; l2; l2 &= l2 - 1)
				col[__builtin_ctz(l2)]++;
		}
	}
	return 0;
}

static int dx_gemm_counters(const struct spt_buf *a, const struct spt_ct_header *ha,
			    const struct spt_buf *b, const struct spt_ct_header *hb,
			    const struct spt_buf *mask, const struct spt_buf *y,
			    const struct spt_buf *ct, struct spt_counters *cnt)
{
	uint32_t nb = ha->blocks_per_row, col, e;
	uint64_t *va = calloc((size_t)nb * 33 * 2, sizeof(*va)), *vb;
	uint64_t m = ha->rows, n = hb->rows, k = ha->cols;
	int ret;

	if (!va)
		return -ENOMEM;
	vb = va + (size_t)nb * 33;
	ret = dx_bits(a, ha, va) ?: dx_bits(b, hb, vb);
	if (!ret) {
		memset(cnt, 0, sizeof(*cnt));
		for (col = 0; col < nb; col++) {
			for (e = 0; e < 32; e++)
				cnt->exec_macs += va[col * 33 + e] * vb[col * 33 + e];
			cnt->blocks += va[col * 33 + 32] * vb[col * 33 + 32];
		}
		cnt->dense_macs = m * n * k;
		cnt->bytes_read = a->len + b->len + (mask ? mask->len : 0);
		cnt->dense_fp16_bytes = 2 * (m * k + n * k + m * n);
		cnt->elements_out = m * n;
		cnt->bytes_written = (ct ? ct->len : 0) + (y ? 4 * m * n : 0);
	}
	free(va);
	return ret;
}

static int dx_gemm(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		   const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		   const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		   const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		   struct spt_counters *cnt)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_ct_header ha, hb, hm;
	struct spt_hw_encode he;
	struct spt_cmd_gemm *c;
	uint64_t a_va, b_va, bias_va = 0, mask_va = 0, y_va = 0, ct_va = 0;
	size_t y_bytes, bias_bytes, need;
	int64_t t0;
	int ret;

	if (!x || (pass != SPT_PASS_FWD && pass != SPT_PASS_BWD && pass != SPT_PASS_WG) ||
	    (act != SPT_ACT_NONE && act != SPT_ACT_RELU && act != SPT_ACT_RELU_GRAD) ||
	    (!y && !ct) || (act == SPT_ACT_RELU_GRAD) != (mask != NULL) ||
	    (y && !y->host) || (ct && (!ct->host || !ct->cap)) || (bias && !bias->host))
		return -EINVAL;
	ret = dx_ct_header(a, &ha) ?: dx_ct_header(b, &hb) ?: dx_hw_encode(enc, &he);
	if (!ret && mask)
		ret = dx_ct_header(mask, &hm);
	if (ret)
		return ret;
	if (ha.cols != hb.cols || (mask && (hm.rows != ha.rows || hm.cols != hb.rows)))
		return -EINVAL;
	y_bytes = (size_t)ha.rows * hb.rows * sizeof(float);
	bias_bytes = (size_t)hb.rows * sizeof(float);
	if ((y && y_bytes > y->cap) || (bias && bias_bytes > bias->cap))
		return -EINVAL;
	need = dx_stage_need(x, a->host, a->len) + dx_stage_need(x, b->host, b->len) +
	       (bias ? dx_stage_need(x, bias->host, bias_bytes) : 0) +
	       (mask ? dx_stage_need(x, mask->host, mask->len) : 0) +
	       (y ? dx_stage_need(x, y->host, y_bytes) : 0) +
	       (ct ? dx_stage_need(x, ct->host, ct->cap) : 0);
	ret = dx_stage_reserve(x, need);
	if (ret)
		return ret;
	dx_job_begin(x);
	ret = dx_operand(x, a->host, a->len, true, false, &a_va) ?:
	      dx_operand(x, b->host, b->len, true, false, &b_va);
	if (!ret && bias)
		ret = dx_operand(x, bias->host, bias_bytes, true, false, &bias_va);
	if (!ret && mask)
		ret = dx_operand(x, mask->host, mask->len, true, false, &mask_va);
	if (!ret && y)
		ret = dx_operand(x, y->host, y_bytes, false, true, &y_va);
	if (!ret && ct)
		ret = dx_operand(x, ct->host, ct->cap, false, true, &ct_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_GEMM, sizeof(*c));
	c->pass = pass;
	c->act = act;
	c->a_va = a_va;
	c->a_len = a->len;
	c->b_va = b_va;
	c->b_len = b->len;
	c->bias_va = bias_va;
	c->mask_va = mask_va;
	c->mask_len = mask ? mask->len : 0;
	c->y_va = y_va;
	c->ct_va = ct_va;
	c->ct_cap = ct ? ct->cap : 0;
	if (ct) {
		c->len_va = dx_res_va(x, 0);
		c->stats_va = dx_res_va(x, 64);
	}
	c->enc = he;
	ret = dx_run(x);
	if (ret)
		return ret;
	if (ct)
		memcpy(&ct->len, dx_res(x, 0), sizeof(uint64_t));
	if (st) {
		memset(st, 0, sizeof(*st));
		if (ct)
			dx_stats(dx_res(x, 64), st);
	}
	if (!cnt)
		return 0;
	t0 = dx_now_ns();
	ret = dx_gemm_counters(a, &ha, b, &hb, mask, y, ct, cnt);
	x->ns_count += dx_now_ns() - t0;
	return ret;
}

/* Whether the chip has the SOFTMAX_XENT and SGD opcodes. */
static bool dx_train_ops(const struct spt_ctx *ctx)
{
	const struct rt_dev_priv *p = ctx->priv;

	return p && (p->di.caps & DRM_SPT_CAP_TRAIN_OPS);
}

static bool dx_all_finite(const float *v, size_t n)
{
	size_t j;

	for (j = 0; j < n; j++)
		if (!isfinite(v[j]))
			return false;
	return true;
}

/* Submit the queued SGD commands as one job; -EDOM if it failed on non-finite values. */
static int dx_flush(struct rt_dx *x)
{
	int i, n = x->nsgd, ret;

	if (!n)
		return 0;
	x->nsgd = 0;
	ret = dx_run(x);
	/* a failed job carries no reason here: non-finite input is -EDOM, as in core */
	for (i = 0; ret == -EIO && i < n; i++)
		if (!dx_all_finite(x->sgd[i].w, x->sgd[i].n) ||
		    !dx_all_finite(x->sgd[i].v, x->sgd[i].n) ||
		    !dx_all_finite(x->sgd[i].g, x->sgd[i].n))
			ret = -EDOM;
	return ret;
}

static int dx_flush_ctx(struct spt_ctx *ctx)
{
	struct rt_dx *x = dx_of(ctx);

	return x ? dx_flush(x) : 0;
}

static int dx_softmax_xent(struct spt_ctx *ctx, const struct spt_buf *logits,
			   const uint8_t *labels, uint32_t rows, uint32_t classes, float *loss,
			   uint32_t *correct, struct spt_buf *dlogits)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_cmd_softmax_xent *c;
	size_t bytes = (size_t)rows * classes * sizeof(float);
	uint64_t logits_va, labels_va, dl_va = 0;
	int ret;

	if (!x || !logits || !logits->host || !labels || !loss || !rows || !classes ||
	    bytes > logits->cap || (dlogits && (!dlogits->host || bytes > dlogits->cap)))
		return -EINVAL;
	if (!dx_train_ops(ctx))
		return spt_softmax_xent(logits->host, labels, rows, classes, loss, correct,
					dlogits ? dlogits->host : NULL);
	ret = dx_stage_reserve(x, dx_stage_need(x, logits->host, bytes) +
				  dx_stage_need(x, labels, rows) +
				  (dlogits ? dx_stage_need(x, dlogits->host, bytes) : 0));
	if (ret)
		return ret;
	dx_job_begin(x);
	ret = dx_operand(x, logits->host, bytes, true, false, &logits_va) ?:
	      dx_operand(x, (void *)labels, rows, true, false, &labels_va);
	if (!ret && dlogits)
		ret = dx_operand(x, dlogits->host, bytes, false, true, &dl_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_SOFTMAX_XENT, sizeof(*c));
	c->logits_va = logits_va;
	c->labels_va = labels_va;
	c->rows = rows;
	c->classes = classes;
	c->loss_va = dx_res_va(x, 0);
	c->correct_va = dx_res_va(x, 8);
	c->dlogits_va = dl_va;
	ret = dx_run(x);
	if (ret == -EIO) {
		/* a failed job carries no reason here: the golden model names it */
		float l;
		int r = spt_softmax_xent(logits->host, labels, rows, classes, &l, NULL, NULL);

		return r ? r : ret;
	}
	if (ret)
		return ret;
	memcpy(loss, dx_res(x, 0), sizeof(*loss));
	if (correct)
		memcpy(correct, dx_res(x, 8), sizeof(*correct));
	return 0;
}

static int dx_sgd(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		  const struct spt_buf *g, size_t n, float lr, float momentum,
		  float weight_decay)
{
	struct rt_dx *x = dx_of(ctx);
	struct spt_cmd_sgd *c;
	size_t bytes = n * sizeof(float);
	uint64_t w_va, v_va, g_va;
	int ret;

	if (!x || !w || !v || !g || !w->host || !v->host || !g->host || bytes > w->cap ||
	    bytes > v->cap || bytes > g->cap)
		return -EINVAL;
	if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
		return -EINVAL;
	if (!n)
		return 0;
	if (!dx_train_ops(ctx))
		return spt_sgd_momentum(w->host, v->host, g->host, n, lr, momentum, weight_decay);
	if (dx_lookup(x, w->host, bytes) && dx_lookup(x, v->host, bytes) &&
	    dx_lookup(x, g->host, bytes)) {
		/* all in pools: queue it; sync() (or the next operation) submits the batch */
		if (x->nsgd == (int)(sizeof(x->sgd) / sizeof(x->sgd[0]))) {
			ret = dx_flush(x);
			if (ret)
				return ret;
		}
		if (!x->nsgd)
			dx_job_begin(x);
		c = dx_cmd(x, SPT_OP_SGD, sizeof(*c));
		c->w_va = dx_lookup(x, w->host, bytes);
		c->v_va = dx_lookup(x, v->host, bytes);
		c->g_va = dx_lookup(x, g->host, bytes);
		c->n = n;
		c->lr = f32_bits(lr);
		c->momentum = f32_bits(momentum);
		c->weight_decay = f32_bits(weight_decay);
		x->sgd[x->nsgd].w = w->host;
		x->sgd[x->nsgd].v = v->host;
		x->sgd[x->nsgd].g = g->host;
		x->sgd[x->nsgd].n = n;
		x->nsgd++;
		return 0;
	}
	ret = dx_flush(x);
	if (ret)
		return ret;
	ret = dx_stage_reserve(x, dx_stage_need(x, w->host, bytes) +
				  dx_stage_need(x, v->host, bytes) +
				  dx_stage_need(x, g->host, bytes));
	if (ret)
		return ret;
	dx_job_begin(x);
	ret = dx_operand(x, w->host, bytes, true, true, &w_va) ?:
	      dx_operand(x, v->host, bytes, true, true, &v_va) ?:
	      dx_operand(x, g->host, bytes, true, false, &g_va);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_SGD, sizeof(*c));
	c->w_va = w_va;
	c->v_va = v_va;
	c->g_va = g_va;
	c->n = n;
	c->lr = f32_bits(lr);
	c->momentum = f32_bits(momentum);
	c->weight_decay = f32_bits(weight_decay);
	ret = dx_run(x);
	/* a failed job carries no reason here: non-finite input is -EDOM, as in core */
	if (ret == -EIO && (!dx_all_finite(w->host, n) || !dx_all_finite(v->host, n) ||
			    !dx_all_finite(g->host, n)))
		return -EDOM;
	return ret;
}

/* The operations as the backend table sees them: timed for SPT_DX_STATS. */
#define DX_TIMED(call)						\
	do {							\
		struct rt_dx *tx = dx_of(ctx);			\
		int64_t t = dx_now_ns();			\
		int r = (call);					\
								\
		if (tx)						\
			tx->ns_ops += dx_now_ns() - t;		\
		return r;					\
	} while (0)

int rt_dx_encode(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		 uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		 struct spt_tensor_stats *st)
{
	DX_TIMED(dx_flush_ctx(ctx) ?: dx_encode(ctx, src, rows, cols, o, dst, st));
}

int rt_dx_transpose(struct spt_ctx *ctx, const struct spt_buf *src,
		    const struct spt_encode_opts *o, struct spt_buf *dst,
		    struct spt_tensor_stats *st)
{
	DX_TIMED(dx_flush_ctx(ctx) ?: dx_transpose(ctx, src, o, dst, st));
}

int rt_dx_decode(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		 size_t elems)
{
	DX_TIMED(dx_flush_ctx(ctx) ?: dx_decode(ctx, src, dst, elems));
}

int rt_dx_gemm(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
	       const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
	       const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
	       const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
	       struct spt_counters *cnt)
{
	DX_TIMED(dx_flush_ctx(ctx) ?: dx_gemm(ctx, pass, a, b, bias, act, mask, y, ct, enc, st, cnt));
}

int rt_dx_softmax_xent(struct spt_ctx *ctx, const struct spt_buf *logits,
		       const uint8_t *labels, uint32_t rows, uint32_t classes, float *loss,
		       uint32_t *correct, struct spt_buf *dlogits)
{
	DX_TIMED(dx_flush_ctx(ctx) ?: dx_softmax_xent(ctx, logits, labels, rows, classes, loss, correct, dlogits));
}

int rt_dx_sgd(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
	      const struct spt_buf *g, size_t n, float lr, float momentum,
	      float weight_decay)
{
	DX_TIMED(dx_sgd(ctx, w, v, g, n, lr, momentum, weight_decay));
}

double rt_dx_device_seconds(struct spt_ctx *ctx)
{
	struct rt_dx *x = dx_of(ctx);
	double s;

	if (!x)
		return 0;
	s = (double)x->busy_ns / 1e9;
	x->busy_ns = 0;
	return s;
}

int rt_dx_sync(struct spt_ctx *ctx)
{
	/* every operation waited for its own job, except queued SGD commands */
	if (!dx_of(ctx))
		return -EINVAL;
	DX_TIMED(dx_flush_ctx(ctx));
}
