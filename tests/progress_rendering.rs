//! The build log the action prints, against buildx's own plain rendering of the same build: a
//! build's live `rawjson` stream (captured from buildx 0.36.1 + BuildKit 0.32.2, in
//! `tests/fixtures/buildx/render`) and `docker buildx history logs --progress plain` of that very
//! build. Where buildx's printer batches updates in time windows the two may interleave a few
//! internal vertices differently; what a reader relies on is checked here.

use std::path::PathBuf;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/buildx/render").join(name))
        .unwrap()
}

fn rendered(raw: &str) -> Vec<String> {
    let mut p = sdi::log::progress::Progress::default();
    let mut lines: Vec<String> = raw.lines().flat_map(|l| p.feed(l)).collect();
    lines.extend(p.finish());
    lines
}

/// The Dockerfile steps' headers (`[2/4] RUN …`), in the order printed, each once.
fn steps(lines: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in lines {
        let Some((_, name)) = l.split_once(' ') else { continue };
        if name.starts_with('[') && !name.starts_with("[internal]") && !out.contains(&name.to_string()) {
            out.push(name.to_string());
        }
    }
    out
}

#[test]
fn steps_are_shown_as_they_run_with_their_sizes_output_and_ends_as_buildx_shows_them() {
    let ours = rendered(&fixture("simple.rawjson"));
    let buildx: Vec<String> = fixture("simple.history.plain").lines().map(str::to_string).collect();
    let text = ours.join("\n");
    // Each step when it starts, in the Dockerfile's order (not all announced up front).
    assert_eq!(steps(&ours), steps(&buildx), "{text}");
    // Sizes kept, as buildx prints them.
    assert!(ours.contains(&"#1 transferring dockerfile: 195B done".to_string()), "{text}");
    assert!(ours.iter().any(|l| l.ends_with("transferring context: 40B done")), "{text}");
    // A RUN step: its header, its output with the time since it started, then DONE with its time.
    let run =
        ours.iter().rposition(|l| l.ends_with("[2/4] RUN echo step-one && sleep 1 && echo one > /one.txt")).unwrap();
    let n = ours[run].split(' ').next().unwrap().to_string();
    let block: Vec<&String> = ours[run..].iter().take_while(|l| !l.is_empty()).collect();
    let log = regex::Regex::new(&format!(r"^{n} \d+\.\d{{3}} step-one$")).unwrap();
    assert!(block.iter().any(|l| log.is_match(l)), "{block:?}");
    assert!(regex::Regex::new(&format!(r"^{n} DONE 1\.\ds$")).unwrap().is_match(block.last().unwrap()), "{block:?}");
    // Every Dockerfile step ends once, after its header.
    for step in steps(&ours) {
        let header = ours.iter().position(|l| l.ends_with(&step)).unwrap();
        let n = ours[header].split(' ').next().unwrap();
        let ends: Vec<usize> = (0..ours.len())
            .filter(|&i| ours[i] == format!("{n} CACHED") || ours[i].starts_with(&format!("{n} DONE ")))
            .collect();
        assert_eq!(ends.len(), 1, "{step}: {text}");
        assert!(ends[0] > header, "{step}: {text}");
    }
}

#[test]
fn a_failed_build_reads_line_for_line_as_buildx_prints_it() {
    // A rebuild whose first RUN step comes from cache and whose second fails, printing to
    // stdout and stderr: captured as rawjson, and as buildx renders that very build.
    let ours = rendered(&fixture("failed.rawjson"));
    let text = ours.join("\n");
    // buildx's own messages follow the progress in the stream; they pass through after it.
    let end = ours.iter().position(|l| l.starts_with("WARNING: No output specified")).expect(&text);
    assert!(ours[end..].iter().any(|l| l.starts_with("ERROR: failed to build: failed to solve: process")), "{text}");
    // `history logs` leaves out the statuses of `load .dockerignore`, which buildx prints live
    // (failed.live.plain: the same Dockerfile built with --progress=plain).
    let dockerignore = "#3 transferring context: 2B done";
    assert!(fixture("failed.live.plain").lines().any(|l| l == dockerignore));
    let progress: Vec<&str> = ours[..end].iter().map(String::as_str).filter(|l| *l != dockerignore).collect();
    let buildx = fixture("failed.history.plain");
    assert_eq!(progress, buildx.lines().collect::<Vec<_>>(), "{text}");
}
