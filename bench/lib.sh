#!/usr/bin/env bash
# Sourced by the bench scripts: what they share. Checks the real-engine environment
# (SDI_E2E_BUILDER, SDI_E2E_REGISTRY, SDI_E2E_BASE_IMAGE, as the real-engine tests use), makes a
# scratch directory ($work, removed on exit), and runs the action as the runner would.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${SDI_E2E_BUILDER:?}" "${SDI_E2E_REGISTRY:?}" "${SDI_E2E_BASE_IMAGE:?}"
repo="$PWD"
bin="$repo/target/release/secure-docker-images"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# action_cmd EVENT PAYLOAD REF [NAME=VALUE…]: sets `cmd` to the action (RUN_BIN, else this
# build) under `env` with the runner's variables for a run of Codertocat/Hello-World, the
# builder, and the given inputs and variables. Run it in $work, as `action` does.
action_cmd() {
  local event=$1 payload=$2 ref=$3
  shift 3
  cmd=(env GITHUB_EVENT_NAME="$event" GITHUB_EVENT_PATH="$payload" GITHUB_REF="$ref"
    GITHUB_REPOSITORY=Codertocat/Hello-World GITHUB_SHA=6113728f27ae82c7b1a177c8d03f9e96e0adf246
    RUNNER_TEMP="$work" INPUT_BUILDER="$SDI_E2E_BUILDER" "$@" "${RUN_BIN:-$bin}")
}

# action EVENT PAYLOAD REF [NAME=VALUE…]: runs that command in $work; output goes to the
# caller's redirections.
action() {
  action_cmd "$@"
  (cd "$work" && exec "${cmd[@]}")
}

# timed_push NAME [NAME=VALUE…]: on an emptied builder, the action on a push to the default
# branch with these variables, its summary in $work/summary-<start>-NAME (what helper_times
# reads) and its output in $work/out and $work/out-NAME; prints the whole run's seconds. A failed
# run prints its output and ends the script.
timed_push() {
  local name=$1 start end
  shift
  empty_builder
  start=$(date +%s.%N)
  action push "$push_event" refs/heads/master GITHUB_STEP_SUMMARY="$work/summary-$start-$name" "$@" \
    >"$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
  end=$(since "$start")
  cp "$work/out" "$work/out-$name"
  echo "$end"
}

# The payload of a push to the default branch (for the scripts that source this file).
# shellcheck disable=SC2034
push_event="$repo/tests/fixtures/events/push-default-branch.json"

# since START: seconds since START (a `date +%s.%N`), two decimals.
since() {
  awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }'
}

# The builder's first platform (its native one).
native_platform() {
  docker buildx inspect --bootstrap "$SDI_E2E_BUILDER" | sed -n 's/^Platforms: *\([^,*]*\).*/\1/p'
}

# verdict CODE_AUTO CODE_OFF DEP_AUTO DEP_OFF RATIO: issue 20's targets for one round of
# cache_mounts*.sh: (b) a code-only change, auto adds at most 0.2 s over off; (a) a dependency
# change, auto at most RATIO x off; and never auto slower than off by more than 0.5 s.
verdict() {
  awk -v a="$1" -v o="$2" -v da="$3" -v doff="$4" -v r="$5" 'BEGIN {
    printf "(b) adds %.2f s (<= 0.2: %s), (a) %.2f x off (<= %s: %s), never > 0.5 s slower: %s",
      a - o, (a - o <= 0.2) ? "met" : "NOT met", da / doff, r, (da <= r * doff) ? "met" : "NOT met",
      (a - o <= 0.5 && da - doff <= 0.5) ? "met" : "NOT met" }'
}

# helper_times: what the helpers took in each `auto` run of cache_mounts*.sh (its summary files,
# $work/summary-<start>-<name>), in order; copies the runs' outputs to SDI_BENCH_KEEP if set.
helper_times() {
  local s name
  for s in "$work"/summary-*; do
    name=${s##*/summary-}
    name=${name#*-}
    case "$name" in *auto-*) printf '%s: %s\n' "$name" "$(grep -h "Cache-mount helpers" "$s" || echo "no helper ran")" ;; esac
  done
  if [ -n "${SDI_BENCH_KEEP:-}" ]; then cp "$work"/out-* "$work"/summary-* "$SDI_BENCH_KEEP"/; fi
}

# empty_builder: the builder emptied, as on a fresh runner: pruned, and the deletions written
# out before the timing starts (a fresh runner's disk is not busy deleting a previous run).
empty_builder() {
  docker buildx prune -af --builder "$SDI_E2E_BUILDER" >/dev/null
  sync
}
