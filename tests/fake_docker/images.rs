//! The fake's registries: its own record of what was pushed (`fake-docker-registry.json` in
//! the state directory, fake digests) and, with `FAKE_DOCKER_REGISTRY_DIR`, the directory a
//! test registry serves (real images, real digests); `imagetools create|inspect` over both.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::builders::failing;
use super::{BuildArgs, Call, state_dir, stores};

/// What the fake registry holds: `repo@digest` and `repo:tag` → the raw manifest JSON.
fn registry() -> BTreeMap<String, String> {
    let file = state_dir().join("fake-docker-registry.json");
    std::fs::read_to_string(file).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}

fn save_registry(r: &BTreeMap<String, String>) {
    std::fs::write(state_dir().join("fake-docker-registry.json"), serde_json::to_string(r).unwrap()).unwrap();
}

/// A stable stand-in for sha256 over bytes (the fake never verifies content digests).
pub fn fake_digest(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut out = String::from("sha256:");
    for salt in 0u8..4 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (salt, bytes).hash(&mut h);
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out
}

fn platform_json(p: &str) -> Value {
    let parts: Vec<&str> = p.split('/').collect();
    let mut v = json!({"architecture": parts.get(1).copied().unwrap_or("amd64"), "os": parts[0]});
    if let Some(variant) = parts.get(2) {
        v["variant"] = json!(variant);
    }
    v
}

/// The digest of a by-digest push of one platform: an index holding the image manifest and
/// its provenance attestation, as buildx pushes by default.
/// The image a build would produce, made for real (real digests, gzip layers) so that the
/// action's secret scan can read it. `FAKE_DOCKER_LEAK=<secret id>` makes it leak that
/// secret's value into a file of a layer of its own on top, as a `RUN --mount=type=secret,id=x
/// cat /run/secrets/x > …` step added to the Dockerfile would (the first layer is unchanged).
pub fn real_image(args: &BuildArgs, platforms: &[&str]) -> sdi::oci::Image {
    let leak = std::env::var("FAKE_DOCKER_LEAK").ok().and_then(|id| {
        let spec = args.all("--secret").into_iter().find(|s| s.split(',').any(|f| f == format!("id={id}")))?;
        let env = spec.split(',').find_map(|f| f.strip_prefix("env="))?;
        std::env::var(env).ok()
    });
    let layers = |_: &str| {
        let files = vec![("app/index.js".to_string(), b"console.log('hi')\n".to_vec())];
        let mut layers = vec![sdi::oci::Layer { files, compression: sdi::oci::Compression::Gzip }];
        if let Some(value) = &leak {
            let npmrc = ("root/.npmrc".to_string(), format!("//registry.npmjs.org/:_authToken={value}\n").into_bytes());
            layers.push(sdi::oci::Layer { files: vec![npmrc], compression: sdi::oci::Compression::Gzip });
        }
        layers
    };
    sdi::oci::multi_platform(platforms, layers, json!({}))
}

fn push_by_digest(name: &str, platform: &str, context: &str) -> String {
    let image = fake_digest(format!("{platform} {context}").as_bytes());
    let attestation = fake_digest(format!("attestation {image}").as_bytes());
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image, "size": 673, "platform": platform_json(platform)},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": attestation, "size": 566,
             "annotations": {"vnd.docker.reference.digest": image, "vnd.docker.reference.type": "attestation-manifest"},
             "platform": {"architecture": "unknown", "os": "unknown"}}
        ]
    })
    .to_string();
    let digest = fake_digest(index.as_bytes());
    let mut r = registry();
    r.insert(format!("{name}@{digest}"), index);
    save_registry(&r);
    digest
}

/// `imagetools create [--dry-run] -t TAG… SOURCE…`: sources must exist; their entries are
/// combined into one index, printed (dry run) or pushed under every tag.
pub fn imagetools_create(call: Call, rest: &[&str]) -> ExitCode {
    let (mut tags, mut sources, mut dry) = (Vec::new(), Vec::new(), false);
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--tag" | "-t" => {
                tags.push(rest.get(i + 1).copied().unwrap_or_default().to_string());
                i += 1;
            }
            "--builder" => i += 1,
            "--dry-run" => dry = true,
            flag if flag.starts_with('-') => {
                eprintln!("ERROR: unknown flag: {flag}");
                return call.finish(1);
            }
            source => sources.push(source.to_string()),
        }
        i += 1;
    }
    if sources.is_empty() {
        eprintln!("ERROR: no sources specified");
        return call.finish(1);
    }
    if failing("imagetools-create") {
        eprintln!("#1 [internal] pushing ghcr.io/codertocat/hello-world:latest");
        eprintln!(
            "ERROR: failed commit on ref \"index-sha256:4f0c\": unexpected status from PUT request to https://ghcr.io/v2/codertocat/hello-world/manifests/latest: 403 Forbidden"
        );
        return call.finish(1);
    }
    if !dry && tags.is_empty() {
        eprintln!("ERROR: can't push with no tags specified, please set --tag or --dry-run");
        return call.finish(1);
    }
    let mut stored = registry();
    let mut manifests = Vec::new();
    for source in &sources {
        let Some(raw) = stored.get(source) else {
            eprintln!("ERROR: {source}: not found");
            return call.finish(1);
        };
        let v: Value = serde_json::from_str(raw).unwrap();
        manifests.extend(v["manifests"].as_array().cloned().unwrap_or_default());
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})
            .to_string();
    if dry {
        println!("{index}");
        return call.finish(0);
    }
    let digest = fake_digest(index.as_bytes());
    for tag in &tags {
        eprintln!("#1 [internal] pushing {tag}");
        let name = tag.rsplit_once(':').map(|(n, _)| n).unwrap_or(tag);
        stored.insert(tag.clone(), index.clone());
        stored.insert(format!("{name}@{digest}"), index.clone());
    }
    save_registry(&stored);
    call.finish(0)
}

/// `imagetools inspect [--raw] REF`: the raw manifest, or the summary whose `Digest:` line
/// names it.
pub fn imagetools_inspect(call: Call, rest: &[&str]) -> ExitCode {
    let raw = rest.contains(&"--raw");
    let mut operands = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            "--builder" | "--format" => i += 1,
            flag if flag.starts_with('-') => {}
            operand => operands.push(operand),
        }
        i += 1;
    }
    let Some(reference) = operands.first() else {
        eprintln!("ERROR: requires exactly 1 argument");
        return call.finish(1);
    };
    let in_dir = std::env::var("FAKE_DOCKER_REGISTRY_DIR").ok().and_then(|dir| {
        let (name, tag) = reference.rsplit_once(':')?;
        std::fs::read_to_string(Path::new(&dir).join("v2").join(name.split_once('/')?.1).join("manifests").join(tag))
            .ok()
    });
    // What the test registry's directory holds has real digests; the fake's record, its own.
    let real = in_dir.is_some();
    let digest_of = |m: &str| if real { sdi::oci::sha256(m.as_bytes()) } else { fake_digest(m.as_bytes()) };
    let Some(manifest) = in_dir.or_else(|| registry().get(*reference).cloned()) else {
        eprintln!("ERROR: {reference}: not found");
        return call.finish(1);
    };
    if raw {
        print!("{manifest}");
    } else {
        println!("Name:      {reference}");
        println!("MediaType: application/vnd.oci.image.index.v1+json");
        println!("Digest:    {}", digest_of(&manifest));
    }
    call.finish(0)
}

/// Pushes what the outputs ask for (by digest into the test registry's directory, by digest
/// into the fake's record, or under tags) and records it as buildx does; `stores` are the
/// contents a cache-mount save copied.
pub fn push(
    m: &mut serde_json::Map<String, Value>,
    (args, requested): (&BuildArgs, &[&str]),
    stores: Option<&[(String, String)]>,
) {
    let pushes = args.has("--push")
        || args.all("--output").iter().any(|o| o.contains("push=true") || o.contains("type=registry"));
    let by_digest = args.all("--output").iter().find(|o| o.contains("push-by-digest=true")).copied().filter(|_| pushes);
    let registry_dir = std::env::var("FAKE_DOCKER_REGISTRY_DIR").ok();
    let name_of =
        |output: &str| output.split(',').find_map(|f| f.strip_prefix("name=")).unwrap_or_default().to_string();
    if let (Some(output), Some(dir)) = (by_digest, &registry_dir) {
        // Pushed for real into the directory a test registry serves.
        let name = name_of(output);
        let digest = match stores {
            Some(saved) => stores::push_stores_image(Path::new(dir), &name, None, saved),
            None => {
                let image = real_image(args, requested);
                sdi::oci::write_registry(
                    Path::new(dir),
                    name.split_once('/').map_or(name.as_str(), |(_, r)| r),
                    &image,
                    &[],
                )
                .unwrap();
                let root = image.blobs.iter().find(|(d, _)| *d == image.root).unwrap();
                let mut r = registry();
                r.insert(format!("{name}@{}", image.root), String::from_utf8(root.1.clone()).unwrap());
                save_registry(&r);
                m["containerimage.descriptor"]["digest"] = json!(image.root);
                image.root
            }
        };
        m.insert("image.name".into(), json!(name));
        m.insert("containerimage.digest".into(), json!(digest));
    } else if let Some(output) = by_digest {
        let name = name_of(output);
        let digest = push_by_digest(&name, args.one("--platform").unwrap_or("linux/amd64"), &args.context);
        m.insert("image.name".into(), json!(name));
        m.insert("containerimage.digest".into(), json!(digest));
        m["containerimage.descriptor"]["digest"] = json!(digest);
    } else if pushes {
        let named = args
            .all("--output")
            .iter()
            .find_map(|o| o.split(',').find_map(|f| f.strip_prefix("name=")).map(str::to_string));
        let names: Vec<String> = match named {
            Some(n) => vec![n],
            None => args.all("--tag").iter().map(|t| t.to_string()).collect(),
        };
        let mut r = registry();
        for name in &names {
            if let Some(saved) = stores {
                stores::record_tagged(name, saved);
            }
            r.insert(
                name.clone(),
                json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "layers": []})
                    .to_string(),
            );
        }
        save_registry(&r);
        m.insert("image.name".into(), json!(names.join(",")));
    } else {
        m.retain(|k, _| !k.starts_with("containerimage.") && k != "image.name");
    }
}
