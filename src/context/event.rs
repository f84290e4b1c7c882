//! The slice of a webhook payload that trust and plan read.
//!
//! Every field is optional and unknown fields are ignored: payloads differ between events,
//! GitHub adds fields over time, and a container action must never panic on one. A field
//! that is absent can only make a run *less* trusted, never more.

use serde::Deserialize;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Event {
    /// `push`, `create`, `delete`, `workflow_dispatch`: the full ref.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    /// `push`: the commit the ref now points to.
    pub after: Option<String>,
    pub head_commit: Option<Commit>,
    /// A push's commits: metadata-action takes the built commit's date from here.
    pub commits: Option<Vec<Commit>>,
    /// A tag push's branch (`refs/heads/…`), for `{{base_ref}}`.
    pub base_ref: Option<String>,
    pub repository: Option<Repository>,
    pub sender: Option<Account>,
    pub pull_request: Option<PullRequest>,
    /// `pull_request*`: the PR number (also in `pull_request.number`).
    pub number: Option<u64>,
    pub release: Option<Release>,
    pub workflow_run: Option<WorkflowRun>,
    pub merge_group: Option<MergeGroup>,
    pub issue: Option<Issue>,
    pub comment: Option<Comment>,
    pub action: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Account {
    pub login: Option<String>,
    pub id: Option<u64>,
    /// `User`, `Organization` or `Bot`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct Repository {
    pub id: Option<u64>,
    pub name: Option<String>,
    pub full_name: Option<String>,
    pub default_branch: Option<String>,
    pub html_url: Option<String>,
    pub description: Option<String>,
    pub license: Option<License>,
    pub owner: Option<Account>,
    /// True for any repository that is a fork — including the base repository of a PR
    /// opened inside a fork. It says nothing about where a PR comes from.
    pub fork: Option<bool>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct License {
    pub spdx_id: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Commit {
    pub id: Option<String>,
    pub timestamp: Option<String>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct PullRequest {
    pub number: Option<u64>,
    pub user: Option<Account>,
    pub head: Option<GitSide>,
    pub base: Option<GitSide>,
}

/// `pull_request.head` / `.base`. `repo` is null when the head fork was deleted.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct GitSide {
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub repo: Option<Repository>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Release {
    pub tag_name: Option<String>,
    pub prerelease: Option<bool>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct WorkflowRun {
    pub id: Option<u64>,
    pub event: Option<String>,
    pub head_branch: Option<String>,
    pub head_sha: Option<String>,
    /// Where the triggering code lives: a fork for a fork PR (whose `pull_requests` is empty).
    pub head_repository: Option<Repository>,
    pub head_commit: Option<Commit>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct MergeGroup {
    pub head_sha: Option<String>,
    pub head_ref: Option<String>,
    pub base_ref: Option<String>,
    pub head_commit: Option<Commit>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Issue {
    pub number: Option<u64>,
    /// Present (an object of links) only when the issue is a pull request.
    pub pull_request: Option<serde_json::Value>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct Comment {
    pub author_association: Option<String>,
    pub user: Option<Account>,
}

impl Event {
    /// Parses a payload; the error names the line and column serde stopped at.
    pub fn parse(text: &str) -> Result<Event, serde_json::Error> {
        // serde would also build a struct from a JSON array; a payload is always an object.
        let body = text.trim_start();
        if !body.starts_with('{') && !body.starts_with("null") {
            return Err(serde::de::Error::custom("expected a JSON object"));
        }
        let event: Option<Event> = serde_json::from_str(text)?;
        Ok(event.unwrap_or_default())
    }

    pub fn default_branch(&self) -> Option<&str> {
        self.repository.as_ref()?.default_branch.as_deref()
    }

    pub fn repository_id(&self) -> Option<u64> {
        self.repository.as_ref()?.id
    }

    /// The PR number for `pull_request*` and `issue_comment` events.
    pub fn pr_number(&self) -> Option<u64> {
        self.pull_request
            .as_ref()
            .and_then(|pr| pr.number)
            .or(self.number)
            .or_else(|| self.issue.as_ref().filter(|i| i.pull_request.is_some())?.number)
    }

    /// The commit time GitHub reports for the built commit, used for the `created` label.
    pub fn commit_time(&self) -> Option<&str> {
        let commit = self
            .head_commit
            .as_ref()
            .or_else(|| self.workflow_run.as_ref()?.head_commit.as_ref())
            .or_else(|| self.merge_group.as_ref()?.head_commit.as_ref())?;
        commit.timestamp.as_deref()
    }

    /// The commit the payload says is being built, when the runner does not say.
    pub fn head_sha(&self) -> Option<&str> {
        if let Some(pr) = &self.pull_request {
            return pr.head.as_ref()?.sha.as_deref();
        }
        if let Some(run) = &self.workflow_run {
            return run.head_sha.as_deref();
        }
        if let Some(group) = &self.merge_group {
            return group.head_sha.as_deref();
        }
        self.after.as_deref().or_else(|| self.head_commit.as_ref()?.id.as_deref())
    }
}
