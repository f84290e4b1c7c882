//! The `builder` input and its client certificates, lowered once into a `BuilderSpec`.
//!
//! Inside the action's container the user's `~/.docker` is not visible, so a builder *name*
//! may have no record here; the runner mounts the Docker socket, though, and a
//! `docker-container` builder is a container on that daemon. An *endpoint* reaches a BuildKit
//! directly (buildx's `remote` driver): the way to share one BuildKit between jobs.

use super::InputError;
use super::inputs::{Environment, Masked};

/// Where the build runs, as the user asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuilderSpec {
    /// `default`: the Docker daemon's own BuildKit (`docker` driver).
    Default,
    /// A buildx builder name: its record when the action can see it, else the daemon's
    /// container `buildx_buildkit_<name>0`.
    Named(String),
    /// A BuildKit endpoint, attached for the run with buildx's remote driver.
    Endpoint(Endpoint),
}

impl BuilderSpec {
    /// The builder name whose record the run may copy from the user's configuration.
    pub fn name(&self) -> Option<&str> {
        match self {
            BuilderSpec::Named(n) => Some(n),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Tcp,
    Unix,
    DockerContainer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub scheme: Scheme,
    pub tls: Option<BuilderTls>,
}

/// Client TLS for a `tcp://` BuildKit, as buildx's remote driver takes it: a CA, and
/// optionally a client certificate with its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuilderTls {
    pub cacert: Pem,
    pub cert: Option<Pem>,
    pub key: Option<Pem>,
}

/// A PEM input: a file the action can read, or the PEM text itself (a key this way is a
/// secret: masked, and written only into the run's private directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    File(String),
    Inline(Masked),
}

/// The raw inputs this module lowers.
pub struct RawBuilder<'a> {
    pub builder: Option<&'a str>,
    pub cacert: Option<&'a str>,
    pub cert: Option<&'a str>,
    pub key: Option<&'a str>,
}

fn err(input: &str, message: impl Into<String>) -> InputError {
    InputError::new(input, message)
}

const SCHEMES: &str = "tcp://host:port, unix:///path or docker-container://<container>";

pub fn lower(raw: &RawBuilder, env: &dyn Environment) -> Result<Option<BuilderSpec>, InputError> {
    let tls_inputs = [("builder-tls-cacert", raw.cacert), ("builder-tls-cert", raw.cert), ("builder-tls-key", raw.key)];
    let Some(given) = raw.builder else {
        if let Some((name, _)) = tls_inputs.iter().find(|(_, v)| v.is_some()) {
            return Err(err(name, "is set but `builder` is not: it is for a tcp:// BuildKit endpoint"));
        }
        return Ok(None);
    };
    if given.contains(['\n', '\r']) {
        return Err(err("builder", "must be a single line"));
    }
    let spec = match given.split_once("://") {
        Some((scheme, rest)) => BuilderSpec::Endpoint(endpoint(given, scheme, rest)?),
        None if given == "default" => BuilderSpec::Default,
        None => BuilderSpec::Named(builder_name(given)?),
    };
    let tcp = matches!(&spec, BuilderSpec::Endpoint(Endpoint { scheme: Scheme::Tcp, .. }));
    if !tcp {
        if let Some((name, _)) = tls_inputs.iter().find(|(_, v)| v.is_some()) {
            return Err(err(name, format!("is for a tcp:// BuildKit endpoint, and builder is '{given}'")));
        }
        return Ok(Some(spec));
    }
    let [cacert, cert, key] = tls_inputs.map(|(name, v)| v.map(|v| pem(name, v, env)).transpose());
    let (cacert, cert, key) = (cacert?, cert?, key?);
    let BuilderSpec::Endpoint(mut ep) = spec else { unreachable!("tcp is an endpoint") };
    ep.tls = match (cacert, cert, key) {
        (None, None, None) => None,
        (None, ..) => {
            return Err(err(
                "builder-tls-cacert",
                "is required with a client certificate: buildx's remote driver verifies the BuildKit's certificate with it",
            ));
        }
        (Some(_), Some(_), None) => return Err(err("builder-tls-key", "is required with builder-tls-cert")),
        (Some(_), None, Some(_)) => return Err(err("builder-tls-cert", "is required with builder-tls-key")),
        (Some(cacert), cert, key) => Some(BuilderTls { cacert, cert, key }),
    };
    Ok(Some(BuilderSpec::Endpoint(ep)))
}

/// buildx's rule for builder names: a letter or digit first, then letters, digits, `_.-`.
fn builder_name(name: &str) -> Result<String, InputError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err(err(
            "builder",
            format!(
                "'{name}' is neither a builder name (a letter or digit, then letters, digits, '_', '.', '-') nor a BuildKit endpoint ({SCHEMES})"
            ),
        ));
    }
    Ok(name.to_string())
}

fn endpoint(url: &str, scheme: &str, rest: &str) -> Result<Endpoint, InputError> {
    let bad = |why: &str| err("builder", format!("'{url}': {why}"));
    let scheme = match scheme {
        "tcp" => {
            let (host, port) = rest.rsplit_once(':').ok_or_else(|| bad("write tcp://host:port"))?;
            let host_ok = !host.is_empty()
                && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
            if !host_ok || port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(bad("write tcp://host:port, with a host name or address and a port number"));
            }
            Scheme::Tcp
        }
        "unix" => {
            if !rest.starts_with('/') || rest.len() < 2 || rest.contains(char::is_whitespace) {
                return Err(bad(
                    "write unix:// and an absolute socket path, such as unix:///run/buildkit/buildkitd.sock",
                ));
            }
            Scheme::Unix
        }
        "docker-container" => {
            let ok = rest.starts_with(|c: char| c.is_ascii_alphanumeric())
                && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
            if !ok {
                return Err(bad(
                    "write docker-container:// and a container name, such as docker-container://buildx_buildkit_ci0",
                ));
            }
            Scheme::DockerContainer
        }
        other => {
            return Err(bad(&format!(
                "the scheme '{other}' cannot be reached from the action's container: use {SCHEMES}"
            )));
        }
    };
    Ok(Endpoint { url: url.to_string(), scheme, tls: None })
}

fn pem(input: &str, value: &str, env: &dyn Environment) -> Result<Pem, InputError> {
    let value = value.trim();
    if value.starts_with("-----BEGIN ") {
        if !value.contains("-----END ") {
            return Err(err(input, "holds a PEM block without its -----END line"));
        }
        return Ok(Pem::Inline(Masked::new(format!("{value}\n"))));
    }
    if value.contains(['\n', '\r']) {
        return Err(err(input, "is neither a file path nor PEM text (-----BEGIN …)"));
    }
    if !env.is_readable_file(value) {
        return Err(err(input, format!("'{value}' is not a readable file (give a path, or the PEM text itself)")));
    }
    Ok(Pem::File(value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files(Vec<&'static str>);
    impl Environment for Files {
        fn var(&self, _: &str) -> Option<String> {
            None
        }
        fn is_readable_file(&self, path: &str) -> bool {
            self.0.contains(&path)
        }
        fn dir_entries(&self, _: &str) -> Option<Vec<String>> {
            None
        }
    }

    fn lowered(builder: &str, tls: [Option<&str>; 3]) -> Result<Option<BuilderSpec>, InputError> {
        let raw = RawBuilder { builder: Some(builder), cacert: tls[0], cert: tls[1], key: tls[2] };
        lower(&raw, &Files(vec!["/certs/ca.pem", "/certs/cert.pem", "/certs/key.pem"]))
    }

    #[test]
    fn names_endpoints_and_default() {
        assert_eq!(lowered("default", [None; 3]).unwrap(), Some(BuilderSpec::Default));
        assert_eq!(lowered("ci-builder.1", [None; 3]).unwrap(), Some(BuilderSpec::Named("ci-builder.1".into())));
        for (url, scheme) in [
            ("tcp://buildkitd:1234", Scheme::Tcp),
            ("tcp://10.0.0.7:1234", Scheme::Tcp),
            ("unix:///run/buildkit/buildkitd.sock", Scheme::Unix),
            ("docker-container://buildx_buildkit_ci0", Scheme::DockerContainer),
        ] {
            assert_eq!(
                lowered(url, [None; 3]).unwrap(),
                Some(BuilderSpec::Endpoint(Endpoint { url: url.into(), scheme, tls: None }))
            );
        }
    }

    #[test]
    fn bad_builders_name_the_input() {
        for bad in [
            "-x",
            "a b",
            "tcp://host",
            "tcp://:1234",
            "tcp://host:0",
            "tcp://host:99999",
            "unix://relative.sock",
            "docker-container://",
            "docker-container://a;b",
            "ssh://me@host",
            "kube-pod://buildkitd-0",
        ] {
            let e = lowered(bad, [None; 3]).unwrap_err();
            assert_eq!(e.input, "builder", "{bad}");
        }
    }

    #[test]
    fn client_certificates_go_with_tcp_and_in_pairs() {
        let ok = lowered("tcp://bk:1234", [Some("/certs/ca.pem"), Some("/certs/cert.pem"), Some("/certs/key.pem")]);
        let Some(BuilderSpec::Endpoint(Endpoint { tls: Some(tls), .. })) = ok.unwrap() else { panic!() };
        assert_eq!(tls.cacert, Pem::File("/certs/ca.pem".into()));
        let inline = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----";
        let ok = lowered("tcp://bk:1234", [Some("/certs/ca.pem"), Some("/certs/cert.pem"), Some(inline)]).unwrap();
        let Some(BuilderSpec::Endpoint(Endpoint { tls: Some(tls), .. })) = ok else { panic!() };
        assert!(matches!(tls.key, Some(Pem::Inline(_))));
        assert!(format!("{tls:?}").contains("***") && !format!("{tls:?}").contains("MIIEvQ"));

        let cases: [(&str, [Option<&str>; 3], &str); 6] = [
            ("tcp://bk:1234", [None, Some("/certs/cert.pem"), Some("/certs/key.pem")], "builder-tls-cacert"),
            ("tcp://bk:1234", [Some("/certs/ca.pem"), Some("/certs/cert.pem"), None], "builder-tls-key"),
            ("tcp://bk:1234", [Some("/certs/ca.pem"), None, Some("/certs/key.pem")], "builder-tls-cert"),
            ("tcp://bk:1234", [Some("/nope.pem"), None, None], "builder-tls-cacert"),
            ("unix:///bk.sock", [Some("/certs/ca.pem"), None, None], "builder-tls-cacert"),
            ("ci", [None, None, Some(inline)], "builder-tls-key"),
        ];
        for (builder, tls, input) in cases {
            assert_eq!(lowered(builder, tls).unwrap_err().input, input, "{builder} {tls:?}");
        }
        let raw = RawBuilder { builder: None, cacert: Some("/certs/ca.pem"), cert: None, key: None };
        assert_eq!(lower(&raw, &Files(vec![])).unwrap_err().input, "builder-tls-cacert");
    }
}
