#!/usr/bin/env bash
# Static checks over the userspace tree.  Each check is one pass or failure.
# Usage: run-lint.sh RESULT_FILE
set -u
result=$1
passed=0 failed=0

run() {
	local name=$1
	shift
	local log
	log=$(mktemp)
	if "$@" >"$log" 2>&1; then
		passed=$((passed + 1))
		echo "lint       $name: ok"
	else
		failed=$((failed + 1))
		echo "lint       $name: FAILED"
		sed 's/^/    /' "$log" | head -40
	fi
	rm -f "$log"
}

mapfile -t shells < <(git ls-files '*.sh' .ci/run 2>/dev/null; ls tools/*.sh tests/*.sh tests/*/*.sh tools/*/*.sh 2>/dev/null)
mapfile -t shells < <(printf '%s\n' "${shells[@]}" | sort -u)
run shellcheck shellcheck -x -S warning "${shells[@]}"

mapfile -t csrc < <(ls core/src/*.c tools/spt/*.c runtime/src/*.c 2>/dev/null)
run cppcheck cppcheck -q --error-exitcode=1 --enable=warning,portability \
	--std=c11 --inline-suppr -Iuapi -Icore/include -Iruntime/include \
	-D__GNUC__ -U__KERNEL__ --suppress=missingIncludeSystem "${csrc[@]}"

# Every public function of the core is declared in its one public header.
run core-header-only-public bash -c '
	nm -g --defined-only build/lib/libsptcore.a 2>/dev/null | awk "\$2 == \"T\" { print \$3 }" |
	grep "^spt_" | while read -r f; do
		grep -q "\\b$f(" core/include/spt/core.h core/src/*.h || { echo "undeclared: $f"; exit 1; }
	done'

echo "$passed $failed" >"$result"
