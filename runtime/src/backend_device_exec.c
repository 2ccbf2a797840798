// SPDX-License-Identifier: MIT
/*
 * The device backend's execution half: the backend operations of a step
 * become commands (uapi/spt_hw.h, command-stream version 2) of one command
 * stream, submitted with DRM_IOCTL_SPT_SUBMIT when the step calls submit()
 * or sync(), so the chip (core/ inside the device) computes the whole step
 * as one job.
 *
 * Memory.  Tensors live in a few large buffer objects ("pools", mmapped
 * for host access) sub-allocated by a bump allocator; a pool whose last
 * buffer is freed starts over.  Every operand is pool memory: master
 * weights, momentum, gradients, the uploaded batch and its labels
 * (model.c), so nothing is staged or copied around a job.  Command streams
 * and the results of their commands (encoded lengths, statistics,
 * per-command counters, device timestamps) go through one control BO.
 *
 * Queuing.  What a command produces is known only once the job has run,
 * so nothing is read back between commands: compressed inputs are passed
 * with SPT_CMD_F_LEN_HDR (the length field is the buffer's capacity, the
 * device reads the tensor's size from its header), a GEMM writes its own
 * counters (struct spt_cmd_gemm_v2.cnt_va), and the results are copied to
 * where the caller pointed (statistics, counters, a buffer's len) after
 * the job.  Shapes are tracked on the host (spt_buf.rows/cols) for the
 * buffers a queued command writes; any other compressed input has its
 * header checked before it is queued.  A job is cut early only when the
 * control BO is full.
 *
 * Execution.  submit() sends the stream (TIMESTAMP first and last, for the
 * device's busy time) and signals point n of a timeline syncobj; sync()
 * waits for it with an absolute timeout (SPT_WAIT_MS, default 120 s: TCG
 * is slow, and the driver's own job timeout resets real hangs well before
 * it), then checks the file's job counters (DRM_SPT_QUERY_STATUS) to tell
 * success from an MMU fault (-EFAULT), a hang the driver reset
 * (-ETIMEDOUT) and another device error (-EIO).  The numeric commands
 * (SOFTMAX_XENT, CHECK_FINITE, SGD) are bracketed by FENCE writes of a
 * progress word, so a job that failed inside one of them is told apart as
 * -EDOM (a NaN or infinity), like core's own functions.  SPT_DX_STATS=1
 * prints, at close, how many jobs ran and where the time went.
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
#define DX_CTRL_SIZE	(512u << 10)
#define DX_CMD_MAX	(256u << 10)	/* command bytes of one job */
#define DX_RES_OFF	DX_CMD_MAX	/* the job's results follow its commands */
#define DX_RES_MAX	(DX_CTRL_SIZE - DX_CMD_MAX)
#define DX_RES_PROGRESS	0		/* u64: numeric command running, or 0 */
#define DX_RES_T0	8		/* u64 device time at the job's start */
#define DX_RES_T1	16		/* ... and at its end */
#define DX_RES_FIRST	64		/* first result of a command */
#define DX_MAX_FIX	1024		/* results to copy out after one job */
#define DX_MAX_QUEUED	512		/* compressed outputs of one job */
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

/* A result of the job to copy where the caller pointed, after it ran. */
enum dx_fix_kind { DX_FIX_LEN, DX_FIX_STATS, DX_FIX_COUNTERS };

struct dx_fix {
	enum dx_fix_kind kind;
	void *dst;		/* struct spt_buf (len), spt_tensor_stats or spt_counters */
	uint32_t off;		/* in the results area */
};

struct rt_dx {
	int fd;
	uint32_t queue, syncobj;
	uint64_t point;
	int wait_ms;
	struct dx_pool pool[DX_MAX_POOLS];
	int npools;
	struct dx_bo ctrl;
	/* the job being built, or in flight */
	size_t cmd_len, res_used;
	struct dx_fix fix[DX_MAX_FIX];
	int nfix;
	const void *queued[DX_MAX_QUEUED];	/* compressed outputs of queued commands */
	int nqueued;
	bool in_flight;
	struct drm_spt_bo_ref refs[DX_MAX_POOLS + 1];
	struct drm_spt_query_status status;
	uint64_t jobs, cmds;
	uint64_t busy_ns;	/* device time of completed jobs, from their TIMESTAMPs */
	uint64_t busy_total;
	/* SPT_DX_STATS=1: where the time of the backend's operations goes, printed at close */
	bool trace;
	int64_t ns_ops, ns_sync, ns_run, t_submit;
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

static void dx_job_reset(struct rt_dx *x)
{
	x->cmd_len = 0;
	x->res_used = DX_RES_FIRST;
	x->nfix = 0;
	x->nqueued = 0;
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
	dx_job_reset(x);
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

static int dx_sync(struct rt_dx *x);

void rt_dx_close(struct rt_dx *x)
{
	struct drm_spt_queue_destroy qd = { 0 };
	int i;

	if (!x)
		return;
	dx_sync(x);
	if (x->trace && x->jobs)
		fprintf(stderr, "spt device backend: %llu jobs, %llu commands, %.1f ms queuing "
			"operations, %.1f ms in sync(), %.1f ms submit-to-signal, %.1f ms device "
			"busy\n", (unsigned long long)x->jobs, (unsigned long long)x->cmds,
			x->ns_ops / 1e6, x->ns_sync / 1e6, x->ns_run / 1e6, x->busy_total / 1e6);
	for (i = 0; i < x->npools; i++)
		dx_bo_free(x, &x->pool[i].bo);
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

static uint64_t dx_res_va(const struct rt_dx *x, size_t off)
{
	return x->ctrl.va + DX_RES_OFF + off;
}

static void *dx_res(const struct rt_dx *x, size_t off)
{
	return x->ctrl.map + DX_RES_OFF + off;
}

/* Whether a queued command writes the compressed tensor at @p. */
static bool dx_is_queued(const struct rt_dx *x, const void *p)
{
	int i;

	for (i = 0; i < x->nqueued; i++)
		if (x->queued[i] == p)
			return true;
	return false;
}

/*
 * A compressed input: its VA and shape.  The shape of a tensor a queued
 * command writes is the one recorded then; any other has its header
 * checked here.
 */
static int dx_in_ct(const struct rt_dx *x, const struct spt_buf *b, uint64_t *va,
		    uint32_t *rows, uint32_t *cols)
{
	struct spt_ct_header h;

	if (!b || !b->host || b->cap < SPT_CT_HEADER_SIZE)
		return -EINVAL;
	*va = dx_lookup(x, b->host, b->cap);
	if (!*va)
		return -EINVAL;
	if (dx_is_queued(x, b->host)) {
		*rows = b->rows;
		*cols = b->cols;
		return 0;
	}
	if (b->len < SPT_CT_HEADER_SIZE || b->len > b->cap)
		return -EINVAL;
	memcpy(&h, b->host, sizeof(h));
	if (h.magic != SPT_CT_MAGIC || h.version != SPT_CT_VERSION || !h.rows || !h.cols ||
	    h.total_bytes != b->len)
		return -EBADMSG;
	*rows = h.rows;
	*cols = h.cols;
	return 0;
}

/* The VA of @bytes of an FP32 (or u8) operand: pool memory only. */
static int dx_in(const struct rt_dx *x, const struct spt_buf *b, size_t bytes, uint64_t *va)
{
	if (!b || !b->host || bytes > b->cap)
		return -EINVAL;
	*va = dx_lookup(x, b->host, bytes);
	return *va ? 0 : -EINVAL;
}

/* ---- building a job ------------------------------------------------------ */

/*
 * Room for @cmd_bytes of commands (plus their progress fences and the
 * closing TIMESTAMP), @res_bytes of results, @nfix results to copy out
 * and @nout compressed outputs; a full job is run first.
 */
static int dx_room(struct rt_dx *x, size_t cmd_bytes, size_t res_bytes, int nfix, int nout)
{
	size_t cmd_need = cmd_bytes + 2 * sizeof(struct spt_cmd_fence) +
			  2 * sizeof(struct spt_cmd_timestamp);
	int ret;

	if (x->in_flight) {
		ret = dx_sync(x);
		if (ret)
			return ret;
	}
	if (x->cmd_len + cmd_need <= DX_CMD_MAX && x->res_used + res_bytes <= DX_RES_MAX &&
	    x->nfix + nfix <= DX_MAX_FIX && x->nqueued + nout <= DX_MAX_QUEUED)
		return 0;
	return dx_sync(x);
}

static void *dx_emit(struct rt_dx *x, uint8_t op, uint16_t size, uint32_t flags)
{
	struct spt_cmd_hdr *h = (void *)(x->ctrl.map + x->cmd_len);

	memset(h, 0, size);
	h->opcode = op;
	h->version = 2;
	h->size = size;
	h->flags = flags;
	x->cmd_len += size;
	x->cmds++;
	return h;
}

static void dx_timestamp(struct rt_dx *x, size_t res_off)
{
	struct spt_cmd_timestamp *t = dx_emit(x, SPT_OP_TIMESTAMP, sizeof(*t), 0);

	t->va = dx_res_va(x, res_off);
}

static void dx_progress(struct rt_dx *x, uint64_t value)
{
	struct spt_cmd_fence *f = dx_emit(x, SPT_OP_FENCE, sizeof(*f), 0);

	f->va = dx_res_va(x, DX_RES_PROGRESS);
	f->value = value;
}

/* The next command (the job opens with a TIMESTAMP). */
static void *dx_cmd(struct rt_dx *x, uint8_t op, uint16_t size, uint32_t flags)
{
	if (!x->cmd_len)
		dx_timestamp(x, DX_RES_T0);
	return dx_emit(x, op, size, flags);
}

/*
 * A command that fails only on a NaN or infinity: the progress word holds
 * its offset + 1 while it runs, so a job that fails inside it is -EDOM.
 * Close it with dx_numeric_end().
 */
static void *dx_numeric(struct rt_dx *x, uint8_t op, uint16_t size)
{
	if (!x->cmd_len)
		dx_timestamp(x, DX_RES_T0);
	dx_progress(x, x->cmd_len + sizeof(struct spt_cmd_fence) + 1);
	return dx_emit(x, op, size, 0);
}

static void dx_numeric_end(struct rt_dx *x)
{
	dx_progress(x, 0);
}

/* @bytes of results for one command, 8-byte aligned. */
static uint32_t dx_res_alloc(struct rt_dx *x, size_t bytes)
{
	uint32_t off = (uint32_t)x->res_used;

	x->res_used += (bytes + 7) & ~(size_t)7;
	return off;
}

static void dx_fix_add(struct rt_dx *x, enum dx_fix_kind kind, void *dst, uint32_t off)
{
	x->fix[x->nfix].kind = kind;
	x->fix[x->nfix].dst = dst;
	x->fix[x->nfix++].off = off;
}

/* A compressed output of @rows x @cols: its length comes back after the job. */
static uint64_t dx_out_ct(struct rt_dx *x, struct spt_buf *b, uint32_t rows, uint32_t cols,
			  uint64_t *len_va)
{
	uint32_t off = dx_res_alloc(x, sizeof(uint64_t));

	b->rows = rows;
	b->cols = cols;
	x->queued[x->nqueued++] = b->host;
	dx_fix_add(x, DX_FIX_LEN, b, off);
	*len_va = dx_res_va(x, off);
	return dx_lookup(x, b->host, b->cap);
}

static uint64_t dx_stats_va(struct rt_dx *x, struct spt_tensor_stats *st)
{
	uint32_t off;

	if (!st)
		return 0;
	off = dx_res_alloc(x, sizeof(struct spt_hw_stats));
	dx_fix_add(x, DX_FIX_STATS, st, off);
	return dx_res_va(x, off);
}

static bool dx_out_ok(const struct rt_dx *x, const struct spt_buf *b)
{
	return b && b->host && b->cap >= SPT_CT_HEADER_SIZE && dx_lookup(x, b->host, b->cap);
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

/* Send the queued commands as one job (not waiting for it). */
static int dx_submit(struct rt_dx *x)
{
	struct drm_spt_submit s = { 0 };
	uint64_t zero = 0;
	uint32_t n = 0;
	int i, ret;

	if (x->in_flight || !x->cmd_len)
		return 0;
	dx_timestamp(x, DX_RES_T1);
	memcpy(dx_res(x, DX_RES_PROGRESS), &zero, sizeof(zero));
	for (i = 0; i < x->npools; i++) {
		x->refs[n].handle = x->pool[i].bo.handle;
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
	s.out_point = x->point + 1;
	x->t_submit = dx_now_ns();
	ret = dx_ioctl(x->fd, DRM_IOCTL_SPT_SUBMIT, &s);
	if (ret) {
		dx_job_reset(x);
		return ret == -ENODEV ? -SPT_ENODEVICE : ret;
	}
	x->point++;
	x->jobs++;
	x->in_flight = true;
	return 0;
}

static void dx_counters(const struct spt_hw_counters *h, struct spt_counters *c)
{
	memset(c, 0, sizeof(*c));
	c->dense_macs = h->dense_macs;
	c->exec_macs = h->exec_macs;
	c->bytes_read = h->bytes_read;
	c->bytes_written = h->bytes_written;
	c->dense_fp16_bytes = h->dense_fp16_bytes;
	c->blocks = h->blocks;
	c->elements_out = h->elements_out;
}

/* Copy the job's results where its callers pointed. */
static void dx_fixup(struct rt_dx *x)
{
	uint64_t ts[2];
	int i;

	for (i = 0; i < x->nfix; i++) {
		const struct dx_fix *f = &x->fix[i];

		switch (f->kind) {
		case DX_FIX_LEN:
			memcpy(&((struct spt_buf *)f->dst)->len, dx_res(x, f->off), sizeof(uint64_t));
			break;
		case DX_FIX_STATS:
			dx_stats(dx_res(x, f->off), f->dst);
			break;
		case DX_FIX_COUNTERS:
			dx_counters(dx_res(x, f->off), f->dst);
			break;
		}
	}
	memcpy(ts, dx_res(x, DX_RES_T0), sizeof(ts));
	x->busy_ns += ts[1] - ts[0];
	x->busy_total += ts[1] - ts[0];
}

/* Submit what is queued, wait for it, report its outcome. */
static int dx_sync(struct rt_dx *x)
{
	struct drm_spt_query_status st;
	uint64_t point, progress;
	uint32_t first = 0;
	int ret;

	ret = dx_submit(x);
	if (ret || !x->in_flight)
		return ret;
	point = x->point;
	ret = drmSyncobjTimelineWait(x->fd, &x->syncobj, &point, 1,
				     dx_now_ns() + (int64_t)x->wait_ms * 1000000,
				     DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, &first);
	x->ns_run += dx_now_ns() - x->t_submit;
	x->in_flight = false;
	if (ret) {
		dx_job_reset(x);
		return ret == -ETIME || ret == -ETIMEDOUT ? -ETIMEDOUT : (ret < 0 ? ret : -EIO);
	}
	/* the fence's error is not visible through SYNCOBJ_WAIT: the file's counters are */
	ret = dx_query_status(x, &st);
	if (ret) {
		dx_job_reset(x);
		return ret;
	}
	memcpy(&progress, dx_res(x, DX_RES_PROGRESS), sizeof(progress));
	if (st.guilty_jobs != x->status.guilty_jobs)
		ret = -ETIMEDOUT;	/* hung, reset by the driver */
	else if (st.faulted_jobs != x->status.faulted_jobs)
		ret = -EFAULT;		/* MMU fault: a VA outside this file's BOs */
	else if (st.failed_jobs != x->status.failed_jobs || st.done_jobs == x->status.done_jobs)
		ret = progress ? -EDOM : -EIO;	/* NaN/Inf, or a malformed command, DMA error */
	x->status = st;
	if (!ret)
		dx_fixup(x);
	dx_job_reset(x);
	return ret;
}

/* ---- operations ---------------------------------------------------------- */

/* ENCODE (version 2); @t: also its re-blocked transpose, from the same command (NULL: none) */
static int dx_encode_t(struct rt_dx *x, const struct spt_buf *src, uint32_t rows,
		       uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		       struct spt_tensor_stats *st, struct spt_buf *t)
{
	struct spt_cmd_encode_v2 *c;
	struct spt_hw_encode he;
	uint64_t src_va, dst_va, len_va, t_va = 0, t_len_va = 0;
	int ret;

	if (!rows || !cols || rows > SPT_CT_MAX_DIM || cols > SPT_CT_MAX_DIM ||
	    !dx_out_ok(x, dst) || (t && (t == dst || !dx_out_ok(x, t))))
		return -EINVAL;
	ret = dx_in(x, src, (size_t)rows * cols * sizeof(float), &src_va) ?: dx_hw_encode(o, &he) ?:
	      dx_room(x, sizeof(*c), 16 + sizeof(struct spt_hw_stats), 3, 2);
	if (ret)
		return ret;
	dst_va = dx_out_ct(x, dst, rows, cols, &len_va);
	if (t)
		t_va = dx_out_ct(x, t, cols, rows, &t_len_va);
	c = dx_cmd(x, SPT_OP_ENCODE, sizeof(*c), 0);
	c->v1.src_va = src_va;
	c->v1.rows = rows;
	c->v1.cols = cols;
	c->v1.dst_va = dst_va;
	c->v1.dst_cap = dst->cap;
	c->v1.len_va = len_va;
	c->v1.stats_va = dx_stats_va(x, st);
	c->v1.enc = he;
	c->t_va = t_va;
	c->t_cap = t ? t->cap : 0;
	c->t_len_va = t_len_va;
	return 0;
}

static int dx_encode(struct rt_dx *x, const struct spt_buf *src, uint32_t rows, uint32_t cols,
		     const struct spt_encode_opts *o, struct spt_buf *dst,
		     struct spt_tensor_stats *st)
{
	return dx_encode_t(x, src, rows, cols, o, dst, st, NULL);
}

static int dx_transpose(struct rt_dx *x, const struct spt_buf *src,
			const struct spt_encode_opts *o, struct spt_buf *dst,
			struct spt_tensor_stats *st)
{
	struct spt_cmd_transpose *c;
	struct spt_hw_encode he;
	uint64_t src_va, dst_va, len_va;
	uint32_t rows, cols;
	int ret;

	if (!dx_out_ok(x, dst))
		return -EINVAL;
	ret = dx_in_ct(x, src, &src_va, &rows, &cols) ?: dx_hw_encode(o, &he) ?:
	      dx_room(x, sizeof(*c), 8 + sizeof(struct spt_hw_stats), 2, 1);
	if (ret)
		return ret;
	dst_va = dx_out_ct(x, dst, cols, rows, &len_va);
	c = dx_cmd(x, SPT_OP_TRANSPOSE, sizeof(*c), SPT_CMD_F_LEN_HDR);
	c->src_va = src_va;
	c->src_len = src->cap;
	c->dst_va = dst_va;
	c->dst_cap = dst->cap;
	c->len_va = len_va;
	c->stats_va = dx_stats_va(x, st);
	c->enc = he;
	return 0;
}

static int dx_decode(struct rt_dx *x, const struct spt_buf *src, struct spt_buf *dst,
		     size_t elems)
{
	struct spt_cmd_decode *c;
	uint64_t src_va, dst_va;
	uint32_t rows, cols;
	int ret;

	if (!elems)
		return -EINVAL;
	ret = dx_in(x, dst, elems * sizeof(float), &dst_va) ?:
	      dx_in_ct(x, src, &src_va, &rows, &cols);
	if (ret)
		return ret;
	if ((uint64_t)rows * cols != elems)
		return -EINVAL;
	ret = dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_DECODE, sizeof(*c), SPT_CMD_F_LEN_HDR);
	c->src_va = src_va;
	c->src_len = src->cap;
	c->dst_va = dst_va;
	c->dst_elems = elems;
	return 0;
}

/* GEMM (version 2); @t: also the re-blocked transpose of @ct, from the same epilogue */
static int dx_gemm_t(struct rt_dx *x, enum spt_pass pass, const struct spt_buf *a,
		     const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		     const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		     const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		     struct spt_counters *cnt, struct spt_buf *t)
{
	struct spt_cmd_gemm_v2 *c;
	struct spt_hw_encode he;
	uint64_t a_va, b_va, bias_va = 0, mask_va = 0, y_va = 0, ct_va = 0, len_va = 0;
	uint64_t t_va = 0, t_len_va = 0;
	uint32_t am, ak, bn, bk, mm = 0, mn = 0;
	int ret;

	if ((pass != SPT_PASS_FWD && pass != SPT_PASS_BWD && pass != SPT_PASS_WG) ||
	    (act != SPT_ACT_NONE && act != SPT_ACT_RELU && act != SPT_ACT_RELU_GRAD) ||
	    (!y && !ct) || (act == SPT_ACT_RELU_GRAD) != (mask != NULL) ||
	    (ct && !dx_out_ok(x, ct)) || (t && (!ct || t == ct || !dx_out_ok(x, t))))
		return -EINVAL;
	ret = dx_in_ct(x, a, &a_va, &am, &ak) ?: dx_in_ct(x, b, &b_va, &bn, &bk) ?:
	      dx_hw_encode(enc, &he);
	if (!ret && mask)
		ret = dx_in_ct(x, mask, &mask_va, &mm, &mn);
	if (ret)
		return ret;
	if (ak != bk || (mask && (mm != am || mn != bn)))
		return -EINVAL;
	if (y)
		ret = dx_in(x, y, (size_t)am * bn * sizeof(float), &y_va);
	if (!ret && bias)
		ret = dx_in(x, bias, (size_t)bn * sizeof(float), &bias_va);
	ret = ret ?: dx_room(x, sizeof(*c), 16 + sizeof(struct spt_hw_stats) +
					    sizeof(struct spt_hw_counters), 4, 2);
	if (ret)
		return ret;
	if (ct)
		ct_va = dx_out_ct(x, ct, am, bn, &len_va);
	if (t)
		t_va = dx_out_ct(x, t, bn, am, &t_len_va);
	c = dx_cmd(x, SPT_OP_GEMM, sizeof(*c), SPT_CMD_F_LEN_HDR);
	c->v1.pass = pass;
	c->v1.act = act;
	c->v1.a_va = a_va;
	c->v1.a_len = a->cap;
	c->v1.b_va = b_va;
	c->v1.b_len = b->cap;
	c->v1.bias_va = bias_va;
	c->v1.mask_va = mask_va;
	c->v1.mask_len = mask ? mask->cap : 0;
	c->v1.y_va = y_va;
	c->v1.ct_va = ct_va;
	c->v1.ct_cap = ct ? ct->cap : 0;
	c->v1.len_va = len_va;
	c->v1.enc = he;
	if (ct) {
		c->v1.stats_va = dx_stats_va(x, st);
	} else if (st) {
		memset(st, 0, sizeof(*st));
	}
	if (cnt) {
		uint32_t off = dx_res_alloc(x, sizeof(struct spt_hw_counters));

		dx_fix_add(x, DX_FIX_COUNTERS, cnt, off);
		c->cnt_va = dx_res_va(x, off);
	}
	c->t_va = t_va;
	c->t_cap = t ? t->cap : 0;
	c->t_len_va = t_len_va;
	return 0;
}

static int dx_gemm(struct rt_dx *x, enum spt_pass pass, const struct spt_buf *a,
		   const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		   const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		   const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		   struct spt_counters *cnt)
{
	return dx_gemm_t(x, pass, a, b, bias, act, mask, y, ct, enc, st, cnt, NULL);
}

static int dx_softmax_xent(struct rt_dx *x, const struct spt_buf *logits,
			   const struct spt_buf *labels, uint32_t rows, uint32_t classes,
			   struct spt_buf *out, struct spt_buf *dlogits)
{
	struct spt_cmd_softmax_xent *c;
	size_t bytes = (size_t)rows * classes * sizeof(float);
	uint64_t logits_va, labels_va, out_va, dl_va = 0;
	int ret;

	if (!rows || !classes)
		return -EINVAL;
	ret = dx_in(x, logits, bytes, &logits_va) ?: dx_in(x, labels, rows, &labels_va) ?:
	      dx_in(x, out, 8, &out_va);
	if (!ret && dlogits)
		ret = dx_in(x, dlogits, bytes, &dl_va);
	ret = ret ?: dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_numeric(x, SPT_OP_SOFTMAX_XENT, sizeof(*c));
	c->logits_va = logits_va;
	c->labels_va = labels_va;
	c->rows = rows;
	c->classes = classes;
	c->loss_va = out_va;
	c->correct_va = out_va + 4;
	c->dlogits_va = dl_va;
	dx_numeric_end(x);
	return 0;
}

static int dx_sgd(struct rt_dx *x, struct spt_buf *w, struct spt_buf *v,
		  const struct spt_buf *g, size_t n, float lr, float momentum,
		  float weight_decay)
{
	struct spt_cmd_sgd *c;
	size_t bytes = n * sizeof(float);
	uint64_t w_va, v_va, g_va;
	int ret;

	if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
		return -EINVAL;
	ret = dx_in(x, w, bytes, &w_va) ?: dx_in(x, v, bytes, &v_va) ?: dx_in(x, g, bytes, &g_va);
	if (ret || !n)
		return ret;
	ret = dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_numeric(x, SPT_OP_SGD, sizeof(*c));
	c->w_va = w_va;
	c->v_va = v_va;
	c->g_va = g_va;
	c->n = n;
	c->lr = f32_bits(lr);
	c->momentum = f32_bits(momentum);
	c->weight_decay = f32_bits(weight_decay);
	dx_numeric_end(x);
	return 0;
}

static int dx_conv(struct rt_dx *x, uint8_t op, const struct spt_conv_shape *cs,
		   const struct spt_buf *img, const struct spt_buf *col)
{
	struct spt_cmd_im2col *c;
	struct spt_conv_dims d;
	uint64_t img_va, col_va;
	int ret;

	if (!cs)
		return -EINVAL;
	ret = spt_conv_shape_check(cs, &d);
	if (ret)
		return ret;
	ret = dx_in(x, img, d.img_elems * sizeof(float), &img_va) ?:
	      dx_in(x, col, d.col_elems * sizeof(float), &col_va) ?:
	      dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_cmd(x, op, sizeof(*c), 0);
	c->img_va = img_va;
	c->col_va = col_va;
	c->n = cs->n;
	c->h = cs->h;
	c->w = cs->w;
	c->c = cs->c;
	c->k = cs->k;
	c->stride = cs->stride;
	c->pad = cs->pad;
	return 0;
}

static int dx_colsum(struct rt_dx *x, const struct spt_buf *src, struct spt_buf *dst,
		     uint32_t cols)
{
	struct spt_cmd_colsum *c;
	uint64_t src_va, dst_va;
	uint32_t rows, scols;
	int ret;

	ret = dx_in_ct(x, src, &src_va, &rows, &scols) ?:
	      dx_in(x, dst, (size_t)cols * sizeof(float), &dst_va);
	if (ret)
		return ret;
	if (!cols || cols != scols)
		return -EINVAL;
	ret = dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_COLSUM, sizeof(*c), SPT_CMD_F_LEN_HDR);
	c->src_va = src_va;
	c->src_len = src->cap;
	c->dst_va = dst_va;
	c->dst_elems = cols;
	return 0;
}

static int dx_check_finite(struct rt_dx *x, const struct spt_buf *b, size_t n)
{
	struct spt_cmd_check_finite *c;
	uint64_t va;
	int ret;

	if (!n)
		return -EINVAL;
	ret = dx_in(x, b, n * sizeof(float), &va) ?: dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_numeric(x, SPT_OP_CHECK_FINITE, sizeof(*c));
	c->va = va;
	c->n = n;
	dx_numeric_end(x);
	return 0;
}

static int dx_relu_mask(struct rt_dx *x, struct spt_buf *dx, const struct spt_buf *y, size_t n)
{
	struct spt_cmd_relu_mask *c;
	uint64_t dx_va, y_va;
	int ret;

	if (!n || n > SIZE_MAX / sizeof(float))
		return -EINVAL;
	ret = dx_in(x, dx, n * sizeof(float), &dx_va) ?: dx_in(x, y, n * sizeof(float), &y_va) ?:
	      dx_room(x, sizeof(*c), 0, 0, 0);
	if (ret)
		return ret;
	c = dx_cmd(x, SPT_OP_RELU_MASK, sizeof(*c), 0);
	c->dx_va = dx_va;
	c->y_va = y_va;
	c->n = n;
	return 0;
}

/* The operations as the backend table sees them: timed for SPT_DX_STATS. */
#define DX_OP(call)						\
	do {							\
		struct rt_dx *x = dx_of(ctx);			\
		int64_t t;					\
		int r;						\
								\
		if (!x)						\
			return -EINVAL;				\
		t = dx_now_ns();				\
		r = (call);					\
		x->ns_ops += dx_now_ns() - t;			\
		return r;					\
	} while (0)

int rt_dx_encode(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		 uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		 struct spt_tensor_stats *st)
{
	DX_OP(dx_encode(x, src, rows, cols, o, dst, st));
}

int rt_dx_transpose(struct spt_ctx *ctx, const struct spt_buf *src,
		    const struct spt_encode_opts *o, struct spt_buf *dst,
		    struct spt_tensor_stats *st)
{
	DX_OP(dx_transpose(x, src, o, dst, st));
}

int rt_dx_encode_t(struct spt_ctx *ctx, const struct spt_buf *src, uint32_t rows,
		   uint32_t cols, const struct spt_encode_opts *o, struct spt_buf *dst,
		   struct spt_tensor_stats *st, struct spt_buf *tr)
{
	if (!tr)
		return -EINVAL;
	DX_OP(dx_encode_t(x, src, rows, cols, o, dst, st, tr));
}

int rt_dx_decode(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		 size_t elems)
{
	DX_OP(dx_decode(x, src, dst, elems));
}

int rt_dx_gemm(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
	       const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
	       const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
	       const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
	       struct spt_counters *cnt)
{
	DX_OP(dx_gemm(x, pass, a, b, bias, act, mask, y, ct, enc, st, cnt));
}

int rt_dx_gemm_t(struct spt_ctx *ctx, enum spt_pass pass, const struct spt_buf *a,
		 const struct spt_buf *b, const struct spt_buf *bias, enum spt_act act,
		 const struct spt_buf *mask, struct spt_buf *y, struct spt_buf *ct,
		 const struct spt_encode_opts *enc, struct spt_tensor_stats *st,
		 struct spt_counters *cnt, struct spt_buf *tr)
{
	if (!tr)
		return -EINVAL;
	DX_OP(dx_gemm_t(x, pass, a, b, bias, act, mask, y, ct, enc, st, cnt, tr));
}

int rt_dx_softmax_xent(struct spt_ctx *ctx, const struct spt_buf *logits,
		       const struct spt_buf *labels, uint32_t rows, uint32_t classes,
		       struct spt_buf *out, struct spt_buf *dlogits)
{
	DX_OP(dx_softmax_xent(x, logits, labels, rows, classes, out, dlogits));
}

int rt_dx_sgd(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
	      const struct spt_buf *g, size_t n, float lr, float momentum,
	      float weight_decay)
{
	DX_OP(dx_sgd(x, w, v, g, n, lr, momentum, weight_decay));
}

int rt_dx_sgd_ct(struct spt_ctx *ctx, struct spt_buf *w, struct spt_buf *v,
		 const struct spt_buf *g_ct, struct spt_buf *gtmp, size_t n, float lr,
		 float momentum, float weight_decay)
{
	if (!g_ct || !gtmp)
		return -EINVAL;
	DX_OP(dx_decode(x, g_ct, gtmp, n) ?: dx_sgd(x, w, v, gtmp, n, lr, momentum, weight_decay));
}

int rt_dx_im2col(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		 const struct spt_buf *img, struct spt_buf *col)
{
	DX_OP(dx_conv(x, SPT_OP_IM2COL, cs, img, col));
}

/*
 * With @y_mask, the device's COL2IM and RELU_MASK commands; the mask is
 * checked first (dx_conv checks the image and col before it queues), so a
 * bad buffer queues nothing.
 */
static int dx_col2im(struct rt_dx *x, const struct spt_conv_shape *cs,
		     const struct spt_buf *col, struct spt_buf *img, const struct spt_buf *y_mask)
{
	struct spt_conv_dims d;
	uint64_t va;
	int ret;

	if (!y_mask)
		return dx_conv(x, SPT_OP_COL2IM, cs, img, col);
	if (!cs)
		return -EINVAL;
	ret = spt_conv_shape_check(cs, &d);
	if (ret)
		return ret;
	ret = dx_in(x, y_mask, d.img_elems * sizeof(float), &va);
	if (ret)
		return ret;
	return dx_conv(x, SPT_OP_COL2IM, cs, img, col) ?:
	       dx_relu_mask(x, img, y_mask, d.img_elems);
}

int rt_dx_col2im(struct spt_ctx *ctx, const struct spt_conv_shape *cs,
		 const struct spt_buf *col, struct spt_buf *img, const struct spt_buf *y_mask)
{
	DX_OP(dx_col2im(x, cs, col, img, y_mask));
}

int rt_dx_colsum(struct spt_ctx *ctx, const struct spt_buf *src, struct spt_buf *dst,
		 uint32_t cols)
{
	DX_OP(dx_colsum(x, src, dst, cols));
}

int rt_dx_check_finite(struct spt_ctx *ctx, const struct spt_buf *b, size_t n)
{
	DX_OP(dx_check_finite(x, b, n));
}

int rt_dx_relu_mask(struct spt_ctx *ctx, struct spt_buf *dx, const struct spt_buf *y, size_t n)
{
	DX_OP(dx_relu_mask(x, dx, y, n));
}

int rt_dx_submit(struct spt_ctx *ctx)
{
	DX_OP(dx_submit(x));
}

int rt_dx_sync(struct spt_ctx *ctx)
{
	struct rt_dx *x = dx_of(ctx);
	int64_t t;
	int r;

	if (!x)
		return -EINVAL;
	t = dx_now_ns();
	r = dx_sync(x);
	x->ns_sync += dx_now_ns() - t;
	return r;
}

uint64_t rt_dx_jobs(struct spt_ctx *ctx)
{
	struct rt_dx *x = dx_of(ctx);

	return x ? x->jobs : 0;
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
