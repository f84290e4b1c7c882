#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: the leak proof on an image with
# one big incompressible layer built with a secret mount, read back from the registry. Every run
# starts on an emptied builder (the registry cache is warm), as a new runner's would. Reports
# the whole run's wall time and the action's own peak memory (VmHWM of its process, not of
# docker's), for a fresh build and then, interleaved round by round, for fully cached rebuilds:
#   token  verify-secrets auto, no secrets-proof-key, the secret an npm token (proven by its value)
#   weak   verify-secrets auto, no secrets-proof-key, the secret a password (every layer read)
#   key    verify-secrets auto with secrets-proof-key, the same password
#   false  verify-secrets false
# Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/scan_real.sh [size in MiB, default 768] [rounds, default 3]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
mib="${1:-768}"
rounds="${2:-3}"
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
RUN --mount=type=secret,id=token,env=TOKEN head -c $((mib * 1024 * 1024)) /dev/urandom > /big.bin
DOCKERFILE
image="$SDI_E2E_REGISTRY/sdi-bench/scan-$(date +%s)"
platform=$(native_platform)
token=npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK
password=hunter2-correct-horse
key=bench-proof-key-0123456789abcdef0123456789
run() { # $1 = mode; prints "<seconds> s, <peak> MB peak"
  local start end pid peak=0 hwm verify=auto value=$password proof_key=""
  case "$1" in
    token) value=$token ;;
    key) proof_key=$key ;;
    false) verify=false ;;
  esac
  empty_builder
  start=$(date +%s.%N)
  action_cmd push "$push_event" refs/heads/master INPUT_IMAGE="$image" INPUT_PLATFORMS="$platform" \
    INPUT_SECRET-ENVS=token=TOKEN TOKEN="$value" INPUT_VERIFY-SECRETS="$verify" \
    INPUT_SECRETS-PROOF-KEY="$proof_key" INPUT_CACHE-MOUNTS=off
  # exec: the pid is the action's own, whose peak memory is read below.
  (cd "$work" && exec "${cmd[@]}") >"$work/out-$1" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    [ -n "$hwm" ] && [ "$hwm" -gt "$peak" ] && peak=$hwm
    sleep 0.05
  done
  wait "$pid" || { cat "$work/out-$1" >&2; exit 1; }
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v p="$peak" 'BEGIN { printf "%.2f s, %d MB peak\n", e - s, p / 1024 }'
}
# What the scan did in the last run of MODE: its notice, or "no scan".
scan_of() {
  grep -ho 'No secret value in the image: [^.]*\.[^.]*\.[^;:]*[^.]*' "$work/out-$1" | head -1 || echo "no scan"
}
echo "fresh build of a $mib MiB layer, no key, a token (proofs recorded): $(run token)"
echo "  $(scan_of token)"
echo "first run with secrets-proof-key (proofs recorded): $(run key)"
: > "$work/times"
for round in $(seq "$rounds"); do
  for mode in token weak key false; do
    echo "$mode $(run "$mode")" >> "$work/times"
  done
  echo "round $round: $(tail -4 "$work/times" | tr '\n' ';')"
  for mode in token weak key; do echo "  $mode: $(scan_of "$mode")"; done
done
median() { awk -v m="$1" '$1 == m { print $2 }' "$work/times" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
off=$(median false)
for mode in token weak key false; do
  echo "everything cached, $mode: median $(median "$mode") s over $rounds rounds ($(awk -v a="$(median "$mode")" -v b="$off" 'BEGIN { printf "%.2f", a / b }') x false)"
done
grep -h 'proof keys' "$work/out-token" || true
echo "(token: no secrets-proof-key, an npm token; weak: no key, a password; key: secrets-proof-key, the password; false: verify-secrets false)"
