// A client for the admin API (/_mock/). ROUTES mirrors the operations of the
// OpenAPI document (schemas/admin.openapi.json; a test checks they agree), and
// every method goes through `call`, so a new route is one line in ROUTES and
// one method below.

/** operationId -> method, path (with {params}) and query parameters, as the OpenAPI document has them. */
export const ROUTES = Object.freeze({
  getHealth: { method: "GET", path: "/_mock/health" },
  getOpenApi: { method: "GET", path: "/_mock/openapi.json" },
  reset: { method: "POST", path: "/_mock/reset", query: ["key", "env"] },
  getClock: { method: "GET", path: "/_mock/clock" },
  changeClock: { method: "POST", path: "/_mock/clock", body: true },
  getJournal: { method: "GET", path: "/_mock/journal", query: ["key", "runId", "limit", "after"] },
  clearJournal: { method: "DELETE", path: "/_mock/journal" },
  listScenarios: { method: "GET", path: "/_mock/scenarios" },
  putScenario: { method: "PUT", path: "/_mock/scenarios/{name}", body: true },
  deleteScenario: { method: "DELETE", path: "/_mock/scenarios/{name}" },
  getEnvironments: { method: "GET", path: "/_mock/environments" },
  getRuns: { method: "GET", path: "/_mock/runs", query: ["env", "status", "task"] },
  getRun: { method: "GET", path: "/_mock/runs/{runId}", query: ["env"] },
  driveRun: { method: "POST", path: "/_mock/runs/{runId}", body: true },
});

/** An admin request the server refused: `message` is the server's, `status` and `body` are its answer. */
export class TriggerMockAdminError extends Error {
  constructor({ operationId, method, path, status, body, text }) {
    const said = typeof body?.error === "string" ? body.error : text?.slice(0, 500) || "(no body)";
    const problems = Array.isArray(body?.problems) ? `\n${body.problems.join("\n")}` : "";
    super(`trigger-mock admin ${method} ${path} answered ${status}: ${said}${problems}`);
    this.name = "TriggerMockAdminError";
    this.operationId = operationId;
    this.status = status;
    this.body = body;
    /** The server's message alone. */
    this.serverMessage = said;
    /** For an invalid scenario: one `NAME:LINE:COLUMN: message` per problem. */
    this.problems = body?.problems;
  }
}

function instant(at) {
  return at instanceof Date ? at.toISOString() : String(at);
}

/**
 * A typed client for the admin API of the server at `baseUrl`.
 * @param {string} baseUrl e.g. http://127.0.0.1:PORT
 * @param {{ token?: string, fetch?: typeof fetch }} [options]
 */
export function createAdminClient(baseUrl, options = {}) {
  const base = String(baseUrl).replace(/\/+$/, "");
  const doFetch = options.fetch ?? globalThis.fetch;

  /** Any operation of the OpenAPI document, by its operationId. */
  async function call(operationId, { params = {}, query = {}, body } = {}) {
    const route = ROUTES[operationId];
    if (!route) throw new TypeError(`trigger-mock admin: no operation ${operationId}`);
    let path = route.path.replace(/\{(\w+)\}/g, (_, name) => {
      const value = params[name];
      if (value === undefined || value === "") throw new TypeError(`trigger-mock admin ${operationId}: ${name} is required`);
      return encodeURIComponent(String(value));
    });
    const search = new URLSearchParams();
    for (const name of route.query ?? []) {
      if (query[name] !== undefined && query[name] !== null) search.set(name, String(query[name]));
    }
    if (search.size) path += `?${search}`;
    const headers = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let payload;
    if (route.body && body !== undefined) {
      headers["content-type"] = "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    const res = await doFetch(`${base}${path}`, { method: route.method, headers, body: payload });
    const text = await res.text();
    let json;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!res.ok || json === undefined) {
      throw new TriggerMockAdminError({ operationId, method: route.method, path, status: res.status, body: json, text });
    }
    return json;
  }

  const changeClock = (change) => call("changeClock", { body: change });
  return {
    url: base,
    call,
    health: () => call("getHealth"),
    openApi: () => call("getOpenApi"),
    reset: (key) => call("reset", { query: { key } }),
    clock: () => call("getClock"),
    changeClock,
    setClock: (at) => changeClock({ set: instant(at) }),
    advanceClock: (by) => changeClock(typeof by === "number" ? { advanceMs: by } : { advance: String(by) }),
    freezeClock: (frozen = true) => changeClock({ freeze: frozen }),
    journal: (filter = {}) => call("getJournal", { query: filter }),
    records: async (filter = {}) => (await call("getJournal", { query: filter })).records,
    allRecords: async (filter = {}) => {
      // Pages forward with the server's cursor, so no page is larger than `limit` (or the server's 1000).
      const out = [];
      let after = filter.after ?? 0;
      for (;;) {
        const page = await call("getJournal", { query: { ...filter, after } });
        out.push(...page.records);
        if (page.next === undefined) return out;
        after = page.next;
      }
    },
    clearJournal: () => call("clearJournal"),
    scenarios: () => call("listScenarios"),
    putScenario: (name, scenario) => call("putScenario", { params: { name }, body: scenario }),
    deleteScenario: (name) => call("deleteScenario", { params: { name } }),
    environments: () => call("getEnvironments"),
    runs: (env, filter = {}) => call("getRuns", { query: { ...filter, env } }),
    run: (runId, env) => call("getRun", { params: { runId }, query: { env } }),
    driveRun: (runId, change) => call("driveRun", { params: { runId }, body: change }),
  };
}
