//! The scenario JSON Schema: every built-in scenario validates against it, and
//! files the server refuses are refused by it too.
//!
//! "The server refuses" means what `trigger-mock validate` and start-up do:
//! [`scenario::compile`] (the file on its own), then [`World::build`], which
//! also runs the catalogue checks on the file's runs (id form, `status` with
//! `lifecycle`, output and error against the status, trigger function, packets).
//! The tables of files below are checked as a scenario file on disk, in a
//! temporary folder that also holds data files, so that `file` packets resolve
//! as they do for `--scenario PATH`.

use crate::support::NOW;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use trigger_mock::scenario::{self, Source};
use trigger_mock::world::{Settings, World};

const SCHEMA_FILE: &str = "scenario.schema.json";

fn schema() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = format!("{}/schemas/{SCHEMA_FILE}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| jsonschema::validator_for(schema()).unwrap_or_else(|e| panic!("{SCHEMA_FILE}: {e}")))
}

/// The schema's complaints about `text`, as (instance path, message).
fn schema_errors(text: &str) -> Vec<(String, String)> {
    let instance: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    validator().iter_errors(&instance).map(|e| (e.instance_path().to_string(), e.to_string())).collect()
}

/// What the server says about `text` as the only scenario file: `Ok` when it
/// would serve it, else its diagnostics. `path` is where the file is on disk
/// (`None` for a built-in); `file` packets are resolved against its folder.
fn server_verdict(text: &str, path: Option<&Path>) -> Result<(), String> {
    let name = path.map_or_else(|| "x.json".into(), |p| p.display().to_string());
    let sources = [Source { name, text: text.into(), path: path.map(Path::to_path_buf) }];
    let joined = |problems: Vec<scenario::Diagnostic>| problems.iter().map(ToString::to_string).collect::<Vec<_>>();
    scenario::compile(&sources).map_err(|p| joined(p).join("\n"))?;
    let settings = Settings {
        seed: 0,
        anchor: NOW,
        generate: true,
        rate_limit: false,
        offload_threshold: trigger_mock::world::DEFAULT_OFFLOAD_THRESHOLD,
    };
    World::build(&settings, &sources).map(|_| ()).map_err(|p| joined(p).join("\n"))
}

#[test]
fn the_schema_is_a_valid_draft_2020_12_schema() {
    assert_eq!(schema()["$schema"], "https://json-schema.org/draft/2020-12/schema");
    if let Err(e) = jsonschema::meta::validate(schema()) {
        panic!("{SCHEMA_FILE} is not a valid schema: {e} at {}", e.instance_path());
    }
}

#[test]
fn every_builtin_scenario_validates_against_the_schema() {
    let names = scenario::builtin_names();
    assert!(!names.is_empty(), "no built-in scenarios are embedded");
    for name in names {
        let text = scenario::builtin(name).unwrap_or_else(|| panic!("builtin {name} has no text"));
        let errors = schema_errors(text);
        assert!(errors.is_empty(), "builtin:{name} breaks the schema: {errors:#?}");
        assert_eq!(server_verdict(text, None), Ok(()), "builtin:{name} is refused by the server");
        let value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(value["$schema"], "../../schemas/scenario.schema.json", "builtin:{name} points editors elsewhere");
    }
}

/// Every property of every object schema documents itself: the description is
/// what an editor shows on hover and in completions.
#[test]
fn every_property_in_the_schema_has_a_description() {
    fn walk(node: &Value, at: &str, missing: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                for (key, value) in map {
                    let here = format!("{at}/{key}");
                    if matches!(key.as_str(), "examples" | "default" | "const" | "enum") {
                        continue;
                    }
                    if key == "properties"
                        && let Value::Object(props) = value
                    {
                        for (name, prop) in props {
                            let documented =
                                prop.get("description").and_then(Value::as_str).is_some_and(|d| !d.is_empty());
                            // `false` forbids a key in a conditional; it is not a property.
                            if prop.is_object() && !documented && !at.contains("/if") && !at.contains("/then") {
                                missing.push(format!("{here}/{name}"));
                            }
                        }
                    }
                    walk(value, &here, missing);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, &format!("{at}/{i}"), missing);
                }
            }
            _ => {}
        }
    }
    let mut missing = Vec::new();
    walk(schema(), "", &mut missing);
    assert!(missing.is_empty(), "properties without a description: {missing:#?}");
}

/// Each `examples` entry is valid against the schema it illustrates, and the
/// top-level examples are accepted by the server.
#[test]
fn the_schemas_own_examples_are_valid() {
    fn collect<'a>(node: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match node {
            Value::Object(map) => {
                if map.contains_key("examples") {
                    out.push((at.clone(), node));
                }
                for (key, value) in map {
                    if !matches!(key.as_str(), "examples" | "default" | "const" | "enum") {
                        collect(value, format!("{at}/{key}"), out);
                    }
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    collect(item, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut with_examples = Vec::new();
    collect(schema(), String::new(), &mut with_examples);
    assert!(with_examples.len() > 10, "the schema has few examples: {}", with_examples.len());
    for (at, subschema) in with_examples {
        let mut standalone = subschema.clone();
        let map = standalone.as_object_mut().unwrap();
        map.remove("examples");
        map.insert("$schema".into(), schema()["$schema"].clone());
        map.insert("$defs".into(), schema()["$defs"].clone());
        let validator = jsonschema::validator_for(&standalone).unwrap_or_else(|e| panic!("{at}: {e}"));
        for example in subschema["examples"].as_array().unwrap() {
            let errors: Vec<String> = validator.iter_errors(example).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "example at {at} is invalid: {example}\n{errors:#?}");
        }
    }
    for example in schema()["examples"].as_array().unwrap() {
        let verdict = server_verdict(&example.to_string(), None);
        assert_eq!(verdict, Ok(()), "top-level example refused by the server: {example}");
    }
}

/// A file the server refuses, a fragment of what it says, and where the schema
/// must complain (a JSON pointer into the file).
struct Refused {
    name: &'static str,
    file: Value,
    server_says: &'static str,
    schema_at: &'static str,
}

fn refused(name: &'static str, file: Value, server_says: &'static str, schema_at: &'static str) -> Refused {
    Refused { name, file, server_says, schema_at }
}

/// `{"version": 1, "runs": [run]}`.
fn with_run(run: Value) -> Value {
    json!({ "version": 1, "runs": [run] })
}

/// `{"version": 1, "faults": [fault]}`.
fn with_fault(fault: Value) -> Value {
    json!({ "version": 1, "faults": [fault] })
}

/// A fault on every request with `action`.
fn with_action(action: Value) -> Value {
    with_fault(json!({ "action": action }))
}

/// A run whose lifecycle is `steps`.
fn with_steps(steps: Value) -> Value {
    with_run(json!({ "id": "run_a", "lifecycle": steps }))
}

/// A completed run whose `payloadPacket` is `packet`.
fn with_payload_packet(packet: Value) -> Value {
    with_run(json!({ "id": "run_a", "status": "COMPLETED_SUCCESSFULLY", "payloadPacket": packet }))
}

/// A completed run whose `outputPacket` is `packet`.
fn with_output_packet(packet: Value) -> Value {
    with_run(json!({ "id": "run_a", "status": "COMPLETED_SUCCESSFULLY", "outputPacket": packet }))
}

/// A temporary folder, removed on drop:
///
/// ```text
/// ROOT/secret.txt               outside the scenario's folder
/// ROOT/scenarios/scenario.json  the file under test, rewritten for each case
/// ROOT/scenarios/data/order.json, report.txt, super.json
/// ```
struct Disk {
    root: PathBuf,
    scenario: PathBuf,
}

impl Disk {
    fn new(label: &str) -> Disk {
        let root = std::env::temp_dir().join(format!("trigger-mock-scenario-schema-{label}-{}", std::process::id()));
        let folder = root.join("scenarios");
        std::fs::create_dir_all(folder.join("data")).unwrap();
        std::fs::write(folder.join("data/order.json"), br#"{"orderId":42,"items":["book","pen"]}"#).unwrap();
        std::fs::write(folder.join("data/report.txt"), b"Quarterly report\nAll good.\n").unwrap();
        std::fs::write(
            folder.join("data/super.json"),
            br#"{"json":{"at":"2026-01-01T00:00:00.000Z"},"meta":{"values":{"at":["Date"]}}}"#,
        )
        .unwrap();
        std::fs::write(root.join("secret.txt"), b"outside").unwrap();
        Disk { scenario: folder.join("scenario.json"), root }
    }

    /// An existing file, by its absolute path.
    fn absolute(&self, relative: &str) -> String {
        self.root.join("scenarios").join(relative).to_string_lossy().into_owned()
    }

    /// What the server says about `text` written to the scenario file.
    fn verdict(&self, text: &str) -> Result<(), String> {
        std::fs::write(&self.scenario, text).unwrap();
        server_verdict(text, Some(&self.scenario))
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn invalid_files(disk: &Disk) -> Vec<Refused> {
    vec![
        // The file itself.
        refused("missing version", json!({}), "missing field `version`", ""),
        refused("version 2", json!({ "version": 2 }), "version 2 is not known", "/version"),
        refused("version as a string", json!({ "version": "1" }), "invalid type", "/version"),
        refused("unknown top-level key", json!({ "version": 1, "fault": [] }), "unknown field `fault`", ""),
        refused("runs is not an array", json!({ "version": 1, "runs": {} }), "invalid type", "/runs"),
        // Runs.
        refused(
            "unknown key in a run",
            with_run(json!({ "id": "run_a", "stauts": "PENDING" })),
            "unknown field `stauts`",
            "/runs/0",
        ),
        refused("run without an id", with_run(json!({ "status": "PENDING" })), "missing field `id`", "/runs/0"),
        refused("run id with capitals", with_run(json!({ "id": "run_ABC" })), "an id is `run_`", "/runs/0/id"),
        refused("run id without the run_ prefix", with_run(json!({ "id": "task_1" })), "an id is `run_`", "/runs/0/id"),
        refused("run id that is only the prefix", with_run(json!({ "id": "run_" })), "an id is `run_`", "/runs/0/id"),
        refused(
            "run id longer than 128",
            with_run(json!({ "id": format!("run_{}", "a".repeat(125)) })),
            "an id is `run_`",
            "/runs/0/id",
        ),
        refused(
            "unknown status name",
            with_run(json!({ "id": "run_a", "status": "COMPLETED" })),
            "unknown variant `COMPLETED`",
            "/runs/0/status",
        ),
        refused(
            "both status and lifecycle",
            with_run(json!({ "id": "run_a", "status": "PENDING", "lifecycle": [{ "status": "PENDING" }] })),
            "either `status` or `lifecycle`",
            "/runs/0/lifecycle",
        ),
        refused(
            "ttl that is not a duration",
            with_run(json!({ "id": "run_a", "ttl": "ten" })),
            "not a duration",
            "/runs/0/ttl",
        ),
        refused("ttl of zero", with_run(json!({ "id": "run_a", "ttl": "0m" })), "not a duration", "/runs/0/ttl"),
        refused(
            "output on a run that does not complete",
            with_run(json!({ "id": "run_a", "status": "PENDING", "output": 1 })),
            "only a COMPLETED_SUCCESSFULLY run has an output",
            "/runs/0/status",
        ),
        refused(
            "error on a run that does not fail",
            with_run(json!({ "id": "run_a", "status": "COMPLETED_SUCCESSFULLY", "error": { "message": "no" } })),
            "only a failed run has an error",
            "/runs/0/status",
        ),
        refused(
            "error without a message",
            with_run(json!({ "id": "run_a", "status": "CRASHED", "error": { "name": "Error" } })),
            "missing field `message`",
            "/runs/0/error",
        ),
        refused(
            "unknown key in an error",
            with_run(json!({ "id": "run_a", "status": "CRASHED", "error": { "message": "x", "stack": "" } })),
            "unknown field `stack`",
            "/runs/0/error",
        ),
        refused(
            "schedule generator that is not CRON",
            with_run(json!({
                "id": "run_a",
                "schedule": {
                    "id": "sched_1",
                    "generator": { "type": "INTERVAL", "expression": "*", "description": "x" }
                }
            })),
            "unknown variant `INTERVAL`",
            "/runs/0/schedule/generator/type",
        ),
        refused(
            "batch trigger function without a batchId",
            with_run(json!({ "id": "run_a", "triggerFunction": "batchTrigger" })),
            "go together",
            "/runs/0",
        ),
        refused(
            "batchId with a non-batch trigger function",
            with_run(json!({ "id": "run_a", "triggerFunction": "trigger", "batchId": "batch_1" })),
            "go together",
            "/runs/0/batchId",
        ),
        refused(
            "triggerAndWait without a parent",
            with_run(json!({ "id": "run_a", "triggerFunction": "triggerAndWait" })),
            "needs a parent",
            "/runs/0",
        ),
        refused(
            "unknown trigger function",
            with_run(json!({ "id": "run_a", "triggerFunction": "schedule" })),
            "unknown variant",
            "/runs/0/triggerFunction",
        ),
        refused(
            "negative cost",
            with_run(json!({ "id": "run_a", "costInCents": -1 })),
            "not negative",
            "/runs/0/costInCents",
        ),
        refused(
            "negative attempt count",
            with_run(json!({ "id": "run_a", "attemptCount": -1 })),
            "expected u32",
            "/runs/0/attemptCount",
        ),
        refused("tags as a string", with_run(json!({ "id": "run_a", "tags": "a,b" })), "invalid type", "/runs/0/tags"),
        refused(
            "metadata as an array",
            with_run(json!({ "id": "run_a", "metadata": [] })),
            "invalid type",
            "/runs/0/metadata",
        ),
        // Lifecycle steps.
        refused("empty lifecycle", with_steps(json!([])), "at least one step", "/runs/0/lifecycle"),
        refused(
            "unknown key in a step",
            with_steps(json!([{ "status": "PENDING", "retrieve": 1 }, { "status": "EXECUTING" }])),
            "unknown field `retrieve`",
            "/runs/0/lifecycle/0",
        ),
        refused(
            "step without a status",
            with_steps(json!([{ "retrieves": 1 }])),
            "missing field `status`",
            "/runs/0/lifecycle/0",
        ),
        refused(
            "unknown status in a step",
            with_steps(json!([{ "status": "QUEUED" }])),
            "unknown variant `QUEUED`",
            "/runs/0/lifecycle/0/status",
        ),
        refused(
            "retrieves 0",
            with_steps(json!([{ "status": "PENDING", "retrieves": 0 }, { "status": "EXECUTING" }])),
            "at least 1 retrieve",
            "/runs/0/lifecycle/0/retrieves",
        ),
        refused(
            "both retrieves and for",
            with_steps(json!([{ "status": "PENDING", "retrieves": 1, "for": "1m" }, { "status": "EXECUTING" }])),
            "not both",
            "/runs/0/lifecycle/0/for",
        ),
        refused(
            "duration with a space",
            with_steps(json!([{ "status": "PENDING", "for": "30 s" }, { "status": "EXECUTING" }])),
            "not a duration",
            "/runs/0/lifecycle/0/for",
        ),
        refused(
            "duration without a unit",
            with_steps(json!([{ "status": "PENDING", "for": "30" }, { "status": "EXECUTING" }])),
            "not a duration",
            "/runs/0/lifecycle/0/for",
        ),
        refused(
            "duration with an unknown unit",
            with_steps(json!([{ "status": "PENDING", "for": "30ms" }, { "status": "EXECUTING" }])),
            "not a duration",
            "/runs/0/lifecycle/0/for",
        ),
        refused(
            "duration of zero",
            with_steps(json!([{ "status": "PENDING", "for": "0s" }, { "status": "EXECUTING" }])),
            "not a duration",
            "/runs/0/lifecycle/0/for",
        ),
        refused(
            "DELAYED step counted in retrieves",
            with_steps(json!([{ "status": "DELAYED", "retrieves": 1 }, { "status": "PENDING" }])),
            "a DELAYED step lasts a duration",
            "/runs/0/lifecycle/0",
        ),
        refused(
            "DELAYED last step without for",
            with_steps(json!([{ "status": "DELAYED" }])),
            "a DELAYED step lasts a duration",
            "/runs/0/lifecycle/0",
        ),
        refused(
            "EXPIRED first step without a ttl",
            with_steps(json!([{ "status": "EXPIRED" }])),
            "needs the run's `ttl`",
            "/runs/0",
        ),
        // Faults.
        refused(
            "unknown key in a fault",
            with_fault(json!({ "delayMs": 5, "delay": 5 })),
            "unknown field `delay`",
            "/faults/0",
        ),
        refused(
            "fault with neither action nor delayMs",
            with_fault(json!({ "runId": "run_a" })),
            "needs an `action`, a `delayMs`",
            "/faults/0",
        ),
        refused(
            "unknown route",
            with_fault(json!({ "route": "listen", "delayMs": 5 })),
            "unknown variant `listen`",
            "/faults/0/route",
        ),
        refused(
            "probability 1.5",
            with_fault(json!({ "probability": 1.5, "delayMs": 5 })),
            "not between 0 and 1",
            "/faults/0/probability",
        ),
        refused(
            "negative probability",
            with_fault(json!({ "probability": -0.1, "delayMs": 5 })),
            "not between 0 and 1",
            "/faults/0/probability",
        ),
        refused("nth 0", with_fault(json!({ "nth": 0, "delayMs": 5 })), "counted from 1", "/faults/0/nth"),
        refused(
            "nth with times",
            with_fault(json!({ "nth": 2, "times": 1, "delayMs": 5 })),
            "drop `after` and `times`",
            "/faults/0/times",
        ),
        refused(
            "nth with after",
            with_fault(json!({ "nth": 2, "after": 1, "delayMs": 5 })),
            "drop `after` and `times`",
            "/faults/0/after",
        ),
        refused("negative delayMs", with_fault(json!({ "delayMs": -1 })), "expected u64", "/faults/0/delayMs"),
        refused(
            "fractional times",
            with_fault(json!({ "times": 1.5, "delayMs": 5 })),
            "invalid type",
            "/faults/0/times",
        ),
        // Actions.
        refused(
            "action without a type",
            with_action(json!({ "status": 500 })),
            "missing field `type`",
            "/faults/0/action",
        ),
        refused(
            "unknown action type",
            with_action(json!({ "type": "timeout" })),
            "unknown variant `timeout`",
            "/faults/0/action/type",
        ),
        refused(
            "unknown key in an action",
            with_action(json!({ "type": "serverError", "code": 502 })),
            "unknown field `code`",
            "/faults/0/action",
        ),
        refused(
            "unknown key in an option-less action",
            with_action(json!({ "type": "reset", "status": 500 })),
            "unknown field `status`",
            "/faults/0/action",
        ),
        refused(
            "serverError 404",
            with_action(json!({ "type": "serverError", "status": 404 })),
            "not a 5xx status",
            "/faults/0/action/status",
        ),
        refused(
            "status 99",
            with_action(json!({ "type": "status", "status": 99 })),
            "not an HTTP status",
            "/faults/0/action/status",
        ),
        refused(
            "status 101",
            with_action(json!({ "type": "status", "status": 101 })),
            "informational (1xx)",
            "/faults/0/action/status",
        ),
        refused(
            "status 199",
            with_action(json!({ "type": "status", "status": 199 })),
            "informational (1xx)",
            "/faults/0/action/status",
        ),
        refused(
            "a content-length header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "content-length": "5" } })),
            "`content-length` frames the response",
            "/faults/0/action/headers",
        ),
        refused(
            "a Transfer-Encoding header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "Transfer-Encoding": "chunked" } })),
            "`transfer-encoding` frames the response",
            "/faults/0/action/headers",
        ),
        refused(
            "a connection header",
            with_action(json!({ "type": "status", "status": 503, "headers": { "CONNECTION": "close" } })),
            "`connection` frames the response",
            "/faults/0/action/headers",
        ),
        refused(
            "a keep-alive header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "keep-alive": "timeout=5" } })),
            "`keep-alive` frames",
            "/faults/0/action/headers",
        ),
        refused(
            "an upgrade header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "upgrade": "h2c" } })),
            "`upgrade` frames",
            "/faults/0/action/headers",
        ),
        refused(
            "a te header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "TE": "trailers" } })),
            "`te` frames",
            "/faults/0/action/headers",
        ),
        refused(
            "a trailer header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "trailer": "x-a" } })),
            "`trailer` frames",
            "/faults/0/action/headers",
        ),
        refused(
            "a proxy-connection header",
            with_action(json!({ "type": "status", "status": 200, "headers": { "Proxy-Connection": "close" } })),
            "`proxy-connection` frames",
            "/faults/0/action/headers",
        ),
        refused(
            "status 600",
            with_action(json!({ "type": "status", "status": 600 })),
            "not an HTTP status",
            "/faults/0/action/status",
        ),
        refused(
            "status action without a status",
            with_action(json!({ "type": "status" })),
            "missing field `status`",
            "/faults/0/action",
        ),
        refused(
            "status action with both body and text",
            with_action(json!({ "type": "status", "status": 200, "body": {}, "text": "{}" })),
            "give `body` or `text`, not both",
            "/faults/0/action/text",
        ),
        refused(
            "header name with a space",
            with_action(json!({ "type": "status", "status": 200, "headers": { "x teapot": "yes" } })),
            "is not a valid header",
            "/faults/0/action/headers",
        ),
        refused(
            "header value with a newline",
            with_action(json!({ "type": "status", "status": 200, "headers": { "x-a": "a\nb" } })),
            "is not a valid header",
            "/faults/0/action/headers/x-a",
        ),
        refused(
            "header value that is a number",
            with_action(json!({ "type": "status", "status": 200, "headers": { "retry-after": 5 } })),
            "invalid type",
            "/faults/0/action/headers/retry-after",
        ),
        refused(
            "notFound with a string",
            with_action(json!({ "type": "notFound", "shouldRetry": "no" })),
            "invalid type",
            "/faults/0/action/shouldRetry",
        ),
        refused(
            "dribble chunkBytes 0",
            with_action(json!({ "type": "dribble", "chunkBytes": 0 })),
            "chunkBytes is at least 1",
            "/faults/0/action/chunkBytes",
        ),
        // The rate limit.
        refused(
            "unknown key in rateLimit",
            json!({ "version": 1, "rateLimit": { "burst": 5 } }),
            "unknown field `burst`",
            "/rateLimit",
        ),
        refused(
            "rateLimit limit 0",
            json!({ "version": 1, "rateLimit": { "limit": 0 } }),
            "at least 1",
            "/rateLimit/limit",
        ),
        refused(
            "rateLimit refill 0",
            json!({ "version": 1, "rateLimit": { "refill": 0 } }),
            "at least 1",
            "/rateLimit/refill",
        ),
        refused(
            "rateLimit interval of zero",
            json!({ "version": 1, "rateLimit": { "interval": "0s" } }),
            "not a duration",
            "/rateLimit/interval",
        ),
        refused(
            "rateLimit interval in words",
            json!({ "version": 1, "rateLimit": { "interval": "ten seconds" } }),
            "not a duration",
            "/rateLimit/interval",
        ),
        // Packets: exactly one source.
        refused(
            "packet with both data and size",
            with_payload_packet(json!({ "data": { "a": 1 }, "size": "1KiB" })),
            "give exactly one of `data`, `size` or `file`",
            "/runs/0/payloadPacket",
        ),
        refused(
            "packet with both data and file",
            with_payload_packet(json!({ "data": "x", "file": "data/report.txt" })),
            "give exactly one of `data`, `size` or `file`",
            "/runs/0/payloadPacket",
        ),
        refused(
            "packet with neither data, size nor file",
            with_payload_packet(json!({ "type": "text/plain", "offload": "always" })),
            "give exactly one of `data`, `size` or `file`",
            "/runs/0/payloadPacket",
        ),
        refused(
            "packet whose data is null",
            with_payload_packet(json!({ "data": null })),
            "give exactly one of `data`, `size` or `file`",
            "/runs/0/payloadPacket/data",
        ),
        // Packets: sizes.
        refused(
            "packet size in words",
            with_payload_packet(json!({ "size": "lots" })),
            "a size is bytes, or a number with B, KB, MB, GB, KiB, MiB or GiB",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size in TiB",
            with_payload_packet(json!({ "size": "5TiB" })),
            "a size is bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size with a lower-case unit",
            with_payload_packet(json!({ "size": "5mib" })),
            "a size is bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size 65GiB",
            with_payload_packet(json!({ "size": "65GiB" })),
            "up to 64GiB",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size 69GB",
            with_payload_packet(json!({ "size": "69 GB" })),
            "up to 64GiB",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size one byte over 64 GiB",
            with_payload_packet(json!({ "size": 68_719_476_737_u64 })),
            "up to 64GiB",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "packet size one byte over 64 GiB, as a string",
            with_payload_packet(json!({ "size": "68719476737B" })),
            "up to 64GiB",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "negative packet size",
            with_payload_packet(json!({ "size": -1 })),
            "expected a size: a whole number of bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "fractional packet size",
            with_payload_packet(json!({ "size": 1.5 })),
            "expected a size: a whole number of bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "json packet below its smallest size",
            with_payload_packet(json!({ "size": 37 })),
            "a generated application/json packet has at least 38 bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "json packet of 0KiB",
            with_payload_packet(json!({ "type": "application/json", "size": "0KiB" })),
            "a generated application/json packet has at least 38 bytes",
            "/runs/0/payloadPacket/size",
        ),
        refused(
            "super+json packet below its smallest size",
            with_payload_packet(json!({ "type": "application/super+json", "size": "109 B" })),
            "a generated application/super+json packet has at least 110 bytes",
            "/runs/0/payloadPacket/size",
        ),
        // Packets: data against the type.
        refused(
            "text/plain packet whose data is a number",
            with_payload_packet(json!({ "type": "text/plain", "data": 42 })),
            "a text/plain packet's data is a string",
            "/runs/0/payloadPacket/data",
        ),
        refused(
            "text/plain output whose data is an object",
            with_output_packet(json!({ "type": "text/plain", "data": { "text": "hi" } })),
            "a text/plain packet's data is a string",
            "/runs/0/outputPacket/data",
        ),
        refused(
            "super+json packet without json",
            with_payload_packet(json!({ "type": "application/super+json", "data": { "meta": {} } })),
            "a super+json packet's data is an object with `json`",
            "/runs/0/payloadPacket/data",
        ),
        refused(
            "super+json packet whose data is a string",
            with_payload_packet(json!({ "type": "application/super+json", "data": "{\"json\":1}" })),
            "a super+json packet's data is an object with `json`",
            "/runs/0/payloadPacket/data",
        ),
        // Packets: files. The server checks these against the scenario's folder on disk.
        refused(
            "absolute file path",
            with_payload_packet(json!({ "type": "text/plain", "file": disk.absolute("data/report.txt") })),
            "is not a plain path below the scenario's folder",
            "/runs/0/payloadPacket/file",
        ),
        refused(
            "file path out of the folder",
            with_payload_packet(json!({ "type": "text/plain", "file": "../secret.txt" })),
            "is not a plain path below the scenario's folder",
            "/runs/0/payloadPacket/file",
        ),
        refused(
            "file path that goes down and out",
            with_output_packet(json!({ "type": "text/plain", "file": "data/../../secret.txt" })),
            "is not a plain path below the scenario's folder",
            "/runs/0/outputPacket/file",
        ),
        refused(
            "file path with .. that stays inside",
            with_payload_packet(json!({ "file": "data/../data/order.json" })),
            "is not a plain path below the scenario's folder",
            "/runs/0/payloadPacket/file",
        ),
        // The server refuses a leading `./` too (std::path::Component::CurDir).
        refused(
            "file path starting with ./",
            with_payload_packet(json!({ "file": "./data/order.json" })),
            "is not a plain path below the scenario's folder",
            "/runs/0/payloadPacket/file",
        ),
        refused(
            "empty file path",
            with_payload_packet(json!({ "file": "" })),
            "is not a file",
            "/runs/0/payloadPacket/file",
        ),
        // Packets: keys and enums.
        refused(
            "unknown key in a packet",
            with_payload_packet(json!({ "data": 1, "sise": "1KiB" })),
            "unknown field `sise`",
            "/runs/0/payloadPacket",
        ),
        refused("packet as a string", with_payload_packet(json!("5MiB")), "invalid type", "/runs/0/payloadPacket"),
        refused(
            "unknown packet type",
            with_payload_packet(json!({ "type": "application/xml", "data": "<a/>" })),
            "unknown variant `application/xml`",
            "/runs/0/payloadPacket/type",
        ),
        refused(
            "unknown offload",
            with_payload_packet(json!({ "data": 1, "offload": "sometimes" })),
            "unknown variant `sometimes`",
            "/runs/0/payloadPacket/offload",
        ),
        refused(
            "unknown url behaviour",
            with_output_packet(json!({ "data": 1, "url": "forbidden" })),
            "unknown variant `forbidden`",
            "/runs/0/outputPacket/url",
        ),
        // Packets against the run.
        refused(
            "payload and payloadPacket",
            with_run(json!({ "id": "run_a", "payload": { "a": 1 }, "payloadPacket": { "data": { "a": 1 } } })),
            "give `payload` or `payloadPacket`, not both",
            "/runs/0/payloadPacket",
        ),
        refused(
            "output and outputPacket",
            with_run(json!({
                "id": "run_a",
                "status": "COMPLETED_SUCCESSFULLY",
                "output": "done",
                "outputPacket": { "type": "text/plain", "data": "done" }
            })),
            "give `output` or `outputPacket`, not both",
            "/runs/0/outputPacket",
        ),
        refused(
            "outputPacket on a failed run",
            with_run(json!({ "id": "run_a", "status": "COMPLETED_WITH_ERRORS", "outputPacket": { "data": 1 } })),
            "only a COMPLETED_SUCCESSFULLY run has an output; this one ends COMPLETED_WITH_ERRORS",
            "/runs/0/status",
        ),
        refused(
            "outputPacket on a queued run",
            with_run(json!({ "id": "run_a", "status": "PENDING", "outputPacket": { "size": "1MiB" } })),
            "only a COMPLETED_SUCCESSFULLY run has an output",
            "/runs/0/status",
        ),
        // Tasks.
        refused("task without an id", with_task(json!({ "output": 1 })), "missing field `id`", "/tasks/0"),
        refused("task with an empty id", with_task(json!({ "id": "" })), "a task id is not empty", "/tasks/0/id"),
        refused(
            "unknown key in a task",
            with_task(json!({ "id": "t", "outptu": 1 })),
            "unknown field `outptu`",
            "/tasks/0",
        ),
        refused(
            "task that starts delayed",
            with_task(
                json!({ "id": "t", "lifecycle": [{ "status": "DELAYED", "for": "1m" }, { "status": "PENDING" }] }),
            ),
            "a triggered run starts queued or running",
            "/tasks/0/lifecycle/0/status",
        ),
        refused(
            "task that starts finished",
            with_task(json!({ "id": "t", "lifecycle": [{ "status": "COMPLETED_SUCCESSFULLY" }] })),
            "cannot start COMPLETED_SUCCESSFULLY",
            "/tasks/0/lifecycle/0/status",
        ),
        refused(
            "task with output and outputFrom",
            with_task(json!({ "id": "t", "output": 1, "outputFrom": "generated" })),
            "give `output` or `outputFrom`, not both",
            "/tasks/0/outputFrom",
        ),
        refused(
            "task with an unknown outputFrom",
            with_task(json!({ "id": "t", "outputFrom": "echo" })),
            "unknown variant `echo`",
            "/tasks/0/outputFrom",
        ),
        refused(
            "task with a negative cost",
            with_task(json!({ "id": "t", "costInCents": -1 })),
            "costs are finite and not negative",
            "/tasks/0/costInCents",
        ),
        refused(
            "task defined twice",
            json!({ "version": 1, "tasks": [{ "id": "t" }, { "id": "t", "extra": 1 }] }),
            "unknown field `extra`",
            "/tasks/1",
        ),
    ]
}

fn with_task(task: Value) -> Value {
    json!({ "version": 1, "tasks": [task] })
}

#[test]
fn files_the_server_refuses_are_refused_by_the_schema() {
    let disk = Disk::new("refused");
    let cases = invalid_files(&disk);
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "two cases are named {:?}", case.name);
        let text = serde_json::to_string_pretty(&case.file).unwrap();
        match disk.verdict(&text) {
            Ok(()) => failures.push(format!("{}: the server accepts it\n{text}", case.name)),
            Err(said) if !said.contains(case.server_says) => failures
                .push(format!("{}: the server refuses it, but not with {:?}: {said}", case.name, case.server_says)),
            Err(_) => {}
        }
        let errors = schema_errors(&text);
        if !errors.iter().any(|(at, _)| at == case.schema_at) {
            failures.push(format!(
                "{}: the schema should complain at {:?}; it says {errors:#?}\n{text}",
                case.name, case.schema_at
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}

fn valid_files() -> Vec<(&'static str, Value)> {
    vec![
        ("minimal", json!({ "version": 1 })),
        (
            "faults on every run-flow route",
            json!({
                "version": 1,
                "faults": [
                    { "route": "trigger", "times": 1, "action": { "type": "serverError" } },
                    { "route": "batches", "delayMs": 10 },
                    { "route": "list", "nth": 2, "action": { "type": "rateLimit" } },
                    { "route": "cancel", "runId": "run_*", "delayMs": 5 },
                    { "route": "replay", "delayMs": 5 },
                    { "route": "reschedule", "delayMs": 5 }
                ]
            }),
        ),
        (
            "tasks with every field",
            json!({
                "version": 1,
                "tasks": [
                    {
                        "id": "send-email",
                        "description": "sends and says so",
                        "lifecycle": [
                            { "status": "PENDING", "retrieves": 1 },
                            { "status": "EXECUTING", "for": "30s" },
                            { "status": "COMPLETED_SUCCESSFULLY" }
                        ],
                        "output": { "sent": true },
                        "version": "20260101.1",
                        "attemptCount": 2,
                        "durationMs": 1200,
                        "costInCents": 0.5,
                        "baseCostInCents": 0.0025
                    },
                    {
                        "id": "charge-card",
                        "lifecycle": [{ "status": "EXECUTING", "retrieves": 2 }, { "status": "COMPLETED_WITH_ERRORS" }],
                        "error": { "message": "Card declined", "name": "CardError" }
                    },
                    { "id": "echo", "outputFrom": "payload" },
                    { "id": "made-up", "outputFrom": "generated" },
                    { "id": "silent", "outputFrom": "none" }
                ]
            }),
        ),
        (
            "empty lists, a description and a $schema",
            json!({
                "$schema": "../../schemas/scenario.schema.json",
                "version": 1,
                "description": "nothing",
                "runs": [],
                "faults": []
            }),
        ),
        (
            "every action type",
            json!({
                "version": 1,
                "faults": [
                    {
                        "action": {
                            "type": "status",
                            "status": 418,
                            "body": { "error": "teapot" },
                            "headers": { "X-Teapot": "yes", "retry-after": "5\t", "x-note": "café" }
                        }
                    },
                    { "action": { "type": "status", "status": 200, "text": "not json" } },
                    {
                        "action": {
                            "type": "status",
                            "status": 204,
                            "headers": { "content-type": "text/plain", "tea": "1", "x-upgrade": "1", "connection-id": "c", "trailers": "t" }
                        }
                    },
                    { "action": { "type": "status", "status": 599 } },
                    { "action": { "type": "notFound" } },
                    { "action": { "type": "notFound", "shouldRetry": false } },
                    { "action": { "type": "rateLimit" } },
                    { "action": { "type": "rateLimit", "limit": 10, "remaining": -1, "resetMs": 0 } },
                    { "action": { "type": "serverError" } },
                    { "action": { "type": "serverError", "status": 599 } },
                    { "action": { "type": "reset" } },
                    { "action": { "type": "closeMidBody" } },
                    { "action": { "type": "truncate" } },
                    { "action": { "type": "malformed" } },
                    { "action": { "type": "breakSchema" } },
                    { "action": { "type": "dribble" } },
                    { "action": { "type": "dribble", "chunkBytes": 1, "intervalMs": 0 } }
                ]
            }),
        ),
        ("rateLimit with the defaults", json!({ "version": 1, "rateLimit": {} })),
        (
            "rateLimit with every key",
            json!({ "version": 1, "rateLimit": { "limit": 1, "refill": 1, "interval": "1h30m" } }),
        ),
        (
            "fault timing options",
            json!({
                "version": 1,
                "faults": [
                    { "runId": "run_flaky_*", "route": "retrieve", "nth": 1, "delayMs": 0 },
                    { "runId": "run_live", "route": "realtime", "nth": 2, "action": { "type": "serverError" } },
                    { "route": "any", "after": 0, "times": 0, "probability": 0, "delayMs": 10 },
                    {
                        "runId": "run_?",
                        "after": 3,
                        "times": 2,
                        "probability": 1,
                        "delayMs": 10,
                        "action": { "type": "reset" }
                    },
                    { "probability": 0.25, "action": { "type": "truncate" } }
                ]
            }),
        ),
        (
            "runs with every field",
            json!({
                "version": 1,
                "runs": [
                    {
                        "id": "run_parent",
                        "description": "the parent",
                        "status": "COMPLETED_SUCCESSFULLY",
                        "taskIdentifier": "parent-task",
                        "idempotencyKey": "key-1",
                        "version": "20250101.1",
                        "isTest": true,
                        "ttl": "0h10m",
                        "tags": ["b", "a", "a"],
                        "metadata": { "progress": 1 },
                        "payload": null,
                        "output": { "ok": true },
                        "schedule": {
                            "id": "sched_1",
                            "externalId": "user_1",
                            "deduplicationKey": "daily",
                            "generator": { "type": "CRON", "expression": "0 9 * * *", "description": "every day at 9" }
                        },
                        "region": "eu-central-1",
                        "triggerFunction": "trigger",
                        "attemptCount": 1,
                        "costInCents": 0.5,
                        "baseCostInCents": 0,
                        "durationMs": 1200
                    },
                    {
                        "id": "run_child",
                        "parent": "run_parent",
                        "status": "TIMED_OUT",
                        "error": { "message": "Timed out", "name": "Error", "stackTrace": "Error: Timed out" },
                        "batchId": "batch_1",
                        "triggerFunction": "batchTriggerAndWait"
                    },
                    { "id": "run_waiting_parent", "status": "WAITING_TO_RESUME" },
                    { "id": "run_waited_on", "parent": "run_waiting_parent", "triggerFunction": "triggerAndWait" },
                    { "id": "run_in_a_batch", "batchId": "batch_2" },
                    { "id": "run_by_convention_completed" },
                    { "id": format!("run_{}", "z".repeat(124)) }
                ]
            }),
        ),
        (
            "lifecycles",
            json!({
                "version": 1,
                "runs": [
                    {
                        "id": "run_poll",
                        "output": 42,
                        "lifecycle": [
                            { "status": "PENDING", "retrieves": 1 },
                            { "status": "EXECUTING", "for": "1w2d3h4m5s" },
                            { "status": "COMPLETED_SUCCESSFULLY" }
                        ]
                    },
                    { "id": "run_delay", "lifecycle": [{ "status": "DELAYED", "for": "1m" }] },
                    {
                        "id": "run_delay_then_queue",
                        "lifecycle": [{ "status": "DELAYED", "for": "30s" }, { "status": "PENDING" }]
                    },
                    { "id": "run_expires", "ttl": "5m", "lifecycle": [{ "status": "EXPIRED" }] },
                    { "id": "run_expiring", "ttl": "5m", "lifecycle": [{ "status": "PENDING" }] },
                    { "id": "run_one_step", "lifecycle": [{ "status": "CANCELED" }] }
                ]
            }),
        ),
        (
            "packets written out or generated",
            json!({
                "version": 1,
                "runs": [
                    {
                        "id": "run_big_import",
                        "status": "COMPLETED_SUCCESSFULLY",
                        "payloadPacket": { "type": "application/super+json", "size": "5MiB" },
                        "outputPacket": { "type": "text/plain", "data": "Imported 4096 rows." }
                    },
                    {
                        "id": "run_offloaded_expired",
                        "payloadPacket": {
                            "type": "application/json",
                            "data": { "orderId": 42 },
                            "offload": "always",
                            "url": "expired"
                        }
                    },
                    {
                        "id": "run_super_json_inline",
                        "status": "EXECUTING",
                        "payloadPacket": {
                            "type": "application/super+json",
                            "data": {
                                "json": { "at": "2026-01-01T00:00:00.000Z" },
                                "meta": { "values": { "at": ["Date"] } }
                            },
                            "offload": "never"
                        }
                    },
                    {
                        "id": "run_super_json_bare",
                        "payloadPacket": { "type": "application/super+json", "data": { "json": null } }
                    },
                    { "id": "run_json_string", "payloadPacket": { "data": "just a string" } },
                    { "id": "run_json_false", "payloadPacket": { "data": false, "url": "valid" } },
                    { "id": "run_text_empty", "payloadPacket": { "type": "text/plain", "data": "" } },
                    { "id": "run_smallest_json", "payloadPacket": { "size": 38 } },
                    {
                        "id": "run_smallest_super_json",
                        "payloadPacket": { "type": "application/super+json", "size": " 110 B " }
                    },
                    { "id": "run_smallest_text", "payloadPacket": { "type": "text/plain", "size": 0 } },
                    { "id": "run_sized_kb", "payloadPacket": { "size": "0002KB", "offload": "auto" } },
                    { "id": "run_sized_mb", "payloadPacket": { "size": "2MB", "url": "notFound" } },
                    { "id": "run_largest", "payloadPacket": { "size": "64GiB", "url": "truncated" } },
                    { "id": "run_largest_bytes", "payloadPacket": { "type": "text/plain", "size": 68_719_476_736u64 } },
                    { "id": "run_largest_gb", "payloadPacket": { "size": "68 GB" } },
                    {
                        "id": "run_poll_output",
                        "outputPacket": { "type": "text/plain", "size": "768KiB" },
                        "lifecycle": [{ "status": "EXECUTING", "retrieves": 1 }, { "status": "COMPLETED_SUCCESSFULLY" }]
                    },
                    { "id": "run_completed_by_convention", "outputPacket": { "data": [1, 2, 3], "offload": "always" } }
                ]
            }),
        ),
        (
            "packets read from files next to the scenario",
            json!({
                "version": 1,
                "runs": [
                    {
                        "id": "run_from_files",
                        "status": "COMPLETED_SUCCESSFULLY",
                        "payloadPacket": { "file": "data/order.json" },
                        "outputPacket": { "type": "text/plain", "file": "data/report.txt", "url": "expired" }
                    },
                    {
                        "id": "run_from_file_offloaded",
                        "payloadPacket": {
                            "type": "application/super+json",
                            "file": "data//./super.json",
                            "offload": "always"
                        }
                    }
                ]
            }),
        ),
    ]
}

#[test]
fn files_the_server_accepts_are_accepted_by_the_schema() {
    let disk = Disk::new("accepted");
    let mut failures = Vec::new();
    for (name, file) in valid_files() {
        let text = serde_json::to_string_pretty(&file).unwrap();
        if let Err(said) = disk.verdict(&text) {
            failures.push(format!("{name}: the server refuses it: {said}\n{text}"));
        }
        let errors = schema_errors(&text);
        if !errors.is_empty() {
            failures.push(format!("{name}: the schema refuses it: {errors:#?}\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
