// CommonJS entry (for jest without ESM and other require() users): the same
// API, loaded lazily from the ES module. Everything that does I/O is async
// there already, so only the constants and resolveBinary need the module
// first: `await ready` (or call any function below) before using them.
"use strict";

const load = import("./index.js");

exports.ready = load;
exports.startTriggerMock = (options) => load.then((m) => m.startTriggerMock(options));
exports.createAdminClient = (baseUrl, options) => {
  // The client is synchronous to build; its methods wait for the module.
  const client = load.then((m) => m.createAdminClient(baseUrl, options));
  return new Proxy(
    {},
    {
      get: (_, name) =>
        name === "then" ? undefined : (...args) => client.then((c) => (typeof c[name] === "function" ? c[name](...args) : c[name])),
    },
  );
};
load.then((m) => {
  for (const name of ["ROUTES", "SERVE_FLAGS", "PLATFORM_PACKAGES", "DEFAULT_SECRET_KEY", "resolveBinary", "TriggerMockAdminError", "BinaryNotFoundError"]) {
    exports[name] = m[name];
  }
});
