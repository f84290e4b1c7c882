//! Semver and PEP 440 versions as metadata-action reads them: npm's `semver` (strict parse, a
//! lowercase `v` allowed) and `@renovate/pep440` (its pattern, normalisation and quirks).

/// `semver.parse(v, {loose: true})` of a `semver.valid(v)` version: the fields a pattern
/// such as `{{major}}.{{minor}}` can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Semver {
    pub raw: String,
    pub major: u64,
    pub minor: u64,
    pub patch: u64,
    pub prerelease: Vec<String>,
    pub build: Vec<String>,
}

impl Semver {
    pub fn parse(raw: &str) -> Option<Semver> {
        let trimmed = raw.trim();
        let bare = trimmed.strip_prefix('v').unwrap_or(trimmed);
        let v = semver::Version::parse(bare).ok()?;
        // npm's numbers stop at Number.MAX_SAFE_INTEGER.
        if [v.major, v.minor, v.patch].iter().any(|n| *n > (1 << 53) - 1) {
            return None;
        }
        let split = |s: &str| if s.is_empty() { Vec::new() } else { s.split('.').map(str::to_string).collect() };
        Some(Semver {
            raw: raw.to_string(),
            major: v.major,
            minor: v.minor,
            patch: v.patch,
            prerelease: split(v.pre.as_str()),
            build: split(v.build.as_str()),
        })
    }

    /// `major.minor.patch[-prerelease]`: npm's `version` (no build metadata).
    pub fn version(&self) -> String {
        let mut v = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if !self.prerelease.is_empty() {
            v.push('-');
            v.push_str(&self.prerelease.join("."));
        }
        v
    }

    /// A field by name, as handlebars renders it (arrays joined with `,`).
    pub fn field(&self, name: &str) -> Option<String> {
        Some(match name {
            "raw" => self.raw.clone(),
            "version" => self.version(),
            "major" => self.major.to_string(),
            "minor" => self.minor.to_string(),
            "patch" => self.patch.to_string(),
            "prerelease" => self.prerelease.join(","),
            "build" => self.build.join(","),
            "loose" => "true".into(),
            _ => return None,
        })
    }
}

/// A PEP 440 version, parsed by `@renovate/pep440`'s pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pep440 {
    epoch: u64,
    pub release: Vec<u64>,
    pre: Option<(String, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    /// Local segment parts (numbers lose leading zeros, words are lowercased).
    local: Option<Vec<String>>,
}

fn pep440_regex() -> &'static regex::Regex {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(concat!(
            r"(?i)^v?(?:(?:(?P<epoch>[0-9]+)!)?(?P<release>[0-9]+(?:\.[0-9]+)*)",
            r"(?P<pre>[-_\.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_\.]?(?P<pre_n>[0-9]+)?)?",
            r"(?P<post>(?:-(?P<post_n1>[0-9]+))|(?:[-_\.]?(?P<post_l>post|rev|r)[-_\.]?(?P<post_n2>[0-9]+)?))?",
            r"(?P<dev>[-_\.]?(?P<dev_l>dev)[-_\.]?(?P<dev_n>[0-9]+)?)?)",
            r"(?:\+(?P<local>[a-z0-9]+(?:[-_\.][a-z0-9]+)*))?$"
        ))
        .expect("the PEP 440 pattern compiles")
    })
}

impl Pep440 {
    /// `pep440.valid`: the whole text must match (no surrounding spaces).
    pub fn parse(text: &str) -> Option<Pep440> {
        let c = pep440_regex().captures(text)?;
        let num = |name: &str| c.name(name).map(|m| m.as_str().parse::<u64>().unwrap_or(u64::MAX));
        let pre = c.name("pre_l").map(|l| {
            let letter = match l.as_str().to_ascii_lowercase().as_str() {
                "alpha" => "a".to_string(),
                "beta" => "b".to_string(),
                "c" | "pre" | "preview" => "rc".to_string(),
                other => other.to_string(),
            };
            (letter, num("pre_n").unwrap_or(0))
        });
        let post = (c.name("post_l").is_some() || c.name("post_n1").is_some())
            .then(|| num("post_n1").or(num("post_n2")).unwrap_or(0));
        let local = c.name("local").map(|l| {
            l.as_str()
                .split(['.', '_', '-'])
                .map(|p| match p.parse::<u64>() {
                    Ok(n) => n.to_string(),
                    Err(_) => p.to_ascii_lowercase(),
                })
                .collect()
        });
        Some(Pep440 {
            epoch: num("epoch").unwrap_or(0),
            release: c["release"].split('.').map(|n| n.parse().unwrap_or(u64::MAX)).collect(),
            pre,
            post,
            dev: c.name("dev_l").map(|_| num("dev_n").unwrap_or(0)),
            local,
        })
    }

    pub fn is_pre_post_or_dev(&self) -> bool {
        self.pre.is_some() || self.post.is_some() || self.dev.is_some()
    }

    /// `pep440.clean`: the normalised spelling. The local segment is joined with `,`, as
    /// `@renovate/pep440` joins it (an array in a template string).
    pub fn clean(&self) -> String {
        let mut out = String::new();
        if self.epoch != 0 {
            out.push_str(&format!("{}!", self.epoch));
        }
        out.push_str(&self.release.iter().map(u64::to_string).collect::<Vec<_>>().join("."));
        if let Some((l, n)) = &self.pre {
            out.push_str(&format!("{l}{n}"));
        }
        if let Some(n) = self.post {
            out.push_str(&format!(".post{n}"));
        }
        if let Some(n) = self.dev {
            out.push_str(&format!(".dev{n}"));
        }
        if let Some(local) = &self.local {
            out.push('+');
            out.push_str(&local.join(","));
        }
        out
    }

    /// The n-th release number (`major` 0, `minor` 1, `patch` 2), 0 when absent.
    pub fn release_part(&self, n: usize) -> u64 {
        self.release.get(n).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semver_as_npm_reads_it() {
        // Checked against npm semver 7 (valid, then parse with loose: true).
        for bad in ["V1.2.3", "=1.2.3", "1.2", "01.2.3", "1.2.3-rc.01", "release1"] {
            assert_eq!(Semver::parse(bad), None, "{bad}");
        }
        let v = Semver::parse("v1.2.3-beta.1+b").unwrap();
        assert_eq!((v.version(), v.field("raw").unwrap()), ("1.2.3-beta.1".into(), "v1.2.3-beta.1+b".into()));
        assert_eq!(v.field("prerelease").unwrap(), "beta,1");
        assert_eq!(Semver::parse("1.2.3+build.5").unwrap().version(), "1.2.3");
    }

    #[test]
    fn pep440_as_renovate_reads_it() {
        // Checked against @renovate/pep440 1.0 (valid, clean, explain, major/minor/patch).
        let clean = |v: &str| Pep440::parse(v).map(|p| p.clean());
        assert_eq!(clean("v2.0.0-rc.1").as_deref(), Some("2.0.0rc1"));
        assert_eq!(clean("1.0dev4").as_deref(), Some("1.0.dev4"));
        assert_eq!(clean("1.1beta2").as_deref(), Some("1.1b2"));
        assert_eq!(clean("1.2post1").as_deref(), Some("1.2.post1"));
        assert_eq!(clean("1.0-1").as_deref(), Some("1.0.post1"));
        assert_eq!(clean("1!2.0+Ubuntu.01").as_deref(), Some("1!2.0+ubuntu,1"));
        assert_eq!(clean("1.2.3 "), None);
        assert_eq!(clean("20200110-RC2").as_deref(), Some("20200110rc2"));
        assert_eq!(clean("1.0-0").as_deref(), Some("1.0.post0"));
        let p = Pep440::parse("1.2").unwrap();
        assert_eq!((p.release_part(0), p.release_part(1), p.release_part(2)), (1, 2, 0));
        assert!(!p.is_pre_post_or_dev());
        assert!(Pep440::parse("1.2.3rc2").unwrap().is_pre_post_or_dev());
    }
}
