//! Benchmark (not a test): what the secret scan costs, read from an OCI layout on one core.
//! Two images: 4 layers of 16 MB (gzip and zstd, 1024 small files), and one layer of 1 GiB
//! uncompressed (1024 files of 1 MiB, half text and half noise, gzip), written to disk as it is
//! made. Reports the wall time and the throughput over uncompressed layer bytes. Then what a
//! guess at a secret value costs against the proof ledger (`proof_key_cost`).
//! `cargo bench --bench scan` (`cargo bench --bench scan -- proof-key` for that part alone).

use std::io::Write;
use std::time::Instant;

use sdi::oci::{Compression, Layer, image, write_layout};
use sdi::verify::{Needles, scan_layout};

/// Deterministic incompressible bytes (xorshift), so the layer stays as big as it is.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// JavaScript-like text: compresses about as well as a node_modules tree.
fn text(len: usize, seed: u64) -> Vec<u8> {
    let words = ["function", "return", "const", "module.exports", "require", "=>", "{", "}", "if", "null"];
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(words[(x % words.len() as u64) as usize].as_bytes());
        out.push(if x.is_multiple_of(7) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

fn secrets() -> Vec<(String, Vec<u8>)> {
    (0..5).map(|i| (format!("secret{i}"), format!("value-{i}-0123456789abcdef").into_bytes())).collect()
}

/// Median, min and max of `runs` scans of the layout, and its uncompressed size.
fn time_scans(dir: &std::path::Path, runs: usize) -> (Vec<f64>, u64, u64) {
    let needles = Needles::new(&secrets());
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut times = Vec::new();
    let (mut bytes, mut uncompressed) = (0, 0);
    for _ in 0..runs {
        let started = Instant::now();
        let report = rt.block_on(scan_layout(dir, &needles)).unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert!(report.hits.is_empty());
        (bytes, uncompressed) = (report.bytes, report.uncompressed);
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times, bytes, uncompressed)
}

fn report(what: &str, (times, bytes, uncompressed): (Vec<f64>, u64, u64)) {
    let median = times[times.len() / 2];
    println!(
        "{what}: {:.1} MB compressed, {:.1} MB uncompressed; median {median:.3} s (min {:.3}, max {:.3}, {} runs) = {:.0} MB/s uncompressed",
        bytes as f64 / 1e6,
        uncompressed as f64 / 1e6,
        times[0],
        times[times.len() - 1],
        times.len(),
        uncompressed as f64 / 1e6 / median
    );
}

fn small_layers() {
    let dir = tempfile::tempdir().unwrap();
    // Four layers of many files, like a node_modules tree: 4 × 16 MB, gzip and zstd.
    let layers: Vec<Layer> = (0..4)
        .map(|l| Layer {
            files: (0..256)
                .map(|f| (format!("app/node_modules/pkg{l}/file{f}.bin"), noise(64 * 1024, (l * 1000 + f) as u64)))
                .collect(),
            compression: if l % 2 == 0 { Compression::Gzip } else { Compression::Zstd },
        })
        .collect();
    write_layout(dir.path(), &image("linux/amd64", &layers, serde_json::json!({}))).unwrap();
    report("4 layers × 16 MB (gzip, zstd), 5 secrets × 7 forms", time_scans(dir.path(), 5));
}

/// One 1 GiB layer, gzip (fast), streamed to disk under an OCI layout.
fn one_gib_layer() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = dir.path().join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let tmp = blobs.join("layer.tmp");
    let file = std::fs::File::create(&tmp).unwrap();
    let mut gz = flate2::write::GzEncoder::new(std::io::BufWriter::new(file), flate2::Compression::fast());
    {
        let mut tar = tar::Builder::new(&mut gz);
        for f in 0..1024u64 {
            let content = if f.is_multiple_of(2) { text(1 << 20, f) } else { noise(1 << 20, f) };
            let mut h = tar::Header::new_gnu();
            h.set_size(content.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            tar.append_data(&mut h, format!("opt/model/shard-{f:04}.bin"), content.as_slice()).unwrap();
        }
        tar.finish().unwrap();
    }
    gz.finish().unwrap().flush().unwrap();
    let layer_bytes = std::fs::read(&tmp).map(|b| b.len()).unwrap();
    let layer_digest = sha_of_file(&tmp);
    std::fs::rename(&tmp, blobs.join(&layer_digest[7..])).unwrap();
    let config = br#"{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":[]}}"#;
    let config_digest = sdi::oci::sha256(config);
    std::fs::write(blobs.join(&config_digest[7..]), config).unwrap();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_bytes}]
    })
    .to_string();
    let manifest_digest = sdi::oci::sha256(manifest.as_bytes());
    std::fs::write(blobs.join(&manifest_digest[7..]), &manifest).unwrap();
    std::fs::write(dir.path().join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()}]});
    std::fs::write(dir.path().join("index.json"), index.to_string()).unwrap();
    report("1 layer × 1 GiB (gzip, half text, half noise), 5 secrets × 7 forms", time_scans(dir.path(), 3));
}

fn sha_of_file(path: &std::path::Path) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut std::fs::File::open(path).unwrap(), &mut hasher).unwrap();
    format!("sha256:{:x}", hasher.finalize())
}

/// A value-keyed ledger entry costs an Argon2id derivation and an HMAC; a guess costs the same.
/// Reported against one SHA-256 of a short input: the work factor each guess carries, in bits.
fn proof_key_cost() {
    use sdi::verify::proofs::{value_entry, value_key};
    use sha2::Digest;
    let token = b"npm_Xk29fJq0LmZ8rTb3VwY6hN1cPdE7sGa4uQiK";
    let runs = 20;
    let started = Instant::now();
    let mut key = [0u8; 32];
    for i in 0..runs {
        key = value_key("github-repository-id:186853002", &format!("id{i}"), token);
    }
    let kdf = started.elapsed().as_secs_f64() / runs as f64;
    let hashes = 1_000_000;
    let started = Instant::now();
    let mut digest = [0u8; 32];
    for _ in 0..hashes {
        digest = sha2::Sha256::digest(digest).into();
    }
    let sha = started.elapsed().as_secs_f64() / hashes as f64;
    let started = Instant::now();
    for i in 0..hashes / 10 {
        std::hint::black_box(value_entry(&key, &format!("sha256:{i}")));
    }
    let entry = started.elapsed().as_secs_f64() / (hashes / 10) as f64;
    println!(
        "proof key: Argon2id {:.1} ms per derivation, an entry {:.2} µs, a SHA-256 {:.3} µs: each guess costs 2^{:.1} SHA-256s",
        kdf * 1e3,
        entry * 1e6,
        sha * 1e6,
        ((kdf + entry) / sha).log2()
    );
}

fn main() {
    if std::env::args().any(|a| a == "proof-key") {
        return proof_key_cost();
    }
    small_layers();
    one_gib_layer();
    proof_key_cost();
}
