//! The stores image through the registry, without BuildKit: read when found (its layers, its
//! measurements), finished after a save pushed by digest (kept layers added, proven clean of
//! secrets, then tagged), and relabelled when only the measurements changed.

use std::path::Path;

use serde_json::Value;

use super::image::{StoresImage, image_in_index};
use crate::plan::mount_costs::{self, COSTS_LABEL, Costs};
use crate::step::Annotation;
use crate::verify::{Blobs, Needles, Registry};

/// A saved stores image: its tag, and the digest that tag named when it was read (the restore
/// and the save's kept layers use that very image, even if the tag moves meanwhile).
#[derive(Debug, Clone)]
pub(crate) struct Saved {
    pub reference: String,
    pub digest: Option<String>,
    /// The image itself (its stores' layers, what restoring them cost), when it could be read.
    pub image: Option<StoresImage>,
}

impl Saved {
    /// What earlier runs measured of restoring and refilling each store.
    pub(crate) fn costs(&self) -> Costs {
        self.image.as_ref().and_then(|i| i.label(COSTS_LABEL)).map(mount_costs::parse).unwrap_or_default()
    }

    /// The reference to pull: pinned by digest when known.
    pub(super) fn pinned(&self) -> String {
        match &self.digest {
            Some(d) => format!("{}@{d}", self.reference),
            None => self.reference.clone(),
        }
    }
}

/// Points the saved tag at the image the stores were restored from, with `costs` as its
/// measurements, when they differ from what it says: no layer is pushed.
pub(super) async fn relabel(
    dir: &Path,
    source: &Saved,
    save_to: Option<&str>,
    costs: &Costs,
    annotations: &mut Vec<Annotation>,
) {
    let (Some(image), Some(save_to)) = (stores_image_of(source, save_to), save_to) else { return };
    let label = mount_costs::format(costs);
    if image.label(mount_costs::COSTS_LABEL) == Some(label.as_str()) {
        return;
    }
    let (repository, tag) = repository_and_tag(save_to);
    let pushed = async {
        let mut registry = crate::verify::pushed::registry_for(repository, dir)?;
        // Another job's save since the restore is newer than this image: it stays.
        let now = crate::oci::sha256(&registry.manifest_named(tag).await?);
        if source.digest.as_deref() != Some(now.as_str()) {
            return Ok(());
        }
        registry.push_image(image.with_label(mount_costs::COSTS_LABEL, &label), tag).await
    };
    if let Err(e) = pushed.await {
        annotations.push(Annotation::notice(format!("The cache mounts' measurements were not kept in {save_to}: {e}")));
    }
}

/// `(repository, tag)` of a stores image reference (the plan always writes `<image>:<tag>`).
pub(super) fn repository_and_tag(reference: &str) -> (&str, &str) {
    reference.rsplit_once(':').unwrap_or((reference, "latest"))
}

/// The saved stores image the stores were restored from, as read when it was found, if it is
/// in the repository the stores are saved to (its layers can then be reused).
pub(super) fn stores_image_of(source: &Saved, save_to: Option<&str>) -> Option<StoresImage> {
    let (repository, _) = repository_and_tag(&source.reference);
    (save_to.map(|s| repository_and_tag(s).0) == Some(repository)).then(|| source.image.clone())?
}

/// The stores pushed by digest: add the kept stores' layers, prove the image clean when there
/// are secrets, then point `save_to` at it. `Err`: why nothing was tagged.
pub(super) async fn finish(
    (dir, metadata): (&Path, &Path),
    save_to: &str,
    old: Option<&StoresImage>,
    dirs: &[String],
    secrets: &Needles,
) -> Result<(), Vec<String>> {
    let failed = |why: String| vec![format!("Cache mounts were pushed but {save_to} was not tagged: {why}.")];
    let digest = std::fs::read_to_string(metadata)
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .and_then(|m| m.get("containerimage.digest")?.as_str().map(str::to_string))
        .ok_or_else(|| failed("buildx reported no digest".into()))?;
    let (repository, tag) = repository_and_tag(save_to);
    let mut registry = crate::verify::pushed::registry_for(repository, dir).map_err(|e| failed(e.to_string()))?;
    // With kept stores, the image to tag is made here: scanned from memory, then pushed.
    let staged = match old {
        None => None,
        Some(old) => {
            let new = read_stores_image(&mut registry, &digest).await.map_err(|e| failed(e.to_string()))?;
            let image = new.and_then(|new| new.with_reused(old, dirs));
            Some(image.ok_or_else(|| failed("the pushed image is not a stores image".into()))?)
        }
    };
    if !secrets.is_empty() {
        let report = match &staged {
            Some((manifest, config)) => {
                let mut blobs = Staged { registry: &mut registry, manifest, config };
                crate::verify::scan(&mut blobs, &crate::oci::sha256(manifest), secrets).await
            }
            None => crate::verify::scan(&mut registry, &digest, secrets).await,
        };
        match report {
            Ok(r) if r.hits.is_empty() => {}
            Ok(r) => return Err(r.hits.iter().map(|hit| format!("Cache mounts not saved: {hit}.")).collect()),
            Err(e) => {
                return Err(vec![format!("Cache mounts not saved: they could not be checked for secrets ({e}).")]);
            }
        }
    }
    match staged {
        Some(image) => registry.push_image(image, tag).await,
        None => registry.put_tags(&digest, &[tag]).await,
    }
    .map_err(|e| failed(e.to_string()))
}

/// An image not pushed yet: its manifest and config from memory, its layers from the registry.
struct Staged<'a> {
    registry: &'a mut Registry,
    manifest: &'a [u8],
    config: &'a [u8],
}

impl Blobs for Staged<'_> {
    async fn manifest(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        match digest == crate::oci::sha256(self.manifest) {
            true => Ok(self.manifest.to_vec()),
            false => self.registry.manifest(digest).await,
        }
    }
    async fn blob(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        match digest == crate::oci::sha256(self.config) {
            true => Ok(self.config.to_vec()),
            false => self.registry.blob(digest).await,
        }
    }
    async fn layer(&mut self, digest: &str) -> std::io::Result<crate::verify::LayerReader> {
        self.registry.layer(digest).await
    }
}

/// A saved stores image through the registry, by digest when known; `None` (said in the debug
/// log) when it cannot be read: every store is then restored, and saved whole.
pub(super) async fn read_saved(dir: &Path, reference: &str, digest: Option<&str>) -> Option<StoresImage> {
    let (repository, tag) = repository_and_tag(reference);
    let read = async {
        let mut registry = crate::verify::pushed::registry_for(repository, dir)?;
        read_stores_image(&mut registry, digest.unwrap_or(tag)).await
    };
    read.await.unwrap_or_else(|e| {
        tracing::debug!("the saved stores image {reference} could not be read ({e})");
        None
    })
}

/// A stores image by tag or digest (an index is followed to its image).
pub(super) async fn read_stores_image(registry: &mut Registry, name: &str) -> std::io::Result<Option<StoresImage>> {
    let mut manifest = registry.manifest_named(name).await?;
    if let Some(image) = image_in_index(&manifest) {
        manifest = registry.manifest_named(&image).await?;
    }
    let config_digest = serde_json::from_slice::<serde_json::Value>(&manifest)
        .ok()
        .and_then(|m| m.pointer("/config/digest")?.as_str().map(str::to_string));
    let Some(config_digest) = config_digest else { return Ok(None) };
    let config = registry.blob(&config_digest).await?;
    Ok(StoresImage::read(&manifest, &config))
}
