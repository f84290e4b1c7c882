//! What metadata-action's expressions read (`{{branch}}`, `{{tag}}`, `{{sha}}`, `{{base_ref}}`,
//! `{{is_default_branch}}`, `{{date …}}`, `{{commit_date …}}`), and the run facts behind them:
//! the ref as metadata-action sees it, the commit, its date and the repository.

use chrono::{DateTime, Utc};

use super::moment;
use crate::context::inputs::{Expr, Template};
use crate::context::{Context, Event, Repository};
use crate::trust::{ApiFacts, Lookup};

/// The repository fields the default labels carry. `None`: neither the payload nor the API
/// said, and the label is left out rather than guessed.
pub struct Repo {
    pub name: String,
    pub html_url: String,
    pub description: Option<String>,
    pub license: Option<String>,
}

pub const COMMIT_DATE: &str = "the commit date";
pub const REPOSITORY: &str = "the repository's facts";

/// Why a template gave no text: a mistake in the input, or a fact the payload lacks and the
/// API did not give (then the tag or label is left out, never guessed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRendered {
    Input(String),
    Unknown { fact: &'static str, why: String },
}

impl From<String> for NotRendered {
    fn from(e: String) -> Self {
        NotRendered::Input(e)
    }
}

pub struct Facts<'a> {
    pub event_name: &'a str,
    /// `GITHUB_REF`, or `refs/pull/<N>/merge` for `pull_request_target` (as metadata-action).
    pub git_ref: String,
    pub sha: Option<String>,
    pub event: &'a Event,
    pub now: DateTime<Utc>,
    /// The built commit's date, or why it is not known (`known_commit_date`, `unknown_in`).
    commit_date: Result<DateTime<Utc>, String>,
    /// The payload's repository, else the API's, or why neither is there.
    repository: Result<Repository, String>,
    short_sha_length: usize,
    ctx: &'a Context,
}

/// The commit metadata-action describes: the one built, or with `DOCKER_METADATA_PR_HEAD_SHA=true`
/// a pull request event's head.
pub fn metadata_sha(ctx: &Context, built: Option<&str>) -> Option<String> {
    let pr_head = ctx.event.pull_request.as_ref().and_then(|pr| pr.head.as_ref()?.sha.clone());
    match pr_head {
        Some(head) if ctx.meta.pr_head_sha && ctx.event_name.contains("pull_request") => Some(head),
        _ => built.map(str::to_string),
    }
}

/// A payload's repository object always carries its page; a `schedule` payload has none.
pub fn payload_repository(event: &Event) -> Option<&Repository> {
    event.repository.as_ref().filter(|r| r.html_url.is_some())
}

/// What the API answered, else why there is no answer.
fn from_api<T: Clone>(lookup: &Option<Lookup<T>>) -> Result<T, String> {
    match lookup {
        Some(Lookup::Found(v)) => Ok(v.clone()),
        Some(Lookup::Failed(why)) => Err(why.clone()),
        None => Err("the GitHub API was not asked".into()),
    }
}

impl<'a> Facts<'a> {
    /// `sha`: the commit built.
    pub fn of(ctx: &'a Context, sha: Option<&str>, api: &ApiFacts) -> Facts<'a> {
        let event = &ctx.event;
        let mut git_ref = ctx.git_ref.clone().unwrap_or_default();
        if ctx.event_name.contains("pull_request_target") {
            git_ref = format!("refs/pull/{}/merge", event.number.map(|n| n.to_string()).unwrap_or_default());
        }
        let sha = metadata_sha(ctx, sha);
        let commit_date = match payload_commit_date(event, sha.as_deref()) {
            Some(date) => Ok(date),
            None if sha.is_none() => Err("the run names no commit".into()),
            None => from_api(&api.commit_date).and_then(|d| {
                DateTime::parse_from_rfc3339(&d)
                    .map(|d| d.with_timezone(&Utc))
                    .map_err(|e| format!("the API's date '{d}' does not parse: {e}"))
            }),
        };
        let repository = match payload_repository(event) {
            Some(r) => Ok(r.clone()),
            None => from_api(&api.repository),
        };
        Facts {
            event_name: &ctx.event_name,
            git_ref,
            sha,
            event,
            now: ctx.meta.now,
            commit_date,
            repository,
            short_sha_length: ctx.meta.short_sha_length,
            ctx,
        }
    }

    /// Title and URL fall back to the runner's `GITHUB_REPOSITORY` and `GITHUB_SERVER_URL`
    /// (GitHub's `html_url` is exactly that); description and license have no such source.
    pub fn repo(&self) -> Repo {
        let known = self.repository.as_ref().ok();
        let fallback = format!("{}/{}", self.ctx.server_url.trim_end_matches('/'), self.ctx.repository.full());
        Repo {
            name: known.and_then(|r| r.name.clone()).unwrap_or_else(|| self.ctx.repository.name.clone()),
            html_url: known.and_then(|r| r.html_url.clone()).unwrap_or(fallback),
            description: known.map(|r| r.description.clone().unwrap_or_default()),
            license: known.map(|r| r.license.as_ref().and_then(|l| l.spdx_id.clone()).unwrap_or_default()),
        }
    }

    /// Why the repository's facts are not known, when they are not.
    pub fn repository_unknown(&self) -> Option<&str> {
        self.repository.as_ref().err().map(String::as_str)
    }

    pub fn default_branch(&self) -> Option<&str> {
        self.repository.as_ref().ok()?.default_branch.as_deref()
    }

    /// Whether `t` reads a fact nobody gave: then what is made of it is left out.
    pub fn unknown_in(&self, t: &Template) -> Result<(), NotRendered> {
        match &self.commit_date {
            Err(why) if t.uses("commit_date") => Err(NotRendered::Unknown { fact: COMMIT_DATE, why: why.clone() }),
            _ => Ok(()),
        }
    }

    pub fn short_sha(&self) -> String {
        let sha = self.sha.clone().unwrap_or_default();
        sha.chars().take(self.short_sha_length).collect()
    }

    pub fn branch(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/heads/")
    }

    pub fn tag(&self) -> Option<&str> {
        self.git_ref.strip_prefix("refs/tags/")
    }

    fn is_default_branch(&self) -> bool {
        let branch = self.branch().unwrap_or(&self.git_ref);
        if branch.is_empty() {
            return false;
        }
        if self.default_branch() == Some(branch) {
            return true;
        }
        // These events always run for the default branch's last commit.
        ["create", "discussion", "issues", "schedule"].iter().any(|e| self.event_name.contains(e))
    }

    fn base_ref(&self) -> String {
        if self.tag().is_some()
            && let Some(base) = &self.event.base_ref
        {
            return base.strip_prefix("refs/heads/").unwrap_or(base).to_string();
        }
        let pr_base = self.event.pull_request.as_ref().and_then(|pr| pr.base.as_ref()?.git_ref.clone());
        match pr_base {
            Some(base) if self.git_ref.starts_with("refs/pull/") => base,
            _ => String::new(),
        }
    }

    /// Callers leave out what reads an unknown date (`unknown_in`): this is the last guard.
    pub fn known_commit_date(&self) -> Result<DateTime<Utc>, String> {
        self.commit_date.clone().map_err(|why| format!("the commit date is not known ({why})"))
    }

    /// `{{date …}}` and `{{commit_date …}}`.
    pub fn date(&self, e: &Expr, at: DateTime<Utc>) -> Result<String, String> {
        let mut zone = moment::zone("UTC").expect("UTC is a zone");
        for (key, value) in &e.hash {
            match key.as_str() {
                "tz" => zone = moment::zone(value).ok_or_else(|| format!("'{value}' is not a time zone name"))?,
                other => return Err(format!("Unknown {other} attribute")),
            }
        }
        // No pattern, or a name (undefined in handlebars): moment's default format.
        let pattern = e.params.first().cloned().flatten();
        let pattern = pattern.as_deref().unwrap_or_else(|| moment::default_format(at, zone));
        Ok(moment::format(at, zone, pattern))
    }

    /// One global expression, or `None` for a name metadata-action does not define.
    pub fn lookup(&self, e: &Expr) -> Result<Option<String>, String> {
        Ok(Some(match e.name.as_str() {
            "branch" => self.branch().unwrap_or_default().to_string(),
            "tag" => self.tag().unwrap_or_default().to_string(),
            "sha" => self.short_sha(),
            "base_ref" => self.base_ref(),
            "is_default_branch" => self.is_default_branch().to_string(),
            "is_not_default_branch" => (!self.is_default_branch()).to_string(),
            "date" => self.date(e, self.now)?,
            "commit_date" => self.date(e, self.known_commit_date()?)?,
            _ => return Ok(None),
        }))
    }

    /// Renders a template with the global expressions (metadata-action's `setGlobalExp`).
    pub fn global(&self, t: &Template) -> Result<String, NotRendered> {
        self.unknown_in(t)?;
        Ok(t.render(&|e| self.lookup(e))?)
    }
}

/// The built commit's date as the payload gives it: a push's commit with that id, else the
/// head commit when it is that commit.
pub fn payload_commit_date(event: &Event, sha: Option<&str>) -> Option<DateTime<Utc>> {
    let sha = sha?;
    let from_commits = event.commits.as_ref().and_then(|c| c.iter().find(|c| c.id.as_deref() == Some(sha)));
    let commit = from_commits.or(event.head_commit.as_ref().filter(|c| c.id.as_deref() == Some(sha)))?;
    DateTime::parse_from_rfc3339(commit.timestamp.as_deref()?).ok().map(|d| d.with_timezone(&Utc))
}
