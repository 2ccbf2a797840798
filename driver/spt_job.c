// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/dma-fence-chain.h>
#include <linux/dma-resv.h>
#include <linux/sched.h>
#include <drm/drm_drv.h>
#include <drm/drm_gem.h>
#include <drm/drm_managed.h>
#include <drm/drm_print.h>
#include <drm/drm_syncobj.h>
#include <drm/spt_accel.h>

#include "spt_drv.h"

struct spt_job {
	struct drm_sched_job base;
	struct kref ref;	/* the scheduler's and, while submitting, the ioctl's */
	struct spt_device *sdev;
	struct spt_file *sfile;
	struct drm_gem_object **bos;
	u32 bo_count;
	u32 ctx;
	u64 cmd_va;
	u32 cmd_len;
	u64 id;
	ktime_t hw_start;
	bool guilty;
};

struct spt_fence {
	struct dma_fence base;
	struct spt_hwq *hwq;
};

static inline struct spt_job *to_spt_job(struct drm_sched_job *job)
{
	return container_of(job, struct spt_job, base);
}

static inline struct spt_hwq *to_spt_hwq(struct drm_gpu_scheduler *sched)
{
	return container_of(sched, struct spt_hwq, sched);
}

static const char *spt_fence_get_driver_name(struct dma_fence *fence)
{
	return SPT_DRIVER_NAME;
}

static const char *spt_fence_get_timeline_name(struct dma_fence *fence)
{
	return container_of(fence, struct spt_fence, base)->hwq->name;
}

static const struct dma_fence_ops spt_fence_ops = {
	.get_driver_name = spt_fence_get_driver_name,
	.get_timeline_name = spt_fence_get_timeline_name,
};

static struct dma_fence *spt_fence_create(struct spt_hwq *hwq)
{
	struct spt_fence *fence;

	fence = kzalloc(sizeof(*fence), GFP_KERNEL);
	if (!fence)
		return NULL;

	fence->hwq = hwq;
	dma_fence_init(&fence->base, &spt_fence_ops, &hwq->fence_lock,
		       hwq->fence_context, ++hwq->fence_seqno);
	return &fence->base;
}

static int spt_cpl_error(const struct spt_job_cpl *cpl, const struct spt_job *job)
{
	if (spt_cpu64(cpl->job_id) != job->id)
		return -EIO;
	if (spt_cpu32(cpl->status) == SPT_JOB_OK)
		return 0;
	if (spt_cpu32(cpl->error_code) == SPT_ERR_MMU_FAULT)
		return -EFAULT;
	return -EIO;
}

static void spt_job_account(struct spt_job *job, const struct spt_job_cpl *cpl, int err)
{
	struct spt_counters *fc = &job->sfile->cnt, *dc = &job->sdev->cnt;
	u64 t0 = spt_cpu64(cpl->t_start_ns), t1 = spt_cpu64(cpl->t_end_ns);
	u64 cycles = spt_cpu64(cpl->cycles);

	if (!err) {
		atomic64_inc(&fc->done);
		atomic64_inc(&dc->done);
		atomic64_add(cycles, &fc->cycles);
		atomic64_add(cycles, &dc->cycles);
		if (t1 > t0) {
			atomic64_add(t1 - t0, &fc->busy_ns);
			atomic64_add(t1 - t0, &dc->busy_ns);
		}
		atomic64_add(spt_cpu64(cpl->dense_macs), &dc->dense_macs);
		atomic64_add(spt_cpu64(cpl->exec_macs), &dc->exec_macs);
		return;
	}

	atomic64_inc(&fc->failed);
	atomic64_inc(&dc->failed);
	if (err == -EFAULT) {
		atomic64_inc(&fc->faults);
		atomic64_inc(&dc->faults);
		atomic64_set(&job->sfile->last_fault_va, spt_cpu64(cpl->fault_va));
		spt_genl_event(job->sdev, SPT_EVENT_MMU_FAULT, job->ctx,
			       spt_cpu64(cpl->fault_va), spt_cpu16(cpl->fault_access));
	}
}

/* Called with hwq->lock held: the slot's job left the hardware. */
static void spt_slot_retire(struct spt_ring_slot *s, int err)
{
	struct spt_file *sfile = s->job->sfile;

	if (atomic_dec_and_test(&sfile->hw_inflight))
		wake_up_all(&sfile->hw_idle);
	if (err)
		dma_fence_set_error(s->fence, err);
	dma_fence_signal(s->fence);
	dma_fence_put(s->fence);
	s->fence = NULL;
	s->job = NULL;
}

/* Retires the jobs the device has completed; any context. */
void spt_hwq_process(struct spt_hwq *hwq)
{
	struct spt_device *sdev = hwq->sdev;
	unsigned long flags;
	u32 head;

	spin_lock_irqsave(&hwq->lock, flags);
	head = spt_rd(sdev, SPT_REG_QUEUE(hwq->id) + SPT_QREG_HEAD);
	if (head - hwq->head > hwq->tail - hwq->head) {
		spin_unlock_irqrestore(&hwq->lock, flags);
		dev_warn_ratelimited(sdev->drm.dev, "%s: bogus HEAD %u (head %u tail %u)\n",
				     hwq->name, head, hwq->head, hwq->tail);
		return;
	}
	dma_rmb();

	while (hwq->head != head) {
		u32 slot = hwq->head & (hwq->size - 1);
		struct spt_ring_slot *s = &hwq->slots[slot];
		const struct spt_job_cpl *cpl = &hwq->cpl[slot];
		int err;

		hwq->head++;
		if (!s->fence)
			continue;

		err = spt_cpl_error(cpl, s->job);
		spt_job_account(s->job, cpl, err);
		spt_genl_event(sdev, err ? SPT_EVENT_JOB_FAILED : SPT_EVENT_JOB_DONE,
			       s->job->ctx, s->job->id, -err);
		spt_dbg(sdev, JOB, "%s: job %llu done, err %d\n", hwq->name, s->job->id, err);
		spt_slot_retire(s, err);
	}
	spin_unlock_irqrestore(&hwq->lock, flags);
}

static struct dma_fence *spt_job_run(struct drm_sched_job *sched_job)
{
	struct spt_job *job = to_spt_job(sched_job);
	struct spt_hwq *hwq = to_spt_hwq(sched_job->sched);
	struct spt_device *sdev = hwq->sdev;
	struct spt_job_desc *desc;
	struct dma_fence *fence;
	unsigned long flags;
	u32 slot;
	int idx;

	if (unlikely(sched_job->s_fence->finished.error))
		return NULL;

	fence = spt_fence_create(hwq);
	if (!fence)
		return ERR_PTR(-ENOMEM);

	if (job->guilty) {
		dma_fence_set_error(fence, -ETIMEDOUT);
		dma_fence_signal(fence);
		return fence;
	}

	if (!drm_dev_enter(&sdev->drm, &idx)) {
		dma_fence_set_error(fence, -ECANCELED);
		dma_fence_signal(fence);
		return fence;
	}

	spin_lock_irqsave(&hwq->lock, flags);
	slot = hwq->tail & (hwq->size - 1);
	desc = &hwq->ring[slot];
	desc->ctx = spt_le32(job->ctx);
	desc->flags = 0;
	desc->cmd_va = spt_le64(job->cmd_va);
	desc->cmd_len = spt_le32(job->cmd_len);
	desc->pad0 = 0;
	desc->fence_va = 0;
	desc->fence_value = 0;
	desc->job_id = spt_le64(job->id);
	desc->reserved[0] = 0;
	desc->reserved[1] = 0;
	hwq->slots[slot].job = job;
	hwq->slots[slot].fence = dma_fence_get(fence);
	job->hw_start = ktime_get();
	atomic_inc(&job->sfile->hw_inflight);
	hwq->tail++;
	dma_wmb();
	writel(hwq->tail, hwq->doorbell);
	spin_unlock_irqrestore(&hwq->lock, flags);
	drm_dev_exit(idx);

	spt_dbg(sdev, JOB, "%s: job %llu ctx %u at slot %u\n", hwq->name, job->id, job->ctx, slot);
	return fence;
}

static bool spt_hwq_progress(struct spt_hwq *hwq)
{
	struct spt_device *sdev = hwq->sdev;
	u32 status = spt_rd(sdev, SPT_REG_STATUS);
	u32 qstatus = spt_rd(sdev, SPT_REG_QUEUE(hwq->id) + SPT_QREG_STATUS);
	u32 head = spt_rd(sdev, SPT_REG_QUEUE(hwq->id) + SPT_QREG_HEAD);

	if ((status & SPT_STATUS_HUNG) || (qstatus & SPT_QSTAT_STOPPED) ||
	    !(status & SPT_STATUS_READY))
		return false;

	if (head != hwq->progress_head) {
		hwq->progress_head = head;
		hwq->stalls = 0;
		return true;
	}
	/*
	 * Neither hung nor moving: a long job, or the device not yet picking up
	 * work (a loaded emulator); give it a bounded number of extensions.
	 */
	return ++hwq->stalls <= spt_job_max_stalls;
}

static enum drm_gpu_sched_stat spt_job_timedout(struct drm_sched_job *sched_job)
{
	struct spt_job *job = to_spt_job(sched_job);
	struct spt_hwq *hwq = to_spt_hwq(sched_job->sched);
	struct spt_device *sdev = hwq->sdev;
	struct dma_fence *done;
	bool progress;
	int idx;

	if (!drm_dev_enter(&sdev->drm, &idx))
		return DRM_GPU_SCHED_STAT_ENODEV;

	spt_hwq_process(hwq);
	done = sched_job->s_fence->parent ?: &sched_job->s_fence->finished;
	progress = dma_fence_is_signaled(done) || spt_hwq_progress(hwq);
	if (progress) {
		spin_lock(&sched_job->sched->job_list_lock);
		list_add(&sched_job->list, &sched_job->sched->pending_list);
		spin_unlock(&sched_job->sched->job_list_lock);
		drm_dev_exit(idx);
		return DRM_GPU_SCHED_STAT_NOMINAL;
	}

	drm_warn(&sdev->drm, "%s: job %llu of ctx %u timed out, device hung\n",
		 hwq->name, job->id, job->ctx);
	spt_device_reset(sdev, sched_job, true);
	drm_dev_exit(idx);
	return DRM_GPU_SCHED_STAT_NOMINAL;
}

static void spt_job_release(struct kref *ref)
{
	struct spt_job *job = container_of(ref, struct spt_job, ref);
	u32 i;

	for (i = 0; i < job->bo_count; i++)
		drm_gem_object_put(job->bos[i]);
	kvfree(job->bos);
	spt_file_put(job->sfile);
	kfree(job);
}

static void spt_job_put(struct spt_job *job)
{
	kref_put(&job->ref, spt_job_release);
}

static void spt_job_free(struct drm_sched_job *sched_job)
{
	drm_sched_job_cleanup(sched_job);
	spt_job_put(to_spt_job(sched_job));
}

static const struct drm_sched_backend_ops spt_sched_ops = {
	.run_job = spt_job_run,
	.timedout_job = spt_job_timedout,
	.free_job = spt_job_free,
};

/* Drops whatever the (already reset or removed) device had in its rings. */
static void spt_hwq_drop(struct spt_hwq *hwq, int error)
{
	unsigned long flags;
	u32 i;

	spin_lock_irqsave(&hwq->lock, flags);
	for (i = 0; i < hwq->size; i++) {
		struct spt_ring_slot *s = &hwq->slots[i];

		if (s->fence)
			spt_slot_retire(s, error);
	}
	hwq->head = 0;
	hwq->tail = 0;
	hwq->progress_head = 0;
	hwq->stalls = 0;
	spin_unlock_irqrestore(&hwq->lock, flags);
}

/*
 * The device runs one job at a time, taking the queues' heads round-robin:
 * of the jobs at the heads, the one written to its ring first has been
 * running longest.  Every queue with work times out once the device hangs,
 * so the job whose timer fired is not necessarily the one that hung.
 */
static struct spt_job *spt_device_find_guilty(struct spt_device *sdev)
{
	struct spt_job *guilty = NULL;
	unsigned long flags;
	u32 q;

	for (q = 0; q < sdev->nr_hwq; q++) {
		struct spt_hwq *hwq = &sdev->hwq[q];
		struct spt_job *job;

		spin_lock_irqsave(&hwq->lock, flags);
		job = hwq->head != hwq->tail ? hwq->slots[hwq->head & (hwq->size - 1)].job : NULL;
		if (job && (!guilty || ktime_before(job->hw_start, guilty->hw_start)))
			guilty = job;
		spin_unlock_irqrestore(&hwq->lock, flags);
	}
	return guilty;
}

/*
 * Whole-device reset: stop every scheduler, reset and reprogram the device,
 * give the guilty job (@hang) a -ETIMEDOUT fence and run the innocent jobs
 * again.  @bad is the job whose timeout handler runs (it is off its list).
 */
int spt_device_reset(struct spt_device *sdev, struct drm_sched_job *bad, bool hang)
{
	struct spt_job *guilty;
	u32 q;
	int ret;

	mutex_lock(&sdev->reset_lock);
	spt_irq_disable(sdev);
	for (q = 0; q < sdev->nr_hwq; q++)
		spt_hwq_process(&sdev->hwq[q]);

	guilty = hang ? spt_device_find_guilty(sdev) : NULL;
	if (guilty) {
		drm_warn(&sdev->drm, "job %llu of ctx %u hung, resetting\n",
			 guilty->id, guilty->ctx);
		guilty->guilty = true;
		atomic64_inc(&guilty->sfile->guilty);
		atomic64_inc(&guilty->sfile->cnt.timeouts);
		atomic64_inc(&sdev->cnt.timeouts);
	}
	for (q = 0; q < sdev->nr_hwq; q++)
		drm_sched_stop(&sdev->hwq[q].sched, bad && bad->sched == &sdev->hwq[q].sched ?
			       bad : NULL);

	ret = spt_device_reset_hw_locked(sdev);
	for (q = 0; q < sdev->nr_hwq; q++)
		spt_hwq_drop(&sdev->hwq[q], -ECANCELED);
	spt_irq_enable(sdev);
	atomic64_inc(&sdev->cnt.resets);

	for (q = 0; q < sdev->nr_hwq; q++)
		drm_sched_resubmit_jobs(&sdev->hwq[q].sched);
	for (q = 0; q < sdev->nr_hwq; q++)
		drm_sched_start(&sdev->hwq[q].sched);
	mutex_unlock(&sdev->reset_lock);

	spt_genl_event(sdev, SPT_EVENT_RESET, 0, atomic64_read(&sdev->cnt.resets), ret);
	if (ret)
		drm_err(&sdev->drm, "device reset failed: %d\n", ret);
	return ret;
}

void spt_job_cancel_all(struct spt_device *sdev, int error)
{
	u32 q;

	for (q = 0; q < sdev->nr_hwq; q++)
		spt_hwq_drop(&sdev->hwq[q], error);
}

void spt_hwq_hw_init(struct spt_hwq *hwq)
{
	struct spt_device *sdev = hwq->sdev;
	u32 base = SPT_REG_QUEUE(hwq->id);

	spt_wr(sdev, base + SPT_QREG_CONTROL, 0);
	spt_wr64(sdev, base + SPT_QREG_RING_BASE_LO, hwq->ring_dma);
	spt_wr64(sdev, base + SPT_QREG_CPL_BASE_LO, hwq->cpl_dma);
	spt_wr(sdev, base + SPT_QREG_RING_SIZE, hwq->size);
	spt_wr(sdev, base + SPT_QREG_CONTROL, SPT_QCTRL_ENABLE);
}

static int spt_hwq_init(struct spt_device *sdev, u32 id)
{
	struct spt_hwq *hwq = &sdev->hwq[id];
	struct device *dev = sdev->drm.dev;
	int ret;

	hwq->sdev = sdev;
	hwq->id = id;
	hwq->size = spt_ring_entries;
	snprintf(hwq->name, sizeof(hwq->name), "spt-q%u", id);
	spin_lock_init(&hwq->lock);
	spin_lock_init(&hwq->fence_lock);
	hwq->fence_context = dma_fence_context_alloc(1);
	hwq->doorbell = sdev->doorbells + id * SPT_DOORBELL_STRIDE;

	hwq->ring = dma_alloc_coherent(dev, hwq->size * sizeof(*hwq->ring),
				       &hwq->ring_dma, GFP_KERNEL);
	hwq->cpl = dma_alloc_coherent(dev, hwq->size * sizeof(*hwq->cpl),
				      &hwq->cpl_dma, GFP_KERNEL);
	hwq->slots = kcalloc(hwq->size, sizeof(*hwq->slots), GFP_KERNEL);
	if (!hwq->ring || !hwq->cpl || !hwq->slots)
		return -ENOMEM;

	ret = drm_sched_init(&hwq->sched, &spt_sched_ops, NULL,
			     DRM_SCHED_PRIORITY_COUNT, hwq->size, INT_MAX,
			     msecs_to_jiffies(spt_job_timeout_ms), sdev->reset_wq,
			     NULL, hwq->name, dev);
	if (ret)
		return ret;

	hwq->sched_ready = true;
	sdev->scheds[id] = &hwq->sched;
	return 0;
}

static void spt_hwq_fini(struct spt_hwq *hwq)
{
	struct device *dev = hwq->sdev->drm.dev;

	if (hwq->sched_ready)
		drm_sched_fini(&hwq->sched);
	hwq->sched_ready = false;
	kfree(hwq->slots);
	if (hwq->cpl)
		dma_free_coherent(dev, hwq->size * sizeof(*hwq->cpl), hwq->cpl, hwq->cpl_dma);
	if (hwq->ring)
		dma_free_coherent(dev, hwq->size * sizeof(*hwq->ring), hwq->ring, hwq->ring_dma);
	hwq->slots = NULL;
	hwq->cpl = NULL;
	hwq->ring = NULL;
}

static void spt_job_fini_action(struct drm_device *drm, void *arg)
{
	spt_job_fini(arg);
}

int spt_job_init(struct spt_device *sdev)
{
	int ret;
	u32 q;

	sdev->reset_wq = alloc_ordered_workqueue("spt-reset", 0);
	if (!sdev->reset_wq)
		return -ENOMEM;

	ret = drmm_add_action_or_reset(&sdev->drm, spt_job_fini_action, sdev);
	if (ret)
		return ret;

	for (q = 0; q < sdev->nr_hwq; q++) {
		ret = spt_hwq_init(sdev, q);
		if (ret)
			return ret;
	}
	return 0;
}

void spt_job_fini(struct spt_device *sdev)
{
	u32 q;

	for (q = 0; q < sdev->nr_hwq; q++)
		if (sdev->hwq[q].sdev)
			spt_hwq_fini(&sdev->hwq[q]);
	if (sdev->reset_wq)
		destroy_workqueue(sdev->reset_wq);
	sdev->reset_wq = NULL;
}

/* ---- user queues --------------------------------------------------------- */

static void spt_queue_release(struct kref *ref)
{
	struct spt_queue *queue = container_of(ref, struct spt_queue, ref);

	drm_sched_entity_destroy(&queue->entity);
	dma_fence_put(queue->last_fence);
	mutex_destroy(&queue->lock);
	kfree(queue);
}

static void spt_queue_put(struct spt_queue *queue)
{
	kref_put(&queue->ref, spt_queue_release);
}

static struct spt_queue *spt_queue_get(struct spt_file *sfile, u32 id)
{
	struct spt_queue *queue;

	xa_lock(&sfile->queues);
	queue = xa_load(&sfile->queues, id);
	if (queue)
		kref_get(&queue->ref);
	xa_unlock(&sfile->queues);
	return queue;
}

int spt_ioctl_queue_create(struct drm_device *dev, void *data, struct drm_file *file)
{
	static const enum drm_sched_priority prio[] = {
		[DRM_SPT_QUEUE_PRIORITY_LOW] = DRM_SCHED_PRIORITY_LOW,
		[DRM_SPT_QUEUE_PRIORITY_NORMAL] = DRM_SCHED_PRIORITY_NORMAL,
		[DRM_SPT_QUEUE_PRIORITY_HIGH] = DRM_SCHED_PRIORITY_HIGH,
	};
	struct spt_device *sdev = to_spt_device(dev);
	struct spt_file *sfile = file->driver_priv;
	struct drm_spt_queue_create *args = data;
	struct spt_queue *queue;
	int ret;

	if (args->flags || args->pad || args->priority >= ARRAY_SIZE(prio))
		return -EINVAL;
	if (args->priority == DRM_SPT_QUEUE_PRIORITY_HIGH && !capable(CAP_SYS_NICE))
		return -EPERM;

	queue = kzalloc(sizeof(*queue), GFP_KERNEL);
	if (!queue)
		return -ENOMEM;

	kref_init(&queue->ref);
	mutex_init(&queue->lock);
	queue->sfile = sfile;
	ret = drm_sched_entity_init(&queue->entity, prio[args->priority],
				    sdev->scheds, sdev->nr_hwq, NULL);
	if (ret)
		goto err_free;

	ret = xa_alloc(&sfile->queues, &queue->id, queue,
		       XA_LIMIT(1, SPT_MAX_QUEUES_PER_FILE), GFP_KERNEL);
	if (ret) {
		ret = ret == -EBUSY ? -ENOSPC : ret;
		goto err_entity;
	}

	args->queue_id = queue->id;
	return 0;

err_entity:
	drm_sched_entity_destroy(&queue->entity);
err_free:
	mutex_destroy(&queue->lock);
	kfree(queue);
	return ret;
}

int spt_ioctl_queue_destroy(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct spt_file *sfile = file->driver_priv;
	struct drm_spt_queue_destroy *args = data;
	struct spt_queue *queue;

	if (args->pad)
		return -EINVAL;

	queue = xa_erase(&sfile->queues, args->queue_id);
	if (!queue)
		return -ENOENT;

	spt_queue_put(queue);
	return 0;
}

void spt_queues_destroy(struct spt_file *sfile)
{
	struct spt_queue *queue;
	unsigned long id;

	xa_for_each(&sfile->queues, id, queue) {
		xa_erase(&sfile->queues, id);
		spt_queue_put(queue);
	}
}

/* Waits until no job of @sfile is in a hardware ring; 0 on timeout. */
long spt_file_wait_hw_idle(struct spt_file *sfile, long timeout)
{
	smp_mb();	/* PTE updates before the in-flight check */
	return wait_event_timeout(sfile->hw_idle, !atomic_read(&sfile->hw_inflight),
				  timeout);
}

/* ---- submission ---------------------------------------------------------- */

static int spt_job_add_bo(struct spt_job *job, struct drm_gem_object *obj)
{
	u32 i;

	for (i = 0; i < job->bo_count; i++) {
		if (job->bos[i] == obj) {
			drm_gem_object_put(obj);
			return -EINVAL;
		}
	}
	job->bos[job->bo_count++] = obj;
	return 0;
}

static int spt_job_lookup_bos(struct spt_job *job, struct drm_file *file,
			      struct drm_spt_submit *args, unsigned long *write_mask)
{
	struct drm_spt_bo_ref *refs;
	struct drm_gem_object *obj;
	u32 i;
	int ret = 0;

	job->bos = kvcalloc(args->bo_count + 1, sizeof(*job->bos), GFP_KERNEL);
	if (!job->bos)
		return -ENOMEM;

	obj = drm_gem_object_lookup(file, args->cmd_handle);
	if (!obj)
		return -ENOENT;
	job->bos[job->bo_count++] = obj;

	if (!args->bo_count)
		return 0;

	refs = kvmalloc_array(args->bo_count, sizeof(*refs), GFP_KERNEL);
	if (!refs)
		return -ENOMEM;
	if (copy_from_user(refs, u64_to_user_ptr(args->bos), args->bo_count * sizeof(*refs))) {
		ret = -EFAULT;
		goto out_free;
	}

	for (i = 0; i < args->bo_count; i++) {
		if (!refs[i].flags || (refs[i].flags & ~DRM_SPT_BO_REF_FLAGS)) {
			ret = -EINVAL;
			goto out_free;
		}
		obj = drm_gem_object_lookup(file, refs[i].handle);
		if (!obj) {
			ret = -ENOENT;
			goto out_free;
		}
		if (obj == job->bos[0]) {
			/* the command BO: already listed as a read */
			drm_gem_object_put(obj);
			if (refs[i].flags & DRM_SPT_BO_REF_WRITE)
				__set_bit(0, write_mask);
			continue;
		}
		if (refs[i].flags & DRM_SPT_BO_REF_WRITE)
			__set_bit(job->bo_count, write_mask);
		ret = spt_job_add_bo(job, obj);
		if (ret)
			goto out_free;
	}
out_free:
	kvfree(refs);
	return ret;
}

static int spt_job_add_in_syncs(struct spt_job *job, struct drm_file *file,
				struct drm_spt_submit *args)
{
	struct drm_spt_sync *syncs;
	struct dma_fence *fence;
	u32 i;
	int ret = 0;

	if (!args->in_sync_count)
		return 0;

	syncs = kvmalloc_array(args->in_sync_count, sizeof(*syncs), GFP_KERNEL);
	if (!syncs)
		return -ENOMEM;
	if (copy_from_user(syncs, u64_to_user_ptr(args->in_syncs),
			   args->in_sync_count * sizeof(*syncs))) {
		ret = -EFAULT;
		goto out_free;
	}

	for (i = 0; i < args->in_sync_count; i++) {
		if (syncs[i].flags) {
			ret = -EINVAL;
			goto out_free;
		}
		ret = drm_syncobj_find_fence(file, syncs[i].handle, syncs[i].point, 0, &fence);
		if (ret)
			goto out_free;
		ret = drm_sched_job_add_dependency(&job->base, fence);
		if (ret)
			goto out_free;
	}
out_free:
	kvfree(syncs);
	return ret;
}

static int spt_submit_check(struct spt_device *sdev, struct drm_spt_submit *args)
{
	if (args->flags || args->pad)
		return -EINVAL;
	if (!IS_ALIGNED(args->cmd_offset, 8) || !IS_ALIGNED(args->cmd_size, 8) ||
	    args->cmd_size < 8 || args->cmd_size > sdev->cmd_max)
		return -EINVAL;
	if (args->bo_count > SPT_MAX_BO_REFS || args->in_sync_count > SPT_MAX_IN_SYNCS)
		return -EINVAL;
	if (args->out_point && !args->out_sync)
		return -EINVAL;
	return 0;
}

static int spt_job_push(struct spt_job *job, struct spt_queue *queue,
			const unsigned long *write_mask, struct dma_fence **done,
			u64 *seqno)
{
	struct ww_acquire_ctx ctx;
	u32 i;
	int ret;

	ret = drm_gem_lock_reservations(job->bos, job->bo_count, &ctx);
	if (ret)
		return ret;

	for (i = 0; i < job->bo_count; i++) {
		ret = dma_resv_reserve_fences(job->bos[i]->resv, 1);
		if (ret)
			goto out_unlock;
		ret = drm_sched_job_add_implicit_dependencies(&job->base, job->bos[i],
							      test_bit(i, write_mask));
		if (ret)
			goto out_unlock;
	}

	mutex_lock(&queue->lock);
	drm_sched_job_arm(&job->base);
	*done = dma_fence_get(&job->base.s_fence->finished);
	dma_fence_put(queue->last_fence);
	queue->last_fence = dma_fence_get(*done);
	*seqno = ++queue->seqno;
	for (i = 0; i < job->bo_count; i++)
		dma_resv_add_fence(job->bos[i]->resv, *done,
				   test_bit(i, write_mask) ? DMA_RESV_USAGE_WRITE :
				   DMA_RESV_USAGE_READ);
	atomic64_inc(&job->sdev->cnt.submitted);
	drm_sched_entity_push_job(&job->base);
	mutex_unlock(&queue->lock);
out_unlock:
	drm_gem_unlock_reservations(job->bos, job->bo_count, &ctx);
	return ret;
}

static int spt_job_setup(struct spt_job *job, struct drm_file *file,
			 struct drm_spt_submit *args, unsigned long *write_mask)
{
	struct drm_gem_object *cmd;
	u64 va;
	int ret;

	ret = spt_job_lookup_bos(job, file, args, write_mask);
	if (ret)
		return ret;

	cmd = job->bos[0];
	if (args->cmd_offset > cmd->size || args->cmd_size > cmd->size - args->cmd_offset)
		return -EINVAL;

	ret = spt_bo_va(cmd, job->sfile, &va);
	if (ret)
		return ret;
	job->cmd_va = va + args->cmd_offset;
	job->cmd_len = args->cmd_size;

	return spt_job_add_in_syncs(job, file, args);
}

int spt_ioctl_submit(struct drm_device *dev, void *data, struct drm_file *file)
{
	struct spt_device *sdev = to_spt_device(dev);
	struct spt_file *sfile = file->driver_priv;
	struct drm_spt_submit *args = data;
	struct dma_fence_chain *chain = NULL;
	struct drm_syncobj *out_sync = NULL;
	unsigned long *write_mask;
	struct dma_fence *done = NULL;
	struct spt_queue *queue;
	struct spt_job *job;
	int ret;

	ret = spt_submit_check(sdev, args);
	if (ret)
		return ret;
	if (!sfile->vm.enabled)
		return -ECANCELED;

	queue = spt_queue_get(sfile, args->queue_id);
	if (!queue)
		return -ENOENT;

	if (args->out_sync) {
		out_sync = drm_syncobj_find(file, args->out_sync);
		if (!out_sync) {
			ret = -ENOENT;
			goto out_queue;
		}
		if (args->out_point) {
			chain = dma_fence_chain_alloc();
			if (!chain) {
				ret = -ENOMEM;
				goto out_sync;
			}
		}
	}

	write_mask = bitmap_zalloc(args->bo_count + 1, GFP_KERNEL);
	if (!write_mask) {
		ret = -ENOMEM;
		goto out_free;
	}
	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job) {
		ret = -ENOMEM;
		goto out_free;
	}

	kref_init(&job->ref);
	job->sdev = sdev;
	job->sfile = sfile;
	kref_get(&sfile->ref);
	job->ctx = sfile->vm.ctx;
	job->id = atomic64_inc_return(&sdev->job_id);
	ret = drm_sched_job_init(&job->base, &queue->entity, 1, sfile);
	if (ret) {
		spt_file_put(sfile);
		kfree(job);
		job = NULL;
		goto out_free;
	}

	ret = spt_job_setup(job, file, args, write_mask);
	if (!ret) {
		/* once pushed, the job may finish and be freed by the scheduler */
		kref_get(&job->ref);
		ret = spt_job_push(job, queue, write_mask, &done, &args->seqno);
		spt_job_put(job);
	}
	if (ret) {
		spt_job_free(&job->base);
		goto out_free;
	}

	if (chain) {
		drm_syncobj_add_point(out_sync, chain, done, args->out_point);
		chain = NULL;
	} else if (out_sync) {
		drm_syncobj_replace_fence(out_sync, done);
	}
	dma_fence_put(done);
out_free:
	bitmap_free(write_mask);
	dma_fence_chain_free(chain);
out_sync:
	if (out_sync)
		drm_syncobj_put(out_sync);
out_queue:
	spt_queue_put(queue);
	return ret;
}
