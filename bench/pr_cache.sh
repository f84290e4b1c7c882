#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder: two pull requests interleaved, as
# on a busy repository. On an emptied builder each time: main builds, PR 11 builds, PR 12 (other
# content in the expensive step) builds, then PR 11 pushes a commit that leaves the expensive
# step's inputs alone. Reports that last run's whole wall time and its cache hits, with
# `pr-cache: shared` and `per-pr`. Needs SDI_E2E_BUILDER, SDI_E2E_REGISTRY and
# SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/pr_cache.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SDI_E2E_BUILDER:?}" "${SDI_E2E_REGISTRY:?}" "${SDI_E2E_BASE_IMAGE:?}"
rounds="${1:-3}"
bin="$PWD/target/release/secure-docker-images"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
  local start end
  start=$(date +%s.%N)
  (cd "$work" && env GITHUB_EVENT_NAME="$1" GITHUB_EVENT_PATH="$2" GITHUB_REPOSITORY=Codertocat/Hello-World \
    GITHUB_REF="$3" GITHUB_SHA=6113728f27ae82c7b1a177c8d03f9e96e0adf246 RUNNER_TEMP="$work" \
    GITHUB_STEP_SUMMARY="$work/summary" INPUT_IMAGE="$image" INPUT_BUILDER="$SDI_E2E_BUILDER" \
    INPUT_PLATFORMS="$platform" INPUT_PR-CACHE="$4" INPUT_CACHE-MOUNTS=off "$bin" >/dev/null)
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" -v h="$(sed -n 's/^| Cache hits | \(.*\) |$/\1/p' "$work/summary")" \
    'BEGIN { printf "%.1f s, %s\n", e - s, h }'
}
platform=$(docker buildx inspect --bootstrap "$SDI_E2E_BUILDER" | sed -n 's/^Platforms: *\([^,*]*\).*/\1/p')
for round in $(seq "$rounds"); do
  for mode in shared per-pr; do
    image="$SDI_E2E_REGISTRY/sdi-bench/pr-cache-$mode-$(date +%s%N)"
    run push "$PWD/tests/fixtures/events/push-default-branch.json" refs/heads/master "$mode" deps-main app-main >/dev/null
    run pull_request "$work/pr-11.json" refs/pull/11/merge "$mode" deps-pr11 app-1 >/dev/null
    run pull_request "$work/pr-12.json" refs/pull/12/merge "$mode" deps-pr12 app-1 >/dev/null
    echo "round $round, $mode: PR 11's next commit took $(run pull_request "$work/pr-11.json" refs/pull/11/merge "$mode" deps-pr11 app-2)"
  done
done
