// Generates the TypeScript types of the package from the repository's schemas,
// so that no shape is written by hand twice:
//   ../../schemas/scenario.schema.json  -> generated/scenario.d.ts (ScenarioFile and its parts)
//   ../../schemas/admin.openapi.json    -> generated/admin.d.ts    (components.schemas of the admin API)
// With --check it writes nothing and exits 1 when a committed file is out of date.
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, "..");
const schemas = path.resolve(pkg, "..", "..", "schemas");
const options = { bannerComment: "", additionalProperties: false, strictIndexSignatures: true, style: { printWidth: 110 } };

function banner(source) {
  return `// Generated from schemas/${source} by scripts/generate-types.mjs (npm run generate). Do not edit.\n\n`;
}

const SHAPE = ["type", "$ref", "enum", "const", "properties", "items", "prefixItems", "oneOf", "anyOf", "allOf", "additionalProperties"];
const shapes = (s) => s && typeof s === "object" && SHAPE.some((k) => k in s);

/**
 * Prepares a schema for TypeScript: rules TypeScript cannot state (if/then,
 * dependentSchemas, not, "exactly one of these keys": `trigger-mock validate`
 * checks them) are dropped, and a schema that allows any JSON value becomes
 * `unknown`.
 */
function forTypeScript(schema) {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return schema;
  const out = { ...schema };
  delete out.dependentSchemas;
  delete out.if;
  delete out.then;
  delete out.else;
  delete out.not;
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(out[key]) && !out[key].some(shapes)) delete out[key];
  }
  if (!SHAPE.some((k) => k in out)) out.tsType = "unknown";
  for (const key of ["properties", "$defs", "patternProperties"]) {
    if (out[key]) out[key] = Object.fromEntries(Object.entries(out[key]).map(([k, v]) => [k, forTypeScript(v)]));
  }
  for (const key of ["items", "additionalProperties"]) {
    if (out[key] && typeof out[key] === "object") out[key] = forTypeScript(out[key]);
  }
  for (const key of ["prefixItems", "oneOf", "anyOf", "allOf"]) {
    if (Array.isArray(out[key])) out[key] = out[key].map(forTypeScript);
  }
  return out;
}

async function scenarioTypes() {
  const schema = forTypeScript(JSON.parse(await readFile(path.join(schemas, "scenario.schema.json"), "utf8")));
  // The root type's name comes from its title.
  schema.title = "ScenarioFile";
  return banner("scenario.schema.json") + (await compile(schema, "ScenarioFile", options));
}

async function adminTypes() {
  const doc = JSON.parse(await readFile(path.join(schemas, "admin.openapi.json"), "utf8"));
  const names = Object.keys(doc.components.schemas);
  // One root that references every component, so each becomes a named type.
  const root = {
    title: "AdminSchemas",
    description: "Every schema of the admin API's OpenAPI document, by name.",
    type: "object",
    additionalProperties: false,
    required: names,
    properties: Object.fromEntries(names.map((n) => [n, { $ref: `#/components/schemas/${n}` }])),
    components: doc.components,
  };
  return banner("admin.openapi.json") + (await compile(root, "AdminSchemas", options));
}

const outputs = [
  [path.join(pkg, "generated", "scenario.d.ts"), await scenarioTypes()],
  [path.join(pkg, "generated", "admin.d.ts"), await adminTypes()],
];
const check = process.argv.includes("--check");
let stale = 0;
for (const [file, text] of outputs) {
  const current = await readFile(file, "utf8").catch(() => null);
  if (current === text) continue;
  if (check) {
    console.error(`${path.relative(pkg, file)} is out of date: run npm run generate in npm/trigger-mock`);
    stale++;
  } else {
    await writeFile(file, text);
    console.log(`wrote ${path.relative(pkg, file)}`);
  }
}
process.exitCode = stale ? 1 : 0;
