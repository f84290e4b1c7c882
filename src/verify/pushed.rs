//! Secrets were used: prove none is in the image before anything is tagged ("no proof, no
//! tag"). Values live in memory only.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::Registry;
use super::proofs::Ledger;
use crate::context::{Context, SecretSource};
use crate::plan::{BuildPlan, Verify};
use crate::step::{Annotation, BuildError, Level, Outcome};

/// The values of the secrets the build was given, by id, in memory only. A multi-line value
/// (an `.npmrc`, a key file) is also searched for line by line.
pub(crate) fn secret_values(ctx: &Context, plan: &BuildPlan) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for spec in ctx.inputs.secrets.iter().filter(|s| plan.secrets.contains(&s.id)) {
        let value: Option<Vec<u8>> = match &spec.source {
            SecretSource::Value { env } => {
                ctx.secret_values.0.iter().find(|(n, _)| n == env).map(|(_, v)| v.expose().as_bytes().to_vec())
            }
            SecretSource::Env { env } => std::env::var_os(env).map(|v| v.into_encoded_bytes()),
            SecretSource::File { path } => std::fs::read(path).ok(),
        };
        let Some(value) = value else { continue };
        let text = String::from_utf8_lossy(&value).into_owned();
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.len() >= super::MIN_SCAN_LEN).collect();
        if lines.len() > 1 {
            out.extend(lines.iter().map(|l| (spec.id.clone(), l.as_bytes().to_vec())));
        }
        out.push((spec.id.clone(), value));
    }
    out
}

/// Scans the built image for the build's secrets. `Err` is the outcome that ends the run: a
/// leak, or an image that could not be read (no proof, no tag).
pub(crate) async fn verify_image(
    ctx: &Context,
    plan: &BuildPlan,
    dir: &Path,
    metadata: Option<&Value>,
    registry: Option<RegistryHandle>,
    annotations: &mut Vec<Annotation>,
) -> Result<Option<Registry>, Outcome> {
    let Some(mode) = plan.verify else { return Ok(None) };
    let started = Instant::now();
    let needles = needles(ctx, plan, annotations);
    if needles.is_empty() {
        return Ok(None);
    }
    let no_proof = |why: String| Outcome::Failed {
        code: 1,
        error: Some(BuildError {
            message: format!("the image could not be checked for leaked secrets ({why}), so no tag was created"),
            location: None,
        }),
    };
    let values = scanned_values(ctx, plan);
    let key = ctx.inputs.secrets_proof_key.as_ref().map(|k| k.expose().as_bytes().to_vec());
    let proofs = Proofs { key: key.as_deref(), values: &values };
    let mut client = None;
    let report = match mode {
        Verify::Layout => super::scan_layout(&dir.join("oci"), &needles).await,
        Verify::Registry => {
            let digest = metadata.and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
            let Some(digest) = digest else { return Err(no_proof("buildx reported no digest".into())) };
            let scanned = scan_registry((plan, dir), digest, registry, &needles, &proofs, annotations).await;
            scanned.map(|(report, r, ledger)| {
                client = Some((r, ledger));
                report
            })
        }
    };
    let report = report.map_err(|e| no_proof(e.to_string()))?;
    tracing::debug!(
        "scanned {} layers ({} bytes) for {} secret id(s): {} finding(s)",
        report.layers,
        report.bytes,
        plan.secrets.len(),
        report.hits.len()
    );
    if !report.hits.is_empty() {
        for hit in &report.hits {
            annotations.push(Annotation { level: Level::Error, message: format!("Leaked: {hit}."), location: None });
        }
        return Err(Outcome::SecretsLeaked { hits: report.hits.len() });
    }
    // Clean: what was read is now proven too, for the next run with these very values.
    if let Some((registry, Some(ledger))) = client.as_mut() {
        proofs.record(registry, ledger, &report.scanned, &plan.image, annotations).await;
    }
    annotations.push(clean(&report, started));
    Ok(client.map(|(r, _)| r))
}

/// What the scan looks for; the values too short to be told from chance are said in a notice.
fn needles(ctx: &Context, plan: &BuildPlan, annotations: &mut Vec<Annotation>) -> super::Needles {
    let needles = super::Needles::new(&secret_values(ctx, plan));
    if !needles.skipped.is_empty() {
        annotations.push(Annotation::notice(format!(
            "Not scanned for, being shorter than {} bytes: {}.",
            super::MIN_SCAN_LEN,
            needles.skipped.join(", ")
        )));
    }
    needles
}

/// The notice of a clean image: what was read, of which platforms, in how long.
fn clean(report: &super::Report, started: Instant) -> Annotation {
    let scope = if report.platforms.is_empty() { "the image".to_string() } else { report.platforms.join(", ") };
    let proven = match report.proven {
        0 => String::new(),
        n => format!("; {n} layer(s) already proven clean of these values were not read again"),
    };
    Annotation::notice(format!(
        "No secret value in the image: {} layers ({:.1} MB) of {scope} checked in {:.1} s{proven}.",
        report.layers,
        report.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    ))
}

/// What proofs are bound to: the key, and the values the scan looked for.
struct Proofs<'a> {
    key: Option<&'a [u8]>,
    values: &'a [(String, Vec<u8>)],
}

impl Proofs<'_> {
    fn proves(&self, ledger: Option<&Ledger>, layer: &str) -> bool {
        match (ledger, self.key) {
            (Some(l), Some(k)) => l.proves(k, layer, self.values),
            _ => false,
        }
    }

    /// Adds the layers just scanned clean to the ledger, and pushes it if anything is new.
    async fn record(
        &self,
        registry: &mut Registry,
        ledger: &mut Ledger,
        scanned: &[String],
        image: &str,
        annotations: &mut Vec<Annotation>,
    ) {
        let Some(key) = self.key else { return };
        let mut added = false;
        for layer in scanned {
            added |= ledger.record(key, layer, self.values);
        }
        if added && let Err(e) = registry.push_ledger(ledger.to_json()).await {
            annotations.push(Annotation::warning(format!(
                "The proof ledger ({image}:{}) was not updated ({e}): the next run scans these layers again.",
                super::proofs::LEDGER_TAG
            )));
        }
    }
}

/// Reads the pushed image back from its registry (with the client made during the build, if
/// any) and scans it, skipping the layers the ledger proves clean.
async fn scan_registry(
    (plan, dir): (&BuildPlan, &Path),
    digest: &str,
    prepared: Option<RegistryHandle>,
    needles: &super::Needles,
    proofs: &Proofs<'_>,
    annotations: &mut Vec<Annotation>,
) -> std::io::Result<(super::Report, Registry, Option<Ledger>)> {
    let mut r = match prepared {
        // Made before the login: its credentials are set now.
        Some(handle) => {
            let mut r = handle.await.map_err(std::io::Error::other)??;
            r.set_auth(credentials_for(&plan.image, dir));
            r
        }
        None => registry_for(&plan.image, dir)?,
    };
    let ledger = match proofs.key {
        Some(_) => Some(read_ledger(&mut r, annotations).await),
        None => None,
    };
    tracing::debug!("proof ledger: {} entries", ledger.as_ref().map_or(0, Ledger::len));
    let report = super::scan_skipping(&mut r, digest, needles, |layer| proofs.proves(ledger.as_ref(), layer)).await?;
    Ok((report, r, ledger))
}

/// A registry client being made on a blocking thread.
pub(super) type RegistryHandle = tokio::task::JoinHandle<std::io::Result<Registry>>;

/// The client the scan and the tags use, made while login, builder and build run: building
/// its TLS configuration (the system's roots) takes tens of milliseconds of CPU. Credentials
/// are set when it is used, after the login.
pub(crate) fn prepare_registry(plan: &BuildPlan) -> Option<RegistryHandle> {
    (plan.verify == Some(Verify::Registry)).then(|| {
        let image = plan.image.clone();
        tokio::task::spawn_blocking(move || Registry::new(&image, None))
    })
}

/// The credentials the run logged in to `image`'s registry with, if any.
fn credentials_for(image: &str, dir: &Path) -> Option<(String, String)> {
    let registry = image.split('/').next().unwrap_or_default();
    crate::credentials::stored(&crate::credentials::private_config(dir), registry)
}

/// A client for `image`'s registry, with the credentials the run logged in with.
pub(crate) fn registry_for(image: &str, dir: &Path) -> std::io::Result<Registry> {
    Registry::new(image, credentials_for(image, dir))
}

/// The ledger of proofs already made; one that cannot be read proves nothing (every layer is
/// then scanned), and says why.
async fn read_ledger(registry: &mut Registry, annotations: &mut Vec<Annotation>) -> Ledger {
    match registry.pull_ledger().await {
        Ok(Some(bytes)) => Ledger::parse(&bytes),
        Ok(None) => Ledger::default(),
        Err(e) => {
            annotations
                .push(Annotation::notice(format!("The proof ledger could not be read ({e}): every layer is scanned.")));
            Ledger::default()
        }
    }
}

/// The values the scan looks for (long enough to mean anything): what a proof is bound to.
fn scanned_values(ctx: &Context, plan: &BuildPlan) -> Vec<(String, Vec<u8>)> {
    let mut values: Vec<(String, Vec<u8>)> =
        secret_values(ctx, plan).into_iter().filter(|(_, v)| v.len() >= super::MIN_SCAN_LEN).collect();
    values.sort();
    values.dedup();
    values
}
