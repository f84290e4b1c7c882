//! The build log as buildx's `--progress=plain` prints it (BuildKit's `progressui` text
//! printer), from the `rawjson` stream: a step when it starts (not when it is announced), its
//! output under it with the time since it started, its statuses with their sizes, then `DONE`
//! with its time, `CACHED`, `ERROR` or `CANCELED`. A blank line and the step's header again
//! whenever the log turns to another step, as buildx does; at the end, a failed step's last
//! output again between rulers.

use std::collections::{HashMap, HashSet, VecDeque};

use super::status::{Vertex, VertexLog, VertexStatus, seconds_between};

/// How many of a step's last output lines buildx repeats under its error (progressui's
/// `logsBufferSize`).
const ERROR_LOG_LINES: usize = 10;

#[derive(Debug, Default)]
pub struct Plain {
    /// Vertex digest → `#N`, in the order steps are first printed.
    numbers: HashMap<String, usize>,
    last: Option<String>,
    done: HashSet<String>,
    statuses_seen: HashSet<(String, String)>,
    /// Steps that ended, whose last line waits until the log turns to another step (buildx
    /// prints a batch of updates at once: statuses that come after the end still go above it,
    /// and a `cached` that comes with a later message still counts).
    pending: Vec<String>,
    latest: HashMap<String, Vertex>,
    /// Each step's last output lines, as the error block repeats them.
    recent: HashMap<String, VecDeque<String>>,
    /// Failed steps whose error block was printed.
    blocks_shown: HashSet<String>,
}

/// tonistiigi/units' `%.2f` of a byte count: `438B`, `1.98MB`.
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    match unit {
        0 => format!("{n}B"),
        _ => format!("{value:.2}{}", UNITS[unit]),
    }
}

impl Plain {
    /// `#N`, and the header when the log turns to this step (the steps that ended meanwhile
    /// get their last line first).
    fn header(&mut self, v: &Vertex, out: &mut Vec<String>) -> usize {
        if self.last.as_deref() != Some(v.digest.as_str()) {
            // This step's own last line waits for what it still shows.
            let own = self.pending.iter().position(|d| *d == v.digest).map(|i| self.pending.remove(i));
            self.flush(out);
            self.pending.extend(own);
        }
        self.switch_to(v, out)
    }

    fn switch_to(&mut self, v: &Vertex, out: &mut Vec<String>) -> usize {
        let next = self.numbers.len() + 1;
        let n = *self.numbers.entry(v.digest.clone()).or_insert(next);
        if self.last.as_deref() != Some(v.digest.as_str()) {
            // A vertex the stream never named (a warning's, say) has no header to show.
            if !v.name.is_empty() {
                if self.last.is_some() {
                    out.push(String::new());
                }
                out.push(format!("#{n} {}", v.name));
            }
            self.last = Some(v.digest.clone());
        }
        n
    }

    /// The last lines of the steps that ended, the current one first.
    pub fn flush(&mut self, out: &mut Vec<String>) {
        let mut pending = std::mem::take(&mut self.pending);
        if let Some(last) = &self.last
            && let Some(i) = pending.iter().position(|d| d == last)
        {
            let d = pending.remove(i);
            pending.insert(0, d);
        }
        for d in pending {
            if let Some(v) = self.latest.get(&d).cloned() {
                let n = self.switch_to(&v, out);
                out.push(last_line(&v, n));
            }
        }
    }

    /// A RUN step that starts gets its header at once (it may run long and print nothing);
    /// other vertices when they have something to show, as buildx's batches show them.
    pub fn started(&mut self, v: &Vertex, out: &mut Vec<String>) {
        let run_step = v.name.split_once("] ").is_some_and(|(_, instr)| instr.starts_with("RUN "));
        if v.started.is_some() && v.completed.is_none() && run_step {
            self.header(v, out);
        }
    }

    pub fn status(&mut self, v: &Vertex, s: &VertexStatus, out: &mut Vec<String>) {
        // An unfinished status is shown once it has run 5 s (buildx's minTimeDelta), then when
        // it ends.
        let running = s.started.as_deref().zip(s.timestamp.as_deref()).and_then(|(a, b)| seconds_between(a, b));
        let shown_running = s.completed.is_none() && running.is_some_and(|t| t >= 5.0);
        if s.completed.is_none() && (!shown_running || !self.statuses_seen.insert((v.digest.clone(), s.id.clone()))) {
            return;
        }
        let n = self.header(v, out);
        let bytes = match (s.total, s.current) {
            (0, 0) => String::new(),
            (0, c) => format!(" {}", bytes(c)),
            (t, c) => format!(" {} / {}", bytes(c), bytes(t)),
        };
        let end = s.completed.as_deref().or(s.timestamp.as_deref());
        let secs = s.started.as_deref().zip(end).and_then(|(a, b)| seconds_between(a, b)).unwrap_or(0.0);
        let tm = if secs > 0.01 { format!(" {secs:.1}s") } else { String::new() };
        let done = if s.completed.is_some() { " done" } else { "" };
        out.push(format!("#{n} {}{bytes}{tm}{done}", s.id));
    }

    pub fn log(&mut self, v: &Vertex, l: &VertexLog, text: &str, out: &mut Vec<String>) {
        let n = self.header(v, out);
        let since = v.started.as_deref().zip(l.timestamp.as_deref()).and_then(|(a, b)| seconds_between(a, b));
        let since = since.unwrap_or(0.0);
        // progressui: three decimals under 10 s, two under 100 s, then one.
        let precision = if since < 10.0 {
            3
        } else if since < 100.0 {
            2
        } else {
            1
        };
        let recent = self.recent.entry(v.digest.clone()).or_default();
        for line in text.lines() {
            let timed = format!("{since:.precision$} {line}");
            out.push(format!("#{n} {timed}"));
            if recent.len() == ERROR_LOG_LINES {
                recent.pop_front();
            }
            recent.push_back(timed);
        }
    }

    /// Once the steps are shown, each failed (not cancelled) step's last output again between
    /// rulers, under its name, as buildx prints it before its own error message.
    pub fn error_blocks(&mut self, order: &[String], out: &mut Vec<String>) {
        for d in order {
            let Some(v) = self.latest.get(d) else { continue };
            if v.error.is_empty() || cancelled(v) || !self.blocks_shown.insert(d.clone()) {
                continue;
            }
            out.push("------".to_string());
            out.push(format!(" > {}:", v.name));
            out.extend(self.recent.get(d).into_iter().flatten().cloned());
            out.push("------".to_string());
        }
    }

    pub fn warning(&mut self, v: &Vertex, message: &str, out: &mut Vec<String>) {
        let n = self.header(v, out);
        out.push(format!("#{n} WARN: {message}"));
    }

    /// A step that ended: its last line (`ERROR`, `CANCELED`, `CACHED` or `DONE` with its
    /// time) is printed once, when the log turns away from it or the stream ends.
    pub fn finished(&mut self, v: &Vertex) {
        let ended = !v.error.is_empty() || v.cached || v.completed.is_some();
        self.latest.insert(v.digest.clone(), v.clone());
        if ended && self.done.insert(v.digest.clone()) {
            self.pending.push(v.digest.clone());
        }
    }
}

/// A step stopped by the build's cancellation, not failed by itself.
fn cancelled(v: &Vertex) -> bool {
    v.error.ends_with("context canceled")
}

fn last_line(v: &Vertex, n: usize) -> String {
    if cancelled(v) {
        format!("#{n} CANCELED")
    } else if !v.error.is_empty() {
        format!("#{n} ERROR: {}", v.error)
    } else if v.cached {
        format!("#{n} CACHED")
    } else {
        let secs = v.started.as_deref().zip(v.completed.as_deref()).and_then(|(a, b)| seconds_between(a, b));
        format!("#{n} DONE {:.1}s", secs.unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_buildx_prints_them() {
        assert_eq!(bytes(2), "2B");
        assert_eq!(bytes(438), "438B");
        assert_eq!(bytes(1_980_000), "1.98MB");
        assert_eq!(bytes(1234), "1.23kB");
        assert_eq!(bytes(1000), "1.00kB");
    }
}
