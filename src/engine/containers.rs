//! What the run asks of the Docker daemon besides buildx, a function a question: through the
//! docker CLI where one is installed (it honours the user's contexts), through the Engine API
//! where none is (the action's image). Both give the same answers, so the phases never ask which.

use reqwest::Method;
use serde_json::{Value, json};

use super::api::{demux_log, encode};
use super::docker::{Docker, Ended, Failure, Signals, cause_line};
use crate::step::Outcome;

/// An Engine API call that a signal stops, counted with the run's docker calls: its answer's
/// body as sent (a pull's progress stream, a log).
async fn raw(
    docker: &mut Docker,
    signals: &mut Signals,
    request: (Method, &str),
    (body, registry_auth): (Option<&Value>, Option<&str>),
) -> Result<Vec<u8>, Failure> {
    docker.calls += 1;
    let Some(api) = docker.api.as_ref() else { return Err(Failure::Failed("no Engine API".into())) };
    tokio::select! {
        r = api.send(request, body, registry_auth) => r.map_err(Failure::Failed),
        sig = signals.recv() => Err(Failure::Cancelled(sig)),
    }
}

/// Without a docker CLI, the Engine API version is agreed on before anything is asked, so a
/// daemon the action cannot speak to is said on its own, naming both versions.
pub(crate) async fn agree_on_version(docker: &mut Docker, signals: &mut Signals) -> Result<(), Outcome> {
    let Some(api) = docker.api.as_ref() else { return Ok(()) };
    tokio::select! {
        v = api.version() => v.map(drop).map_err(Outcome::SetupFailed),
        sig = signals.recv() => Err(Outcome::Cancelled { signal: sig }),
    }
}

/// `raw`, its answer JSON (`Null` when empty).
pub(super) async fn call(
    docker: &mut Docker,
    signals: &mut Signals,
    request: (Method, &str),
    body: Option<&Value>,
) -> Result<Value, Failure> {
    let path = request.1.to_string();
    let bytes = raw(docker, signals, request, (body, None)).await?;
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Failure::Failed(format!("the Docker daemon's answer to {path} is not JSON: {e}")))
}

/// A field the run needs from an answer (a JSON pointer): unknown fields are passed over, and
/// a needed one that is missing is named, not read as empty.
fn needed<'a>(answer: &'a Value, pointer: &str, path: &str) -> Result<&'a Value, Failure> {
    answer.pointer(pointer).ok_or_else(|| {
        let field = pointer.trim_start_matches('/').replace('/', ".");
        Failure::Failed(format!("the Docker daemon's answer to {path} has no {field}, which the action needs"))
    })
}

/// A container as the daemon describes it (`docker container inspect`).
async fn inspect(docker: &mut Docker, signals: &mut Signals, container: &str) -> Result<Value, Failure> {
    call(docker, signals, (Method::GET, &format!("/containers/{}/json", encode(container))), None).await
}

/// What the action's own container says of it: its image's ID, the value of `label` on it
/// (empty when absent), and its mounts (JSON, as `docker inspect` lists them).
pub(super) async fn own_facts(
    docker: &mut Docker,
    signals: &mut Signals,
    container: &str,
    label: &str,
) -> Result<(String, String, String), Failure> {
    if docker.api.is_none() {
        let format = format!("{{{{.Image}}}}|{{{{index .Config.Labels \"{label}\"}}}}|{{{{json .Mounts}}}}");
        let out = docker.run(&["container", "inspect", "--format", &format, container], None, signals).await?;
        let mut fields = out.trim().splitn(3, '|').map(str::to_string);
        return match (fields.next(), fields.next(), fields.next()) {
            (Some(image), Some(value), Some(mounts)) => Ok((image, value, mounts)),
            _ => Err(Failure::Failed(format!("unexpected answer: {}", out.trim()))),
        };
    }
    let v = inspect(docker, signals, container).await?;
    let path = format!("/containers/{container}/json");
    let image = needed(&v, "/Image", &path)?.as_str().unwrap_or_default().to_string();
    let value = needed(&v, "/Config", &path)?["Labels"][label].as_str().unwrap_or_default().to_string();
    Ok((image, value, needed(&v, "/Mounts", &path)?.to_string()))
}

/// Whether a container runs.
pub(crate) async fn running(docker: &mut Docker, signals: &mut Signals, container: &str) -> Result<bool, Failure> {
    if docker.api.is_none() {
        let args = ["container", "inspect", "--format", "{{.State.Running}}", container];
        return Ok(docker.run(&args, None, signals).await?.trim() == "true");
    }
    let v = inspect(docker, signals, container).await?;
    Ok(needed(&v, "/State/Running", &format!("/containers/{container}/json"))? == &json!(true))
}

/// Starts a created or stopped container.
pub(crate) async fn start(docker: &mut Docker, signals: &mut Signals, container: &str) -> Result<(), Failure> {
    if docker.api.is_none() {
        return docker.run(&["start", container], None, signals).await.map(drop);
    }
    call(docker, signals, (Method::POST, &format!("/containers/{}/start", encode(container))), None).await.map(drop)
}

/// Removes a container and its anonymous volumes, running or not; one already gone is removed.
pub(crate) async fn remove(docker: &mut Docker, signals: &mut Signals, container: &str) -> bool {
    if docker.api.is_none() {
        let out = docker.output(&["rm", "--force", "--volumes", container], None, signals).await;
        return matches!(out, Ok(Ended::Exited { code: 0, .. }));
    }
    let path = format!("/containers/{}?force=1&v=1", encode(container));
    match call(docker, signals, (Method::DELETE, &path), None).await {
        Ok(_) => true,
        Err(Failure::Failed(why)) => why.contains("No such container"),
        Err(Failure::Cancelled(_)) => false,
    }
}

/// Creates `name` from `body` (the API's container configuration) and starts it: what
/// `docker run --detach` does, the image never pulled.
pub(super) async fn create_and_start(
    docker: &mut Docker,
    signals: &mut Signals,
    name: &str,
    body: &Value,
) -> Result<(), Failure> {
    call(docker, signals, (Method::POST, &format!("/containers/create?name={}", encode(name))), Some(body)).await?;
    start(docker, signals, name).await
}

/// `docker run --privileged --rm IMAGE ARGS…` to its end: the image pulled when the daemon lacks
/// it, the container removed whatever happens; a non-zero exit is a failure with its log's cause.
pub(crate) async fn run_privileged(
    docker: &mut Docker,
    signals: &mut Signals,
    image: &str,
    args: &[&str],
) -> Result<(), Failure> {
    if docker.api.is_none() {
        let mut argv = vec!["run", "--privileged", "--rm", image];
        argv.extend(args);
        return docker.run(&argv, None, signals).await.map(drop);
    }
    pull(docker, signals, image).await?;
    let body = json!({"Image": image, "Cmd": args, "HostConfig": {"Privileged": true}});
    let created = call(docker, signals, (Method::POST, "/containers/create"), Some(&body)).await?;
    let id = needed(&created, "/Id", "/containers/create")?.as_str().unwrap_or_default().to_string();
    let ran = wait_for(docker, signals, &id).await;
    remove(docker, signals, &id).await;
    ran
}

/// Starts a created container and waits for its exit; its log's cause when it fails.
async fn wait_for(docker: &mut Docker, signals: &mut Signals, id: &str) -> Result<(), Failure> {
    start(docker, signals, id).await?;
    let path = format!("/containers/{id}/wait");
    let waited = call(docker, signals, (Method::POST, &path), None).await?;
    match needed(&waited, "/StatusCode", &path)?.as_i64() {
        Some(0) => Ok(()),
        code => {
            let logs = format!("/containers/{id}/logs?stdout=1&stderr=1");
            let text = match raw(docker, signals, (Method::GET, &logs), (None, None)).await {
                Ok(framed) => demux_log(&framed),
                Err(Failure::Cancelled(sig)) => return Err(Failure::Cancelled(sig)),
                Err(Failure::Failed(_)) => String::new(),
            };
            let cause = if text.trim().is_empty() { "it printed nothing" } else { cause_line(&text) };
            Err(Failure::Failed(format!("exited with status {}: {cause}", code.unwrap_or(-1))))
        }
    }
}

/// Pulls `image` (`name[:tag][@digest]`; the digest wins, as the CLI sends it), reading the
/// daemon's progress stream for the error it ends with.
async fn pull(docker: &mut Docker, signals: &mut Signals, image: &str) -> Result<(), Failure> {
    let (name, reference) = split_reference(image);
    let path = format!("/images/create?fromImage={}&tag={}", encode(name), encode(reference));
    // The run's login to the image's registry, if any (Docker Hub's pull limits).
    let host = crate::context::inputs::registry_of(image);
    let auth = crate::credentials::stored(docker.config_dir(), host)
        .map(|(user, password)| super::api::registry_auth(&user, &password, &crate::credentials::auth_key(host)));
    let progress = raw(docker, signals, (Method::POST, &path), (None, auth.as_deref())).await?;
    let failed = String::from_utf8_lossy(&progress)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v.get("error").and_then(Value::as_str).map(str::to_string));
    match failed {
        Some(why) => Err(Failure::Failed(format!("Error response from daemon: {why}"))),
        None => Ok(()),
    }
}

/// `name:tag@digest` → (`name`, `digest`); `name:tag` → (`name`, `tag`); `name` → `latest`.
pub fn split_reference(image: &str) -> (&str, &str) {
    if let Some((name, digest)) = image.split_once('@') {
        let name = match name.rsplit_once(':') {
            Some((n, tag)) if !tag.contains('/') => n,
            _ => name,
        };
        return (name, digest);
    }
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => (name, tag),
        _ => (image, "latest"),
    }
}

/// Whether the daemon keeps images in the containerd image store (`docker info`'s driver
/// status names its snapshotter).
pub(crate) async fn containerd_store(docker: &mut Docker, signals: &mut Signals) -> Result<bool, Failure> {
    let status = if docker.api.is_none() {
        docker.run(&["info", "--format", "{{json .DriverStatus}}"], None, signals).await?
    } else {
        needed(&call(docker, signals, (Method::GET, "/info"), None).await?, "/DriverStatus", "/info")?.to_string()
    };
    Ok(status.contains("io.containerd.snapshotter"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_read_for_what_the_run_needs_and_a_missing_field_is_named() {
        let answer = json!({"State": {"Running": true, "Health": {"Status": "new in a later API"}}, "Extra": 1});
        assert_eq!(needed(&answer, "/State/Running", "/containers/x/json").ok(), Some(&json!(true)));
        let Err(Failure::Failed(why)) = needed(&json!({"State": {}}), "/State/Running", "/containers/x/json") else {
            panic!("a missing field is an error")
        };
        assert_eq!(
            why,
            "the Docker daemon's answer to /containers/x/json has no State.Running, which the action needs"
        );
    }

    #[test]
    fn a_pull_names_the_repository_and_the_digest_before_the_tag() {
        let pinned = "tonistiigi/binfmt:qemu-v10.2.3@sha256:400a";
        assert_eq!(split_reference(pinned), ("tonistiigi/binfmt", "sha256:400a"));
        assert_eq!(split_reference("localhost:5000/binfmt:v1"), ("localhost:5000/binfmt", "v1"));
        assert_eq!(split_reference("localhost:5000/binfmt"), ("localhost:5000/binfmt", "latest"));
        assert_eq!(split_reference("localhost:5000/binfmt@sha256:ab"), ("localhost:5000/binfmt", "sha256:ab"));
    }
}
