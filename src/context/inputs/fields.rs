//! Readers of one input each: a set value, lines, lists, booleans, choices, sizes, names,
//! key=value pairs, secrets and digests. Each error names its input.

use super::super::InputError;
use super::{Digest, Environment, Masked, RawInputs, SECRET_ENV_PREFIX, SecretSource, SecretSpec, SecretValues};

/// `2GiB`, `500MB`, `1073741824`: a size in bytes.
pub(super) fn size(input: &str, raw: &Option<String>, default: u64) -> Result<u64, InputError> {
    let Some(v) = value(raw) else { return Ok(default) };
    let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = v[digits.len()..].trim().to_ascii_lowercase();
    let factor: u64 = match unit.as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "ki" | "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mi" | "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gi" | "gib" => 1 << 30,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if factor > 0 => Ok(n.saturating_mul(factor)),
        _ => Err(err(
            input,
            format!("'{v}' is not a size: write a number of bytes with an optional unit, such as 2GiB or 500MB"),
        )),
    }
}

/// `merge-digests`: digests one a line, or one line naming a directory whose entries are
/// named by the digests (with or without `sha256:`), as docker's multi-platform recipe
/// leaves them after downloading the per-platform artifacts.
pub(super) fn merge_digests(raw: &Option<String>, env: &dyn Environment) -> Result<Vec<Digest>, InputError> {
    let items = lines(raw);
    let names: Vec<String> = match items.as_slice() {
        [] => return Ok(Vec::new()),
        [(_, only)] if Digest::parse(only).is_none() && !only.starts_with("sha256:") => match env.dir_entries(only) {
            Some(entries) if !entries.is_empty() => entries,
            Some(_) => {
                return Err(err("merge-digests", format!("the directory '{only}' is empty: no digest to merge")));
            }
            None => {
                return Err(err(
                    "merge-digests",
                    format!("'{only}' is neither a sha256 digest nor a directory of digest files"),
                ));
            }
        },
        _ => items.iter().map(|(_, l)| l.to_string()).collect(),
    };
    let mut digests = Vec::new();
    for name in names {
        let d = Digest::parse(&name).ok_or_else(|| {
            err("merge-digests", format!("'{name}' is not a digest: write sha256: and 64 lowercase hex digits"))
        })?;
        if digests.contains(&d) {
            return Err(err("merge-digests", format!("{} is listed twice", d.as_str())));
        }
        digests.push(d);
    }
    digests.sort();
    Ok(digests)
}

pub(super) fn err(input: &str, message: impl Into<String>) -> InputError {
    InputError::new(input, message)
}

/// A set input's value: `None` for absent or blank.
pub(super) fn value(raw: &Option<String>) -> Option<&str> {
    raw.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

/// One item a line; blank lines dropped.
pub(super) fn lines(raw: &Option<String>) -> Vec<(usize, &str)> {
    raw.as_deref()
        .unwrap_or_default()
        .lines()
        .enumerate()
        .map(|(n, l)| (n + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty())
        .collect()
}

/// One item a line or comma-separated, as docker's actions accept for tags and platforms.
pub(super) fn list(raw: &Option<String>) -> Vec<&str> {
    raw.as_deref().unwrap_or_default().split(['\n', ',']).map(str::trim).filter(|l| !l.is_empty()).collect()
}

pub(super) fn single_line<'a>(input: &str, raw: &'a Option<String>) -> Result<Option<&'a str>, InputError> {
    match value(raw) {
        Some(v) if v.contains(['\n', '\r']) => Err(err(input, "must be a single line")),
        other => Ok(other),
    }
}

/// YAML 1.2 core booleans, as `@actions/core`'s `getBooleanInput` accepts them.
pub(super) fn boolean(input: &str, raw: &Option<String>, default: bool) -> Result<bool, InputError> {
    match value(raw) {
        None => Ok(default),
        Some("true" | "True" | "TRUE") => Ok(true),
        Some("false" | "False" | "FALSE") => Ok(false),
        Some(other) => Err(err(input, format!("'{other}' is not a boolean: use true or false"))),
    }
}

pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Names that go into argv (`--target`, `--builder`, secret ids): `[A-Za-z0-9_.-]`, not
/// starting with `-` so they can never read as a flag.
pub(super) fn simple_name(input: &str, what: &str, name: &str) -> Result<(), InputError> {
    if name.is_empty() {
        return Err(err(input, format!("{what} is empty")));
    }
    if name.starts_with('-') || !name.chars().all(is_name_char) {
        return Err(err(
            input,
            format!("{what} '{name}' may use only letters, digits, '_', '.' and '-', and must not start with '-'"),
        ));
    }
    Ok(())
}

pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `key=value` lines (labels, build-args). Only the first `=` splits.
pub(super) fn pairs(input: &str, raw: &Option<String>, what: &str) -> Result<Vec<(String, String)>, InputError> {
    let mut out = Vec::new();
    for (n, line) in lines(raw) {
        let Some((key, val)) = line.split_once('=') else {
            return Err(err(input, format!("line {n} ('{line}') has no '=': write {what}")));
        };
        let key = key.trim();
        if key.is_empty() || key.starts_with('-') || key.chars().any(char::is_whitespace) {
            return Err(err(
                input,
                format!(
                    "line {n} has an invalid name '{key}': names are not empty, have no spaces and do not start with '-'"
                ),
            ));
        }
        out.push((key.to_string(), val.trim().to_string()));
    }
    Ok(out)
}

/// Splits a secret line at its first `=`. The message never repeats the line: it may be a value.
pub(super) fn secret_line<'a>(
    input: &str,
    n: usize,
    line: &'a str,
    what: &str,
) -> Result<(&'a str, &'a str), InputError> {
    let Some((id, rest)) = line.split_once('=') else {
        return Err(err(input, format!("line {n} has no '=': write {what}, one a line")));
    };
    let id = id.trim();
    if id.is_empty() {
        return Err(err(input, format!("line {n} has an empty id before '=': write {what}")));
    }
    simple_name(input, &format!("the id on line {n}"), id)?;
    Ok((id, rest))
}

pub(super) fn secrets(raw: &RawInputs, env: &dyn Environment) -> Result<(Vec<SecretSpec>, SecretValues), InputError> {
    let mut specs: Vec<SecretSpec> = Vec::new();
    let mut values = SecretValues::default();
    let mut push = |spec: SecretSpec| -> Result<(), InputError> {
        if let Some(other) = specs.iter().find(|s| s.id == spec.id) {
            return Err(err(
                spec.input,
                format!(
                    "secret id '{}' is declared twice (also in '{}'): every id must be unique",
                    spec.id, other.input
                ),
            ));
        }
        specs.push(spec);
        Ok(())
    };
    for (n, line) in lines(&raw.secrets) {
        let (id, val) = secret_line("secrets", n, line, "id=value")?;
        let env_name = format!("{SECRET_ENV_PREFIX}{}", values.0.len());
        let available = !val.is_empty();
        values.0.push((env_name.clone(), Masked::new(val.to_string())));
        push(SecretSpec { id: id.into(), input: "secrets", source: SecretSource::Value { env: env_name }, available })?;
    }
    for (n, line) in lines(&raw.secret_envs) {
        let (id, name) = secret_line("secret-envs", n, line, "id=ENV_NAME")?;
        let name = name.trim();
        if !is_env_name(name) {
            return Err(err(
                "secret-envs",
                format!("line {n}: '{name}' is not an environment variable name: use letters, digits and '_'"),
            ));
        }
        if name.starts_with(SECRET_ENV_PREFIX) {
            return Err(err(
                "secret-envs",
                format!("line {n}: names starting with {SECRET_ENV_PREFIX} are reserved for this action"),
            ));
        }
        let available = env.var(name).is_some_and(|v| !v.is_empty());
        push(SecretSpec {
            id: id.into(),
            input: "secret-envs",
            source: SecretSource::Env { env: name.into() },
            available,
        })?;
    }
    for (n, line) in lines(&raw.secret_files) {
        let (id, path) = secret_line("secret-files", n, line, "id=path")?;
        let path = path.trim();
        if path.is_empty() {
            return Err(err("secret-files", format!("line {n}: the path after '=' is empty")));
        }
        let available = env.is_readable_file(path);
        push(SecretSpec {
            id: id.into(),
            input: "secret-files",
            source: SecretSource::File { path: path.into() },
            available,
        })?;
    }
    Ok((specs, values))
}

/// The Sigstore instances (`SigstoreUrls`): by default the public-good one and GitHub's; else
/// the one the URLs name, or a signing configuration file as sigstore-python reads it
/// (`SigningConfig` v0.2, or a `ClientTrustConfig` holding one: its first CA, its first Rekor of
/// API version 1, its first TSA).
pub(super) fn sigstore_urls(
    (fulcio, rekor, tsa): (&Option<String>, &Option<String>, &Option<String>),
    config: &Option<String>,
) -> Result<super::SigstoreUrls, InputError> {
    use super::{GITHUB_FULCIO, GITHUB_TSA, Instance, PUBLIC_FULCIO, PUBLIC_REKOR};
    const INPUT: &str = "sigstore-signing-config";
    let given = (
        service_url("sigstore-fulcio-url", fulcio)?,
        service_url("sigstore-rekor-url", rekor)?,
        service_url("sigstore-tsa-url", tsa)?,
    );
    let one = |i: Instance| super::SigstoreUrls { public: i.clone(), private: i };
    let Some(path) = single_line(INPUT, config)? else {
        return Ok(match given {
            (None, None, None) => super::SigstoreUrls {
                public: Instance { fulcio: PUBLIC_FULCIO.into(), rekor: Some(PUBLIC_REKOR.into()), tsa: None },
                private: Instance { fulcio: GITHUB_FULCIO.into(), rekor: None, tsa: Some(GITHUB_TSA.into()) },
            },
            (fulcio, None, Some(tsa)) => {
                one(Instance { fulcio: fulcio.unwrap_or(PUBLIC_FULCIO.into()), rekor: None, tsa: Some(tsa) })
            }
            (fulcio, rekor, tsa) => one(Instance {
                fulcio: fulcio.unwrap_or(PUBLIC_FULCIO.into()),
                rekor: Some(rekor.unwrap_or(PUBLIC_REKOR.into())),
                tsa,
            }),
        });
    };
    if given != (None, None, None) {
        return Err(err(INPUT, "names the instance; so do the sigstore-*-url inputs: set one or the other"));
    }
    let text = std::fs::read_to_string(path).map_err(|e| err(INPUT, format!("cannot read '{path}': {e}")))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| err(INPUT, format!("'{path}' is not JSON: {e}")))?;
    let config = doc.get("signingConfig").unwrap_or(&doc);
    let first = |key: &str, v1_only: bool| -> Result<Option<String>, InputError> {
        let url =
            config[key].as_array().into_iter().flatten().find(|s| !v1_only || s["majorApiVersion"].as_u64() == Some(1));
        service_url(&format!("{key} of '{path}'"), &url.and_then(|s| s["url"].as_str()).map(str::to_string))
    };
    let fulcio = first("caUrls", false)?.ok_or_else(|| err(INPUT, format!("'{path}' has no caUrls")))?;
    let (rekor, tsa) = (first("rekorTlogUrls", true)?, first("tsaUrls", false)?);
    if rekor.is_none() && tsa.is_none() {
        return Err(err(INPUT, format!("'{path}' has neither a Rekor of API version 1 nor a TSA")));
    }
    Ok(one(Instance { fulcio, rekor, tsa }))
}

/// A service's base URL: https, or http on loopback only (a test instance); no credentials in it.
pub(super) fn service_url(input: &str, raw: &Option<String>) -> Result<Option<String>, InputError> {
    let Some(given) = single_line(input, raw)? else { return Ok(None) };
    let (scheme, rest) =
        given.split_once("://").ok_or_else(|| err(input, format!("'{given}' is not a URL: use https://host")))?;
    let host = rest.split('/').next().unwrap_or_default();
    match scheme {
        _ if host.is_empty() || host.contains('@') => {
            Err(err(input, format!("'{given}' must name a host, and no credentials")))
        }
        "https" => Ok(Some(given.trim_end_matches('/').to_string())),
        "http" if crate::registry::is_loopback(host) => Ok(Some(given.trim_end_matches('/').to_string())),
        _ => Err(err(input, format!("'{given}' must be an https:// URL (http:// only on loopback)"))),
    }
}

/// `secrets-proof-key`: a key of its own for the proof ledger, long enough to be guessed by no one.
pub(super) fn proof_key(raw: &Option<String>) -> Result<Option<Masked>, InputError> {
    match value(raw) {
        Some(k) if k.len() < 32 || k.contains(['\n', '\r']) => Err(err(
            "secrets-proof-key",
            "must be one line of at least 32 random characters (openssl rand -base64 32), kept as a repository secret",
        )),
        k => Ok(k.map(|k| Masked::new(k.to_string()))),
    }
}

pub(super) fn choice<T: Copy>(
    input: &str,
    raw: &Option<String>,
    default: T,
    options: &[(&str, T)],
) -> Result<T, InputError> {
    let Some(given) = value(raw) else {
        return Ok(default);
    };
    options.iter().find(|(name, _)| name.eq_ignore_ascii_case(given)).map(|(_, v)| *v).ok_or_else(|| {
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        err(input, format!("'{given}' is not one of {}", names.join(", ")))
    })
}

pub(super) fn path_like(input: &str, raw: &Option<String>) -> Result<Option<String>, InputError> {
    match single_line(input, raw)? {
        Some(v) if v.starts_with('-') => Err(err(
            input,
            format!("'{v}' starts with '-', which buildx would read as a flag or as standard input: write ./{v}"),
        )),
        other => Ok(other.map(str::to_string)),
    }
}
