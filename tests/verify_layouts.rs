//! The secret scan on OCI layouts these tests make: a value planted raw, base64-encoded, in a
//! gzip layer, in a zstd layer, deep in the tree, in ENV, in the history; and a clean image.

use base64::Engine;
use sdi::oci::{Compression, Layer, image, write_layout};
use sdi::verify::{Encoding, Needles, Place, scan_layout};
use serde_json::{Value, json};

const SECRET: &str = "npm_9f3Kq2LmZx81TvW0aBcD";

fn needles() -> Needles {
    Needles::new(&[("npm_token".into(), SECRET.as_bytes().to_vec()), ("pin".into(), b"1234".to_vec())])
}

fn layer(files: &[(&str, &[u8])], compression: Compression) -> Layer {
    Layer { files: files.iter().map(|(p, c)| (p.to_string(), c.to_vec())).collect(), compression }
}

fn app_layer(compression: Compression) -> Layer {
    layer(&[("app/index.js", b"console.log('hi')\n"), ("app/package.json", b"{}\n")], compression)
}

/// Builds, writes and scans one image; returns the hits' messages and the image's layer digests.
fn scan(layers: Vec<Layer>, config: Value) -> (Vec<sdi::verify::Hit>, Vec<String>) {
    let img = image("linux/amd64", &layers, config);
    let dir = tempfile::tempdir().unwrap();
    write_layout(dir.path(), &img).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    let report = rt.block_on(scan_layout(dir.path(), &needles())).unwrap();
    assert_eq!(report.platforms, ["linux/amd64"]);
    assert_eq!(report.layers, layers.len());
    let manifest: Value =
        serde_json::from_slice(&img.blobs.iter().find(|(d, _)| *d == img.manifest).unwrap().1).unwrap();
    let digests =
        manifest["layers"].as_array().unwrap().iter().map(|l| l["digest"].as_str().unwrap().to_string()).collect();
    for hit in &report.hits {
        let message = hit.to_string();
        assert!(!message.contains(SECRET), "the value leaked into the message: {message}");
        assert!(message.contains("'npm_token'"));
    }
    (report.hits, digests)
}

fn only_layer_hit(hits: &[sdi::verify::Hit]) -> (&str, &str, Encoding) {
    assert_eq!(hits.len(), 1, "{hits:?}");
    match &hits[0].place {
        Place::Layer { digest, path } => (digest, path, hits[0].encoding),
        other => panic!("expected a layer hit, got {other:?}"),
    }
}

#[test]
fn a_clean_image_has_no_hit() {
    let (hits, _) = scan(vec![app_layer(Compression::Gzip), app_layer(Compression::Zstd)], json!({}));
    assert!(hits.is_empty(), "{hits:?}");
}

#[test]
fn a_raw_value_in_an_uncompressed_layer() {
    let leak = format!("//registry.npmjs.org/:_authToken={SECRET}\n");
    let (hits, layers) = scan(
        vec![app_layer(Compression::None), layer(&[("root/.npmrc", leak.as_bytes())], Compression::None)],
        json!({}),
    );
    let (digest, path, encoding) = only_layer_hit(&hits);
    assert_eq!((digest, path, encoding), (layers[1].as_str(), "root/.npmrc", Encoding::Raw));
}

#[test]
fn a_base64_value_in_a_gzip_layer() {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci-user:{SECRET}"));
    let config = format!("{{\"auths\":{{\"registry.example.com\":{{\"auth\":\"{auth}\"}}}}}}");
    let (hits, layers) =
        scan(vec![layer(&[("root/.docker/config.json", config.as_bytes())], Compression::Gzip)], json!({}));
    let (digest, path, encoding) = only_layer_hit(&hits);
    assert_eq!((digest, path, encoding), (layers[0].as_str(), "root/.docker/config.json", Encoding::Base64));
}

#[test]
fn a_value_in_a_zstd_layer_deep_in_the_tree() {
    let deep = "usr/local/lib/node_modules/.cache/build/a/b/c/d/e/f/token.txt";
    let (hits, layers) = scan(
        vec![
            app_layer(Compression::Zstd),
            layer(&[("usr/share/doc/readme", b"nothing"), (deep, SECRET.as_bytes())], Compression::Zstd),
        ],
        json!({}),
    );
    let (digest, path, _) = only_layer_hit(&hits);
    assert_eq!((digest, path), (layers[1].as_str(), deep));
}

#[test]
fn a_value_hex_encoded_or_in_a_file_name() {
    let hex: String = SECRET.bytes().map(|b| format!("{b:02x}")).collect();
    let (hits, _) = scan(vec![layer(&[("tmp/dump.hex", hex.as_bytes())], Compression::Gzip)], json!({}));
    assert_eq!(only_layer_hit(&hits).2, Encoding::Hex);
    let name = format!("tmp/{SECRET}.lock");
    let (hits, _) = scan(vec![layer(&[(&name, b"")], Compression::Gzip)], json!({}));
    assert_eq!(only_layer_hit(&hits).1, "tmp/***.lock", "the path is shown with the value blanked out");
}

#[test]
fn a_value_in_env_or_a_label_of_the_config() {
    let (hits, _) = scan(
        vec![app_layer(Compression::Gzip)],
        json!({"config": {"Env": ["PATH=/bin", format!("NPM_TOKEN={SECRET}")]}}),
    );
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert!(matches!(&hits[0].place, Place::Config { field, .. } if field == "config.Env[1]"), "{hits:?}");
    let (hits, _) = scan(vec![app_layer(Compression::Gzip)], json!({"config": {"Labels": {"token": SECRET}}}));
    assert!(matches!(&hits[0].place, Place::Config { field, .. } if field == "config.Labels.token"), "{hits:?}");
}

#[test]
fn a_value_in_the_build_history() {
    let created_by = format!("RUN /bin/sh -c echo {SECRET} > /dev/null # buildkit");
    let (hits, _) = scan(vec![app_layer(Compression::Gzip)], json!({"history": [{"created_by": created_by}]}));
    assert_eq!(hits.len(), 1);
    assert!(matches!(&hits[0].place, Place::Config { field, .. } if field == "history[0].created_by"), "{hits:?}");
    assert!(hits[0].to_string().starts_with("secret 'npm_token' (as is) is in the image config sha256:"));
}

#[test]
fn short_values_are_not_scanned() {
    let (hits, _) = scan(vec![layer(&[("pin.txt", b"1234")], Compression::None)], json!({}));
    assert!(hits.is_empty());
    assert_eq!(needles().skipped, ["pin"]);
}
