//! Every payload of @octokit/webhooks-examples, classified and planned under its own event
//! name: each parses (or is refused with a clean error) and none panics.

use std::collections::HashMap;

use sdi::context::{Context, Event, Overrides, ProcessEnv};
use sdi::trust::{Trigger, classify};
use serde_json::Value;

const EXAMPLES: &str = include_str!("fixtures/webhooks-examples/api.github.com.json");

/// Events that may ever be trusted (DESIGN.md's table); every other one never is.
const MAY_TRUST: &[&str] = &[
    "push",
    "release",
    "schedule",
    "workflow_dispatch",
    "repository_dispatch",
    "merge_group",
    "pull_request",
    "pull_request_target",
    "pull_request_review",
    "pull_request_review_comment",
    "pull_request_review_thread",
    "workflow_run",
];

fn examples() -> Vec<(String, String)> {
    let all: Vec<Value> = serde_json::from_str(EXAMPLES).unwrap();
    all.iter()
        .flat_map(|e| {
            let name = e["name"].as_str().unwrap().to_string();
            e["examples"].as_array().unwrap().iter().map(move |p| (name.clone(), p.to_string()))
        })
        .collect()
}

#[test]
fn all_329_examples_are_classified_and_planned_without_panic() {
    let examples = examples();
    assert_eq!(examples.len(), 329);
    let mut trusted = HashMap::<String, usize>::new();
    let mut refused = Vec::new();
    for (name, payload) in &examples {
        let outcome = std::panic::catch_unwind(|| {
            let event = match Event::parse(payload) {
                Ok(e) => e,
                Err(e) => return Err(format!("parse: {e}")),
            };
            let env =
                ProcessEnv::new(HashMap::from([("GITHUB_REPOSITORY".to_string(), "octo-org/octo-repo".to_string())]));
            let flags = Overrides { event_name: Some(name.clone()), ..Default::default() };
            let ctx = Context::with_event(&env, &flags, event).map_err(|e| format!("context: {e}"))?;
            let decision = classify(&Trigger::of(&ctx, &Default::default()));
            assert!(decision.trust.reason.ends_with('.'), "{name}: reason is one sentence: {}", decision.trust.reason);
            let plan = sdi::decide(&ctx, &Default::default()).map_err(|e| format!("plan: {e}"))?;
            assert_eq!(plan.trust, decision.trust);
            Ok(plan.trust.trusted)
        });
        match outcome {
            Err(_) => panic!("{name}: panicked on example {}", payload.len()),
            Ok(Err(e)) => refused.push(format!("{name}: {e}")),
            Ok(Ok(true)) => *trusted.entry(name.clone()).or_default() += 1,
            Ok(Ok(false)) => {}
        }
    }
    assert!(refused.is_empty(), "refused: {refused:#?}");
    for name in trusted.keys() {
        assert!(MAY_TRUST.contains(&name.as_str()), "{name} was trusted");
    }
    // The examples include same-repo pushes and PRs: some must come out trusted.
    assert!(trusted.contains_key("push") && trusted.contains_key("pull_request"), "{trusted:?}");
}

#[test]
fn a_payload_of_the_wrong_shape_is_a_clean_error() {
    for bad in
        ["[]", "42", "\"x\"", "{\"repository\": 5}", "{\"pull_request\": {\"head\": {\"repo\": {\"id\": \"1\"}}}}", "{"]
    {
        assert!(Event::parse(bad).is_err(), "{bad} parsed as {:?}", Event::parse(bad));
    }
    assert!(Event::parse("null").is_ok());
}
