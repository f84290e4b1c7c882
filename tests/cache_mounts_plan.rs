//! The cache-mount part of the plan: which stores, restored from where, saved where, for each
//! trust level, and the helper Dockerfiles the action generates (snapshots).

mod common;

use common::{env, fixture};
use sdi::plan::{MountsPlan, check_dockerfile, restore_dockerfile, save_dockerfile};

const DOCKERFILE: &str = "# syntax=docker/dockerfile:1\nARG NODE=22\nFROM node:${NODE} AS deps\nARG STORE=pnpm-store\nRUN --mount=type=cache,id=${STORE},target=/pnpm/store,sharing=locked \\\n    --mount=type=cache,target=/root/.cache/node-gyp,uid=1000,gid=1000,mode=0755 \\\n    --mount=type=secret,id=npm_token,env=NPM_TOKEN \\\n    pnpm install --frozen-lockfile\nRUN <<EOF\necho \"RUN --mount=type=cache,id=not-a-store,target=/x\"\nEOF\n";

fn plan(event: &str, fixture_name: &str, extra: &[(&str, &str)]) -> sdi::plan::BuildPlan {
    let mut ctx = common::context(event, &fixture(fixture_name), &env("Codertocat/Hello-World", extra)).unwrap();
    ctx.dockerfile = Some(DOCKERFILE.to_string());
    sdi::decide(&ctx, &Default::default()).unwrap()
}

#[test]
fn stores_and_lanes_for_each_kind_of_run() {
    let main = plan(
        "push",
        "push-default-branch.json",
        &[("INPUT_GITHUB-TOKEN", "t"), ("INPUT_BUILD-ARGS", "STORE=store-v2")],
    );
    insta::assert_json_snapshot!("cache-mounts-trusted-main", main.cache_mounts);
    assert_eq!(main.login, ["ghcr.io"], "saving needs the cache registry's login");
    let pr = plan("pull_request", "pull_request-same-repo-opened.json", &[]);
    insta::assert_json_snapshot!("cache-mounts-trusted-pr", pr.cache_mounts);
    let fork = plan("pull_request", "pull_request-fork-opened.json", &[]);
    insta::assert_json_snapshot!("cache-mounts-fork", fork.cache_mounts);
    let m = fork.cache_mounts.unwrap();
    assert!(m.save_to.is_none(), "untrusted code never saves");
    assert_eq!(m.restore_from, ["ghcr.io/codertocat/hello-world:buildcache-mounts"], "and reads the main lane only");
}

#[test]
fn per_platform_jobs_and_actions_cache_mode() {
    let per = plan(
        "push",
        "push-default-branch.json",
        &[("INPUT_PUSH-BY-DIGEST", "true"), ("INPUT_PLATFORMS", "linux/arm64")],
    );
    assert_eq!(
        per.cache_mounts.unwrap().save_to.as_deref(),
        Some("ghcr.io/codertocat/hello-world:buildcache-mounts-linux-arm64")
    );
    let read = plan("push", "push-default-branch.json", &[("ACTIONS_CACHE_MODE", "read")]).cache_mounts.unwrap();
    assert!(read.save_to.is_none() && !read.restore_from.is_empty());
    let none = plan("push", "push-default-branch.json", &[("ACTIONS_CACHE_MODE", "none")]).cache_mounts.unwrap();
    assert!(none.save_to.is_none() && none.restore_from.is_empty());
    assert!(plan("push", "push-default-branch.json", &[("INPUT_CACHE-MOUNTS", "off")]).cache_mounts.is_none());
    let merge =
        plan("push", "push-default-branch.json", &[("INPUT_MERGE-DIGESTS", &format!("sha256:{}", "1".repeat(64)))]);
    assert!(merge.cache_mounts.is_none(), "a merge builds nothing");
}

#[test]
fn helper_dockerfiles() {
    let p = plan(
        "push",
        "push-default-branch.json",
        &[
            ("INPUT_CACHE-MOUNTS-MAX-SIZE", "500MB"),
            ("INPUT_CACHE-MOUNTS-IMAGE", "127.0.0.1:5000/library/busybox:latest"),
        ],
    );
    let m = p.cache_mounts.unwrap();
    assert_eq!(m.max_bytes, 500_000_000);
    insta::assert_snapshot!(
        "cache-mounts-restore-dockerfile",
        restore_dockerfile(&m, "ghcr.io/codertocat/hello-world:buildcache-mounts", (&[], true), &[])
    );
    let costs = "m-61:cold=30000,warm=4000,restore=9000";
    insta::assert_snapshot!("cache-mounts-save-dockerfile", save_dockerfile(&m, &[0, 1], costs));
    insta::assert_snapshot!("cache-mounts-check-dockerfile", check_dockerfile(&m));
    // Each store is copied once, by a RUN of its own: one layer a store, named by the label.
    let save = save_dockerfile(&m, &[0, 1], costs);
    assert_eq!(save.matches("\nRUN --mount=type=cache").count(), 2);
    assert_eq!(save.matches("cp -a").count(), 2);
    assert!(!save.contains("COPY"), "no second copy: {save}");
    assert!(save.contains("-le 488281 ]"), "500 MB in KiB");
    let dirs: Vec<String> = m.mounts.iter().map(|s| sdi::plan::mount_dir(&s.id)).collect();
    let (layers, costs_label) = (sdi::mounts::image::LABEL, sdi::plan::mount_costs::COSTS_LABEL);
    let labels = format!("LABEL {layers}=\"{}\" {costs_label}=\"{costs}\"\n", dirs.join(" "));
    assert!(save.ends_with(&labels), "{save}");
    // Only the stores asked for.
    let one = save_dockerfile(&m, &[1], costs);
    assert!(!one.contains(&format!("id={},", m.mounts[0].id)) && one.contains(&format!("id={},", m.mounts[1].id)));
    assert!(one.contains(&format!("{layers}=\"{}\"", dirs[1])), "{one}");
    // On top of the image restored: its layers named first, then the stores brought up to date
    // (what changed only, nothing copied whole).
    let old = [dirs[0].clone(), dirs[1].clone(), dirs[0].clone()];
    let from = "ghcr.io/codertocat/hello-world:buildcache-mounts@sha256:0123";
    let top = sdi::plan::save_on_top_dockerfile(&m, &[1], (from, &old), costs);
    insta::assert_snapshot!("cache-mounts-save-on-top-dockerfile", top);
    assert!(top.starts_with(&format!("FROM {from}\n")) && !top.contains("cp -a"), "{top}");
    assert!(top.contains(&format!("{layers}=\"{} {} {} {}\"", dirs[0], dirs[1], dirs[0], dirs[1])), "{top}");
    // The check reads fingerprints in parallel stages and copies nothing.
    let check = check_dockerfile(&m);
    assert_eq!(check.matches(" AS c").count(), 2);
    assert!(check.contains("sdi-mount-fp") && !check.contains("cp -a"), "{check}");
}

#[test]
fn bad_cache_mount_inputs() {
    for (name, value) in [
        ("cache-mounts", "maybe"),
        ("cache-mounts-max-size", "lots"),
        ("cache-mounts-max-size", "2XB"),
        ("cache-mounts-image", "busy box"),
    ] {
        let e = env("Codertocat/Hello-World", &[(&format!("INPUT_{}", name.to_uppercase()), value)]);
        let err = common::context("push", &fixture("push-default-branch.json"), &e).unwrap_err();
        assert_eq!(err.input, name, "{value}");
    }
}

#[test]
fn platform_arguments_give_one_store_per_platform() {
    let mut ctx = common::context(
        "push",
        &fixture("push-default-branch.json"),
        &env("Codertocat/Hello-World", &[("INPUT_PLATFORMS", "linux/amd64,linux/arm64")]),
    )
    .unwrap();
    ctx.dockerfile = Some(
        "FROM --platform=$BUILDPLATFORM rust AS build\nARG TARGETARCH\nRUN --mount=type=cache,id=sdi-target-${TARGETARCH},target=/target cargo build\n".into(),
    );
    let plan = sdi::decide(&ctx, &Default::default()).unwrap();
    let mounts = plan.cache_mounts.unwrap();
    let ids: Vec<&str> = mounts.mounts.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["sdi-target-amd64", "sdi-target-arm64"]);
    // Both are restored and saved by the helpers, each into its own directory of the image.
    let restore = restore_dockerfile(&mounts, "ghcr.io/o/r:buildcache-mounts", (&[], true), &[]);
    let save = save_dockerfile(&mounts, &[0, 1], "");
    for id in ids {
        assert!(restore.contains(&format!("--mount=type=cache,id={id},target=/sdi-mount")), "{restore}");
        assert!(save.contains(&format!("--mount=type=cache,id={id},target=/sdi-mount")), "{save}");
    }
}

#[test]
fn a_store_a_stopped_step_touched_is_replaced_on_a_fresh_builder_and_kept_only_when_whole_otherwise() {
    let mounts = MountsPlan {
        mounts: sdi::dockerfile::cache_mounts(
            "FROM x\nRUN --mount=type=cache,id=a,target=/a --mount=type=cache,id=b,target=/b make\n",
            &[],
        ),
        restore_from: vec!["ghcr.io/o/r:buildcache-mounts".into()],
        save_to: None,
        max_bytes: 1 << 30,
        helper_image: "busybox".into(),
    };
    let touched = ["a".to_string()];
    let fresh = restore_dockerfile(&mounts, "r:x", (&touched, true), &[]);
    let stage =
        |text: &str, id: &str| text.split("\nFROM ").find(|s| s.contains(&format!("id={id},"))).unwrap().to_string();
    assert!(
        stage(&fresh, "a").contains("find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {} +; if [ -d /sdi-saved/")
    );
    assert!(!stage(&fresh, "b").contains("-delete"), "an untouched store keeps the warm rule");
    let long_lived = restore_dockerfile(&mounts, "r:x", (&touched, false), &[]);
    assert!(stage(&long_lived, "a").contains("-ge $(( ${saved:-0} / 2 )) ]; then how=warm; else find /sdi-mount"));
    // A store left to its steps that the stopped step touched is emptied, never filled.
    let touched = ["a".to_string(), "b".to_string()];
    let emptied = restore_dockerfile(&mounts, "r:x", (&touched, true), &["b".to_string()]);
    let b = stage(&emptied, "b");
    assert!(b.contains("find /sdi-mount -mindepth 1 -maxdepth 1 -exec rm -rf {} +; how=none;"), "{b}");
    assert!(!b.contains("cp -a"), "{b}");
}
