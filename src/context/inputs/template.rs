//! The handlebars expressions metadata-action evaluates in `tags`, `flavor`, `labels` and
//! `annotations` (`{{branch}}`, `{{date 'YYYYMMDD' tz='Asia/Tokyo'}}`, `{{version}}`…), parsed
//! once here so that a malformed one is an input error before anything runs. Only what
//! handlebars does with such a template is kept: text, `{{…}}` (HTML-escaped, as handlebars
//! escapes it), `{{{…}}}` (not escaped), `\{{` (a literal `{{`) and comments. Block helpers
//! (`{{#if}}`) are refused: metadata-action offers no value to test with them.

/// One `{{name 'param' key='value'}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub name: String,
    /// String or number literals; `None` for a name, which handlebars looks up in the data
    /// (metadata-action's data has none a helper could take, so it is undefined).
    pub params: Vec<Option<String>>,
    pub hash: Vec<(String, String)>,
    /// `{{{…}}}`: rendered as is.
    pub raw: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Expr(Expr),
}

/// A parsed template. `source` is kept for messages and for `plan` to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub source: String,
    pub parts: Vec<Part>,
}

impl Template {
    pub fn parse(source: &str) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(at) = rest.find("{{") {
            if rest[..at].ends_with('\\') {
                text.push_str(&rest[..at - 1]);
                text.push_str("{{");
                rest = &rest[at + 2..];
                continue;
            }
            text.push_str(&rest[..at]);
            let raw = rest[at..].starts_with("{{{");
            let (open, close) = if raw { (3, "}}}") } else { (2, "}}") };
            let body_start = at + open;
            let Some(len) = rest[body_start..].find(close) else {
                return Err(format!("'{source}' has a '{{{{' that is never closed"));
            };
            let body = &rest[body_start..body_start + len];
            rest = &rest[body_start + len + close.len()..];
            let body = body.trim_start_matches('~').trim_end_matches('~').trim();
            if body.starts_with('!') {
                continue;
            }
            if body.starts_with(['#', '/', '^', '>', '&', '*']) || body.starts_with("else") {
                return Err(format!(
                    "'{source}': block helpers and partials ({{{{{body}}}}}) are not supported; use the expressions of metadata-action's README"
                ));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(Part::Expr(expr(body, raw).map_err(|e| format!("'{source}': {e}"))?));
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { source: source.to_string(), parts })
    }

    /// `{{raw}}` alone: metadata-action keeps a prerelease's raw text for such a pattern.
    pub fn is_raw_statement(&self) -> bool {
        matches!(self.parts.as_slice(), [Part::Expr(e)] if e.name == "raw" && e.params.is_empty() && e.hash.is_empty())
    }

    /// Whether an expression of this name appears (`commit_date`: the API may be asked for it).
    pub fn uses(&self, name: &str) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Expr(e) if e.name == name))
    }

    /// Renders with `lookup`, which answers a name (with its params and hash) or `None` for a
    /// name it does not know (rendered empty, as handlebars renders a missing value).
    pub fn render(&self, lookup: &dyn Fn(&Expr) -> Result<Option<String>, String>) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => {
                    let value = lookup(e)?;
                    if value.is_none() && (!e.params.is_empty() || !e.hash.is_empty()) {
                        return Err(format!("'{}': missing helper: \"{}\"", self.source, e.name));
                    }
                    let value = value.unwrap_or_default();
                    if e.raw { out.push_str(&value) } else { out.push_str(&escape(&value)) }
                }
            }
        }
        Ok(out)
    }
}

/// Handlebars' `escapeExpression`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            '`' => out.push_str("&#x60;"),
            '=' => out.push_str("&#x3D;"),
            _ => out.push(c),
        }
    }
    out
}

/// `name param… key=value…`; params are string literals, numbers or names.
fn expr(body: &str, raw: bool) -> Result<Expr, String> {
    let tokens = tokens(body)?;
    let mut iter = tokens.into_iter();
    let Some(Token::Word(name)) = iter.next() else {
        return Err("an expression must start with a name, such as {{branch}}".into());
    };
    let name = name.strip_prefix("this.").unwrap_or(&name).to_string();
    let mut e = Expr { name, params: Vec::new(), hash: Vec::new(), raw };
    for token in iter {
        match token {
            Token::Pair(k, v) => e.hash.push((k, v)),
            Token::Literal(w) if e.hash.is_empty() => e.params.push(Some(w)),
            Token::Word(w) if e.hash.is_empty() => {
                e.params.push(w.parse::<f64>().is_ok().then_some(w));
            }
            _ => return Err("positional parameters must come before key=value ones".into()),
        }
    }
    Ok(e)
}

enum Token {
    Word(String),
    Literal(String),
    Pair(String, String),
}

fn tokens(body: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = body.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&c) = chars.peek() else { return Ok(out) };
        if c == '\'' || c == '"' {
            chars.next();
            out.push(Token::Literal(literal(&mut chars, c)?));
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                break;
            }
            word.push(c);
            chars.next();
        }
        if chars.peek() == Some(&'=') {
            chars.next();
            let value = match chars.peek() {
                Some(&q) if q == '\'' || q == '"' => {
                    chars.next();
                    literal(&mut chars, q)?
                }
                _ => {
                    let mut v = String::new();
                    while let Some(&c) = chars.peek().filter(|c| !c.is_whitespace()) {
                        v.push(c);
                        chars.next();
                    }
                    v
                }
            };
            out.push(Token::Pair(word, value));
        } else if word.is_empty() {
            return Err(format!("unexpected '{c}'"));
        } else {
            out.push(Token::Word(word));
        }
    }
}

fn literal(chars: &mut std::iter::Peekable<std::str::Chars>, quote: char) -> Result<String, String> {
    let mut s = String::new();
    for c in chars.by_ref() {
        if c == quote {
            return Ok(s);
        }
        s.push(c);
    }
    Err(format!("a string starting with {quote} is never closed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str) -> String {
        Template::parse(t)
            .unwrap()
            .render(&|e| {
                Ok(match e.name.as_str() {
                    "branch" => Some("main".into()),
                    "date" => Some(format!("{:?}{:?}", e.params, e.hash)),
                    "amp" => Some("a&b".into()),
                    _ => None,
                })
            })
            .unwrap()
    }

    #[test]
    fn renders_like_handlebars() {
        assert_eq!(render("x-{{branch}}-{{ branch }}"), "x-main-main");
        assert_eq!(render("{{unknown}}y"), "y");
        assert_eq!(render("\\{{branch}}"), "{{branch}}");
        assert_eq!(render("{{! a comment }}z"), "z");
        assert_eq!(render("{{amp}}|{{{amp}}}"), "a&amp;b|a&b");
        assert_eq!(render("{{{date 'YYYY MM' tz=\"Asia/Tokyo\"}}}"), "[Some(\"YYYY MM\")][(\"tz\", \"Asia/Tokyo\")]");
        assert_eq!(render("{{{date YYYY-MM}}}"), "[None][]");
    }

    #[test]
    fn knows_which_expressions_it_uses() {
        let t = Template::parse("v{{commit_date 'YYYYMMDD'}}-\\{{branch}}{{! commit_date }}").unwrap();
        assert!(t.uses("commit_date"));
        assert!(!t.uses("branch"), "an escaped {{{{ is text");
        assert!(!Template::parse("commit_date-{{date 'YYYY'}}").unwrap().uses("commit_date"));
    }

    #[test]
    fn refuses_what_handlebars_would_refuse() {
        assert!(Template::parse("{{branch").is_err());
        assert!(Template::parse("{{#if x}}y{{/if}}").is_err());
        assert!(Template::parse("{{date 'YYYY}}").is_err());
        let t = Template::parse("{{nothere 'x'}}").unwrap();
        assert!(t.render(&|_| Ok(None)).unwrap_err().contains("missing helper"));
    }

    #[test]
    fn raw_statements() {
        // metadata-action's own isRawStatement cases.
        for (pattern, raw) in [
            ("{{ raw }}.{{ version }}", false),
            ("{{ version }},{{raw }.", false),
            ("{{ raw }}", true),
            ("{{ raw}}", true),
            ("{{raw}}", true),
        ] {
            let is_raw = Template::parse(pattern).map(|t| t.is_raw_statement()).unwrap_or(false);
            assert_eq!(is_raw, raw, "{pattern}");
        }
    }
}
