//! Just enough of the Dockerfile, parsed as BuildKit's frontend reads it (directives,
//! continuations, heredocs, flags, ARG scoping), to know two things: whether a build runs
//! anything *on* the target platform (a stage on `$BUILDPLATFORM` runs natively), and which
//! `RUN --mount=type=cache` stores it uses.

/// One logical instruction: keyword (upper case) and the rest, continuations joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    let mut escape = '\\';
    let mut first = true;
    while let Some(line) = lines.next() {
        let trimmed = line.trim();
        if first && trimmed.starts_with('#') {
            // Parser directives come first: `# escape=`` ` changes the continuation character.
            if let Some(v) = trimmed.trim_start_matches('#').trim().strip_prefix("escape=") {
                escape = v.trim().chars().next().unwrap_or('\\');
            }
            continue;
        }
        first = false;
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut full = trimmed.to_string();
        while full.ends_with(escape) {
            full.pop();
            match lines.next() {
                Some(next) if next.trim_start().starts_with('#') => continue,
                Some(next) => full.push_str(next.trim()),
                None => break,
            }
        }
        // A heredoc (`RUN <<EOF … EOF`) carries its body on the lines that follow.
        if let Some(pos) = full.find("<<") {
            let word: String = full[pos + 2..]
                .trim_start_matches('-')
                .trim_matches(|c| c == '"' || c == '\'')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !word.is_empty() {
                for body in lines.by_ref() {
                    if body.trim() == word {
                        break;
                    }
                }
            }
        }
        let (keyword, rest) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        out.push((keyword.to_ascii_uppercase(), rest.trim().to_string()));
    }
    out
}

/// Whether any RUN step executes on the target platform (as opposed to `$BUILDPLATFORM`).
/// Errs on the side of "yes": a stage counts even if the target does not need it.
pub fn runs_on_target_platform(text: &str) -> bool {
    let mut stages: Vec<(Option<String>, bool)> = Vec::new();
    let mut current_native = false;
    for (keyword, rest) in instructions(text) {
        match keyword.as_str() {
            "FROM" => {
                let mut native = None;
                let mut words = Vec::new();
                for w in rest.split_whitespace() {
                    if let Some(p) = w.strip_prefix("--platform=") {
                        native = Some(p.contains("BUILDPLATFORM"));
                    } else if !w.starts_with("--") {
                        words.push(w);
                    }
                }
                let base = words.first().copied().unwrap_or_default();
                let inherited = stages
                    .iter()
                    .rev()
                    .find(|(name, _)| name.as_deref() == Some(&base.to_ascii_lowercase()))
                    .map(|(_, n)| *n);
                current_native = native.or(inherited).unwrap_or(false);
                let name = match words.as_slice() {
                    [_, kw, name, ..] if kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
                    _ => None,
                };
                stages.push((name, current_native));
            }
            "RUN" if !current_native => return true,
            _ => {}
        }
    }
    false
}

/// A `RUN --mount=type=cache` store: what BuildKit keys it by and how it is shared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CacheMount {
    /// The store's identity; BuildKit defaults it to the target.
    pub id: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sharing: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// Splits a flag value as BuildKit and buildx do (CSV: commas separate, double quotes group).
pub fn csv_fields(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    out.push(field);
    out
}

/// `$NAME`, `${NAME}`, `${NAME:-word}` and `${NAME:+word}`, from `vars` (unset: empty).
pub fn expand(text: &str, vars: &std::collections::BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(body) = after.strip_prefix('{') {
            let Some(end) = body.find('}') else {
                out.push_str(&rest[pos..]);
                return out;
            };
            let inner = &body[..end];
            let value = if let Some((name, word)) = inner.split_once(":-") {
                vars.get(name).filter(|v| !v.is_empty()).cloned().unwrap_or_else(|| word.to_string())
            } else if let Some((name, word)) = inner.split_once(":+") {
                if vars.get(name).is_some_and(|v| !v.is_empty()) { word.to_string() } else { String::new() }
            } else {
                vars.get(inner).cloned().unwrap_or_default()
            };
            out.push_str(&value);
            rest = &body[end + 1..];
        } else {
            let name: String = after.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if name.is_empty() {
                out.push('$');
            } else {
                out.push_str(vars.get(&name).map(String::as_str).unwrap_or_default());
            }
            rest = &after[name.len()..];
        }
    }
    out.push_str(rest);
    out
}

/// The leading `--flag[=value]` words of an instruction (before its command).
fn flags(rest: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for word in rest.split_whitespace() {
        let Some(flag) = word.strip_prefix("--") else { break };
        let (name, value) = flag.split_once('=').unwrap_or((flag, ""));
        out.push((name.to_string(), value.to_string()));
    }
    out
}

/// Every cache mount of every RUN, with ARG values (build-args over defaults) expanded as the
/// frontend expands them: global ARGs reach a stage only when it declares them again.
/// Mounts with the same id are listed once. Platform arguments expand to nothing here: see
/// `cache_mounts_for`.
pub fn cache_mounts(text: &str, build_args: &[(String, String)]) -> Vec<CacheMount> {
    let mut mounts = Vec::new();
    collect_mounts(text, build_args, &Default::default(), None, &mut mounts);
    mounts
}

/// BuildKit's automatic platform arguments for one target platform built on `build`.
pub fn platform_args(target: &str, build: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    for (prefix, platform) in [("TARGET", target), ("BUILD", build)] {
        let mut parts = platform.split('/');
        let (os, arch, variant) = (parts.next(), parts.next(), parts.next());
        out.insert(format!("{prefix}PLATFORM"), platform.to_string());
        out.insert(format!("{prefix}OS"), os.unwrap_or_default().to_string());
        out.insert(format!("{prefix}ARCH"), arch.unwrap_or_default().to_string());
        out.insert(format!("{prefix}VARIANT"), variant.unwrap_or_default().to_string());
    }
    out
}

/// `cache_mounts` as a build of `target` (default: the last stage) for `platforms` on a `build`
/// platform sees them: only the stages that target needs (`FROM <stage>`, `COPY --from`,
/// `RUN --mount=from=`), and in a stage that declares `ARG TARGETARCH` (and the other automatic
/// platform arguments) each target platform's value, so `id=store-${TARGETARCH}` is one store
/// per platform. Each distinct expanded id is listed once.
pub fn cache_mounts_for(
    text: &str,
    build_args: &[(String, String)],
    (platforms, build): (&[&str], &str),
    target: Option<&str>,
) -> Vec<CacheMount> {
    let mut mounts = Vec::new();
    for platform in platforms {
        collect_mounts(text, build_args, &platform_args(platform, build), Some(target.unwrap_or("")), &mut mounts);
    }
    mounts
}

/// The stages of a Dockerfile and the ones each needs, to tell which a build of one target runs.
#[derive(Default)]
struct Stages {
    names: Vec<Option<String>>,
    deps: Vec<Vec<usize>>,
}

impl Stages {
    /// A `FROM [--platform=…] <image or stage> [AS <name>]`.
    fn start(&mut self, from: &str) {
        let words: Vec<&str> = from.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        let name = match words.as_slice() {
            [_, as_, name, ..] if as_.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        let base = words.first().and_then(|w| self.find(w));
        self.names.push(name);
        self.deps.push(base.into_iter().collect());
    }

    /// A stage by name, or by index where the reference is one (`COPY --from=0`).
    fn find(&self, reference: &str) -> Option<usize> {
        let r = reference.to_ascii_lowercase();
        self.names
            .iter()
            .position(|n| n.as_deref() == Some(r.as_str()))
            .or_else(|| r.parse::<usize>().ok().filter(|i| *i < self.names.len()))
    }

    /// The current stage reads from `reference` (when it is a stage, not an image).
    fn need(&mut self, reference: &str) {
        if let (Some(i), Some(deps)) = (self.find(reference), self.deps.last_mut()) {
            deps.push(i);
        }
    }

    /// Which stages a build of `target` runs (`""`: the last stage).
    fn reachable(&self, target: &str) -> Vec<bool> {
        let mut seen = vec![false; self.names.len()];
        let start = if target.is_empty() { self.names.len().checked_sub(1) } else { self.find(target) };
        let mut todo: Vec<usize> = start.into_iter().collect();
        while let Some(i) = todo.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                todo.extend(&self.deps[i]);
            }
        }
        seen
    }
}

/// A `--mount=` value's fields, keys lower-cased (`readonly` alone reads as `readonly=true`).
fn mount_fields(value: &str) -> std::collections::BTreeMap<String, String> {
    csv_fields(value)
        .into_iter()
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), v.to_string()),
            None => (f.to_ascii_lowercase(), "true".to_string()),
        })
        .collect()
}

/// The cache store a mount declares, if it is one (`id` defaults to the target).
fn cache_mount(fields: &std::collections::BTreeMap<String, String>) -> Option<CacheMount> {
    if fields.get("type").map(String::as_str) != Some("cache") {
        return None;
    }
    let target = fields.get("target").or(fields.get("dst")).or(fields.get("destination")).cloned()?;
    Some(CacheMount {
        id: fields.get("id").filter(|i| !i.is_empty()).cloned().unwrap_or_else(|| target.clone()),
        target,
        sharing: fields.get("sharing").cloned(),
        uid: fields.get("uid").cloned(),
        gid: fields.get("gid").cloned(),
        mode: fields.get("mode").cloned(),
    })
}

/// `target`: `None` lists every stage's stores; `Some("")` the last stage's needs.
fn collect_mounts(
    text: &str,
    build_args: &[(String, String)],
    automatic: &std::collections::BTreeMap<String, String>,
    target: Option<&str>,
    mounts: &mut Vec<CacheMount>,
) {
    use std::collections::BTreeMap;
    let arg = |name: &str| {
        // The automatic platform arguments are the build's own: a build-arg does not move them.
        automatic
            .get(name)
            .cloned()
            .or_else(|| build_args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    };
    let mut global: BTreeMap<String, String> = BTreeMap::new();
    let mut stage: Option<BTreeMap<String, String>> = None;
    let mut stages = Stages::default();
    let mut found: Vec<(CacheMount, usize)> = Vec::new();
    for (keyword, rest) in instructions(text) {
        match keyword.as_str() {
            "FROM" => {
                stages.start(&expand(&rest, &global));
                stage = Some(BTreeMap::new());
            }
            "COPY" | "ADD" => {
                let vars = stage.clone().unwrap_or_default();
                for (_, value) in flags(&rest).into_iter().filter(|(n, _)| n == "from") {
                    stages.need(&expand(&value, &vars));
                }
            }
            "ARG" => {
                for decl in rest.split_whitespace() {
                    let (name, default) = match decl.split_once('=') {
                        Some((n, d)) => (n.to_string(), Some(d.trim_matches('"').to_string())),
                        None => (decl.to_string(), None),
                    };
                    match stage.as_mut() {
                        None => {
                            let value = arg(&name).or(default).unwrap_or_default();
                            global.insert(name, value);
                        }
                        Some(vars) => {
                            let value = arg(&name).or(default).or_else(|| global.get(&name).cloned());
                            if let Some(v) = value {
                                vars.insert(name, v);
                            }
                        }
                    }
                }
            }
            "RUN" => {
                let vars = stage.clone().unwrap_or_default();
                for (_, value) in flags(&rest).into_iter().filter(|(n, _)| n == "mount") {
                    let fields = mount_fields(&expand(&value, &vars));
                    if let Some(from) = fields.get("from") {
                        stages.need(from);
                    }
                    if let Some(mount) = cache_mount(&fields) {
                        found.push((mount, stages.names.len().saturating_sub(1)));
                    }
                }
            }
            _ => {}
        }
    }
    let reachable = target.map(|t| stages.reachable(t));
    for (mount, stage) in found {
        let needed = reachable.as_ref().is_none_or(|r| r.get(stage).copied().unwrap_or(false));
        if needed && !mounts.iter().any(|m| m.id == mount.id) {
            mounts.push(mount);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(text: &str, args: &[(&str, &str)]) -> Vec<String> {
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        cache_mounts(text, &args).into_iter().map(|m| m.id).collect()
    }

    fn ids_for(text: &str, args: &[(&str, &str)], platforms: &[&str]) -> Vec<String> {
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        cache_mounts_for(text, &args, (platforms, "linux/amd64"), None).into_iter().map(|m| m.id).collect()
    }

    #[test]
    fn platform_arguments_expand_per_platform_where_a_stage_declares_them() {
        // This project's own pattern: a $BUILDPLATFORM stage, one store per target arch.
        let ours = "FROM --platform=$BUILDPLATFORM rust AS build\nARG TARGETARCH\nRUN --mount=type=cache,id=st-${TARGETARCH},target=/t cargo build\n";
        assert_eq!(ids_for(ours, &[], &["linux/amd64", "linux/arm64"]), ["st-amd64", "st-arm64"]);
        assert_eq!(
            ids_for(ours, &[], &["linux/amd64", "linux/arm64", "linux/arm/v7"]),
            ["st-amd64", "st-arm64", "st-arm"]
        );
        // Each automatic argument.
        let all = "FROM x\nARG TARGETPLATFORM TARGETOS TARGETARCH TARGETVARIANT BUILDPLATFORM BUILDOS BUILDARCH BUILDVARIANT\nRUN --mount=type=cache,id=$TARGETPLATFORM|$TARGETOS|$TARGETARCH|$TARGETVARIANT|$BUILDPLATFORM|$BUILDOS|$BUILDARCH|$BUILDVARIANT,target=/c x\n";
        assert_eq!(ids_for(all, &[], &["linux/arm/v7"]), ["linux/arm/v7|linux|arm|v7|linux/amd64|linux|amd64|"]);
        // A stage that does not declare it sees nothing, as the frontend does.
        let undeclared = "FROM x\nRUN --mount=type=cache,id=st-${TARGETARCH},target=/t y\n";
        assert_eq!(ids_for(undeclared, &[], &["linux/amd64", "linux/arm64"]), ["st-"]);
        // Beside an ordinary ARG, and with a build-arg that cannot move the platform.
        let mixed = "ARG TOOL=pnpm\nFROM x\nARG TOOL\nARG TARGETARCH\nRUN --mount=type=cache,id=${TOOL}-${TARGETARCH},target=/s z\n";
        assert_eq!(
            ids_for(mixed, &[("TOOL", "npm"), ("TARGETARCH", "sparc")], &["linux/amd64", "linux/arm64"]),
            ["npm-amd64", "npm-arm64"]
        );
        // A store whose id does not depend on the platform is listed once.
        let plain = "FROM x\nARG TARGETARCH\nRUN --mount=type=cache,id=shared,target=/s z\n";
        assert_eq!(ids_for(plain, &[], &["linux/amd64", "linux/arm64"]), ["shared"]);
    }

    fn ids_of_target(text: &str, target: Option<&str>) -> Vec<String> {
        cache_mounts_for(text, &[], (&["linux/amd64"], "linux/amd64"), target).into_iter().map(|m| m.id).collect()
    }

    #[test]
    fn only_the_stores_of_stages_the_target_needs() {
        let text = "FROM node AS deps\nRUN --mount=type=cache,id=npm,target=/n npm ci\n\nFROM golang AS tools\nRUN --mount=type=cache,id=go,target=/g go build\n\nFROM rust AS unused\nRUN --mount=type=cache,id=cargo,target=/c cargo build\n\nFROM deps AS web\nRUN --mount=type=bind,from=tools,source=/x,target=/x --mount=type=cache,id=web,target=/w build\n\nFROM alpine AS test\nCOPY --from=0 /n /n\nRUN --mount=type=cache,id=test,target=/t test\n\nFROM alpine\nCOPY --from=web /w /w\n";
        // The last stage needs web, which is FROM deps and mounts from tools; never unused or test.
        assert_eq!(ids_of_target(text, None), ["npm", "go", "web"]);
        // A target reaches what it needs, by name (any case) or through COPY --from=<index>.
        assert_eq!(ids_of_target(text, Some("TEST")), ["npm", "test"]);
        assert_eq!(ids_of_target(text, Some("unused")), ["cargo"]);
        // Every stage's stores, when nothing is asked of a target.
        assert_eq!(ids(text, &[]), ["npm", "go", "cargo", "web", "test"]);
    }

    #[test]
    fn cache_mounts_of_a_pnpm_build() {
        let text = "# syntax=docker/dockerfile:1\nFROM node:22 AS deps\nRUN --mount=type=cache,id=pnpm-store,target=/pnpm/store \\\n    --mount=type=secret,id=npm_token,env=NPM_TOKEN \\\n    pnpm install --frozen-lockfile\n";
        let mounts = cache_mounts(text, &[]);
        assert_eq!(
            mounts,
            [CacheMount {
                id: "pnpm-store".into(),
                target: "/pnpm/store".into(),
                sharing: None,
                uid: None,
                gid: None,
                mode: None
            }]
        );
    }

    #[test]
    fn the_id_defaults_to_the_target_and_options_are_kept() {
        let text = "FROM golang:1.23\nRUN --mount=type=cache,target=/root/.cache/go-build --mount=type=cache,id=gomod,target=/go/pkg/mod,sharing=locked,uid=1000,gid=1000,mode=0755 go build ./...\nRUN --mount=type=bind,source=.,target=/src --mount=type=tmpfs,target=/tmp true\n";
        let mounts = cache_mounts(text, &[]);
        assert_eq!(mounts.len(), 2);
        assert_eq!(mounts[0].id, "/root/.cache/go-build");
        assert_eq!(mounts[1].id, "gomod");
        assert_eq!(mounts[1].sharing.as_deref(), Some("locked"));
        assert_eq!(
            (mounts[1].uid.as_deref(), mounts[1].gid.as_deref(), mounts[1].mode.as_deref()),
            (Some("1000"), Some("1000"), Some("0755"))
        );
    }

    #[test]
    fn heredocs_json_form_and_dst_spelling() {
        let text = "FROM alpine\nRUN --mount=type=cache,dst=/var/cache/apk <<EOF\nRUN --mount=type=cache,id=not-a-mount,target=/x echo\napk add curl\nEOF\nRUN --mount=type=cache,destination=/root/.npm [\"npm\", \"ci\"]\n";
        assert_eq!(ids(text, &[]), ["/var/cache/apk", "/root/.npm"]);
    }

    #[test]
    fn arg_expansion_in_ids() {
        let text = "ARG STORE=pnpm-store\nFROM node:22\nARG STORE\nARG VARIANT=ci\nRUN --mount=type=cache,id=${STORE}-$VARIANT,target=/pnpm/store pnpm i\nRUN --mount=type=cache,id=${MISSING:-fallback},target=/f true\n";
        assert_eq!(ids(text, &[]), ["pnpm-store-ci", "fallback"]);
        assert_eq!(ids(text, &[("STORE", "store2")]), ["store2-ci", "fallback"], "build-args win");
        let not_redeclared =
            "ARG STORE=pnpm-store\nFROM node:22\nRUN --mount=type=cache,id=x-${STORE},target=/s true\n";
        assert_eq!(ids(not_redeclared, &[]), ["x-"], "a global ARG is not visible until the stage declares it");
    }

    #[test]
    fn one_store_used_twice_is_listed_once_and_quotes_group() {
        let text = "FROM a AS one\nRUN --mount=type=cache,id=shared,target=/c x\nFROM b\nRUN --mount=type=cache,id=shared,target=/d y\nRUN --mount=type=cache,\"target=/a,b\",id=q z\n";
        assert_eq!(ids(text, &[]), ["shared", "q"]);
        assert_eq!(cache_mounts(text, &[])[1].target, "/a,b", "a quoted CSV field keeps its comma");
    }

    #[test]
    fn expansion_forms() {
        let vars: std::collections::BTreeMap<String, String> =
            [("A".to_string(), "1".to_string())].into_iter().collect();
        assert_eq!(expand("$A-${A}-${B:-d}-${A:+set}-${B:+no}-$-x", &vars), "1-1-d-set--$-x");
    }

    #[test]
    fn cross_compilation_needs_no_emulation() {
        let text = "# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM golang:1 AS build\nARG TARGETARCH\nRUN GOARCH=$TARGETARCH \\\n    go build -o /app .\n\nFROM scratch\nCOPY --from=build /app /app\n";
        assert!(!runs_on_target_platform(text));
    }

    #[test]
    fn a_run_in_a_target_stage_needs_it() {
        assert!(runs_on_target_platform("FROM alpine\nRUN apk add curl\n"));
        let inherits = "FROM --platform=${BUILDPLATFORM} alpine AS base\nFROM base AS tools\nRUN echo native\nFROM alpine\nRUN echo target\n";
        assert!(runs_on_target_platform(inherits));
        let only_native = "FROM --platform=${BUILDPLATFORM} alpine AS base\nFROM base AS tools\nRUN echo native\nFROM alpine\nCOPY --from=tools /x /x\n";
        assert!(!runs_on_target_platform(only_native));
    }

    #[test]
    fn heredocs_comments_and_escapes_do_not_confuse_it() {
        let heredoc = "FROM --platform=$BUILDPLATFORM alpine AS b\nRUN <<EOF\nFROM alpine\nRUN x\nEOF\nFROM scratch\nCOPY --from=b /a /a\n";
        assert!(!runs_on_target_platform(heredoc));
        let escaped = "# escape=`\nFROM --platform=$BUILDPLATFORM alpine AS b\nRUN echo a `\n  b\nFROM scratch\n# RUN commented out\nCOPY --from=b /a /a\n";
        assert!(!runs_on_target_platform(escaped));
        assert!(runs_on_target_platform("from alpine\nrun true\n"), "keywords are case-insensitive");
    }
}
