#!/usr/bin/env bash
# Benchmark (not a test): one `plan` run as a whole process, on the release binary.
# Needs hyperfine (Debian: apt-get install hyperfine). Prints hyperfine's summary and
# writes bench/results/plan.json with every run's time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "hyperfine is not installed: apt-get install hyperfine" >&2; exit 1; }
cargo build --release --locked --quiet
bin=target/release/secure-docker-images
fixtures=tests/fixtures/events
mkdir -p bench/results
export INPUT_SECRET_ENVS=npm_token=NPM_TOKEN NPM_TOKEN=bench-value
hyperfine --warmup 20 --runs "${RUNS:-300}" -N \
  --export-json bench/results/plan.json \
  -n 'plan fork PR (json)' "$bin plan --json --event-name pull_request --event-path $fixtures/pull_request-fork-opened.json --repository Codertocat/Hello-World" \
  -n 'plan default-branch push (text)' "$bin plan --event-name push --event-path $fixtures/push-default-branch.json --repository Codertocat/Hello-World --input platforms=linux/amd64,linux/arm64,linux/arm/v7 --input tags=v1,edge"
python3 - <<'PY'
import json, statistics
for r in json.load(open("bench/results/plan.json"))["results"]:
    print(f"{r['command']}: median {statistics.median(r['times'])*1000:.2f} ms over {len(r['times'])} runs")
PY
