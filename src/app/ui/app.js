// The trigger-mock dashboard. No framework, no build step, no request to
// anything but the mock: every view reads the admin API, and re-reads it
// when the event stream (GET /_mock/events) says that something changed.
"use strict";

const API = "/_mock";
const TOKEN_KEY = "trigger-mock-admin-token";
const state = { view: "environments", env: "", label: "", status: "", task: "", run: "", journal: [], lastSeq: 0, gens: null, clock: null };

/** Builds an element: h("td", {class: "x"}, "text", child...). Text is never parsed as HTML. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function headers(extra) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return Object.assign(token ? { authorization: `Bearer ${token}` } : {}, extra || {});
}

async function api(path, init) {
  const res = await fetch(API + path, Object.assign({ headers: headers(init && init.headers) }, init, { headers: headers(init && init.headers) }));
  if (res.status === 401) {
    document.getElementById("token-form").hidden = false;
    throw new Error("the admin token is needed");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || `${res.status}`);
  return body;
}

const post = (path, body) =>
  api(path, { method: "POST", body: body === undefined ? undefined : JSON.stringify(body), headers: { "content-type": "application/json" } });

/** `2026-01-01T00:00:00.000Z` → `2026-01-01 00:00:00.000` (UTC, as the mock keeps it). */
function time(at) {
  return at ? String(at).replace("T", " ").replace("Z", "") : "";
}

function statusClass(status) {
  if (/COMPLETED_SUCCESSFULLY|^COMPLETED$/.test(status)) return "status-ok";
  if (/FAIL|CRASH|ERROR|EXPIRED|TIMED_OUT|CANCELED|INTERRUPTED/.test(status)) return "status-bad";
  return "status-wait";
}

const badge = (status) => h("span", { class: `tag ${statusClass(status)}` }, status);

function untilText(until) {
  if (until === "forever") return "then stays";
  if (until.retrieves !== undefined) return `for ${until.retrieves} retrieve${until.retrieves === 1 ? "" : "s"}`;
  return `for ${until.ms / 1000} s`;
}

function timeline(t) {
  const items = t.steps.map((s) => h("li", {}, badge(s.status), " ", h("time", { datetime: s.at }, time(s.at))));
  if (t.next) {
    const when = t.next.at ? `at ${time(t.next.at)}` : `after ${t.next.afterRetrieves} more retrieve${t.next.afterRetrieves === 1 ? "" : "s"}`;
    items.push(h("li", { class: "next" }, `next: ${t.next.status} ${when}`));
  }
  const rest = (t.upcoming || []).slice(t.next ? 1 : 0);
  if (rest.length) items.push(h("li", { class: "next" }, `then ${rest.join(" → ")}`));
  const list = h("ol", { class: "timeline", "aria-label": "status timeline" }, items);
  return t.expiresAt ? h("div", {}, list, h("p", { class: "muted" }, `TTL expires it at ${time(t.expiresAt)} if still queued`)) : list;
}

// ---- clock and reset -------------------------------------------------------

async function refreshClock() {
  const c = await api("/clock");
  state.clock = c;
  document.getElementById("clock-now").value = time(c.now);
  document.getElementById("clock-now").textContent = time(c.now);
  document.getElementById("clock-mode").textContent = c.frozen ? "frozen" : "running";
  document.getElementById("clock-freeze").textContent = c.frozen ? "Let it run" : "Freeze";
}

async function clockChange(change) {
  const error = document.getElementById("clock-error");
  error.textContent = "";
  try {
    await post("/clock", change);
    await refreshClock();
  } catch (e) {
    error.textContent = `Clock: ${e.message}`;
  }
}

function wireControls() {
  document.getElementById("clock-freeze").addEventListener("click", () => clockChange({ freeze: !(state.clock && state.clock.frozen) }));
  document.getElementById("clock-advance").addEventListener("click", () =>
    clockChange({ advance: document.getElementById("clock-step").value }));
  document.getElementById("clock-set-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    clockChange({ set: document.getElementById("clock-set").value.trim() });
  });
  document.getElementById("reset-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const key = document.getElementById("reset-key").value;
    try {
      await post(`/reset${key ? `?env=${encodeURIComponent(key)}` : ""}`);
      await render();
    } catch (e) {
      document.getElementById("clock-error").textContent = `Reset: ${e.message}`;
    }
  });
  document.getElementById("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    document.getElementById("token-form").hidden = true;
    start();
  });
}

function fillResetKeys(envs) {
  const select = document.getElementById("reset-key");
  const current = select.value;
  select.replaceChildren(h("option", { value: "" }, "every environment"),
    ...envs.map((e) => h("option", { value: e.env, selected: e.env === current }, e.key)));
}

// ---- views -----------------------------------------------------------------

async function environmentsView() {
  const data = await api("/environments");
  fillResetKeys(data.environments);
  if (!state.env && data.environments.length) state.env = data.environments[0].env;
  const rows = data.environments.map((e) =>
    h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#runs?env=${e.env}` }, h("span", { class: "mono" }, e.key))),
      h("td", {}, e.environment || "?"),
      h("td", {}, e.requests),
      h("td", {}, e.errors ? h("span", { class: "status-bad" }, e.errors) : 0),
      h("td", {}, e.faults ? h("span", { class: "mark" }, e.faults) : 0),
      h("td", {}, e.runs),
      h("td", {}, time(e.lastAt)),
      h("td", {}, e.rateLimit ? `${e.rateLimit.available} of ${e.rateLimit.limit} left` : data.rateLimit ? "full" : "off"),
      h("td", {}, e.state ? `since ${time(e.state.since)}` : "reset")));
  return [
    h("h2", {}, "Environments"),
    h("p", { class: "muted" }, "Every key the journal has seen; a public access token counts under its environment's key."),
    rows.length
      ? h("table", {},
        h("caption", {}, `${rows.length} environment${rows.length === 1 ? "" : "s"}`),
        h("thead", {}, h("tr", {}, ["Key", "Environment", "Requests", "Errors", "Faults", "Runs", "Last request", "Rate limit", "Scenario state"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, rows))
      : h("p", {}, "No request yet. Point a client at this mock and its key shows up here."),
  ];
}

async function runsView() {
  const envs = await api("/environments");
  fillResetKeys(envs.environments);
  if (!envs.environments.some((e) => e.env === state.env)) state.env = envs.environments.length ? envs.environments[0].env : "";
  if (!state.env) return [h("h2", {}, "Runs"), h("p", {}, "No environment yet: runs are shown per key, once a key has made a request.")];
  const q = new URLSearchParams({ env: state.env });
  if (state.status) q.set("status", state.status);
  if (state.task) q.set("task", state.task);
  const data = await api(`/runs?${q}`);
  state.label = data.key;
  wakeAtNextStep(data.now, data.runs.map((r) => r.timeline));
  const filter = (label, name, options) =>
    h("label", {}, `${label} `, h("select", {
      name,
      onchange: (ev) => { state[name] = ev.target.value; go(); },
    }, h("option", { value: "" }, "any"), options.map((o) => h("option", { value: o, selected: o === state[name] }, o))));
  const rows = data.runs.map((r) =>
    h("tr", {},
      h("th", { scope: "row" }, h("a", { href: `#run/${encodeURIComponent(r.id)}?env=${state.env}` }, h("span", { class: "mono" }, r.id))),
      h("td", {}, r.task),
      h("td", {}, badge(r.status)),
      h("td", {}, timeline(r.timeline), r.plan && !r.seen ? h("p", { class: "muted" }, "not retrieved by this key yet: ", r.plan.map((s) => `${s.status} ${untilText(s.until)}`).join(", ")) : null),
      h("td", {}, r.source)));
  return [
    h("h2", {}, "Runs of ", h("span", { class: "mono" }, data.key)),
    h("div", { class: "filters" },
      h("label", {}, "Environment ", h("select", {
        name: "env",
        onchange: (ev) => { state.env = ev.target.value; go(); },
      }, envs.environments.map((e) => h("option", { value: e.env, selected: e.env === state.env }, e.key)))),
      filter("Status", "status", data.statuses),
      filter("Task", "task", data.tasks)),
    h("table", {},
      h("caption", {}, `${rows.length} run${rows.length === 1 ? "" : "s"} at ${time(data.now)} (mock clock)`),
      h("thead", {}, h("tr", {}, ["Run", "Task", "Status", "Timeline (mock clock)", "From"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, rows)),
  ];
}

function journalTable(records, caption) {
  const rows = records.map((r) => {
    const failed = r.status === 0 || r.status >= 400;
    return h("tr", { class: r.fault ? "faulted" : failed ? "failed" : null },
      h("td", {}, r.seq),
      h("td", {}, h("time", { datetime: r.at }, time(r.at))),
      h("td", {}, r.method),
      h("td", { class: "mono" }, r.path),
      h("td", { class: "mono" }, r.key || ""),
      h("td", {}, failed ? h("span", { class: "status-bad mark" }, r.status === 0 ? "reset" : r.status, " (error)") : r.status),
      h("td", {}, r.fault ? h("span", { class: "mark" }, "fault: ", r.fault) : ""));
  });
  return h("table", { class: "journal" },
    h("caption", {}, caption),
    h("thead", {}, h("tr", {}, ["#", "At (mock clock)", "Method", "Path", "Key", "Status", "Fault"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows));
}

async function runView() {
  const q = state.env ? `?env=${state.env}` : "";
  const d = await api(`/runs/${encodeURIComponent(state.run)}${q}`);
  const r = d.run;
  if (state.clock) wakeAtNextStep(state.clock.now, [r.timeline]);
  const packet = (name, p) => p ? `${name}: ${p.type}, ${p.bytes} bytes` : `${name}: none`;
  return [
    h("p", {}, h("a", { href: `#runs?env=${state.env}` }, "← Runs")),
    h("h2", {}, "Run ", h("span", { class: "mono" }, r.id), " ", badge(r.status)),
    h("dl", { class: "facts" },
      h("dt", {}, "Task"), h("dd", {}, r.task),
      h("dt", {}, "Seen by"), h("dd", { class: "mono" }, state.env && state.label ? state.label : "a new development key"),
      h("dt", {}, "From"), h("dd", {}, r.source),
      h("dt", {}, "Packets"), h("dd", {}, packet("payload", d.packets.payload), "; ", packet("output", d.packets.output)),
      r.ttlMs ? [h("dt", {}, "TTL"), h("dd", {}, `${r.ttlMs / 1000} s`)] : null),
    h("h3", {}, "Timeline"),
    timeline(r.timeline),
    r.plan ? h("p", { class: "muted" }, "Scenario: ", r.plan.map((s) => `${s.status} ${untilText(s.until)}`).join(", ")) : null,
    h("h3", {}, "Body"),
    h("div", { class: "bodies" },
      h("section", { "aria-label": "body for x-trigger-api-version 2025-07-16" }, h("h4", {}, "x-trigger-api-version: 2025-07-16"), h("pre", { tabindex: 0 }, JSON.stringify(d.bodies["2025-07-16"], null, 2))),
      h("section", { "aria-label": "body without an API version" }, h("h4", {}, "no API version"), h("pre", { tabindex: 0 }, JSON.stringify(d.bodies.none, null, 2)))),
    h("h3", {}, "Requests for this run"),
    d.requests.length ? journalTable(d.requests, `${d.requests.length} request(s) by this key`) : h("p", {}, "None yet by this key."),
  ];
}

async function journalView() {
  const page = await api(`/journal?after=${state.lastSeq}&limit=1000`);
  for (const r of page.records) state.journal.push(r);
  if (state.journal.length > 500) state.journal.splice(0, state.journal.length - 500);
  if (state.journal.length) state.lastSeq = state.journal[state.journal.length - 1].seq;
  if (!page.enabled) return [h("h2", {}, "Journal"), h("p", {}, "The journal is off (--journal-size 0).")];
  const newest = state.journal.slice().reverse();
  return [
    h("h2", {}, "Journal"),
    h("p", { class: "muted" }, "Newest first, live. Rows with an error answer or a fault are marked."),
    journalTable(newest, `${newest.length} request(s)`),
  ];
}

async function scenariosView() {
  const s = await api("/scenarios");
  return [
    h("h2", {}, "Scenarios"),
    s.reloadRefused
      ? h("div", { class: "alert", role: "alert" },
        h("p", {}, `The last reload (at ${time(s.reloadRefused.at)}) was refused; the previous scenarios keep serving:`),
        h("ul", {}, s.reloadRefused.problems.map((p) => h("li", { class: "mono" }, p))))
      : null,
    h("h3", {}, "Sources"),
    s.sources.length ? h("ul", {}, s.sources.map((x) => h("li", { class: "mono" }, x))) : h("p", {}, "No scenario loaded."),
    h("h3", {}, "Loaded"),
    h("ul", {}, s.summaries.map((x) => h("li", {}, x))),
    h("h3", {}, "Scripted runs"),
    h("ul", {}, s.runs.map((id) => h("li", {}, h("a", { href: `#run/${encodeURIComponent(id)}${state.env ? `?env=${state.env}` : ""}`, class: "mono" }, id)))),
  ];
}

/**
 * Under a running clock, time-driven steps happen with no request to tell the
 * page: it reads the view again once, when the earliest one it shows is due.
 */
let dueTimer = null;
function wakeAtNextStep(now, timelines) {
  clearTimeout(dueTimer);
  if (!state.clock || state.clock.frozen) return;
  const dues = timelines
    .flatMap((t) => [t.next && t.next.at, t.expiresAt])
    .filter(Boolean)
    .map((at) => Date.parse(at) - Date.parse(now))
    .filter((ms) => ms >= 0);
  if (dues.length) dueTimer = setTimeout(render, Math.min(...dues, 2 ** 31 - 1) + 50);
}

const VIEWS = { environments: environmentsView, runs: runsView, run: runView, journal: journalView, scenarios: scenariosView };

function parseHash() {
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query || "");
  const [view, ...rest] = (path || "environments").split("/");
  state.view = VIEWS[view] ? view : "environments";
  if (params.has("env")) state.env = params.get("env");
  if (state.view === "run") state.run = decodeURIComponent(rest.join("/"));
  for (const a of document.querySelectorAll("nav a")) {
    const target = a.getAttribute("href").slice(1);
    if (target === state.view || (state.view === "run" && target === "runs")) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function go() {
  const key = state.env ? `?env=${state.env}` : "";
  const hash = state.view === "run" ? `#run/${encodeURIComponent(state.run)}${key}` : `#${state.view}${state.view === "runs" ? key : ""}`;
  if (location.hash !== hash) location.hash = hash;
  else render();
}

let rendering = null;
let again = false;
/** Renders the current view; a render asked for while one runs happens once after it. */
async function render() {
  if (rendering) { again = true; return rendering; }
  rendering = (async () => {
    const view = document.getElementById("view");
    try {
      const focused = document.activeElement && document.activeElement.name;
      const content = await VIEWS[state.view]();
      view.replaceChildren(...content.flat().filter(Boolean));
      view.setAttribute("data-view", state.view);
      if (focused) {
        const el = view.querySelector(`[name="${focused}"]`);
        if (el) el.focus();
      }
    } catch (e) {
      view.replaceChildren(h("p", { class: "error", role: "alert" }, `Could not load this view: ${e.message}`));
    }
  })();
  await rendering;
  rendering = null;
  if (again) { again = false; await render(); }
}

// ---- live updates ----------------------------------------------------------

/** Reads GET /_mock/events (fetch rather than EventSource, so that it can send the admin token). */
async function listen() {
  const live = document.getElementById("live");
  for (;;) {
    try {
      const res = await fetch(`${API}/events`, { headers: headers() });
      if (!res.ok || !res.body) throw new Error(`${res.status}`);
      live.textContent = "live";
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
          if (data) changed(JSON.parse(data));
        }
      }
    } catch (e) {
      // fall through to the retry below
    }
    live.textContent = "disconnected; retrying…";
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function changed(gens) {
  const before = state.gens;
  state.gens = gens;
  if (!before) return;
  if (gens.clock !== before.clock) refreshClock().catch(() => {});
  if (gens.journal !== before.journal || gens.clock !== before.clock || gens.runs !== before.runs || gens.scenarios !== before.scenarios) {
    if (gens.runs !== before.runs && state.view === "journal") { state.journal = []; state.lastSeq = 0; }
    render();
  }
}

function start() {
  parseHash();
  refreshClock().catch((e) => { document.getElementById("clock-error").textContent = `Clock: ${e.message}`; });
  render();
}

window.addEventListener("hashchange", () => {
  parseHash();
  render().then(() => document.getElementById("main").focus({ preventScroll: true }));
});
window.addEventListener("DOMContentLoaded", () => {
  wireControls();
  start();
  listen();
});
