//! Real-engine end-to-end tests (DESIGN.md, Tests): the action binary against real buildx,
//! BuildKit and a registry. They run only when `SDI_E2E_BUILDER` (a buildx builder name),
//! `SDI_E2E_REGISTRY` (a plain-HTTP registry the builder pushes to, such as 127.0.0.1:5000)
//! and `SDI_E2E_BASE_IMAGE` (a busybox-like multi-arch image with /bin/sh) are set; otherwise
//! each test prints why it is skipped and passes. Images go under `$SDI_E2E_REGISTRY/sdi-e2e/`.

mod common;

use std::collections::BTreeSet;

use common::e2e::*;
use serde_json::Value;

#[test]
fn main_push_then_rebuild_from_the_registry_cache_then_a_fork_pr() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("main_push_then_rebuild_from_the_registry_cache_then_a_fork_pr", "main")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN echo \"step one {n}\" > /one.txt && sleep 1\nRUN cat /one.txt > /two.txt\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let platform = native(&e);
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
    ];

    // (a) Trusted main-lane push: the image is in the registry under the digest the action reports.
    let a = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(a.output.status.success(), "{}", a.stdout);
    assert_eq!(a.outputs["pushed"], "true");
    let (digest, _) = manifest(&e.registry, &repo, "latest").expect("latest was pushed");
    assert_eq!(a.outputs["digest"], digest);
    assert!(manifest(&e.registry, &repo, "sha-6113728").is_some());
    assert!(manifest(&e.registry, &repo, "buildcache").is_some(), "the main cache was written");
    assert!(manifest(&e.registry, &repo, "buildcache-pr").is_none(), "a main build never writes the PR cache");

    // (b) An emptied builder, the same build: every step comes from the registry cache.
    prune(&e.builder);
    let b = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(b.output.status.success(), "{}", b.stdout);
    assert_eq!(cache_hits(&b.summary), (3, 3), "{}", b.summary);
    let (cache_digest, _) = manifest(&e.registry, &repo, "buildcache").unwrap();

    // (c) A fork PR: builds from that cache, pushes nothing, writes no cache.
    prune(&e.builder);
    let c = run_action(&ws, "pull_request", "pull_request-fork-opened.json", "refs/pull/2/merge", &inputs, &[]);
    assert!(c.output.status.success(), "{}", c.stdout);
    assert_eq!(c.outputs["trusted"], "false");
    assert_eq!(c.outputs["pushed"], "false");
    assert_eq!(cache_hits(&c.summary), (3, 3), "{}", c.summary);
    assert!(manifest(&e.registry, &repo, "pr-2").is_none(), "a fork PR pushed an image");
    assert!(manifest(&e.registry, &repo, "buildcache-pr").is_none(), "a fork PR wrote the PR cache");
    assert_eq!(manifest(&e.registry, &repo, "buildcache").unwrap().0, cache_digest, "a fork PR changed the main cache");
}

#[test]
fn multi_platform_build_with_a_buildplatform_stage() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("multi_platform_build_with_a_buildplatform_stage", "multi")
    else {
        return;
    };
    // Every RUN step runs on $BUILDPLATFORM: the action builds this on any builder, with
    // or without emulation for the other platform.
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETPLATFORM\nRUN echo \"{n} for $TARGETPLATFORM\" > /target.txt\n\nFROM {base}\nCOPY --from=build /target.txt /target.txt\n",
        base = e.base
    ));
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", "linux/amd64,linux/arm64"),
        ("github-token", ""),
    ];
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    let (digest, index) = manifest(&e.registry, &repo, "latest").unwrap();
    assert_eq!(r.outputs["digest"], digest);
    assert_eq!(index_platforms(&index), BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()]));
}

#[test]
fn a_secret_mount_builds_green_and_leaves_no_trace_in_the_image() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("a_secret_mount_builds_green_and_leaves_no_trace_in_the_image", "secret")
    else {
        return;
    };
    let value = format!("sdi-e2e-secret-{n}-{}", nonce());
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN --mount=type=secret,id=token,required=true wc -c < /run/secrets/token | tr -d ' ' > /secret-length.txt\n",
        base = e.base
    ));
    let r = push_with_secret(&e, &ws, &image, &value);
    assert!(r.output.status.success(), "{}", r.stdout);
    for line in r.stdout.lines().filter(|l| l.contains(&value)) {
        assert_eq!(line, format!("::add-mask::{value}"));
    }
    let (layers, config) = layers_and_config(&e.registry, &repo, "latest", &native(&e));
    let b64 = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(&value)
    };
    for (i, layer) in layers.iter().enumerate() {
        assert!(!contains(layer, value.as_bytes()) && !contains(layer, b64.as_bytes()), "the secret is in layer {i}");
    }
    assert!(
        !contains(&config, value.as_bytes()) && !contains(&config, b64.as_bytes()),
        "the secret is in the image config"
    );
    assert!(r.stdout.contains("::notice::No secret value in the image"), "the image was scanned before it was tagged");
    // The step did see the secret: it recorded its length.
    let proof = format!("{}\n", value.len());
    assert!(
        layers.iter().any(|l| contains(l, b"secret-length.txt") && contains(l, proof.as_bytes())),
        "the secret was not mounted"
    );
}

#[test]
fn per_platform_builds_by_digest_then_a_merge() {
    let Some(Case { _serial, e, n, repo, image, .. }) = start("per_platform_builds_by_digest_then_a_merge", "merge")
    else {
        return;
    };
    // RUN steps on $BUILDPLATFORM: each platform builds on any builder, emulation or not.
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETPLATFORM\nRUN echo \"{n} for $TARGETPLATFORM\" > /target.txt\n\nFROM {base}\nCOPY --from=build /target.txt /target.txt\n",
        base = e.base
    ));
    let digests = tempfile::tempdir().unwrap();
    for platform in ["linux/amd64", "linux/arm64"] {
        let inputs = [
            ("image", image.as_str()),
            ("builder", e.builder.as_str()),
            ("platforms", platform),
            ("push-by-digest", "true"),
            ("github-token", ""),
        ];
        let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
        assert!(r.output.status.success(), "{platform}: {}", r.stdout);
        let digest = r.outputs["digest"].clone();
        assert!(manifest(&e.registry, &repo, &digest).is_some(), "{platform} was pushed by digest");
        std::fs::write(digests.path().join(digest.trim_start_matches("sha256:")), "").unwrap();
    }
    assert!(manifest(&e.registry, &repo, "latest").is_none(), "a by-digest push tags nothing");
    let amd64 = manifest(&e.registry, &repo, "buildcache-linux-amd64").expect("amd64 cache").0;
    let arm64 = manifest(&e.registry, &repo, "buildcache-linux-arm64").expect("arm64 cache").0;
    assert_ne!(amd64, arm64, "each platform has its own cache ref");
    assert!(manifest(&e.registry, &repo, "buildcache").is_none(), "no job wrote the shared ref");

    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("merge-digests", digests.path().to_str().unwrap()),
        ("github-token", ""),
    ];
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    let raw =
        docker(&["buildx", "imagetools", "inspect", "--builder", &e.builder, "--raw", &format!("{image}:latest")]);
    let index: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(index_platforms(&index), BTreeSet::from(["linux/amd64".to_string(), "linux/arm64".to_string()]));
    assert_eq!(r.outputs["digest"], manifest(&e.registry, &repo, "latest").unwrap().0);
}

#[test]
fn a_dockerfile_that_copies_its_secret_fails_and_gets_no_tag() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("a_dockerfile_that_copies_its_secret_fails_and_gets_no_tag", "leak")
    else {
        return;
    };
    let value = format!("sdi-e2e-leak-{n}-{}", nonce());
    let ws = Workspace::new(&format!(
        // The nonce makes the step new: secrets are not part of BuildKit's cache key, so a step
        // cached by an earlier run would hold that run's value, not this one's.
        "FROM {base}\nRUN --mount=type=secret,id=token,required=true echo {n} > /n.txt && cp /run/secrets/token /leaked.txt\n",
        base = e.base
    ));
    let r = push_with_secret(&e, &ws, &image, &value);
    assert_eq!(r.output.status.code(), Some(1), "{}", r.stdout);
    let leak = r
        .stdout
        .lines()
        .find(|l| l.starts_with("::error::Leaked: secret 'token'"))
        .unwrap_or_else(|| panic!("a leak error: {}", r.stdout));
    assert!(leak.contains("file /leaked.txt"), "{leak}");
    assert!(!r.stdout.lines().any(|l| l.contains(&value) && l != format!("::add-mask::{value}")));
    assert!(manifest(&e.registry, &repo, "latest").is_none(), "a leaking image got a tag");
    assert!(manifest(&e.registry, &repo, "sha-6113728").is_none());
    assert!(!r.outputs.contains_key("digest"));
}

// Every step that mounts a store begins with `sleep 1`, as a real install begins by resolving
// before it writes: the action stops a step that starts on an emptied builder to restore its
// stores, and a step that wrote in the moment before the stop would make the store's state (and
// these assertions) depend on that race.

#[test]
fn cache_mount_contents_survive_an_emptied_builder() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("cache_mount_contents_survive_an_emptied_builder", "mounts")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN --mount=type=cache,id=sdi-e2e-{n},target=/cache \\\n    sleep 1; ls /cache | grep -c marker > /count.txt; touch /cache/marker-$RUN_ID\n",
        base = e.base
    ));
    let platform = native(&e);
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, &platform, run_id);
    let first = build("1");
    assert!(manifest(&e.registry, &repo, "buildcache-mounts").is_some(), "the store was saved: {}", first.summary);
    prune(&e.builder);
    let second = build("2");
    assert!(second.summary.contains(&format!("| `sdi-e2e-{n}` | ")), "{}", second.summary);
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"count.txt") && contains(l, b"1\n")),
        "the second build saw the first build's file in its cache mount"
    );
}

/// Inside the action's container the runner's `~/.docker` is not visible: a builder made by
/// setup-buildx-action has no record there. Run so (an empty HOME, no DOCKER_CONFIG): the
/// action must attach the builder's container on the daemon, and the build must run on it.
/// `SDI_E2E_DOCKER_HOST` names the daemon when it is not the default socket.
#[test]
fn a_builder_whose_record_is_not_visible_is_attached_through_the_daemon() {
    let test = "a_builder_whose_record_is_not_visible_is_attached_through_the_daemon";
    let Some(Case { _serial, e, n, repo, image, .. }) = start(test, "attach") else {
        return;
    };
    let (driver, _) = builder_platforms(&e.builder);
    if driver.as_deref() != Some("docker-container") {
        skip(test, &format!("SDI_E2E_BUILDER uses the {driver:?} driver; this case needs a docker-container builder"));
        return;
    }
    let ws = Workspace::new(&format!("FROM {base}\nRUN echo \"attached {n}\" > /a.txt\n", base = e.base));
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().display().to_string();
    let mut env = vec![("HOME", home_path.as_str()), ("DOCKER_CONFIG", ""), ("RUNNER_DEBUG", "1")];
    let docker_host = std::env::var("SDI_E2E_DOCKER_HOST").unwrap_or_default();
    if !docker_host.is_empty() {
        env.push(("DOCKER_HOST", docker_host.as_str()));
    }
    let platform = native(&e);
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
    ];
    prune(&e.builder);
    let before = cache_records(&e.builder);
    let r = run_action(&ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &env);
    assert!(r.output.status.success(), "{}", r.stdout);
    let endpoint = format!("docker-container://buildx_buildkit_{}0", e.builder);
    let container = shlex::try_quote(&endpoint).unwrap();
    assert!(
        r.stdout.lines().any(|l| l.starts_with("::debug::[builder] docker buildx create --name sdi-e2e-")
            && l.ends_with(&format!("--driver remote {container}"))),
        "the builder was attached through its container: {}",
        r.stdout
    );
    assert!(cache_records(&e.builder) > before, "the build ran on the user's builder: its BuildKit has the records");
    assert!(manifest(&e.registry, &repo, "latest").is_some(), "the image was pushed");
    // The user's builder is left as it was: its record and its container.
    let (_, platforms) = builder_platforms(&e.builder);
    assert!(!platforms.is_empty(), "the user's builder still answers");
}

/// Two pull requests interleaved on an emptied builder each time: main, PR 11, PR 12 (other
/// content in the expensive step), then PR 11 again with that step's inputs unchanged. With
/// `pr-cache: per-pr` PR 11 finds its own cache; with `shared`, PR 12 overwrote it.
#[test]
fn per_pr_caches_survive_another_pull_request() {
    let Some(Case { _serial, e, n, .. }) = start("per_pr_caches_survive_another_pull_request", "pr-cache") else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM {base}\nCOPY deps.txt /deps.txt\nRUN cat /deps.txt > /installed.txt && sleep 1\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let payload = |number: u64| {
        let mut p = common::fixture("pull_request-same-repo-opened.json");
        common::set(&mut p, "/number", number.into());
        common::set(&mut p, "/pull_request/number", number.into());
        let file = ws.path(&format!("runner/pr-{number}.json"));
        std::fs::write(&file, p.to_string()).unwrap();
        file.display().to_string()
    };
    let (pr11, pr12) = (payload(11), payload(12));
    let platform = native(&e);
    let mut last_hits = Vec::new();
    for mode in ["shared", "per-pr"] {
        let image = format!("{}/sdi-e2e/pr-cache-{mode}-{n}", e.registry);
        let inputs = [
            ("image", image.as_str()),
            ("builder", e.builder.as_str()),
            ("platforms", platform.as_str()),
            ("github-token", ""),
            ("pr-cache", mode),
            ("cache-mounts", "off"),
        ];
        let step = |event: &str, payload: &str, git_ref: &str, deps: &str, app: &str| {
            std::fs::write(ws.path("deps.txt"), deps).unwrap();
            std::fs::write(ws.path("app.txt"), app).unwrap();
            prune(&e.builder);
            let r = run_action(&ws, event, payload, git_ref, &inputs, &[]);
            assert!(r.output.status.success(), "{mode} {event}: {}", r.stdout);
            cache_hits(&r.summary)
        };
        step("push", "push-default-branch.json", "refs/heads/master", "deps-main", "app-main");
        step("pull_request", &pr11, "refs/pull/11/merge", "deps-11", "app-1");
        step("pull_request", &pr12, "refs/pull/12/merge", "deps-12", "app-1");
        last_hits.push(step("pull_request", &pr11, "refs/pull/11/merge", "deps-11", "app-2"));
        let repo = format!("sdi-e2e/pr-cache-{mode}-{n}");
        let own = manifest(&e.registry, &repo, "buildcache-pr-11").is_some();
        assert_eq!(own, mode == "per-pr", "{mode}: a tag of PR 11's own");
    }
    // COPY deps.txt and the RUN come from cache only when PR 11's own cache survived PR 12.
    assert_eq!(last_hits, [(0, 3), (2, 3)], "shared, then per-pr");
}

/// An image whose first step mounts the secret, for the proof ledger's tests.
fn proofs_dockerfile(e: &E2e, n: &str) -> String {
    format!(
        "FROM {base}\nRUN --mount=type=secret,id=token echo {n} > /n.txt && head -c 300000 /dev/urandom > /data.bin\nCOPY app.txt /app.txt\n",
        base = e.base
    )
}

/// A push of `ws` with the secret `token` set to `value`, and `secrets-proof-key` if given.
fn proofs_push(e: &E2e, ws: &Workspace, image: &str, value: &str, key: Option<&str>) -> Ran {
    let platform = native(e);
    let mut inputs = vec![
        ("image", image),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
        ("secret-envs", "token=SDI_E2E_SECRET_VALUE"),
    ];
    inputs.extend(key.map(|k| ("secrets-proof-key", k)));
    run_action(ws, "push", "push-default-branch.json", "refs/heads/master", &inputs, &[("SDI_E2E_SECRET_VALUE", value)])
}

/// The notice of a successful run's clean scan.
fn clean_scan(r: &Ran) -> String {
    assert!(r.output.status.success(), "{}", r.stdout);
    r.stdout.lines().find(|l| l.starts_with("::notice::No secret value in the image: ")).unwrap().to_string()
}

/// With `secrets-proof-key`, a rebuild whose layers all come from cache reads none of them
/// again (the ledger proves them clean of these very values), and still gets its tags; a
/// rotated value is scanned again.
#[test]
fn proven_layers_are_not_read_again_and_a_rotated_value_is() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("proven_layers_are_not_read_again_and_a_rotated_value_is", "proofs")
    else {
        return;
    };
    let ws = Workspace::new(&proofs_dockerfile(&e, &n));
    let key = Some("e2e-proof-key-0123456789abcdef0123456789");
    let run = |value: &str| clean_scan(&proofs_push(&e, &ws, &image, value, key));
    let first = run(&format!("sdi-e2e-proof-{n}-one"));
    assert!(!first.contains("already proven"), "{first}");
    assert!(manifest(&e.registry, &repo, "sdi-proofs").is_some(), "the ledger was pushed");

    let second = run(&format!("sdi-e2e-proof-{n}-one"));
    assert!(second.starts_with("::notice::No secret value in the image: 0 layers"), "{second}");
    assert!(second.contains("already proven clean of these values were not read again"), "{second}");
    assert!(manifest(&e.registry, &repo, "latest").is_some(), "and it is tagged");

    let rotated = run(&format!("sdi-e2e-proof-{n}-two"));
    assert!(!rotated.contains("already proven"), "a rotated value is scanned again: {rotated}");
}

/// Without `secrets-proof-key`, a token proves its own layers: the rebuild reads none of them
/// again; a password is read in full every run, and the summary says why; a step that copies
/// the token into a new layer on top of the proven ones is caught before any tag.
#[test]
fn a_token_proves_its_own_layers_and_a_new_layer_with_it_is_caught() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("a_token_proves_its_own_layers_and_a_new_layer_with_it_is_caught", "value-proofs")
    else {
        return;
    };
    let dockerfile = proofs_dockerfile(&e, &n);
    let ws = Workspace::new(&dockerfile);
    let run = |value: &str| proofs_push(&e, &ws, &image, value, None);
    let scan = clean_scan;
    // A token in npm's format, drawn for this run.
    const B62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut bytes = [0u8; 36];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut bytes).unwrap();
    let token: String = "npm_".chars().chain(bytes.iter().map(|b| B62[*b as usize % 62] as char)).collect();

    let first = scan(&run(&token));
    assert!(!first.contains("already proven"), "{first}");
    assert!(manifest(&e.registry, &repo, "sdi-proofs").is_some(), "the ledger was pushed");
    let second = scan(&run(&token));
    assert!(second.starts_with("::notice::No secret value in the image: 0 layers"), "{second}");
    assert!(second.contains("already proven clean of these values were not read again"), "{second}");
    assert!(manifest(&e.registry, &repo, "latest").is_some(), "tagged");

    let weak = run(&format!("hunter2-{n}"));
    assert!(!scan(&weak).contains("already proven"), "a password's layers are read");
    assert!(
        weak.summary.contains("Every layer was read for the secrets") && weak.summary.contains("'token'"),
        "{}",
        weak.summary
    );

    let before = manifest(&e.registry, &repo, "latest").unwrap().0;
    std::fs::write(
        ws.path("Dockerfile"),
        format!("{dockerfile}RUN --mount=type=secret,id=token cp /run/secrets/token /leak-{}.txt\n", nonce()),
    )
    .unwrap();
    let leaking = run(&token);
    assert_eq!(leaking.output.status.code(), Some(1), "{}", leaking.stdout);
    assert!(leaking.stdout.contains("::error::Leaked: secret 'token'"), "{}", leaking.stdout);
    assert_eq!(manifest(&e.registry, &repo, "latest").unwrap().0, before, "latest did not move");
    assert!(!leaking.outputs.contains_key("digest"));
}

/// Two platforms, one store per platform (`id=…-${TARGETARCH}` in a `$BUILDPLATFORM` stage, the
/// pattern of this project's own Dockerfile): both stores are saved, and both are back after
/// the builder is emptied.
#[test]
fn per_platform_cache_mount_stores_both_survive_an_emptied_builder() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("per_platform_cache_mount_stores_both_survive_an_emptied_builder", "mounts-multi")
    else {
        return;
    };
    let ws = Workspace::new(&format!(
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETARCH\nARG RUN_ID\nRUN --mount=type=cache,id=st-{n}-${{TARGETARCH}},target=/cache \\\n    sleep 1; ls /cache | grep -c marker > /count-$TARGETARCH.txt; touch /cache/marker-$RUN_ID\n\nFROM scratch\nARG TARGETARCH\nCOPY --from=build /count-${{TARGETARCH}}.txt /count.txt\n",
        base = e.base
    ));
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, "linux/amd64,linux/arm64", run_id);
    let first = build("1");
    for arch in ["amd64", "arm64"] {
        assert!(first.summary.contains(&format!("| `st-{n}-{arch}` | ")), "{}", first.summary);
    }
    prune(&e.builder);
    let second = build("2");
    for platform in ["linux/amd64", "linux/arm64"] {
        let (layers, _) = layers_and_config(&e.registry, &repo, "latest", platform);
        assert!(
            layers.iter().any(|l| contains(l, b"count.txt") && contains(l, b"1\n")),
            "{platform}: the second build found its own store from the first: {}",
            second.summary
        );
    }
}

/// Two stores, one changed by each build: only that one is saved, as what changed on top of its
/// layers (a removed file included), and an emptied builder gets both back. Filling the empty
/// `deps` takes 4 s (a download), so that restoring pays by what the runs measure.
#[test]
fn only_the_changed_store_is_saved_and_both_survive_an_emptied_builder() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("only_the_changed_store_is_saved_and_both_survive_an_emptied_builder", "mounts-two")
    else {
        return;
    };
    let ws = one_step(
        &e,
        &format!(
            "--mount=type=cache,id=deps-{n},target=/deps --mount=type=cache,id=out-{n},target=/out \\\n    sleep 1; [ -f /deps/lock ] || {{ echo locked > /deps/lock; sleep 4; }}; ls /deps | wc -l > /deps-count.txt; ls /out | wc -l > /out-count.txt; rm -f /out/tmp-*; touch /out/build-$RUN_ID /out/tmp-$RUN_ID"
        ),
    );
    let platform = native(&e);
    let build = |run_id: &str| push_on_an_emptied_builder(&e, &ws, &image, run_id);
    build("1");
    let (deps, out) =
        (store_layer(&e.registry, &repo, &format!("deps-{n}")), store_layer(&e.registry, &repo, &format!("out-{n}")));
    let second = build("2");
    assert!(
        second.summary.contains(&format!("| `deps-{n}` | "))
            && second.summary.contains("no (unchanged: its steps left it as restored)"),
        "{}",
        second.stdout
    );
    assert_eq!(store_layer(&e.registry, &repo, &format!("deps-{n}")), deps, "the unchanged store keeps its layer");
    let now = store_layer(&e.registry, &repo, &format!("out-{n}"));
    assert_eq!((now.len(), &now[..1]), (2, &out[..]), "what changed is saved on top: {}", second.summary);
    assert!(second.summary.contains("changed, on top of the restored copy)"), "{}", second.summary);
    build("3");
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    let has = |file: &[u8], text: &[u8]| layers.iter().any(|l| contains(l, file) && contains(l, text));
    // build-1, build-2 and tmp-2: tmp-1, removed by the second build, is gone from the saved copy.
    assert!(has(b"out-count.txt", b"3\n"), "the third build found both earlier builds' outputs, less the removed");
    assert!(has(b"deps-count.txt", b"1\n"), "and the dependency store");
}

/// A store its step fills in no time: the first build measures it empty, the second restores it
/// and measures that, and the third, on an emptied builder, leaves it to its step (the real
/// registry carries the measurements in the saved image's label).
#[test]
fn a_store_quicker_to_refill_than_to_restore_is_left_to_its_step() {
    let Some(Case { _serial, e, n, image, .. }) =
        start("a_store_quicker_to_refill_than_to_restore_is_left_to_its_step", "mounts-cheap")
    else {
        return;
    };
    let ws = one_step(
        &e,
        &format!("--mount=type=cache,id=cheap-{n},target=/c sleep 1; ls /c | wc -l > /seen.txt; touch /c/f-$RUN_ID"),
    );
    let build = |run_id: &str| push_on_an_emptied_builder(&e, &ws, &image, run_id);
    build("1");
    let second = build("2");
    assert!(second.stdout.contains("Stopping the build"), "costs unknown: restored to measure: {}", second.summary);
    let third = build("3");
    let row = format!("| `cheap-{n}` | no (its steps refill it in ");
    assert!(third.summary.contains(&row), "{}", third.summary);
    assert!(!third.stdout.contains("Stopping the build"), "no stop, no restore: {}", third.stdout);
}

#[test]
fn a_store_the_builder_already_holds_is_not_overwritten_by_the_saved_copy() {
    let Some(Case { _serial, e, n, repo, image, .. }) =
        start("a_store_the_builder_already_holds_is_not_overwritten_by_the_saved_copy", "mounts-warm")
    else {
        return;
    };
    let step = format!("--mount=type=cache,id=warm-{n},target=/cache");
    let ws = Workspace::new(&format!(
        "FROM {base}\nARG RUN_ID\nRUN {step} \\\n    sleep 1; cat /cache/x > /seen.txt 2>/dev/null || echo none > /seen.txt; echo \"run-$RUN_ID\" > /cache/x\n",
        base = e.base
    ));
    let platform = native(&e);
    let build = |run_id: &str| push_with_mounts(&e, &ws, &image, &platform, run_id);
    prune(&e.builder);
    build("1");
    assert!(manifest(&e.registry, &repo, "buildcache-mounts").is_some(), "the store was saved");
    // The builder outlives the run, and another build leaves newer contents in the store.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("Dockerfile"), format!("FROM {}\nRUN {step} echo newer > /cache/x\n", e.base))
        .unwrap();
    docker(&["buildx", "build", "--builder", &e.builder, other.path().to_str().unwrap()]);
    let second = build("2");
    assert!(second.summary.contains("already warm"), "{}", second.summary);
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"seen.txt") && contains(l, b"newer\n")),
        "the step saw the builder's newer store, not the older saved copy: {}",
        second.summary
    );
}

#[test]
fn load_on_a_fork_pr_leaves_the_image_in_the_daemon_and_pushes_nothing() {
    let test = "load_on_a_fork_pr_leaves_the_image_in_the_daemon_and_pushes_nothing";
    let Some(Case { _serial, e, n, repo, image, .. }) = start(test, "load") else {
        return;
    };
    if std::process::Command::new("docker").arg("info").output().map(|o| !o.status.success()).unwrap_or(true) {
        return skip(test, "no Docker daemon answers `docker info`: load needs one");
    }
    let ws = Workspace::new(&format!(
        "FROM {base}\nRUN echo \"loaded {n}\" > /n.txt\nCOPY app.txt /app.txt\n",
        base = e.base
    ));
    let platform = native(&e);
    let inputs = [
        ("image", image.as_str()),
        ("builder", e.builder.as_str()),
        ("platforms", platform.as_str()),
        ("github-token", ""),
        ("load", "true"),
    ];
    let r = run_action(&ws, "pull_request", "pull_request-fork-opened.json", "refs/pull/2/merge", &inputs, &[]);
    assert!(r.output.status.success(), "{}", r.stdout);
    assert_eq!((r.outputs["trusted"].as_str(), r.outputs["pushed"].as_str()), ("false", "false"));
    let tag = format!("{image}:pr-2");
    let inspected = docker(&["image", "inspect", "--format", "{{json .Config.Labels}}", &tag]);
    let labels: Value = serde_json::from_str(inspected.trim()).unwrap();
    assert_eq!(labels["org.opencontainers.image.version"], "pr-2", "{labels}");
    let (status, _, _) = http_get(&e.registry, &format!("/v2/{repo}/tags/list"), "application/json");
    assert_eq!(status, 404, "a fork PR that loads pushes nothing: the repository must not exist");
    docker(&["image", "rm", &tag]);
}

#[test]
fn a_code_only_change_restores_nothing_and_a_dependency_change_finds_the_saved_store() {
    let test = "a_code_only_change_restores_nothing_and_a_dependency_change_finds_the_saved_store";
    let Some(Case { _serial, e, n, repo, image, .. }) = start(test, "mounts-lazy") else {
        return;
    };
    let dockerfile = |lock: &str| {
        format!(
            "FROM {base}\nRUN --mount=type=cache,id=lazy-{n},target=/cache \\\n    sleep 1; echo {lock} > /lock; ls /cache > /seen.txt; touch /cache/pkg-{lock}\nCOPY app.txt /app.txt\n",
            base = e.base
        )
    };
    let ws = Workspace::new(&dockerfile("a"));
    let platform = native(&e);
    let build = || push_with_mounts(&e, &ws, &image, &platform, "fixed");
    let first = build();
    assert!(manifest(&e.registry, &repo, "buildcache-mounts").is_some(), "saved: {}", first.summary);

    // Code-only change on an emptied builder: the install comes from the registry cache.
    prune(&e.builder);
    std::fs::write(ws.path("app.txt"), format!("code change {n}\n")).unwrap();
    let code = build();
    assert!(code.summary.contains(&format!("| `lazy-{n}` | no (its steps came from cache) |")), "{}", code.summary);
    assert!(code.summary.contains("restore –"), "no restore helper ran: {}", code.summary);
    assert!(!code.stdout.contains("Stopping the build"), "{}", code.stdout);

    // Dependency change on an emptied builder: stopped, restored, built again; the step saw
    // the saved package.
    prune(&e.builder);
    std::fs::write(ws.path("Dockerfile"), dockerfile("b")).unwrap();
    let dep = build();
    assert!(
        dep.stdout.contains(&format!("Stopping the build: a step begins to use the cache-mount store(s) lazy-{n}")),
        "{}",
        dep.stdout
    );
    let (layers, _) = layers_and_config(&e.registry, &repo, "latest", &platform);
    assert!(
        layers.iter().any(|l| contains(l, b"seen.txt") && contains(l, b"pkg-a\n")),
        "the dependency change found the first run's package in the store: {}",
        dep.summary
    );
}
