//! `POST /_mock/runs/{runId}`: the admin API drives one created run, for
//! tests that decide the outcome themselves: move it to any status, complete
//! it with an output, fail it with an error. The request is journaled with
//! the run and its environment's key.

use super::{App, host_of};
use crate::auth::{Environment, KeyKind};
use crate::body::Body;
use crate::model::{ApiVersion, EngineStatus, Phase, SerializedError};
use bytes::Bytes;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

/// Where the route lives.
pub const PREFIX: &str = "/_mock/runs/";

/// The body: the status to move to, and what a finished run ends with.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Drive {
    status: EngineStatus,
    /// Only with COMPLETED_SUCCESSFULLY.
    output: Option<Value>,
    /// Only with a failed status.
    error: Option<SerializedError>,
}

fn reply(status: StatusCode, value: &Value) -> Response<Body> {
    super::json_response(status, Bytes::from(serde_json::to_vec(value).unwrap_or_default()))
}

/// Answers `POST /_mock/runs/{runId}` with the run as retrieve shows it.
pub fn handle(app: &App, req: &Request<()>, body: &Bytes) -> Response<Body> {
    let id = req.uri().path().strip_prefix(PREFIX).unwrap_or("").trim_end_matches('/');
    let (response, key) = drive(app, req, id, body);
    let run_id = (!id.is_empty()).then_some(id);
    app.journaled(req, run_id, key.as_deref(), None, response, None)
}

fn drive(app: &App, req: &Request<()>, id: &str, body: &Bytes) -> (Response<Body>, Option<String>) {
    let fail = |status, message: String| (reply(status, &json!({ "error": message })), None);
    let drive: Drive = match serde_json::from_slice(body) {
        Ok(d) => d,
        Err(e) => {
            return fail(StatusCode::BAD_REQUEST, format!("expected {{\"status\", \"output\"?, \"error\"?}}: {e}"));
        }
    };
    let phase = drive.status.phase();
    if drive.output.is_some() && phase != Phase::Succeeded {
        return fail(StatusCode::BAD_REQUEST, "`output` goes with COMPLETED_SUCCESSFULLY".into());
    }
    if drive.error.is_some() && phase != Phase::Failed {
        return fail(StatusCode::BAD_REQUEST, "`error` goes with a failed status".into());
    }
    let state = app.state();
    let ledger = &state.ledger;
    let now = state.clock.now();
    let env = crate::ledger::fingerprint_of("run_", id)
        .filter(|_| ledger.is_run_id(id))
        .and_then(|fp| ledger.by_fingerprint(fp).into_iter().find(|env| env.with(|st| st.entry_mut(id).is_some())));
    let Some(env) = env else {
        return fail(
            StatusCode::NOT_FOUND,
            format!("no created run {id}: only runs made through the API can be driven"),
        );
    };
    let outcome = env.with(|st| {
        let entry = st.entry_mut(id)?;
        let current = entry.status(now);
        if current.is_terminal() {
            return Some(Err(current));
        }
        if let Some(output) = &drive.output {
            entry.rare().output = Some(output.clone());
            entry.clear_output_packet();
        }
        if let Some(error) = &drive.error {
            entry.rare().error = Some(error.clone());
        }
        st.pin(id, drive.status, now)?.ok()?;
        st.view(id, now, false).map(Ok)
    });
    let key = Some(env.key.to_string());
    match outcome {
        Some(Ok(run)) => {
            let kind = KeyKind::of(&env.key).unwrap_or(KeyKind::Secret(Environment::Development));
            let body = app.render_run(&app.world(), &run, kind, ApiVersion::V20250716, &host_of(req), now);
            (super::json_response(StatusCode::OK, body), key)
        }
        Some(Err(current)) => {
            let message = format!("{id} is {}: a finished run stays finished", current.name());
            (reply(StatusCode::CONFLICT, &json!({ "error": message })), key)
        }
        None => fail(StatusCode::NOT_FOUND, format!("no created run {id}")),
    }
}
