//! buildx's `--progress=rawjson` stream: each line a BuildKit `SolveStatus`. Turned into
//! readable lines for the log, and counted exactly: which Dockerfile steps were served from
//! cache, and what the cache export said when it failed.

use std::collections::HashMap;

use super::status::{SolveStatus, Vertex, VertexWarning, decode, seconds_between};
use crate::step::BuildError;

/// What the steps of a build printed, line by line, from its rawjson stream: each step's
/// output joined across messages before it is split, and nothing of the steps' names, which
/// quote their commands (a helper's marker is in its command too).
pub(crate) fn step_output(stderr: &str) -> Vec<String> {
    let mut order: Vec<String> = Vec::new();
    let mut text: HashMap<String, String> = HashMap::new();
    for line in stderr.lines().map(str::trim_start).filter(|l| l.starts_with('{')) {
        let Ok(status) = serde_json::from_str::<SolveStatus>(line) else { continue };
        for l in status.logs {
            if !text.contains_key(&l.vertex) {
                order.push(l.vertex.clone());
            }
            text.entry(l.vertex).or_default().push_str(&decode(&l.data));
        }
    }
    order.iter().flat_map(|v| text[v].lines().map(str::to_string).collect::<Vec<_>>()).collect()
}

/// A Dockerfile step (`[2/3] RUN …`, `[stage 2/5] COPY …`, `[linux/arm64 builder 1/4] …`),
/// as opposed to `[internal] …`, cache import/export or exporting vertices.
fn is_dockerfile_step(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('[') else {
        return false;
    };
    let Some((tag, _)) = rest.split_once("] ") else {
        return false;
    };
    let counter = tag.rsplit(' ').next().unwrap_or(tag);
    counter.split_once('/').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.chars().all(|c| c.is_ascii_digit()) && b.chars().all(|c| c.is_ascii_digit())
    })
}

/// The cache-mount stores a Dockerfile RUN step mounts: its vertex name is the instruction with
/// its ARGs expanded (`[stage-0 2/2] RUN --mount=type=cache,id=st-amd64,target=/cache …`), read
/// as the Dockerfile reader reads it.
fn run_step_stores(name: &str) -> Vec<String> {
    let Some((_, instr)) = name.strip_prefix('[').and_then(|r| r.split_once("] ")) else { return Vec::new() };
    if !is_dockerfile_step(name) || !instr.starts_with("RUN ") {
        return Vec::new();
    }
    crate::dockerfile::cache_mounts(&format!("FROM scratch\n{instr}\n"), &[]).into_iter().map(|m| m.id).collect()
}

fn is_from_step(name: &str) -> bool {
    name.split_once("] ").is_some_and(|(_, instr)| instr.starts_with("FROM "))
}

/// Everything learnt from the stream, merged by vertex digest as BuildKit intends.
#[derive(Debug, Default)]
pub struct Progress {
    order: Vec<String>,
    vertices: HashMap<String, Vertex>,
    /// The plain rendering: what was printed, and how each step is numbered.
    printer: super::render::Plain,
    pub warnings: Vec<VertexWarning>,
    /// Lines that were not progress JSON: buildx's own messages (its `ERROR:` among them).
    pub plain: Vec<String>,
}

/// Steps of the Dockerfile served from cache, out of how many (FROM excluded: never cached).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheHits {
    pub cached: usize,
    pub total: usize,
}

impl Progress {
    /// Takes one line of buildx's stderr. JSON lines become readable log lines; anything
    /// else (buildx's own messages) is passed through. Returns the lines to print.
    pub fn feed(&mut self, line: &str) -> Vec<String> {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('{') {
            // buildx's own words come after what the steps printed so far.
            self.plain.push(line.to_string());
            let mut out = self.finish();
            out.push(line.to_string());
            return out;
        }
        let Ok(status) = serde_json::from_str::<SolveStatus>(trimmed) else {
            return vec![line.to_string()];
        };
        let mut out = Vec::new();
        let mut touched = Vec::new();
        for v in status.vertexes {
            let merged = self.merge(v);
            self.printer.started(&merged, &mut out);
            touched.push(merged);
        }
        for s in status.statuses {
            let v = self.vertex_or_new(&s.vertex);
            self.printer.status(&v, &s, &mut out);
        }
        for w in status.warnings {
            let v = self.vertex_or_new(&w.vertex);
            self.printer.warning(&v, &w.message(), &mut out);
            self.warnings.push(w);
        }
        for l in status.logs {
            let v = self.vertex_or_new(&l.vertex);
            self.printer.log(&v, &l, &decode(&l.data), &mut out);
        }
        for v in touched {
            self.printer.finished(&v);
        }
        out
    }

    /// The lines still held back when the stream ends (the last steps' `DONE`), then the
    /// failed steps' error blocks.
    pub fn finish(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.printer.flush(&mut out);
        self.printer.error_blocks(&self.order, &mut out);
        out
    }

    /// Merges a vertex update by digest, as BuildKit intends; returns the merged vertex.
    fn merge(&mut self, v: Vertex) -> Vertex {
        if !self.vertices.contains_key(&v.digest) {
            self.order.push(v.digest.clone());
        }
        let merged = self
            .vertices
            .entry(v.digest.clone())
            .or_insert_with(|| Vertex { digest: v.digest.clone(), ..Default::default() });
        if !v.name.is_empty() {
            merged.name = v.name;
        }
        merged.cached |= v.cached;
        if merged.started.is_none() {
            merged.started = v.started;
        }
        if v.completed.is_some() {
            merged.completed = v.completed;
        }
        if !v.error.is_empty() {
            merged.error = v.error;
        }
        merged.clone()
    }

    fn vertex_or_new(&mut self, digest: &str) -> Vertex {
        self.vertices
            .get(digest)
            .cloned()
            .unwrap_or_else(|| Vertex { digest: digest.to_string(), ..Default::default() })
    }

    pub fn vertices(&self) -> impl Iterator<Item = &Vertex> {
        self.order.iter().filter_map(|d| self.vertices.get(d))
    }

    pub fn cache_hits(&self) -> CacheHits {
        let steps: Vec<&Vertex> =
            self.vertices().filter(|v| is_dockerfile_step(&v.name) && !is_from_step(&v.name)).collect();
        CacheHits { cached: steps.iter().filter(|v| v.cached).count(), total: steps.len() }
    }

    /// The cache-mount store ids of the RUN steps that ran, each with the milliseconds those
    /// steps took (what a store costs its steps, warm or cold).
    pub fn store_step_ms(&self) -> Vec<(String, u64)> {
        let mut out: Vec<(String, u64)> = Vec::new();
        for v in self.vertices().filter(|v| !v.cached) {
            let secs = match (&v.started, &v.completed) {
                (Some(s), Some(c)) => seconds_between(s, c).unwrap_or(0.0),
                _ => 0.0,
            };
            for id in run_step_stores(&v.name) {
                match out.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, ms)) => *ms += (secs * 1000.0) as u64,
                    None => out.push((id, (secs * 1000.0) as u64)),
                }
            }
        }
        out
    }

    /// The stores (of `wanted`) that a RUN step is starting to use for real: BuildKit reports a
    /// step served from cache as started, completed and cached at once, and one that runs as
    /// started only.
    pub fn stores_starting(&self, wanted: &[String]) -> Vec<String> {
        let running = |v: &Vertex| v.completed.is_none() && v.error.is_empty();
        self.stores_of_steps_run(running).into_iter().filter(|id| wanted.contains(id)).collect()
    }

    /// Every store of the RUN steps that began to run and did not finish (still running, or
    /// ended by the stop): each of them may hold a stopped step's partial files.
    pub fn stores_interrupted(&self) -> Vec<String> {
        self.stores_of_steps_run(|v| v.completed.is_none() || !v.error.is_empty())
    }

    /// The stores, each once, of the RUN steps that began to run for real (not from cache) and
    /// that `which` keeps.
    fn stores_of_steps_run(&self, which: impl Fn(&Vertex) -> bool) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for v in self.vertices().filter(|v| v.started.is_some() && !v.cached && which(v)) {
            for id in run_step_stores(&v.name) {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids
    }

    /// Seconds spent in RUN steps that executed on a platform other than the builder's native
    /// one (under emulation), by platform. A step's platform is in its name in multi-platform
    /// builds (`[linux/arm64 2/4] RUN …`; `[linux/amd64->arm64 …]` is a cross stage running
    /// natively), and is the one requested platform otherwise.
    pub fn emulated_run_seconds(&self, requested: &[String], native: &str) -> Vec<(String, f64)> {
        let os_arch = |p: &str| p.split('/').take(2).collect::<Vec<_>>().join("/");
        let native = os_arch(native);
        let mut out: Vec<(String, f64)> = Vec::new();
        for v in self.vertices() {
            let Some((tag, instr)) = v.name.strip_prefix('[').and_then(|r| r.split_once("] ")) else { continue };
            if !instr.starts_with("RUN ") || v.cached || !is_dockerfile_step(&v.name) {
                continue;
            }
            let first = tag.split(' ').next().unwrap_or_default();
            let platform = if first.contains("->") {
                continue;
            } else if first.contains('/')
                && first.split('/').count() >= 2
                && !first.chars().next().is_some_and(|c| c.is_ascii_digit())
            {
                first.to_string()
            } else if let [only] = requested {
                only.clone()
            } else {
                continue;
            };
            if os_arch(&platform) == native {
                continue;
            }
            let secs = match (&v.started, &v.completed) {
                (Some(s), Some(e)) => seconds_between(s, e).unwrap_or(0.0),
                _ => 0.0,
            };
            match out.iter_mut().find(|(p, _)| *p == platform) {
                Some((_, total)) => *total += secs,
                None => out.push((platform, secs)),
            }
        }
        out
    }

    /// The error of the registry cache export, when the registry refused it.
    pub fn cache_export_error(&self) -> Option<&str> {
        self.vertices()
            .find(|v| v.name.starts_with("exporting cache to registry") && !v.error.is_empty())
            .map(|v| v.error.as_str())
    }

    /// Cache imports that failed (a ref that does not exist yet is harmless).
    pub fn cache_import_errors(&self) -> Vec<(&str, &str)> {
        self.vertices()
            .filter(|v| v.name.starts_with("importing cache manifest from ") && !v.error.is_empty())
            .map(|v| (&v.name["importing cache manifest from ".len()..], v.error.as_str()))
            .collect()
    }
}

/// Reads buildx's plain stderr lines (those that are not JSON) after a failure: the
/// `Dockerfile:12` + `----` excerpt that `printError` writes, then `ERROR: …`.
pub fn build_error(lines: &[String]) -> Option<BuildError> {
    let message = lines.iter().rev().find_map(|l| l.strip_prefix("ERROR: "))?.trim().to_string();
    let location = lines.windows(2).find_map(|w| {
        if !w[1].starts_with("--------------------") {
            return None;
        }
        let (file, line) = w[0].trim().rsplit_once(':')?;
        let line: u32 = line.parse().ok()?;
        (!file.is_empty() && !file.contains(' ')).then(|| (file.to_string(), line))
    });
    Some(BuildError { message, location })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn recognises_dockerfile_steps() {
        for step in ["[2/3] RUN x", "[stage 2/5] COPY a b", "[linux/arm64 builder 1/4] RUN y", "[1/3] FROM busybox"] {
            assert!(is_dockerfile_step(step), "{step}");
        }
        for other in [
            "[internal] load build definition from Dockerfile",
            "exporting to image",
            "importing cache manifest from x",
            "[a/b] X",
            "[] x",
        ] {
            assert!(!is_dockerfile_step(other), "{other}");
        }
        assert!(is_from_step("[1/3] FROM busybox@sha256:abc"));
        assert!(!is_from_step("[2/3] RUN echo FROM x"));
    }

    #[test]
    fn the_stores_of_the_run_steps_that_ran() {
        let mut p = Progress::default();
        for line in [
            r#"{"vertexes":[{"digest":"sha256:a","name":"[stage-0 2/4] RUN --mount=type=cache,id=deps,target=/d npm ci","cached":true,"completed":"2026-01-01T00:00:01Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:b","name":"[linux/arm64 build 3/4] RUN --mount=type=cache,id=st-arm64,target=/t --mount=type=secret,id=tok cargo build","started":"2026-01-01T00:00:01.5Z","completed":"2026-01-01T00:00:09Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:c","name":"[stage-0 4/4] RUN --mount=type=cache,target=/root/.cache go build","completed":"2026-01-01T00:00:09Z"}]}"#,
            r#"{"vertexes":[{"digest":"sha256:d","name":"[stage-0 3/4] COPY --from=build /t /t","completed":"2026-01-01T00:00:09Z"}]}"#,
        ] {
            p.feed(line);
        }
        let ran = [("st-arm64".to_string(), 7500), ("/root/.cache".to_string(), 0)];
        assert_eq!(p.store_step_ms(), ran, "a cached step ran nothing; the time of those that ran");
    }

    #[test]
    fn the_stores_a_stop_left_unfinished_are_all_those_of_the_steps_it_cut_short() {
        let mut p = Progress::default();
        let t = "2026-01-01T00:00:01Z";
        for line in [
            // Cut short by the stop: still running, and cancelled (an error).
            format!(
                r#"{{"vertexes":[{{"digest":"sha256:a","name":"[stage-0 2/4] RUN --mount=type=cache,id=pnpm,target=/p --mount=type=cache,id=tools,target=/t pnpm i","started":"{t}"}}]}}"#
            ),
            format!(
                r#"{{"vertexes":[{{"digest":"sha256:b","name":"[linux/arm64 stage-0 2/4] RUN --mount=type=cache,id=pnpm-arm64,target=/p pnpm i","started":"{t}","completed":"{t}","error":"context canceled"}}]}}"#
            ),
            // Finished, from cache, or never started: nothing partial.
            format!(
                r#"{{"vertexes":[{{"digest":"sha256:c","name":"[stage-0 3/4] RUN --mount=type=cache,id=done,target=/d make","started":"{t}","completed":"{t}"}}]}}"#
            ),
            format!(
                r#"{{"vertexes":[{{"digest":"sha256:d","name":"[stage-0 1/4] RUN --mount=type=cache,id=cached,target=/c x","started":"{t}","completed":"{t}","cached":true}}]}}"#
            ),
            r#"{"vertexes":[{"digest":"sha256:e","name":"[stage-0 4/4] RUN --mount=type=cache,id=later,target=/l y"}]}"#.to_string(),
        ] {
            p.feed(&line);
        }
        assert_eq!(p.stores_interrupted(), ["pnpm", "tools", "pnpm-arm64"]);
        assert_eq!(p.stores_starting(&["tools".to_string()]), ["tools"], "what the stop is for");
    }

    #[test]
    fn merges_vertices_by_digest_and_counts_cache_hits() {
        let mut p = Progress::default();
        let lines = [
            r#"{"vertexes":[{"digest":"sha256:a","name":"[1/3] FROM busybox","started":"2026-01-01T00:00:00Z"}]}"#.to_string(),
            r#"{"vertexes":[{"digest":"sha256:a","name":"[1/3] FROM busybox","started":"2026-01-01T00:00:00Z","completed":"2026-01-01T00:00:01.5Z"}]}"#.to_string(),
            r#"{"vertexes":[{"digest":"sha256:b","name":"[2/3] RUN make","started":"2026-01-01T00:00:01Z"}]}"#.to_string(),
            format!(r#"{{"logs":[{{"vertex":"sha256:b","stream":1,"data":"{}","timestamp":"2026-01-01T00:00:01Z"}}]}}"#, b64("compiling\nlinking\n")),
            r#"{"vertexes":[{"digest":"sha256:b","name":"[2/3] RUN make","cached":true,"started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:01Z"}]}"#.to_string(),
            r#"{"vertexes":[{"digest":"sha256:c","name":"[3/3] COPY a b","started":"2026-01-01T00:00:01Z","completed":"2026-01-01T00:00:02Z"}]}"#.to_string(),
            r#"{"vertexes":[{"digest":"sha256:d","name":"exporting cache to registry","started":"2026-01-01T00:00:02Z","completed":"2026-01-01T00:00:03Z","error":"error writing layer blob: 403 Forbidden"}]}"#.to_string(),
            "#0 building with \"x\" instance".to_string(),
        ];
        let out: Vec<String> = lines.iter().flat_map(|l| p.feed(l)).collect();
        assert_eq!(
            out,
            [
                "#1 [1/3] FROM busybox",
                "#1 DONE 1.5s",
                "",
                "#2 [2/3] RUN make",
                "#2 0.000 compiling",
                "#2 0.000 linking",
                "#2 CACHED",
                "",
                "#3 [3/3] COPY a b",
                "#3 DONE 1.0s",
                "",
                "#4 exporting cache to registry",
                "#4 ERROR: error writing layer blob: 403 Forbidden",
                // buildx's error block, empty for a step that printed nothing (as in the
                // captured log-cache-export-denied-strict.txt).
                "------",
                " > exporting cache to registry:",
                "------",
                "#0 building with \"x\" instance",
            ]
        );
        assert_eq!(p.cache_hits(), CacheHits { cached: 1, total: 2 });
        assert_eq!(p.cache_export_error(), Some("error writing layer blob: 403 Forbidden"));
    }

    #[test]
    fn sums_the_time_of_emulated_run_steps() {
        let mut p = Progress::default();
        let v = |d: &str, name: &str, start: &str, end: &str, cached: bool| {
            format!(
                r#"{{"vertexes":[{{"digest":"{d}","name":"{name}","started":"2026-01-01T00:00:{start}Z","completed":"2026-01-01T00:00:{end}Z","cached":{cached}}}]}}"#
            )
        };
        for line in [
            v("a", "[linux/amd64 2/3] RUN make", "00", "02", false),
            v("b", "[linux/arm64 2/3] RUN make", "00", "20", false),
            v("c", "[linux/arm64 3/3] RUN test", "20", "25.5", false),
            v("d", "[linux/arm64 1/3] FROM x", "00", "01", false),
            v("e", "[linux/amd64->arm64 build 2/4] RUN go build", "00", "09", false),
            v("f", "[linux/arm64 4/4] RUN cached", "00", "00", true),
        ] {
            p.feed(&line);
        }
        let requested = ["linux/amd64".to_string(), "linux/arm64".to_string()];
        assert_eq!(p.emulated_run_seconds(&requested, "linux/amd64"), [("linux/arm64".to_string(), 25.5)]);
        assert!(p.emulated_run_seconds(&requested, "linux/arm64/v8").iter().all(|(pl, _)| pl == "linux/amd64"));
        let mut single = Progress::default();
        single.feed(&v("g", "[2/3] RUN make", "00", "07", false));
        assert_eq!(
            single.emulated_run_seconds(&["linux/arm64".into()], "linux/amd64"),
            [("linux/arm64".to_string(), 7.0)]
        );
        assert!(single.emulated_run_seconds(&["linux/amd64".into()], "linux/amd64").is_empty());
    }

    #[test]
    fn finds_the_dockerfile_location_of_a_failure() {
        let lines: Vec<String> = [
            "Dockerfile:12",
            "--------------------",
            "  11 |     FROM busybox",
            "  12 | >>> RUN exit 3",
            "--------------------",
            "ERROR: failed to build: failed to solve: process \"/bin/sh -c exit 3\" did not complete successfully: exit code: 3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let e = build_error(&lines).unwrap();
        assert_eq!(e.location, Some(("Dockerfile".to_string(), 12)));
        assert!(e.message.starts_with("failed to build: failed to solve: process"));
        assert_eq!(build_error(&lines[5..]).unwrap().location, None);
        assert_eq!(build_error(&[]), None);
    }

    #[test]
    fn warnings_carry_their_source_location() {
        let mut p = Progress::default();
        let line = format!(
            r#"{{"warnings":[{{"vertex":"sha256:a","level":1,"short":"{}","url":"https://docs.docker.com/go/dockerfile/rule/from-as-casing/","sourceInfo":{{"filename":"Dockerfile"}},"range":[{{"start":{{"line":1}},"end":{{"line":1}}}}]}}]}}"#,
            b64("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)")
        );
        assert_eq!(p.feed(&line), ["#1 WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)"]);
        assert_eq!(p.warnings[0].location(), Some(("Dockerfile", 1)));
    }
}
