#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: what `cache-mounts: auto` does to
# the whole run, against `off`, on an emptied builder each time. Two stores: one like a package
# store, 3000 files of 20 kB and 2 of 25 MB (110 MB, incompressible), "downloaded" at about
# 20 MB/s when missing, and one more package per lockfile; one like a toolchain, 50 MB filled
# once. (a) a dependency change: the install step reruns and adds a package (the package store
# changes and is saved, the toolchain does not); (b) a code-only change: the install step comes
# from the registry cache (nothing should be restored: auto within 0.2 s of off). Also reports
# the pull + unpack of the saved stores image alone (the cost a restore cannot go under). With SDI_BENCH_BASELINE=<an older build of the action>,
# (a) is also timed with it (its own image repository), to compare two versions in one run.
# Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/cache_mounts.sh [rounds]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rounds="${1:-3}"
store="sdi-bench-store-$(date +%s)"
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
ARG LOCK
RUN --mount=type=cache,id=$store,target=/store --mount=type=cache,id=$store-tools,target=/tools \\
    [ -f /tools/cc.bin ] || { head -c 52428800 /dev/urandom > /tools/cc.bin; sleep 2.5; }; \\
    i=0; while [ \$i -lt 3000 ]; do \\
      f=/store/pkg-\$i.tgz; [ -f "\$f" ] || { head -c 20000 /dev/urandom > "\$f"; [ \$((i % 100)) -eq 0 ] && sleep 0.1; }; \\
      i=\$((i + 1)); done; \\
    for b in 1 2; do [ -f /store/big-\$b.bin ] || { head -c 26214400 /dev/urandom > /store/big-\$b.bin; sleep 1.2; }; done; \\
    [ -f /store/pkg-\$LOCK.tgz ] || { head -c 20000 /dev/urandom > /store/pkg-\$LOCK.tgz; sleep 0.1; }; \\
    echo "\$LOCK" > /lock; ls /store | wc -l > /installed
COPY app.txt /app.txt
DOCKERFILE
image="$SDI_E2E_REGISTRY/sdi-bench/mounts-$(date +%s)"
run() { # $1 = cache-mounts, $2 = lockfile stamp, $3 = app; prints the whole run's seconds
  local tag=${RUN_IMAGE:+baseline-}
  printf '%s\n' "$3" > "$work/app.txt"
  timed_push "$tag$1-$2-$3" INPUT_IMAGE="${RUN_IMAGE:-$image}" INPUT_PLATFORMS=linux/amd64 \
    INPUT_CACHE-MOUNTS="$1" INPUT_CACHE-MOUNTS-IMAGE="$SDI_E2E_BASE_IMAGE" INPUT_BUILD-ARGS="LOCK=$2"
  # The action pushes again once when the registry refuses a push in BuildKit's push race.
  if grep -q "The registry refused a push" "$work/out"; then echo "note: run ($tag$1 $2 $3) pushed twice" >&2; fi
}
pull() { # the saved store image pulled and unpacked once, on an emptied builder
  empty_builder
  printf 'FROM %s:buildcache-mounts AS s\nFROM %s\nRUN --mount=type=bind,from=s,target=/s du -sk /s\n' \
    "$image" "$SDI_E2E_BASE_IMAGE" > "$work/Pull.Dockerfile"
  local start
  start=$(date +%s.%N)
  docker buildx build --builder "$SDI_E2E_BUILDER" -f "$work/Pull.Dockerfile" "$work" >/dev/null 2>&1
  since "$start"
}
run auto seed app-0 >/dev/null # fills the stores, saves them, writes the registry cache
base="${SDI_BENCH_BASELINE:-}"
if [ -n "$base" ]; then RUN_BIN="$base" RUN_IMAGE="$image-baseline" run auto seed app-0 >/dev/null; fi
met=0
for i in $(seq "$rounds"); do
  dep_auto=$(run auto "lock-$i" app-0)
  dep_base=""
  if [ -n "$base" ]; then dep_base=", baseline $(RUN_BIN="$base" RUN_IMAGE="$image-baseline" run auto "lock-$i" app-0) s"; fi
  dep_off=$(run off "lock-$i-off" app-0)
  # (b): each measurement right after the same run (the one that writes this lockfile's registry
  # cache), so that each finds the builder's disk in the same state.
  run auto "lock-$i" app-0 >/dev/null
  code_auto=$(run auto "lock-$i" "app-$i")
  run auto "lock-$i" app-0 >/dev/null
  code_off=$(run off "lock-$i" "app-$i-off")
  run auto "lock-$i" app-0 >/dev/null
  pulled=$(pull)
  # Targets (issue 20), see `verdict` in lib.sh: (a) auto at most half of off.
  verdict=$(verdict "$code_auto" "$code_off" "$dep_auto" "$dep_off" 0.5)
  case "$verdict" in *"NOT met"*) ;; *) met=$((met + 1)) ;; esac
  echo "round $i: (a) dependency change: auto ${dep_auto} s${dep_base}, off ${dep_off} s; (b) code-only change: auto ${code_auto} s, off ${code_off} s, pull+unpack ${pulled} s — $verdict"
done
echo "all targets met in $met of $rounds rounds"
helper_times
