// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/device.h>
#include <linux/sysfs.h>

#include "spt_drv.h"

static struct spt_device *spt_sysfs_sdev(struct device *dev)
{
	return pci_get_drvdata(to_pci_dev(dev));
}

#define SPT_ATTR_CNT(name, field)					\
static ssize_t name##_show(struct device *dev,				\
			   struct device_attribute *attr, char *buf)	\
{									\
	return sysfs_emit(buf, "%llu\n",				\
			  (u64)atomic64_read(&spt_sysfs_sdev(dev)->cnt.field)); \
}									\
static DEVICE_ATTR_RO(name)

static ssize_t hw_version_show(struct device *dev, struct device_attribute *attr,
			       char *buf)
{
	u32 v = spt_sysfs_sdev(dev)->hw_version;

	return sysfs_emit(buf, "%u.%u\n", v >> 16, v & 0xffff);
}
static DEVICE_ATTR_RO(hw_version);

static ssize_t caps_show(struct device *dev, struct device_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%#x\n", spt_sysfs_sdev(dev)->caps);
}
static DEVICE_ATTR_RO(caps);

static ssize_t num_queues_show(struct device *dev, struct device_attribute *attr,
			       char *buf)
{
	return sysfs_emit(buf, "%u\n", spt_sysfs_sdev(dev)->nr_hwq);
}
static DEVICE_ATTR_RO(num_queues);

static ssize_t num_contexts_show(struct device *dev, struct device_attribute *attr,
				 char *buf)
{
	return sysfs_emit(buf, "%u\n", spt_sysfs_sdev(dev)->num_contexts);
}
static DEVICE_ATTR_RO(num_contexts);

static ssize_t mac_array_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%u\n", spt_sysfs_sdev(dev)->mac_array);
}
static DEVICE_ATTR_RO(mac_array);

static ssize_t clock_mhz_show(struct device *dev, struct device_attribute *attr,
			      char *buf)
{
	return sysfs_emit(buf, "%u\n", spt_sysfs_sdev(dev)->clock_mhz);
}
static DEVICE_ATTR_RO(clock_mhz);
SPT_ATTR_CNT(jobs_submitted, submitted);
SPT_ATTR_CNT(jobs_done, done);
SPT_ATTR_CNT(jobs_failed, failed);
SPT_ATTR_CNT(mmu_faults, faults);
SPT_ATTR_CNT(job_timeouts, timeouts);
SPT_ATTR_CNT(reset_count, resets);
SPT_ATTR_CNT(busy_ns, busy_ns);

static struct attribute *spt_attrs[] = {
	&dev_attr_hw_version.attr,
	&dev_attr_caps.attr,
	&dev_attr_num_queues.attr,
	&dev_attr_num_contexts.attr,
	&dev_attr_mac_array.attr,
	&dev_attr_clock_mhz.attr,
	&dev_attr_jobs_submitted.attr,
	&dev_attr_jobs_done.attr,
	&dev_attr_jobs_failed.attr,
	&dev_attr_mmu_faults.attr,
	&dev_attr_job_timeouts.attr,
	&dev_attr_reset_count.attr,
	&dev_attr_busy_ns.attr,
	NULL,
};

static const struct attribute_group spt_attr_group = {
	.name = "spt",
	.attrs = spt_attrs,
};

int spt_sysfs_init(struct spt_device *sdev)
{
	return sysfs_create_group(&sdev->pdev->dev.kobj, &spt_attr_group);
}

void spt_sysfs_fini(struct spt_device *sdev)
{
	sysfs_remove_group(&sdev->pdev->dev.kobj, &spt_attr_group);
}
