#!/usr/bin/env bash
# Run a command with the wall clock of its whole process tree moved to each calendar edge in turn.
#   tests/clock_edges.sh 2027-12-31T23:59:59Z 2028-02-29T23:59:59Z -- pytest tests/unit
# libfaketime (Debian package faketime) is preloaded into every process the command starts, so the
# routers, operators and simulators the tests spawn see the same moved clock. The offset is relative
# ("+Ns"): the clock keeps running from the edge, so a run that starts at 23:59:59 crosses midnight.
# DONT_FAKE_MONOTONIC stays unset: with it, time.sleep fails with EINVAL on Python 3.12.
set -euo pipefail

edges=()
while (($#)) && [[ $1 != -- ]]; do edges+=("$1"); shift; done
[[ ${1-} == -- ]] || { echo "usage: $0 EDGE... -- COMMAND..." >&2; exit 2; }
shift
((${#edges[@]} && $#)) || { echo "usage: $0 EDGE... -- COMMAND..." >&2; exit 2; }
command -v faketime >/dev/null || { echo "faketime is missing: apt-get install faketime" >&2; exit 2; }

for edge in "${edges[@]}"; do
    target=$(date -u -d "$edge" +%s) || { echo "not a date: $edge" >&2; exit 2; }
    offset=$((target - $(date -u +%s)))
    echo "=== clock at $edge (offset ${offset}s): $*"
    started=$SECONDS
    if ((offset >= 0)); then shift_by="+${offset}"; else shift_by="${offset}"; fi
    TZ=UTC faketime -f "${shift_by}s" "$@"
    echo "=== $edge passed in $((SECONDS - started)) s"
done
