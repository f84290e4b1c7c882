//! Where the scan reads an image from: an OCI layout on disk, or a registry. Manifests and
//! configs are small and read whole; a layer is a stream (a file, or the registry's response
//! fed through a small bounded channel), so memory does not grow with the layer.

use std::io::Read;
use std::path::Path;

use futures_util::StreamExt;
use serde_json::Value;

use super::{Needles, Report, scan};
use crate::registry::is_loopback;

/// A layer's bytes, read as they arrive.
pub type LayerReader = Box<dyn Read + Send + 'static>;

/// Where the manifests and blobs come from.
pub trait Blobs {
    /// The manifest (or index) with this digest, raw.
    fn manifest(&mut self, digest: &str) -> impl Future<Output = std::io::Result<Vec<u8>>>;
    /// A small blob (a config), in memory.
    fn blob(&mut self, digest: &str) -> impl Future<Output = std::io::Result<Vec<u8>>>;
    /// A layer, as a stream.
    fn layer(&mut self, digest: &str) -> impl Future<Output = std::io::Result<LayerReader>>;
}

/// An OCI image layout directory (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`).
pub struct Layout<'a> {
    pub dir: &'a Path,
}

impl Layout<'_> {
    fn path(&self, digest: &str) -> std::io::Result<std::path::PathBuf> {
        let (alg, hex) = digest
            .split_once(':')
            .filter(|(a, h)| !a.is_empty() && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| std::io::Error::other(format!("not a digest: {digest}")))?;
        Ok(self.dir.join("blobs").join(alg).join(hex))
    }

    /// The digests `index.json` points at (one per image the export wrote).
    pub fn roots(&self) -> std::io::Result<Vec<String>> {
        let index: Value =
            serde_json::from_slice(&std::fs::read(self.dir.join("index.json"))?).map_err(std::io::Error::other)?;
        Ok(index["manifests"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["digest"].as_str().map(str::to_string))
            .collect())
    }
}

impl Blobs for Layout<'_> {
    async fn manifest(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(digest)?)
    }
    async fn blob(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.path(digest)?)
    }
    async fn layer(&mut self, digest: &str) -> std::io::Result<LayerReader> {
        Ok(Box::new(std::fs::File::open(self.path(digest)?)?))
    }
}

/// Scans a whole OCI layout (every root of its `index.json`).
pub async fn scan_layout(dir: &Path, needles: &Needles) -> std::io::Result<Report> {
    let mut layout = Layout { dir };
    let mut total = Report::default();
    for root in layout.roots()? {
        let r = scan(&mut layout, &root, needles).await?;
        total.hits.extend(r.hits);
        total.platforms.extend(r.platforms);
        total.layers += r.layers;
        total.bytes += r.bytes;
        total.uncompressed += r.uncompressed;
        total.scanned.extend(r.scanned);
        total.proven += r.proven;
    }
    Ok(total)
}

/// A registry, read with oci-client and the run's own credentials.
pub struct Registry {
    client: oci_client::Client,
    reference: oci_client::Reference,
    auth: oci_client::secrets::RegistryAuth,
}

pub(crate) const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
];

impl Registry {
    /// `name` is `registry/repository`; `auth` is `(user, password)` from the private docker
    /// configuration the run logged in with, if any.
    pub fn new(name: &str, auth: Option<(String, String)>) -> std::io::Result<Self> {
        // reqwest is built without a default TLS provider: use ring, as octocrab does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let host = name.split('/').next().unwrap_or_default().to_string();
        let protocol = if is_loopback(&host) {
            oci_client::client::ClientProtocol::HttpsExcept(vec![host])
        } else {
            oci_client::client::ClientProtocol::Https
        };
        // One PUT a blob: the ledger is small, and every registry takes it.
        let config = oci_client::client::ClientConfig { protocol, use_monolithic_push: true, ..Default::default() };
        // `Client::new` falls back to reqwest's `Client::new()`, which panics where the system
        // has no CA certificates: the error is the run's to report.
        let client = oci_client::Client::try_from(config)
            .map_err(|e| std::io::Error::other(format!("cannot make a registry client: {e}")))?;
        let reference =
            oci_client::Reference::try_from(format!("{name}:latest").as_str()).map_err(std::io::Error::other)?;
        let auth = match auth {
            Some((user, password)) => oci_client::secrets::RegistryAuth::Basic(user, password),
            None => oci_client::secrets::RegistryAuth::Anonymous,
        };
        Ok(Registry { client, reference, auth })
    }

    /// The credentials to use from now on (`docker login` may store them after the client
    /// was made).
    pub fn set_auth(&mut self, auth: Option<(String, String)>) {
        self.auth = match auth {
            Some((user, password)) => oci_client::secrets::RegistryAuth::Basic(user, password),
            None => oci_client::secrets::RegistryAuth::Anonymous,
        };
    }

    fn at(&self, digest: &str) -> oci_client::Reference {
        self.reference.clone_with_digest(digest.to_string())
    }

    /// The client, the repository (as `name:latest`) and the credentials, for the other
    /// rooms that write to the registry (`sign::store`).
    pub(crate) fn oci(&self) -> (&oci_client::Client, &oci_client::Reference, &oci_client::secrets::RegistryAuth) {
        (&self.client, &self.reference, &self.auth)
    }
}

impl Blobs for Registry {
    async fn manifest(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&self.at(digest), &self.auth, MANIFEST_TYPES)
            .await
            .map_err(std::io::Error::other)?;
        Ok(bytes.to_vec())
    }
    async fn blob(&mut self, digest: &str) -> std::io::Result<Vec<u8>> {
        let descriptor = oci_client::manifest::OciDescriptor { digest: digest.to_string(), ..Default::default() };
        let mut out = Vec::new();
        self.client.pull_blob(&self.at(digest), &descriptor, &mut out).await.map_err(std::io::Error::other)?;
        Ok(out)
    }
    /// The registry's answer, pumped by a task of the runtime into a channel of a few chunks;
    /// oci-client checks the digest as the stream ends (a mismatch is a read error).
    async fn layer(&mut self, digest: &str) -> std::io::Result<LayerReader> {
        let descriptor = oci_client::manifest::OciDescriptor { digest: digest.to_string(), ..Default::default() };
        let reference = self.at(digest);
        // Authenticates (a token for pulls) if the manifest reads did not already.
        self.client.store_auth_if_needed(reference.resolve_registry(), &self.auth).await;
        let sized = self.client.pull_blob_stream(&reference, &descriptor).await.map_err(std::io::Error::other)?;
        let (tx, rx) = tokio::sync::mpsc::channel(CHANNEL_CHUNKS);
        tokio::spawn(async move {
            let mut stream = sized.stream;
            while let Some(chunk) = stream.next().await {
                let failed = chunk.is_err();
                if tx.send(chunk).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(Box::new(ChannelReader { rx, current: bytes::Bytes::new() }))
    }
}

impl Registry {
    fn ledger_ref(&self) -> oci_client::Reference {
        oci_client::Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            super::proofs::LEDGER_TAG.to_string(),
        )
    }

    /// The proof ledger's bytes, or `None` when the repository has none yet.
    pub async fn pull_ledger(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let tag = self.ledger_ref();
        let manifest = match self.client.pull_image_manifest(&tag, &self.auth).await {
            Ok((m, _)) => m,
            Err(oci_client::errors::OciDistributionError::ImageManifestNotFoundError(_)) => return Ok(None),
            Err(e) if e.to_string().contains("404") || e.to_string().to_lowercase().contains("not found") => {
                return Ok(None);
            }
            Err(e) => return Err(std::io::Error::other(e)),
        };
        let Some(layer) = manifest.layers.first() else { return Ok(None) };
        let mut out = Vec::new();
        self.client.pull_blob(&tag, layer, &mut out).await.map_err(std::io::Error::other)?;
        Ok(Some(out))
    }

    /// Points `tags` (of this repository) at the manifest `digest`: its very bytes, PUT under
    /// each tag, so that every tag names exactly what was scanned (no copy, no re-encoding).
    pub async fn put_tags(&mut self, digest: &str, tags: &[&str]) -> std::io::Result<()> {
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&self.at(digest), &self.auth, MANIFEST_TYPES)
            .await
            .map_err(std::io::Error::other)?;
        let media = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("mediaType")?.as_str().map(str::to_string))
            .unwrap_or_else(|| MANIFEST_TYPES[0].to_string());
        let content_type = http::HeaderValue::from_str(&media).map_err(std::io::Error::other)?;
        self.client.store_auth_if_needed(self.reference.resolve_registry(), &self.auth).await;
        for tag in tags {
            let reference = oci_client::Reference::with_tag(
                self.reference.registry().to_string(),
                self.reference.repository().to_string(),
                tag.to_string(),
            );
            self.client
                .push_manifest_raw(&reference, bytes.clone(), content_type.clone())
                .await
                .map_err(|e| std::io::Error::other(format!("{tag}: {e}")))?;
        }
        Ok(())
    }

    /// The raw manifest (or index) a tag or digest of this repository names.
    pub async fn manifest_named(&mut self, tag_or_digest: &str) -> std::io::Result<Vec<u8>> {
        let reference = if tag_or_digest.contains(':') {
            self.at(tag_or_digest)
        } else {
            oci_client::Reference::with_tag(
                self.reference.registry().to_string(),
                self.reference.repository().to_string(),
                tag_or_digest.to_string(),
            )
        };
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&reference, &self.auth, MANIFEST_TYPES)
            .await
            .map_err(std::io::Error::other)?;
        Ok(bytes.to_vec())
    }

    /// Pushes an image's config, then its manifest under `tag` (its layers are already in the
    /// repository). Under a tag, not by digest: some registries answer a manifest `PUT` without
    /// the `Location` header, which oci-client handles only for tags.
    pub async fn push_image(&mut self, (manifest, config): (Vec<u8>, Vec<u8>), tag: &str) -> std::io::Result<()> {
        let config_digest = crate::oci::sha256(&config);
        self.client.store_auth_if_needed(self.reference.resolve_registry(), &self.auth).await;
        let at = self.at(&config_digest);
        self.client.push_blob(&at, config, &config_digest).await.map_err(std::io::Error::other)?;
        let reference = oci_client::Reference::with_tag(
            self.reference.registry().to_string(),
            self.reference.repository().to_string(),
            tag.to_string(),
        );
        let content_type = http::HeaderValue::from_static(MANIFEST_TYPES[1]);
        self.client.push_manifest_raw(&reference, manifest, content_type).await.map_err(std::io::Error::other)?;
        Ok(())
    }

    /// Replaces the proof ledger.
    pub async fn push_ledger(&mut self, bytes: Vec<u8>) -> std::io::Result<()> {
        use oci_client::client::{Config, ImageLayer};
        let tag = self.ledger_ref();
        let layers = [ImageLayer::new(bytes, super::proofs::ARTIFACT_TYPE.to_string(), None)];
        let config = Config::new(b"{}".to_vec(), "application/vnd.oci.empty.v1+json".to_string(), None);
        let mut manifest = oci_client::manifest::OciImageManifest::build(&layers, &config, None);
        manifest.artifact_type = Some(super::proofs::ARTIFACT_TYPE.to_string());
        self.client.push(&tag, &layers, config, &self.auth, Some(manifest)).await.map_err(std::io::Error::other)?;
        Ok(())
    }
}

/// At most this many chunks (a few KiB to 64 KiB each) wait between the network and the scan.
const CHANNEL_CHUNKS: usize = 16;

/// The blocking end of the pump: `Read` over the chunks as they come.
pub struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}
