//! Tags, `version`, labels and annotations as docker/metadata-action v5.10.0 computes them from
//! the same event and inputs (`tags`, `flavor`, `images`, `labels`, `annotations`). Pure: the
//! clock was read once by the context (`MetaEnv::now`).

mod expr;
mod moment;
mod rules;
mod versions;

use chrono::{DateTime, Utc};

use crate::context::inputs::{Flavor, ImageEntry};
use crate::context::{Context, InputError};
use crate::trust::ApiFacts;
pub use expr::{Facts, metadata_sha, payload_commit_date, payload_repository};
use expr::{NotRendered, REPOSITORY};

/// metadata-action's `version`: the first value a rule made (`main`), the others, and whether
/// `latest` is added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Version {
    pub main: Option<String>,
    pub partial: Vec<String>,
    pub latest: bool,
}

/// A tag rule or label this run cannot make: it reads a fact the event payload lacks and the
/// GitHub API did not give.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    pub what: String,
    pub fact: &'static str,
    pub why: String,
}

/// One warning for everything left out, by the fact it lacked and why.
fn left_out_warning(left_out: &[LeftOut]) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for l in left_out {
        if seen.contains(&(l.fact, l.why.as_str())) {
            continue;
        }
        seen.push((l.fact, &l.why));
        let what: Vec<&str> =
            left_out.iter().filter(|o| o.fact == l.fact && o.why == l.why).map(|o| o.what.as_str()).collect();
        let why = &l.why;
        parts.push(format!(
            "{} (they need {}, which the event payload lacks and the GitHub API did not give: {why})",
            what.join(", "),
            l.fact
        ));
    }
    (!parts.is_empty()).then(|| format!("Left out of this run's metadata: {}.", parts.join("; ")))
}

/// What this run's metadata needs the GitHub API for: the repository when the payload has
/// none (a `schedule` run), and the date of the commit described when a template reads
/// `{{commit_date}}` and the payload does not date it. Nothing else is asked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub repository: bool,
    pub commit_date_of: Option<String>,
}

/// `built`: the commit built (the plan's).
pub fn wanted(ctx: &Context, built: Option<&str>) -> Wanted {
    let inputs = &ctx.inputs;
    let rules = inputs.tags.rules.iter().flat_map(|r| r.templates(&inputs.flavor));
    let mut templates = rules.chain(&inputs.labels).chain(&inputs.annotations.unlevelled);
    let sha = metadata_sha(ctx, built);
    let dated = sha.as_deref().and_then(|s| payload_commit_date(&ctx.event, Some(s))).is_some();
    let reads_date = templates.any(|t| t.uses("commit_date"));
    Wanted {
        repository: payload_repository(&ctx.event).is_none(),
        commit_date_of: sha.filter(|_| reads_date && !dated),
    }
}

/// Everything metadata-action outputs, for one run.
#[derive(Debug, Clone, Default)]
pub struct Metadata {
    pub version: Version,
    /// Full references, image by image (with `images`), then the full references of `tags`.
    pub tags: Vec<String>,
    /// The tags without image names (`tag-names`).
    pub tag_names: Vec<String>,
    /// Defaults merged with `labels`, by key, sorted as metadata-action sorts them.
    pub labels: Vec<(String, String)>,
    /// Defaults merged with the unlevelled lines of `annotations`.
    pub annotations: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// The images tags are made for: the enabled `images`, else the `image` input.
fn image_names(ctx: &Context) -> Vec<String> {
    let images: &[ImageEntry] = &ctx.inputs.images;
    if images.is_empty() {
        return vec![ctx.inputs.image.to_string()];
    }
    images.iter().filter(|i| i.enable).map(|i| i.given.clone()).collect()
}

/// The `latest` tag: the flavor's prefix and suffix only with `onlatest=true`.
fn latest_tag(flavor: &Flavor) -> String {
    let prefix = if flavor.prefix_latest { flavor.prefix.source.as_str() } else { "" };
    let suffix = if flavor.suffix_latest { flavor.suffix.source.as_str() } else { "" };
    sanitize(&format!("{prefix}latest{suffix}"))
}

/// Runs of characters outside `[a-zA-Z0-9._-]` become one `-`, case kept.
pub fn sanitize(tag: &str) -> String {
    let mut out = String::with_capacity(tag.len());
    let mut in_run = false;
    for c in tag.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
            in_run = false;
        } else if !in_run {
            out.push('-');
            in_run = true;
        }
    }
    out
}

/// The tag names for a version: main, the partial ones, then `latest`.
fn names(version: &Version, flavor: &Flavor) -> Vec<String> {
    let Some(main) = &version.main else { return Vec::new() };
    let mut out = vec![main.clone()];
    out.extend(version.partial.iter().cloned());
    if version.latest {
        out.push(latest_tag(flavor));
    }
    out
}

/// Evaluates the rules for this run. `sha` is the commit built; `default_names` are this
/// action's own tags, used when `tags` holds no rule and no reference.
/// `api`: what the GitHub API said of the repository and the commit, where the payload is
/// silent.
pub fn evaluate(
    ctx: &Context,
    sha: Option<&str>,
    default_names: Vec<String>,
    api: &ApiFacts,
) -> Result<Metadata, InputError> {
    let facts = Facts::of(ctx, sha, api);
    let inputs = &ctx.inputs;
    let mut warnings = Vec::new();
    let mut left_out = Vec::new();
    let version = if inputs.tags.rules.is_empty() && inputs.tags.full.is_empty() {
        let mut names = default_names.into_iter();
        Version { main: names.next(), partial: names.collect(), latest: false }
    } else {
        rules::version(&facts, &inputs.tags.rules, &inputs.flavor, (&mut warnings, &mut left_out))?
    };
    let tag_names = names(&version, &inputs.flavor);
    let mut tags: Vec<String> = Vec::new();
    for image in image_names(ctx) {
        tags.extend(tag_names.iter().map(|t| format!("{image}:{t}")));
    }
    tags.extend(inputs.tags.full.iter().cloned());
    let version = match (&version.main, inputs.tags.full.first()) {
        (None, Some(full)) => Version { main: full.rsplit_once(':').map(|(_, t)| t.to_string()), ..version },
        _ => version,
    };
    let notes = (&mut warnings, &mut left_out);
    let labels = annotations(&facts, &version, &inputs.labels, "label", notes)?;
    let notes = (&mut warnings, &mut left_out);
    let annotations = annotations(&facts, &version, &inputs.annotations.unlevelled, "annotation", notes)?;
    warnings.extend(left_out_warning(&left_out));
    Ok(Metadata { version, tags, tag_names, labels, annotations, warnings })
}

/// metadata-action's default OCI keys, then each line of `extra` (expressions rendered), by
/// key (the last wins), sorted by key as `localeCompare` sorts them. A default whose fact is
/// not known, and a line that reads one, are left out.
fn annotations(
    facts: &Facts,
    version: &Version,
    extra: &[crate::context::inputs::Template],
    kind: &str,
    (warnings, left_out): (&mut Vec<String>, &mut Vec<LeftOut>),
) -> Result<Vec<(String, String)>, InputError> {
    const P: &str = "org.opencontainers.image";
    let input = format!("{kind}s");
    let repo = facts.repo();
    let mut pairs: Vec<(String, Option<String>)> = vec![
        (format!("{P}.title"), Some(repo.name)),
        (format!("{P}.description"), repo.description),
        (format!("{P}.url"), Some(repo.html_url.clone())),
        (format!("{P}.source"), Some(repo.html_url)),
        (format!("{P}.version"), Some(version.main.clone().unwrap_or_default())),
        (format!("{P}.created"), Some(iso(facts.now))),
        (format!("{P}.revision"), Some(facts.sha.clone().unwrap_or_default())),
        (format!("{P}.licenses"), repo.license),
    ];
    for line in extra {
        let text = match facts.global(line) {
            Ok(text) => text,
            Err(NotRendered::Unknown { fact, why }) => {
                left_out.push(LeftOut { what: format!("the {kind} '{}'", line.source), fact, why });
                continue;
            }
            Err(NotRendered::Input(e)) => return Err(InputError::new(&input, e)),
        };
        match text.split_once('=') {
            Some((k, v)) => pairs.push((k.to_string(), Some(v.to_string()))),
            None => warnings.push(format!("{input}: '{text}' has no '=' and is left out (write key=value)")),
        }
    }
    let mut merged: Vec<(String, Option<String>)> = Vec::new();
    for (k, v) in pairs {
        match merged.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => merged.push((k, v)),
        }
    }
    let why = facts.repository_unknown().unwrap_or_default();
    for (key, _) in merged.iter().filter(|(_, v)| v.is_none()) {
        // The defaults are the same for both: said once.
        let label = format!("the label {key}");
        match left_out.iter_mut().find(|l| l.what == label) {
            Some(l) if kind == "annotation" => l.what = format!("the label and annotation {key}"),
            _ => left_out.push(LeftOut { what: format!("the {kind} {key}"), fact: REPOSITORY, why: why.to_string() }),
        }
    }
    let mut merged: Vec<(String, String)> = merged.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
    merged.sort_by(|a, b| locale_order(&a.0, &b.0));
    Ok(merged)
}

/// `Date.toISOString()`: milliseconds and `Z`.
pub fn iso(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// ICU's root collation as `localeCompare` applies it to label keys: punctuation before
/// digits before letters, letters without regard to case first, lower case first on ties.
pub fn locale_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn weight(c: char) -> (u8, u32) {
        const PUNCT: &str = "_-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$";
        if let Some(i) = PUNCT.find(c) {
            (0, i as u32)
        } else if c.is_ascii_digit() {
            (1, c as u32)
        } else if c.is_alphabetic() {
            (2, c.to_ascii_lowercase() as u32)
        } else {
            (3, c as u32)
        }
    }
    let primary = a.chars().map(weight).cmp(b.chars().map(weight));
    primary.then_with(|| {
        let case = |s: &str| s.chars().map(|c| c.is_uppercase()).collect::<Vec<_>>();
        case(a).cmp(&case(b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitizes_as_metadata_action() {
        assert_eq!(sanitize("feature/Login-UI"), "feature-Login-UI");
        assert_eq!(sanitize("a//b c"), "a-b-c");
        assert_eq!(sanitize("a/-b"), "a--b");
    }

    #[test]
    fn keys_sort_as_locale_compare() {
        let mut keys = vec!["org.b", "Org.a", "org.a-b", "org.a_b", "org.a.b", "org.a1", "org.a"];
        keys.sort_by(|a, b| locale_order(a, b));
        assert_eq!(keys, ["org.a", "Org.a", "org.a_b", "org.a-b", "org.a.b", "org.a1", "org.b"]);
    }
}
