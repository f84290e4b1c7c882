#!/usr/bin/env bash
# The real-engine suite on every Docker daemon runners have, one after the other, each with
# nothing else changed: Debian's 20.10 (the harness's default), 28.0.4 (GitHub's hosted runners,
# classic image store) and 29.x (the containerd image store, as new installs have it).
#
#   SDI_HARNESS=<harness folder> bench/daemons.sh [DAEMON…]
#
# DAEMON: `default` (the harness's 20.10) or a version built by the harness's
# dockerd/build-dockerd.sh into $SDI_HARNESS/dockerd/versions/<version>/ (default: default
# 28.0.4 29.7.2; a missing one is built when MOBY_GIT names a bare git directory of
# github:moby/moby, and skipped, said so, otherwise). For each: the daemon is stopped and the
# next started with the harness's scripts, the whole suite runs with plain
# `cargo test --release` (the real-engine tests and the action image through the runner
# simulation included), and what the daemon holds — containers, volumes, networks, images — is
# compared before and after: the suite must leave nothing behind. The harness's default daemon
# is started again at the end. Prints a table: daemon, API version, image store, tests passed /
# failed, seconds, what was left.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
: "${SDI_HARNESS:?set SDI_HARNESS to the harness folder (../shared/harness/README.md)}"
H=$SDI_HARNESS
export SDI_E2E_BUILDER=${SDI_E2E_BUILDER:-harness} SDI_E2E_REGISTRY=${SDI_E2E_REGISTRY:-127.0.0.1:5000}
export SDI_E2E_BASE_IMAGE=${SDI_E2E_BASE_IMAGE:-127.0.0.1:5000/library/busybox:latest}
daemons=("$@")
[ ${#daemons[@]} -gt 0 ] || daemons=(default 28.0.4 29.7.2)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$H/up.sh" >/dev/null || { echo "daemons.sh: the harness does not come up ($H/up.sh)" >&2; exit 1; }
cargo test --release --no-run >/dev/null 2>&1 || { echo "daemons.sh: the tests do not build" >&2; exit 1; }

# What a daemon holds, one sorted line per thing.
holds() {
  {
    docker ps -a --format 'container {{.Names}} {{.Image}}'
    docker volume ls --format 'volume {{.Name}}'
    docker network ls --format 'network {{.Name}}'
    docker images --all --digests --format 'image {{.Repository}}:{{.Tag}}@{{.Digest}} {{.ID}}'
  } | sort
}

start() { # DAEMON
  "$H/dockerd/stop.sh" >/dev/null 2>&1
  if [ "$1" = default ]; then
    "$H/dockerd/start.sh" >/dev/null
    return
  fi
  local bin="$H/dockerd/versions/$1/dockerd"
  if [ ! -x "$bin" ]; then
    [ -n "${MOBY_GIT:-}" ] || { echo "no $bin and no MOBY_GIT to build it from" >&2; return 1; }
    local ref=v$1; [ "${1%%.*}" -ge 29 ] && ref=docker-v$1
    MOBY_GIT=$MOBY_GIT MOBY_REF=$ref "$H/dockerd/build-dockerd.sh" >/dev/null || return 1
  fi
  DOCKERD=$bin "$H/dockerd/start.sh" >/dev/null
}

rows=()
for d in "${daemons[@]}"; do
  if ! start "$d"; then
    rows+=("$d | - | - | not started | - | -")
    continue
  fi
  version=$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
  store=$(docker info --format '{{json .DriverStatus}}' | grep -q io.containerd.snapshotter && echo containerd || echo classic)
  holds >"$out/before"
  began=$(date +%s)
  cargo test --release >"$out/$d.log" 2>&1
  code=$?
  took=$(( $(date +%s) - began ))
  holds >"$out/after"
  counts=$(grep -E '^test result' "$out/$d.log" | awk '{p+=$4; f+=$6} END {print p+0 " passed, " f+0 " failed"}')
  left=$(comm -13 "$out/before" "$out/after" | tr '\n' ';')
  rows+=("$d | $version | $store | $counts (exit $code) | ${took} s | ${left:-nothing}")
  cp "$out/$d.log" "${TMPDIR:-/tmp}/sdi-daemons-$d.log"
done
start default || true

echo "| daemon | server | image store | cargo test --release | time | left on the daemon |"
echo "|---|---|---|---|---|---|"
for r in "${rows[@]}"; do echo "| $r |"; done
echo "(each run's output: ${TMPDIR:-/tmp}/sdi-daemons-<daemon>.log)"
