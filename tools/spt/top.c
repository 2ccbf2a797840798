/* SPDX-License-Identifier: MIT */
/*
 * spt top: live device telemetry from the "spt" generic netlink family
 * (docs/spt-genl.yaml) and per-process usage from DRM fdinfo
 * (Documentation/gpu/drm-usage-stats.rst).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "../../driver/spt_genl.h"
#include "spt.h"

#define TOP_MAX_DEVS	16
#define TOP_MAX_PROCS	256
#define TOP_MAX_KEYS	24
#define TOP_MAX_CLIENTS	32
#define TOP_MAX_EVENTS	256
#define TOP_SHOW_EVENTS	8

/* Counters of the GET reply, in attribute order. */
static const struct {
	int attr;
	const char *name;
} top_counters[] = {
	{ SPT_A_JOBS_SUBMITTED, "jobs-submitted" },
	{ SPT_A_JOBS_DONE, "jobs-done" },
	{ SPT_A_JOBS_FAILED, "jobs-failed" },
	{ SPT_A_MMU_FAULTS, "mmu-faults" },
	{ SPT_A_TIMEOUTS, "timeouts" },
	{ SPT_A_RESETS, "resets" },
	{ SPT_A_BUSY_NS, "busy-ns" },
	{ SPT_A_CYCLES, "cycles" },
	{ SPT_A_DENSE_MACS, "dense-macs" },
	{ SPT_A_EXEC_MACS, "exec-macs" },
};
#define TOP_NCOUNTERS (sizeof(top_counters) / sizeof(top_counters[0]))

struct top_dev {
	uint32_t index;
	char pci[32];
	uint64_t v[SPT_A_MAX + 1];
};

struct top_kv {
	char key[48];
	uint64_t val;
};

struct top_proc {
	int pid;
	char comm[32];
	unsigned int clients;
	unsigned long long client_ids[TOP_MAX_CLIENTS];
	unsigned int nkv;
	struct top_kv kv[TOP_MAX_KEYS];
	uint64_t engine_ns;	/* sum of drm-engine-* */
};

struct top_sample {
	struct timespec t;
	unsigned int ndev, nproc;
	struct top_dev dev[TOP_MAX_DEVS];
	struct top_proc proc[TOP_MAX_PROCS];
};

struct top_event {
	int cmd;
	struct timespec t;
	uint64_t v[SPT_A_MAX + 1];
	bool has[SPT_A_MAX + 1];
};

struct top {
	double interval;
	unsigned long long iterations;
	bool json, events_only, screen;
	long dev_filter;
	struct nl_sock *req, *ev;
	int family;
	/* Events since the last refresh, and the latest ones for the screen. */
	struct top_event pending[TOP_MAX_EVENTS];
	unsigned int npending;
	unsigned long long counts[SPT_CMD_MAX + 1];	/* per refresh, uncapped */
	unsigned long long lost;	/* dropped by the kernel (socket full) */
	unsigned long long unlisted;	/* beyond TOP_MAX_EVENTS in one refresh */
	struct top_event recent[TOP_SHOW_EVENTS];
	unsigned int nrecent;
};

static volatile sig_atomic_t top_stop;

static void top_on_signal(int sig)
{
	(void)sig;
	top_stop = 1;
}

static double top_ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(a->tv_sec - b->tv_sec) + (double)(a->tv_nsec - b->tv_nsec) / 1e9;
}

static void top_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* ---- netlink --------------------------------------------------------------- */

static int top_parse_dev(struct nl_msg *msg, void *arg)
{
	struct nlattr *tb[SPT_A_MAX + 1];
	struct top_dev *d = arg;
	size_t i;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, SPT_A_MAX, NULL))
		return NL_SKIP;
	if (tb[SPT_A_DEV])
		d->index = nla_get_u32(tb[SPT_A_DEV]);
	if (tb[SPT_A_PCI])
		nla_strlcpy(d->pci, tb[SPT_A_PCI], sizeof(d->pci));
	for (i = 0; i < TOP_NCOUNTERS; i++) {
		struct nlattr *a = tb[top_counters[i].attr];

		if (a && nla_len(a) == 8)
			d->v[top_counters[i].attr] = nla_get_u64(a);
	}
	return NL_OK;
}

/* GET one device; index < 0 asks for the first one.  0 or a libnl error. */
static int top_get_dev(struct top *t, long index, struct top_dev *d)
{
	struct nl_msg *msg = nlmsg_alloc();
	int r;

	if (!msg)
		return -NLE_NOMEM;
	memset(d, 0, sizeof(*d));
	d->index = UINT32_MAX;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, t->family, 0, 0, SPT_CMD_GET,
			 SPT_GENL_VERSION) ||
	    (index >= 0 && nla_put_u32(msg, SPT_A_DEV, (uint32_t)index))) {
		nlmsg_free(msg);
		return -NLE_NOMEM;
	}
	nl_socket_modify_cb(t->req, NL_CB_VALID, NL_CB_CUSTOM, top_parse_dev, d);
	r = nl_send_auto(t->req, msg);
	nlmsg_free(msg);
	if (r >= 0)
		r = nl_recvmsgs_default(t->req);
	if (r >= 0 && d->index == UINT32_MAX)
		r = -NLE_MSG_TRUNC;
	return r < 0 ? r : 0;
}

/* Every spt device: each /sys/class/accel/accelN the family knows about. */
static void top_get_devs(struct top *t, struct top_sample *s)
{
	bool seen[64] = { false };
	DIR *dir = opendir("/sys/class/accel");
	struct dirent *de;
	unsigned int i;

	s->ndev = 0;
	while (dir && (de = readdir(dir))) {
		unsigned int n;

		if (sscanf(de->d_name, "accel%u", &n) == 1 && n < 64)
			seen[n] = true;
	}
	if (dir)
		closedir(dir);
	for (i = 0; i < 64 && s->ndev < TOP_MAX_DEVS; i++) {
		if (!seen[i] || (t->dev_filter >= 0 && (long)i != t->dev_filter))
			continue;
		if (!top_get_dev(t, i, &s->dev[s->ndev]))
			s->ndev++;
	}
	/* No sysfs: the family still names the first device. */
	if (!s->ndev && !dir && !top_get_dev(t, t->dev_filter, &s->dev[0]))
		s->ndev = 1;
}

static int top_parse_event(struct nl_msg *msg, void *arg)
{
	struct genlmsghdr *gh = nlmsg_data(nlmsg_hdr(msg));
	struct nlattr *tb[SPT_A_MAX + 1];
	struct top *t = arg;
	struct top_event e;
	int i;

	if (genlmsg_parse(nlmsg_hdr(msg), 0, tb, SPT_A_MAX, NULL))
		return NL_SKIP;
	memset(&e, 0, sizeof(e));
	e.cmd = gh->cmd;
	clock_gettime(CLOCK_REALTIME, &e.t);
	for (i = SPT_A_DEV; i <= SPT_A_MAX; i++) {
		if (!tb[i] || i == SPT_A_PCI)
			continue;
		e.has[i] = true;
		e.v[i] = nla_len(tb[i]) == 8 ? nla_get_u64(tb[i]) : nla_get_u32(tb[i]);
	}
	if (t->dev_filter >= 0 && e.has[SPT_A_DEV] && e.v[SPT_A_DEV] != (uint64_t)t->dev_filter)
		return NL_OK;
	if (e.cmd > SPT_CMD_UNSPEC && e.cmd <= SPT_CMD_MAX)
		t->counts[e.cmd]++;
	if (t->npending < TOP_MAX_EVENTS)
		t->pending[t->npending++] = e;
	else
		t->unlisted++;
	if (t->nrecent == TOP_SHOW_EVENTS) {
		memmove(t->recent, t->recent + 1, sizeof(t->recent[0]) * (TOP_SHOW_EVENTS - 1));
		t->nrecent--;
	}
	t->recent[t->nrecent++] = e;
	return NL_OK;
}

static const char *top_event_name(int cmd)
{
	switch (cmd) {
	case SPT_CMD_JOB_DONE: return "job-done";
	case SPT_CMD_JOB_FAILED: return "job-failed";
	case SPT_CMD_MMU_FAULT: return "mmu-fault";
	case SPT_CMD_RESET: return "reset";
	default: return "unknown";
	}
}

static const struct {
	int attr;
	const char *name;
	bool hex;
} top_event_attrs[] = {
	{ SPT_A_DEV, "dev", false },
	{ SPT_A_CTX, "ctx", false },
	{ SPT_A_JOB, "job", false },
	{ SPT_A_RESETS, "resets", false },
	{ SPT_A_ERRNO, "errno", false },
	{ SPT_A_FAULT_VA, "fault-va", true },
	{ SPT_A_FAULT_ACCESS, "fault-access", false },
};

static void top_print_event(FILE *f, const struct top_event *e, bool json)
{
	size_t i;

	if (json) {
		fprintf(f, "{\"event\":\"%s\",\"time\":%lld.%03ld", top_event_name(e->cmd),
			(long long)e->t.tv_sec, e->t.tv_nsec / 1000000);
		for (i = 0; i < sizeof(top_event_attrs) / sizeof(top_event_attrs[0]); i++)
			if (e->has[top_event_attrs[i].attr])
				fprintf(f, ",\"%s\":%llu", top_event_attrs[i].name,
					(unsigned long long)e->v[top_event_attrs[i].attr]);
		fputc('}', f);
		return;
	}
	fprintf(f, "%-10s", top_event_name(e->cmd));
	for (i = 0; i < sizeof(top_event_attrs) / sizeof(top_event_attrs[0]); i++) {
		int a = top_event_attrs[i].attr;

		if (!e->has[a])
			continue;
		if (top_event_attrs[i].hex)
			fprintf(f, " %s 0x%llx", top_event_attrs[i].name, (unsigned long long)e->v[a]);
		else if (a == SPT_A_FAULT_ACCESS)
			fprintf(f, " access %s", e->v[a] == 1 ? "read" : e->v[a] == 2 ? "write" : "?");
		else if (a == SPT_A_ERRNO && e->v[a])
			fprintf(f, " errno %llu (%s)", (unsigned long long)e->v[a],
				strerror((int)e->v[a]));
		else
			fprintf(f, " %s %llu", top_event_attrs[i].name, (unsigned long long)e->v[a]);
	}
}

/* Read what the events socket holds, printing as they come in --events mode. */
static void top_drain_events(struct top *t)
{
	unsigned int i;
	int r;

	for (;;) {
		unsigned int before = t->npending;

		r = nl_recvmsgs_default(t->ev);
		if (t->events_only) {
			for (i = before; i < t->npending; i++) {
				top_print_event(stdout, &t->pending[i], t->json);
				fputc('\n', stdout);
			}
			t->npending = before;
			fflush(stdout);
		}
		if (r == -NLE_AGAIN || top_stop)
			return;
		if (r == -NLE_NOMEM) {	/* ENOBUFS: the kernel dropped events */
			t->lost++;
			continue;
		}
		if (r < 0)
			return;
	}
}

/* Sleep until @deadline, taking events as they arrive. */
static void top_wait(struct top *t, const struct timespec *deadline)
{
	struct pollfd pfd = { .fd = nl_socket_get_fd(t->ev), .events = POLLIN };

	while (!top_stop) {
		struct timespec now;
		double left;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = top_ts_diff(deadline, &now);
		if (left <= 0)
			break;
		/* Short polls: a signal between the check and poll() still ends us soon. */
		if (poll(&pfd, 1, left > 0.25 ? 250 : (int)(left * 1000) + 1) > 0)
			top_drain_events(t);
	}
	top_drain_events(t);
}

/* ---- fdinfo ---------------------------------------------------------------- */

static void top_copy(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = 0;
}

static void top_kv_add(struct top_proc *p, const char *key, uint64_t val)
{
	unsigned int i;

	for (i = 0; i < p->nkv; i++) {
		if (!strcmp(p->kv[i].key, key)) {
			p->kv[i].val += val;
			return;
		}
	}
	if (p->nkv < TOP_MAX_KEYS) {
		top_copy(p->kv[p->nkv].key, sizeof(p->kv[0].key), key);
		p->kv[p->nkv++].val = val;
	}
}

static bool top_is_usage_key(const char *key)
{
	static const char *const prefixes[] = {
		"drm-engine-", "drm-cycles-", "drm-total-", "drm-shared-",
		"drm-resident-", "drm-purgeable-", "drm-active-", "drm-memory-",
	};
	size_t i;

	if (!strncmp(key, "drm-engine-capacity-", 20))
		return false;
	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		if (!strncmp(key, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

/* Add one fdinfo file to @p if it is an spt client not counted yet. */
static void top_read_fdinfo(struct top_proc *p, const char *path)
{
	struct top_kv kv[TOP_MAX_KEYS];
	unsigned int nkv = 0, i;
	unsigned long long client = 0;
	bool spt = false, has_client = false;
	char line[256];
	FILE *f = fopen(path, "r");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char key[64], unit[16] = "";
		unsigned long long val;
		char drv[32];
		int n;

		if (sscanf(line, "drm-driver: %31s", drv) == 1) {
			spt = !strcmp(drv, "spt");
			continue;
		}
		if (sscanf(line, "drm-client-id: %llu", &client) == 1) {
			has_client = true;
			continue;
		}
		n = sscanf(line, "%63[^:]: %llu %15s", key, &val, unit);
		if (n < 2 || !top_is_usage_key(key) || nkv == TOP_MAX_KEYS)
			continue;
		if (!strcmp(unit, "KiB"))
			val <<= 10;
		else if (!strcmp(unit, "MiB"))
			val <<= 20;
		else if (!strcmp(unit, "GiB"))
			val <<= 30;
		top_copy(kv[nkv].key, sizeof(kv[0].key), key);
		kv[nkv++].val = val;
	}
	fclose(f);
	if (!spt)
		return;
	/* A dup()ed or inherited fd is the same client: count it once. */
	if (has_client) {
		for (i = 0; i < p->clients && i < TOP_MAX_CLIENTS; i++)
			if (p->client_ids[i] == client)
				return;
		if (p->clients < TOP_MAX_CLIENTS)
			p->client_ids[p->clients] = client;
	}
	p->clients++;
	for (i = 0; i < nkv; i++) {
		top_kv_add(p, kv[i].key, kv[i].val);
		if (!strncmp(kv[i].key, "drm-engine-", 11))
			p->engine_ns += kv[i].val;
	}
}

static int top_proc_cmp(const void *a, const void *b)
{
	const struct top_proc *x = a, *y = b;

	if (x->engine_ns != y->engine_ns)
		return x->engine_ns < y->engine_ns ? 1 : -1;
	return x->pid - y->pid;
}

/* spt clients of every process, busiest first. */
static void top_get_procs(struct top_sample *s)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;

	s->nproc = 0;
	if (!proc)
		return;
	while ((de = readdir(proc)) && s->nproc < TOP_MAX_PROCS) {
		struct top_proc *p = &s->proc[s->nproc];
		char path[300];
		struct dirent *fe;
		DIR *fds;
		FILE *f;
		int pid = atoi(de->d_name);

		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo", pid);
		fds = opendir(path);
		if (!fds)
			continue;
		memset(p, 0, sizeof(*p));
		p->pid = pid;
		while ((fe = readdir(fds))) {
			if (fe->d_name[0] < '0' || fe->d_name[0] > '9')
				continue;
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", pid, fe->d_name);
			top_read_fdinfo(p, path);
		}
		closedir(fds);
		if (!p->clients)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		f = fopen(path, "r");
		if (f) {
			if (fgets(p->comm, sizeof(p->comm), f))
				p->comm[strcspn(p->comm, "\n")] = 0;
			fclose(f);
		}
		s->nproc++;
	}
	closedir(proc);
	qsort(s->proc, s->nproc, sizeof(s->proc[0]), top_proc_cmp);
}

/* ---- output ---------------------------------------------------------------- */

static const struct top_dev *top_find_dev(const struct top_sample *s, uint32_t index)
{
	unsigned int i;

	for (i = 0; s && i < s->ndev; i++)
		if (s->dev[i].index == index)
			return &s->dev[i];
	return NULL;
}

static const struct top_proc *top_find_proc(const struct top_sample *s, int pid)
{
	unsigned int i;

	for (i = 0; s && i < s->nproc; i++)
		if (s->proc[i].pid == pid)
			return &s->proc[i];
	return NULL;
}

/* Device busy share and job rate over the interval; false on the first sample. */
static bool top_dev_rates(const struct top_dev *d, const struct top_dev *o, double dt,
			  double *busy_pct, double *jobs_s)
{
	if (!o || dt <= 0 || d->v[SPT_A_BUSY_NS] < o->v[SPT_A_BUSY_NS] ||
	    d->v[SPT_A_JOBS_DONE] < o->v[SPT_A_JOBS_DONE])
		return false;
	*busy_pct = (double)(d->v[SPT_A_BUSY_NS] - o->v[SPT_A_BUSY_NS]) / (dt * 1e7);
	*jobs_s = (double)(d->v[SPT_A_JOBS_DONE] - o->v[SPT_A_JOBS_DONE]) / dt;
	return true;
}

static double top_mac_sparsity(const struct top_dev *d)
{
	uint64_t dense = d->v[SPT_A_DENSE_MACS];

	return dense ? 1.0 - (double)d->v[SPT_A_EXEC_MACS] / (double)dense : 0.0;
}

static void top_print_json(struct top *t, const struct top_sample *s, const struct top_sample *o)
{
	double dt = o ? top_ts_diff(&s->t, &o->t) : 0, busy, jobs;
	struct timespec now;
	unsigned int i, j;
	size_t k;

	clock_gettime(CLOCK_REALTIME, &now);
	printf("{\"time\":%lld.%03ld,\"interval\":%.3f,\"devices\":[", (long long)now.tv_sec,
	       now.tv_nsec / 1000000, dt);
	for (i = 0; i < s->ndev; i++) {
		const struct top_dev *d = &s->dev[i];

		printf("%s{\"dev\":%u,\"pci\":", i ? "," : "", d->index);
		top_json_str(stdout, d->pci);
		for (k = 0; k < TOP_NCOUNTERS; k++)
			printf(",\"%s\":%llu", top_counters[k].name,
			       (unsigned long long)d->v[top_counters[k].attr]);
		printf(",\"mac-sparsity\":%.4f", top_mac_sparsity(d));
		if (top_dev_rates(d, top_find_dev(o, d->index), dt, &busy, &jobs))
			printf(",\"busy-percent\":%.2f,\"jobs-per-sec\":%.2f", busy, jobs);
		printf("}");
	}
	printf("],\"processes\":[");
	for (i = 0; i < s->nproc; i++) {
		const struct top_proc *p = &s->proc[i], *op = top_find_proc(o, p->pid);

		printf("%s{\"pid\":%d,\"comm\":", i ? "," : "", p->pid);
		top_json_str(stdout, p->comm);
		printf(",\"clients\":%u", p->clients);
		for (j = 0; j < p->nkv; j++)
			printf(",\"%s\":%llu", p->kv[j].key, (unsigned long long)p->kv[j].val);
		if (op && dt > 0 && p->engine_ns >= op->engine_ns)
			printf(",\"busy-percent\":%.2f",
			       (double)(p->engine_ns - op->engine_ns) / (dt * 1e7));
		printf("}");
	}
	printf("],\"events\":[");
	for (i = 0; i < t->npending; i++) {
		if (i)
			putchar(',');
		top_print_event(stdout, &t->pending[i], true);
	}
	printf("],\"event-counts\":{");
	for (i = SPT_CMD_JOB_DONE; i <= SPT_CMD_MAX; i++)
		printf("%s\"%s\":%llu", i > SPT_CMD_JOB_DONE ? "," : "", top_event_name((int)i),
		       t->counts[i]);
	printf("},\"events-unlisted\":%llu,\"events-lost\":%llu}\n", t->unlisted, t->lost);
}

static void top_print_text(struct top *t, const struct top_sample *s, const struct top_sample *o)
{
	double dt = o ? top_ts_diff(&s->t, &o->t) : 0, busy, jobs;
	unsigned int i, j;

	if (t->screen) {
		char tbuf[32];
		time_t now = time(NULL);

		strftime(tbuf, sizeof(tbuf), "%H:%M:%S", localtime(&now));
		printf("\033[H\033[2Jspt top - %s, every %.1fs\n\n", tbuf, t->interval);
	}
	if (!s->ndev)
		printf("no spt device\n");
	for (i = 0; i < s->ndev && t->screen; i++) {
		const struct top_dev *d = &s->dev[i];

		printf("accel%u  %s", d->index, d->pci);
		if (top_dev_rates(d, top_find_dev(o, d->index), dt, &busy, &jobs))
			printf("   busy %5.1f%%   %8.1f jobs/s", busy, jobs);
		printf("\n  jobs   %llu submitted, %llu done, %llu failed, %llu mmu faults, "
		       "%llu timeouts, %llu resets\n"
		       "  work   %llu cycles, %.1f ms busy, %llu of %llu MACs executed "
		       "(%.1f%% skipped)\n",
		       (unsigned long long)d->v[SPT_A_JOBS_SUBMITTED],
		       (unsigned long long)d->v[SPT_A_JOBS_DONE],
		       (unsigned long long)d->v[SPT_A_JOBS_FAILED],
		       (unsigned long long)d->v[SPT_A_MMU_FAULTS],
		       (unsigned long long)d->v[SPT_A_TIMEOUTS],
		       (unsigned long long)d->v[SPT_A_RESETS],
		       (unsigned long long)d->v[SPT_A_CYCLES], (double)d->v[SPT_A_BUSY_NS] / 1e6,
		       (unsigned long long)d->v[SPT_A_EXEC_MACS],
		       (unsigned long long)d->v[SPT_A_DENSE_MACS], 100.0 * top_mac_sparsity(d));
	}
	for (i = 0; i < s->ndev && !t->screen; i++) {
		const struct top_dev *d = &s->dev[i];
		size_t k;

		printf("dev %u pci %s", d->index, d->pci);
		for (k = 0; k < TOP_NCOUNTERS; k++)
			printf(" %s %llu", top_counters[k].name,
			       (unsigned long long)d->v[top_counters[k].attr]);
		printf(" mac-sparsity %.4f", top_mac_sparsity(d));
		if (top_dev_rates(d, top_find_dev(o, d->index), dt, &busy, &jobs))
			printf(" busy-percent %.2f jobs-per-sec %.2f", busy, jobs);
		putchar('\n');
	}
	if (t->screen)
		printf("\n%7s %-16s %7s %6s %14s %14s %12s\n", "PID", "COMMAND", "CLIENTS", "BUSY%",
		       "ENGINE-NS", "CYCLES", "MEMORY");
	for (i = 0; i < s->nproc; i++) {
		const struct top_proc *p = &s->proc[i], *op = top_find_proc(o, p->pid);
		uint64_t cycles = 0, mem = 0;
		char pct[16] = "-";

		for (j = 0; j < p->nkv; j++) {
			if (!strncmp(p->kv[j].key, "drm-cycles-", 11))
				cycles += p->kv[j].val;
			else if (!strncmp(p->kv[j].key, "drm-total-", 10))
				mem += p->kv[j].val;
		}
		if (op && dt > 0 && p->engine_ns >= op->engine_ns)
			snprintf(pct, sizeof(pct), "%.1f",
				 (double)(p->engine_ns - op->engine_ns) / (dt * 1e7));
		if (t->screen) {
			printf("%7d %-16s %7u %6s %14llu %14llu %11.1fK\n", p->pid, p->comm, p->clients,
			       pct, (unsigned long long)p->engine_ns, (unsigned long long)cycles,
			       (double)mem / 1024);
			continue;
		}
		printf("proc %d %s clients %u", p->pid, p->comm, p->clients);
		for (j = 0; j < p->nkv; j++)
			printf(" %s %llu", p->kv[j].key, (unsigned long long)p->kv[j].val);
		printf(" busy %s%%\n", pct);
	}
	if (t->screen) {
		printf("\nrecent events");
		if (t->lost)
			printf(" (%llu lost)", t->lost);
		putchar('\n');
		for (i = 0; i < t->nrecent; i++) {
			printf("  ");
			top_print_event(stdout, &t->recent[i], false);
			putchar('\n');
		}
	} else {
		printf("events");
		for (i = SPT_CMD_JOB_DONE; i <= SPT_CMD_MAX; i++)
			printf(" %s %llu", top_event_name((int)i), t->counts[i]);
		printf(" lost %llu\n", t->lost);
	}
}

/* ---- command --------------------------------------------------------------- */

static void top_usage(FILE *f)
{
	fprintf(f,
		"usage: spt top [--interval SEC] [--iterations N] [--dev N] [--json] [--events]\n"
		"\n"
		"Live device counters from the driver's \"spt\" generic netlink family and\n"
		"per-process usage from /proc/*/fdinfo.  On a terminal the screen refreshes;\n"
		"piped, each refresh prints plain lines.\n"
		"\n"
		"  -d, --interval SEC   seconds between refreshes (default 1)\n"
		"  -n, --iterations N   stop after N refreshes (default: until interrupted)\n"
		"      --dev N          only /dev/accel/accelN\n"
		"  -j, --json           one JSON object per refresh (devices, processes, events)\n"
		"  -e, --events         print job, fault and reset events as they arrive\n"
		"                       (with --json, one JSON object per event)\n"
		"  -h, --help           this text\n");
}

static int top_parse_args(struct top *t, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "dev", required_argument, NULL, 'D' },
		{ "json", no_argument, NULL, 'j' },
		{ "events", no_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "d:n:jeh", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			errno = 0;
			t->interval = strtod(optarg, &end);
			if (errno || *end || !(t->interval >= 0.01 && t->interval <= 86400))
				return spt_err("top: --interval wants seconds in [0.01, 86400], not '%s'",
					       optarg) + 1;
			break;
		case 'n':
			errno = 0;
			t->iterations = strtoull(optarg, &end, 10);
			if (errno || *end || optarg[0] == '-' || !t->iterations)
				return spt_err("top: --iterations wants a positive count, not '%s'",
					       optarg) + 1;
			break;
		case 'D':
			errno = 0;
			t->dev_filter = strtol(optarg, &end, 10);
			if (errno || *end || t->dev_filter < 0 || t->dev_filter > 63)
				return spt_err("top: --dev wants an accel index 0..63, not '%s'",
					       optarg) + 1;
			break;
		case 'j':
			t->json = true;
			break;
		case 'e':
			t->events_only = true;
			break;
		case 'h':
			top_usage(stdout);
			return -1;
		default:
			top_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		spt_err("top: unexpected argument '%s'", argv[optind]);
		top_usage(stderr);
		return 2;
	}
	return 0;
}

static int top_connect(struct top *t)
{
	int grp;

	t->req = nl_socket_alloc();
	t->ev = nl_socket_alloc();
	if (!t->req || !t->ev)
		return spt_err("top: out of memory");
	if (genl_connect(t->req) || genl_connect(t->ev))
		return spt_err("top: cannot open a generic netlink socket");
	nl_socket_disable_auto_ack(t->req);
	t->family = genl_ctrl_resolve(t->req, SPT_GENL_NAME);
	if (t->family < 0)
		return spt_err("top: generic netlink family '%s' not found (%s): "
			       "is the spt driver loaded and a device present?",
			       SPT_GENL_NAME, nl_geterror(t->family));
	grp = genl_ctrl_resolve_grp(t->ev, SPT_GENL_NAME, SPT_GENL_MCGRP_EVENTS);
	if (grp < 0)
		return spt_err("top: no '%s' multicast group: %s", SPT_GENL_MCGRP_EVENTS,
			       nl_geterror(grp));
	nl_socket_disable_seq_check(t->ev);
	nl_socket_modify_cb(t->ev, NL_CB_VALID, NL_CB_CUSTOM, top_parse_event, t);
	if (nl_socket_add_membership(t->ev, grp))
		return spt_err("top: cannot join the '%s' group", SPT_GENL_MCGRP_EVENTS);
	nl_socket_set_buffer_size(t->ev, 1 << 20, 0);
	nl_socket_set_nonblocking(t->ev);
	return 0;
}

static void top_advance(struct timespec *ts, double sec)
{
	ts->tv_sec += (time_t)sec;
	ts->tv_nsec += (long)((sec - (double)(time_t)sec) * 1e9);
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static int top_run(struct top *t)
{
	struct top_sample *s[2];
	struct timespec next;
	unsigned long long it;
	int cur = 0, rc = 0;

	s[0] = calloc(1, sizeof(*s[0]));
	s[1] = calloc(1, sizeof(*s[1]));
	if (!s[0] || !s[1]) {
		free(s[0]);
		free(s[1]);
		return spt_err("top: out of memory");
	}
	clock_gettime(CLOCK_MONOTONIC, &next);
	for (it = 0; !top_stop && (!t->iterations || it < t->iterations); it++) {
		struct top_sample *now = s[cur], *old = it ? s[!cur] : NULL;

		/* Counters print at once, then every interval; events need the wait. */
		if (it || t->events_only) {
			top_advance(&next, t->interval);
			top_wait(t, &next);
			if (top_stop)
				break;
		}
		if (t->events_only)
			continue;
		clock_gettime(CLOCK_MONOTONIC, &now->t);
		top_get_devs(t, now);
		if (!now->ndev && it == 0) {
			if (t->dev_filter >= 0)
				rc = spt_err("top: no spt device accel%ld", t->dev_filter);
			else
				rc = spt_err("top: the '%s' family reports no device", SPT_GENL_NAME);
			break;
		}
		top_get_procs(now);
		if (t->json)
			top_print_json(t, now, old);
		else
			top_print_text(t, now, old);
		fflush(stdout);
		if (ferror(stdout))
			break;
		t->npending = 0;
		t->unlisted = 0;
		memset(t->counts, 0, sizeof(t->counts));
		cur = !cur;
	}
	free(s[0]);
	free(s[1]);
	return rc;
}

int cmd_top(int argc, char **argv)
{
	struct top *t = calloc(1, sizeof(*t));
	struct sigaction sa;
	int rc;

	if (!t)
		return spt_err("top: out of memory");
	t->interval = 1.0;
	t->dev_filter = -1;
	rc = top_parse_args(t, argc, argv);
	if (rc) {
		free(t);
		return rc < 0 ? 0 : rc;
	}
	t->screen = !t->json && !t->events_only && isatty(STDOUT_FILENO);
	rc = top_connect(t);
	if (!rc) {
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = top_on_signal;
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
		signal(SIGPIPE, SIG_IGN);
		rc = top_run(t);
	}
	if (t->ev)
		nl_socket_free(t->ev);
	if (t->req)
		nl_socket_free(t->req);
	free(t);
	return rc;
}
