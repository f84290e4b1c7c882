//! What the run tells people: workflow commands (`::error::`, `::warning::`) and the
//! human rendering of a plan.

use std::fmt::Write as _;

use crate::context::InputError;
use crate::plan::BuildPlan;

/// Escapes a workflow command's message so that no input can end the line and start
/// another command.
pub fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow command property (`title=…`), where `:` and `,` are separators too.
pub fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// The one line a bad input ends the run with.
pub fn error_line(e: &InputError) -> String {
    format!(
        "::error title={}::{}",
        escape_property(&format!("Invalid {}", e.input)),
        escape_data(&e.to_string())
    )
}

pub fn warning_line(message: &str) -> String {
    format!("::warning::{}", escape_data(message))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join("\n              ")
    }
}

/// The command, shell-quoted, one flag and its value a line.
pub fn shell_command(argv: &[String]) -> String {
    let quote = |a: &String| {
        shlex::try_quote(a)
            .map(|q| q.into_owned())
            .unwrap_or_else(|_| format!("{a:?}"))
    };
    let mut out = String::new();
    let mut i = 0;
    while i < argv.len() {
        let a = &argv[i];
        if i == 0 {
            out.push_str(&quote(a));
        } else if a.starts_with("--")
            && !a.contains('=')
            && i + 2 < argv.len()
            && !argv[i + 1].starts_with("--")
        {
            let _ = write!(out, " \\\n  {} {}", quote(a), quote(&argv[i + 1]));
            i += 1;
        } else if a.starts_with("--") || i + 1 == argv.len() {
            let _ = write!(out, " \\\n  {}", quote(a));
        } else {
            let _ = write!(out, " {}", quote(a));
        }
        i += 1;
    }
    out
}

/// A short explanation of the plan for people, then the command.
pub fn render_plan(plan: &BuildPlan) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "event:        {}", plan.event);
    let _ = writeln!(
        out,
        "trusted:      {}: {}",
        yes_no(plan.trust.trusted),
        plan.trust.reason
    );
    let _ = writeln!(out, "lane:         {}", plan.lane.as_str());
    let _ = writeln!(out, "image:        {}", plan.image);
    let _ = writeln!(out, "push:         {}", yes_no(plan.push));
    let _ = writeln!(out, "tags:         {}", list_or_none(&plan.tags));
    let _ = writeln!(out, "platforms:    {}", plan.platforms.join(", "));
    let _ = writeln!(out, "cache from:   {}", list_or_none(&plan.cache_from));
    let _ = writeln!(out, "cache to:     {}", list_or_none(&plan.cache_to));
    let _ = writeln!(out, "login:        {}", list_or_none(&plan.login));
    let _ = writeln!(out, "secrets:      {}", list_or_none(&plan.secrets));
    for w in &plan.warnings {
        let _ = writeln!(out, "warning:      {w}");
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", shell_command(&plan.argv));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_input_can_start_a_new_workflow_command() {
        let e = InputError::new("tags", "'x\n::set-output name=digest::evil' is bad, 100%");
        let line = error_line(&e);
        assert_eq!(line.lines().count(), 1);
        assert!(line.contains("%0A::set-output"));
        assert!(line.ends_with("100%25"));
    }

    #[test]
    fn titles_escape_separators() {
        assert_eq!(escape_property("a:b,c"), "a%3Ab%2Cc");
    }

    #[test]
    fn shell_command_quotes_values() {
        let argv: Vec<String> = [
            "docker", "buildx", "build", "--label", "a=b c", "--push", ".",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            shell_command(&argv),
            "docker buildx build \\\n  --label 'a=b c' \\\n  --push \\\n  ."
        );
    }
}
