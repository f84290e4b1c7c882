#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: two pull requests interleaved, as
# on a busy repository. On an emptied builder each time: main builds, PR 11 builds, PR 12 (other
# content in the expensive step) builds, then PR 11 pushes a commit that leaves the expensive
# step's inputs alone. Reports that last run's whole wall time and its cache hits, with
# `pr-cache: shared` and `per-pr`. Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and
# SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/pr_cache.sh [rounds]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rounds="${1:-3}"
# The expensive step: 4 s of work that depends only on deps.txt (a lockfile, say).
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
COPY deps.txt /deps.txt
RUN cat /deps.txt > /installed.txt && sleep 4
COPY app.txt /app.txt
DOCKERFILE
payload() { # $1 = PR number: the same-repository fixture, renumbered
  sed -e "s/\"number\": 2,/\"number\": $1,/" tests/fixtures/events/pull_request-same-repo-opened.json > "$work/pr-$1.json"
}
payload 11
payload 12
run() { # $1 = event, $2 = payload, $3 = ref, $4 = pr-cache, $5 = deps, $6 = app; prints "seconds hits"
  printf '%s\n' "$5" > "$work/deps.txt"
  printf '%s\n' "$6" > "$work/app.txt"
  : > "$work/summary"
  docker buildx prune -af --builder "$SDI_E2E_BUILDER" >/dev/null
  local start secs
  start=$(date +%s.%N)
  action "$1" "$2" "$3" GITHUB_STEP_SUMMARY="$work/summary" INPUT_IMAGE="$image" INPUT_PLATFORMS="$platform" \
    INPUT_PR-CACHE="$4" INPUT_CACHE-MOUNTS=off >/dev/null
  secs=$(since "$start")
  echo "$secs s, $(sed -n 's/^| Cache hits | \(.*\) |$/\1/p' "$work/summary")"
}
platform=$(native_platform)
for round in $(seq "$rounds"); do
  for mode in shared per-pr; do
    image="$SDI_E2E_REGISTRY/sdi-bench/pr-cache-$mode-$(date +%s%N)"
    run push "$push_event" refs/heads/master "$mode" deps-main app-main >/dev/null
    run pull_request "$work/pr-11.json" refs/pull/11/merge "$mode" deps-pr11 app-1 >/dev/null
    run pull_request "$work/pr-12.json" refs/pull/12/merge "$mode" deps-pr12 app-1 >/dev/null
    echo "round $round, $mode: PR 11's next commit took $(run pull_request "$work/pr-11.json" refs/pull/11/merge "$mode" deps-pr11 app-2)"
  done
done
