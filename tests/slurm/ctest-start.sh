#!/usr/bin/env bash
# The ctest fixture around start.sh: where Slurm cannot run here (start.sh exits 77) it records
# why in STATE_DIR/unavailable and succeeds, so that the Slurm tests skip with that reason
# instead of ctest reporting them as not run; any other failure of start.sh fails the fixture.
#   tests/slurm/ctest-start.sh STATE_DIR
set -uo pipefail
state=$1
mkdir -p "$state"
rm -f "$state/unavailable"
"$(dirname "$0")/start.sh" "$state" 2>"$state/start.err"
rc=$?
cat "$state/start.err" >&2
if [ "$rc" = 77 ]; then
  sed -n 's/^slurm: cannot run here: //p' "$state/start.err" >"$state/unavailable"
  [ -s "$state/unavailable" ] || echo "tests/slurm/start.sh exited 77" >"$state/unavailable"
  exit 0
fi
exit "$rc"
