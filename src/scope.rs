//! What a public access token may do: its `scopes` claim parsed with the
//! server's grammar (`action:type[:id]`, the id being everything after the
//! second colon), and the resources each route checks.
//!
//! A scope grants when it is bare `admin`; or its action is the checked one
//! or `*`, and its type is `all` or the resource's type, and it has no id or
//! the resource's id. Scopes the grammar refuses (an empty action, a blank
//! id) or that name no action or type a route checks grant nothing.

use crate::model::Run;
use serde_json::Value;

/// An action a route checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Write,
    Trigger,
    BatchTrigger,
}

impl Action {
    fn of(name: &str) -> Option<Action> {
        match name {
            "read" => Some(Action::Read),
            "write" => Some(Action::Write),
            "trigger" => Some(Action::Trigger),
            "batchTrigger" => Some(Action::BatchTrigger),
            _ => None,
        }
    }
}

/// A resource type a route checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Runs,
    Tasks,
    Tags,
    Batch,
}

impl ResourceType {
    fn of(name: &str) -> Option<ResourceType> {
        match name {
            "runs" => Some(ResourceType::Runs),
            "tasks" => Some(ResourceType::Tasks),
            "tags" => Some(ResourceType::Tags),
            "batch" => Some(ResourceType::Batch),
            _ => None,
        }
    }
}

/// One resource a route checks: a type, and an id unless the route checks
/// the whole collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource<'a> {
    pub kind: ResourceType,
    pub id: Option<&'a str>,
}

impl<'a> Resource<'a> {
    /// `runs:<id>`
    pub fn run(id: &'a str) -> Resource<'a> {
        Resource { kind: ResourceType::Runs, id: Some(id) }
    }

    /// `tasks:<id>`
    pub fn task(id: &'a str) -> Resource<'a> {
        Resource { kind: ResourceType::Tasks, id: Some(id) }
    }

    /// `batch:<id>`
    pub fn batch(id: &'a str) -> Resource<'a> {
        Resource { kind: ResourceType::Batch, id: Some(id) }
    }

    /// The whole collection of `kind` (list routes).
    pub fn collection(kind: ResourceType) -> Resource<'a> {
        Resource { kind, id: None }
    }

    /// What cancel checks: the run's id and task when the run was found,
    /// else the id alone.
    pub fn for_cancel(id: &'a str, run: Option<&'a Run>) -> Vec<Resource<'a>> {
        let mut resources = vec![Resource::run(id)];
        resources.extend(run.map(|r| Resource::task(&r.task_identifier)));
        resources
    }

    /// Everything a run is readable through: its id, its
    /// task, each of its tags and its batch. Any one of them suffices.
    pub fn of_run(run: &'a Run) -> Vec<Resource<'a>> {
        let mut resources = vec![Resource::run(&run.id), Resource::task(&run.task_identifier)];
        resources.extend(run.tags.iter().map(|t| Resource { kind: ResourceType::Tags, id: Some(t) }));
        resources.extend(run.batch_id.as_deref().map(Resource::batch));
        resources
    }
}

/// Which actions a scope names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Actions {
    One(Action),
    /// `*`
    Every,
}

/// Which resources a scope names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// `all`
    Everything,
    Collection(ResourceType),
    One(ResourceType, String),
}

/// A parsed `scopes` claim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ability {
    admin: bool,
    grants: Vec<(Actions, Target)>,
}

/// The server's split: the action up to the first colon, the type up to the
/// second, the id is the rest. `None` when the grammar refuses the scope.
fn parse(scope: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (action, rest) = match scope.split_once(':') {
        None => (scope, None),
        Some((action, rest)) => (action, Some(rest)),
    };
    if action.is_empty() {
        return None;
    }
    let Some(rest) = rest else { return Some((action, None, None)) };
    let (kind, id) = match rest.split_once(':') {
        None => (rest, None),
        Some((kind, id)) => (kind, Some(id)),
    };
    // JavaScript's trim: a blank id makes the whole scope invalid.
    if id.is_some_and(|id| id.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}').is_empty()) {
        return None;
    }
    Some((action, Some(kind).filter(|k| !k.is_empty()), id))
}

impl Ability {
    /// The ability of a `scopes` claim. Anything but an array of strings
    /// grants nothing; non-string entries are skipped.
    pub fn from_claim(scopes: Option<&Value>) -> Ability {
        let mut ability = Ability::default();
        if let Some(Value::Array(items)) = scopes {
            for scope in items.iter().filter_map(Value::as_str) {
                ability.add(scope);
            }
        }
        ability
    }

    /// The ability of a list of scope strings.
    pub fn from_scopes<'s>(scopes: impl IntoIterator<Item = &'s str>) -> Ability {
        let mut ability = Ability::default();
        for scope in scopes {
            ability.add(scope);
        }
        ability
    }

    fn add(&mut self, scope: &str) {
        let Some((action, kind, id)) = parse(scope) else { return };
        if action == "admin" && kind.is_none() {
            self.admin = true;
            return;
        }
        let Some(kind) = kind else { return };
        let actions = match action {
            "*" => Actions::Every,
            name => match Action::of(name) {
                Some(a) => Actions::One(a),
                None => return,
            },
        };
        let target = match (kind, id) {
            ("all", _) => Target::Everything,
            (kind, id) => match (ResourceType::of(kind), id) {
                (Some(k), None) => Target::Collection(k),
                (Some(k), Some(id)) => Target::One(k, id.to_owned()),
                (None, _) => return,
            },
        };
        self.grants.push((actions, target));
    }

    /// True when the token may do `action` on any one of `resources`.
    pub fn can(&self, action: Action, resources: &[Resource<'_>]) -> bool {
        self.admin
            || self.grants.iter().any(|(actions, target)| {
                let action_ok = match actions {
                    Actions::Every => true,
                    Actions::One(a) => *a == action,
                };
                action_ok
                    && match target {
                        Target::Everything => true,
                        Target::Collection(kind) => resources.iter().any(|r| r.kind == *kind),
                        Target::One(kind, id) => resources.iter().any(|r| r.kind == *kind && r.id == Some(id.as_str())),
                    }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ability(scopes: &[&str]) -> Ability {
        Ability::from_scopes(scopes.iter().copied())
    }

    const RUN: [Resource<'static>; 4] = [
        Resource { kind: ResourceType::Runs, id: Some("run_1") },
        Resource { kind: ResourceType::Tasks, id: Some("my-task") },
        Resource { kind: ResourceType::Tags, id: Some("env:staging") },
        Resource { kind: ResourceType::Batch, id: Some("batch_1") },
    ];

    #[test]
    fn a_run_is_readable_through_its_id_task_tags_and_batch() {
        for scope in [
            "read:runs:run_1",
            "read:tasks:my-task",
            "read:tags:env:staging",
            "read:batch:batch_1",
            "read:runs",
            "read:tasks",
            "read:tags",
            "read:all",
            "read:all:anything",
            "*:runs:run_1",
            "*:all",
            "admin",
            "admin:",
        ] {
            assert!(ability(&[scope]).can(Action::Read, &RUN), "{scope}");
        }
        for scope in [
            "read:runs:run_2",
            "read:tasks:other",
            "read:tags:env",
            "read:tags:env:staging:x",
            "write:runs:run_1",
            "write:all",
            "read",
            "read:",
            "read::run_1",
            ":runs:run_1",
            "read:runs: ",
            "read:runs:",
            "admin:runs",
            "read:run:run_1",
            "READ:runs:run_1",
        ] {
            assert!(!ability(&[scope]).can(Action::Read, &RUN), "{scope}");
        }
        assert!(!Ability::default().can(Action::Read, &RUN), "no scopes, no access");
    }

    #[test]
    fn the_claim_must_be_an_array_of_strings() {
        let claim = serde_json::json!(["read:runs:run_1", 7, null]);
        assert!(Ability::from_claim(Some(&claim)).can(Action::Read, &[Resource::run("run_1")]));
        let claim = serde_json::json!("admin");
        assert!(!Ability::from_claim(Some(&claim)).can(Action::Read, &[Resource::run("run_1")]));
        assert!(!Ability::from_claim(None).can(Action::Read, &[Resource::run("run_1")]));
    }

    #[test]
    fn actions_are_separate() {
        let a = ability(&["trigger:tasks:my-task", "batchTrigger:tasks", "write:runs:run_1"]);
        assert!(a.can(Action::Trigger, &[Resource::task("my-task")]));
        assert!(!a.can(Action::Trigger, &[Resource::task("other")]));
        assert!(a.can(Action::BatchTrigger, &[Resource::task("other")]));
        assert!(a.can(Action::Write, &[Resource::run("run_1")]));
        assert!(!a.can(Action::Read, &[Resource::run("run_1")]));
        assert!(!a.can(Action::Read, &[]));
    }

    #[test]
    fn collections_match_by_type() {
        let list = [Resource::collection(ResourceType::Runs)];
        assert!(ability(&["read:runs"]).can(Action::Read, &list));
        assert!(!ability(&["read:runs:run_1"]).can(Action::Read, &list));
    }
}
