//! The saved stores, fetched by the action itself for the restore helper: each store's layers
//! from the registry, flattened into one tar in a directory the helper build gets as a named
//! context (`sdi-stores`). The store's files are then written once, by the helper's `tar`,
//! instead of unpacked by BuildKit into a snapshot and copied again.

use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::mounts::Saved;
use super::mounts_registry::repository_and_tag;
use crate::stores_image::Layer;
use crate::stores_tar::{Flattener, Shadow};
use crate::verify::{Blobs, Registry};

/// The context's name in the restore helper's Dockerfile.
pub(super) const CONTEXT: &str = "sdi-stores";

/// The directory of the fetched stores (one `<store dir>.tar` each).
pub(super) fn context_dir(dir: &Path) -> PathBuf {
    dir.join("mounts-stores")
}

/// Fetches the stores `dirs` that `source` holds into `context_dir(dir)`; a store it does not
/// hold gets no file. `Err`: the image or a layer could not be read or was not a store's.
pub(super) async fn fetch(dir: &Path, source: &Saved, dirs: &[String]) -> io::Result<PathBuf> {
    let image = source.image.as_ref().ok_or_else(|| io::Error::other("the saved image could not be read"))?;
    let (repository, _) = repository_and_tag(&source.reference);
    let mut registry = super::scan::registry_for(repository, dir)?;
    let out = context_dir(dir);
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    for store in dirs {
        let layers = image.layers_of(store);
        if !layers.is_empty() {
            fetch_store(&mut registry, (&out, store), &layers).await?;
        }
    }
    Ok(out)
}

/// One store: its changes on top (small) are read first, to know what they hide of the layers
/// under them; its whole copy streams from the registry straight into the tar.
async fn fetch_store(registry: &mut Registry, (out, store): (&Path, &str), layers: &[&Layer]) -> io::Result<()> {
    let mut changes = Vec::new();
    for layer in &layers[1..] {
        let (digest, media) = described(layer)?;
        let reader = registry.layer(&digest).await?;
        let raw = blocking(move || {
            let mut raw = Vec::new();
            io::copy(&mut crate::verify::decompressed(&media, reader)?, &mut raw)?;
            Ok(raw)
        })
        .await?;
        changes.push(raw);
    }
    let shadows = changes.iter().map(|raw| Shadow::read(raw.as_slice(), store)).collect::<io::Result<Vec<_>>>()?;
    let (digest, media) = described(layers[0])?;
    let reader = registry.layer(&digest).await?;
    let file = out.join(format!("{store}.tar"));
    let store = store.to_string();
    blocking(move || {
        let mut tar = Flattener::new(BufWriter::with_capacity(1 << 20, std::fs::File::create(&file)?));
        tar.add_layer(crate::verify::decompressed(&media, reader)?, &store, &shadows)?;
        for (i, raw) in changes.iter().enumerate() {
            tar.add_layer(raw.as_slice(), &store, &shadows[i + 1..])?;
        }
        io::Write::flush(&mut tar.finish()?)
    })
    .await
}

/// `(digest, media type)` of a layer.
fn described(layer: &Layer) -> io::Result<(String, String)> {
    let field = |k: &str| layer.descriptor.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let digest = field("digest").ok_or_else(|| io::Error::other("a stores layer has no digest"))?;
    Ok((digest, field("mediaType").unwrap_or_default()))
}

/// Decompressing and writing block: off the runtime's thread, which feeds the layer's stream.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> io::Result<T> + Send + 'static) -> io::Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(io::Error::other)?
}
