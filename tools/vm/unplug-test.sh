#!/usr/bin/env bash
# Hot-unplug with jobs in flight: boot a guest with the device behind a PCIe
# root port, run tests/guest/spt_unplug_load, and once it has jobs running
# send "device_del spt0" to the QEMU monitor.  Passes when the guest
# program passes and run.sh finds no oops/WARN/taint.
# Usage: tools/vm/unplug-test.sh [IMAGE_DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
img=${1:-$here/../../build/vm}
sock=$(mktemp -u /tmp/spt-mon.XXXXXX)
log=$img/unplug-console.log
rm -f "$log"

bash "$here/run.sh" -H -i "$img" -m "$sock" -l "$log" -t 300 -- /tests/spt_unplug_load &
pid=$!
for _ in $(seq 1 600); do
	grep -q UNPLUG-READY "$log" 2>/dev/null && break
	kill -0 "$pid" 2>/dev/null || break
	sleep 0.2
done
if grep -q UNPLUG-READY "$log" 2>/dev/null; then
	python3 - "$sock" <<'PYEOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
time.sleep(0.2)
s.sendall(b"device_del spt0\n")
time.sleep(0.5)
s.close()
PYEOF
	echo "unplug-test: device_del sent"
else
	echo "unplug-test: guest never became ready" >&2
fi
wait "$pid"
rc=$?
rm -f "$sock"
echo "unplug-test: guest exit $rc"
exit "$rc"
