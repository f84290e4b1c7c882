//! `labels` and `annotations`: metadata-action's `key=value` lines (expressions allowed),
//! parsed once; an annotation line with a level goes to buildx as written.

use super::super::InputError;
use super::fields::{self, err, value};
use super::{Annotations, Template, csv};

/// `labels`: one template a line (comments and blank lines dropped, as metadata-action reads them).
pub(super) fn templates(input: &str, raw: &Option<String>) -> Result<Vec<Template>, InputError> {
    csv::entries(value(raw).unwrap_or_default())
        .iter()
        .map(|line| Template::parse(line).map_err(|e| err(input, e)))
        .collect()
}

/// `annotations`: `key=value` lines join metadata-action's defaults; lines with a level
/// (`manifest:key=value`, `index:…`, `manifest[linux/amd64]:…`) go to buildx as written.
pub(super) fn annotations(raw: &Option<String>) -> Result<Annotations, InputError> {
    let mut out = Annotations::default();
    for (n, line) in fields::lines(raw) {
        let key = line.split_once('=').map_or(line, |(k, _)| k);
        match key.split_once(':') {
            Some((level, _)) => {
                let base = level.split_once('[').map_or(level, |(b, _)| b);
                if !["manifest", "index", "manifest-descriptor", "index-descriptor"].contains(&base)
                    || !line.contains('=')
                {
                    return Err(err(
                        "annotations",
                        format!(
                            "line {n}: '{level}' is not a level (manifest, index, manifest-descriptor, index-descriptor), or the line has no '='"
                        ),
                    ));
                }
                out.levelled.push(line.to_string());
            }
            None => out.unlevelled.push(Template::parse(line).map_err(|e| err("annotations", e))?),
        }
    }
    Ok(out)
}
