// SPDX-License-Identifier: MIT
/*
 * The "spt" generic netlink family: GET returns the device counters, and
 * the "events" multicast group reports job completion, failures and MMU
 * faults.  Constants come from driver/spt_genl.h (docs/spt-genl.yaml).
 */
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "spt_test.h"
#include "../../driver/spt_genl.h"

static int fd, family;

struct counters {
	uint64_t v[SPT_A_MAX + 1];
	int got;
};

static int parse_msg(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[SPT_A_MAX + 1];
	struct counters *c = arg;
	int i;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, SPT_A_MAX, NULL))
		return NL_SKIP;
	c->got = gh->cmd;
	for (i = SPT_A_DEV; i <= SPT_A_MAX; i++) {
		if (!tb[i])
			continue;
		if (nla_len(tb[i]) == 8)
			c->v[i] = nla_get_u64(tb[i]);
		else if (nla_len(tb[i]) == 4)
			c->v[i] = nla_get_u32(tb[i]);
		else
			c->v[i] = 1;
	}
	return NL_OK;
}

static int get_counters(struct counters *c)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct nl_msg *msg;
	int r;

	memset(c, 0, sizeof(*c));
	if (!sk || genl_connect(sk))
		return -1;
	msg = nlmsg_alloc();
	genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, family, 0, 0, SPT_CMD_GET, SPT_GENL_VERSION);
	nla_put_u32(msg, SPT_A_DEV, spt_accel_index());
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, parse_msg, c);
	r = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (r >= 0)
		r = nl_recvmsgs_default(sk);
	nl_socket_free(sk);
	return r < 0 ? r : 0;
}

static bool get_counts_jobs(void)
{
	struct counters c0, c1;

	CHECK_ERR(get_counters(&c0), 0);
	CHECK(c0.got == SPT_CMD_GET, "reply cmd %d", c0.got);
	CHECK(c0.v[SPT_A_PCI], "no PCI address");
	CHECK_ERR(spt_run_fence_job(fd, 0), 0);
	CHECK_ERR(get_counters(&c1), 0);
	CHECK(c1.v[SPT_A_JOBS_SUBMITTED] == c0.v[SPT_A_JOBS_SUBMITTED] + 1, "submitted %llu -> %llu",
	      (unsigned long long)c0.v[SPT_A_JOBS_SUBMITTED],
	      (unsigned long long)c1.v[SPT_A_JOBS_SUBMITTED]);
	CHECK(c1.v[SPT_A_JOBS_DONE] == c0.v[SPT_A_JOBS_DONE] + 1, "done %llu -> %llu",
	      (unsigned long long)c0.v[SPT_A_JOBS_DONE], (unsigned long long)c1.v[SPT_A_JOBS_DONE]);
	return true;
}

static bool events_multicast(void)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct counters ev;
	int grp, seen_done = 0, seen_fault = 0, seen_failed = 0, i;

	CHECK(sk && !genl_connect(sk), "connect");
	grp = genl_ctrl_resolve_grp(sk, SPT_GENL_NAME, SPT_GENL_MCGRP_EVENTS);
	CHECK(grp >= 0, "no events group: %d", grp);
	nl_socket_disable_seq_check(sk);
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, parse_msg, &ev);
	CHECK(!nl_socket_add_membership(sk, grp), "add membership");
	nl_socket_set_nonblocking(sk);

	CHECK_ERR(spt_run_fence_job(fd, 0), 0);
	CHECK_ERR(spt_run_fence_job(fd, 0x6000000000ull), 0);
	for (i = 0; i < 200 && !(seen_done && seen_fault && seen_failed); i++) {
		memset(&ev, 0, sizeof(ev));
		if (nl_recvmsgs_default(sk) < 0) {
			usleep(10000);
			continue;
		}
		seen_done |= ev.got == SPT_CMD_JOB_DONE;
		seen_failed |= ev.got == SPT_CMD_JOB_FAILED && ev.v[SPT_A_ERRNO] == EFAULT;
		seen_fault |= ev.got == SPT_CMD_MMU_FAULT &&
			      ev.v[SPT_A_FAULT_VA] == 0x6000000000ull;
	}
	nl_socket_free(sk);
	CHECK(seen_done && seen_failed && seen_fault, "events: done %d failed %d fault %d",
	      seen_done, seen_failed, seen_fault);
	return true;
}

static const struct ktap_case cases[] = {
	{ "genl_get_counts_jobs", get_counts_jobs },
	{ "genl_events_done_failed_fault", events_multicast },
};

int main(void)
{
	struct nl_sock *sk;

	fd = spt_open();
	sk = nl_socket_alloc();
	if (fd < 0 || !sk || genl_connect(sk)) {
		printf("KTAP version 1\n1..0 # SKIP no device or netlink\n");
		return 1;
	}
	family = genl_ctrl_resolve(sk, SPT_GENL_NAME);
	nl_socket_free(sk);
	if (family < 0) {
		printf("KTAP version 1\n1..0 # SKIP family %s not registered\n", SPT_GENL_NAME);
		return 1;
	}
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
