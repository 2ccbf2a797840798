// SPDX-License-Identifier: MIT
/*
 * `spt bench device --quick --json` on the device: it succeeds, prints one
 * JSON object whose figures are present and sane (percentiles ordered,
 * rates and ratios positive, a job's round trip no shorter than its
 * device-side time, a training step no shorter than its device busy
 * time), and a $SPT_DEVICE that names no device still fails with the
 * no-device status.  The spt binary is /bin/spt, or $SPT_BIN.
 */
#include <math.h>
#include <sys/wait.h>

#include "spt_test.h"

#define EXIT_NO_DEVICE 3	/* SPT_EXIT_NO_DEVICE of tools/spt/spt.h */

static char out[16384];
static int status = -1;

static const char *spt_bin(void)
{
	const char *b = getenv("SPT_BIN");

	return b && *b ? b : "/bin/spt";
}

/* Run "spt ARGS" through the shell; stdout into @buf, exit status returned. */
static int run_spt(const char *args, char *buf, size_t cap)
{
	char cmd[256];
	size_t n = 0, got;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s %s", spt_bin(), args);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (n + 1 < cap && (got = fread(buf + n, 1, cap - 1 - n, p)) > 0)
		n += got;
	buf[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * The value after "key": inside the object "section": {...} of @doc (or
 * anywhere, for a NULL section).  NULL if absent.
 */
static const char *json_value(const char *doc, const char *section, const char *key)
{
	char pat[64];
	const char *s = doc, *end = doc + strlen(doc), *k;
	int depth = 0;

	if (section) {
		snprintf(pat, sizeof(pat), "\"%s\": {", section);
		s = strstr(doc, pat);
		if (!s)
			return NULL;
		s += strlen(pat);
		for (end = s; *end && (depth || *end != '}'); end++)
			depth += *end == '{' ? 1 : *end == '}' ? -1 : 0;
	}
	snprintf(pat, sizeof(pat), "\"%s\": ", key);
	k = strstr(s, pat);
	return k && k < end ? k + strlen(pat) : NULL;
}

static bool json_num(const char *section, const char *key, double *v)
{
	const char *s = json_value(out, section, key);
	char *e;

	if (!s)
		return false;
	*v = strtod(s, &e);
	return e != s && isfinite(*v);
}

#define NUM(sec, key, v)						\
	CHECK(json_num(sec, key, &v), "no number \"%s\" in \"%s\": %.300s", key, \
	      sec ? sec : "", out)

static bool quick_json_runs(void)
{
	status = run_spt("bench device --quick --json", out, sizeof(out));
	CHECK(status == 0, "expected exit status 0, got %d; stdout: %.300s", status, out);
	CHECK(out[0] == '{' && strchr(out, '\n') == strrchr(out, '\n') &&
	      strstr(out, "}\n") == out + strlen(out) - 2,
	      "expected one JSON object on one line, got: %.300s", out);
	CHECK(json_value(out, NULL, "quick") && !strncmp(json_value(out, NULL, "quick"), "true", 4),
	      "expected \"quick\": true");
	CHECK(json_value(out, NULL, "device") && json_value(out, NULL, "driver"),
	      "expected device and driver names");
	return true;
}

static bool null_job_figures(void)
{
	double jobs, p50, p99, serial, pipelined, ratio;

	CHECK(status == 0, "no output to check");
	NUM("null_job", "jobs", jobs);
	NUM("null_job", "roundtrip_p50_us", p50);
	NUM("null_job", "roundtrip_p99_us", p99);
	NUM("null_job", "serial_jobs_per_s", serial);
	NUM("null_job", "pipelined_jobs_per_s", pipelined);
	NUM("null_job", "pipelined_vs_serial", ratio);
	CHECK(jobs >= 10, "expected at least 10 jobs, got %g", jobs);
	CHECK(p50 > 0 && p99 >= p50, "expected 0 < p50 <= p99, got %g, %g", p50, p99);
	CHECK(serial > 0 && pipelined > 0 && ratio > 0,
	      "expected positive rates and ratio, got %g, %g, %g", serial, pipelined, ratio);
	CHECK(fabs(ratio - pipelined / serial) <= 0.01 * ratio,
	      "pipelined_vs_serial %g is not %g / %g", ratio, pipelined, serial);
	return true;
}

static bool gemm_job_figures(void)
{
	double rt50, rt99, dev50, dev99, cpu50, cpu99, vs_dev, vs_cpu, dense, exec, cycles;
	const char *same;

	CHECK(status == 0, "no output to check");
	NUM("gemm", "roundtrip_p50_us", rt50);
	NUM("gemm", "roundtrip_p99_us", rt99);
	NUM("gemm", "device_p50_us", dev50);
	NUM("gemm", "device_p99_us", dev99);
	NUM("gemm", "cpu_p50_us", cpu50);
	NUM("gemm", "cpu_p99_us", cpu99);
	NUM("gemm", "roundtrip_vs_device", vs_dev);
	NUM("gemm", "roundtrip_vs_cpu", vs_cpu);
	NUM("gemm", "dense_macs", dense);
	NUM("gemm", "exec_macs", exec);
	NUM("modeled", "cycles", cycles);
	CHECK(rt50 > 0 && rt99 >= rt50, "round trip: expected 0 < p50 <= p99, got %g, %g", rt50, rt99);
	CHECK(dev50 > 0 && dev99 >= dev50, "device: expected 0 < p50 <= p99, got %g, %g", dev50, dev99);
	CHECK(cpu50 > 0 && cpu99 >= cpu50, "cpu: expected 0 < p50 <= p99, got %g, %g", cpu50, cpu99);
	CHECK(rt50 >= dev50, "a round trip (p50 %g us) is shorter than its device time (%g us)",
	      rt50, dev50);
	CHECK(vs_dev > 0 && vs_cpu > 0, "expected positive ratios, got %g, %g", vs_dev, vs_cpu);
	CHECK(fabs(vs_dev - rt50 / dev50) <= 0.01 * vs_dev, "roundtrip_vs_device %g is not %g / %g",
	      vs_dev, rt50, dev50);
	CHECK(fabs(vs_cpu - rt50 / cpu50) <= 0.01 * vs_cpu, "roundtrip_vs_cpu %g is not %g / %g",
	      vs_cpu, rt50, cpu50);
	CHECK(dense > 0 && exec > 0 && exec < dense, "expected 0 < exec_macs < dense_macs, got %g, %g",
	      exec, dense);
	CHECK(cycles > 0, "expected modeled cycles > 0, got %g", cycles);
	same = json_value(out, "gemm", "identical_to_cpu");
	CHECK(same && !strncmp(same, "true", 4), "expected identical_to_cpu true");
	return true;
}

static bool train_step_figures(void)
{
	double steps, dstep, busy, cpu, vs_busy, vs_cpu, sparsity;
	const char *same;

	CHECK(status == 0, "no output to check");
	NUM("train", "steps", steps);
	NUM("train", "device_step_ms", dstep);
	NUM("train", "device_busy_ms", busy);
	NUM("train", "cpu_step_ms", cpu);
	NUM("train", "step_vs_device_busy", vs_busy);
	NUM("train", "device_vs_cpu", vs_cpu);
	NUM("train", "interim_sparsity", sparsity);
	CHECK(steps >= 1, "expected at least one timed step, got %g", steps);
	CHECK(dstep > 0 && busy > 0 && cpu > 0, "expected positive step times, got %g, %g, %g",
	      dstep, busy, cpu);
	/* the two clocks (guest, QEMU's virtual clock) may disagree a little */
	CHECK(dstep >= 0.95 * busy, "a step (%g ms) is shorter than its device busy time (%g ms)",
	      dstep, busy);
	CHECK(fabs(vs_busy - dstep / busy) <= 0.01 * vs_busy,
	      "step_vs_device_busy %g is not %g / %g", vs_busy, dstep, busy);
	CHECK(fabs(vs_cpu - dstep / cpu) <= 0.01 * vs_cpu, "device_vs_cpu %g is not %g / %g",
	      vs_cpu, dstep, cpu);
	CHECK(sparsity > 0 && sparsity < 1, "expected interim sparsity in (0, 1), got %g", sparsity);
	same = json_value(out, "train", "same_loss_as_cpu");
	CHECK(same && !strncmp(same, "true", 4),
	      "expected the device and CPU backends to give the same losses");
	return true;
}

static bool missing_device_is_no_device(void)
{
	char buf[256];
	int st;

	setenv("SPT_DEVICE", "/dev/accel/accel63", 1);
	st = run_spt("bench device --json 2>/dev/null", buf, sizeof(buf));
	unsetenv("SPT_DEVICE");
	CHECK(st == EXIT_NO_DEVICE, "expected exit status %d, got %d", EXIT_NO_DEVICE, st);
	CHECK(buf[0] == '\0', "expected nothing on stdout, got: %.200s", buf);
	return true;
}

static const struct ktap_case cases[] = {
	{ "bench_device_quick_json_runs", quick_json_runs },
	{ "null_job_figures_sane", null_job_figures },
	{ "gemm_job_figures_sane", gemm_job_figures },
	{ "train_step_figures_sane", train_step_figures },
	{ "missing_device_is_no_device", missing_device_is_no_device },
};

int main(void)
{
	int fd = spt_open();

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (fd < 0) {
		printf("KTAP version 1\n1..0 # SKIP no spt device\n");
		return 1;
	}
	close(fd);
	if (access(spt_bin(), X_OK)) {
		printf("KTAP version 1\n1..0 # SKIP no %s\n", spt_bin());
		return 1;
	}
	return ktap_run(cases, sizeof(cases) / sizeof(cases[0]));
}
