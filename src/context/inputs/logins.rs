//! `logins`: credentials for registries other than the one `github-token` opens (Docker Hub,
//! ECR, a private registry), one a line: `registry=docker.io,username=me,password-env=DOCKERHUB_TOKEN`.
//! The password is named by an environment variable, never written in the workflow's inputs.

use super::super::InputError;
use super::csv::attributes;
use super::fields::{err, is_env_name, lines};
use super::{Environment, SECRET_ENV_PREFIX, is_registry_host};

/// One registry's credentials: the password is read from `password_env` at login time and
/// travels only on `docker login`'s stdin.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RegistryLogin {
    pub registry: String,
    pub username: String,
    pub password_env: String,
    /// Whether the variable is set and non-empty (a trusted run needs it).
    #[serde(skip)]
    pub available: bool,
}

/// Docker Hub's other spellings are one registry.
pub fn canonical_registry(host: &str) -> String {
    match host.trim().trim_end_matches('/').to_ascii_lowercase().as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "" => "docker.io".into(),
        other => other.to_string(),
    }
}

pub(super) fn logins(raw: &Option<String>, env: &dyn Environment) -> Result<Vec<RegistryLogin>, InputError> {
    let mut out: Vec<RegistryLogin> = Vec::new();
    for (n, line) in lines(raw) {
        let bad = |why: &str| err("logins", format!("line {n}: {why}"));
        let (mut registry, mut username, mut password_env) = (None, None, None);
        for (key, val) in attributes(line).map_err(|e| bad(&e))? {
            match key.as_deref() {
                Some("registry") => registry = Some(canonical_registry(&val)),
                Some("username") => username = Some(val),
                Some("password-env") => password_env = Some(val),
                Some("password") => {
                    return Err(bad(
                        "a password is never written in the workflow: put it in a secret and name its variable with password-env=",
                    ));
                }
                _ => return Err(bad("write registry=…,username=…,password-env=ENV_NAME")),
            }
        }
        let registry = registry.ok_or_else(|| bad("registry= is missing"))?;
        if registry != "docker.io" && !is_registry_host(&registry) {
            return Err(bad(&format!(
                "'{registry}' is not a registry host such as docker.io or 123.dkr.ecr.us-east-1.amazonaws.com"
            )));
        }
        let username = username.filter(|u| !u.is_empty()).ok_or_else(|| bad("username= is missing"))?;
        let password_env = password_env.ok_or_else(|| bad("password-env= is missing"))?;
        if !is_env_name(&password_env) || password_env.starts_with(SECRET_ENV_PREFIX) {
            return Err(bad(&format!("'{password_env}' is not an environment variable name this action may read")));
        }
        if out.iter().any(|l| l.registry == registry) {
            return Err(bad(&format!("{registry} is listed twice")));
        }
        let available = env.var(&password_env).is_some_and(|v| !v.is_empty());
        out.push(RegistryLogin { registry, username, password_env, available });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Vars;
    impl Environment for Vars {
        fn var(&self, name: &str) -> Option<String> {
            (name == "HUB").then(|| "secret-value".into())
        }
        fn is_readable_file(&self, _: &str) -> bool {
            false
        }
        fn dir_entries(&self, _: &str) -> Option<Vec<String>> {
            None
        }
    }

    #[test]
    fn lines_name_a_registry_a_user_and_a_variable() {
        let l = logins(&Some("registry=index.docker.io,username=me,password-env=HUB\nregistry=quay.io,username=bot,password-env=QUAY".into()), &Vars).unwrap();
        assert_eq!(
            l[0],
            RegistryLogin {
                registry: "docker.io".into(),
                username: "me".into(),
                password_env: "HUB".into(),
                available: true
            }
        );
        assert!(!l[1].available);
        for bad in [
            "registry=docker.io,username=me,password=hunter22",
            "registry=docker.io,password-env=X",
            "username=me,password-env=X",
            "registry=docker.io,username=me,password-env=not a name",
            "registry=docker.io,username=me,password-env=X\nregistry=docker.io,username=you,password-env=Y",
        ] {
            let e = logins(&Some(bad.into()), &Vars).unwrap_err();
            assert_eq!(e.input, "logins");
            assert!(!e.message.contains("hunter22"));
        }
    }
}
