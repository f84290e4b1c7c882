//! What metadata-action's expressions read (`{{branch}}`, `{{tag}}`, `{{sha}}`, `{{base_ref}}`,
//! `{{is_default_branch}}`, `{{date …}}`, `{{commit_date …}}`), and the run facts behind them:
//! the ref as metadata-action sees it, the commit, its date and the repository.

use chrono::{DateTime, Utc};

use super::moment;
use crate::context::inputs::{Expr, Template};
use crate::context::{Context, Event};

/// The repository fields the default labels carry.
pub struct Repo {
    pub name: String,
    pub description: String,
    pub html_url: String,
    pub license: String,
}

pub struct Facts<'a> {
    pub event_name: &'a str,
    /// `GITHUB_REF`, or `refs/pull/<N>/merge` for `pull_request_target` (as metadata-action).
    pub git_ref: String,
    pub sha: Option<String>,
    pub event: &'a Event,
    pub now: DateTime<Utc>,
    pub commit_date: DateTime<Utc>,
    short_sha_length: usize,
    ctx: &'a Context,
}

impl<'a> Facts<'a> {
    /// `sha`: the commit built. With `DOCKER_METADATA_PR_HEAD_SHA=true`, a pull request event
    /// names its head commit instead.
    pub fn of(ctx: &'a Context, sha: Option<&str>) -> Facts<'a> {
        let event = &ctx.event;
        let mut git_ref = ctx.git_ref.clone().unwrap_or_default();
        if ctx.event_name.contains("pull_request_target") {
            git_ref = format!("refs/pull/{}/merge", event.number.map(|n| n.to_string()).unwrap_or_default());
        }
        let pr_head = event.pull_request.as_ref().and_then(|pr| pr.head.as_ref()?.sha.clone());
        let sha = match pr_head {
            Some(head) if ctx.meta.pr_head_sha && ctx.event_name.contains("pull_request") => Some(head),
            _ => sha.map(str::to_string),
        };
        let commit_date = commit_date(event, sha.as_deref()).unwrap_or(ctx.meta.now);
        Facts {
            event_name: &ctx.event_name,
            git_ref,
            sha,
            event,
            now: ctx.meta.now,
            commit_date,
            short_sha_length: ctx.meta.short_sha_length,
            ctx,
        }
    }

    pub fn repo(&self) -> Repo {
        let repo = self.event.repository.clone().unwrap_or_default();
        let fallback = format!("{}/{}", self.ctx.server_url.trim_end_matches('/'), self.ctx.repository.full());
        Repo {
            name: repo.name.unwrap_or_else(|| self.ctx.repository.name.clone()),
            description: repo.description.unwrap_or_default(),
            html_url: repo.html_url.unwrap_or(fallback),
            license: repo.license.and_then(|l| l.spdx_id).unwrap_or_default(),
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
        if self.event.default_branch() == Some(branch) {
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
            "commit_date" => self.date(e, self.commit_date)?,
            _ => return Ok(None),
        }))
    }

    /// Renders a template with the global expressions (metadata-action's `setGlobalExp`).
    pub fn global(&self, t: &Template) -> Result<String, String> {
        t.render(&|e| self.lookup(e))
    }
}

/// The built commit's date as the payload gives it: a push's commit with that id, else the
/// head commit when it is that commit.
fn commit_date(event: &Event, sha: Option<&str>) -> Option<DateTime<Utc>> {
    let sha = sha?;
    let from_commits = event.commits.as_ref().and_then(|c| c.iter().find(|c| c.id.as_deref() == Some(sha)));
    let commit = from_commits.or(event.head_commit.as_ref().filter(|c| c.id.as_deref() == Some(sha)))?;
    DateTime::parse_from_rfc3339(commit.timestamp.as_deref()?).ok().map(|d| d.with_timezone(&Utc))
}
