#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a Docker engine: the time of a dependency-install
# step on an emptied builder, with and without the cache-mount restore. Needs SDI_E2E_BUILDER,
# SDI_E2E_REGISTRY and SDI_E2E_BASE_IMAGE as the real-engine tests do.
#   cargo build --release --locked && bench/cache_mounts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SDI_E2E_BUILDER:?}" "${SDI_E2E_REGISTRY:?}" "${SDI_E2E_BASE_IMAGE:?}"
bin="$PWD/target/release/secure-docker-images"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# 3000 files "downloaded" into the store, 50 ms of latency a batch of 100: like a package install.
cat > "$work/Dockerfile" <<DOCKERFILE
FROM $SDI_E2E_BASE_IMAGE
ARG LOCK
RUN --mount=type=cache,id=sdi-bench-store,target=/store \\
    i=0; while [ \$i -lt 3000 ]; do \\
      f=/store/pkg-\$i.tgz; [ -f "\$f" ] || { head -c 20000 /dev/urandom > "\$f"; [ \$((i % 100)) -eq 0 ] && sleep 0.05; }; \\
      i=\$((i + 1)); done; echo "\$LOCK" > /lock
DOCKERFILE
event="$PWD/tests/fixtures/events/push-default-branch.json"
image="$SDI_E2E_REGISTRY/sdi-bench/mounts-$(date +%s)"
run() { # $1 = cache-mounts, $2 = lockfile stamp; prints the seconds of the install step
  (cd "$work" && env GITHUB_EVENT_NAME=push GITHUB_EVENT_PATH="$event" GITHUB_REPOSITORY=Codertocat/Hello-World \
    GITHUB_REF=refs/heads/master GITHUB_SHA=6113728f27ae82c7b1a177c8d03f9e96e0adf246 RUNNER_TEMP="$work" \
    INPUT_IMAGE="$image" INPUT_BUILDER="$SDI_E2E_BUILDER" INPUT_PLATFORMS=linux/amd64 INPUT_CACHE-MOUNTS="$1" \
    INPUT_CACHE-MOUNTS-IMAGE="$SDI_E2E_BASE_IMAGE" INPUT_BUILD-ARGS="LOCK=$2" "$bin") \
    | sed -n 's/^#[0-9]* DONE \([0-9.]*\)s$/\1/p' | sort -n | tail -1
}
run auto seed >/dev/null                       # fills the store and saves it
for i in 1 2 3; do
  docker buildx prune -af --builder "$SDI_E2E_BUILDER" >/dev/null
  with=$(run auto "lock-$i")
  docker buildx prune -af --builder "$SDI_E2E_BUILDER" >/dev/null
  without=$(run off "lock-$i-off")
  echo "run $i: install step ${without}s without the restore, ${with}s with it"
done
