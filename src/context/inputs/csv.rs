//! The two CSV readings metadata-action puts a list input through, so that quotes, commas and
//! `#` mean what they mean there: `@docker/actions-toolkit`'s `getList` (lenient quotes, `#`
//! starts a comment anywhere outside quotes, a line's fields joined again with `,`), then
//! `csv-parse` on each entry (strict quotes) to split its `key=value` fields.

/// One record: its fields, with whole-field quotes removed (`""` inside is one `"`).
/// `relax`: a quote inside an unquoted field is kept as text; otherwise it is an error.
/// `comment`: `#` outside quotes ends the record.
pub(super) fn record(line: &str, relax: bool, comment: bool) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut at_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_start => {
                at_start = false;
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => field.push(c),
                        None => return Err(format!("a quote in '{line}' is never closed")),
                    }
                }
                if !relax && chars.peek().is_some_and(|c| *c != ',') {
                    return Err(format!("'{line}' has text after a closing quote"));
                }
            }
            '"' if !relax => {
                return Err(format!("'{line}' has a quote inside a field: quote the whole field, as in \"value=a,b\""));
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                at_start = true;
            }
            '#' if comment => break,
            c => {
                field.push(c);
                at_start = false;
            }
        }
    }
    fields.push(field);
    Ok(fields)
}

/// One entry a line, as `Util.getInputList(name, {ignoreComma: true, comment: '#'})` gives
/// them: `#` outside quotes starts a comment, blank entries are dropped, each is trimmed. Unlike
/// `getList`, quotes are kept for the second reading, so that a quoted field keeps its commas
/// (`type=match,"pattern=\d{1,3}"`): what metadata-action documents and tests, where its own
/// first reading drops the quotes and splits the pattern.
pub(super) fn entries(raw: &str) -> Vec<String> {
    raw.lines().map(|line| without_comment(line).trim().to_string()).filter(|e| !e.is_empty()).collect()
}

fn without_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            _ => {}
        }
    }
    line
}

/// An entry's `key=value` fields, split at the first `=` and trimmed (`None` key: a bare value).
pub(super) fn attributes(entry: &str) -> Result<Vec<(Option<String>, String)>, String> {
    Ok(record(entry, false, false)?
        .into_iter()
        .filter(|f| !f.trim().is_empty())
        .map(|f| match f.split_once('=') {
            Some((k, v)) => (Some(k.trim().to_ascii_lowercase()), v.trim().to_string()),
            None => (None, f.trim().to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_as_metadata_action_reads() {
        // Comments as actions-toolkit 0.68 + csv-parse 6 read them (metadata-action v5.10.0's).
        assert_eq!(entries("type=raw,value=a#b\n# a comment\n\n  type=sha  "), ["type=raw,value=a", "type=sha"]);
        assert_eq!(entries("type=raw,\"value=x,y#z\" # comment"), ["type=raw,\"value=x,y#z\""]);
        assert_eq!(
            attributes("type=raw,\"value=x,y#z\"").unwrap(),
            [(Some("type".into()), "raw".into()), (Some("value".into()), "x,y#z".into())]
        );
        assert_eq!(
            attributes("type=raw,value=x,y").unwrap(),
            [(Some("type".into()), "raw".into()), (Some("value".into()), "x".into()), (None, "y".into())]
        );
        assert_eq!(attributes("value=a=b").unwrap(), [(Some("value".into()), "a=b".into())]);
        assert!(attributes("value=a\"b").is_err());
        assert_eq!(attributes("\"value=a,b\"").unwrap(), [(Some("value".into()), "a,b".into())]);
    }
}
