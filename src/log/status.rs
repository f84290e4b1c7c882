//! BuildKit's `SolveStatus`, one a line of buildx's `--progress=rawjson` stream, as serde reads
//! it: what the build log counts (`progress`) and prints (`render`).

use base64::Engine;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct SolveStatus {
    pub vertexes: Vec<Vertex>,
    pub statuses: Vec<VertexStatus>,
    pub logs: Vec<VertexLog>,
    pub warnings: Vec<VertexWarning>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Vertex {
    pub digest: String,
    pub name: String,
    pub started: Option<String>,
    pub completed: Option<String>,
    pub cached: bool,
    pub error: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VertexStatus {
    pub id: String,
    pub vertex: String,
    pub current: i64,
    pub total: i64,
    pub timestamp: Option<String>,
    pub started: Option<String>,
    pub completed: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct VertexLog {
    pub vertex: String,
    /// Base64, as Go marshals `[]byte`.
    pub data: String,
    pub timestamp: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct VertexWarning {
    pub vertex: String,
    pub level: i64,
    /// Base64.
    pub short: String,
    pub url: String,
    #[serde(rename = "sourceInfo")]
    pub source_info: Option<SourceInfo>,
    pub range: Vec<Range>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SourceInfo {
    pub filename: String,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Range {
    pub start: Position,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Position {
    pub line: u32,
}

impl VertexWarning {
    pub fn message(&self) -> String {
        decode(&self.short).trim().to_string()
    }
    /// `(file name as BuildKit knows it, line)`, when the warning points into the Dockerfile.
    pub fn location(&self) -> Option<(&str, u32)> {
        let file = self.source_info.as_ref()?.filename.as_str();
        let line = self.range.first()?.start.line;
        (!file.is_empty() && line > 0).then_some((file, line))
    }
}

pub(super) fn decode(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Seconds between two RFC 3339 timestamps of the same day and offset, as BuildKit writes them.
pub(super) fn seconds_between(start: &str, end: &str) -> Option<f64> {
    fn secs(t: &str) -> Option<f64> {
        let time = t.split_once('T')?.1;
        let time = time.trim_end_matches('Z');
        let time = time.split(['+', '-']).next()?;
        let mut parts = time.split(':');
        let h: f64 = parts.next()?.parse().ok()?;
        let m: f64 = parts.next()?.parse().ok()?;
        let s: f64 = parts.next()?.parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    }
    let d = secs(end)? - secs(start)?;
    Some(if d < 0.0 { d + 86400.0 } else { d })
}
