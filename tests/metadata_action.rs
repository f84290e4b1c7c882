//! metadata-action v5.10.0's own test cases (`tests/fixtures/metadata-action/NOTICE.md`), run
//! through this action's plan: the same event and inputs give the same version, tags, labels
//! and annotations. Its tests freeze the clock at 2020-01-10T00:30:00Z (here
//! `SOURCE_DATE_EPOCH`) and mock the commit date to that same instant.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use sdi::context::{Context, Event, Overrides, ProcessEnv, Repository};
use sdi::trust::{ApiFacts, Lookup};
use serde_json::Value;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/metadata-action")
}

fn read_json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

/// The payload as metadata-action's test sees it: a repository in the payload carries the
/// facts its mocked API gives (metadata-action reads them from the API even then), and no
/// commit timestamps (its mocked API dates every commit at the frozen instant).
fn payload(env: &HashMap<String, String>) -> Value {
    let path = env.get("GITHUB_EVENT_PATH").filter(|p| !p.is_empty());
    let mut payload = match path {
        Some(p) => read_json(p.rsplit('/').next().unwrap()),
        None => serde_json::json!({}),
    };
    let repo = read_json("repo.json");
    let obj = payload.as_object_mut().unwrap();
    obj.remove("commits");
    obj.remove("head_commit");
    if let Some(target) = obj.get_mut("repository").filter(|r| r.is_object()) {
        for key in ["name", "description", "html_url", "license"] {
            target[key] = repo[key].clone();
        }
    }
    payload
}

/// What its mocked GitHub API answers (`repo.json`, every commit at the frozen instant): where
/// the payload has no repository (`schedule`, `release` here), the plan reads it from these.
fn api_facts() -> ApiFacts {
    let repo: Repository = serde_json::from_value(read_json("repo.json")).unwrap();
    ApiFacts {
        repository: Some(Lookup::Found(repo)),
        commit_date: Some(Lookup::Found("2020-01-10T00:30:00Z".into())),
        ..ApiFacts::default()
    }
}

fn dotenv(name: &str) -> HashMap<String, String> {
    std::fs::read_to_string(dir().join(name))
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn lines(inputs: &Value, key: &str) -> Option<String> {
    let items: Vec<&str> = inputs.get(key)?.as_array()?.iter().filter_map(Value::as_str).collect();
    Some(items.join("\n"))
}

const METADATA_DEFAULT_TAGS: &str = "type=schedule\ntype=ref,event=branch\ntype=ref,event=tag\ntype=ref,event=pr";

fn plan_for(case: &Value) -> Result<sdi::plan::BuildPlan, String> {
    let mut vars = dotenv(case["env"].as_str().unwrap());
    vars.retain(|_, v| !v.is_empty());
    vars.entry("GITHUB_REPOSITORY".into()).or_insert_with(|| "octocat/Hello-World".into());
    vars.remove("GITHUB_REPOSITORY_OWNER");
    vars.insert("SOURCE_DATE_EPOCH".into(), "1578616200".into());
    if case["block"] == "pr-head-sha" {
        vars.insert("DOCKER_METADATA_PR_HEAD_SHA".into(), "true".into());
    }
    // Without `tags` this action keeps its own default; metadata-action's is these rules.
    if case["inputs"].get("tags").is_none() {
        vars.insert("INPUT_TAGS".into(), METADATA_DEFAULT_TAGS.into());
    }
    for key in ["images", "tags", "flavor", "labels", "annotations"] {
        if let Some(v) = lines(&case["inputs"], key) {
            vars.insert(format!("INPUT_{}", key.to_ascii_uppercase()), v);
        }
    }
    let event_name = vars.get("GITHUB_EVENT_NAME").cloned().unwrap_or_else(|| "push".into());
    let event = Event::parse(&payload(&vars).to_string()).unwrap();
    let flags = Overrides { event_name: Some(event_name), ..Default::default() };
    let ctx = Context::with_event(&ProcessEnv::new(vars), &flags, event).map_err(|e| e.to_string())?;
    sdi::decide(&ctx, &api_facts()).map_err(|e| e.to_string())
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect()).unwrap_or_default()
}

fn label_map(lines: &[String]) -> BTreeMap<String, String> {
    lines.iter().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// One case: the differences, empty when it matches.
fn check(case: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap();
    let plan = match plan_for(case) {
        Ok(p) => p,
        Err(e) => return vec![format!("{name}: error {e}")],
    };
    let mut diffs = Vec::new();
    let mut same = |what: &str, got: String, want: String| {
        if got != want {
            diffs.push(format!("{name} {what}:\n   got  {got}\n   want {want}"));
        }
    };
    if case["block"] == "json" {
        let j = &case["json"];
        same("tags", format!("{:?}", plan.tags), format!("{:?}", strings(&j["tags"])));
        same("tag-names", format!("{:?}", plan.tag_names), format!("{:?}", strings(&j["tag-names"])));
        let labels: BTreeMap<String, String> =
            j["labels"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().into())).collect();
        same("labels", format!("{:?}", plan.labels), format!("{labels:?}"));
        same("annotations", format!("{:?}", plan.annotations), format!("{:?}", strings(&j["annotations"])));
        return diffs;
    }
    same("version", format!("{:?}", plan.version), format!("{:?}", case["version"]["main"].as_str()));
    // With no image, metadata-action outputs bare tag names; this action tags its `image`.
    let no_images = strings(&case["inputs"]["images"]).is_empty();
    let tags = if no_images { &plan.tag_names } else { &plan.tags };
    same("tags", format!("{tags:?}"), format!("{:?}", strings(&case["tags"])));
    let labels = strings(&case["labels"]);
    same("labels", format!("{:?}", plan.labels), format!("{:?}", label_map(&labels)));
    let annotations = match &case["annotations"] {
        Value::Null => labels,
        a => strings(a),
    };
    let manifest: Vec<String> = annotations.iter().map(|a| format!("manifest:{a}")).collect();
    same("annotations", format!("{:?}", plan.annotations), format!("{manifest:?}"));
    diffs
}

#[test]
fn metadata_actions_own_cases_give_its_outputs() {
    let cases = read_json("cases.json");
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 121);
    let failures: Vec<String> = cases.iter().flat_map(check).collect();
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}

/// A case of `oracle.json`: inputs as the runner passes them, expected outputs printed by
/// metadata-action's own code.
fn check_oracle(case: &Value) -> Vec<String> {
    let name = case["name"].as_str().unwrap();
    let mut vars: HashMap<String, String> =
        case["env"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect();
    vars.insert("SOURCE_DATE_EPOCH".into(), "1578616200".into());
    for (k, v) in case["inputs"].as_object().unwrap() {
        vars.insert(format!("INPUT_{}", k.to_ascii_uppercase()), v.as_str().unwrap().to_string());
    }
    let flags = Overrides { event_name: Some(vars["GITHUB_EVENT_NAME"].clone()), ..Default::default() };
    let event = Event::parse(&case["payload"].to_string()).unwrap();
    let plan = Context::with_event(&ProcessEnv::new(vars), &flags, event)
        .and_then(|ctx| sdi::decide(&ctx, &sdi::trust::ApiFacts::default()));
    let plan = match plan {
        Ok(p) => p,
        Err(e) => return vec![format!("{name}: error {e}")],
    };
    let want = &case["expected"];
    let mut diffs = Vec::new();
    let mut same = |what: &str, got: String, want: String| {
        if got != want {
            diffs.push(format!("{name} {what}:\n   got  {got}\n   want {want}"));
        }
    };
    same("version", format!("{:?}", plan.version), format!("{:?}", want["version"].as_str()));
    same("tags", format!("{:?}", plan.tags), format!("{:?}", strings(&want["tags"])));
    same("labels", format!("{:?}", plan.labels), format!("{:?}", label_map(&strings(&want["labels"]))));
    let annotations: Vec<String> = strings(&want["annotations"]).iter().map(|a| format!("manifest:{a}")).collect();
    same("annotations", format!("{:?}", plan.annotations), format!("{annotations:?}"));
    diffs
}

#[test]
fn the_easily_mistaken_behaviours_match_metadata_actions_code() {
    let cases = read_json("oracle.json");
    let failures: Vec<String> = cases.as_array().unwrap().iter().flat_map(check_oracle).collect();
    assert!(failures.is_empty(), "{} differences:\n{}", failures.len(), failures.join("\n"));
}
