//! Action inputs: read raw (`RawInputs`, strings as the runner gives them), then lowered once
//! into `Inputs`, whose fields are validated types. Nothing downstream sees a raw string.
//! `values` holds the validated types, `reference` the image and platform grammar, `fields`
//! the readers of one input each.

mod build_opts;
mod csv;
mod fields;
mod labels;
mod logins;
mod metadata;
mod reference;
mod template;
mod values;

use super::InputError;
use super::builder::BuilderSpec;
pub use build_opts::{BuildOptions, CacheSpec, OutputSpec};
use fields::{
    boolean, choice, err, merge_digests, pairs, path_like, proof_key, secrets, sigstore_urls, simple_name, single_line,
    size, value,
};
pub use logins::{RegistryLogin, canonical_registry};
pub use metadata::{Flavor, ImageEntry, JsRegex, Latest, RefEvent, RuleKind, ShaFormat, TagRule, TagSpec};
use reference::{image_name, platforms, registry};
pub use reference::{is_registry_host, is_valid_repository_name, is_valid_tag, registry_of};
pub use template::{Expr, Template};
pub use values::*;

use serde::Deserialize;

/// Every input of action.yml, as the runner passes it (`INPUT_<NAME>`, hyphens kept).
/// An empty value means "not set", as it does for the runner.
#[derive(Debug, Default, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(default, rename_all = "kebab-case")]
pub struct RawInputs {
    pub image: Option<String>,
    pub registry: Option<String>,
    pub context: Option<String>,
    pub file: Option<String>,
    pub target: Option<String>,
    pub platforms: Option<String>,
    pub tags: Option<String>,
    pub labels: Option<String>,
    pub build_args: Option<String>,
    pub push: Option<String>,
    pub secrets: Option<String>,
    pub secret_envs: Option<String>,
    pub secret_files: Option<String>,
    pub cache_image: Option<String>,
    pub cache_mode: Option<String>,
    pub fork_cache: Option<String>,
    pub github_token: Option<String>,
    pub builder: Option<String>,
    pub builder_tls_cacert: Option<String>,
    pub builder_tls_cert: Option<String>,
    pub builder_tls_key: Option<String>,
    pub provenance: Option<String>,
    pub sbom: Option<String>,
    pub dry_run: Option<String>,
    pub prune_cache: Option<String>,
    pub prune_keep_days: Option<String>,
    pub push_by_digest: Option<String>,
    pub merge_digests: Option<String>,
    pub verify_secrets: Option<String>,
    pub cache_mounts: Option<String>,
    pub cache_mounts_max_size: Option<String>,
    pub cache_mounts_image: Option<String>,
    pub pr_cache: Option<String>,
    pub secrets_proof_key: Option<String>,
    pub images: Option<String>,
    pub flavor: Option<String>,
    pub annotations: Option<String>,
    pub logins: Option<String>,
    pub load: Option<String>,
    pub outputs: Option<String>,
    pub ssh: Option<String>,
    pub build_contexts: Option<String>,
    pub attests: Option<String>,
    pub no_cache: Option<String>,
    pub no_cache_filters: Option<String>,
    pub pull: Option<String>,
    pub network: Option<String>,
    pub add_hosts: Option<String>,
    pub allow: Option<String>,
    pub shm_size: Option<String>,
    pub ulimit: Option<String>,
    pub cgroup_parent: Option<String>,
    pub call: Option<String>,
    pub cache_from: Option<String>,
    pub cache_to: Option<String>,
    pub sign: Option<String>,
    pub sigstore_fulcio_url: Option<String>,
    pub sigstore_rekor_url: Option<String>,
    pub sigstore_tsa_url: Option<String>,
    pub sigstore_signing_config: Option<String>,
}

/// Input names, as declared in action.yml.
pub const INPUT_NAMES: &[&str] = &[
    "image",
    "registry",
    "context",
    "file",
    "target",
    "platforms",
    "tags",
    "labels",
    "build-args",
    "push",
    "secrets",
    "secret-envs",
    "secret-files",
    "cache-image",
    "cache-mode",
    "fork-cache",
    "github-token",
    "builder",
    "builder-tls-cacert",
    "builder-tls-cert",
    "builder-tls-key",
    "provenance",
    "sbom",
    "dry-run",
    "prune-cache",
    "prune-keep-days",
    "push-by-digest",
    "merge-digests",
    "verify-secrets",
    "cache-mounts",
    "cache-mounts-max-size",
    "cache-mounts-image",
    "pr-cache",
    "secrets-proof-key",
    "sign",
    "sigstore-fulcio-url",
    "sigstore-rekor-url",
    "sigstore-tsa-url",
    "sigstore-signing-config",
    "images",
    "flavor",
    "annotations",
    "logins",
    "load",
    "outputs",
    "ssh",
    "build-contexts",
    "attests",
    "no-cache",
    "no-cache-filters",
    "pull",
    "network",
    "add-hosts",
    "allow",
    "shm-size",
    "ulimit",
    "cgroup-parent",
    "call",
    "cache-from",
    "cache-to",
];

pub const DEFAULT_REGISTRY: &str = "ghcr.io";
pub const DEFAULT_PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64"];

#[derive(Debug, Clone)]
pub struct Inputs {
    pub image: ImageName,
    pub cache_image: ImageName,
    pub context: String,
    pub file: Option<String>,
    pub target: Option<String>,
    pub platforms: Vec<Platform>,
    /// metadata-action's `tags` rules and full references.
    pub tags: TagSpec,
    /// metadata-action's `images`; empty: the `image` input.
    pub images: Vec<ImageEntry>,
    pub flavor: Flavor,
    /// `key=value` lines (expressions allowed), merged over metadata-action's defaults.
    pub labels: Vec<Template>,
    pub annotations: Annotations,
    pub logins: Vec<RegistryLogin>,
    /// build-push-action's other inputs.
    pub build: BuildOptions,
    pub build_args: Vec<(String, String)>,
    pub push: PushPolicy,
    pub secrets: Vec<SecretSpec>,
    pub cache_mode: CacheMode,
    pub fork_cache: ForkCache,
    pub github_token: Option<Masked>,
    pub builder: Option<BuilderSpec>,
    pub provenance: Option<String>,
    pub sbom: Option<String>,
    pub dry_run: bool,
    /// After a successful trusted build, delete old untagged versions of the cache package.
    pub prune_cache: bool,
    pub prune_keep_days: u32,
    /// One platform per job, pushed by digest only, with per-platform cache refs.
    pub push_by_digest: bool,
    /// Merge mode: the per-platform digests to combine into one manifest list.
    pub merge_digests: Vec<Digest>,
    /// Scan the built image for the secrets' values before any tag points at it (`auto`).
    pub verify_secrets: bool,
    /// Carry `RUN --mount=type=cache` stores across runs through the registry (`auto`).
    pub cache_mounts: bool,
    pub cache_mounts_max_bytes: u64,
    /// The small image with a shell that the helper builds copying mount contents run in.
    pub cache_mounts_image: String,
    pub pr_cache: PrCache,
    /// Keys the proof ledger: with it, layers proven clean of these very secret values are not
    /// scanned again.
    pub secrets_proof_key: Option<Masked>,
    pub sign: SignMode,
    pub sigstore: SigstoreUrls,
}

/// The default helper image for cache mounts: busybox, pinned by digest.
pub const DEFAULT_CACHE_MOUNTS_IMAGE: &str =
    "busybox:1.37@sha256:b3255e7dfbcd10cb367af0d409747d511aeb66dfac98cf30e97e87e4207dd76f";

/// Where buildx reads the Dockerfile from: `file`, else `<context>/Dockerfile`. A remote
/// context (a git URL) has its Dockerfile at its root.
pub fn dockerfile_path(context: &str, file: Option<&str>) -> String {
    if let Some(f) = file {
        return f.trim_start_matches("./").to_string();
    }
    let remote = context.contains("://") || context.starts_with("git@");
    match context.trim_start_matches("./").trim_end_matches('/') {
        "" | "." => "Dockerfile".into(),
        _ if remote => "Dockerfile".into(),
        dir => format!("{dir}/Dockerfile"),
    }
}

impl Inputs {
    /// The Dockerfile, as a path in the workspace.
    pub fn dockerfile_path(&self) -> String {
        dockerfile_path(&self.context, self.file.as_deref())
    }
}

/// What lowering needs from the outside world, so that it stays testable.
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
    fn is_readable_file(&self, path: &str) -> bool;
    /// The names of the entries of a directory, or `None` when it is not one.
    fn dir_entries(&self, path: &str) -> Option<Vec<String>>;
}

impl RawInputs {
    /// Lowers the raw inputs; `repository` is `owner/repo` for the default image name.
    pub fn lower(&self, repository: &str, env: &dyn Environment) -> Result<(Inputs, SecretValues), InputError> {
        let images = metadata::images(&self.images)?;
        let (image, cache_image) = self.images(repository, &images)?;
        let target = single_line("target", &self.target)?.map(str::to_string);
        if let Some(t) = &target {
            simple_name("target", "the stage name", t)?;
        }
        let builder = super::builder::lower(
            &super::builder::RawBuilder {
                builder: value(&self.builder),
                cacert: value(&self.builder_tls_cacert),
                cert: value(&self.builder_tls_cert),
                key: value(&self.builder_tls_key),
            },
            env,
        )?;
        let (secrets, values) = secrets(self, env)?;
        let inputs = Inputs {
            image,
            cache_image,
            context: path_like("context", &self.context)?.unwrap_or_else(|| ".".to_string()),
            file: path_like("file", &self.file)?,
            target,
            platforms: platforms(&self.platforms)?,
            tags: metadata::tag_spec(&self.tags)?,
            images,
            flavor: metadata::flavor(&self.flavor)?,
            labels: labels::templates("labels", &self.labels)?,
            annotations: labels::annotations(&self.annotations)?,
            logins: logins::logins(&self.logins, env)?,
            build: build_opts::lower(self, value(&self.context).unwrap_or("."))?,
            build_args: pairs("build-args", &self.build_args, "NAME=value, one a line (use secret-envs for secrets)")?,
            push: choice(
                "push",
                &self.push,
                PushPolicy::Auto,
                &[("auto", PushPolicy::Auto), ("true", PushPolicy::Always), ("false", PushPolicy::Never)],
            )?,
            secrets,
            cache_mode: choice(
                "cache-mode",
                &self.cache_mode,
                CacheMode::Max,
                &[("max", CacheMode::Max), ("min", CacheMode::Min)],
            )?,
            fork_cache: choice(
                "fork-cache",
                &self.fork_cache,
                ForkCache::RegistryRead,
                &[("registry-read", ForkCache::RegistryRead), ("gha", ForkCache::Gha), ("none", ForkCache::None)],
            )?,
            github_token: value(&self.github_token).map(|t| Masked::new(t.to_string())),
            builder,
            provenance: single_line("provenance", &self.provenance)?.map(str::to_string),
            sbom: single_line("sbom", &self.sbom)?.map(str::to_string),
            dry_run: boolean("dry-run", &self.dry_run, false)?,
            prune_cache: boolean("prune-cache", &self.prune_cache, false)?,
            push_by_digest: boolean("push-by-digest", &self.push_by_digest, false)?,
            merge_digests: merge_digests(&self.merge_digests, env)?,
            verify_secrets: choice("verify-secrets", &self.verify_secrets, true, &[("auto", true), ("false", false)])?,
            cache_mounts: choice("cache-mounts", &self.cache_mounts, true, &[("auto", true), ("off", false)])?,
            cache_mounts_max_bytes: size("cache-mounts-max-size", &self.cache_mounts_max_size, 2 << 30)?,
            cache_mounts_image: self.cache_mounts_image()?,
            secrets_proof_key: proof_key(&self.secrets_proof_key)?,
            sign: choice(
                "sign",
                &self.sign,
                SignMode::Auto,
                &[("auto", SignMode::Auto), ("true", SignMode::Required), ("false", SignMode::Off)],
            )?,
            sigstore: sigstore_urls(
                (&self.sigstore_fulcio_url, &self.sigstore_rekor_url, &self.sigstore_tsa_url),
                &self.sigstore_signing_config,
            )?,
            pr_cache: choice(
                "pr-cache",
                &self.pr_cache,
                PrCache::Shared,
                &[("shared", PrCache::Shared), ("per-pr", PrCache::PerPr)],
            )?,
            prune_keep_days: self.prune_keep_days()?,
        };
        check_together(&inputs)?;
        Ok((inputs, values))
    }

    /// `image` (default: the first enabled of `images`, else the repository's) and
    /// `cache-image` (default: `image`).
    fn images(&self, repository: &str, images: &[ImageEntry]) -> Result<(ImageName, ImageName), InputError> {
        let registry = registry(&self.registry)?;
        let first = images.iter().find(|i| i.enable).or(images.first());
        let image = match (value(&self.image), first) {
            (Some(_), Some(_)) => {
                return Err(err("images", "names the images to tag; image names one: set one of them, not both"));
            }
            (None, Some(entry)) => entry.name.clone(),
            (Some(given), None) => image_name("image", given, &registry)?,
            (None, None) => image_name("image", repository, &registry)
                .map_err(|e| err("GITHUB_REPOSITORY", format!("cannot make the default image name: {}", e.message)))?,
        };
        let cache_image = match value(&self.cache_image) {
            Some(given) => image_name("cache-image", given, &registry)?,
            None => image.clone(),
        };
        Ok((image, cache_image))
    }

    fn cache_mounts_image(&self) -> Result<String, InputError> {
        match single_line("cache-mounts-image", &self.cache_mounts_image)? {
            Some(v) if v.starts_with('-') || v.contains(char::is_whitespace) => {
                Err(err("cache-mounts-image", format!("'{v}' is not an image reference")))
            }
            Some(v) => Ok(v.to_string()),
            None => Ok(DEFAULT_CACHE_MOUNTS_IMAGE.to_string()),
        }
    }

    fn prune_keep_days(&self) -> Result<u32, InputError> {
        match value(&self.prune_keep_days) {
            None => Ok(7),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|d| *d <= 3650)
                .ok_or_else(|| err("prune-keep-days", format!("'{v}' is not a number of days from 0 to 3650"))),
        }
    }
}

/// Inputs that are valid alone but not together.
fn check_together(inputs: &Inputs) -> Result<(), InputError> {
    if inputs.push_by_digest && inputs.platforms.len() != 1 {
        return Err(err(
            "push-by-digest",
            format!(
                "builds one platform per job, but platforms lists {}: set platforms to the one platform of this job's runner",
                inputs.platforms.len()
            ),
        ));
    }
    if inputs.push_by_digest && !inputs.merge_digests.is_empty() {
        return Err(err(
            "merge-digests",
            "merges the digests that push-by-digest jobs pushed; a job does one or the other, not both",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_input_read_is_declared_and_every_declared_input_is_read() {
        let fields = serde_json::to_value(RawInputs::default()).unwrap();
        let mut read: Vec<&str> = fields.as_object().unwrap().keys().map(String::as_str).collect();
        let mut declared = INPUT_NAMES.to_vec();
        read.sort();
        declared.sort();
        assert_eq!(read, declared);
    }

    #[test]
    fn the_sigstore_instances_by_default_and_when_named() {
        let none = || (None::<String>, None::<String>, None::<String>);
        let (f, r, t) = none();
        let default = sigstore_urls((&f, &r, &t), &None).unwrap();
        assert_eq!(
            default.public,
            Instance { fulcio: PUBLIC_FULCIO.into(), rekor: Some(PUBLIC_REKOR.into()), tsa: None }
        );
        assert_eq!(
            default.private,
            Instance { fulcio: GITHUB_FULCIO.into(), rekor: None, tsa: Some(GITHUB_TSA.into()) }
        );
        let own = Some("https://fulcio.example".to_string());
        let tsa = Some("https://tsa.example/api/v1/timestamp".to_string());
        let named = sigstore_urls((&own, &None, &tsa), &None).unwrap();
        assert_eq!(named.public, named.private, "one instance named: every repository uses it");
        assert_eq!(named.public.rekor, None, "only a TSA given: no log");
        let only_ca = sigstore_urls((&own, &None, &None), &None).unwrap();
        assert_eq!(only_ca.public.rekor.as_deref(), Some(PUBLIC_REKOR));
        let plain = Some("http://rekor.example".to_string());
        assert_eq!(sigstore_urls((&None, &plain, &None), &None).unwrap_err().input, "sigstore-rekor-url");
        let lo = Some("http://127.0.0.1:8080/".to_string());
        assert_eq!(sigstore_urls((&lo, &lo, &None), &None).unwrap().public.fulcio, "http://127.0.0.1:8080");
        let with_user = Some("https://me:pw@fulcio.example".to_string());
        assert!(sigstore_urls((&with_user, &None, &None), &None).is_err(), "no credentials in a URL");
    }

    #[test]
    fn dockerfile_paths() {
        assert_eq!(dockerfile_path(".", None), "Dockerfile");
        assert_eq!(dockerfile_path("./app/", None), "app/Dockerfile");
        assert_eq!(dockerfile_path("app", Some("./docker/Dockerfile.prod")), "docker/Dockerfile.prod");
        assert_eq!(dockerfile_path("https://github.com/o/r.git#main", None), "Dockerfile");
    }
}
