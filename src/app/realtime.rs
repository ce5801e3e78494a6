//! The realtime feeds: `GET /realtime/v1/runs/{runId}`, `GET
//! /realtime/v1/runs?tags=…` and `GET /realtime/v1/batches/{batchId}`, in
//! the Electric long-poll protocol ([`crate::realtime`]).
//!
//! A snapshot (`offset=-1`) answers at once with every row. A live poll
//! (`live=true`) answers at once when a row moved past the client's offset,
//! and otherwise waits on the [`crate::notify::Hub`] until its run changes,
//! its next time-driven step is due, the mock clock moves, an admin action
//! resets state, or the hold time ([`crate::config::Config::realtime_hold`])
//! runs out; then it answers `[up-to-date]`.
//!
//! Runs the caller's environment created are read from its ledger, rendered
//! from the same [`Run`] retrieve shows; their offsets order by the
//! environment's change number too ([`crate::ledger::Entry::realtime_changes`]).
//!
//! Realtime requests read a scripted run's lifecycle exactly as a retrieve by
//! the same key would see it, and apply time-driven steps, but they are not
//! retrieves: they never count towards a step that lasts a number of
//! retrieves. Such a step moves on when the application retrieves the run
//! (e.g. `runs.poll`), and that retrieve wakes the realtime watchers. The
//! default task of a triggered run is such a step: its feed shows EXECUTING
//! until a retrieve sees the run.

use super::App;
use crate::auth::{Environment, Principal};
use crate::errors::ApiError;
use crate::model::{ApiVersion, Run};
use crate::notify::{Topic, Wake};
use crate::realtime::{self, Columns, Offset, Operation, Query, RowOptions};
use crate::scope::{Action, Resource, ResourceType};
use crate::time::Millis;
use crate::world::World;
use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// Which feed a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feed<'a> {
    /// `/realtime/v1/runs/{runId}`
    Run(&'a str),
    /// `/realtime/v1/runs?tags=…`
    Tags,
    /// `/realtime/v1/batches/{batchId}`
    Batch(&'a str),
}

/// The tag feed's window when the request gives no `createdAt`.
pub const DEFAULT_WINDOW_MS: i64 = 24 * 3_600_000;

/// A realtime answer before body-shaping faults are applied.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One row of a feed as it stands now.
struct Member {
    run: Run,
    offset: Offset,
    /// When time alone next changes it, on the mock clock.
    due: Option<Millis>,
}

const ELECTRIC_VERSION: &str = "x-trigger-electric-version";

fn header(headers: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(HeaderName::from_static(name), v);
    }
}

fn skip_claim(principal: &Principal<'_>) -> Vec<String> {
    principal
        .token()
        .and_then(|t| t.realtime.as_ref())
        .and_then(|r| r.get("skipColumns"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).take(realtime::MAX_LIST).map(str::to_owned).collect())
        .unwrap_or_default()
}

impl App {
    /// A run the environment of `key` created, as retrieve shows it at
    /// `now` (time applied, no retrieve counted).
    fn created(entry: &mut crate::ledger::Entry, now: Millis) -> Member {
        let run = entry.view(now);
        let offset = Offset { updated_ms: run.updated_at.0, changes: entry.realtime_changes() };
        Member { offset, due: entry.next_due(now), run }
    }

    /// The runs of `key`'s ledger that `keep` selects, as retrieve shows them at `now`.
    fn created_where(&self, key: &str, now: Millis, keep: impl Fn(&[String], Option<&str>) -> bool) -> Vec<Member> {
        let Some(env) = self.state.ledger.env(key) else { return Vec::new() };
        env.with(|st| {
            st.runs
                .values_mut()
                .filter(|e| {
                    let (tags, batch) = e.topics();
                    keep(tags, batch)
                })
                .map(|e| App::created(e, now))
                .collect()
        })
    }

    /// A run as `key` sees it at `now`, with its offset and next due
    /// instant; scripted runs move by time, never by this read. Runs the
    /// environment created come from its ledger, and what it did to other
    /// runs (a cancel, tags, metadata) is applied to them, as on retrieve.
    fn observe(&self, world: &World, key: &str, id: &str, now: Millis) -> Option<Member> {
        let ledger = &self.state.ledger;
        if ledger.is_run_id(id) {
            return ledger.env(key)?.with(|st| st.entry_mut(id).map(|e| App::created(e, now)));
        }
        let mut member = self.observe_world(world, key, id, now)?;
        if let Some(overlay) = ledger.env_with_overlays(key).and_then(|env| env.with(|st| st.overlays.get(id).cloned()))
        {
            overlay.apply(&mut member.run);
            member.offset.updated_ms = member.run.updated_at.0;
            // A cancel is one more status change, even within the millisecond of the last.
            member.offset.changes += u64::from(overlay.canceled_at.is_some());
            if member.run.status.is_terminal() {
                member.due = None;
            }
        }
        Some(member)
    }

    /// A catalogue, scenario or generated run as `key` sees it at `now`.
    fn observe_world(&self, world: &World, key: &str, id: &str, now: Millis) -> Option<Member> {
        // Built on first use, so before the key's lock is taken.
        if let (Some(lifecycle), Some(base)) = (world.lifecycle(id), world.store.related(id)) {
            return self.state.keys.with(key, now, |ks| {
                let epoch = ks.epoch;
                let start = || crate::lifecycle::Progress::start(base, lifecycle, world.anchor, epoch);
                ks.with_progress(id, start, |progress| {
                    let run = progress.view(base, lifecycle, now);
                    let offset = Offset { updated_ms: run.updated_at.0, changes: progress.changes() as u64 };
                    Some(Member { offset, due: progress.next_due(lifecycle), run })
                })
            });
        }
        let run = match world.store.related(id) {
            Some(defined) => defined.clone(),
            None => Run::clone(&*world.store.generated(id)?),
        };
        Some(Member { offset: Offset { updated_ms: run.updated_at.0, changes: 0 }, due: None, run })
    }

    /// The rows of `feed` now: the catalogue's by id, then the created ones in creation order.
    fn members(&self, world: &World, key: &str, feed: Feed<'_>, q: &Query, now: Millis) -> Vec<Member> {
        match feed {
            Feed::Run(id) => self.observe(world, key, id, now).into_iter().collect(),
            Feed::Tags => {
                let since = now.plus(-q.created_within_ms.unwrap_or(DEFAULT_WINDOW_MS));
                world
                    .store
                    .entries()
                    .iter()
                    .filter(|e| world.store.related(&e.id).is_some_and(|r| q.tags.iter().all(|t| r.tags.contains(t))))
                    .filter_map(|e| self.observe(world, key, &e.id, now))
                    .chain(self.created_where(key, now, |tags, _| q.tags.iter().all(|t| tags.contains(t))))
                    .filter(|m| m.run.created_at >= since)
                    .collect()
            }
            Feed::Batch(batch) => world
                .store
                .entries()
                .iter()
                .filter(|e| world.store.related(&e.id).is_some_and(|r| r.batch_id.as_deref() == Some(batch)))
                .filter_map(|e| self.observe(world, key, &e.id, now))
                .chain(self.created_where(key, now, |_, b| b == Some(batch)))
                .collect(),
        }
    }

    /// True when `key`'s environment created the batch `id` (a batch feed
    /// of a batch whose items have not arrived yet is empty, not missing).
    fn created_batch(&self, key: &str, id: &str) -> bool {
        self.state.ledger.env(key).is_some_and(|env| env.with(|st| st.batch_mut(id).is_some()))
    }

    /// Answers a realtime request (authentication, rate limits and faults
    /// were decided by the caller).
    pub(super) async fn realtime(
        &self,
        world: Arc<World>,
        req: &Request<()>,
        feed: Feed<'_>,
        principal: &Principal<'_>,
    ) -> Result<Answer, ApiError> {
        let q = Query::parse(req.uri().query());
        let key = principal.scenario_key();
        if let Feed::Run(id) = feed
            && !id.starts_with("run_")
        {
            return Err(ApiError::InvalidRunId);
        }
        // Loader routes: a missing resource is a 404 before the scope check.
        let first = self.members(&world, key, feed, &q, self.state.clock.now());
        let not_found = ApiError::RunNotFound { should_retry: self.state.not_found_retry };
        let resources: Vec<Resource<'_>> = match feed {
            Feed::Run(id) => {
                let member = first.first().ok_or(not_found)?;
                let mut r = Resource::of_run(&member.run);
                r.insert(0, Resource::run(id));
                r
            }
            Feed::Tags => {
                let mut r = vec![Resource::collection(ResourceType::Runs), Resource::collection(ResourceType::Tags)];
                r.extend(q.tags.iter().map(|t| Resource { kind: ResourceType::Tags, id: Some(t) }));
                r
            }
            Feed::Batch(id) => {
                if first.is_empty() && !self.created_batch(key, id) {
                    return Err(not_found);
                }
                vec![Resource::batch(id), Resource::collection(ResourceType::Runs)]
            }
        };
        principal.authorize(Action::Read, &resources)?;

        let kind = principal.render_kind();
        let claim = skip_claim(principal);
        let mut columns = Columns::ALL.skip(q.skip_columns.iter().chain(claim.iter()).map(String::as_str));
        if matches!(kind, crate::auth::KeyKind::Public(_)) {
            // Legacy public keys see no payload or output, as on retrieve.
            columns = columns.skip(["payload", "output"]);
        }
        let version = ApiVersion::from_header(req.headers().get(ApiVersion::header_name()).map(HeaderValue::as_bytes));
        let o = RowOptions { columns, version, zero_costs: kind.environment() == Environment::Development };
        let handle = match feed {
            Feed::Run(id) => format!("run-{id}"),
            Feed::Batch(id) => format!("batch-{id}"),
            Feed::Tags => {
                let mut tags = q.tags.clone();
                tags.sort();
                let window = q.created_within_ms.unwrap_or(DEFAULT_WINDOW_MS);
                format!("tags-{:016x}", crate::generate::stable_hash(format!("{}|{window}", tags.join(",")).as_bytes()))
            }
        };
        let legacy = !req.headers().contains_key(ELECTRIC_VERSION);
        let mut headers = HeaderMap::new();
        header(&mut headers, "cache-control", "no-store");
        header(&mut headers, "access-control-allow-origin", "*");
        header(&mut headers, "access-control-expose-headers", "*");
        header(&mut headers, if legacy { "electric-shape-id" } else { "electric-handle" }, &handle);
        let offset_header = if legacy { "electric-chunk-last-offset" } else { "electric-offset" };

        let Some(since) = q.offset else {
            // A snapshot: every row, inserted.
            let mut messages: Vec<Value> =
                first.iter().map(|m| realtime::change(&m.run, Operation::Insert, o)).collect();
            messages.push(realtime::up_to_date());
            let top = first.iter().map(|m| m.offset).max().unwrap_or(Offset::ZERO);
            header(&mut headers, offset_header, &top.render());
            header(&mut headers, "electric-schema", &columns.schema());
            header(&mut headers, "electric-up-to-date", "");
            return Ok(answer(StatusCode::OK, headers, &messages));
        };
        if q.handle.as_deref().is_some_and(|h| h != handle) {
            // Another shape's position: the client starts over with this handle.
            header(&mut headers, offset_header, "-1");
            return Ok(answer(StatusCode::CONFLICT, headers, &[realtime::must_refetch()]));
        }
        let single = matches!(feed, Feed::Run(_));
        let changed = |m: &Member| if single { m.offset != since } else { m.offset > since };

        let hold = self.state.realtime_hold;
        let deadline = tokio::time::Instant::now() + hold;
        let topic = match feed {
            Feed::Run(id) => Topic::Run(id.into()),
            Feed::Batch(id) => Topic::Batch(id.into()),
            Feed::Tags => q.tags.first().map_or(Topic::Any, |t| Topic::Tag(t.as_str().into())),
        };
        let watch = q.live.then(|| self.state.hub.watch(key, topic));
        let mut members = first;
        let mut done = !q.live;
        loop {
            let rows: Vec<&Member> = members.iter().filter(|m| changed(m)).collect();
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            let waiting = watch.as_ref().filter(|_| rows.is_empty() && !done && !remaining.is_zero());
            let Some(watch) = waiting else {
                let mut messages: Vec<Value> =
                    rows.iter().map(|m| realtime::change(&m.run, Operation::Update, o)).collect();
                messages.push(realtime::up_to_date());
                let top =
                    members.iter().map(|m| m.offset).max().map_or(since, |t| if single { t } else { t.max(since) });
                header(&mut headers, offset_header, &top.render());
                if q.live {
                    header(&mut headers, "electric-cursor", &q.cursor.map_or(1, |c| c.saturating_add(1)).to_string());
                } else {
                    header(&mut headers, "electric-schema", &columns.schema());
                }
                header(&mut headers, "electric-up-to-date", "");
                return Ok(answer(StatusCode::OK, headers, &messages));
            };
            // Generations first, state second: a change in between is never lost.
            let mark = watch.mark();
            let now = self.state.clock.now();
            members = self.members(&self.world(), key, feed, &q, now);
            if members.iter().any(changed) {
                continue;
            }
            let due = members.iter().filter_map(|m| m.due).min().map(|at| {
                if self.state.clock.is_frozen() {
                    Duration::MAX
                } else {
                    Duration::from_millis(u64::try_from(at.0.saturating_sub(now.0)).unwrap_or(0))
                }
            });
            let wake = watch.wait(mark, due, remaining).await;
            done = matches!(wake, Wake::Timeout | Wake::Closed);
            members = self.members(&self.world(), key, feed, &q, self.state.clock.now());
        }
    }
}

fn answer(status: StatusCode, headers: HeaderMap, messages: &[Value]) -> Answer {
    Answer { status, headers, body: Bytes::from(serde_json::to_vec(messages).unwrap_or_default()) }
}
