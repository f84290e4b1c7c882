//! Debug logging for a job re-run with "Enable debug logging" (`RUNNER_DEBUG=1`): `tracing`
//! events and the duration of every span (a phase of the run) become `::debug::` workflow
//! commands, escaped like any other. Without it no subscriber is installed and nothing is
//! printed. Secret values never reach an event: argv and API paths hold none, and the runner
//! masks what `::add-mask::` named before the first line.

use std::fmt::Write as _;
use std::time::Instant;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Writes `::debug::` lines to standard output, where the runner reads workflow commands.
pub struct WorkflowDebug;

struct Started(Instant);

/// An event's message, then its other fields as `name=value`.
#[derive(Default)]
struct Text(String);

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// One `::debug::` line; the text cannot start another workflow command.
pub fn debug_line(text: &str) -> String {
    format!("::debug::{}", super::escape_data(text))
}

/// This project's own events and spans: the library (`sdi`) and the binary. Dependencies'
/// (HTTP pools, the runtime) would drown the phases, and an HTTP client's debug output is no
/// place to trust with credentials.
fn ours(target: &str) -> bool {
    ["sdi", "secure_docker_images"].iter().any(|t| target == *t || target.starts_with(&format!("{t}::")))
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for WorkflowDebug {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        ours(metadata.target())
    }

    fn on_new_span(&self, _: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Started(Instant::now()));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut text = Text::default();
        event.record(&mut text);
        let phase = ctx.event_scope(event).and_then(|s| s.from_root().last().map(|s| s.name())).unwrap_or("run");
        println!("{}", debug_line(&format!("[{phase}] {}", text.0)));
    }

    fn on_close(&self, id: span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else { return };
        let Some(secs) = span.extensions().get::<Started>().map(|s| s.0.elapsed().as_secs_f64()) else { return };
        println!("{}", debug_line(&format!("[{}] took {secs:.3} s", span.name())));
    }
}

/// Installs the workflow-command writer when the runner asks for debug logging.
pub fn install(runner_debug: bool) {
    if runner_debug {
        let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry().with(WorkflowDebug));
    }
}

#[cfg(test)]
mod tests {
    use super::debug_line;

    #[test]
    fn only_this_projects_events_are_shown() {
        assert!(super::ours("sdi::buildx::docker") && super::ours("secure_docker_images") && super::ours("sdi"));
        assert!(!super::ours("hyper_util::client") && !super::ours("oci_client") && !super::ours("sdix"));
    }

    #[test]
    fn a_debug_line_cannot_start_another_command() {
        let line = debug_line("docker build --label x=a\n::set-output name=digest::evil");
        assert_eq!(line.lines().count(), 1);
        assert!(line.starts_with("::debug::docker build --label x=a%0A::set-output"));
    }
}
