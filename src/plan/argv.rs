//! The exact command a plan runs: `docker buildx build …`, or for a merge `docker buildx
//! imagetools create …`. Nothing for a cleanup or an untrusted merge.

use super::{BuildPlan, Mode, Verify};
use crate::context::{Context, SecretSpec};

pub(super) fn argv(ctx: &Context, plan: &BuildPlan, secrets: &[&SecretSpec]) -> Vec<String> {
    match plan.mode {
        Mode::Cleanup => Vec::new(),
        Mode::Merge if !plan.push => Vec::new(),
        Mode::Merge => merge(plan),
        Mode::Build | Mode::PerPlatform => build(ctx, plan, secrets),
    }
}

fn merge(plan: &BuildPlan) -> Vec<String> {
    let mut argv: Vec<String> = ["docker", "buildx", "imagetools", "create"].map(String::from).to_vec();
    if let Some(b) = plan.builder.flag() {
        argv.extend(["--builder".to_string(), b.to_string()]);
    }
    for t in &plan.tags {
        argv.extend(["--tag".to_string(), t.clone()]);
    }
    argv.extend(plan.merge_sources.iter().cloned());
    argv
}

fn build(ctx: &Context, plan: &BuildPlan, secrets: &[&SecretSpec]) -> Vec<String> {
    let inputs = &ctx.inputs;
    let mut argv: Vec<String> = ["docker", "buildx", "build"].map(String::from).to_vec();
    let mut flag = |name: &str, value: &str| {
        argv.push(name.to_string());
        argv.push(value.to_string());
    };
    if let Some(b) = plan.builder.flag() {
        flag("--builder", b);
    }
    if let Some(f) = &inputs.file {
        flag("--file", f);
    }
    if let Some(t) = &inputs.target {
        flag("--target", t);
    }
    flag("--platform", &plan.platforms.join(","));
    // Tagged here only when no scan must come first; otherwise the tags follow a clean scan.
    if plan.mode == Mode::Build && plan.verify != Some(Verify::Registry) {
        for t in &plan.tags {
            flag("--tag", t);
        }
    }
    for (k, v) in &plan.labels {
        flag("--label", &format!("{k}={v}"));
    }
    for (k, v) in &inputs.build_args {
        flag("--build-arg", &format!("{k}={v}"));
    }
    for s in secrets {
        flag("--secret", &s.buildx_arg());
    }
    for c in &plan.cache_from {
        flag("--cache-from", c);
    }
    for c in &plan.cache_to {
        flag("--cache-to", c);
    }
    if let Some(p) = &inputs.provenance {
        argv.push(format!("--provenance={p}"));
    }
    if let Some(s) = &inputs.sbom {
        argv.push(format!("--sbom={s}"));
    }
    // By digest: a per-platform job (the merge tags it), or a build whose tags wait for the scan.
    let by_digest = plan.mode == Mode::PerPlatform || plan.verify == Some(Verify::Registry);
    match (plan.push, by_digest) {
        (true, true) => argv.extend([
            "--output".to_string(),
            format!("type=image,name={},push-by-digest=true,name-canonical=true,push=true", inputs.image),
        ]),
        (true, false) => argv.push("--push".into()),
        (false, _) => {}
    }
    argv.push(inputs.context.clone());
    argv
}
