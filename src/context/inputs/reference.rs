//! The distribution reference grammar (registry hosts, repository names, tags) and the
//! platforms buildx and BuildKit know, as docker and buildx check them.

use super::super::InputError;
use std::collections::BTreeSet;

use super::fields::{err, is_name_char, list, single_line};
use super::{DEFAULT_PLATFORMS, DEFAULT_REGISTRY, ImageName, Platform};

/// `localhost`, or a host with a `.` or a port: docker's rule for "this is a registry".
pub fn is_registry_host(component: &str) -> bool {
    component == "localhost" || component.contains(['.', ':'])
}

/// The registry an image reference names, by docker's rule (Docker Hub otherwise).
pub fn registry_of(reference: &str) -> &str {
    match reference.split_once('/') {
        Some((first, _)) if is_registry_host(first) => first,
        _ => "docker.io",
    }
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`: one label of a registry host.
fn is_domain_component(c: &str) -> bool {
    !c.is_empty()
        && !c.starts_with('-')
        && !c.ends_with('-')
        && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-')
}

/// `host[:port]` of the distribution reference grammar.
fn is_domain(d: &str) -> bool {
    let (host, port) = match d.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (d, None),
    };
    !host.is_empty()
        && host.split('.').all(is_domain_component)
        && port.is_none_or(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`: one path component of a repository name.
fn is_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or any number of "-".
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// A repository name (no tag, no digest) by the grammar of distribution/reference, which
/// docker and buildx use. Written out rather than taken from a crate's regex: compiling
/// that regex cost ~30 ms per run, three times the whole `plan` budget.
pub fn is_valid_repository_name(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    if parts.len() > 1 && is_registry_host(parts[0]) {
        if !is_domain(parts[0]) {
            return false;
        }
        parts.remove(0);
    }
    !parts.is_empty() && parts.iter().all(|p| is_path_component(p))
}

pub(super) fn registry(raw: &Option<String>) -> Result<String, InputError> {
    let Some(registry) = single_line("registry", raw)? else {
        return Ok(DEFAULT_REGISTRY.to_string());
    };
    let registry = registry.trim_end_matches('/').to_ascii_lowercase();
    let port_ok = registry.split_once(':').is_none_or(|(_, p)| p.parse::<u16>().is_ok());
    if !is_domain(&registry) || !port_ok {
        return Err(err(
            "registry",
            format!(
                "'{registry}' is not a registry host: write a host name with an optional port, such as ghcr.io or localhost:5000"
            ),
        ));
    }
    Ok(registry)
}

/// Lowers `image` or `cache-image` into a full image name.
pub(super) fn image_name(input: &str, given: &str, registry: &str) -> Result<ImageName, InputError> {
    if given.contains(['\n', '\r']) {
        return Err(err(input, "must be a single line"));
    }
    let lowered = given.trim().trim_matches('/').to_ascii_lowercase();
    let first = lowered.split('/').next().unwrap_or_default();
    let full = if lowered.contains('/') && is_registry_host(first) {
        lowered.clone()
    } else {
        format!("{registry}/{lowered}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if full.contains('@') || last.contains(':') {
        return Err(err(
            input,
            format!("'{given}' includes a tag or digest: give the repository only and put tags in the 'tags' input"),
        ));
    }
    if is_valid_repository_name(&full) {
        Ok(ImageName { full })
    } else {
        Err(err(
            input,
            format!(
                "'{given}' is not a valid image name: use lowercase letters, digits and the separators '.', '_', '__', '-' and '/', such as my-org/my-app"
            ),
        ))
    }
}

const KNOWN_OS: &[&str] = &[
    "linux",
    "windows",
    "darwin",
    "freebsd",
    "netbsd",
    "openbsd",
    "dragonfly",
    "illumos",
    "solaris",
    "aix",
    "android",
    "ios",
    "plan9",
    "js",
    "wasip1",
];
const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "mipsle", "mips",
    "loong64", "wasm",
];

/// Common spellings of an architecture that buildx does not take.
fn arch_alias(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" | "x86-64" | "x64" => Some("amd64"),
        "aarch64" | "armv8" => Some("arm64"),
        "armhf" | "armv7" | "armv7l" => Some("arm/v7"),
        "armel" | "armv6" | "armv6l" => Some("arm/v6"),
        "i386" | "i686" | "x86" => Some("386"),
        _ => None,
    }
}

fn platform(item: &str) -> Result<Platform, InputError> {
    let parts: Vec<&str> = item.split('/').collect();
    let bad = |why: String| err("platforms", format!("'{item}' {why}"));
    if !(2..=3).contains(&parts.len()) {
        return Err(bad("is not of the form os/arch[/variant], such as linux/amd64 or linux/arm/v7".into()));
    }
    let (os, arch) = (parts[0], parts[1]);
    if !KNOWN_OS.contains(&os) {
        let hint = if KNOWN_OS.contains(&os.to_ascii_lowercase().as_str()) {
            format!(": write it in lower case ({})", item.to_ascii_lowercase())
        } else {
            ": the first part is the operating system, such as linux".to_string()
        };
        return Err(bad(format!("names an unknown operating system '{os}'{hint}")));
    }
    if !KNOWN_ARCH.contains(&arch) {
        let hint = match arch_alias(&arch.to_ascii_lowercase()) {
            Some(fixed) => format!(": did you mean {os}/{fixed}?"),
            None => format!(": known architectures are {}", KNOWN_ARCH.join(", ")),
        };
        return Err(bad(format!("names an unknown architecture '{arch}'{hint}")));
    }
    if let Some(variant) = parts.get(2) {
        let ok =
            !variant.is_empty() && variant.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.');
        if !ok {
            return Err(bad(format!("has an invalid variant '{variant}': variants look like v7 or v8.2")));
        }
    }
    Ok(Platform(item.to_string()))
}

pub(super) fn platforms(raw: &Option<String>) -> Result<Vec<Platform>, InputError> {
    let items = list(raw);
    if items.is_empty() {
        return Ok(DEFAULT_PLATFORMS.iter().map(|p| Platform(p.to_string())).collect());
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        let p = platform(item)?;
        if !seen.insert(p.clone()) {
            return Err(err("platforms", format!("'{item}' is listed twice")));
        }
        out.push(p);
    }
    Ok(out)
}

/// The tag grammar of the distribution spec.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut chars = tag.chars();
    tag.len() <= 128
        && matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric() || c == '_')
        && chars.all(is_name_char)
}

/// A full reference in `tags` (`ghcr.io/o/other:v2`): the repository part is lowercased like
/// `image`, the tag kept.
pub(super) fn full_reference(item: &str) -> Result<String, InputError> {
    let (name, tag) = match item.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, Some(tag)),
        _ => (item, None),
    };
    let Some(tag) = tag.filter(|_| !item.contains('@')) else {
        return Err(err(
            "tags",
            format!("'{item}' has no tag: write name:tag, or a bare tag such as v1 to tag the image"),
        ));
    };
    let name = name.to_ascii_lowercase();
    if !is_valid_repository_name(&name) || !is_valid_tag(tag) {
        return Err(err(
            "tags",
            format!("'{item}' is not a valid image reference: write registry/name:tag with a tag of [A-Za-z0-9_.-]"),
        ));
    }
    Ok(format!("{name}:{tag}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_follow_the_distribution_grammar() {
        for ok in [
            "ghcr.io/o/r",
            "localhost:5000/a/b",
            "localhost/app",
            "app",
            "a/b/c/d",
            "ghcr.io/my-org/my.app__x_y",
            "r.example.com:443/a---b",
            "docker.io/library/alpine",
            "127.0.0.1:5000/sdi-e2e/app",
        ] {
            assert!(is_valid_repository_name(ok), "{ok}");
        }
        for bad in [
            "",
            "Ghcr.io/O/R/Upper",
            "ghcr.io/o/R",
            "ghcr.io/o/r:tag",
            "ghcr.io/o/-r",
            "ghcr.io/o/r-",
            "ghcr.io/o/a___b",
            "ghcr.io/o/a._b",
            "ghcr.io//r",
            "ghcr.io/",
            "-bad.io/r",
            "bad-.io/r",
            "host:port/r",
            "my app",
        ] {
            assert!(!is_valid_repository_name(bad), "{bad}");
        }
        assert!(!is_valid_repository_name(&format!("o/{}", "a".repeat(260))));
    }

    #[test]
    fn tags_follow_the_distribution_grammar() {
        assert!(is_valid_tag("v1.2.3-rc_1"));
        assert!(is_valid_tag("_x"));
        assert!(is_valid_tag(&"a".repeat(128)));
        for bad in ["", ".x", "-x", "a b", "a+b", "a:b", "a/b"] {
            assert!(!is_valid_tag(bad), "{bad}");
        }
        assert!(!is_valid_tag(&"a".repeat(129)));
    }
}
