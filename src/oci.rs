//! Writes small OCI images: an image layout on disk, or the blobs a registry serves. Used by
//! the tests and by the CI stand-in for docker (which must produce real, digest-checked
//! images for the secret scan to read); the action itself only reads images.

use std::path::Path;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

pub fn sha256(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    format!("sha256:{}", d.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// One layer: `(path, content)` entries.
pub struct Layer {
    pub files: Vec<(String, Vec<u8>)>,
    pub compression: Compression,
}

/// A built image: every blob by digest, and the digest of its root (an index).
pub struct Image {
    pub blobs: Vec<(String, Vec<u8>)>,
    pub root: String,
    pub manifest: String,
}

fn tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, content.as_slice()).expect("a tar entry");
    }
    builder.into_inner().expect("a tar stream")
}

fn compress(data: Vec<u8>, c: Compression) -> (Vec<u8>, &'static str) {
    match c {
        Compression::None => (data, "application/vnd.oci.image.layer.v1.tar"),
        Compression::Gzip => {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&data).unwrap();
            (enc.finish().unwrap(), "application/vnd.oci.image.layer.v1.tar+gzip")
        }
        Compression::Zstd => (
            ruzstd::encoding::compress_to_vec(data.as_slice(), ruzstd::encoding::CompressionLevel::Fastest),
            "application/vnd.oci.image.layer.v1.tar+zstd",
        ),
    }
}

/// A layer blob as a registry stores it, and its media type.
pub fn layer_blob(layer: &Layer) -> (Vec<u8>, &'static str) {
    compress(tar(&layer.files), layer.compression)
}

/// One platform's image under an index (as buildx pushes it), with `config` merged into a
/// minimal image config.
pub fn image(platform: &str, layers: &[Layer], config: Value) -> Image {
    let mut blobs = Vec::new();
    let mut descriptors = Vec::new();
    let mut diff_ids = Vec::new();
    for layer in layers {
        let raw = tar(&layer.files);
        diff_ids.push(sha256(&raw));
        let (bytes, media) = compress(raw, layer.compression);
        let digest = sha256(&bytes);
        descriptors.push(json!({"mediaType": media, "digest": digest, "size": bytes.len()}));
        blobs.push((digest, bytes));
    }
    let (os, arch) = platform.split_once('/').unwrap_or(("linux", "amd64"));
    let mut cfg = json!({
        "architecture": arch, "os": os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "COPY . . # buildkit", "comment": "buildkit.dockerfile.v0"}]
    });
    merge(&mut cfg, config);
    let cfg = serde_json::to_vec(&cfg).unwrap();
    let cfg_digest = sha256(&cfg);
    blobs.push((cfg_digest.clone(), cfg.clone()));
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg_digest, "size": cfg.len()},
        "layers": descriptors
    }))
    .unwrap();
    let manifest_digest = sha256(&manifest);
    blobs.push((manifest_digest.clone(), manifest.clone()));
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len(),
                       "platform": {"architecture": arch, "os": os}}]
    }))
    .unwrap();
    let root = sha256(&index);
    blobs.push((root.clone(), index));
    Image { blobs, root, manifest: manifest_digest }
}

/// One image per platform under a single index, as a multi-platform push makes it.
pub fn multi_platform(platforms: &[&str], layers: impl Fn(&str) -> Vec<Layer>, config: Value) -> Image {
    let mut blobs = Vec::new();
    let mut entries = Vec::new();
    for p in platforms {
        let one = image(p, &layers(p), config.clone());
        let manifest = one.blobs.iter().find(|(d, _)| *d == one.manifest).map(|(_, b)| b.len()).unwrap_or(0);
        let (os, arch) = p.split_once('/').unwrap_or(("linux", "amd64"));
        entries.push(json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": one.manifest,
                            "size": manifest, "platform": {"architecture": arch, "os": os}}));
        blobs.extend(one.blobs.into_iter().filter(|(d, _)| *d != one.root));
    }
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries
    }))
    .unwrap();
    let root = sha256(&index);
    blobs.push((root.clone(), index));
    let manifest = root.clone();
    Image { blobs, root, manifest }
}

/// Writes the image as a registry serves it: `<dir>/v2/<name>/blobs/<digest>` and
/// `<dir>/v2/<name>/manifests/<digest>` (and under each tag).
pub fn write_registry(dir: &Path, name: &str, image: &Image, tags: &[&str]) -> std::io::Result<()> {
    let repo = dir.join("v2").join(name);
    std::fs::create_dir_all(repo.join("blobs"))?;
    std::fs::create_dir_all(repo.join("manifests"))?;
    for (digest, bytes) in &image.blobs {
        std::fs::write(repo.join("blobs").join(digest), bytes)?;
        if serde_json::from_slice::<Value>(bytes).is_ok_and(|v| v.get("schemaVersion").is_some()) {
            std::fs::write(repo.join("manifests").join(digest), bytes)?;
        }
    }
    let root = &image.blobs.iter().find(|(d, _)| *d == image.root).expect("the root blob").1;
    for tag in tags {
        std::fs::write(repo.join("manifests").join(tag), root)?;
    }
    Ok(())
}

fn merge(base: &mut Value, extra: Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Writes the image as an OCI layout (`oci-layout`, `index.json`, `blobs/sha256/…`).
pub fn write_layout(dir: &Path, image: &Image) -> std::io::Result<()> {
    std::fs::create_dir_all(dir.join("blobs/sha256"))?;
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)?;
    for (digest, bytes) in &image.blobs {
        std::fs::write(dir.join("blobs/sha256").join(digest.trim_start_matches("sha256:")), bytes)?;
    }
    let root = image.blobs.iter().find(|(d, _)| *d == image.root).map(|(_, b)| b.len()).unwrap_or(0);
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": image.root, "size": root}]});
    std::fs::write(dir.join("index.json"), index.to_string())
}
