#!/usr/bin/env bash
# Runs every benchmark in a release build and writes BENCHMARKS.md at the repository root.
#
#   benches/run-all.sh            # tenants of 1,000, 10,000 and 100,000 users
#   benches/run-all.sh --full     # also 1,000,000 users (takes much longer, needs ~10 GB)
#
# Every number is printed by a benchmark binary, never asserted; see each bench's first lines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

users="1000,10000,100000"
if [ "${1:-}" = "--full" ]; then
  users="$users,1000000"
fi
out="BENCHMARKS.md"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT

cargo build --release --benches --quiet

section() {
  local title="$1"; shift
  printf '\n## %s\n\n`%s`\n\n```text\n' "$title" "$*" >>"$tmp"
  "$@" 2>/dev/null | grep -v '^{' >>"$tmp"
  printf '```\n' >>"$tmp"
}

{
  echo "# Benchmarks"
  echo
  echo "Written by \`benches/run-all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
  echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')),"
  echo "$(free -g | awk '/Mem:/{print $2}') GiB memory, load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "$(rustc --version). Release build."
  echo
  echo "Numbers, not assertions: each section is one benchmark binary's own output."
  echo
} >"$tmp"

# Issues #5, #6 and #7: the sync against the in-process emulator (quota model on).
cargo bench --quiet --bench sync -- --users "$users" 2>/dev/null | grep -v '^{' >>"$tmp"
# Issue #12: a full-sync task in service mode, on the largest tenant of the run after its baseline.
cargo bench --quiet --bench service -- --users "${users##*,}" 2>/dev/null | grep -v '^{' >>"$tmp"
# Issue #4: the .c1z exporter on a synthetic store of 1,000,000 grants and 200,000 resources.
section "c1z export (issue #4)" cargo bench --quiet --bench c1z_export
# The store: baseline commit, delta commits, snapshot, reopen.
section "Store (sled)" cargo bench --quiet --bench store_apply
# The projection, in memory.
section "Projection" cargo bench --quiet --bench projection

mv "$tmp" "$out"
trap - EXIT
echo "wrote $out"
