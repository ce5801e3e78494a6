//! The `tasks` section of scenario files: how the runs of a task behave once
//! the application triggers them (lifecycle, output, error, attempts,
//! duration, costs), checked into a [`Task`] the ledger uses.

use super::compile::{Diagnostic, Source};
use super::locate::{KeyPath, Seg};
use crate::catalogue::{RunSpec, StepSpec};
use crate::ledger::{Finish, OutputRule, Task};
use crate::lifecycle::{Step, Until, check_transition};
use crate::model::{EngineStatus, Phase, SerializedError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;

/// A task as a file declares it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TaskSpec {
    /// The task identifier, as `tasks.trigger(id, …)` names it.
    pub id: String,
    /// What the task stands for, for people.
    pub description: Option<String>,
    /// The statuses a triggered run goes through after it is queued.
    pub lifecycle: Option<Vec<StepSpec>>,
    /// A fixed output.
    pub output: Option<Value>,
    /// Where the output comes from instead: the run's payload (the default) or generated.
    pub output_from: Option<OutputFrom>,
    /// The error of a run that fails.
    pub error: Option<SerializedError>,
    /// The worker version a started run shows.
    pub version: Option<String>,
    /// Shown once the run has finished.
    pub attempt_count: Option<u32>,
    pub duration_ms: Option<u64>,
    pub cost_in_cents: Option<f64>,
    pub base_cost_in_cents: Option<f64>,
}

/// Where a task's output comes from when it sets no `output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OutputFrom {
    /// The run's payload, as is.
    Payload,
    /// A value generated from the seed and the run id.
    Generated,
    /// No output.
    None,
}

type Problem = (KeyPath, String);

/// Checks one task spec.
pub fn task_of(spec: &TaskSpec, origin: String) -> Result<Task, Problem> {
    let root = KeyPath::default();
    if spec.id.is_empty() {
        return Err((root.key("id"), "a task id is not empty".into()));
    }
    let mut task = Task::default_task();
    task.origin = origin;
    if let Some(steps) = &spec.lifecycle {
        let Some(first) = steps.first() else {
            return Err((root.key("lifecycle"), "a lifecycle has at least one step".into()));
        };
        let first_at = root.key("lifecycle").index(0).key("status");
        match first.status.phase() {
            Phase::Delayed => {
                return Err((
                    first_at,
                    "a triggered run starts queued or running; a delay comes from the trigger's `delay`".into(),
                ));
            }
            _ if first.status.is_terminal() => {
                return Err((
                    first_at,
                    format!("a triggered run cannot start {}: start it queued or running", first.status.name()),
                ));
            }
            _ => {}
        }
        if first.status != EngineStatus::Pending {
            check_transition(EngineStatus::Pending, first.status).map_err(|m| (first_at.clone(), m))?;
        }
        let as_run = RunSpec { id: "run_task".into(), lifecycle: Some(steps.clone()), ..RunSpec::default() };
        let lifecycle = super::compile::lifecycle_of(&as_run)?;
        let mut steps: Vec<Step> = lifecycle.steps;
        if steps[0].status.phase() != Phase::Queued {
            // Picked up the moment it is triggered.
            steps.insert(0, Step { status: EngineStatus::Pending, until: Until::Elapsed(0) });
        }
        task.lifecycle.steps = steps;
    }
    let last = task.lifecycle.steps.last().map_or(EngineStatus::Pending, |s| s.status);
    match (&spec.output, spec.output_from) {
        (Some(_), Some(_)) => return Err((root.key("outputFrom"), "give `output` or `outputFrom`, not both".into())),
        (Some(v), None) => task.output = OutputRule::Fixed(v.clone()),
        (None, Some(OutputFrom::Generated)) => task.output = OutputRule::Generated,
        (None, Some(OutputFrom::None)) => task.output = OutputRule::Nothing,
        (None, Some(OutputFrom::Payload) | None) => task.output = OutputRule::Echo,
    }
    if spec.output.is_some() && last.phase() != Phase::Succeeded {
        return Err((
            root.key("output"),
            format!("only a task whose runs end COMPLETED_SUCCESSFULLY has an output; this one ends {}", last.name()),
        ));
    }
    if let OutputRule::Fixed(v) = &task.output {
        task.lifecycle.output = Some(v.clone());
    }
    if let Some(error) = &spec.error {
        if last.phase() != Phase::Failed {
            return Err((
                root.key("error"),
                format!("only a task whose runs fail has an error; this one ends {}", last.name()),
            ));
        }
        task.lifecycle.error = Some(error.clone());
    }
    if let Some(v) = &spec.version {
        task.lifecycle.version = Some(v.clone());
    }
    for (field, cost) in [("costInCents", spec.cost_in_cents), ("baseCostInCents", spec.base_cost_in_cents)] {
        if cost.is_some_and(|c| !c.is_finite() || c < 0.0) {
            return Err((root.key(field), "costs are finite and not negative".into()));
        }
    }
    task.finish = Finish {
        attempt_count: spec.attempt_count,
        duration_ms: spec.duration_ms,
        cost_in_cents: spec.cost_in_cents,
        base_cost_in_cents: spec.base_cost_in_cents,
    };
    Ok(task)
}

/// Checks the tasks of one file into `out`, problems into `problems`.
pub fn compile_tasks(
    source: &Source,
    specs: &[TaskSpec],
    out: &mut rustc_hash::FxHashMap<String, Task>,
    first_seen: &mut HashMap<String, String>,
    problems: &mut Vec<Diagnostic>,
) {
    for (i, spec) in specs.iter().enumerate() {
        let here = KeyPath::default().key("tasks").index(i);
        if let Some(other) = first_seen.insert(spec.id.clone(), source.name.clone()) {
            problems.push(source.at(&here.key("id"), format!("task {} is already defined in {other}", spec.id)));
            continue;
        }
        match task_of(spec, format!("{} tasks[{i}]", source.display_name())) {
            Ok(task) => {
                out.insert(spec.id.clone(), task);
            }
            Err((path, message)) => {
                let full = path.0.iter().fold(here.clone(), |p, s| match s {
                    Seg::Key(k) => p.key(k),
                    Seg::Index(n) => p.index(*n),
                });
                problems.push(source.at(&full, message));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(status: EngineStatus, retrieves: Option<u32>) -> StepSpec {
        StepSpec { status, retrieves, duration: None }
    }

    #[test]
    fn a_running_first_step_is_picked_up_at_once() {
        let spec = TaskSpec {
            id: "t".into(),
            lifecycle: Some(vec![
                step(EngineStatus::Executing, Some(2)),
                step(EngineStatus::CompletedSuccessfully, None),
            ]),
            output: Some(serde_json::json!({"ok": true})),
            ..TaskSpec::default()
        };
        let task = task_of(&spec, "x".into()).unwrap_or_else(|(_, m)| panic!("{m}"));
        assert_eq!(task.lifecycle.steps[0], Step { status: EngineStatus::Pending, until: Until::Elapsed(0) });
        assert_eq!(task.lifecycle.steps[1].until, Until::Retrieves(2));
        assert_eq!(task.output, OutputRule::Fixed(serde_json::json!({"ok": true})));
    }

    #[test]
    fn impossible_tasks_are_refused_where_they_go_wrong() {
        let delayed = TaskSpec {
            id: "t".into(),
            lifecycle: Some(vec![step(EngineStatus::Delayed, None)]),
            ..TaskSpec::default()
        };
        assert_eq!(task_of(&delayed, "x".into()).unwrap_err().0.to_string(), "lifecycle[0].status");
        let failing_output = TaskSpec {
            id: "t".into(),
            lifecycle: Some(vec![
                step(EngineStatus::Executing, Some(1)),
                step(EngineStatus::CompletedWithErrors, None),
            ]),
            output: Some(Value::Bool(true)),
            ..TaskSpec::default()
        };
        assert_eq!(task_of(&failing_output, "x".into()).unwrap_err().0.to_string(), "output");
        let both = TaskSpec {
            id: "t".into(),
            output: Some(Value::Bool(true)),
            output_from: Some(OutputFrom::Generated),
            ..TaskSpec::default()
        };
        assert!(task_of(&both, "x".into()).unwrap_err().1.contains("not both"));
    }
}
