//! This action's own tags for an event, when `tags` holds no rule: what most workflows ask of
//! docker/metadata-action, without a `tags:` block.

use crate::context::Context;
use crate::context::inputs::is_valid_tag;

/// `[A-Za-z0-9_.-]`, no leading `.` or `-`, at most 128 characters; `None` if nothing is left.
pub fn sanitize_tag(raw: &str) -> Option<String> {
    let replaced: String =
        raw.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') { c } else { '-' }).collect();
    let trimmed: String = replaced.trim_start_matches(['.', '-']).chars().take(128).collect();
    Some(trimmed).filter(|t| is_valid_tag(t))
}

/// Tags for a git tag or release: semver `v1.2.3` → `1.2.3`, `1.2`, `1`; pre-releases get the
/// full version only. A `0.x` release gets no bare `0`: semver promises nothing across 0.x
/// minors, so a floating `0` tag would move users onto breaking changes.
pub(super) fn version_tags(tag: &str, prerelease: bool) -> Vec<String> {
    let bare = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
    match semver::Version::parse(bare) {
        Ok(v) => {
            let full = sanitize_tag(bare).into_iter();
            if prerelease || !v.pre.is_empty() {
                return full.collect();
            }
            let minor = format!("{}.{}", v.major, v.minor);
            let major = (v.major > 0).then(|| v.major.to_string());
            full.chain(Some(minor)).chain(major).collect()
        }
        Err(_) => sanitize_tag(tag).into_iter().collect(),
    }
}

pub(super) fn short_sha(sha: Option<&str>) -> Option<String> {
    let sha = sha?;
    (sha.len() >= 7 && sha.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("sha-{}", &sha[..7]))
}

/// Tags when the `tags` input is empty, from what is being built.
pub(super) fn default_tags(ctx: &Context, built: Option<&str>) -> Vec<String> {
    let event = &ctx.event;
    let sha = short_sha(built);
    let default_branch = event.default_branch();
    let for_branch = |branch: &str| -> Vec<String> {
        if Some(branch) == default_branch {
            std::iter::once("latest".to_string()).chain(sha.clone()).collect()
        } else {
            sanitize_tag(branch).into_iter().collect()
        }
    };
    match ctx.event_name.as_str() {
        "pull_request"
        | "pull_request_target"
        | "pull_request_review"
        | "pull_request_review_comment"
        | "pull_request_review_thread" => event.pr_number().map(|n| vec![format!("pr-{n}")]).unwrap_or_default(),
        // A comment-triggered build names the PR and the exact head it was checked against.
        "issue_comment" => event.pr_number().map(|n| format!("pr-{n}")).into_iter().chain(sha).collect(),
        "release" => {
            let release = event.release.as_ref();
            match release.and_then(|r| r.tag_name.as_deref()) {
                Some(tag) => version_tags(tag, release.and_then(|r| r.prerelease).unwrap_or(false)),
                None => sha.into_iter().collect(),
            }
        }
        "merge_group" => sha.into_iter().collect(),
        "schedule" => std::iter::once("nightly".to_string()).chain(sha).collect(),
        "workflow_run" => match event.workflow_run.as_ref().and_then(|r| r.head_branch.as_deref()) {
            Some(branch) => for_branch(branch),
            None => sha.into_iter().collect(),
        },
        _ => match ctx.git_ref.as_deref() {
            Some(r) if r.starts_with("refs/tags/") => version_tags(&r["refs/tags/".len()..], false),
            Some(r) if r.starts_with("refs/heads/") => for_branch(&r["refs/heads/".len()..]),
            _ => sha.into_iter().collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_tags_follow_semver() {
        assert_eq!(version_tags("v1.2.3", false), ["1.2.3", "1.2", "1"]);
        assert_eq!(version_tags("1.2.3", false), ["1.2.3", "1.2", "1"]);
        assert_eq!(version_tags("v1.2.3-rc.1", false), ["1.2.3-rc.1"]);
        assert_eq!(version_tags("v2.0.0", true), ["2.0.0"]);
        assert_eq!(version_tags("v0.4.1", false), ["0.4.1", "0.4"]);
        assert_eq!(version_tags("v1.2.3+build.5", false), ["1.2.3-build.5", "1.2", "1"]);
        assert_eq!(version_tags("simple-tag", false), ["simple-tag"]);
        assert_eq!(version_tags("release/2024", false), ["release-2024"]);
    }

    #[test]
    fn sanitize_tag_obeys_the_tag_grammar() {
        assert_eq!(sanitize_tag("feature/Login-Page").as_deref(), Some("feature-Login-Page"));
        assert_eq!(sanitize_tag("-.-x").as_deref(), Some("x"));
        assert_eq!(sanitize_tag("ümlaut").as_deref(), Some("mlaut"));
        assert_eq!(sanitize_tag("///"), None);
        assert_eq!(sanitize_tag(&"a".repeat(300)).map(|t| t.len()), Some(128));
    }
}
