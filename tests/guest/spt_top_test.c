// SPDX-License-Identifier: MIT
/*
 * spt top (tools/spt/top.c) against the live driver: counters move between
 * refreshes, jobs show up as job-done events and this process shows up in
 * the fdinfo table.  The program links top.c and runs it as a child,
 * "spt_top_test top ARGS", with stdout on a pipe as a script would.
 */
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "spt_test.h"
#include "../../tools/spt/spt.h"

static int fd, accel;

int spt_err(const char *fmt, ...)
{
	va_list ap;

	fputs("spt: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

struct child {
	pid_t pid;
	int out;
	char buf[1 << 16];
	size_t len;
};

/* Run "spt_top_test top ARGS..." with stdout (and stderr) on a pipe. */
static bool top_spawn(struct child *c, const char *const *args)
{
	char *argv[16];
	int p[2], i;

	argv[0] = "spt_top_test";
	argv[1] = "top";
	for (i = 0; args[i] && i < 13; i++)
		argv[i + 2] = (char *)args[i];
	argv[i + 2] = NULL;
	if (pipe(p))
		return false;
	fflush(stdout);
	c->len = 0;
	c->pid = fork();
	if (c->pid < 0)
		return false;
	if (!c->pid) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		close(p[1]);
		close(fd);
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	close(p[1]);
	c->out = p[0];
	return true;
}

/* Next line of the child's output into @line; false on EOF or timeout. */
static bool top_line(struct child *c, char *line, size_t size, int timeout_ms)
{
	int64_t deadline = spt_now_ns() + (int64_t)timeout_ms * 1000000;

	for (;;) {
		char *nl = memchr(c->buf, '\n', c->len);
		struct pollfd pfd = { .fd = c->out, .events = POLLIN };
		int left = (int)((deadline - spt_now_ns()) / 1000000);
		ssize_t n;

		if (nl) {
			size_t l = (size_t)(nl - c->buf);

			snprintf(line, size, "%.*s", (int)l, c->buf);
			memmove(c->buf, nl + 1, c->len - l - 1);
			c->len -= l + 1;
			return true;
		}
		if (left <= 0 || poll(&pfd, 1, left) <= 0 || c->len == sizeof(c->buf))
			return false;
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - c->len);
		if (n <= 0)
			return false;
		c->len += (size_t)n;
	}
}

static int top_reap(struct child *c)
{
	int st = 0, i;

	for (i = 0; i < 300; i++) {
		if (waitpid(c->pid, &st, WNOHANG) == c->pid)
			break;
		usleep(100000);
	}
	if (i == 300) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &st, 0);
	}
	close(c->out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The value after "KEY": in the object of this device in a refresh line. */
static bool json_dev_u64(const char *line, const char *key, unsigned long long *v)
{
	char pat[64];
	const char *d, *k;

	snprintf(pat, sizeof(pat), "{\"dev\":%d,", accel);
	d = strstr(line, pat);
	if (!d)
		return false;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	k = strstr(d, pat);
	return k && sscanf(k + strlen(pat), "%llu", v) == 1;
}

static int count(const char *s, const char *what)
{
	int n = 0;

	while ((s = strstr(s, what))) {
		n++;
		s += strlen(what);
	}
	return n;
}

#define JOBS 3

static bool json_counters_move(void)
{
	static const char *const args[] = { "--json", "--iterations", "2", "--interval", "4", NULL };
	static char l1[1 << 15], l2[1 << 15];
	unsigned long long d1, d2, s1, s2;
	struct child c;
	char pat[48];
	int i, rc;

	CHECK(top_spawn(&c, args), "spawn: %s", strerror(errno));
	CHECK(top_line(&c, l1, sizeof(l1), 20000), "no first refresh");
	for (i = 0; i < JOBS; i++)
		CHECK_ERR(spt_run_fence_job(fd, 0), 0);
	CHECK(top_line(&c, l2, sizeof(l2), 20000), "no second refresh after %s", l1);
	rc = top_reap(&c);
	CHECK(rc == 0, "spt top exit status %d", rc);
	CHECK(json_dev_u64(l1, "jobs-done", &d1) && json_dev_u64(l1, "jobs-submitted", &s1),
	      "no counters of dev %d in %s", accel, l1);
	CHECK(json_dev_u64(l2, "jobs-done", &d2) && json_dev_u64(l2, "jobs-submitted", &s2),
	      "no counters of dev %d in %s", accel, l2);
	CHECK(d2 >= d1 + JOBS && s2 >= s1 + JOBS, "jobs-done %llu -> %llu, submitted %llu -> %llu, "
	      "expected +%d", d1, d2, s1, s2, JOBS);
	CHECK(strstr(l2, "\"busy-percent\":"), "no rates in the second refresh: %s", l2);
	CHECK(count(l2, "\"event\":\"job-done\"") >= JOBS, "expected %d job-done events: %s",
	      JOBS, l2);
	snprintf(pat, sizeof(pat), "{\"pid\":%d,", getpid());
	CHECK(strstr(l2, pat), "this process (%d) not among the processes: %s", getpid(), l2);
	CHECK(strstr(strstr(l2, pat), "\"drm-engine-spt\":") &&
	      strstr(strstr(l2, pat), "\"drm-cycles-spt\":"),
	      "no drm-engine-spt/drm-cycles-spt for this process: %s", l2);
	return true;
}

static bool events_mode_done_and_fault(void)
{
	static const char *const args[] = { "--events", "--json", "--interval", "60", NULL };
	char line[1024] = "";
	bool done = false, fault = false, failed = false;
	struct child c;
	int i, rc;

	CHECK(top_spawn(&c, args), "spawn: %s", strerror(errno));
	/* No output until the first event: submit until one arrives. */
	for (i = 0; i < 50 && !done; i++) {
		CHECK_ERR(spt_run_fence_job(fd, 0), 0);
		while (top_line(&c, line, sizeof(line), 200))
			done |= !!strstr(line, "{\"event\":\"job-done\"");
	}
	if (!done)
		kill(c.pid, SIGKILL);
	CHECK(done, "no job-done event line");
	/* A stray VA: the job fails with EFAULT, the fence still signals. */
	CHECK_ERR(spt_run_fence_job(fd, 0x6000000000ull), 0);
	while (!(fault && failed) && top_line(&c, line, sizeof(line), 10000)) {
		fault |= strstr(line, "{\"event\":\"mmu-fault\"") &&
			 strstr(line, "\"fault-va\":412316860416");
		failed |= strstr(line, "{\"event\":\"job-failed\"") && strstr(line, "\"errno\":14");
	}
	/* Runs until interrupted: SIGTERM ends it cleanly. */
	kill(c.pid, SIGTERM);
	rc = top_reap(&c);
	CHECK(fault && failed, "events: mmu-fault %d job-failed %d (last line %s)", fault, failed,
	      line);
	CHECK(rc == 0, "spt top --events after SIGTERM: exit status %d", rc);
	return true;
}

static bool plain_lines_when_piped(void)
{
	static const char *const args[] = { "--iterations", "1", NULL };
	char line[2048], want[32];
	bool dev = false, proc = false;
	struct child c;
	int rc;

	CHECK(top_spawn(&c, args), "spawn: %s", strerror(errno));
	snprintf(want, sizeof(want), "proc %d ", getpid());
	while (top_line(&c, line, sizeof(line), 20000)) {
		CHECK(!strchr(line, '\033'), "escape sequence on a pipe: %s", line);
		dev |= !strncmp(line, "dev ", 4) && strstr(line, " jobs-done ");
		proc |= !strncmp(line, want, strlen(want));
	}
	rc = top_reap(&c);
	CHECK(rc == 0, "exit status %d", rc);
	CHECK(dev && proc, "device line %d, line for pid %d %d", dev, getpid(), proc);
	return true;
}

static bool bad_options_exit_2(void)
{
	static const char *const zero[] = { "--iterations", "0", NULL };
	static const char *const extra[] = { "extra", NULL };
	char line[256];
	struct child c;
	int rc;

	CHECK(top_spawn(&c, zero), "spawn");
	CHECK(top_line(&c, line, sizeof(line), 10000) && strstr(line, "spt: top: --iterations"),
	      "no error message for --iterations 0");
	rc = top_reap(&c);
	CHECK(rc == 2, "--iterations 0: exit status %d, expected 2", rc);
	CHECK(top_spawn(&c, extra), "spawn");
	rc = top_reap(&c);
	CHECK(rc == 2, "stray argument: exit status %d, expected 2", rc);
	return true;
}

static const struct ktap_case cases[] = {
	{ "top_json_counters_move_and_job_done_events", json_counters_move },
	{ "top_events_mode_done_failed_fault", events_mode_done_and_fault },
	{ "top_plain_lines_when_piped", plain_lines_when_piped },
	{ "top_bad_options_exit_2", bad_options_exit_2 },
};

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "top"))
		return cmd_top(argc - 1, argv + 1);

	fd = spt_open();
	accel = spt_accel_index();
	if (fd < 0 || accel < 0) {
		printf("KTAP version 1\n1..0 # SKIP no spt device\n");
		return 1;
	}
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
