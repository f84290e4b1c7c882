#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: what a cache-mount restore and the
# save after it cost on a store shaped like a package manager's (many files: by default 30,000
# of 2-37 kB, about 600 MB, text-like so that it compresses as source does), the whole run of a
# dependency change on an emptied builder: the install step starts, the action stops it,
# restores the store, builds again (the step adds one package) and saves what changed. The
# step "downloads" for 60 s on an empty store, so that restoring always pays and every round
# restores. With SDI_BENCH_BASELINE=<an older build of the action>, each round also runs it
# (its own image repository), to compare two versions in the same rounds.
# Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/restore.sh [rounds] [files]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rounds="${1:-3}"
files="${2:-30000}"
store="sdi-bench-restore-$(date +%s)"
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
ARG LOCK
RUN --mount=type=cache,id=$store,target=/store \\
    sleep 1; if [ ! -d /store/pkgs ]; then \\
      mkdir -p /store/pkgs; head -c $((files * 9 * 16 * 48)) /dev/urandom | od -An -tx1 | awk -v n=$files '\\
        c == 0 { if (i == n) exit; if (f) close(f); d = "/store/pkgs/" (i % 500); \\
          if (!(d in made)) { system("mkdir -p " d); made[d] = 1 } f = d "/file-" i ".js"; c = (i % 16 + 1) * 48; i++ } \\
        { print > f; c-- }'; \\
      sleep 60; fi; \\
    [ -f /store/pkg-\$LOCK.tgz ] || head -c 20000 /dev/urandom > /store/pkg-\$LOCK.tgz; \\
    echo "\$LOCK" > /lock; ls /store | wc -l > /installed
DOCKERFILE
image="$SDI_E2E_REGISTRY/sdi-bench/restore-$(date +%s)"
run() { # $1 = name, $2 = lockfile stamp; prints the whole run's seconds
  timed_push "auto-$1-$2" INPUT_IMAGE="${RUN_IMAGE:-$image}" INPUT_PLATFORMS=linux/amd64 \
    INPUT_CACHE-MOUNTS-IMAGE="$SDI_E2E_BASE_IMAGE" INPUT_BUILD-ARGS="LOCK=$2"
}
base="${SDI_BENCH_BASELINE:-}"
baseline() { RUN_BIN="$base" RUN_IMAGE="$image-baseline" run baseline "$@"; }
echo "seed: $(run this seed) s (fills the store from nothing, saves it whole)"
if [ -n "$base" ]; then echo "seed, baseline: $(baseline seed) s"; fi
for i in $(seq "$rounds"); do
  this=$(run this "lock-$i")
  other=""
  if [ -n "$base" ]; then other=", baseline $(baseline "lock-$i") s"; fi
  echo "round $i: dependency change on an emptied builder: this build ${this} s${other}"
done
helper_times
