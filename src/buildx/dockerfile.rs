//! Just enough of the Dockerfile to know whether a build runs anything *on* the target
//! platform: a stage on `$BUILDPLATFORM` (the cross-compilation pattern) runs natively, so a
//! builder without emulation for the target can still build it.

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

#[cfg(test)]
mod tests {
    use super::*;

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
