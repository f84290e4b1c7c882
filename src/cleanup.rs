//! A closed pull request's cache scope, deleted: on ghcr.io through the GitHub packages API
//! (the registry itself deletes nothing), elsewhere through the registry's distribution API.
//! Nothing outside the scope is deleted: a package version or a digest that another tag also
//! names is kept, and the report says so. A refusal is a warning, never a failure.

use crate::context::Context;
use crate::github::{ApiConfig, GitHub, Package, PackageVersion};
use crate::plan::cache::in_scope;
use crate::plan::{Cleanup, CleanupVia};
use crate::registry::{Distribution, RegistryError};

/// What a cleanup did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CleanupReport {
    /// The tags deleted.
    pub deleted: Vec<String>,
    /// Why something in the scope was left.
    pub kept: Vec<String>,
    pub warnings: Vec<String>,
}

pub async fn run(ctx: &Context, cleanup: &Cleanup, api: &ApiConfig) -> CleanupReport {
    let Cleanup::Delete { repository, scopes, via, .. } = cleanup else { return CleanupReport::default() };
    let result = match via {
        CleanupVia::PackagesApi => packages(ctx, api, scopes).await,
        CleanupVia::Registry => distribution(ctx, repository, scopes).await,
    };
    match result {
        Ok(report) => report,
        Err(why) => CleanupReport {
            warnings: vec![format!("The cache tags of this pull request were not deleted from {repository}: {why}")],
            ..Default::default()
        },
    }
}

/// The versions to delete for `scopes`, and the notes for versions kept because another tag
/// (outside the scope) also names them.
pub fn doomed_versions<'a>(
    versions: &'a [PackageVersion],
    scopes: &[String],
) -> (Vec<&'a PackageVersion>, Vec<String>) {
    let mut doomed = Vec::new();
    let mut kept = Vec::new();
    for v in versions {
        let (inside, outside): (Vec<&String>, Vec<&String>) = v.tags().iter().partition(|t| in_scope(t, scopes));
        if inside.is_empty() {
            continue;
        }
        if outside.is_empty() {
            doomed.push(v);
        } else {
            kept.push(format!("{} also carries {}: kept", join(&inside), join(&outside)));
        }
    }
    (doomed, kept)
}

fn join(tags: &[&String]) -> String {
    tags.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
}

async fn packages(ctx: &Context, api: &ApiConfig, scopes: &[String]) -> Result<CleanupReport, String> {
    let image = &ctx.inputs.cache_image;
    let package = Package::of(image, ctx).ok_or(format!("{image} is not a ghcr.io package"))?;
    let token = ctx.inputs.github_token.as_ref().ok_or("no github-token (with packages: write)")?;
    let gh = GitHub::new(api.clone(), token).map_err(|e| e.to_string())?;
    let versions = gh.package_versions(&package).await.map_err(|e| format!("cannot list its versions: {e}"))?;
    let (doomed, kept) = doomed_versions(&versions, scopes);
    let mut report = CleanupReport { kept, ..Default::default() };
    for v in doomed {
        match gh.delete_version(&package, v.id).await {
            Ok(()) => report.deleted.extend(v.tags().iter().cloned()),
            Err(e) if e.is_forbidden() => {
                report.warnings.push(format!(
                    "Not allowed to delete versions of {image} ({e}): give the token packages: write and the repository admin access to the package."
                ));
                break;
            }
            Err(e) => report.warnings.push(format!("Could not delete version {} of {image}: {e}", v.id)),
        }
    }
    Ok(report)
}

/// Tags are deleted by deleting the manifest they name, which removes every tag naming it:
/// a digest that a tag outside the scope also names is kept.
async fn distribution(ctx: &Context, repository: &str, scopes: &[String]) -> Result<CleanupReport, String> {
    let credentials = ctx.inputs.github_token.as_ref().map(|t| (ctx.registry_user(), t.expose().to_string()));
    let mut registry = Distribution::new(repository, credentials).map_err(|e| e.to_string())?;
    let refused = |e: &RegistryError| matches!(e, RegistryError::Refused(..));
    let tags = registry.tags().await.map_err(|e| format!("cannot list its tags: {e}"))?;
    let (inside, outside): (Vec<String>, Vec<String>) = tags.into_iter().partition(|t| in_scope(t, scopes));
    let mut report = CleanupReport::default();
    if inside.is_empty() {
        return Ok(report);
    }
    let mut by_digest: Vec<(String, Vec<String>)> = Vec::new();
    for tag in inside {
        let Some(digest) = registry.digest(&tag).await.map_err(|e| e.to_string())? else { continue };
        match by_digest.iter_mut().find(|(d, _)| *d == digest) {
            Some((_, tags)) => tags.push(tag),
            None => by_digest.push((digest, vec![tag])),
        }
    }
    let mut shared: Vec<(String, String)> = Vec::new();
    for tag in outside {
        if let Some(d) = registry.digest(&tag).await.map_err(|e| e.to_string())?
            && by_digest.iter().any(|(digest, _)| *digest == d)
        {
            shared.push((d, tag));
        }
    }
    for (digest, tags) in by_digest {
        let others: Vec<&String> = shared.iter().filter(|(d, _)| *d == digest).map(|(_, t)| t).collect();
        if !others.is_empty() {
            let tags: Vec<&String> = tags.iter().collect();
            report.kept.push(format!("{} names the same manifest as {}: kept", join(&tags), join(&others)));
            continue;
        }
        match registry.delete(&digest).await {
            Ok(()) => report.deleted.extend(tags),
            Err(e) if refused(&e) => {
                report.warnings.push(format!(
                    "The registry refused to delete from {repository} ({e}); the tags of this pull request stay. Enable deletes (registry:2: REGISTRY_STORAGE_DELETE_ENABLED=true) or delete them by hand."
                ));
                break;
            }
            Err(e) => report.warnings.push(format!("Could not delete {digest} from {repository}: {e}")),
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::github::{ContainerMetadata, VersionMetadata};

    fn version(id: u64, tags: &[&str]) -> PackageVersion {
        PackageVersion {
            id,
            name: format!("sha256:{id:064x}"),
            created_at: "2026-11-01T00:00:00Z".into(),
            metadata: Some(VersionMetadata {
                container: Some(ContainerMetadata { tags: tags.iter().map(|t| t.to_string()).collect() }),
            }),
        }
    }

    #[test]
    fn only_versions_whose_every_tag_is_in_scope_are_deleted() {
        let scopes = vec!["buildcache-pr-12".to_string(), "buildcache-mounts-pr-12".to_string()];
        let versions = [
            version(1, &["buildcache-pr-12"]),
            version(2, &["buildcache-pr-12-linux-arm64", "buildcache-pr-12-linux-amd64"]),
            version(3, &["buildcache-mounts-pr-12"]),
            version(4, &["buildcache-pr-12", "buildcache"]),
            version(5, &["buildcache-pr-120"]),
            version(6, &["buildcache-pr-13"]),
            version(7, &["buildcache"]),
            version(8, &[]),
        ];
        let (doomed, kept) = doomed_versions(&versions, &scopes);
        assert_eq!(doomed.iter().map(|v| v.id).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(kept, ["buildcache-pr-12 also carries buildcache: kept"]);
    }
}
