#!/usr/bin/env python3
"""Benchmark (not a test): whole-process time of the action from its start to the moment the
fake `docker` is executed for the build, median over runs, for a few realistic runs.

    cargo build --release --locked --bins && python3 bench/action_overhead.py [RUNS]

Uses target/release/secure-docker-images and target/release/fake-docker (the CI stand-in for
the docker CLI, which writes the time it started `buildx build` to FAKE_DOCKER_STAMP).
"""
import http.server, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ACTION = os.path.join(ROOT, "target/release/secure-docker-images")
FAKE = os.path.join(ROOT, "target/release/fake-docker")
EVENTS = os.path.join(ROOT, "tests/fixtures/events")
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 200

CASES = {
    # login + create builder + build: a trusted push for the runner's own platform
    "trusted push, native platform": dict(event="push", fixture="push-default-branch.json",
        env={"GITHUB_REF": "refs/heads/master", "INPUT_PLATFORMS": "linux/amd64", "INPUT_GITHUB-TOKEN": "ghs_x"}),
    # login + create + inspect + build: amd64 and arm64 on a runner with QEMU already set up
    "trusted push, amd64+arm64": dict(event="push", fixture="push-default-branch.json",
        env={"GITHUB_REF": "refs/heads/master", "INPUT_GITHUB-TOKEN": "ghs_x",
             "FAKE_DOCKER_PLATFORMS": "linux/amd64, linux/arm64, linux/386"}),
    # create + build, no login, one GitHub API call (is the cache package public?): a fork PR
    "fork PR, native platform": dict(event="pull_request", fixture="pull_request-fork-opened.json",
        env={"INPUT_PLATFORMS": "linux/amd64", "INPUT_GITHUB-TOKEN": "ghs_x"}),
}

class GitHubApi(http.server.BaseHTTPRequestHandler):
    """A local stand-in for the GitHub API: every package is public."""
    def do_GET(self):
        body = json.dumps({"id": 1, "name": "pkg", "package_type": "container", "visibility": "public"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass

def main():
    api = http.server.ThreadingHTTPServer(("127.0.0.1", 0), GitHubApi)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{api.server_address[1]}"
    for path in (ACTION, FAKE):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: cargo build --release --locked --bins")
    for name, case in CASES.items():
        samples = []
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(f"{d}/bin"); os.makedirs(f"{d}/temp")
            os.symlink(FAKE, f"{d}/bin/docker")
            env = {"PATH": f"{d}/bin:/usr/bin:/bin", "HOME": d, "GITHUB_EVENT_NAME": case["event"],
                   "GITHUB_EVENT_PATH": f"{EVENTS}/{case['fixture']}", "GITHUB_REPOSITORY": "Codertocat/Hello-World",
                   "GITHUB_ACTOR": "Codertocat", "GITHUB_RUN_ID": "1", "RUNNER_TEMP": f"{d}/temp",
                   "GITHUB_OUTPUT": f"{d}/out", "GITHUB_STEP_SUMMARY": f"{d}/summary",
                   "FAKE_DOCKER_LOG": f"{d}/calls.jsonl", "FAKE_DOCKER_STAMP": f"{d}/stamp",
                   "GITHUB_API_URL": api_url, **case["env"]}
            for i in range(RUNS + 5):
                start = time.time_ns()
                subprocess.run([ACTION], env=env, cwd=d, stdout=subprocess.DEVNULL, check=True)
                with open(f"{d}/stamp") as f:  # a line per build started: this run's is the last
                    reached = int(f.read().split()[-1])
                if i >= 5:  # warm-up
                    samples.append((reached - start) / 1e6)
            calls = sum(1 for _ in open(f"{d}/calls.jsonl")) // (RUNS + 5)
        print(f"{name}: median {statistics.median(samples):.2f} ms to the build "
              f"(p90 {statistics.quantiles(samples, n=10)[-1]:.2f} ms, {RUNS} runs, {calls} docker calls a run)")

main()
