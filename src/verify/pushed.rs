//! Secrets were used: prove none is in the image before anything is tagged ("no proof, no
//! tag"). Values live in memory only.

use std::path::Path;
use std::time::Instant;

use serde_json::Value;

use super::Registry;
use super::keying::{self, Keying, Values, guessable_notice};
use super::proofs::{Keys, Ledger};
use crate::context::{Context, SecretSource};
use crate::plan::{BuildPlan, Verify};
use crate::step::{Annotation, BuildError, Level, Outcome};

/// The whole value of each secret the build was given, by id, in memory only.
fn whole_values(ctx: &Context, plan: &BuildPlan) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for spec in ctx.inputs.secrets.iter().filter(|s| plan.secrets.contains(&s.id)) {
        let value: Option<Vec<u8>> = match &spec.source {
            SecretSource::Value { env } => {
                ctx.secret_values.0.iter().find(|(n, _)| n == env).map(|(_, v)| v.expose().as_bytes().to_vec())
            }
            SecretSource::Env { env } => std::env::var_os(env).map(|v| v.into_encoded_bytes()),
            SecretSource::File { path } => std::fs::read(path).ok(),
        };
        out.extend(value.map(|v| (spec.id.clone(), v)));
    }
    out
}

/// The values of the secrets the build was given, by id, in memory only. A multi-line value
/// (an `.npmrc`, a key file) is also searched for line by line.
pub(crate) fn secret_values(ctx: &Context, plan: &BuildPlan) -> Vec<(String, Vec<u8>)> {
    lines_and_values(whole_values(ctx, plan))
}

fn lines_and_values(whole: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (id, value) in whole {
        let text = String::from_utf8_lossy(&value).into_owned();
        let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| l.len() >= super::MIN_SCAN_LEN).collect();
        if lines.len() > 1 {
            out.extend(lines.iter().map(|l| (id.clone(), l.as_bytes().to_vec())));
        }
        out.push((id, value));
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
    prepared: Prepared,
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
    let mut client = None;
    let report = match mode {
        Verify::Layout => super::scan_layout(&dir.join("oci"), &needles).await,
        Verify::Registry => {
            let digest = metadata.and_then(|m| m.get("containerimage.digest")).and_then(Value::as_str);
            let Some(digest) = digest else { return Err(no_proof("buildx reported no digest".into())) };
            let scanned = scan_registry((plan, dir), digest, prepared, &needles, annotations).await;
            scanned.map(|(report, r, proofs)| {
                client = Some((r, proofs));
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
    if let Some((registry, Some(proofs))) = client.as_mut() {
        proofs.record(registry, &report.scanned, &plan.image, annotations).await;
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

/// The ledger this run reads and adds to, and the keys its entries are made with.
struct Proofs {
    keys: Keys,
    ledger: Ledger,
}

impl Proofs {
    /// Adds the layers just scanned clean to the ledger, and pushes it if anything is new.
    async fn record(
        &mut self,
        registry: &mut Registry,
        scanned: &[String],
        image: &str,
        annotations: &mut Vec<Annotation>,
    ) {
        let mut added = false;
        for layer in scanned {
            added |= self.ledger.record(&self.keys, layer);
        }
        if added && let Err(e) = registry.push_ledger(self.ledger.to_json()).await {
            annotations.push(Annotation::warning(format!(
                "The proof ledger ({image}:{}) was not updated ({e}): the next run scans these layers again.",
                super::proofs::LEDGER_TAG
            )));
        }
    }
}

/// The keys the run decided on while it built; a secret that could be guessed is named.
async fn keys(keying: Option<KeyingHandle>, annotations: &mut Vec<Annotation>) -> Option<Keys> {
    let keying = keying?.await.ok()?;
    tracing::debug!("proof keys: {:?}, derived in {} ms", keying.keys, keying.took.as_millis());
    annotations.extend(guessable_notice(&keying.guessable).map(Annotation::notice));
    keying.keys
}

/// Reads the pushed image back from its registry (with the client and ledger made during the
/// build) and scans it, skipping the layers the ledger proves clean.
async fn scan_registry(
    (plan, dir): (&BuildPlan, &Path),
    digest: &str,
    mut prepared: Prepared,
    needles: &super::Needles,
    annotations: &mut Vec<Annotation>,
) -> std::io::Result<(super::Report, Registry, Option<Proofs>)> {
    prepared.logged_in(plan, dir);
    let (mut r, proofs, notes) = match prepared.ready {
        Some(ready) => ready.await.map_err(std::io::Error::other)??,
        None => (registry_for(&plan.image, dir)?, None, Vec::new()),
    };
    annotations.extend(notes);
    tracing::debug!("proof ledger: {} entries", proofs.as_ref().map_or(0, |p| p.ledger.len()));
    let proven = |layer: &str| proofs.as_ref().is_some_and(|p| p.ledger.proves(&p.keys, layer));
    let report = super::scan_skipping(&mut r, digest, needles, proven).await?;
    Ok((report, r, proofs))
}

/// A registry client being made on a blocking thread.
pub(super) type RegistryHandle = tokio::task::JoinHandle<std::io::Result<Registry>>;
/// The proof keys being decided (and derived) on a blocking thread.
type KeyingHandle = tokio::task::JoinHandle<Keying>;
/// The client with its credentials, the proofs and what reading the ledger had to say.
type Ready = (Registry, Option<Proofs>, Vec<Annotation>);

/// What the scan needs that is made while login, builder and build run.
#[derive(Default)]
pub(crate) struct Prepared {
    registry: Option<RegistryHandle>,
    keying: Option<KeyingHandle>,
    ready: Option<tokio::task::JoinHandle<std::io::Result<Ready>>>,
}

impl Prepared {
    /// Once the run is logged in: the client gets its credentials and, when the keys call for
    /// it, reads the ledger while the builder starts and the build runs. A secret that could
    /// be guessed means no ledger: it is not even read.
    pub(crate) fn logged_in(&mut self, plan: &BuildPlan, dir: &Path) {
        let Some(registry) = self.registry.take() else { return };
        let (keying, auth) = (self.keying.take(), credentials_for(&plan.image, dir));
        self.ready = Some(tokio::spawn(async move {
            let mut notes = Vec::new();
            let keys = keys(keying, &mut notes).await;
            let mut r = registry.await.map_err(std::io::Error::other)??;
            r.set_auth(auth);
            let proofs = match keys {
                Some(keys) => Some(Proofs { keys, ledger: read_ledger(&mut r, &mut notes).await }),
                None => None,
            };
            Ok((r, proofs, notes))
        }));
    }
}

/// Starts what the scan needs, off the run's path: the registry client (building its TLS
/// configuration, the system's roots, takes tens of milliseconds of CPU; credentials are set
/// when it is used, after the login), and the proof keys (an Argon2id derivation per secret).
pub(crate) fn prepare(ctx: &Context, plan: &BuildPlan) -> Prepared {
    if plan.verify != Some(Verify::Registry) {
        return Prepared::default();
    }
    let image = plan.image.clone();
    let registry = Some(tokio::task::spawn_blocking(move || Registry::new(&image, None)));
    let keying = plan.proofs.map(|_| {
        let key = ctx.inputs.secrets_proof_key.as_ref().map(|k| k.expose().as_bytes().to_vec());
        let salt = proof_salt(ctx);
        let whole: Vec<_> =
            whole_values(ctx, plan).into_iter().filter(|(_, v)| v.len() >= super::MIN_SCAN_LEN).collect();
        let values = Values { scanned: scanned(lines_and_values(whole.clone())), whole };
        tokio::task::spawn_blocking(move || keying::decide(&salt, key.as_deref(), values))
    });
    Prepared { registry, keying, ready: None }
}

/// What v2 keys are salted with: the repository's id (stable across renames), else its name.
fn proof_salt(ctx: &Context) -> String {
    match ctx.repository_id {
        Some(id) => format!("github-repository-id:{id}"),
        None => format!("github-repository:{}", ctx.repository.full()),
    }
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

/// The values the scan looks for (long enough to mean anything): what a v1 proof is bound to.
fn scanned(values: Vec<(String, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    let mut values: Vec<(String, Vec<u8>)> =
        values.into_iter().filter(|(_, v)| v.len() >= super::MIN_SCAN_LEN).collect();
    values.sort();
    values.dedup();
    values
}
