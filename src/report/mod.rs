//! What the run tells people: workflow commands (`::error::`, `::warning::`) and the
//! human rendering of a plan.

pub mod debug;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::buildx::Execution;
use crate::context::InputError;
use crate::plan::{BuildPlan, Mode};
use crate::step::{Annotation, Level, Outcome};

/// Escapes a workflow command's message so that no input can end the line and start
/// another command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// Escapes a workflow command property (`title=…`), where `:` and `,` are separators too.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The one line a bad input ends the run with.
pub fn error_line(e: &InputError) -> String {
    format!("::error title={}::{}", escape_property(&format!("Invalid {}", e.input)), escape_data(&e.to_string()))
}

pub fn warning_line(message: &str) -> String {
    format!("::warning::{}", escape_data(message))
}

/// `::add-mask::` lines for every line of every value, so the runner hides them from here on.
pub fn mask_lines<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    values
        .into_iter()
        .flat_map(str::lines)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| format!("::add-mask::{}", escape_data(l)))
        .collect()
}

pub fn annotation_line(a: &Annotation) -> String {
    let command = match a.level {
        Level::Notice => "notice",
        Level::Warning => "warning",
        Level::Error => "error",
    };
    let props = match &a.location {
        Some((file, line)) => format!(" file={},line={line}", escape_property(file)),
        None => String::new(),
    };
    format!("::{command}{props}::{}", escape_data(&a.message))
}

/// One `GITHUB_OUTPUT` entry. The delimiter is random per run, so no value can end the entry
/// early and inject another output.
pub fn output_entry(name: &str, value: &str, delimiter: &str) -> Result<String, String> {
    if name.contains(delimiter) || value.contains(delimiter) {
        return Err(format!("output {name} contains the delimiter"));
    }
    Ok(format!("{name}<<{delimiter}\n{value}\n{delimiter}\n"))
}

/// Appends the outputs to the `GITHUB_OUTPUT` file.
pub fn write_outputs(path: &Path, outputs: &[(&str, String)], delimiter: &str) -> std::io::Result<()> {
    let mut text = String::new();
    for (name, value) in outputs {
        text.push_str(&output_entry(name, value, delimiter).map_err(std::io::Error::other)?);
    }
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(text.as_bytes())
}

/// Every output of action.yml.
pub const OUTPUT_NAMES: &[&str] = &[
    "digest",
    "imageid",
    "metadata",
    "tags",
    "trusted",
    "lane",
    "trust-reason",
    "cache-from",
    "cache-to",
    "pushed",
    "plan",
    "version",
    "labels",
    "annotations",
    "json",
    "attestation-digest",
    "attestation-bundle",
];

/// docker/metadata-action's outputs: `version`, `labels` and `annotations` one a line (labels
/// in its order), and `json`.
fn metadata_outputs(plan: &BuildPlan) -> Vec<(&'static str, String)> {
    let mut labels: Vec<(&String, &String)> = plan.labels.iter().collect();
    labels.sort_by(|a, b| crate::plan::meta::locale_order(a.0, b.0));
    let json = serde_json::json!({
        "tags": plan.tags,
        "tag-names": plan.tag_names,
        "labels": plan.labels,
        "annotations": plan.annotations,
    });
    vec![
        ("version", plan.version.clone().unwrap_or_default()),
        ("labels", labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("\n")),
        ("annotations", plan.annotations.join("\n")),
        ("json", json.to_string()),
    ]
}

/// The outputs of a run: the plan's always; those that describe an image only once it is built.
pub fn outputs(plan: &BuildPlan, exec: Option<&Execution>) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("trusted", plan.trust.trusted.to_string()),
        ("lane", plan.lane.as_str().to_string()),
        ("trust-reason", plan.trust.reason.clone()),
        ("cache-from", plan.cache_from.join("\n")),
        ("cache-to", plan.cache_to.join("\n")),
        ("plan", serde_json::to_string(plan).expect("a plan always serializes")),
    ];
    out.extend(metadata_outputs(plan));
    match exec {
        None => {
            out.push(("tags", plan.tags.join("\n")));
            out.push(("pushed", "false".into()));
        }
        Some(e) if e.outcome == Outcome::Succeeded => {
            if plan.mode != Mode::PerPlatform {
                out.push(("tags", plan.tags.join("\n")));
            }
            out.push(("pushed", e.pushed.to_string()));
            if let Some(m) = &e.metadata {
                let digest = m.get("containerimage.digest").and_then(Value::as_str);
                let config = m.get("containerimage.config.digest").and_then(Value::as_str);
                if let Some(d) = digest {
                    out.push(("digest", d.to_string()));
                }
                if let Some(id) = config.or(digest) {
                    out.push(("imageid", id.to_string()));
                }
                out.push(("metadata", m.to_string()));
            }
            if let Some(signed) = &e.signed {
                out.push(("attestation-digest", signed.attestation_digest.clone()));
                if let Some(path) = &signed.bundle_path {
                    out.push(("attestation-bundle", path.display().to_string()));
                }
            }
        }
        Some(_) => {}
    }
    out
}

/// Text for a Markdown table cell: no cell breaks, no HTML.
fn cell(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('|', "\\|").replace('\n', " ")
}

fn code_list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.iter().map(|i| format!("<code>{}</code>", cell(i))).collect::<Vec<_>>().join("<br>")
}

/// The job summary, in Markdown.
pub fn summary(plan: &BuildPlan, exec: Option<&Execution>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "### secure-docker-images: `{}`\n", cell(&plan.image));
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| Event | `{}` |", cell(&plan.event));
    let _ = writeln!(s, "| Trusted | {}: {} |", yes_no(plan.trust.trusted), cell(&plan.trust.reason));
    let _ = writeln!(s, "| Lane | {} |", plan.lane.as_str());
    let _ = writeln!(s, "| Cache from | {} |", code_list(&plan.cache_from));
    let _ = writeln!(s, "| Cache to | {} |", code_list(&plan.cache_to));
    let _ = writeln!(s, "| Push | {} |", yes_no(plan.push));
    let merged: Option<Vec<String>> = exec
        .and_then(|e| e.metadata.as_ref()?.get("platforms")?.as_array().cloned())
        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect());
    match (plan.mode, merged) {
        (Mode::Merge, Some(platforms)) => {
            let _ = writeln!(s, "| Mode | merge of {} digests |", plan.merge_sources.len());
            let _ = writeln!(s, "| Platforms | {} |", cell(&platforms.join(", ")));
        }
        (Mode::Merge, None) => {
            let _ = writeln!(s, "| Mode | merge of {} digests |", plan.merge_sources.len());
        }
        (Mode::Cleanup, _) => {}
        (mode, _) => {
            if mode == Mode::PerPlatform {
                let _ = writeln!(s, "| Mode | one platform, pushed by digest for a later merge |");
            }
            let _ = writeln!(s, "| Platforms | {} |", cell(&plan.platforms.join(", ")));
        }
    }
    if matches!(plan.mode, Mode::Build | Mode::PerPlatform) {
        let ready = exec.and_then(|e| e.builder);
        let _ = writeln!(s, "| Builder | {} |", cell(&builder_row(&plan.builder, ready)));
    }
    if let Some(c) = &plan.cleanup {
        let _ = writeln!(s, "| Cleanup | {} |", cell(&cleanup_text(c)));
    }
    let secrets = if plan.secrets.is_empty() { "none".to_string() } else { cell(&plan.secrets.join(", ")) };
    let _ = writeln!(s, "| Secrets (ids) | {secrets} |");
    match exec {
        None => {
            let _ = writeln!(s, "| Result | dry run: nothing was built |");
        }
        Some(e) => {
            result_rows(&mut s, plan, e);
            built_rows(&mut s, plan, e);
        }
    }
    if let Some(e) = exec.filter(|e| !e.mounts.is_empty()) {
        mounts_table(&mut s, e);
    }
    let notes: Vec<&String> = plan.warnings.iter().chain(&plan.notices).collect();
    let annotations: Vec<&Annotation> = exec.map(|e| e.annotations.iter().collect()).unwrap_or_default();
    if !notes.is_empty() || !annotations.is_empty() {
        let _ = writeln!(s, "\n**Notes**\n");
        for n in notes {
            let _ = writeln!(s, "- {}", cell(n));
        }
        for a in annotations {
            let _ = writeln!(s, "- {}", cell(&a.message));
        }
    }
    s
}

/// Each cache-mount store: restored and saved sizes (or why it was not saved), and how long
/// the helpers took.
fn mounts_table(s: &mut String, e: &Execution) {
    let size = |kib: Option<u64>| kib.map_or("no".to_string(), |k| format!("{:.1} MB", k as f64 * 1024.0 / 1e6));
    let _ = writeln!(s, "\n| Cache mount | Restored | Saved |\n|---|---|---|");
    for m in &e.mounts {
        let saved = match (m.too_big, m.unchanged) {
            (true, _) => "no (over cache-mounts-max-size)".to_string(),
            (false, Some(why)) => format!("no ({why})"),
            (false, None) => match m.changed_kib {
                Some(changed) => {
                    format!("{} ({} changed, on top of the restored copy)", size(m.saved_kib), size(Some(changed)))
                }
                None => size(m.saved_kib),
            },
        };
        let restored = match m.filled {
            crate::mounts::Filled::Warm => format!("no (already warm: {})", size(m.restored_kib)),
            crate::mounts::Filled::NotNeeded => "no (its steps came from cache)".to_string(),
            crate::mounts::Filled::Refill(cost) => {
                format!("no ({})", crate::mounts::refill_reason(&cost))
            }
            _ => size(m.restored_kib),
        };
        let _ = writeln!(s, "| `{}` | {restored} | {saved} |", cell(&m.id));
    }
    let secs = |d: Option<std::time::Duration>| d.map_or("–".to_string(), |d| format!("{:.1} s", d.as_secs_f64()));
    let _ = writeln!(
        s,
        "\nCache-mount helpers: restore {}, save {}.",
        secs(e.mount_times.restore),
        secs(e.mount_times.save)
    );
}

/// What the build made: the image's names, the build's record, cache hits, what was pushed.
fn built_rows(s: &mut String, plan: &BuildPlan, e: &Execution) {
    let meta = |key: &str| e.metadata.as_ref().and_then(|m| m.get(key)).and_then(Value::as_str);
    if let Some(name) = meta("image.name") {
        let _ = writeln!(s, "| Image name | {} |", code_list(&[name.to_string()]));
    }
    if let Some(build_ref) = meta("buildx.build.ref") {
        let _ = writeln!(s, "| Build ref | `{}` |", cell(build_ref));
    }
    if let Some(h) = e.cache_hits {
        let _ = writeln!(s, "| Cache hits | {} of {} build steps served from cache |", h.cached, h.total);
    }
    if e.pushed {
        let refs: Vec<String> = match (plan.mode, meta("containerimage.digest")) {
            // By digest only: no tag points at it until the merge.
            (Mode::PerPlatform, Some(d)) => vec![format!("{}@{d}", plan.image)],
            (_, d) => plan.tags.iter().map(|t| d.map_or_else(|| t.clone(), |d| format!("{t}@{d}"))).collect(),
        };
        let _ = writeln!(s, "| Pushed | {} |", code_list(&refs));
    }
}

/// What the run did: its result and, after a cleanup, what was deleted and kept.
fn result_rows(s: &mut String, plan: &BuildPlan, e: &Execution) {
    let result = match &e.outcome {
        Outcome::Succeeded if plan.mode == Mode::Cleanup => "pull request closed: nothing built".to_string(),
        Outcome::Succeeded => "built".to_string(),
        Outcome::SetupFailed(m) => format!("failed before the build: {}", cell(m)),
        Outcome::SignFailed(m) => format!("pushed, but not signed: {}", cell(m)),
        Outcome::Failed { error: Some(err), .. } => format!("build failed: {}", cell(&err.message)),
        Outcome::Failed { code, .. } => format!("build failed (exit code {code})"),
        Outcome::Cancelled { .. } => "cancelled".to_string(),
        Outcome::SecretsLeaked { hits } => {
            format!("stopped: {hits} secret value(s) found in the image, so no tag was created")
        }
    };
    // The builder's time is told on its row: this is the rest of the run.
    let took = e.duration.saturating_sub(e.builder.map_or(std::time::Duration::ZERO, |b| b.took));
    let _ = writeln!(s, "| Result | {result} in {:.1} s |", took.as_secs_f64());
    if let Some(p) = &e.signed {
        let _ = writeln!(
            s,
            "| Signed | SLSA provenance by <code>{}</code>, {}, stored as <code>{}</code> in {:.1} s |",
            cell(&p.identity),
            if p.logged { "logged in the transparency log" } else { "time-stamped (no public log)" },
            cell(&p.attestation_digest),
            p.took.as_secs_f64()
        );
    }
    if let Some(c) = &e.cleanup {
        let deleted = if c.deleted.is_empty() { "nothing".to_string() } else { code_list(&c.deleted) };
        let _ = writeln!(s, "| Deleted | {deleted} |");
        for k in &c.kept {
            let _ = writeln!(s, "| Kept | {} |", cell(k));
        }
    }
}

/// Appends to the `GITHUB_STEP_SUMMARY` file.
pub fn write_summary(path: &Path, markdown: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(markdown.as_bytes())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "none".to_string() } else { items.join("\n              ") }
}

/// The command, shell-quoted, one flag and its value a line.
pub fn shell_command(argv: &[String]) -> String {
    let quote = |a: &String| shlex::try_quote(a).map(|q| q.into_owned()).unwrap_or_else(|_| format!("{a:?}"));
    let mut out = String::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if i == 0 {
            out.push_str(&quote(a));
        } else if a.starts_with("--") && !a.contains('=') && i + 2 < argv.len() && !argv[i + 1].starts_with("--") {
            let _ = write!(out, " \\\n  {} {}", quote(a), quote(&argv[i + 1]));
            i += 1;
        } else if a.starts_with("--") || i + 1 == argv.len() {
            let _ = write!(out, " \\\n  {}", quote(a));
        } else {
            let _ = write!(out, " {}", quote(a));
        }
        i += 1;
    }
    out
}

/// A short explanation of the plan for people, then the command.
/// What a closed pull request's run deletes, in words.
pub fn cleanup_text(cleanup: &crate::plan::Cleanup) -> String {
    match cleanup {
        crate::plan::Cleanup::Delete { repository, scopes, via, .. } => {
            let how = match via {
                crate::plan::CleanupVia::PackagesApi => "through the GitHub packages API",
                crate::plan::CleanupVia::Registry => "through the registry's distribution API",
            };
            let tags: Vec<String> = scopes.iter().map(|s| format!("{s}, {s}-*")).collect();
            format!("delete the tags {} of {repository}, {how}", tags.join(", "))
        }
        crate::plan::Cleanup::Nothing { why } => format!("nothing to delete: {why}"),
    }
}

/// Where the build ran and how long its builder took to be ready, which is not build time.
fn builder_row(builder: &crate::plan::BuilderPlan, ready: Option<crate::buildx::BuilderReady>) -> String {
    let Some(ready) = ready else { return builder_text(builder) };
    let what = match builder {
        crate::plan::BuilderPlan::New if ready.own_image => format!(
            "a builder made for this run, on BuildKit {} from the action's own image (nothing pulled)",
            crate::pins::BUILDKIT_VERSION
        ),
        crate::plan::BuilderPlan::New => {
            format!("a docker-container builder made for this run, on {}", crate::pins::BUILDKIT_IMAGE)
        }
        other => builder_text(other),
    };
    format!("{what}; ready in {:.1} s", ready.took.as_secs_f64())
}

/// Where the build runs, in words.
fn builder_text(builder: &crate::plan::BuilderPlan) -> String {
    use crate::plan::BuilderPlan;
    match builder {
        BuilderPlan::New => {
            "a builder made for this run: BuildKit from the action's image when it runs in it, else a docker-container builder"
                .to_string()
        }
        BuilderPlan::Default => "default (the Docker daemon's own BuildKit)".to_string(),
        BuilderPlan::Named { name, container } => {
            format!("{name} (its record, else the container {container} on the Docker daemon)")
        }
        BuilderPlan::Remote { endpoint, tls } => {
            format!("{endpoint} (remote driver{})", if *tls { ", client TLS" } else { "" })
        }
    }
}

pub fn render_plan(plan: &BuildPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "event:        {}", plan.event);
    let mode = match plan.mode {
        Mode::Build => "build",
        Mode::PerPlatform => "per-platform (push by digest)",
        Mode::Merge => "merge",
        Mode::Cleanup => "cleanup (the pull request was closed: nothing is built)",
    };
    let _ = writeln!(out, "mode:         {mode}");
    let _ = writeln!(out, "trusted:      {}: {}", yes_no(plan.trust.trusted), plan.trust.reason);
    let build = plan.build_scope.as_deref().map(|b| format!(", build {b}")).unwrap_or_default();
    let _ = writeln!(out, "lane:         {} (cache scope {}{build})", plan.lane.as_str(), plan.cache_scope);
    let _ = writeln!(out, "image:        {}", plan.image);
    let _ = writeln!(out, "push:         {}", yes_no(plan.push));
    let _ = writeln!(out, "tags:         {}", list_or_none(&plan.tags));
    if let Some(v) = &plan.version {
        let _ = writeln!(out, "version:      {v}");
    }
    if plan.load {
        let _ = writeln!(out, "load:         into the Docker daemon");
    }
    let _ = writeln!(out, "platforms:    {}", plan.platforms.join(", "));
    if matches!(plan.mode, Mode::Build | Mode::PerPlatform) {
        let _ = writeln!(out, "builder:      {}", builder_text(&plan.builder));
    }
    if let Some(c) = &plan.cleanup {
        let _ = writeln!(out, "cleanup:      {}", cleanup_text(c));
    }
    let _ = writeln!(out, "cache from:   {}", list_or_none(&plan.cache_from));
    let _ = writeln!(out, "cache to:     {}", list_or_none(&plan.cache_to));
    let _ = writeln!(out, "login:        {}", list_or_none(&plan.login));
    for c in &plan.credentials {
        let _ = writeln!(out, "login:        {} as {} (password from {})", c.registry, c.username, c.password_env);
    }
    let _ = writeln!(out, "secrets:      {}", list_or_none(&plan.secrets));
    if plan.mode == Mode::Merge {
        let _ = writeln!(out, "merging:      {}", list_or_none(&plan.merge_sources));
    }
    if let Some(v) = plan.verify {
        let how = match v {
            crate::plan::Verify::Registry => match plan.proofs {
                Some(crate::plan::Proofs::RepositoryKey) => {
                    "pushed by digest, scanned for the secrets (layers the proof ledger shows clean of these values under secrets-proof-key are not read again), then tagged"
                }
                Some(crate::plan::Proofs::SecretValues) => {
                    "pushed by digest, scanned for the secrets (layers the proof ledger shows clean of these values are not read again, if no value could be guessed), then tagged"
                }
                None => "pushed by digest, scanned for the secrets, then tagged",
            },
            crate::plan::Verify::Layout => "exported to an OCI layout and scanned for the secrets",
        };
        let _ = writeln!(out, "verify:       {how}");
    }
    if let Some(sp) = &plan.sign {
        let instance = |i: &crate::context::inputs::Instance| {
            let time: Vec<String> =
                [i.rekor.as_ref().map(|r| format!("Rekor {r}")), i.tsa.as_ref().map(|t| format!("TSA {t}"))]
                    .into_iter()
                    .flatten()
                    .collect();
            format!("Fulcio {}, {}", i.fulcio, time.join(", "))
        };
        let _ = match sp.public == sp.private {
            true => writeln!(out, "sign:         keyless after the push ({})", instance(&sp.public)),
            false => writeln!(
                out,
                "sign:         keyless after the push (public repository: {}; other: {})",
                instance(&sp.public),
                instance(&sp.private)
            ),
        };
    }
    if let Some(m) = &plan.cache_mounts {
        let ids: Vec<String> = m.mounts.iter().map(|m| m.id.clone()).collect();
        let _ = writeln!(out, "cache mounts: {}", ids.join(", "));
        let _ = writeln!(out, "  restore:    {}", list_or_none(&m.restore_from));
        let _ = writeln!(out, "  save:       {}", m.save_to.as_deref().unwrap_or("none"));
    }
    for w in &plan.warnings {
        let _ = writeln!(out, "warning:      {w}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", shell_command(&plan.argv));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_input_can_start_a_new_workflow_command() {
        let e = InputError::new("tags", "'x\n::set-output name=digest::evil' is bad, 100%");
        let line = error_line(&e);
        assert_eq!(line.lines().count(), 1);
        assert!(line.contains("%0A::set-output"));
        assert!(line.ends_with("100%25"));
    }

    #[test]
    fn outputs_use_the_delimiter_and_refuse_values_holding_it() {
        let entry = output_entry("tags", "a\nb", "ghadelimiter_x").unwrap();
        assert_eq!(entry, "tags<<ghadelimiter_x\na\nb\nghadelimiter_x\n");
        assert!(output_entry("tags", "x\nghadelimiter_x\ndigest=evil", "ghadelimiter_x").is_err());
    }

    #[test]
    fn masks_every_line_of_every_value() {
        assert_eq!(mask_lines(["a b", "l1\nl2\n", ""]), ["::add-mask::a b", "::add-mask::l1", "::add-mask::l2"]);
    }

    #[test]
    fn annotations_point_into_files() {
        let a = Annotation {
            level: Level::Error,
            message: "bad\nthing".into(),
            location: Some(("dir,x/Dockerfile".into(), 4)),
        };
        assert_eq!(annotation_line(&a), "::error file=dir%2Cx/Dockerfile,line=4::bad%0Athing");
    }

    #[test]
    fn summary_cells_cannot_break_the_table() {
        assert_eq!(cell("a|b<script>\nc"), "a\\|b&lt;script&gt; c");
    }

    #[test]
    fn titles_escape_separators() {
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn shell_command_quotes_values() {
        let argv: Vec<String> =
            ["docker", "buildx", "build", "--label", "a=b c", "--push", "."].iter().map(|s| s.to_string()).collect();
        assert_eq!(shell_command(&argv), "docker buildx build \\\n  --label 'a=b c' \\\n  --push \\\n  .");
    }
}
