#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: the leak proof on an image with
# one big incompressible layer, read back from the registry. Reports the action's own peak
# memory (VmHWM of its process, not of docker's) and the whole run's wall time, for a fresh
# build and for a rebuild where every step is cached, with `verify-secrets: auto` and `false`.
# Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/scan_real.sh [size in MiB, default 2048] [rounds, default 9]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
mib="${1:-2048}"
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
RUN --mount=type=secret,id=token,env=TOKEN head -c $((mib * 1024 * 1024)) /dev/urandom > /big.bin
DOCKERFILE
image="$SDI_E2E_REGISTRY/sdi-bench/scan-$(date +%s)"
platform=$(native_platform)
run() { # $1 = verify-secrets, $2 = secrets-proof-key (may be empty); prints "<seconds> s, <peak> MB peak"
  local start end pid peak=0 hwm
  start=$(date +%s.%N)
  action_cmd push "$push_event" refs/heads/master INPUT_IMAGE="$image" INPUT_PLATFORMS="$platform" \
    INPUT_SECRET-ENVS=token=TOKEN TOKEN=bench-secret-value-0123456789 INPUT_VERIFY-SECRETS="$1" \
    INPUT_SECRETS-PROOF-KEY="${2:-}" INPUT_CACHE-MOUNTS=off
  # exec: the pid is the action's own, whose peak memory is read below.
  (cd "$work" && exec "${cmd[@]}") >"$work/out" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05
  done
  wait "$pid" || { cat "$work/out" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v p="$peak" 'BEGIN { printf "%.2f s, %d MB peak\n", e - s, p / 1024 }'
}
key=bench-proof-key-0123456789abcdef0123456789
echo "fresh build of a $mib MiB layer, verify-secrets auto (proofs recorded): $(run auto "$key")"
grep -o 'No secret value in the image: [^:]*' "$work/out" || true
rounds="${2:-9}"
: > "$work/times"
for round in $(seq "$rounds"); do
  printf 'auto %s\nkey %s\nfalse %s\n' "$(run auto)" "$(run auto "$key")" "$(run false)" >> "$work/times"
  echo "round $round: $(tail -3 "$work/times" | tr '\n' ';')"
done
for mode in auto key false; do
  echo "everything cached, $mode: median $(awk -v m="$mode" '$1 == m { print $2 }' "$work/times" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }') s over $rounds rounds"
done
echo "(auto: verify-secrets auto without secrets-proof-key; key: with it; false: verify-secrets false)"
