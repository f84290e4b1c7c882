//! build-push-action v6's inputs that this action passes to buildx: each lowered and checked
//! here (no raw string reaches argv unread), with what a trust decision needs to know of it
//! (does an output push, which registry a cache writes to). What untrusted runs may use is
//! the plan's rule (`plan::options`).

use super::super::InputError;
use super::csv::record;
use super::fields::{boolean, choice, err, lines, list, simple_name, single_line};
use super::{RawInputs, is_valid_repository_name, registry_of};

/// An `--output`: its type and, for image outputs, the name and whether it pushes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub arg: String,
    pub kind: String,
    pub pushes: bool,
    /// The registries an image output names (`name=a,b` or one name).
    pub registries: Vec<String>,
}

/// A user's `--cache-from`/`--cache-to` (a bare reference is `type=registry,ref=…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub arg: String,
    pub kind: String,
    /// The registry of a `type=registry` cache.
    pub registry: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildOptions {
    pub load: bool,
    pub outputs: Vec<OutputSpec>,
    pub ssh: Vec<String>,
    pub build_contexts: Vec<(String, String)>,
    pub attests: Vec<String>,
    pub no_cache: bool,
    pub no_cache_filters: Vec<String>,
    pub pull: bool,
    pub network: Option<String>,
    pub add_hosts: Vec<String>,
    pub allow: Vec<String>,
    pub shm_size: Option<String>,
    pub ulimits: Vec<String>,
    pub cgroup_parent: Option<String>,
    /// `--call` other than `build` (`check`, `outline`, `targets`…): nothing is exported.
    pub call: Option<String>,
    pub cache_from: Vec<CacheSpec>,
    pub cache_to: Vec<CacheSpec>,
}

/// `key=value` fields of one CSV value as buildx reads it.
fn fields(input: &str, line: &str) -> Result<Vec<(String, String)>, InputError> {
    let mut out = Vec::new();
    for f in record(line, false, false).map_err(|e| err(input, e))? {
        let Some((k, v)) = f.split_once('=') else {
            return Err(err(input, format!("'{line}': '{f}' is not key=value")));
        };
        out.push((k.trim().to_ascii_lowercase(), v.to_string()));
    }
    Ok(out)
}

fn field<'a>(fields: &'a [(String, String)], key: &str) -> Option<&'a str> {
    fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn no_dash(input: &str, v: &str) -> Result<(), InputError> {
    match v.starts_with('-') {
        true => Err(err(input, format!("'{v}' starts with '-', which buildx would read as a flag"))),
        false => Ok(()),
    }
}

fn output(line: &str) -> Result<OutputSpec, InputError> {
    no_dash("outputs", line)?;
    if !line.contains('=') {
        // buildx: a bare path is a local export.
        return Ok(OutputSpec {
            arg: format!("type=local,dest={line}"),
            kind: "local".into(),
            pushes: false,
            registries: vec![],
        });
    }
    let f = fields("outputs", line)?;
    let kind = field(&f, "type").ok_or_else(|| err("outputs", format!("'{line}' has no type=")))?.to_string();
    let known = ["registry", "image", "docker", "oci", "local", "tar", "cacheonly"];
    if !known.contains(&kind.as_str()) {
        return Err(err("outputs", format!("'{line}': type={kind} is not one of {}", known.join(", "))));
    }
    let push = field(&f, "push").is_some_and(|p| p == "true");
    let pushes = kind == "registry" || (kind == "image" && push);
    let registries = field(&f, "name")
        .map(|n| n.split(',').map(|n| registry_of(n.trim()).to_string()).collect())
        .unwrap_or_default();
    Ok(OutputSpec { arg: line.to_string(), kind, pushes, registries })
}

fn cache(input: &str, line: &str) -> Result<CacheSpec, InputError> {
    no_dash(input, line)?;
    let arg = if line.contains('=') { line.to_string() } else { format!("type=registry,ref={line}") };
    let f = fields(input, &arg)?;
    let kind = field(&f, "type").unwrap_or("registry").to_string();
    let known = ["registry", "gha", "local", "s3", "azblob", "inline"];
    if !known.contains(&kind.as_str()) {
        return Err(err(input, format!("'{line}': type={kind} is not one of {}", known.join(", "))));
    }
    let registry = match kind.as_str() {
        "registry" => {
            let r = field(&f, "ref").ok_or_else(|| err(input, format!("'{line}': a registry cache needs ref=")))?;
            let name = r.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(r, |(n, _)| n);
            if !is_valid_repository_name(&name.to_ascii_lowercase()) {
                return Err(err(input, format!("'{line}': '{r}' is not an image reference")));
            }
            Some(registry_of(r).to_string())
        }
        _ => None,
    };
    Ok(CacheSpec { arg, kind, registry })
}

fn ssh(line: &str) -> Result<String, InputError> {
    let id = line.split_once('=').map_or(line, |(id, _)| id);
    simple_name("ssh", "the ssh id", id)?;
    Ok(line.to_string())
}

fn build_context(line: &str, context: &str) -> Result<(String, String), InputError> {
    let Some((name, v)) = line.split_once('=') else {
        return Err(err("build-contexts", format!("'{line}' is not name=path-or-url")));
    };
    let name = name.trim();
    if name.is_empty() || name.starts_with('-') || name.contains(char::is_whitespace) {
        return Err(err("build-contexts", format!("'{line}': '{name}' is not a context name")));
    }
    // build-push-action's `{{defaultContext}}`: the build's own context.
    Ok((name.to_string(), v.trim().replace("{{defaultContext}}", context)))
}

fn add_host(item: &str) -> Result<String, InputError> {
    let ok = item.split_once([':', '=']).is_some_and(|(h, ip)| {
        !h.is_empty() && !h.starts_with('-') && !ip.is_empty() && !item.contains(char::is_whitespace)
    });
    if !ok {
        return Err(err("add-hosts", format!("'{item}' is not host:ip, such as docker:10.180.0.1")));
    }
    Ok(item.to_string())
}

fn entitlement(item: &str) -> Result<String, InputError> {
    let name = item.split_once('=').map_or(item, |(n, _)| n);
    if !["network.host", "security.insecure", "device", "buildx.local.delete"].contains(&name) {
        return Err(err(
            "allow",
            format!(
                "'{item}' is not an entitlement: use network.host, security.insecure, device or buildx.local.delete"
            ),
        ));
    }
    Ok(item.to_string())
}

fn ulimit(item: &str) -> Result<String, InputError> {
    let ok = item.split_once('=').is_some_and(|(name, limits)| {
        !name.is_empty()
            && name.chars().all(|c| c.is_ascii_lowercase())
            && limits.split(':').all(|n| n.parse::<i64>().is_ok())
    });
    if !ok {
        return Err(err("ulimit", format!("'{item}' is not name=soft[:hard], such as nofile=1024:1024")));
    }
    Ok(item.to_string())
}

fn shm_size(raw: &Option<String>) -> Result<Option<String>, InputError> {
    let Some(v) = single_line("shm-size", raw)? else { return Ok(None) };
    let digits = v.trim_end_matches(['b', 'k', 'm', 'g', 'B', 'K', 'M', 'G']);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || v.len() - digits.len() > 1 {
        return Err(err("shm-size", format!("'{v}' is not a size such as 2g or 512m")));
    }
    Ok(Some(v.to_string()))
}

fn call(raw: &Option<String>) -> Result<Option<String>, InputError> {
    let Some(v) = single_line("call", raw)? else { return Ok(None) };
    let method = v.split(',').next().unwrap_or_default();
    if !["build", "check", "outline", "targets", "subrequests.describe"].contains(&method) {
        return Err(err("call", format!("'{v}' is not build, check, outline or targets")));
    }
    Ok((method != "build").then(|| v.to_string()))
}

fn each<T>(input: &str, items: Vec<&str>, f: impl Fn(&str) -> Result<T, InputError>) -> Result<Vec<T>, InputError> {
    items.into_iter().map(|i| f(i).map_err(|e| InputError::new(input, e.message))).collect()
}

fn line_items(raw: &Option<String>) -> Vec<&str> {
    lines(raw).into_iter().map(|(_, l)| l).collect()
}

pub(super) fn lower(raw: &RawInputs, context: &str) -> Result<BuildOptions, InputError> {
    let network = choice(
        "network",
        &raw.network,
        None,
        &[("default", Some("default")), ("none", Some("none")), ("host", Some("host"))],
    )?;
    let cgroup_parent = single_line("cgroup-parent", &raw.cgroup_parent)?.map(str::to_string);
    if let Some(c) = &cgroup_parent {
        no_dash("cgroup-parent", c)?;
    }
    let attests = each("attests", line_items(&raw.attests), |a| {
        let f = fields("attests", a)?;
        match field(&f, "type") {
            Some("sbom" | "provenance") => Ok(a.to_string()),
            _ => Err(err("attests", format!("'{a}' needs type=sbom or type=provenance"))),
        }
    })?;
    let no_cache_filters = each("no-cache-filters", list(&raw.no_cache_filters), |s| {
        simple_name("no-cache-filters", "the stage name", s).map(|_| s.to_string())
    })?;
    let options = BuildOptions {
        load: boolean("load", &raw.load, false)?,
        outputs: each("outputs", line_items(&raw.outputs), output)?,
        ssh: each("ssh", line_items(&raw.ssh), ssh)?,
        build_contexts: each("build-contexts", line_items(&raw.build_contexts), |l| build_context(l, context))?,
        attests,
        no_cache: boolean("no-cache", &raw.no_cache, false)?,
        no_cache_filters,
        pull: boolean("pull", &raw.pull, false)?,
        network: network.map(str::to_string),
        add_hosts: each("add-hosts", list(&raw.add_hosts), add_host)?,
        allow: each("allow", list(&raw.allow), entitlement)?,
        shm_size: shm_size(&raw.shm_size)?,
        ulimits: each("ulimit", line_items(&raw.ulimit), ulimit)?,
        cgroup_parent,
        call: call(&raw.call)?,
        cache_from: each("cache-from", line_items(&raw.cache_from), |l| cache("cache-from", l))?,
        cache_to: each("cache-to", line_items(&raw.cache_to), |l| cache("cache-to", l))?,
    };
    if options.load && options.call.is_some() {
        return Err(err("load", "call (check, outline…) builds no image, so there is nothing to load"));
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawInputs {
        let v: serde_json::Map<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string()))).collect();
        serde_json::from_value(serde_json::Value::Object(v)).unwrap()
    }

    #[test]
    fn outputs_and_caches_say_what_they_write() {
        let o = lower(&raw(&[("outputs", "type=image,name=ghcr.io/o/a,push=true\ntype=local,dest=out\n./dir")]), ".")
            .unwrap();
        assert_eq!(o.outputs.iter().map(|o| o.pushes).collect::<Vec<_>>(), [true, false, false]);
        assert_eq!(o.outputs[0].registries, ["ghcr.io"]);
        assert_eq!(o.outputs[2].arg, "type=local,dest=./dir");
        let c = lower(&raw(&[("cache-to", "user/app:cache\ntype=gha,mode=max")]), ".").unwrap();
        assert_eq!(c.cache_to[0].arg, "type=registry,ref=user/app:cache");
        assert_eq!(c.cache_to[0].registry.as_deref(), Some("docker.io"));
        assert_eq!(c.cache_to[1].registry, None);
    }

    #[test]
    fn bad_values_name_their_input() {
        for (input, v) in [
            ("outputs", "type=ftp,dest=x"),
            ("outputs", "--push"),
            ("cache-from", "type=registry"),
            ("cache-to", "type=nfs"),
            ("ssh", "my key"),
            ("build-contexts", "nothing"),
            ("add-hosts", "docker"),
            ("allow", "root"),
            ("ulimit", "nofile=many"),
            ("shm-size", "2 gigs"),
            ("call", "explode"),
            ("network", "bridge"),
            ("attests", "type=vex"),
            ("load", "yes"),
            ("no-cache-filters", "-x"),
        ] {
            let e = lower(&raw(&[(input, v)]), ".").unwrap_err();
            assert_eq!(e.input, input, "{input}={v}: {}", e.message);
        }
        assert_eq!(lower(&raw(&[("call", "build")]), ".").unwrap().call, None);
        let ctx = lower(&raw(&[("build-contexts", "base={{defaultContext}}/base")]), "app").unwrap();
        assert_eq!(ctx.build_contexts, [("base".to_string(), "app/base".to_string())]);
    }
}
