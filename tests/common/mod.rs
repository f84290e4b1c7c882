//! Helpers shared by the integration tests: fixtures, payload variants and contexts.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::PathBuf;

use sdi::context::{Context, Event, InputError, Overrides, ProcessEnv};
use sdi::plan::BuildPlan;
use serde_json::Value;

pub fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name)
}

pub fn fixture(name: &str) -> Value {
    let text =
        std::fs::read_to_string(fixture_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// Sets the value at a JSON pointer (its parent must exist); `Value::Null` stays as null.
pub fn set(payload: &mut Value, pointer: &str, value: Value) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    let parent = payload
        .pointer_mut(parent)
        .unwrap_or_else(|| panic!("no {parent}"));
    parent
        .as_object_mut()
        .unwrap()
        .insert(key.to_string(), value);
}

/// Removes the key at a JSON pointer.
pub fn remove(payload: &mut Value, pointer: &str) {
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    payload
        .pointer_mut(parent)
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove(key)
        .unwrap_or_else(|| panic!("no {pointer}"));
}

/// A runner-like environment: GITHUB_REPOSITORY plus `extra` (`INPUT_*`, `GITHUB_REF`…).
pub fn env(repository: &str, extra: &[(&str, &str)]) -> ProcessEnv {
    let mut vars: HashMap<String, String> =
        HashMap::from([("GITHUB_REPOSITORY".into(), repository.into())]);
    for (k, v) in extra {
        vars.insert(k.to_string(), v.to_string());
    }
    ProcessEnv::new(vars)
}

pub fn context(event_name: &str, payload: &Value, env: &ProcessEnv) -> Result<Context, InputError> {
    let event = Event::parse(&payload.to_string()).expect("payload parses");
    let flags = Overrides {
        event_name: Some(event_name.into()),
        ..Default::default()
    };
    Context::with_event(env, &flags, event)
}

pub fn plan(event_name: &str, payload: &Value, env: &ProcessEnv) -> Result<BuildPlan, InputError> {
    sdi::decide(&context(event_name, payload, env)?)
}
