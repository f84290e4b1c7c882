//! The Docker Engine API in CI, for a run with no docker CLI (the action's image): a local
//! server that answers each API call by making the same request of the fake `docker` CLI
//! (tests/fake_docker), as a daemon would carry it out. The fake's state (containers, BuildKit's
//! socket, logins refused, QEMU) and its call log are shared with the CLI's tests, so the
//! same assertions hold whichever way the action asked. Calls made this way carry
//! `FAKE_DOCKER_VIA` among their environment's names.
//!
//! It answers as a real daemon does, with the bodies captured from one
//! (`tests/fixtures/engine/<version>/`, `FAKE_ENGINE_DAEMON`, default 28.0.4, the hosted
//! runners'), the fields the fake's state decides written over them: `/_ping` with that
//! daemon's headers, then only paths under a version it accepts (`FAKE_ENGINE_API_VERSION` and
//! `FAKE_ENGINE_MIN_API` make it another daemon), each request's version recorded in
//! `engine-versions.log` beside the call log.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;

use serde_json::{Value, json};
use wiremock::{Request, Respond, ResponseTemplate};

/// The label the action's image carries (src/engine/own_buildkit.rs).
const LABEL: &str = "dev.sdi.buildkit.version";

/// Starts the server with the fake's settings from the run's environment (the daemon sees
/// nothing else of it); its `tcp://` address.
pub fn start(env: Vec<(String, String)>) -> String {
    let daemon = ["PATH", "HOME", "RUNNER_TEMP"];
    let env: Vec<(String, String)> =
        env.into_iter().filter(|(k, _)| k.starts_with("FAKE_") || daemon.contains(&k.as_str())).collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let server = wiremock::MockServer::start().await;
            let daemon = Daemon::of(&env);
            let engine =
                FakeEngine { env, daemon, created: Mutex::new(HashMap::new()), exited: Mutex::new(HashMap::new()) };
            wiremock::Mock::given(wiremock::matchers::any()).respond_with(engine).mount(&server).await;
            tx.send(server.address().to_string()).unwrap();
            std::future::pending::<()>().await;
        });
    });
    format!("tcp://{}", rx.recv().unwrap())
}

/// The daemon whose answers were captured.
struct Daemon {
    dir: std::path::PathBuf,
    ping: Vec<(String, String)>,
    api: String,
    min_api: Option<String>,
}

fn version(text: &str) -> sdi::engine::api::ApiVersion {
    sdi::engine::api::ApiVersion::parse(text).unwrap_or_else(|| panic!("a version: {text}"))
}

impl Daemon {
    fn of(env: &[(String, String)]) -> Daemon {
        let var = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let name = var("FAKE_ENGINE_DAEMON").unwrap_or_else(|| "28.0.4".into());
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/engine").join(name);
        let ping: serde_json::Map<String, Value> =
            serde_json::from_str(&std::fs::read_to_string(dir.join("ping.json")).unwrap()).unwrap();
        let mut ping: Vec<(String, String)> =
            ping.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect();
        if let Some(api) = var("FAKE_ENGINE_API_VERSION") {
            ping.iter_mut().filter(|(k, _)| k == "Api-Version").for_each(|(_, v)| *v = api.clone());
        }
        let api = ping.iter().find(|(k, _)| k == "Api-Version").map(|(_, v)| v.clone()).unwrap();
        Daemon { dir, ping, api, min_api: var("FAKE_ENGINE_MIN_API") }
    }

    /// A captured answer: its status and body (`Null` for none; hex for bytes).
    fn captured(&self, name: &str) -> (u16, Value) {
        let text = std::fs::read_to_string(self.dir.join(format!("{name}.json"))).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        (v["status"].as_u64().unwrap() as u16, v["body"].clone())
    }

    /// The captured answer with the fake's facts written over it.
    fn answer(&self, name: &str, patch: impl FnOnce(&mut Value)) -> ResponseTemplate {
        let (status, mut body) = self.captured(name);
        patch(&mut body);
        match body {
            Value::Null => ResponseTemplate::new(status),
            body => ResponseTemplate::new(status).set_body_json(body),
        }
    }

    /// What the daemon says of a path's version: `None` when it serves it.
    fn refuses(&self, asked: &str) -> Option<ResponseTemplate> {
        let too = |what: &str, bound: &str| {
            let m =
                format!("client version {asked} is too {what}. {bound}, please upgrade your client to a newer version");
            Some(ResponseTemplate::new(400).set_body_json(json!({ "message": m })))
        };
        if version(asked) > version(&self.api) {
            return too("new", &format!("Maximum supported API version is {}", self.api));
        }
        match &self.min_api {
            Some(min) if version(asked) < version(min) => {
                too("old", &format!("Minimum supported API version is {min}"))
            }
            _ => None,
        }
    }
}

struct FakeEngine {
    env: Vec<(String, String)>,
    daemon: Daemon,
    /// Containers created and not yet started: name or ID → the create request's body.
    created: Mutex<HashMap<String, Value>>,
    /// Containers run to their end: ID → (exit status, what they printed).
    exited: Mutex<HashMap<String, (i64, String)>>,
}

/// What the fake CLI did: exit status, stdout, stderr.
type Ran = (i32, String, String);

impl FakeEngine {
    fn docker(&self, args: &[&str], stdin: Option<&str>) -> Ran {
        let config = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fake-docker"));
        cmd.args(args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("FAKE_DOCKER_VIA", "engine-api")
            // The daemon's own login check: nothing lands in the client's configuration.
            .env("DOCKER_CONFIG", config.path())
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::io::Write::write_all(&mut pipe, text.as_bytes()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(1), text(&out.stdout), text(&out.stderr))
    }

    /// Each request's version (`-` for none), a line each: `METHOD VERSION PATH`.
    fn record_version(&self, method: &str, asked: Option<&str>, path: &str) {
        let Some(log) = self.var("FAKE_DOCKER_LOG") else { return };
        let log = std::path::Path::new(log).with_file_name("engine-versions.log");
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        std::io::Write::write_all(&mut f, format!("{method} {} {path}\n", asked.unwrap_or("-")).as_bytes()).unwrap();
    }

    fn var(&self, key: &str) -> Option<&str> {
        self.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The daemon's error answer for what the CLI printed.
fn error(status: u16, stderr: &str) -> ResponseTemplate {
    let line =
        stderr.lines().map(str::trim).find(|l| l.contains("Error response from daemon:")).unwrap_or(stderr.trim());
    let message = line.split_once("Error response from daemon: ").map_or(line, |(_, m)| m);
    ResponseTemplate::new(status).set_body_json(json!({ "message": message }))
}

impl Respond for FakeEngine {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let path = req.url.path().to_string();
        if path == "/_ping" {
            let mut answer = ResponseTemplate::new(200).set_body_string("OK");
            for (k, v) in &self.daemon.ping {
                answer = answer.insert_header(k.as_str(), v.as_str());
            }
            return answer;
        }
        let (asked, path) = match path.strip_prefix("/v").and_then(|p| p.split_once('/')) {
            Some((v, rest)) if v.contains('.') => (Some(v.to_string()), format!("/{rest}")),
            _ => (None, path),
        };
        self.record_version(req.method.as_str(), asked.as_deref(), &path);
        if let Some(refused) = asked.as_deref().and_then(|v| self.daemon.refuses(v)) {
            return refused;
        }
        let query: HashMap<String, String> = req.url.query_pairs().map(|(k, v)| (k.into(), v.into())).collect();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (req.method.as_str(), parts.as_slice()) {
            ("GET", ["containers", name, "json"]) => self.inspect(name),
            ("POST", ["containers", "create"]) => self.create(query.get("name"), body),
            ("POST", ["containers", id, "start"]) => self.start(id),
            ("POST", ["containers", id, "wait"]) => match self.exited.lock().unwrap().get(*id) {
                Some((code, _)) => self.daemon.answer("wait", |b| b["StatusCode"] = json!(code)),
                None => error(404, &format!("No such container: {id}")),
            },
            ("GET", ["containers", id, "logs"]) => {
                let text = self.exited.lock().unwrap().get(*id).map(|(_, t)| t.clone()).unwrap_or_default();
                let mut framed = vec![2, 0, 0, 0];
                framed.extend_from_slice(&(text.len() as u32).to_be_bytes());
                framed.extend_from_slice(text.as_bytes());
                ResponseTemplate::new(200).set_body_bytes(framed)
            }
            ("DELETE", ["containers", id]) => {
                if self.exited.lock().unwrap().remove(*id).is_none() {
                    self.docker(&["rm", "--force", "--volumes", id], None);
                }
                self.daemon.answer("remove", |_| {})
            }
            ("POST", ["images", "create"]) => self.pull(&query, req.headers.get("X-Registry-Auth")),
            ("POST", ["auth"]) => self.login(&body),
            ("GET", ["version"]) => self.daemon.answer("version", |_| {}),
            ("GET", ["info"]) => match self.docker(&["info", "--format", "{{json .DriverStatus}}"], None) {
                (0, out, _) => self.daemon.answer("info", |b| b["DriverStatus"] = serde_json::from_str(&out).unwrap()),
                (_, _, err) => error(500, &err),
            },
            _ => error(404, "page not found"),
        }
    }
}

impl FakeEngine {
    fn inspect(&self, name: &str) -> ResponseTemplate {
        let own = self.var("FAKE_DOCKER_ACTION_CONTAINER").and_then(|v| v.split_once('=')).map(|(n, _)| n);
        if own == Some(name) {
            let format = format!("{{{{.Image}}}}|{{{{index .Config.Labels \"{LABEL}\"}}}}|{{{{json .Mounts}}}}");
            return match self.docker(&["container", "inspect", "--format", &format, name], None) {
                (0, out, _) => {
                    let mut f = out.trim().splitn(3, '|');
                    let (image, label, mounts) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
                    let labels = if label.is_empty() { json!({}) } else { json!({ LABEL: label }) };
                    let mounts: Value = serde_json::from_str(mounts).unwrap();
                    self.daemon.answer("inspect-created", |b| {
                        b["Image"] = json!(image);
                        b["Config"]["Labels"] = labels;
                        b["Mounts"] = mounts;
                        b["State"]["Running"] = json!(true);
                    })
                }
                (_, _, err) => error(404, &err),
            };
        }
        match self.docker(&["container", "inspect", "--format", "{{.State.Running}}", name], None) {
            (0, out, _) => {
                self.daemon.answer("inspect-created", |b| b["State"]["Running"] = json!(out.trim() == "true"))
            }
            (_, _, err) => error(404, &err),
        }
    }

    fn create(&self, name: Option<&String>, body: Value) -> ResponseTemplate {
        let mut created = self.created.lock().unwrap();
        let id = name.cloned().unwrap_or_else(|| format!("{:064x}", created.len() + 1));
        created.insert(id.clone(), body);
        self.daemon.answer("create", |b| b["Id"] = json!(id))
    }

    /// A created container runs as `docker run` would have run it; any other starts.
    fn start(&self, id: &str) -> ResponseTemplate {
        let Some(body) = self.created.lock().unwrap().remove(id) else {
            return match self.docker(&["start", id], None) {
                (0, ..) => ResponseTemplate::new(204),
                (_, _, err) => error(500, &err),
            };
        };
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let mut args: Vec<String> = vec!["run".into()];
        let detached = !body["Entrypoint"].is_null();
        if detached {
            args.push("--detach".into());
        }
        if body["HostConfig"]["Privileged"] == json!(true) {
            args.push("--privileged".into());
        }
        if detached {
            if body["HostConfig"]["Init"] == json!(true) {
                args.push("--init".into());
            }
            args.extend(["--pull".into(), "never".into(), "--name".into(), id.to_string()]);
            for volume in body["Volumes"].as_object().into_iter().flat_map(|v| v.keys()) {
                args.extend(["--volume".into(), volume.clone()]);
            }
            for m in body["HostConfig"]["Mounts"].as_array().into_iter().flatten() {
                let (kind, source, target) = (text(&m["Type"]), text(&m["Source"]), text(&m["Target"]));
                args.extend(["--mount".into(), format!("type={kind},source={source},target={target}")]);
            }
            for e in body["Entrypoint"].as_array().into_iter().flatten() {
                args.extend(["--entrypoint".into(), text(e)]);
            }
        } else {
            args.push("--rm".into());
        }
        args.push(text(&body["Image"]));
        args.extend(body["Cmd"].as_array().into_iter().flatten().map(text));
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = self.docker(&argv, None);
        if detached {
            return if code == 0 { ResponseTemplate::new(204) } else { error(500, &err) };
        }
        self.exited.lock().unwrap().insert(id.to_string(), (code as i64, err));
        ResponseTemplate::new(204)
    }

    /// A pull: the fake's registry is always reachable but when QEMU's image is made to fail.
    /// Each is recorded in `engine-pulls.jsonl` beside the call log: the image, and the user
    /// its credentials name (`X-Registry-Auth`), if any.
    fn pull(&self, query: &HashMap<String, String>, auth: Option<&wiremock::http::HeaderValue>) -> ResponseTemplate {
        use base64::Engine;
        let image = query.get("fromImage").cloned().unwrap_or_default();
        let auth: Option<Value> = auth
            .and_then(|h| base64::engine::general_purpose::URL_SAFE.decode(h.as_bytes()).ok())
            .and_then(|json| serde_json::from_slice(&json).ok());
        let log = std::path::Path::new(self.var("FAKE_DOCKER_LOG").unwrap()).with_file_name("engine-pulls.jsonl");
        let record = json!({"image": image, "user": auth.as_ref().map(|a| a["username"].clone()), "server": auth.as_ref().map(|a| a["serveraddress"].clone())});
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        std::io::Write::write_all(&mut f, format!("{record}\n").as_bytes()).unwrap();
        let failing = self.var("FAKE_DOCKER_FAIL").is_some_and(|f| f.split(',').any(|f| f == "binfmt"));
        // The captured progress stream; a failing pull breaks off with the error a network cut gives.
        let (status, lines) = self.daemon.captured("pull");
        let mut lines: Vec<Value> = lines.as_array().unwrap().clone();
        if failing && image.contains("binfmt") {
            lines.truncate(1);
            lines.push(json!({"errorDetail": {"message": "Get \"https://registry-1.docker.io/v2/\": net/http: request canceled"}, "error": "Get \"https://registry-1.docker.io/v2/\": net/http: request canceled"}));
        }
        let stream: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        ResponseTemplate::new(status).set_body_string(stream)
    }

    fn login(&self, body: &Value) -> ResponseTemplate {
        let field = |k: &str| body[k].as_str().unwrap_or_default().to_string();
        let (server, user) = (field("serveraddress"), field("username"));
        match self.docker(&["login", &server, "--username", &user, "--password-stdin"], Some(&field("password"))) {
            (0, ..) => self.daemon.answer("auth", |_| {}),
            (_, _, err) => error(self.daemon.captured("auth-refused").0, &err),
        }
    }
}
