//! Proves that no build secret reached the image, before any tag points at it.
//!
//! Every platform's image config (every string in it: env, labels, history, entrypoint, cmd…)
//! and every layer, decompressed (gzip, zstd) and read entry by entry, is searched for each
//! secret value as it is, base64-encoded (at every alignment), hex-encoded and URL-encoded.
//! Values are only ever held in memory: nothing here writes a byte to disk. Messages name the
//! secret id, the layer digest and the path, never the value.

pub mod keying;
pub mod proofs;
pub mod pushed;
pub(crate) mod sources;
pub mod strength;

use std::fmt;
use std::io::Read;

use aho_corasick::{AhoCorasick, AhoCorasickKind};
use base64::Engine;
use serde_json::Value;
pub use sources::{Blobs, ChannelReader, LayerReader, Layout, Registry, scan_layout};

/// Shorter values match too much by chance to mean anything.
pub const MIN_SCAN_LEN: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Raw,
    Base64,
    Hex,
    UrlEncoded,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Raw => "as is",
            Encoding::Base64 => "base64-encoded",
            Encoding::Hex => "hex-encoded",
            Encoding::UrlEncoded => "URL-encoded",
        })
    }
}

/// The secret values, in every form searched, ready for one multi-pattern pass.
#[derive(Clone)]
pub struct Needles {
    matcher: Option<AhoCorasick>,
    /// Per pattern: which secret, in which encoding.
    meta: Vec<(usize, Encoding)>,
    ids: Vec<String>,
    /// Ids whose values are too short to scan.
    pub skipped: Vec<String>,
    /// The longest pattern: how much of a chunk the next one must see again.
    longest: usize,
}

/// How much of a stream is searched at once.
const CHUNK: usize = 256 * 1024;

/// The base64 text of `value` wherever it starts in a larger base64 stream: for each of the
/// three alignments, the characters that depend on `value` alone.
fn base64_forms(value: &[u8]) -> Vec<Vec<u8>> {
    let b64 = base64::engine::general_purpose::STANDARD;
    (0..3)
        .filter_map(|k| {
            let mut buf = vec![0u8; k];
            buf.extend_from_slice(value);
            let enc = b64.encode(&buf);
            let skip = (k * 4).div_ceil(3);
            let full = buf.len() / 3 * 4;
            (full > skip + 4).then(|| enc.as_bytes()[skip..full].to_vec())
        })
        .collect()
}

fn url_encoded(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    out
}

impl Needles {
    pub fn new(secrets: &[(String, Vec<u8>)]) -> Self {
        let mut patterns: Vec<Vec<u8>> = Vec::new();
        let mut meta = Vec::new();
        let mut ids = Vec::new();
        let mut skipped = Vec::new();
        for (id, value) in secrets {
            if value.len() < MIN_SCAN_LEN {
                skipped.push(id.clone());
                continue;
            }
            let i = ids.len();
            ids.push(id.clone());
            let mut add = |p: Vec<u8>, e: Encoding| {
                if !patterns.contains(&p) {
                    patterns.push(p);
                    meta.push((i, e));
                }
            };
            add(value.clone(), Encoding::Raw);
            for form in base64_forms(value) {
                add(form, Encoding::Base64);
            }
            let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
            add(hex.to_uppercase().into_bytes(), Encoding::Hex);
            add(hex.into_bytes(), Encoding::Hex);
            add(url_encoded(value), Encoding::UrlEncoded);
        }
        let longest = patterns.iter().map(Vec::len).max().unwrap_or(0);
        // A DFA: the fastest search, and small for a few dozen patterns.
        let matcher = (!patterns.is_empty())
            .then(|| AhoCorasick::builder().kind(Some(AhoCorasickKind::DFA)).build(&patterns).expect("patterns build"));
        Needles { matcher, meta, ids, skipped, longest }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `(secret id, encoding)` of every secret found in `bytes`, once each.
    pub fn find(&self, bytes: &[u8]) -> Vec<(String, Encoding)> {
        let Some(m) = &self.matcher else { return Vec::new() };
        self.collect(m.find_iter(bytes).map(|x| x.pattern().as_usize()))
    }

    /// The same over a stream, without holding it whole: searched a large chunk at a time,
    /// each chunk starting with the previous one's last `longest - 1` bytes, so a value split
    /// across reads (or chunks) is found whole.
    pub fn find_in_reader(&self, reader: impl Read) -> std::io::Result<Vec<(String, Encoding)>> {
        self.find_in_reader_with(reader, &mut Vec::new())
    }

    /// `find_in_reader` with a buffer the caller keeps across streams (a layer's many files).
    pub fn find_in_reader_with(
        &self,
        mut reader: impl Read,
        buf: &mut Vec<u8>,
    ) -> std::io::Result<Vec<(String, Encoding)>> {
        let Some(m) = &self.matcher else {
            std::io::copy(&mut reader, &mut std::io::sink())?;
            return Ok(Vec::new());
        };
        let keep = self.longest.saturating_sub(1);
        buf.resize(CHUNK + keep, 0);
        let mut carry = 0;
        let mut found = Vec::new();
        loop {
            let mut end = carry;
            while end < buf.len() {
                match reader.read(&mut buf[end..]) {
                    Ok(0) => break,
                    Ok(n) => end += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            found.extend(m.find_overlapping_iter(&buf[..end]).map(|x| x.pattern().as_usize()));
            if end < buf.len() {
                return Ok(self.collect(found.into_iter()));
            }
            let start = end - keep.min(end);
            buf.copy_within(start..end, 0);
            carry = end - start;
        }
    }

    /// `text` with every form of every value replaced by `***`: a path or a field name can
    /// hold the value itself, and a message must not.
    pub fn redact(&self, text: &str) -> String {
        match &self.matcher {
            Some(m) => {
                let mut out = Vec::new();
                m.replace_all_with_bytes(text.as_bytes(), &mut out, |_, _, dst| {
                    dst.extend_from_slice(b"***");
                    true
                });
                String::from_utf8_lossy(&out).into_owned()
            }
            None => text.to_string(),
        }
    }

    fn collect(&self, patterns: impl Iterator<Item = usize>) -> Vec<(String, Encoding)> {
        let mut out: Vec<(String, Encoding)> = Vec::new();
        for p in patterns {
            let (i, e) = self.meta[p];
            if !out.iter().any(|(id, _)| *id == self.ids[i]) {
                out.push((self.ids[i].clone(), e));
            }
        }
        out
    }
}

/// Where a secret was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Layer { digest: String, path: String },
    Config { digest: String, field: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub id: String,
    pub encoding: Encoding,
    pub platform: Option<String>,
    pub place: Place,
}

impl fmt::Display for Hit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let platform = self.platform.as_deref().map(|p| format!(" ({p})")).unwrap_or_default();
        match &self.place {
            Place::Layer { digest, path } => {
                write!(f, "secret '{}' ({}) is in layer {digest}{platform}, file /{path}", self.id, self.encoding)
            }
            Place::Config { digest, field } => {
                write!(
                    f,
                    "secret '{}' ({}) is in the image config {digest}{platform}, field {field}",
                    self.id, self.encoding
                )
            }
        }
    }
}

/// Every string of the config JSON with its path (`config.Env[1]`, `history[3].created_by`).
fn strings(v: &Value, path: String, out: &mut Vec<(String, String)>) {
    match v {
        Value::String(s) => out.push((path, s.clone())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                strings(item, format!("{path}[{i}]"), out);
            }
        }
        Value::Object(map) => {
            for (k, item) in map {
                // A label's or annotation's key can carry the value too.
                out.push((format!("{path}.{k} (key)"), k.clone()));
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                strings(item, p, out);
            }
        }
        _ => {}
    }
}

pub fn scan_config(digest: &str, bytes: &[u8], platform: Option<&str>, needles: &Needles) -> Vec<Hit> {
    let mut fields = Vec::new();
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => strings(&v, String::new(), &mut fields),
        Err(_) => fields.push(("(whole file)".into(), String::from_utf8_lossy(bytes).into_owned())),
    }
    let mut hits = Vec::new();
    for (field, text) in fields {
        for (id, encoding) in needles.find(text.as_bytes()) {
            let hit = Hit {
                id,
                encoding,
                platform: platform.map(str::to_string),
                place: Place::Config { digest: digest.to_string(), field: needles.redact(&field) },
            };
            if !hits.iter().any(|h: &Hit| h.id == hit.id && h.place == hit.place) {
                hits.push(hit);
            }
        }
    }
    hits
}

/// Counts the bytes that pass through.
struct Counted<R> {
    inner: R,
    count: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.set(self.count.get() + n as u64);
        Ok(n)
    }
}

/// A layer's stream as a tar stream, whatever its compression (by media type, then by magic).
fn decompressed<'a>(media_type: &str, reader: impl Read + 'a) -> std::io::Result<Box<dyn Read + 'a>> {
    let mut buffered = std::io::BufReader::with_capacity(64 * 1024, reader);
    let magic = std::io::BufRead::fill_buf(&mut buffered)?;
    let gzip = media_type.ends_with("gzip") || magic.starts_with(&[0x1f, 0x8b]);
    let zstd = media_type.ends_with("zstd") || magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]);
    Ok(if gzip {
        Box::new(flate2::bufread::MultiGzDecoder::new(buffered))
    } else if zstd {
        Box::new(ruzstd::decoding::StreamingDecoder::new(buffered).map_err(std::io::Error::other)?)
    } else {
        Box::new(buffered)
    })
}

/// What one layer held, and its sizes.
#[derive(Debug, Default)]
pub struct LayerScan {
    pub hits: Vec<Hit>,
    pub compressed: u64,
    pub uncompressed: u64,
}

/// Scans a layer as it streams in: decompressed, read tar entry by tar entry, each entry's
/// name, link target and contents searched without holding them (the matcher keeps only a
/// window of the stream, so a value split across reads is still found).
pub fn scan_layer(
    digest: &str,
    media_type: &str,
    reader: impl Read,
    platform: Option<&str>,
    needles: &Needles,
) -> std::io::Result<LayerScan> {
    let compressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let uncompressed = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = Counted { inner: reader, count: compressed.clone() };
    let tar_stream = Counted { inner: decompressed(media_type, counted)?, count: uncompressed.clone() };
    let mut hits = Vec::new();
    let mut scratch = Vec::new();
    let mut archive = tar::Archive::new(tar_stream);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut found = needles.find(path.as_bytes());
        if let Some(link) = entry.link_name_bytes() {
            found.extend(needles.find(&link));
        }
        found.extend(needles.find_in_reader_with(&mut entry, &mut scratch)?);
        for (id, encoding) in found {
            let place =
                Place::Layer { digest: digest.to_string(), path: needles.redact(path.trim_start_matches("./")) };
            let hit = Hit { id, encoding, platform: platform.map(str::to_string), place };
            if !hits.contains(&hit) {
                hits.push(hit);
            }
        }
    }
    // The rest of the stream (tar padding, a second gzip member) is read too: nothing unread.
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok(LayerScan { hits, compressed: compressed.get(), uncompressed: uncompressed.get() })
}

/// What was scanned and found.
#[derive(Debug, Default)]
pub struct Report {
    pub hits: Vec<Hit>,
    pub platforms: Vec<String>,
    pub layers: usize,
    /// Compressed bytes read.
    pub bytes: u64,
    /// Layer bytes after decompression.
    pub uncompressed: u64,
    /// The layers read and scanned, by digest.
    pub scanned: Vec<String>,
    /// Layers not read: proven clean of these very values before (`proofs`).
    pub proven: usize,
}

fn platform_of(v: &Value) -> Option<String> {
    let p = v.get("platform")?;
    let os = p.get("os")?.as_str()?;
    let arch = p.get("architecture")?.as_str()?;
    Some(match p.get("variant").and_then(Value::as_str) {
        Some(var) if !var.is_empty() => format!("{os}/{arch}/{var}"),
        _ => format!("{os}/{arch}"),
    })
}

/// Scans everything reachable from `root` (an index or an image manifest): every platform's
/// config and layers. Attestation manifests (`unknown/unknown`) hold no image and are skipped.
pub async fn scan(blobs: &mut impl Blobs, root: &str, needles: &Needles) -> std::io::Result<Report> {
    scan_skipping(blobs, root, needles, |_| false).await
}

/// `scan`, leaving out the layers `proven` says were already proven clean (configs are always
/// read: they are small, and carry the labels and environment of this very build).
pub async fn scan_skipping(
    blobs: &mut impl Blobs,
    root: &str,
    needles: &Needles,
    proven: impl Fn(&str) -> bool,
) -> std::io::Result<Report> {
    let mut report = Report::default();
    let mut pending: Vec<(String, Option<String>)> = vec![(root.to_string(), None)];
    let mut seen = Vec::new();
    while let Some((digest, platform)) = pending.pop() {
        if seen.contains(&digest) {
            continue;
        }
        seen.push(digest.clone());
        let raw = blobs.manifest(&digest).await?;
        let m: Value = serde_json::from_slice(&raw).map_err(std::io::Error::other)?;
        if let Some(entries) = m.get("manifests").and_then(Value::as_array) {
            for e in entries {
                let p = platform_of(e);
                if p.as_deref().is_some_and(|p| p.starts_with("unknown/")) {
                    continue;
                }
                if let Some(d) = e.get("digest").and_then(Value::as_str) {
                    pending.push((d.to_string(), p));
                }
            }
            continue;
        }
        let config_digest = m["config"]["digest"].as_str().unwrap_or_default().to_string();
        let config = blobs.blob(&config_digest).await?;
        let config_json: Value = serde_json::from_slice(&config).unwrap_or(Value::Null);
        let platform = platform.or_else(|| {
            let os = config_json.get("os")?.as_str()?;
            let arch = config_json.get("architecture")?.as_str()?;
            Some(format!("{os}/{arch}"))
        });
        if let Some(p) = &platform {
            report.platforms.push(p.clone());
        }
        report.hits.extend(scan_config(&config_digest, &config, platform.as_deref(), needles));
        for layer in m.get("layers").and_then(Value::as_array).into_iter().flatten() {
            let digest = layer["digest"].as_str().unwrap_or_default();
            let media = layer["mediaType"].as_str().unwrap_or_default();
            if proven(digest) {
                report.proven += 1;
                continue;
            }
            report.scanned.push(digest.to_string());
            let reader = blobs.layer(digest).await?;
            let (digest, media, platform, needles) =
                (digest.to_string(), media.to_string(), platform.clone(), needles.clone());
            // Decompression and matching are CPU work: off the runtime, which meanwhile keeps
            // feeding the layer from the network.
            let scanned =
                tokio::task::spawn_blocking(move || scan_layer(&digest, &media, reader, platform.as_deref(), &needles))
                    .await
                    .map_err(std::io::Error::other)??;
            report.layers += 1;
            report.bytes += scanned.compressed;
            report.uncompressed += scanned.uncompressed;
            report.hits.extend(scanned.hits);
        }
    }
    report.platforms.sort();
    report.platforms.dedup();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_found_at_every_alignment() {
        let secret = b"s3cr3t-value-123".to_vec();
        let needles = Needles::new(&[("tok".into(), secret.clone())]);
        let b64 = base64::engine::general_purpose::STANDARD;
        for prefix in ["", "a", "ab", "abc", "user:"] {
            let mut data = prefix.as_bytes().to_vec();
            data.extend_from_slice(&secret);
            data.extend_from_slice(b"@registry");
            let text = b64.encode(&data);
            assert_eq!(needles.find(text.as_bytes()), [("tok".to_string(), Encoding::Base64)], "prefix {prefix:?}");
        }
    }

    #[test]
    fn hex_url_and_raw_forms() {
        let needles = Needles::new(&[("t".into(), b"p@ss word/12345".to_vec())]);
        assert_eq!(needles.find(b"x p@ss word/12345 y")[0].1, Encoding::Raw);
        assert_eq!(needles.find(b"70407373")[..], []);
        let hex: String = b"p@ss word/12345".iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(needles.find(hex.as_bytes())[0].1, Encoding::Hex);
        assert_eq!(needles.find(b"token=p%40ss%20word%2F12345&x")[0].1, Encoding::UrlEncoded);
        assert!(needles.find(b"nothing to see").is_empty());
    }

    #[test]
    fn short_values_are_skipped_and_said_so() {
        let needles = Needles::new(&[("pin".into(), b"1234".to_vec()), ("long".into(), b"long-enough-value".to_vec())]);
        assert_eq!(needles.skipped, ["pin"]);
        assert!(needles.find(b"1234").is_empty());
        assert!(!needles.is_empty());
    }

    #[test]
    fn a_hit_names_id_place_and_never_the_value() {
        let hit = Hit {
            id: "npm".into(),
            encoding: Encoding::Base64,
            platform: Some("linux/amd64".into()),
            place: Place::Layer { digest: "sha256:ab".into(), path: "app/.npmrc".into() },
        };
        assert_eq!(
            hit.to_string(),
            "secret 'npm' (base64-encoded) is in layer sha256:ab (linux/amd64), file /app/.npmrc"
        );
    }
}
