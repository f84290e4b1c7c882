//! Each rule's value for this run, in priority order, folded into metadata-action's `version`.

use super::expr::{Facts, NotRendered, REPOSITORY};
use super::versions::{Pep440, Semver};
use super::{LeftOut, Version};
use crate::context::InputError;
use crate::context::inputs::{Flavor, JsRegex, Latest, RefEvent, RuleKind, ShaFormat, TagRule, Template};

fn tags_err(rule: &TagRule, e: String) -> InputError {
    InputError::new("tags", format!("'{}': {e}", rule.line))
}

/// Whether a rule that made a value asks for `latest`, by the flavor's `latest=`.
fn latest(flavor: &Flavor, auto: bool) -> bool {
    match flavor.latest {
        Latest::Auto => auto,
        Latest::Always => true,
        Latest::Never => false,
    }
}

/// The rule's own prefix and suffix, else the flavor's (expressions rendered).
fn set_value(facts: &Facts, rule: &TagRule, flavor: &Flavor, val: &str) -> Result<String, NotRendered> {
    let prefix = match &rule.prefix {
        Some(p) => facts.global(p)?,
        None if !flavor.prefix.source.is_empty() => facts.global(&flavor.prefix)?,
        None => String::new(),
    };
    let suffix = match &rule.suffix {
        Some(s) => facts.global(s)?,
        None if !flavor.suffix.source.is_empty() => facts.global(&flavor.suffix)?,
        None => String::new(),
    };
    Ok(format!("{prefix}{val}{suffix}"))
}

/// `latest_wish`: the `latest` of the first rule that made a value, once there is one.
fn set_version(version: &mut Version, latest_wish: &mut Option<bool>, val: String, latest: bool) {
    if val.is_empty() {
        return;
    }
    let val = super::sanitize(&val);
    match &version.main {
        None => version.main = Some(val),
        Some(main) if *main != val => version.partial.push(val),
        Some(_) => {}
    }
    latest_wish.get_or_insert(latest);
}

/// The text a semver, pep440 or match rule reads: its `value=`, else the git tag. `None`
/// when neither applies (the rule makes nothing).
fn version_source(facts: &Facts, value: &Template) -> Result<Option<String>, NotRendered> {
    if !value.source.is_empty() {
        return facts.global(value).map(Some);
    }
    Ok(facts.tag().map(str::to_string))
}

/// `match=` on semver and pep440 rules: the first group of the match, else the text (warned).
fn matched(matcher: &Option<JsRegex>, text: String, warnings: &mut Vec<String>) -> String {
    let Some(m) = matcher else { return text };
    match m.regex.captures(&text).and_then(|c| c.get(1)) {
        Some(g) => g.as_str().to_string(),
        None => {
            warnings.push(format!("{} does not match {text}.", m.source));
            text
        }
    }
}

/// `type=match`: the group of the first match, or with `g` the n-th whole match.
fn match_group(pattern: &JsRegex, group: usize, text: &str) -> Result<Option<String>, String> {
    if pattern.global {
        let all: Vec<&str> = pattern.regex.find_iter(text).map(|m| m.as_str()).collect();
        if all.is_empty() {
            return Err(format!("{} does not match {text}.", pattern.source));
        }
        return Ok(all.get(group).map(|s| s.to_string()));
    }
    let Some(c) = pattern.regex.captures(text) else {
        return Err(format!("{} does not match {text}.", pattern.source));
    };
    Ok(c.get(group).map(|m| m.as_str().to_string()))
}

/// One rule's value (prefix and suffix applied) and its `latest` wish, or `None` when it makes
/// nothing for this run.
fn value(
    facts: &Facts,
    rule: &TagRule,
    flavor: &Flavor,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, bool)>, NotRendered> {
    let Some((text, auto)) = bare_value(facts, rule, warnings)? else { return Ok(None) };
    Ok(Some((set_value(facts, rule, flavor, &text)?, latest(flavor, auto))))
}

/// A rule's value before prefix and suffix, and whether `latest=auto` adds `latest` for it.
fn bare_value(
    facts: &Facts,
    rule: &TagRule,
    warnings: &mut Vec<String>,
) -> Result<Option<(String, bool)>, NotRendered> {
    Ok(match &rule.kind {
        RuleKind::Schedule { pattern } => {
            if !facts.event_name.contains("schedule") {
                return Ok(None);
            }
            facts.unknown_in(pattern)?;
            let text = pattern.render(&|e| match e.name.as_str() {
                "date" => facts.date(e, facts.now).map(Some),
                "commit_date" => facts.date(e, facts.known_commit_date()?).map(Some),
                _ => Ok(None),
            })?;
            Some((text, false))
        }
        RuleKind::Semver { pattern, value, matcher } => {
            let Some(text) = version_source(facts, value)? else { return Ok(None) };
            semver(pattern, matched(matcher, text, warnings).replace('/', "-"), warnings)?
        }
        RuleKind::Pep440 { pattern, value, matcher } => {
            let Some(text) = version_source(facts, value)? else { return Ok(None) };
            pep440(pattern, matched(matcher, text, warnings).replace('/', "-"), warnings)?
        }
        RuleKind::Match { pattern, group, value } => {
            let Some(text) = version_source(facts, value)? else { return Ok(None) };
            match match_group(pattern, *group, &text) {
                Err(w) => {
                    warnings.push(w);
                    None
                }
                Ok(None) => {
                    warnings.push(format!("Group {group} does not exist for {} pattern.", pattern.source));
                    None
                }
                Ok(Some(v)) => Some((v, true)),
            }
        }
        RuleKind::Ref { event } => reference(facts, *event),
        RuleKind::Edge { branch } => edge(facts, branch)?,
        RuleKind::Raw { value } => Some((facts.global(value)?, false)),
        RuleKind::Sha { format } => facts.sha.as_ref().map(|sha| match format {
            ShaFormat::Short => (facts.short_sha(), false),
            ShaFormat::Long => (sha.clone(), false),
        }),
    })
}

/// `type=edge`: `edge` on its branch, the repository's default one unless `branch=` names one.
fn edge(facts: &Facts, branch: &str) -> Result<Option<(String, bool)>, NotRendered> {
    let Some(built) = facts.branch() else { return Ok(None) };
    let wanted = match (branch.is_empty(), facts.repository_unknown()) {
        (false, _) => branch,
        (true, None) => facts.default_branch().unwrap_or_default(),
        (true, Some(why)) => return Err(NotRendered::Unknown { fact: REPOSITORY, why: why.to_string() }),
    };
    Ok((built == wanted).then(|| ("edge".to_string(), false)))
}

/// `type=ref`: the branch, the tag (which asks for `latest`) or the pull request number.
fn reference(facts: &Facts, event: RefEvent) -> Option<(String, bool)> {
    match event {
        RefEvent::Branch => facts.branch().map(|b| (b.to_string(), false)),
        RefEvent::Tag => facts.tag().map(|t| (t.to_string(), true)),
        RefEvent::Pr => {
            facts.git_ref.strip_prefix("refs/pull/").map(|r| (r.trim_end_matches("/merge").to_string(), false))
        }
    }
}

/// `type=semver`: the pattern rendered with the version's fields; a prerelease keeps its full
/// version (or its raw text with `{{raw}}`) and asks for no `latest`.
fn semver(pattern: &Template, text: String, warnings: &mut Vec<String>) -> Result<Option<(String, bool)>, String> {
    let Some(v) = Semver::parse(&text) else {
        warnings.push(format!("{text} is not a valid semver. More info: https://semver.org/"));
        return Ok(None);
    };
    let fields = |e: &crate::context::inputs::Expr| Ok(v.field(&e.name));
    Ok(Some(if v.prerelease.is_empty() {
        (pattern.render(&fields)?, true)
    } else if pattern.is_raw_statement() {
        (pattern.render(&fields)?, false)
    } else {
        (v.version(), false)
    }))
}

/// `type=pep440`: as semver, with @renovate/pep440's normalisation; pre, post and dev releases
/// keep their normalised (or, with `{{raw}}`, raw) version.
fn pep440(pattern: &Template, text: String, warnings: &mut Vec<String>) -> Result<Option<(String, bool)>, String> {
    let Some(v) = Pep440::parse(&text) else {
        warnings
            .push(format!("{text} does not conform to PEP 440. More info: https://www.python.org/dev/peps/pep-0440"));
        return Ok(None);
    };
    if v.is_pre_post_or_dev() {
        return Ok(Some((if pattern.is_raw_statement() { text } else { v.clean() }, false)));
    }
    let rendered = pattern.render(&|e| {
        Ok(Some(match e.name.as_str() {
            "raw" => text.clone(),
            "version" => v.clean(),
            "major" => v.release_part(0).to_string(),
            "minor" => v.release_part(1).to_string(),
            "patch" => v.release_part(2).to_string(),
            _ => return Ok(None),
        }))
    })?;
    Ok(Some((rendered, true)))
}

/// metadata-action's `getVersion`: enabled rules in priority order; the first value is
/// `main`, the first rule that made a value decides `latest`.
pub(super) fn version(
    facts: &Facts,
    rules: &[TagRule],
    flavor: &Flavor,
    (warnings, left_out): (&mut Vec<String>, &mut Vec<LeftOut>),
) -> Result<Version, InputError> {
    let mut version = Version::default();
    let mut latest_wish = None;
    for rule in rules {
        let made = facts.global(&rule.enable).and_then(|enabled| match enabled.as_str() {
            "true" => value(facts, rule, flavor, warnings),
            "false" => Ok(None),
            other => Err(NotRendered::Input(format!("enable= must render true or false, not '{other}'"))),
        });
        match made {
            Ok(Some((val, wants_latest))) => set_version(&mut version, &mut latest_wish, val, wants_latest),
            Ok(None) => {}
            Err(NotRendered::Unknown { fact, why }) => {
                left_out.push(LeftOut { what: format!("the tags of '{}'", rule.line), fact, why })
            }
            Err(NotRendered::Input(e)) => return Err(tags_err(rule, e)),
        }
    }
    let mut seen = std::collections::HashSet::new();
    version.partial.retain(|p| seen.insert(p.clone()));
    version.latest = latest_wish.unwrap_or(false);
    Ok(version)
}
