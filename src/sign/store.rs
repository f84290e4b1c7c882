//! The bundle stored beside the image it signs, as an OCI artifact whose `subject` is the
//! image: found through the registry's referrers API where it has one, else through the tag
//! schema (`sha256-<hex>`: an index of the image's referrers) that GHCR and distribution 2.8
//! need, which this room then keeps up to date.

use oci_client::RegistryOperation;
use serde_json::{Value, json};

use crate::verify::Registry;
use crate::verify::sources::MANIFEST_TYPES;

const EMPTY_CONFIG: &[u8] = b"{}";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn io(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Pushes `bundle` as an artifact referring to the manifest `subject`, then makes sure the
/// image's referrers list it; the artifact's digest.
pub async fn store(registry: &Registry, subject: &str, bundle: &[u8], annotations: Value) -> std::io::Result<String> {
    let (client, repo, auth) = registry.oci();
    let at = |digest: &str| repo.clone_with_digest(digest.to_string());
    client.auth(repo, auth, RegistryOperation::Push).await.map_err(io)?;
    let (raw, _) = client.pull_manifest_raw(&at(subject), auth, MANIFEST_TYPES).await.map_err(io)?;
    let media = serde_json::from_slice::<Value>(&raw).ok().and_then(|m| m["mediaType"].as_str().map(str::to_string));
    let subject_descriptor =
        json!({ "mediaType": media.unwrap_or(OCI_MANIFEST.into()), "digest": subject, "size": raw.len() });
    let (config, layer) = (crate::oci::sha256(EMPTY_CONFIG), crate::oci::sha256(bundle));
    for (digest, data) in [(&config, EMPTY_CONFIG), (&layer, bundle)] {
        client.push_blob(&at(digest), data.to_vec(), digest).await.map_err(io)?;
    }
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": super::bundle::BUNDLE_V03,
        "config": { "mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": EMPTY_CONFIG.len() },
        "layers": [{ "mediaType": super::bundle::BUNDLE_V03, "digest": layer, "size": bundle.len() }],
        "subject": subject_descriptor,
        "annotations": annotations,
    });
    let body = serde_json::to_vec(&manifest).map_err(io)?;
    let digest = crate::oci::sha256(&body);
    let content_type = http::HeaderValue::from_static(OCI_MANIFEST);
    client.push_manifest_raw(&at(&digest), body.clone(), content_type).await.map_err(io)?;
    let listed = client.pull_referrers(&at(subject), Some(super::bundle::BUNDLE_V03)).await.map_err(io)?;
    if listed.manifests.iter().any(|m| m.digest == digest) {
        return Ok(digest);
    }
    let descriptor = json!({
        "mediaType": OCI_MANIFEST, "digest": digest, "size": body.len(),
        "artifactType": super::bundle::BUNDLE_V03, "annotations": manifest["annotations"],
    });
    add_to_tag_schema(registry, subject, descriptor).await?;
    Ok(digest)
}

/// The referrers tag of `subject` (`sha256-<hex>`) with `descriptor` added to its index.
async fn add_to_tag_schema(registry: &Registry, subject: &str, descriptor: Value) -> std::io::Result<()> {
    let (client, repo, auth) = registry.oci();
    let tag = oci_client::Reference::with_tag(
        repo.registry().to_string(),
        repo.repository().to_string(),
        subject.replacen(':', "-", 1),
    );
    let mut index = match client.pull_manifest_raw(&tag, auth, &[OCI_INDEX]).await {
        Ok((raw, _)) => serde_json::from_slice::<Value>(&raw).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    if index["manifests"].as_array().is_none() {
        index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [] });
    }
    let entries = index["manifests"].as_array_mut().expect("made an array above");
    entries.retain(|m| m["digest"] != descriptor["digest"]);
    entries.push(descriptor);
    let body = serde_json::to_vec(&index).map_err(io)?;
    client.push_manifest_raw(&tag, body, http::HeaderValue::from_static(OCI_INDEX)).await.map_err(io)?;
    Ok(())
}
