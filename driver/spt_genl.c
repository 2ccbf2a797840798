// SPDX-License-Identifier: GPL-2.0-only
/*
 * Copyright (C) 2026 The SPT authors
 */

#include <linux/list.h>
#include <linux/mutex.h>
#include <net/genetlink.h>
#include <drm/drm_file.h>

#include "spt_drv.h"
#include "spt_genl.h"

static LIST_HEAD(spt_genl_devices);
static DEFINE_MUTEX(spt_genl_lock);

static const struct nla_policy spt_genl_policy[SPT_A_MAX + 1] = {
	[SPT_A_DEV] = { .type = NLA_U32 },
};

static int spt_genl_put_u64(struct sk_buff *msg, int attr, atomic64_t *v)
{
	return nla_put_u64_64bit(msg, attr, atomic64_read(v), SPT_A_PAD);
}

static int spt_genl_fill(struct sk_buff *msg, struct spt_device *sdev)
{
	struct spt_counters *c = &sdev->cnt;

	if (nla_put_u32(msg, SPT_A_DEV, sdev->drm.accel->index) ||
	    nla_put_string(msg, SPT_A_PCI, pci_name(sdev->pdev)) ||
	    spt_genl_put_u64(msg, SPT_A_JOBS_SUBMITTED, &c->submitted) ||
	    spt_genl_put_u64(msg, SPT_A_JOBS_DONE, &c->done) ||
	    spt_genl_put_u64(msg, SPT_A_JOBS_FAILED, &c->failed) ||
	    spt_genl_put_u64(msg, SPT_A_MMU_FAULTS, &c->faults) ||
	    spt_genl_put_u64(msg, SPT_A_TIMEOUTS, &c->timeouts) ||
	    spt_genl_put_u64(msg, SPT_A_RESETS, &c->resets) ||
	    spt_genl_put_u64(msg, SPT_A_BUSY_NS, &c->busy_ns) ||
	    spt_genl_put_u64(msg, SPT_A_CYCLES, &c->cycles) ||
	    spt_genl_put_u64(msg, SPT_A_DENSE_MACS, &c->dense_macs) ||
	    spt_genl_put_u64(msg, SPT_A_EXEC_MACS, &c->exec_macs))
		return -EMSGSIZE;
	return 0;
}

static struct genl_family spt_genl_family;

static int spt_genl_get(struct sk_buff *skb, struct genl_info *info)
{
	struct spt_device *sdev = NULL, *it;
	struct sk_buff *msg;
	void *hdr;
	int ret;

	mutex_lock(&spt_genl_lock);
	list_for_each_entry(it, &spt_genl_devices, genl_link) {
		if (!info->attrs[SPT_A_DEV] ||
		    nla_get_u32(info->attrs[SPT_A_DEV]) == it->drm.accel->index) {
			sdev = it;
			break;
		}
	}
	if (!sdev) {
		ret = -ENODEV;
		goto out_unlock;
	}

	msg = genlmsg_new(NLMSG_DEFAULT_SIZE, GFP_KERNEL);
	if (!msg) {
		ret = -ENOMEM;
		goto out_unlock;
	}
	hdr = genlmsg_put_reply(msg, info, &spt_genl_family, 0, SPT_CMD_GET);
	if (!hdr || spt_genl_fill(msg, sdev)) {
		nlmsg_free(msg);
		ret = -EMSGSIZE;
		goto out_unlock;
	}
	genlmsg_end(msg, hdr);
	mutex_unlock(&spt_genl_lock);
	return genlmsg_reply(msg, info);

out_unlock:
	mutex_unlock(&spt_genl_lock);
	return ret;
}

static const struct genl_small_ops spt_genl_ops[] = {
	{
		.cmd = SPT_CMD_GET,
		.validate = GENL_DONT_VALIDATE_STRICT | GENL_DONT_VALIDATE_DUMP,
		.doit = spt_genl_get,
	},
};

static const struct genl_multicast_group spt_genl_mcgrps[] = {
	{ .name = SPT_GENL_MCGRP_EVENTS, },
};

static struct genl_family spt_genl_family __ro_after_init = {
	.name = SPT_GENL_NAME,
	.version = SPT_GENL_VERSION,
	.maxattr = SPT_A_MAX,
	.policy = spt_genl_policy,
	.module = THIS_MODULE,
	.small_ops = spt_genl_ops,
	.n_small_ops = ARRAY_SIZE(spt_genl_ops),
	.resv_start_op = SPT_CMD_GET + 1,
	.mcgrps = spt_genl_mcgrps,
	.n_mcgrps = ARRAY_SIZE(spt_genl_mcgrps),
};

/* May run in interrupt context: atomic allocation, drops events on failure. */
void spt_genl_event(struct spt_device *sdev, enum spt_genl_event ev,
		    u32 ctx, u64 arg0, u64 arg1)
{
	static const u8 cmds[] = {
		[SPT_EVENT_JOB_DONE] = SPT_CMD_JOB_DONE,
		[SPT_EVENT_JOB_FAILED] = SPT_CMD_JOB_FAILED,
		[SPT_EVENT_MMU_FAULT] = SPT_CMD_MMU_FAULT,
		[SPT_EVENT_RESET] = SPT_CMD_RESET,
	};
	struct sk_buff *msg;
	void *hdr;
	int ret;

	if (!genl_has_listeners(&spt_genl_family, &init_net, 0))
		return;

	msg = genlmsg_new(NLMSG_GOODSIZE, GFP_ATOMIC);
	if (!msg)
		return;
	hdr = genlmsg_put(msg, 0, 0, &spt_genl_family, 0, cmds[ev]);
	if (!hdr)
		goto err_free;

	ret = nla_put_u32(msg, SPT_A_DEV, sdev->drm.accel->index);
	switch (ev) {
	case SPT_EVENT_JOB_DONE:
	case SPT_EVENT_JOB_FAILED:
		ret = ret ?: nla_put_u32(msg, SPT_A_CTX, ctx);
		ret = ret ?: nla_put_u64_64bit(msg, SPT_A_JOB, arg0, SPT_A_PAD);
		if (ev == SPT_EVENT_JOB_FAILED)
			ret = ret ?: nla_put_u32(msg, SPT_A_ERRNO, arg1);
		break;
	case SPT_EVENT_MMU_FAULT:
		ret = ret ?: nla_put_u32(msg, SPT_A_CTX, ctx);
		ret = ret ?: nla_put_u64_64bit(msg, SPT_A_FAULT_VA, arg0, SPT_A_PAD);
		ret = ret ?: nla_put_u32(msg, SPT_A_FAULT_ACCESS, arg1);
		break;
	case SPT_EVENT_RESET:
		ret = ret ?: nla_put_u64_64bit(msg, SPT_A_RESETS, arg0, SPT_A_PAD);
		ret = ret ?: nla_put_u32(msg, SPT_A_ERRNO, -(s32)arg1);
		break;
	}
	if (ret)
		goto err_free;

	genlmsg_end(msg, hdr);
	genlmsg_multicast(&spt_genl_family, msg, 0, 0, GFP_ATOMIC);
	return;

err_free:
	nlmsg_free(msg);
}

void spt_genl_add_device(struct spt_device *sdev)
{
	mutex_lock(&spt_genl_lock);
	list_add_tail(&sdev->genl_link, &spt_genl_devices);
	mutex_unlock(&spt_genl_lock);
}

void spt_genl_remove_device(struct spt_device *sdev)
{
	mutex_lock(&spt_genl_lock);
	list_del_init(&sdev->genl_link);
	mutex_unlock(&spt_genl_lock);
}

int spt_genl_init(void)
{
	return genl_register_family(&spt_genl_family);
}

void spt_genl_fini(void)
{
	genl_unregister_family(&spt_genl_family);
}
