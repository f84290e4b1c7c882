#!/usr/bin/env python3
"""The whole job a user waits for, on a fresh runner each round (no images, no builder), for
one Dockerfile pushed with a registry cache, three ways, in interleaved rounds:

- action: this action's image, pulled by the runner and run as a container action
  (../shared/harness/ghrunner/run-container-action.sh; SDI_E2E_RUNNER names another);
- pulling: as before the image carried BuildKit: the same image without it, its builder
  buildx's docker-container one on a pulled moby/buildkit:v0.32.2 (a loopback registry gets
  that tag as a copy of its buildx-stable-1);
- four:   docker/setup-buildx-action v3 -> login-action v3 -> metadata-action v5 ->
  build-push-action v6, each run as the runner runs a JavaScript action (node on its dist/,
  INPUT_* and the file commands; the post steps in reverse order), outputs passed as a
  workflow passes them;
- bare:   the CLI by hand: `buildx create --driver docker-container --bootstrap` (pulls
  moby/buildkit), `buildx build --push` with the same cache, `buildx rm`.

Warm: each way's cache was written by an untimed run first. Cold: a new repository per round.

Environment: SDI_E2E_BUILDER, SDI_E2E_REGISTRY, SDI_E2E_BASE_IMAGE (as the real-engine tests);
a Docker daemon (the harness's); node; BENCH_ACTIONS, a folder with the four actions' checkouts
(setup-buildx-action, login-action, metadata-action, build-push-action), or BENCH_ACTIONS_GIT,
a folder of bare repositories docker+<name>/repo to export the tags below from;
BENCH_ACTION_IMAGE, the action image (else built here as tests/action_image.rs builds it);
BENCH_BASELINE_IMAGE, another build of the action image (the bench of an older commit prints its
tag), run as "baseline" exactly as "action" is, in the same rounds;
BENCH_ZSTD, zstd levels (e.g. "3,19"): for each, the action image's layers recompressed with zstd
at that level (nothing else changed), run as "zstd-<level>" exactly as "action" is, in the same
rounds (Docker 23 and later pull zstd layers; 20.10 does not);
BENCH_SIGN=1: also "signed", the action image run exactly as "action" but with the runner's OIDC
token offered (`permissions: id-token: write`) and the loopback Sigstore of
examples/sigstore-test-stack (started here with cargo run --release), in the same rounds;
BENCH_ROUNDS (default 5). Run from anywhere: python3 bench/job.py
"""

import http.server
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The node20 releases of the canonical workflow (metadata-action v5.5.1: the newest v5 whose
# dist/ the stored snapshots hold).
TAGS = {"setup-buildx-action": "v3.12.0", "login-action": "v3.7.0", "metadata-action": "v5.5.1",
        "build-push-action": "v6.19.2"}
BUILDKIT = "moby/buildkit:buildx-stable-1"  # what setup-buildx-action and `buildx create` pull
BUILDKIT_VERSION = "0.32.2"  # src/pins.rs
ENTRY = "COPY --chmod=755 buildkitd-entrypoint /usr/bin/buildkitd-entrypoint\n"  # BUILDKIT_ENTRYPOINT
EVENT = os.path.join(REPO, "tests/fixtures/events/push-default-branch.json")
SHA = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"


def env(name, default=None):
    value = os.environ.get(name) or default
    if value is None:
        sys.exit(f"job.py: set {name}")
    return value


def sh(*args, **kw):
    done = subprocess.run(args, capture_output=True, text=True, **kw)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {done.returncode}: {done.stderr[-3000:]}")
    return done.stdout


def actions_dir(tmp):
    """The four actions' checkouts: BENCH_ACTIONS, or exported from BENCH_ACTIONS_GIT."""
    if os.environ.get("BENCH_ACTIONS"):
        return os.environ["BENCH_ACTIONS"]
    git = env("BENCH_ACTIONS_GIT")
    out = os.path.join(tmp, "actions")
    for name, tag in TAGS.items():
        os.makedirs(os.path.join(out, name, "dist"))
        git_dir = f"--git-dir={git}/docker+{name}/repo"
        files = ["action.yml"] + [f for f in sh("git", git_dir, "ls-tree", "--name-only", tag, "dist/").split()
                                  if f.endswith(".js")]
        for f in files:
            with open(os.path.join(out, name, f), "wb") as to:
                subprocess.run(["git", git_dir, "cat-file", "blob", f"{tag}:{f}"], stdout=to, check=True)
    return out


def push_image(builder, tag, dockerfile, files):
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(dockerfile)
        for name, src in files:
            os.makedirs(os.path.dirname(os.path.join(d, name)), exist_ok=True)
            shutil.copy(src, os.path.join(d, name))
        sh("docker", "buildx", "build", "--builder", builder, "--provenance=false", "--push", "-t", tag, d)


QEMU = (("buildkit-qemu-aarch64", "/usr/bin/qemu-aarch64-static"), ("buildkit-qemu-arm", "/usr/bin/qemu-arm-static"))


def standin_buildkit(builder, registry, n, d, libs):
    """The harness's BuildKit in moby/buildkit's layout (tests/action_image.rs does the same): the
    stand-in binary's libraries, buildkitd-entrypoint, runc as buildkit-runc, and this machine's
    Debian QEMU as the image's emulators."""
    shim = os.path.join(d, "buildkitd-entrypoint")
    with open(shim, "w") as f:
        f.write('#!/bin/sh\nexec /usr/bin/buildkitd "$@"\n')
    files = [(lib[1:], lib) for lib in libs] + [("buildkitd-entrypoint", shim)]
    dockerfile = f"FROM {registry}/{BUILDKIT}\n" + "".join(f"COPY {lib[1:]} {lib}\n" for lib in libs) + ENTRY
    dockerfile += "RUN [ -e /usr/bin/buildkit-runc ] || ln /usr/bin/runc /usr/bin/buildkit-runc\n"
    for name, path in QEMU:
        if os.path.isfile(path):
            dockerfile += f"COPY {name} /usr/bin/{name}\n"
            files.append((name, path))
    tag = f"{registry}/bench-job/standin-buildkit:{n}"
    push_image(builder, tag, dockerfile, files)
    return tag


def action_images(registry, builder):
    """The image from the top-level Dockerfile with this machine's stand-ins (tests/action_image.rs
    says why), its binaries stripped as release builds are (no docker CLI); and, as the image was
    before it carried BuildKit, one with only the docker CLI, buildx and the binary (the libraries the
    stand-in binary needs as its base), whose builder pulls moby/buildkit. BENCH_ACTION_IMAGE and
    BENCH_PULLING_IMAGE name them instead."""
    if os.environ.get("BENCH_ACTION_IMAGE"):
        return os.environ["BENCH_ACTION_IMAGE"], env("BENCH_PULLING_IMAGE")
    n = uuid.uuid4().hex[:8]
    binary = os.path.join(REPO, "target/release/secure-docker-images")
    with tempfile.TemporaryDirectory() as d:
        for name, src in (("docker", "/usr/local/bin/docker"),
                          ("buildx", "/usr/local/libexec/docker/cli-plugins/docker-buildx"),
                          ("secure-docker-images", binary)):
            sh("strip", "-o", os.path.join(d, name), src)
        docker_image = f"{registry}/bench-job/standin-docker:{n}"
        push_image(builder, docker_image, "FROM scratch\nCOPY docker /usr/local/bin/docker\n", [("docker", f"{d}/docker")])
        push_image(builder, f"{registry}/bench-job/standin-buildx:{n}",
                   "FROM scratch\nCOPY buildx /buildx\n", [("buildx", f"{d}/buildx")])
        libs = [w for line in sh("ldd", binary).splitlines() for w in line.split() if w.startswith("/")]
        buildkit = standin_buildkit(builder, registry, n, d, libs)
        # The build stage: the binary, the CA bundle, and the engine's binaries stripped.
        stage = f"{d}/bin"
        os.makedirs(f"{stage}/etc/ssl/certs")
        shutil.move(f"{d}/secure-docker-images", f"{stage}/secure-docker-images")
        shutil.copy("/etc/ssl/certs/ca-certificates.crt", f"{stage}/etc/ssl/certs/ca-certificates.crt")
        with open(f"{d}/Dockerfile.engine", "w") as f:
            f.write(f"FROM {buildkit} AS buildkit\nFROM {docker_image} AS docker\nFROM scratch\n"
                    "COPY --from=buildkit /usr/bin/buildkitd /usr/bin/buildkit-runc /\n"
                    "COPY --from=docker /usr/local/bin/docker /\n")
        sh("docker", "buildx", "build", "--builder", builder, "-f", f"{d}/Dockerfile.engine",
           "--output", f"type=local,dest={stage}/engine", d)
        for name in ("buildkitd", "buildkit-runc", "docker"):
            sh("strip", "--strip-all", f"{stage}/engine/{name}")
        own = f"{registry}/bench-job/action-buildkit:{n}"
        sh("docker", "buildx", "build", "--builder", builder, "--provenance=false", "--push", "-t", own,
           "--build-arg", f"BUILDX_IMAGE={registry}/bench-job/standin-buildx:{n}",
           "--build-arg", f"BUILDKIT_IMAGE={buildkit}",
           "--build-context", f"build={stage}", REPO)
        pulling = f"{registry}/bench-job/action-libs:{n}"
        # The image before it carried BuildKit had a /tmp (the fallback private directory).
        push_image(builder, pulling,
                   "FROM scratch\nWORKDIR /tmp\n" + "".join(f"COPY {lib[1:]} {lib}\n" for lib in libs)
                   + "COPY bin/etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt\n"
                   "COPY bin/engine/docker /usr/local/bin/docker\n"
                   "COPY buildx /usr/local/libexec/docker/cli-plugins/docker-buildx\n"
                   "COPY bin/secure-docker-images /usr/local/bin/secure-docker-images\n"
                   'ENTRYPOINT ["/usr/local/bin/secure-docker-images"]\n',
                   [(lib[1:], lib) for lib in libs]
                   + [(f"bin/{p}", f"{stage}/{p}") for p in ("etc/ssl/certs/ca-certificates.crt", "engine/docker",
                                                             "secure-docker-images")]
                   + [("buildx", f"{d}/buildx")])
    return own, pulling


def zstd_copy(builder, ref, level):
    """`ref` with every layer recompressed with zstd at `level`: the same files, the same config."""
    tag = f"{ref}-zstd{level}"
    with tempfile.TemporaryDirectory() as d:
        with open(os.path.join(d, "Dockerfile"), "w") as f:
            f.write(f"FROM {ref}\n")
        sh("docker", "buildx", "build", "--builder", builder, "--provenance=false", "--output",
           f"type=image,name={tag},push=true,oci-mediatypes=true,compression=zstd,"
           f"compression-level={level},force-compression=true", d)
    return tag


def layer_sizes(ref):
    manifest = json.loads(sh("docker", "buildx", "imagetools", "inspect", "--raw", ref))
    return [layer["size"] for layer in manifest.get("layers", [])]


def fresh_runner():
    """No images but the registry's, no builder, nothing left of a previous job."""
    for line in sh("docker", "ps", "-aq").split():
        subprocess.run(["docker", "rm", "-fv", line], capture_output=True)
    images = sh("docker", "image", "ls", "-q").split()
    if images:
        subprocess.run(["docker", "image", "rm", "-f", *set(images)], capture_output=True)
    subprocess.run(["docker", "volume", "prune", "-f"], capture_output=True)
    subprocess.run(["sync"])


class Api(http.server.BaseHTTPRequestHandler):
    """GitHub's REST API as metadata-action asks it: the repository of the event."""
    repository = {}

    def do_GET(self):
        body = json.dumps(self.repository).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def runner_env(home, tmp, api):
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_", "RUNNER_", "STATE_"))}
    base.update({
        "HOME": home, "CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push",
        "GITHUB_EVENT_PATH": EVENT, "GITHUB_REF": "refs/heads/master", "GITHUB_SHA": SHA,
        "GITHUB_REPOSITORY": "Codertocat/Hello-World", "GITHUB_REPOSITORY_OWNER": "Codertocat",
        "GITHUB_ACTOR": "Codertocat", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_NUMBER": "1",
        "GITHUB_RUN_ATTEMPT": "1", "GITHUB_JOB": "build", "GITHUB_WORKFLOW": "CI",
        "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": api,
        "GITHUB_GRAPHQL_URL": f"{api}/graphql", "GITHUB_WORKSPACE": os.path.join(tmp, "ws"),
        "RUNNER_TEMP": os.path.join(tmp, "temp"), "RUNNER_TOOL_CACHE": os.path.join(tmp, "tools"),
        "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64", "GITHUB_TOKEN": "ghs_bench",
    })
    return base


def file_commands(path):
    """`name<<delimiter` blocks and `name=value` lines of a file command."""
    out, lines = {}, open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            j = lines.index(delimiter, i + 1)
            out[name] = "\n".join(lines[i + 1:j])
            i = j
        elif "=" in line:
            name, value = line.split("=", 1)
            out[name] = value
        i += 1
    return out


def defaults(action, token):
    """The inputs the runner gives a step that does not set them: action.yml's defaults."""
    import yaml
    declared = yaml.safe_load(open(os.path.join(action, "action.yml"))).get("inputs") or {}
    out = {}
    for name, spec in declared.items():
        value = (spec or {}).get("default", "")
        value = "true" if value is True else "false" if value is False else str(value)
        out[name] = value.replace("${{ github.token }}", token)
    return out


def js_step(action, inputs, base, tmp, state=None):
    """One JavaScript action step (its post step when `state` is given): outputs and state."""
    env = dict(base)
    inputs = dict(defaults(action, base["GITHUB_TOKEN"]), **inputs)
    files = {}
    for var in ("GITHUB_OUTPUT", "GITHUB_STATE", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STEP_SUMMARY"):
        files[var] = os.path.join(tmp, f"{var.lower()}_{uuid.uuid4().hex}")
        open(files[var], "w").close()
        env[var] = files[var]
    for k, v in inputs.items():
        env["INPUT_" + k.replace(" ", "_").upper()] = v
    for k, v in (state or {}).items():
        env["STATE_" + k] = v
    main = os.path.join(action, "dist/index.js")
    done = subprocess.run(["node", main], env=env, cwd=env["GITHUB_WORKSPACE"], capture_output=True, text=True)
    if done.returncode != 0 or "::error::" in done.stdout:
        raise RuntimeError(f"{action}: {done.stdout[-3000:]}{done.stderr[-2000:]}")
    return file_commands(files["GITHUB_OUTPUT"]), file_commands(files["GITHUB_STATE"])


def four(actions, image, registry, tmp, api):
    base = runner_env(os.path.join(tmp, "home"), tmp, api)
    a = lambda name: os.path.join(actions, name)
    _, setup_state = js_step(a("setup-buildx-action"), {}, base, tmp)
    _, login_state = js_step(a("login-action"), {"registry": registry, "username": "bench", "password": "bench"},
                             base, tmp)
    meta, _ = js_step(a("metadata-action"), {"images": image}, base, tmp)
    _, build_state = js_step(a("build-push-action"), {
        "context": ".", "push": "true", "tags": meta["tags"], "labels": meta["labels"],
        "annotations": meta.get("annotations", ""), "cache-from": f"type=registry,ref={image}:buildcache",
        "cache-to": f"type=registry,ref={image}:buildcache,mode=max"}, base, tmp)
    for name, state in (("build-push-action", build_state), ("login-action", login_state),
                        ("setup-buildx-action", setup_state)):
        js_step(a(name), {}, base, tmp, dict(state, isPost="true"))


def bare(image, tmp):
    env = dict(os.environ, HOME=os.path.join(tmp, "home"))
    name = "bare-" + uuid.uuid4().hex[:6]
    sh("docker", "buildx", "create", "--name", name, "--driver", "docker-container", "--bootstrap", env=env)
    try:
        sh("docker", "buildx", "build", "--builder", name, "--push", "-t", f"{image}:latest",
           "--cache-from", f"type=registry,ref={image}:buildcache",
           "--cache-to", f"type=registry,ref={image}:buildcache,mode=max", os.path.join(tmp, "ws"), env=env)
    finally:
        sh("docker", "buildx", "rm", name, env=env)


# The runner's pull of the action image, timed apart in each job of the action's ways.
PULLS = {}


def sigstore_stack(tmp):
    """The loopback Sigstore, started for BENCH_SIGN: its env file's NAME=VALUE pairs."""
    out = os.path.join(tmp, "sigstore")
    proc = subprocess.Popen(["cargo", "run", "--quiet", "--release", "--example", "sigstore-test-stack", "--",
                             "--out", out], cwd=REPO)
    for _ in range(1200):
        if os.path.exists(os.path.join(out, "env")):
            pairs = [line.split("=", 1) for line in open(os.path.join(out, "env")).read().splitlines() if "=" in line]
            return proc, dict(pairs)
        time.sleep(0.5)
    proc.kill()
    sys.exit("job.py: the sigstore test stack did not start")


def ours(runner, action, image, platform, tmp, own_buildkit=True, sign=None):
    # The runner pulls the image at "Set up job"; done here first (the simulation then finds
    # it), so that the pull's share of the job is known.
    start = time.monotonic()
    sh("docker", "pull", "-q", action)
    PULLS.setdefault(action, []).append(time.monotonic() - start)
    # RUNNER_TEMP bind-mounted from the host, as the runner mounts it (BuildKit's socket is
    # shared through it).
    env = dict(os.environ, GHR_ACTION_YML=os.path.join(REPO, "action.yml"), GHR_RUN_ID="4242",
               GHR_RUNNER_TEMP_MOUNT="1")
    if not own_buildkit:  # as if not in its container: buildx's builder, which pulls moby/buildkit
        env["GHR_STEP_ENV"] = "SDI_OWN_CONTAINER="
    inputs = [f"image={image}", f"platforms={platform}", "github-token="]
    if sign:  # `permissions: id-token: write`, and the loopback Sigstore
        env["GHR_ID_TOKEN_URL"] = sign["ACTIONS_ID_TOKEN_REQUEST_URL"]
        env["GHR_ID_TOKEN_TOKEN"] = sign["ACTIONS_ID_TOKEN_REQUEST_TOKEN"]
        inputs += [f"sigstore-fulcio-url={sign['INPUT_SIGSTORE-FULCIO-URL']}",
                   f"sigstore-rekor-url={sign['INPUT_SIGSTORE-REKOR-URL']}"]
    done = subprocess.run([runner, action, os.path.join(tmp, "ws"), "push", EVENT, *inputs], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"action: {done.stdout[-3000:]}")
    if sign and "attestation-digest" not in done.stdout:
        raise RuntimeError(f"signed: no attestation: {done.stdout[-3000:]}")


def job(way, tmp, args, image):
    """One job on a fresh runner: its wall time, from the runner's first pull to its last step."""
    fresh_runner()
    for d in ("home", "temp", "tools"):
        shutil.rmtree(os.path.join(tmp, d), ignore_errors=True)
        os.makedirs(os.path.join(tmp, d))
    start = time.monotonic()
    if way in ("action", "baseline", "pulling", "signed") or way.startswith("zstd-"):
        ours(args["runner"], args[way], image, args["platform"], tmp, own_buildkit=way != "pulling",
             sign=args.get("sign") if way == "signed" else None)
    elif way == "four":
        four(args["actions"], image, args["registry"], tmp, args["api"])
    else:
        bare(image, tmp)
    return time.monotonic() - start


def main():
    builder, registry = env("SDI_E2E_BUILDER"), env("SDI_E2E_REGISTRY")
    base_image = env("SDI_E2E_BASE_IMAGE")
    runner = env("SDI_E2E_RUNNER", os.path.join(REPO, "../shared/harness/ghrunner/run-container-action.sh"))
    rounds = int(os.environ.get("BENCH_ROUNDS", "5"))
    tmp = tempfile.mkdtemp(prefix="bench-job.")
    Api.repository = json.load(open(EVENT))["repository"]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    os.makedirs(os.path.join(tmp, "ws"))
    with open(os.path.join(tmp, "ws/Dockerfile"), "w") as f:
        f.write(f"FROM {base_image}\nRUN echo one > /one.txt && sleep 1\nRUN cat /one.txt > /two.txt\n"
                "COPY app.txt /app.txt\n")
    with open(os.path.join(tmp, "ws/app.txt"), "w") as f:
        f.write("hello\n")
    platform = sh("docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}").strip()
    own, pulling = action_images(registry, builder)
    args = {"runner": runner, "action": own, "pulling": pulling, "actions": actions_dir(tmp),
            "registry": registry, "api": f"http://127.0.0.1:{server.server_port}", "platform": platform}
    baseline = os.environ.get("BENCH_BASELINE_IMAGE")
    args["baseline"] = baseline
    levels = [lv.strip() for lv in os.environ.get("BENCH_ZSTD", "").split(",") if lv.strip()]
    for level in levels:
        args[f"zstd-{level}"] = zstd_copy(builder, own, level)
    stack = None
    if os.environ.get("BENCH_SIGN"):
        stack, args["sign"] = sigstore_stack(tmp)
        args["signed"] = own
    ways = (("action",) + (("signed",) if stack else ()) + tuple(f"zstd-{lv}" for lv in levels)
            + (("baseline",) if baseline else ()) + ("pulling", "four", "bare"))
    # "pulling" pulls the pinned moby/buildkit, which a loopback registry has as a copy of its
    # buildx-stable-1 stand-in.
    pinned = f"{registry}/moby/buildkit:v{BUILDKIT_VERSION}"
    sh("docker", "buildx", "imagetools", "create", "-t", pinned, f"{registry}/{BUILDKIT}")
    run_id = uuid.uuid4().hex[:6]
    warm_image = {w: f"{registry}/bench-job/{w}-{run_id}" for w in ways}
    for w in ways:  # the warm caches, written untimed
        job(w, tmp, args, warm_image[w])
    times = {(w, c): [] for w in ways for c in ("warm", "cold")}
    for r in range(rounds):
        for w in ways:
            times[(w, "warm")].append(job(w, tmp, args, warm_image[w]))
            times[(w, "cold")].append(job(w, tmp, args, f"{registry}/bench-job/{w}-{run_id}-cold{r}"))
        print(f"round {r + 1}: " + ", ".join(f"{w} {c} {times[(w, c)][-1]:.2f} s" for w in ways
                                               for c in ("warm", "cold")), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\nmedians over {rounds} rounds (whole job, fresh runner):")
    for c in ("warm", "cold"):
        print(f"  {c}: " + ", ".join(f"{w} {med[(w, c)]:.2f} s" for w in ways))
    for z in [w for w in ways if w.startswith("zstd-")]:
        print(f"  {z}: " + ", ".join(f"{c} {med[(z, c)] / med[('bare', c)]:.2f} x bare" for c in ("warm", "cold")))
    w = "warm"
    print(f"targets (warm): action <= bare: {'met' if med[('action', w)] <= med[('bare', w)] else 'NOT met'}"
          f" ({med[('action', w)] / med[('bare', w)]:.2f} x); action <= 0.4 x four: "
          f"{'met' if med[('action', w)] <= 0.4 * med[('four', w)] else 'NOT met'}"
          f" ({med[('action', w)] / med[('four', w)]:.2f} x)")
    if stack:
        print("  signing adds: " + ", ".join(f"{c} {med[('signed', c)] - med[('action', c)]:+.2f} s" for c in ("warm", "cold"))
              + " (target: <= 0.5 s warm)")
        stack.kill()
    for way in [w for w in ways if w not in ("four", "bare", "signed") and args[w]]:
        pull = statistics.median(PULLS[args[way]])
        sizes = layer_sizes(args[way])
        print(f"{way} image: {args[way]}, {sum(sizes) / 1e6:.1f} MB compressed "
              f"(layers: {', '.join(f'{s / 1e6:.1f}' for s in sizes)}), the runner's pull of it {pull:.2f} s (median)")
    server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)
    # The last jobs' images (moby/buildkit, pulled by "pulling" and "bare") would otherwise stay
    # on the daemon: the real-engine suite checks that the action pulled none.
    fresh_runner()


if __name__ == "__main__":
    main()
