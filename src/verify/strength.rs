//! Whether a secret value can be guessed: only a value nobody can guess may key a proof that
//! sits in public beside the image (`proofs`, keyed by the value itself). Decided
//! conservatively: a value is strong when some part of it is a token in a known format or a
//! random-looking string, and that part's estimate reaches `BAR` bits. Anything else — a
//! password, a word, a phrase, a PIN, a placeholder such as `ghp_xxxx…` — is weak: its layers
//! are read on every run, as without a ledger. A strong value misjudged weak costs a read; the
//! reverse is what the estimate is built to avoid, so every rule leans towards weak.

/// The bar, in bits of the estimate. Entries are also keyed through Argon2id (`proofs`): each
/// guess of the value costs at least 2^16 times a SHA-256 (measured in the README), so a search
/// of a value at the bar needs more than 2^127 hash computations on average.
pub const BAR: f64 = 112.0;

/// What the classifier made of a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Strength {
    /// Nobody can guess it: `what` it looks like, and the estimate of its best part.
    Strong { what: &'static str, bits: f64 },
    /// It could be guessed; `why`, in words for the summary.
    Weak { why: String },
}

/// A token format issued by a service: its prefix, what it is, the alphabet of its random part
/// and how many of the body's characters are random (the rest is a checksum).
struct Format {
    prefix: &'static str,
    what: &'static str,
    alphabet: fn(u8) -> bool,
    bits_per_char: f64,
    /// Length of the body after the prefix: at least, and exactly when `exact`.
    len: usize,
    exact: bool,
    /// Characters of the body that are not random (a trailing checksum).
    checksum: usize,
}

fn base62(c: u8) -> bool {
    c.is_ascii_alphanumeric()
}

fn base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

fn fine_grained(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

const LOG2_62: f64 = 5.954_196_310_386_876;

/// GitHub's classic and npm's tokens: 30 random base62 characters and a 6-character CRC32.
const fn checksummed(prefix: &'static str, what: &'static str) -> Format {
    Format { prefix, what, alphabet: base62, bits_per_char: LOG2_62, len: 36, exact: true, checksum: 6 }
}

/// Tokens whose random part is at least `len` characters of base64url (before any `.`).
const fn url_safe(prefix: &'static str, what: &'static str, len: usize) -> Format {
    Format { prefix, what, alphabet: base64url, bits_per_char: 6.0, len, exact: false, checksum: 0 }
}

const FORMATS: &[Format] = &[
    checksummed("ghp_", "a GitHub token"),
    checksummed("gho_", "a GitHub token"),
    checksummed("ghu_", "a GitHub token"),
    checksummed("ghs_", "a GitHub token"),
    checksummed("ghr_", "a GitHub token"),
    checksummed("npm_", "an npm token"),
    // 22 + `_` + 59 characters; the last ones a checksum.
    Format {
        prefix: "github_pat_",
        what: "a GitHub fine-grained token",
        alphabet: fine_grained,
        bits_per_char: LOG2_62,
        len: 82,
        exact: false,
        checksum: 7,
    },
    url_safe("glpat-", "a GitLab token", 20),
    url_safe("gldt-", "a GitLab token", 20),
    url_safe("glrt-", "a GitLab token", 20),
    url_safe("dckr_pat_", "a Docker Hub token", 27),
];

/// Classifies a whole secret value (a token, a line, a file such as an `.npmrc`).
pub fn classify(value: &[u8]) -> Strength {
    let Ok(text) = std::str::from_utf8(value) else {
        return Strength::Weak { why: "it is not text, and binary values are not estimated".into() };
    };
    // A value is at least as hard to guess as any of its parts: the best part decides.
    let best = parts(text).map(classify_part).max_by(|a, b| a.1.total_cmp(&b.1));
    match best {
        Some((Some(what), bits)) if bits >= BAR => Strength::Strong { what, bits },
        Some((_, bits)) => Strength::Weak { why: weak_why(text, bits) },
        None => Strength::Weak { why: "it is empty".into() },
    }
}

fn weak_why(text: &str, bits: f64) -> String {
    let chars = text.trim().chars().count();
    format!(
        "a {chars}-character value that is neither a known token format nor random enough: about {bits:.0} bits by \
         this estimate, under the {BAR:.0} needed"
    )
}

/// The tokens of a value: split on white space and the separators of `KEY=value`, `key: value`,
/// quotes and lists.
fn parts(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '=' | ':' | '"' | '\'' | ',' | ';' | '`'))
        .filter(|p| !p.is_empty())
}

/// One token: what it looks like (`None`: nothing random about it) and its estimate in bits.
fn classify_part(part: &str) -> (Option<&'static str>, f64) {
    if let Some((format, body)) = FORMATS.iter().find_map(|f| Some((f, part.strip_prefix(f.prefix)?))) {
        return match format_bits(format, body) {
            Some(bits) => (Some(format.what), bits),
            None => (None, 0.0),
        };
    }
    if let Some(slack) = slack_bits(part) {
        return (Some("a Slack token"), slack);
    }
    let bits = random_bits(part.as_bytes());
    (Some("a random-looking value"), bits)
}

/// A known format's random part, if `body` has the format's shape; repeats and runs (`ghp_xxxx…`
/// placeholders) count as they would in any value.
fn format_bits(f: &Format, body: &str) -> Option<f64> {
    let random: &str = body.split('.').next().unwrap_or(body);
    let shaped = if f.exact { body.len() == f.len } else { random.len() >= f.len };
    if !shaped || !random.bytes().all(f.alphabet) {
        return None;
    }
    let counted = &random.as_bytes()[..random.len().saturating_sub(f.checksum)];
    let predictable = predictable(counted).iter().filter(|p| **p).count();
    Some((counted.len() - predictable) as f64 * f.bits_per_char + predictable as f64)
}

/// Slack's `xox?-<ids>-<secret>`: only the last segment is secret.
fn slack_bits(part: &str) -> Option<f64> {
    let rest = part.strip_prefix("xox")?;
    let kind = rest.bytes().next()?;
    if !b"abeoprs".contains(&kind) || rest.as_bytes().get(1) != Some(&b'-') {
        return None;
    }
    let secret = rest.rsplit('-').next()?;
    (secret.len() >= 24 && secret.bytes().all(base62)).then(|| random_bits(secret.as_bytes()))
}

/// An estimate for a string of unknown origin: the size of the smallest usual alphabet holding
/// it, per character, except for characters that are predictable (runs, repeats) or in a run of
/// letters long enough to be a word, which count 1 and 2 bits. Separators (`-`, `.`, `=`
/// padding) count nothing.
fn random_bits(s: &[u8]) -> f64 {
    let per_char = alphabet(s).log2();
    let predictable = predictable(s);
    let wordy = word_runs(s);
    s.iter()
        .zip(predictable.iter().zip(&wordy))
        .map(|(&c, (&p, &w))| match c {
            b'-' | b'.' | b'=' => 0.0,
            _ if p => 1.0,
            _ if w => 2.0_f64.min(per_char),
            _ => per_char,
        })
        .sum()
}

/// The smallest of the usual alphabets that holds every character of `s`.
fn alphabet(s: &[u8]) -> f64 {
    let body = || s.iter().filter(|c| !matches!(c, b'-' | b'.' | b'='));
    let (lower, upper, digit) =
        (body().any(u8::is_ascii_lowercase), body().any(u8::is_ascii_uppercase), body().any(u8::is_ascii_digit));
    let other = body().filter(|c| !c.is_ascii_alphanumeric()).count();
    if other == 0
        && (body().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
            || body().all(|c| matches!(c, b'0'..=b'9' | b'A'..=b'F')))
    {
        return if lower || upper { 16.0 } else { 10.0 };
    }
    let mut size = 0.0;
    for (present, n) in [(lower, 26.0), (upper, 26.0), (digit, 10.0)] {
        if present {
            size += n;
        }
    }
    if other > 0 {
        // `+/_` make base64; anything else is the printable set.
        size = if body().all(|c| c.is_ascii_alphanumeric() || b"+/_".contains(c)) { 64.0 } else { 94.0 };
    }
    f64::max(size, 1.0)
}

/// Per character: whether it continues a run (`aaa`, `abc`, `321`) or repeats four characters
/// seen before (`abcdabcd`, `Summer2024Summer2024`).
fn predictable(s: &[u8]) -> Vec<bool> {
    let mut out = vec![false; s.len()];
    for i in 2..s.len() {
        let (a, b, c) = (s[i - 2] as i16, s[i - 1] as i16, s[i] as i16);
        if c - b == b - a && (c - b).abs() <= 1 {
            out[i] = true;
        }
    }
    for i in 3..s.len() {
        let gram = &s[i - 3..=i];
        if s[..i].windows(4).any(|w| w == gram) {
            out[i] = true;
        }
    }
    out
}

/// Per character: whether it is in a run of letters that reads like words: four or more
/// letters, a quarter of them vowels, in words of three letters or more on average (a word
/// starts at each capital, unless all are capitals): `mysecretpassword`,
/// `ThisIsMyVeryLongPassphrase`, `PASSWORD`. In random mixed-case text, capitals come every
/// other letter. Runs in random strings that qualify count less than they are worth, which
/// only errs towards weak.
fn word_runs(s: &[u8]) -> Vec<bool> {
    let mut out = vec![false; s.len()];
    let mut start = 0;
    for i in 0..=s.len() {
        if i == s.len() || !s[i].is_ascii_alphabetic() {
            let run = &s[start..i];
            if reads_like_words(run) {
                out[start..i].iter_mut().for_each(|w| *w = true);
            }
            start = i + 1;
        }
    }
    out
}

fn reads_like_words(run: &[u8]) -> bool {
    let vowels = run.iter().filter(|c| b"aeiouy".contains(&c.to_ascii_lowercase())).count();
    let words = match run.iter().all(u8::is_ascii_uppercase) {
        true => 1,
        false => run.iter().enumerate().filter(|(i, c)| *i == 0 || c.is_ascii_uppercase()).count(),
    };
    run.len() >= 4 && vowels * 4 >= run.len() && run.len() >= 3 * words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_and_repeats_are_predictable() {
        let p = predictable(b"xaaaab");
        assert_eq!(p, [false, false, false, true, true, false]);
        let repeat = predictable(b"q7Zq7Zq7Z");
        let at: Vec<usize> = repeat.iter().enumerate().filter(|(_, p)| **p).map(|(i, _)| i).collect();
        assert_eq!(at, [6, 7, 8], "each character that ends a 4-gram seen before");
        assert_eq!(word_runs(b"ab1hello2").iter().filter(|w| **w).count(), 5);
        assert_eq!(word_runs(b"xQzkW7").iter().filter(|w| **w).count(), 0, "no vowel: not a word");
    }
}
