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
