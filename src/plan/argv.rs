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
    for a in &plan.annotate {
        flag("--annotation", a);
    }
    for (k, v) in &inputs.build_args {
        flag("--build-arg", &format!("{k}={v}"));
    }
    options(&plan.options, &mut flag);
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
    for (on, name) in [(plan.options.no_cache, "--no-cache"), (plan.options.pull, "--pull")] {
        if on {
            argv.push(name.into());
        }
    }
    // By digest: a per-platform job (the merge tags it), or a build whose tags wait for the scan.
    let by_digest = plan.mode == Mode::PerPlatform || plan.verify == Some(Verify::Registry);
    for o in &plan.options.outputs {
        argv.extend(["--output".to_string(), o.arg.clone()]);
    }
    if plan.load {
        argv.push("--load".into());
    }
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

/// build-push-action's other inputs, as the plan let this run use them. Caches and outputs are
/// in the plan's lists; these go as they were lowered.
fn options(o: &crate::context::inputs::BuildOptions, flag: &mut impl FnMut(&str, &str)) {
    for (name, value) in &o.build_contexts {
        flag("--build-context", &format!("{name}={value}"));
    }
    let repeated: [(&str, &[String]); 6] = [
        ("--attest", &o.attests),
        ("--no-cache-filter", &o.no_cache_filters),
        ("--ssh", &o.ssh),
        ("--add-host", &o.add_hosts),
        ("--allow", &o.allow),
        ("--ulimit", &o.ulimits),
    ];
    let single = [
        ("--network", &o.network),
        ("--shm-size", &o.shm_size),
        ("--cgroup-parent", &o.cgroup_parent),
        ("--call", &o.call),
    ];
    let singles = single.into_iter().filter_map(|(name, v)| Some((name, std::slice::from_ref(v.as_ref()?))));
    for (name, values) in repeated.into_iter().chain(singles) {
        for v in values {
            flag(name, v);
        }
    }
}
