#!/bin/sh
# Module unload/reload loop: every cycle removes spt.ko, checks that the
# device node and sysfs entries are gone, loads it again and runs a job.
# One cycle loads with non-default parameters (small rings, 2 hardware
# queues, short timeout) and runs the whole job test on them.
cycles=${SPT_RELOAD_CYCLES:-5}
echo "KTAP version 1"
echo "1..$cycles"
fail=0
i=1
while [ "$i" -le "$cycles" ]; do
	err=""
	# the next to last cycle loads with non-default parameters
	params=""
	[ "$i" = $((cycles - 1)) ] && params="job_timeout_ms=700 ring_entries=8 hw_queues=2"
	if ! rmmod spt; then
		err="rmmod failed"
	elif [ -e /dev/accel/accel0 ] || grep -q '^spt ' /proc/modules; then
		err="device node or module left after rmmod"
	elif ! insmod /lib/modules/spt.ko $params; then
		err="insmod failed"
	else
		n=0
		while [ ! -e /dev/accel/accel0 ] && [ "$n" -lt 50 ]; do
			sleep 0.1
			n=$((n + 1))
		done
		/tests/spt_smoke || err="job after reload failed: $?"
		if [ -n "$params" ] && [ -z "$err" ]; then
			[ "$(cat /sys/module/spt/parameters/job_timeout_ms)" = 700 ] &&
				[ "$(cat /sys/class/accel/accel0/device/spt/num_queues)" = 2 ] ||
				err="parameters not applied"
			/tests/spt_job_test >/tmp/reload-job.log 2>&1 ||
				err="spt_job_test with $params failed: $(grep 'not ok' /tmp/reload-job.log)"
		fi
	fi
	if [ -z "$err" ]; then
		echo "ok $i reload_cycle_$i"
	else
		echo "# $err"
		echo "not ok $i reload_cycle_$i"
		fail=1
	fi
	i=$((i + 1))
done
exit $fail
