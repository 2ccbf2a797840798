/* SPDX-License-Identifier: MIT */
/*
 * spt bench device: the SPT device through the driver, measured from the
 * machine that has it (a guest with -device spt).
 *
 *   null  jobs of one NOP: SUBMIT -> out-syncobj signalled one at a time
 *         (p50, p99), then the same jobs pipelined on one queue (jobs/s)
 *   gemm  a forward GEMM job bracketed by TIMESTAMP commands: its round
 *         trip against its device-side time and against the same
 *         spt_gemm() call made on this CPU, interleaved
 *   train an MLP training step through libspt on the device backend
 *         against its device busy time (spt_step_stats.device_seconds) and
 *         against the CPU backend's step on the same batch, interleaved
 *
 * null and gemm speak to the driver directly (uapi/drm/spt_accel.h) with
 * version-1 commands (uapi/spt_hw.h).  The device is found through libspt,
 * like every other command (/dev/accel/accel* driven by "spt", or
 * $SPT_DEVICE).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <xf86drm.h>

#include "drm/spt_accel.h"
#include "spt_hw.h"
#include "spt/spt.h"
#include "spt.h"

#define CMD_V1		1u		/* every command this file builds */
#define WAIT_MS		60000		/* per job; TCG is slow, the driver resets hangs */
#define WARMUP		5		/* untimed jobs (and CPU calls) first */

#define NULL_JOBS	1000
#define NULL_JOBS_QUICK	100
#define GEMM_JOBS	40
#define GEMM_JOBS_QUICK	6
#define GEMM_M		128u
#define GEMM_N		256u
#define GEMM_K		512u
#define GEMM_SPARSITY	0.9		/* of A; B is dense */
#define TRAIN_BATCH	64u
#define TRAIN_TARGET	0.9f		/* interim sparsity the controller aims at */
#define TRAIN_WARMUP	3
#define TRAIN_STEPS	20
#define TRAIN_STEPS_QUICK 3

/* ---- the device: one file, one queue, one binary out-syncobj ----------- */

struct dev {
	int fd;
	uint32_t queue;
	uint32_t syncobj;
};

struct dev_bo {
	uint32_t handle;
	uint64_t va, size;
	void *map;
};

static int dev_ioctl(const struct dev *d, unsigned long req, void *arg)
{
	return drmIoctl(d->fd, req, arg) ? -errno : 0;
}

static void dev_close(struct dev *d)
{
	struct drm_spt_queue_destroy qd = { .queue_id = d->queue };

	if (d->syncobj)
		drmSyncobjDestroy(d->fd, d->syncobj);
	if (d->queue)
		dev_ioctl(d, DRM_IOCTL_SPT_QUEUE_DESTROY, &qd);
	if (d->fd >= 0)
		close(d->fd);
	d->fd = -1;
}

static int dev_open(const char *path, struct dev *d)
{
	struct drm_spt_queue_create qc = { .priority = DRM_SPT_QUEUE_PRIORITY_NORMAL };
	int ret;

	memset(d, 0, sizeof(*d));
	d->fd = open(path, O_RDWR | O_CLOEXEC);
	if (d->fd < 0)
		return -errno;
	ret = dev_ioctl(d, DRM_IOCTL_SPT_QUEUE_CREATE, &qc);
	if (!ret) {
		d->queue = qc.queue_id;
		if (drmSyncobjCreate(d->fd, 0, &d->syncobj))
			ret = -errno;
	}
	if (ret)
		dev_close(d);
	return ret;
}

static void bo_free(const struct dev *d, struct dev_bo *bo)
{
	struct drm_gem_close gc = { .handle = bo->handle };

	if (bo->map)
		munmap(bo->map, bo->size);
	if (bo->handle)
		dev_ioctl(d, DRM_IOCTL_GEM_CLOSE, &gc);
	memset(bo, 0, sizeof(*bo));
}

static int bo_new(const struct dev *d, uint64_t size, struct dev_bo *bo)
{
	struct drm_spt_bo_create c = { .size = size };
	struct drm_spt_bo_info info = { 0 };
	int ret;

	memset(bo, 0, sizeof(*bo));
	ret = dev_ioctl(d, DRM_IOCTL_SPT_BO_CREATE, &c);
	if (ret)
		return ret;
	bo->handle = info.handle = c.handle;
	bo->va = c.va;
	ret = dev_ioctl(d, DRM_IOCTL_SPT_BO_INFO, &info);
	if (!ret) {
		bo->map = mmap(NULL, info.size, PROT_READ | PROT_WRITE, MAP_SHARED, d->fd,
			       (off_t)info.mmap_offset);
		if (bo->map == MAP_FAILED) {
			bo->map = NULL;
			ret = -errno;
		}
		bo->size = info.size;
	}
	if (ret)
		bo_free(d, bo);
	return ret;
}

/* Append a version-1 command of @size bytes to the stream in @cmd; NULL if full. */
static void *cmd_add(struct dev_bo *cmd, uint32_t *len, uint8_t opcode, uint16_t size)
{
	struct spt_cmd_hdr *h = (struct spt_cmd_hdr *)((uint8_t *)cmd->map + *len);

	if (*len + size > cmd->size)
		return NULL;
	memset(h, 0, size);
	h->opcode = opcode;
	h->version = CMD_V1;
	h->size = size;
	*len += size;
	return h;
}

static int job_submit(const struct dev *d, const struct dev_bo *cmd, uint32_t len)
{
	struct drm_spt_submit s = {
		.queue_id = d->queue,
		.cmd_handle = cmd->handle,
		.cmd_size = len,
		.out_sync = d->syncobj,
	};

	return dev_ioctl(d, DRM_IOCTL_SPT_SUBMIT, &s);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Wait for the last submitted job to signal the out-syncobj. */
static int job_wait(const struct dev *d)
{
	uint32_t h = d->syncobj;
	int64_t deadline = (int64_t)(now_s() * 1e9) + (int64_t)WAIT_MS * 1000000;

	if (drmSyncobjWait(d->fd, &h, 1, deadline, DRM_SYNCOBJ_WAIT_FLAGS_WAIT_FOR_SUBMIT, NULL))
		return -errno;
	return 0;
}

/* Jobs of this file done and failed so far (the driver's count). */
static int dev_jobs(const struct dev *d, uint64_t *done, uint64_t *failed)
{
	struct drm_spt_query_status st = { 0 };
	struct drm_spt_dev_query q = {
		.type = DRM_SPT_QUERY_STATUS,
		.size = sizeof(st),
		.pointer = (uintptr_t)&st,
	};
	int ret = dev_ioctl(d, DRM_IOCTL_SPT_DEV_QUERY, &q);

	*done = st.done_jobs;
	*failed = st.failed_jobs;
	return ret;
}

/* Every job since @done0/@failed0 (@want of them) succeeded; else a message. */
static int jobs_ok(const struct dev *d, const char *what, uint64_t done0, uint64_t failed0,
		   uint64_t want)
{
	uint64_t done, failed;
	int ret = dev_jobs(d, &done, &failed);

	if (ret)
		return spt_err("bench device: %s: status query: %s", what, strerror(-ret));
	if (failed != failed0 || done - done0 != want)
		return spt_err("bench device: %s: %llu of %llu jobs failed on the device", what,
			       (unsigned long long)(failed - failed0), (unsigned long long)want);
	return 0;
}

/* ---- statistics ---------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of @v[0..n) (sorted in place). */
static double pct(double *v, int n, double p)
{
	int i = (int)ceil(p / 100.0 * n) - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* ---- null jobs ----------------------------------------------------------- */

struct null_result {
	int jobs;
	double p50, p99;		/* seconds */
	double serial_rate;		/* jobs/s one at a time: jobs / sum of round trips */
	double pipelined_rate;		/* jobs/s with every job submitted before the wait */
};

static int bench_null(const struct dev *d, int jobs, struct null_result *r)
{
	double *lat = calloc((size_t)jobs, sizeof(*lat)), sum = 0, t0;
	uint64_t done0, failed0;
	struct dev_bo cmd;
	uint32_t len = 0;
	int i, ret;

	if (!lat)
		return spt_err("out of memory");
	ret = bo_new(d, SPT_PAGE_SIZE, &cmd) ?: dev_jobs(d, &done0, &failed0);
	if (ret) {
		free(lat);
		return spt_err("bench device: null job: %s", strerror(-ret));
	}
	cmd_add(&cmd, &len, SPT_OP_NOP, sizeof(struct spt_cmd_nop));
	for (i = -WARMUP; i < jobs && !ret; i++) {
		t0 = now_s();
		ret = job_submit(d, &cmd, len) ?: job_wait(d);
		if (i >= 0) {
			lat[i] = now_s() - t0;
			sum += lat[i];
		}
	}
	if (!ret) {
		t0 = now_s();
		for (i = 0; i < jobs && !ret; i++)
			ret = job_submit(d, &cmd, len);
		ret = ret ?: job_wait(d);
		r->pipelined_rate = jobs / (now_s() - t0);
	}
	bo_free(d, &cmd);
	if (ret) {
		free(lat);
		return spt_err("bench device: null job: %s", strerror(-ret));
	}
	r->jobs = jobs;
	r->serial_rate = jobs / sum;
	r->p50 = pct(lat, jobs, 50);
	r->p99 = pct(lat, jobs, 99);
	free(lat);
	return jobs_ok(d, "null job", done0, failed0, 2 * (uint64_t)jobs + WARMUP);
}

/* ---- GEMM job against its device time and against spt_gemm() here ------- */

struct gemm_result {
	int jobs;
	double rt50, rt99;		/* SUBMIT -> signalled */
	double dev50, dev99;		/* second TIMESTAMP - first */
	double cpu50, cpu99;		/* spt_gemm() on this CPU */
	struct spt_counters cnt;	/* of spt_gemm(); cycles and energy modeled */
};

/* xorshift64*: the same data in every run. */
static double unit_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (double)((*s * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

/* @rows x @cols FP32, zero with probability @sparsity, else +-[0.05, 1), encoded. */
static int make_operand(uint32_t rows, uint32_t cols, double sparsity, uint64_t seed,
			void **ct, size_t *len)
{
	size_t n = (size_t)rows * cols, cap = spt_ct_bound(rows, cols), i;
	float *x = malloc(n * sizeof(*x));
	int err;

	*ct = malloc(cap);
	if (!x || !*ct) {
		free(x);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		double v = 0.05 + 0.95 * unit_rand(&seed);

		x[i] = unit_rand(&seed) < sparsity ? 0.0f : (float)(unit_rand(&seed) < 0.5 ? -v : v);
	}
	err = spt_ct_encode(x, rows, cols, NULL, *ct, cap, len, NULL);
	free(x);
	return err;
}

struct gemm_bufs {
	void *a, *b;			/* host copies of the encoded operands */
	size_t a_len, b_len;
	float *y_cpu;
	struct dev_bo cmd, bo_a, bo_b, bo_y, bo_ts;
};

static void gemm_bufs_free(const struct dev *d, struct gemm_bufs *g)
{
	free(g->a);
	free(g->b);
	free(g->y_cpu);
	bo_free(d, &g->cmd);
	bo_free(d, &g->bo_a);
	bo_free(d, &g->bo_b);
	bo_free(d, &g->bo_y);
	bo_free(d, &g->bo_ts);
}

static int gemm_setup(const struct dev *d, struct gemm_bufs *g, uint32_t *len)
{
	size_t ybytes = (size_t)GEMM_M * GEMM_N * sizeof(float);
	struct spt_cmd_gemm *c;
	struct spt_cmd_timestamp *t0, *t1;
	int ret;

	memset(g, 0, sizeof(*g));
	ret = make_operand(GEMM_M, GEMM_K, GEMM_SPARSITY, 11, &g->a, &g->a_len) ?:
	      make_operand(GEMM_N, GEMM_K, 0.0, 12, &g->b, &g->b_len);
	if (ret)
		return ret;
	g->y_cpu = malloc(ybytes);
	if (!g->y_cpu)
		return -ENOMEM;
	ret = bo_new(d, SPT_PAGE_SIZE, &g->cmd) ?: bo_new(d, SPT_PAGE_SIZE, &g->bo_ts) ?:
	      bo_new(d, g->a_len, &g->bo_a) ?: bo_new(d, g->b_len, &g->bo_b) ?:
	      bo_new(d, ybytes, &g->bo_y);
	if (ret)
		return ret;
	memcpy(g->bo_a.map, g->a, g->a_len);
	memcpy(g->bo_b.map, g->b, g->b_len);
	*len = 0;
	t0 = cmd_add(&g->cmd, len, SPT_OP_TIMESTAMP, sizeof(*t0));
	c = cmd_add(&g->cmd, len, SPT_OP_GEMM, sizeof(*c));
	t1 = cmd_add(&g->cmd, len, SPT_OP_TIMESTAMP, sizeof(*t1));
	t0->va = g->bo_ts.va;
	t1->va = g->bo_ts.va + 8;
	c->pass = SPT_PASS_FWD;
	c->a_va = g->bo_a.va;
	c->a_len = g->a_len;
	c->b_va = g->bo_b.va;
	c->b_len = g->b_len;
	c->y_va = g->bo_y.va;
	return 0;
}

static int cpu_gemm(const struct gemm_bufs *g, struct spt_counters *cnt)
{
	struct spt_gemm_out out;

	memset(&out, 0, sizeof(out));
	spt_encode_opts_init(&out.enc);
	out.y = g->y_cpu;
	return spt_gemm(SPT_PASS_FWD, g->a, g->a_len, g->b, g->b_len, NULL, &out, cnt);
}

static int bench_gemm(const struct dev *d, int jobs, struct gemm_result *r)
{
	double *rt = calloc((size_t)jobs, sizeof(double)), *dv = calloc((size_t)jobs, sizeof(double));
	double *cpu = calloc((size_t)jobs, sizeof(double)), t0;
	struct spt_energy_model model;
	uint64_t done0 = 0, failed0 = 0;
	struct gemm_bufs g;
	uint32_t len = 0;
	int i, ret = -ENOMEM;

	memset(&g, 0, sizeof(g));
	if (rt && dv && cpu)
		ret = gemm_setup(d, &g, &len) ?: dev_jobs(d, &done0, &failed0);
	for (i = -1; i < jobs && !ret; i++) {	/* one untimed pair first */
		const volatile uint64_t *ts = g.bo_ts.map;
		int at = i < 0 ? 0 : i;

		t0 = now_s();
		ret = job_submit(d, &g.cmd, len) ?: job_wait(d);
		rt[at] = now_s() - t0;
		dv[at] = (double)(ts[1] - ts[0]) * 1e-9;
		if (ret)
			break;
		t0 = now_s();
		ret = cpu_gemm(&g, &r->cnt);
		cpu[at] = now_s() - t0;
		if (ret) {
			ret = spt_err("bench device: spt_gemm: %s", spt_core_strerror(ret));
			goto out;
		}
	}
	if (ret) {
		ret = spt_err("bench device: gemm job: %s", strerror(-ret));
		goto out;
	}
	ret = jobs_ok(d, "gemm job", done0, failed0, (uint64_t)jobs + 1);
	if (!ret && memcmp(g.bo_y.map, g.y_cpu, (size_t)GEMM_M * GEMM_N * sizeof(float)))
		ret = spt_err("bench device: the device's GEMM result differs from spt_gemm() "
			      "on this CPU");
	if (ret)
		goto out;
	r->jobs = jobs;
	r->rt50 = pct(rt, jobs, 50);
	r->rt99 = pct(rt, jobs, 99);
	r->dev50 = pct(dv, jobs, 50);
	r->dev99 = pct(dv, jobs, 99);
	r->cpu50 = pct(cpu, jobs, 50);
	r->cpu99 = pct(cpu, jobs, 99);
	spt_energy_model_init(&model);
	spt_model_apply(&model, &r->cnt);
out:
	gemm_bufs_free(d, &g);
	free(rt);
	free(dv);
	free(cpu);
	return ret;
}

/* ---- a training step: device backend against its busy time and the CPU --- */

struct train_result {
	int steps;
	bool fashion_mnist;		/* else synthetic images */
	double dev_step, dev_busy;	/* seconds per step: wall, device timestamps */
	double cpu_step;		/* seconds per step on the CPU backend */
	double sparsity;		/* mean interim sparsity of the device's timed steps */
	bool same_loss;			/* every step's loss equal on both backends */
};

struct trainer {
	struct spt_ctx *ctx;
	struct spt_model *model;
};

static void trainer_close(struct trainer *t)
{
	spt_model_free(t->model);
	spt_ctx_close(t->ctx);
}

static int trainer_open(enum spt_backend backend, const char *path, unsigned int steps,
			struct trainer *t)
{
	struct spt_ctx_opts co = { .backend = backend, .device_path = path };
	struct spt_train_opts o;
	int ret;

	memset(t, 0, sizeof(*t));
	spt_train_opts_init(&o, steps);
	o.batch = TRAIN_BATCH;
	o.ctl.warmup_steps = 0;		/* prune from the first step: the timed steps */
	o.ctl.ramp_steps = 0;		/* run at (or near) the target */
	ret = spt_ctx_open(&co, &t->ctx) ?: spt_model_create_preset(t->ctx, "mlp", &t->model) ?:
	      spt_model_finalize(t->model, &o) ?:
	      spt_model_set_target_sparsity(t->model, TRAIN_TARGET, SPT_PRUNE_DETERMINISTIC);
	if (ret)
		trainer_close(t);
	return ret;
}

/* The batch of step @s: Fashion-MNIST's samples in order, else synthetic. */
static int train_batch(const struct spt_dataset *ds, unsigned int s, float *x, uint8_t *lab)
{
	uint32_t idx[TRAIN_BATCH], i, n = 0;
	uint64_t seed = 0x5eed0000u + s;

	if (ds) {
		spt_dataset_shape(ds, &n, NULL, NULL, NULL);
		for (i = 0; i < TRAIN_BATCH; i++)
			idx[i] = (s * TRAIN_BATCH + i) % n;
		return spt_dataset_gather(ds, idx, TRAIN_BATCH, x, lab);
	}
	for (i = 0; i < TRAIN_BATCH * 784; i++)
		x[i] = (float)unit_rand(&seed);
	for (i = 0; i < TRAIN_BATCH; i++)
		lab[i] = (uint8_t)(unit_rand(&seed) * 10);
	return 0;
}

static int bench_train(const char *path, int steps, struct train_result *r)
{
	unsigned int total = TRAIN_WARMUP + (unsigned int)steps, s;
	float *x = malloc(TRAIN_BATCH * 784 * sizeof(*x));
	uint8_t lab[TRAIN_BATCH];
	struct spt_dataset *ds = NULL;
	struct trainer dev, cpu;
	int ret;

	if (!x)
		return spt_err("out of memory");
	if (spt_dataset_load_fashion_mnist(NULL, true, &ds))
		ds = NULL;
	r->fashion_mnist = ds != NULL;
	r->same_loss = true;
	ret = trainer_open(SPT_BACKEND_DEVICE, path, total, &dev);
	if (ret) {
		spt_err("bench device: device backend: %s", spt_strerror(ret));
		goto out_data;
	}
	ret = trainer_open(SPT_BACKEND_CPU, NULL, total, &cpu);
	if (ret) {
		spt_err("bench device: cpu backend: %s", spt_strerror(ret));
		goto out_dev;
	}
	for (s = 0; s < total && !ret; s++) {
		struct spt_step_stats sd, sc;
		double t0, t1, t2;

		ret = train_batch(ds, s, x, lab);
		if (ret) {
			spt_err("bench device: training data: %s", spt_strerror(ret));
			break;
		}
		t0 = now_s();
		ret = spt_model_train_step(dev.model, x, lab, TRAIN_BATCH, &sd);
		t1 = now_s();
		if (!ret)
			ret = spt_model_train_step(cpu.model, x, lab, TRAIN_BATCH, &sc);
		t2 = now_s();
		if (ret) {
			spt_err("bench device: training step %u: %s", s, spt_strerror(ret));
			break;
		}
		r->same_loss = r->same_loss && sd.loss == sc.loss;
		if (s < TRAIN_WARMUP)
			continue;
		r->dev_step += t1 - t0;
		r->cpu_step += t2 - t1;
		r->dev_busy += sd.device_seconds;
		r->sparsity += sd.interim_sparsity;
	}
	if (!ret && r->dev_busy <= 0) {
		spt_err("bench device: the device backend reported no device time");
		ret = 1;
	}
	r->steps = steps;
	r->dev_step /= steps;
	r->cpu_step /= steps;
	r->dev_busy /= steps;
	r->sparsity /= steps;
	trainer_close(&cpu);
out_dev:
	trainer_close(&dev);
out_data:
	spt_dataset_free(ds);
	free(x);
	return ret ? 1 : 0;
}

/* ---- output -------------------------------------------------------------- */

struct device_bench {
	char path[64];			/* the device node */
	char driver[32];
	bool quick;
	struct null_result n;
	struct gemm_result g;
	struct train_result t;
};

static void print_human(const struct device_bench *b)
{
	const struct null_result *n = &b->n;
	const struct gemm_result *g = &b->g;
	const struct train_result *t = &b->t;

	printf("spt bench device: %s (%s), this CPU's SIMD path %s\n\n", b->path, b->driver,
	       spt_core_isa_name(spt_core_get_isa()));
	printf("null job (one NOP), one queue, %d jobs:\n", n->jobs);
	printf("  round trip SUBMIT -> out-syncobj signalled  p50 %8.1f us  p99 %8.1f us\n",
	       n->p50 * 1e6, n->p99 * 1e6);
	printf("  pipelined                                   %8.0f jobs/s (%.2fx one at a time)\n\n",
	       n->pipelined_rate, n->pipelined_rate / n->serial_rate);
	printf("gemm: fwd M=%u N=%u K=%u, A %.0f%% i.i.d. zeros, B dense, FP32 output, operands\n"
	       "      pre-encoded; %d jobs of TIMESTAMP, GEMM, TIMESTAMP, each followed by the\n"
	       "      same spt_gemm() on this CPU; results bit-identical\n",
	       GEMM_M, GEMM_N, GEMM_K, GEMM_SPARSITY * 100, g->jobs);
	printf("                              p50 us     p99 us\n");
	printf("  job round trip          %10.1f %10.1f\n", g->rt50 * 1e6, g->rt99 * 1e6);
	printf("  device-side time        %10.1f %10.1f\n", g->dev50 * 1e6, g->dev99 * 1e6);
	printf("  spt_gemm() on this CPU  %10.1f %10.1f\n", g->cpu50 * 1e6, g->cpu99 * 1e6);
	printf("  round trip / device-side time        %6.2fx (p50)\n", g->rt50 / g->dev50);
	printf("  round trip / spt_gemm() on this CPU  %6.2fx (p50)\n", g->rt50 / g->cpu50);
	printf("  executed / dense MACs %.3f; modeled: %llu cycles, %.1f nJ\n\n",
	       (double)g->cnt.exec_macs / (double)g->cnt.dense_macs,
	       (unsigned long long)g->cnt.cycles, g->cnt.energy_pj * 1e-3);
	printf("train: MLP 784-512-256-10, batch %u, BFP8, interim sparsity target %.1f, %s;\n"
	       "       %d warm-up then %d timed steps, device and CPU backend alternating\n",
	       TRAIN_BATCH, TRAIN_TARGET, t->fashion_mnist ? "Fashion-MNIST" : "synthetic data",
	       TRAIN_WARMUP, t->steps);
	printf("                              ms/step\n");
	printf("  device backend step     %10.2f\n", t->dev_step * 1e3);
	printf("  device busy time        %10.2f  (device timestamps)\n", t->dev_busy * 1e3);
	printf("  CPU backend step        %10.2f\n", t->cpu_step * 1e3);
	printf("  device step / device busy time  %6.2fx\n", t->dev_step / t->dev_busy);
	printf("  device step / CPU step          %6.2fx\n", t->dev_step / t->cpu_step);
	printf("  interim sparsity %.3f; losses %s\n", t->sparsity,
	       t->same_loss ? "identical on both backends" : "DIFFER between the backends");
}

static void print_json(const struct device_bench *b)
{
	const struct null_result *n = &b->n;
	const struct gemm_result *g = &b->g;
	const struct train_result *t = &b->t;

	printf("{\"device\": \"%s\", \"driver\": \"%s\", \"isa\": \"%s\", \"quick\": %s, ",
	       b->path, b->driver, spt_core_isa_name(spt_core_get_isa()),
	       b->quick ? "true" : "false");
	printf("\"null_job\": {\"jobs\": %d, \"roundtrip_p50_us\": %.2f, \"roundtrip_p99_us\": %.2f, "
	       "\"serial_jobs_per_s\": %.1f, \"pipelined_jobs_per_s\": %.1f, "
	       "\"pipelined_vs_serial\": %.4f}, ",
	       n->jobs, n->p50 * 1e6, n->p99 * 1e6, n->serial_rate, n->pipelined_rate,
	       n->pipelined_rate / n->serial_rate);
	printf("\"gemm\": {\"pass\": \"fwd\", \"m\": %u, \"n\": %u, \"k\": %u, \"a_sparsity\": %.2f, "
	       "\"jobs\": %d, \"roundtrip_p50_us\": %.2f, \"roundtrip_p99_us\": %.2f, "
	       "\"device_p50_us\": %.2f, \"device_p99_us\": %.2f, \"cpu_p50_us\": %.2f, "
	       "\"cpu_p99_us\": %.2f, \"roundtrip_vs_device\": %.4f, \"roundtrip_vs_cpu\": %.4f, "
	       "\"identical_to_cpu\": true, \"dense_macs\": %llu, \"exec_macs\": %llu, "
	       "\"modeled\": {\"cycles\": %llu, \"energy_pj\": %.1f}}, ",
	       GEMM_M, GEMM_N, GEMM_K, GEMM_SPARSITY, g->jobs, g->rt50 * 1e6, g->rt99 * 1e6,
	       g->dev50 * 1e6, g->dev99 * 1e6, g->cpu50 * 1e6, g->cpu99 * 1e6,
	       g->rt50 / g->dev50, g->rt50 / g->cpu50, (unsigned long long)g->cnt.dense_macs,
	       (unsigned long long)g->cnt.exec_macs, (unsigned long long)g->cnt.cycles,
	       g->cnt.energy_pj);
	printf("\"train\": {\"model\": \"mlp\", \"batch\": %u, \"target_sparsity\": %.2f, "
	       "\"data\": \"%s\", \"warmup_steps\": %d, \"steps\": %d, \"device_step_ms\": %.3f, "
	       "\"device_busy_ms\": %.3f, \"cpu_step_ms\": %.3f, \"step_vs_device_busy\": %.4f, "
	       "\"device_vs_cpu\": %.4f, \"interim_sparsity\": %.4f, \"same_loss_as_cpu\": %s}}\n",
	       TRAIN_BATCH, TRAIN_TARGET, t->fashion_mnist ? "fashion-mnist" : "synthetic",
	       TRAIN_WARMUP, t->steps, t->dev_step * 1e3, t->dev_busy * 1e3, t->cpu_step * 1e3,
	       t->dev_step / t->dev_busy, t->dev_step / t->cpu_step, t->sparsity,
	       t->same_loss ? "true" : "false");
}

/* ---- the target ---------------------------------------------------------- */

/* The device libspt would use; exit status SPT_EXIT_NO_DEVICE if there is none. */
static int find_device(struct device_bench *b)
{
	struct spt_ctx_opts co = { .backend = SPT_BACKEND_DEVICE, .flags = SPT_CTX_QUERY_ONLY };
	struct spt_ctx_info info;
	struct spt_ctx *ctx;
	int ret = spt_ctx_open(&co, &ctx);

	if (ret == -SPT_ENODEVICE) {
		spt_err("bench device: no SPT device found (no /dev/accel/accel* node driven by "
			"'spt', or $SPT_DEVICE names none); run it where the device is, e.g. "
			"'make bench-guest'");
		return SPT_EXIT_NO_DEVICE;
	}
	if (ret)
		return spt_err("bench device: cannot use the device: %s", spt_strerror(ret));
	ret = spt_ctx_info(ctx, &info);
	spt_ctx_close(ctx);
	if (ret)
		return spt_err("bench device: cannot query the device: %s", spt_strerror(ret));
	snprintf(b->path, sizeof(b->path), "%s", info.device);
	snprintf(b->driver, sizeof(b->driver), "%s", info.driver);
	return 0;
}

int spt_bench_device(bool json, bool quick)
{
	struct device_bench *b = calloc(1, sizeof(*b));
	struct dev d;
	int ret;

	if (!b)
		return spt_err("out of memory");
	b->quick = quick;
	ret = find_device(b);
	if (ret)
		goto out;
	ret = dev_open(b->path, &d);
	if (ret) {
		ret = spt_err("bench device: cannot open %s: %s", b->path, strerror(-ret));
		goto out;
	}
	ret = bench_null(&d, quick ? NULL_JOBS_QUICK : NULL_JOBS, &b->n) ||
	      bench_gemm(&d, quick ? GEMM_JOBS_QUICK : GEMM_JOBS, &b->g);
	dev_close(&d);
	ret = ret || bench_train(b->path, quick ? TRAIN_STEPS_QUICK : TRAIN_STEPS, &b->t);
	if (!ret && json)
		print_json(b);
	else if (!ret)
		print_human(b);
out:
	free(b);
	return ret;
}
