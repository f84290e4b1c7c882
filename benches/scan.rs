//! Benchmark (not a test): the time the secret scan adds, on an image of 64 MB (compressed),
//! read from an OCI layout. `cargo bench --bench scan`.

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

fn main() {
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
    let img = image("linux/amd64", &layers, serde_json::json!({}));
    write_layout(dir.path(), &img).unwrap();
    let secrets: Vec<(String, Vec<u8>)> =
        (0..5).map(|i| (format!("secret{i}"), format!("value-{i}-0123456789abcdef").into_bytes())).collect();
    let needles = Needles::new(&secrets);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..5 {
        let started = Instant::now();
        let report = rt.block_on(scan_layout(dir.path(), &needles)).unwrap();
        times.push(started.elapsed().as_secs_f64());
        assert!(report.hits.is_empty());
        bytes = report.bytes;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "scan of {:.1} MB compressed (4 layers, 1024 files, 5 secrets × 7 forms): median {:.3} s, min {:.3} s, max {:.3} s over {} runs",
        bytes as f64 / 1e6,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}
