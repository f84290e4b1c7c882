//! The image the cache-mount stores are saved in: the helper image's layers, then a store's
//! layers, named in order by a label: its whole copy, and on top of it the files a later save
//! changed (a store may have several, the newest last). Knowing which layers hold which store
//! lets a save push only what changed and point the new image at the old layers (same
//! repository: nothing is uploaded for them). Pure: bytes in, bytes out.

use serde_json::{Value, json};

/// The config label naming the store directory of each of the last layers, in layer order.
pub const LABEL: &str = "dev.sdi.cache-mounts";

/// At most this many layers a store: its whole copy, and the changes of later saves on top.
pub const MAX_STORE_LAYERS: usize = 4;

const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// A layer: its descriptor in the manifest and its uncompressed digest in the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub descriptor: Value,
    pub diff_id: String,
}

/// A saved stores image, read.
#[derive(Debug, Clone, PartialEq)]
pub struct StoresImage {
    /// The helper image's layers, under the stores.
    pub base: Vec<Layer>,
    /// `(store directory, a layer of it)`, in layer order: a directory may come again (the
    /// files a later save changed).
    pub stores: Vec<(String, Layer)>,
    config: Value,
}

impl StoresImage {
    /// Reads an image manifest and its config; `None` for anything that is not a stores image
    /// this action wrote (an older layout, a label that does not match the layers).
    pub fn read(manifest: &[u8], config: &[u8]) -> Option<StoresImage> {
        let manifest: Value = serde_json::from_slice(manifest).ok()?;
        let config: Value = serde_json::from_slice(config).ok()?;
        let descriptors = manifest.get("layers")?.as_array()?;
        let diff_ids = config.pointer("/rootfs/diff_ids")?.as_array()?;
        if descriptors.len() != diff_ids.len() {
            return None;
        }
        let dirs: Vec<String> =
            config.pointer("/config/Labels")?.get(LABEL)?.as_str()?.split_whitespace().map(str::to_string).collect();
        let base_len = descriptors.len().checked_sub(dirs.len())?;
        let mut layers = descriptors
            .iter()
            .zip(diff_ids)
            .map(|(d, id)| Some(Layer { descriptor: d.clone(), diff_id: id.as_str()?.to_string() }));
        let base = layers.by_ref().take(base_len).collect::<Option<Vec<_>>>()?;
        let stores = dirs.into_iter().zip(layers).map(|(dir, l)| Some((dir, l?))).collect::<Option<Vec<_>>>()?;
        Some(StoresImage { base, stores, config })
    }

    /// A label of the image's config.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.config.pointer("/config/Labels")?.get(key)?.as_str()
    }

    /// A store's layers, its whole copy first.
    pub fn layers_of(&self, dir: &str) -> Vec<&Layer> {
        self.stores.iter().filter(|(d, _)| d == dir).map(|(_, l)| l).collect()
    }

    /// Whether the next save of `dir` writes it whole again rather than its changes on top:
    /// it has `MAX_STORE_LAYERS` already, or its changes weigh (compressed) more than half its
    /// whole copy; every restore pulls and unpacks them all. A store not in the image is not
    /// (its first layer is its whole copy).
    pub fn squash_due(&self, dir: &str) -> bool {
        let size = |l: &&Layer| l.descriptor["size"].as_u64().unwrap_or(0);
        match self.layers_of(dir).split_first() {
            None => false,
            Some((whole, changes)) => {
                changes.len() + 1 >= MAX_STORE_LAYERS || changes.iter().map(size).sum::<u64>() * 2 > size(whole)
            }
        }
    }

    /// The store directories, each once, in the order of their first layers.
    pub fn dirs(&self) -> Vec<String> {
        let mut dirs: Vec<String> = Vec::new();
        for (d, _) in &self.stores {
            if !dirs.contains(d) {
                dirs.push(d.clone());
            }
        }
        dirs
    }

    /// The image holding, for each of `dirs` in order, its layers from `self` (just saved) or
    /// else from `old` (left as restored): `(manifest, config)` bytes. `None` if a store is in
    /// neither.
    pub fn with_reused(&self, old: &StoresImage, dirs: &[String]) -> Option<(Vec<u8>, Vec<u8>)> {
        let mut stores = Vec::new();
        for d in dirs {
            let layers = Some(self.layers_of(d)).filter(|l| !l.is_empty()).unwrap_or_else(|| old.layers_of(d));
            if layers.is_empty() {
                return None;
            }
            stores.extend(layers.into_iter().map(|l| (d.clone(), l.clone())));
        }
        let image = StoresImage { base: self.base.clone(), stores, config: self.config.clone() };
        Some(image.encode())
    }

    /// This image with `key` set to `value` in its config's labels: same layers, a new config
    /// and manifest (`(manifest, config)` bytes).
    pub fn with_label(&self, key: &str, value: &str) -> (Vec<u8>, Vec<u8>) {
        let mut image = self.clone();
        image.config["config"]["Labels"][key] = json!(value);
        image.encode()
    }

    /// The manifest and config of this image: diff ids, history (one entry a layer) and the
    /// label follow the layers.
    fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let layers: Vec<&Layer> = self.base.iter().chain(self.stores.iter().map(|(_, l)| l)).collect();
        let mut config = self.config.clone();
        config["rootfs"] = json!({"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()});
        let base_history: Vec<Value> = config["history"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
            .take(self.base.len())
            .cloned()
            .collect();
        let store_history = self.stores.iter().map(|(d, _)| json!({"created_by": format!("cache mount store {d}")}));
        config["history"] = Value::Array(base_history.into_iter().chain(store_history).collect());
        let dirs: Vec<&str> = self.stores.iter().map(|(d, _)| d.as_str()).collect();
        config["config"]["Labels"][LABEL] = json!(dirs.join(" "));
        let config = serde_json::to_vec(&config).expect("a JSON value");
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": crate::oci::sha256(&config),
                "size": config.len(),
            },
            "layers": layers.iter().map(|l| &l.descriptor).collect::<Vec<_>>(),
        });
        (serde_json::to_vec(&manifest).expect("a JSON value"), config)
    }
}

/// The image an index points at (the first entry that is not an attestation); `None` when
/// `raw` is not an index.
pub fn image_in_index(raw: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(raw).ok()?;
    v.get("manifests")?
        .as_array()?
        .iter()
        .find(|m| m.pointer("/annotations/vnd.docker.reference.type").is_none())
        .and_then(|m| m["digest"].as_str())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8) -> (Value, String) {
        let digest = format!("sha256:{:064x}", n);
        (
            json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+zstd", "digest": digest, "size": n as u64 * 10}),
            format!("sha256:{:064x}", 100 + n),
        )
    }

    fn image(layers: &[u8], label: Option<&str>) -> (Vec<u8>, Vec<u8>) {
        let (descriptors, diff_ids): (Vec<Value>, Vec<String>) = layers.iter().map(|n| layer(*n)).unzip();
        let mut config = json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": "BusyBox"}, {"created_by": "ARG SDI_RUN", "empty_layer": true}],
            "config": {"Labels": {}}
        });
        if let Some(l) = label {
            config["config"]["Labels"][LABEL] = json!(l);
        }
        let manifest = json!({"schemaVersion": 2, "mediaType": MANIFEST, "layers": descriptors});
        (serde_json::to_vec(&manifest).unwrap(), serde_json::to_vec(&config).unwrap())
    }

    fn read(layers: &[u8], label: Option<&str>) -> Option<StoresImage> {
        let (m, c) = image(layers, label);
        StoresImage::read(&m, &c)
    }

    #[test]
    fn the_label_names_the_last_layers() {
        let img = read(&[1, 2, 3], Some("m-61 m-62")).unwrap();
        assert_eq!(img.base.len(), 1);
        assert_eq!(img.layers_of("m-61")[0].descriptor["digest"], layer(2).0["digest"]);
        assert_eq!(img.layers_of("m-62")[0].diff_id, layer(3).1);
        assert!(img.layers_of("m-63").is_empty());
    }

    #[test]
    fn an_image_without_the_label_or_with_too_few_layers_is_not_read() {
        assert!(read(&[1, 2], None).is_none(), "an image saved before the label");
        assert!(read(&[1], Some("m-61 m-62")).is_none());
        let (m, c) = image(&[1, 2], Some("m-61"));
        let mut v: Value = serde_json::from_slice(&c).unwrap();
        v["rootfs"]["diff_ids"].as_array_mut().unwrap().pop();
        assert!(StoresImage::read(&m, &serde_json::to_vec(&v).unwrap()).is_none(), "layers and diff ids differ");
    }

    #[test]
    fn a_new_image_takes_saved_layers_and_reuses_the_others() {
        let old = read(&[1, 2, 3], Some("m-61 m-62")).unwrap();
        let new = read(&[1, 9], Some("m-62")).unwrap();
        let dirs = vec!["m-61".to_string(), "m-62".to_string()];
        let (manifest, config) = new.with_reused(&old, &dirs).unwrap();
        let again = StoresImage::read(&manifest, &config).expect("readable as a stores image");
        assert_eq!(again.base, new.base);
        assert_eq!(again.layers_of("m-61"), old.layers_of("m-61"), "left as restored: the old layer");
        assert_eq!(again.layers_of("m-62"), new.layers_of("m-62"), "changed: the new layer");
        let m: Value = serde_json::from_slice(&manifest).unwrap();
        assert_eq!(m["config"]["digest"], json!(crate::oci::sha256(&config)));
        assert_eq!(m["config"]["size"], json!(config.len()));
        let c: Value = serde_json::from_slice(&config).unwrap();
        assert_eq!(c["history"].as_array().unwrap().len(), 3, "one entry a layer: {c}");
        assert_eq!(c["history"][0]["created_by"], "BusyBox");
        assert!(new.with_reused(&old, &["m-63".to_string()]).is_none(), "a store in neither image");
    }

    /// A store saved whole, then twice the files that changed: three layers, in order, and a
    /// new image that keeps the store keeps all three.
    #[test]
    fn a_store_has_its_whole_copy_and_the_changes_on_top_in_order() {
        let old = read(&[1, 2, 3, 4, 5], Some("m-61 m-62 m-61 m-61")).unwrap();
        let digests = |ls: Vec<&Layer>| ls.iter().map(|l| l.descriptor["digest"].clone()).collect::<Vec<_>>();
        assert_eq!(digests(old.layers_of("m-61")), [2, 4, 5].map(|n| layer(n).0["digest"].clone()));
        assert_eq!(old.dirs(), ["m-61", "m-62"]);
        let new = read(&[1, 9], Some("m-62")).unwrap();
        let (manifest, config) = new.with_reused(&old, &old.dirs()).unwrap();
        let again = StoresImage::read(&manifest, &config).unwrap();
        assert_eq!(digests(again.layers_of("m-61")), digests(old.layers_of("m-61")));
        assert_eq!(digests(again.layers_of("m-62")), [layer(9).0["digest"].clone()]);
    }

    /// Sizes here are 10 × the layer's number: m-61's whole copy is 20, its changes 40 + 50.
    #[test]
    fn a_store_is_written_whole_again_when_its_changes_pile_up() {
        assert!(!read(&[1, 9, 3], Some("m-61 m-61")).unwrap().squash_due("m-61"), "30 of changes on 90");
        assert!(read(&[1, 2, 3], Some("m-61 m-61")).unwrap().squash_due("m-61"), "30 of changes on 20");
        let layers = [1, 9, 1, 1, 1];
        assert!(read(&layers, Some("m-61 m-61 m-61 m-61")).unwrap().squash_due("m-61"), "four layers");
        assert!(!read(&layers[..4], Some("m-61 m-61 m-61")).unwrap().squash_due("m-61"), "three layers");
        assert!(!read(&[1, 9], Some("m-61")).unwrap().squash_due("m-62"), "not in the image: its first layer");
    }

    #[test]
    fn a_label_changes_the_config_and_nothing_of_the_layers() {
        let img = read(&[1, 2, 3], Some("m-61 m-62")).unwrap();
        let (manifest, config) = img.with_label("dev.sdi.cache-mounts.costs", "m-61:cold=900");
        let again = StoresImage::read(&manifest, &config).unwrap();
        assert_eq!((&again.base, &again.stores), (&img.base, &img.stores));
        assert_eq!(again.label("dev.sdi.cache-mounts.costs"), Some("m-61:cold=900"));
        assert_eq!(again.label(LABEL), Some("m-61 m-62"));
    }

    #[test]
    fn the_image_an_index_points_at() {
        let index = json!({"manifests": [
            {"digest": "sha256:att", "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            {"digest": "sha256:img"}]});
        assert_eq!(image_in_index(&serde_json::to_vec(&index).unwrap()), Some("sha256:img".into()));
        assert_eq!(image_in_index(br#"{"layers": []}"#), None);
        assert_eq!(image_in_index(b"not json"), None);
    }
}
