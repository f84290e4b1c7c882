//! metadata-action v5's grammar for `tags`, `flavor` and `images`, lowered into typed rules.
//! Each rule keeps metadata-action's defaults (`priority`, the `pr-` and `sha-` prefixes,
//! `pattern=nightly`…); evaluating them against the event is the plan's (`plan::meta`).
//! A plain line without `=` keeps this action's meaning: bare tags for every image, and full
//! references (`ghcr.io/o/r:v1`) as given.

use super::super::InputError;
use super::ImageName;
use super::csv::{attributes, entries};
use super::fields::{err, value};
use super::reference::{full_reference, image_name, is_valid_tag};
use super::template::Template;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefEvent {
    Branch,
    Tag,
    Pr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShaFormat {
    Short,
    Long,
}

/// A JavaScript regular expression as metadata-action builds it (`/…/flags` for
/// `type=match`'s pattern; a plain string for `match=`). `global`: with `g`, JavaScript's
/// `String.match` returns every match instead of the groups of the first.
#[derive(Debug, Clone)]
pub struct JsRegex {
    pub source: String,
    pub regex: regex::Regex,
    pub global: bool,
}

impl JsRegex {
    fn new(input: &str, pattern: &str, flags: &str) -> Result<JsRegex, InputError> {
        let mut inline = String::new();
        for f in flags.chars() {
            match f {
                'i' | 'm' | 's' => inline.push(f),
                'g' | 'u' | 'd' | 'y' => {}
                other => return Err(err(input, format!("'/{pattern}/{flags}' has an unknown flag '{other}'"))),
            }
        }
        let full = if inline.is_empty() { pattern.to_string() } else { format!("(?{inline}){pattern}") };
        let regex = regex::Regex::new(&full).map_err(|e| {
            err(
                input,
                format!("'{pattern}' is not a regular expression this action can run (no look-around or back-references): {e}"),
            )
        })?;
        Ok(JsRegex { source: pattern.to_string(), regex, global: flags.contains('g') })
    }
}

#[derive(Debug, Clone)]
pub enum RuleKind {
    Schedule { pattern: Template },
    Semver { pattern: Template, value: Template, matcher: Option<JsRegex> },
    Pep440 { pattern: Template, value: Template, matcher: Option<JsRegex> },
    Match { pattern: JsRegex, group: usize, value: Template },
    Edge { branch: String },
    Ref { event: RefEvent },
    Raw { value: Template },
    Sha { format: ShaFormat },
}

/// One line of `tags`, lowered.
#[derive(Debug, Clone)]
pub struct TagRule {
    pub kind: RuleKind,
    pub enable: Template,
    pub priority: i64,
    /// A rule's own `prefix=`/`suffix=` (even empty) replaces the flavor's.
    pub prefix: Option<Template>,
    pub suffix: Option<Template>,
    /// The line as written, for messages and the plan.
    pub line: String,
}

impl TagRule {
    /// Every expression template of the rule; its prefix and suffix are the flavor's unless
    /// it has its own.
    pub fn templates<'a>(&'a self, flavor: &'a Flavor) -> Vec<&'a Template> {
        let mut out = vec![&self.enable];
        out.push(self.prefix.as_ref().unwrap_or(&flavor.prefix));
        out.push(self.suffix.as_ref().unwrap_or(&flavor.suffix));
        match &self.kind {
            RuleKind::Schedule { pattern } => out.push(pattern),
            RuleKind::Semver { value, .. } | RuleKind::Pep440 { value, .. } | RuleKind::Match { value, .. } => {
                out.push(value)
            }
            RuleKind::Raw { value } => out.push(value),
            RuleKind::Edge { .. } | RuleKind::Ref { .. } | RuleKind::Sha { .. } => {}
        }
        out
    }
}

/// `flavor`: what every rule-made tag gets, and when `latest` is added.
#[derive(Debug, Clone)]
pub struct Flavor {
    pub latest: Latest,
    pub prefix: Template,
    pub prefix_latest: bool,
    pub suffix: Template,
    pub suffix_latest: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Latest {
    Auto,
    Always,
    Never,
}

impl Default for Flavor {
    fn default() -> Self {
        let empty = Template::parse("").expect("the empty template parses");
        Flavor {
            latest: Latest::Auto,
            prefix: empty.clone(),
            prefix_latest: false,
            suffix: empty,
            suffix_latest: false,
        }
    }
}

/// One `images` line: the name as written (lowercased; tags are spelled with it, as
/// metadata-action spells them) and as docker resolves it (for logins and the registry API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageEntry {
    pub given: String,
    pub name: ImageName,
    pub enable: bool,
}

/// What `tags` holds: metadata-action rules (plain bare tags become `type=raw` rules) and full
/// references kept as given.
#[derive(Debug, Clone, Default)]
pub struct TagSpec {
    /// Sorted by priority, highest first, stable on ties (as metadata-action sorts them).
    pub rules: Vec<TagRule>,
    pub full: Vec<String>,
}

fn template(input: &str, text: &str) -> Result<Template, InputError> {
    Template::parse(text).map_err(|e| err(input, e))
}

pub(super) fn tag_spec(raw: &Option<String>) -> Result<TagSpec, InputError> {
    let mut spec = TagSpec::default();
    for entry in entries(value(raw).unwrap_or_default()) {
        if entry.contains('=') {
            spec.rules.push(rule(&entry)?);
            continue;
        }
        for item in entry.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            if item.contains(['/', ':', '@']) && !item.contains("{{") {
                spec.full.push(full_reference(item)?);
            } else if item.contains("{{") || is_valid_tag(item) {
                spec.rules.push(plain_raw(item)?);
            } else {
                return Err(err(
                    "tags",
                    format!(
                        "'{item}' is not a valid tag: use at most 128 of [A-Za-z0-9_.-], not starting with '.' or '-', or a rule such as type=ref,event=branch"
                    ),
                ));
            }
        }
    }
    spec.rules.sort_by_key(|r| std::cmp::Reverse(r.priority));
    Ok(spec)
}

fn plain_raw(item: &str) -> Result<TagRule, InputError> {
    Ok(TagRule {
        kind: RuleKind::Raw { value: template("tags", item)? },
        enable: template("tags", "true")?,
        priority: 200,
        prefix: None,
        suffix: None,
        line: item.to_string(),
    })
}

/// One rule line, as metadata-action's `Parse` reads it.
fn rule(line: &str) -> Result<TagRule, InputError> {
    let bad = |why: String| err("tags", format!("'{line}': {why}"));
    let fields = attributes(line).map_err(bad)?;
    let mut kind_name = "raw".to_string();
    let mut attrs: Vec<(String, String)> = Vec::new();
    for (key, val) in fields {
        match key.as_deref() {
            Some("type") => kind_name = val,
            Some(k) => set(&mut attrs, k, val),
            None => set(&mut attrs, "value", val),
        }
    }
    let has = |attrs: &[(String, String)], k: &str| attrs.iter().any(|(n, _)| n == k);
    let is_pr = kind_name == "ref" && attrs.iter().any(|(n, v)| n == "event" && v == "pr");
    if (is_pr || kind_name == "sha") && !has(&attrs, "prefix") {
        set(&mut attrs, "prefix", if is_pr { "pr-".into() } else { "sha-".into() });
    }
    let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let tpl = |text: &str| template("tags", text);
    let kind = rule_kind(&kind_name, &get, &bad)?;
    let priority = match get("priority") {
        None => default_priority(&kind),
        Some(p) => p.parse().map_err(|_| bad(format!("priority '{p}' is not a whole number")))?,
    };
    Ok(TagRule {
        enable: tpl(&get("enable").unwrap_or_else(|| "true".into()))?,
        prefix: get("prefix").map(|p| tpl(&p)).transpose()?,
        suffix: get("suffix").map(|s| tpl(&s)).transpose()?,
        priority,
        kind,
        line: line.to_string(),
    })
}

/// A rule's type and the attributes that type reads, with metadata-action's defaults.
fn rule_kind(
    kind_name: &str,
    get: &dyn Fn(&str) -> Option<String>,
    bad: &dyn Fn(String) -> InputError,
) -> Result<RuleKind, InputError> {
    let need = |k: &str| get(k).ok_or_else(|| bad(format!("type={kind_name} needs a {k}= attribute")));
    let tpl = |text: &str| template("tags", text);
    Ok(match kind_name {
        "schedule" => RuleKind::Schedule { pattern: tpl(&get("pattern").unwrap_or_else(|| "nightly".into()))? },
        "semver" | "pep440" => {
            let pattern = tpl(&need("pattern")?)?;
            let value = tpl(&get("value").unwrap_or_default())?;
            let matcher = match get("match").filter(|m| !m.is_empty()) {
                Some(m) => Some(JsRegex::new("tags", &m, "")?),
                None => None,
            };
            if kind_name == "semver" {
                RuleKind::Semver { pattern, value, matcher }
            } else {
                RuleKind::Pep440 { pattern, value, matcher }
            }
        }
        "match" => {
            let pattern = need("pattern")?;
            let group = get("group").unwrap_or_else(|| "0".into());
            let group: usize =
                group.parse().map_err(|_| bad(format!("group '{group}' is not a group number such as 1")))?;
            let pattern = match pattern.strip_prefix('/').and_then(|p| p.rsplit_once('/')) {
                Some((body, flags)) if !body.is_empty() => JsRegex::new("tags", body, flags)?,
                _ => JsRegex::new("tags", &pattern, "")?,
            };
            RuleKind::Match { pattern, group, value: tpl(&get("value").unwrap_or_default())? }
        }
        "edge" => RuleKind::Edge { branch: get("branch").unwrap_or_default() },
        "ref" => {
            let event = match need("event")?.as_str() {
                "branch" => RefEvent::Branch,
                "tag" => RefEvent::Tag,
                "pr" => RefEvent::Pr,
                other => return Err(bad(format!("event '{other}' is not one of branch, tag, pr"))),
            };
            RuleKind::Ref { event }
        }
        "raw" => RuleKind::Raw { value: tpl(&need("value")?)? },
        "sha" => {
            let format = match get("format").as_deref() {
                None | Some("short") => ShaFormat::Short,
                Some("long") => ShaFormat::Long,
                Some(other) => return Err(bad(format!("format '{other}' is not short or long"))),
            };
            RuleKind::Sha { format }
        }
        other => {
            return Err(bad(format!(
                "unknown type '{other}': use schedule, semver, pep440, match, edge, ref, raw or sha"
            )));
        }
    })
}

fn set(attrs: &mut Vec<(String, String)>, key: &str, val: String) {
    match attrs.iter_mut().find(|(k, _)| k == key) {
        Some(slot) => slot.1 = val,
        None => attrs.push((key.to_string(), val)),
    }
}

fn default_priority(kind: &RuleKind) -> i64 {
    match kind {
        RuleKind::Schedule { .. } => 1000,
        RuleKind::Semver { .. } | RuleKind::Pep440 { .. } => 900,
        RuleKind::Match { .. } => 800,
        RuleKind::Edge { .. } => 700,
        RuleKind::Ref { .. } => 600,
        RuleKind::Raw { .. } => 200,
        RuleKind::Sha { .. } => 100,
    }
}

/// A flavor or image field's value as metadata-action reads it: it splits the field at every
/// `=` and keeps the second part, so `prefix=a=b` is `a`.
fn up_to_next_equals(v: &str) -> &str {
    v.split('=').next().unwrap_or_default()
}

pub(super) fn flavor(raw: &Option<String>) -> Result<Flavor, InputError> {
    let mut flavor = Flavor::default();
    for entry in entries(value(raw).unwrap_or_default()) {
        let bad = |why: &str| err("flavor", format!("'{entry}': {why}"));
        let mut onlatest_for = "";
        for (key, val) in attributes(&entry).map_err(|e| err("flavor", e))? {
            let val = up_to_next_equals(&val).to_string();
            match key.as_deref() {
                Some("latest") => {
                    flavor.latest = match val.as_str() {
                        "auto" => Latest::Auto,
                        "true" => Latest::Always,
                        "false" => Latest::Never,
                        _ => return Err(bad("latest= takes auto, true or false")),
                    }
                }
                Some("prefix") => {
                    flavor.prefix = template("flavor", &val)?;
                    onlatest_for = "prefix";
                }
                Some("suffix") => {
                    flavor.suffix = template("flavor", &val)?;
                    onlatest_for = "suffix";
                }
                Some("onlatest") => {
                    let on = match val.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad("onlatest= takes true or false")),
                    };
                    match onlatest_for {
                        "prefix" => flavor.prefix_latest = on,
                        "suffix" => flavor.suffix_latest = on,
                        _ => {}
                    }
                }
                None => return Err(bad("each entry is key=value: latest, prefix, suffix or onlatest")),
                Some(other) => return Err(bad(&format!("unknown entry '{other}'"))),
            }
        }
    }
    Ok(flavor)
}

/// `images`: one a line (`name=…,enable=…`, or a bare name), or one line of comma-separated
/// names (metadata-action's older form). Names resolve as docker resolves them: `user/app` is
/// on Docker Hub.
pub(super) fn images(raw: &Option<String>) -> Result<Vec<ImageEntry>, InputError> {
    let lines = entries(value(raw).unwrap_or_default());
    let mut out = Vec::new();
    for line in &lines {
        let fields = attributes(line).map_err(|e| err("images", e))?;
        let old_form = lines.len() == 1 && fields.iter().all(|(k, _)| k.is_none());
        if old_form {
            for (_, name) in fields {
                out.push(image_entry(&name, true)?);
            }
            continue;
        }
        let (mut name, mut enable) = (String::new(), true);
        for (key, val) in fields {
            let val = up_to_next_equals(&val).to_string();
            match key.as_deref() {
                None | Some("name") => name = val,
                Some("enable") => {
                    enable = match val.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(err("images", format!("'{line}': enable= takes true or false"))),
                    }
                }
                Some(other) => return Err(err("images", format!("'{line}': unknown attribute '{other}'"))),
            }
        }
        if name.is_empty() {
            return Err(err("images", format!("'{line}' names no image")));
        }
        out.push(image_entry(&name, enable)?);
    }
    Ok(out)
}

fn image_entry(name: &str, enable: bool) -> Result<ImageEntry, InputError> {
    let given = name.to_ascii_lowercase();
    let first = given.split('/').next().unwrap_or_default();
    let full = match given.contains('/') && super::is_registry_host(first) {
        true => given.clone(),
        false if given.contains('/') => format!("docker.io/{given}"),
        false => format!("docker.io/library/{given}"),
    };
    Ok(ImageEntry { name: image_name("images", &full, "docker.io")?, given, enable })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(tags: &str) -> Vec<(String, i64)> {
        tag_spec(&Some(tags.into())).unwrap().rules.iter().map(|r| (r.line.clone(), r.priority)).collect()
    }

    #[test]
    fn rules_sort_by_priority_and_keep_their_order_on_ties() {
        let got = kinds(
            "type=sha\ntype=raw,value=a\ntype=ref,event=branch\ntype=raw,value=b,priority=2000\ntype=raw,value=c",
        );
        let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
        assert_eq!(
            lines,
            [
                "type=raw,value=b,priority=2000",
                "type=ref,event=branch",
                "type=raw,value=a",
                "type=raw,value=c",
                "type=sha"
            ]
        );
    }

    #[test]
    fn plain_lines_keep_their_meaning() {
        let spec = tag_spec(&Some("v1, latest\nghcr.io/o/other:v2".into())).unwrap();
        assert_eq!(spec.rules.len(), 2);
        assert_eq!(spec.full, ["ghcr.io/o/other:v2"]);
        assert!(tag_spec(&Some("-bad".into())).unwrap_err().message.contains("not a valid tag"));
    }

    #[test]
    fn rule_errors_name_the_line() {
        for (line, why) in [
            ("type=foo", "unknown type 'foo'"),
            ("type=semver", "needs a pattern="),
            ("type=match", "needs a pattern="),
            ("type=ref", "needs a event="),
            ("type=ref,event=push", "not one of branch, tag, pr"),
            ("type=sha,format=tiny", "not short or long"),
            ("type=match,pattern=x,group=a", "not a group number"),
            ("type=raw,value=x,priority=high", "not a whole number"),
            ("type=raw,value={{branch", "never closed"),
        ] {
            let e = tag_spec(&Some(line.into())).unwrap_err();
            assert_eq!(e.input, "tags");
            assert!(e.message.contains(why), "{line}: {}", e.message);
        }
    }

    #[test]
    fn defaults_are_metadata_actions() {
        let spec = tag_spec(&Some("type=ref,event=pr\ntype=sha\ntype=ref,event=pr,prefix=".into())).unwrap();
        let prefixes: Vec<Option<&str>> =
            spec.rules.iter().map(|r| r.prefix.as_ref().map(|p| p.source.as_str())).collect();
        assert_eq!(prefixes, [Some("pr-"), Some(""), Some("sha-")]);
    }

    #[test]
    fn flavors_and_images() {
        let f = flavor(&Some("latest=false\nprefix=v-,onlatest=true\nsuffix=-alpine".into())).unwrap();
        assert_eq!(f.latest, Latest::Never);
        assert!(f.prefix_latest && !f.suffix_latest);
        assert_eq!(f.suffix.source, "-alpine");
        assert!(flavor(&Some("latest=maybe".into())).is_err());
        assert!(flavor(&Some("color=red".into())).is_err());

        let i = images(&Some("user/app,ghcr.io/Org/App".into())).unwrap();
        assert_eq!(i[0].given, "user/app");
        assert_eq!(i[0].name.as_str(), "docker.io/user/app");
        assert_eq!(i[1].name.as_str(), "ghcr.io/org/app");
        let i = images(&Some("name=alpine,enable=false\nghcr.io/o/r".into())).unwrap();
        assert_eq!((i[0].name.as_str(), i[0].enable), ("docker.io/library/alpine", false));
        assert!(images(&Some("name=a,enable=yes\nb".into())).is_err());
    }
}
