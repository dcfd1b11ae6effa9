"use strict";
// SMART's JavaScript client (npm "fhirclient", Node adapter) launched against a FHIR server.
//
// Usage: node launch.js FHIR_BASE PORT [--launch TOKEN] [--pick PATIENT_ID]
//
// A tiny app listens on 127.0.0.1:PORT: /launch calls fhirclient's authorize(), /callback its
// ready(). This script then plays the browser with fetch: it opens /launch, follows the
// redirect to the server's authorize endpoint, picks PATIENT_ID (else the first patient) on the
// server's patient picker (a standalone launch; with --launch, an EHR launch with that launch
// token needs no picker), and follows the redirect back to /callback. The app reads the Patient
// and the Encounter of the launch context with the client, refreshes the token when it got a
// refresh token, and searches the patient's Encounters five a page, following next links.
// One JSON object is printed on stdout; the exit status is 0 when the launch and the reads
// completed, 1 otherwise (the JSON then has "error").
// The app is a public client, or a confidential one when the environment holds
// SMART_CLIENT_SECRET (client_secret_basic) or SMART_PRIVATE_JWK (a private JWK with "alg"
// ES384 or RS384: private_key_jwt).
// The redirect URI http://127.0.0.1:PORT/callback must be registered for client id
// "fhirclient-js".

const http = require("node:http");
const smart = require("fhirclient/lib/entry/node");

const [base, port, ...options] = process.argv.slice(2);
const option = (name) => {
  const at = options.indexOf(name);
  return at >= 0 ? options[at + 1] : undefined;
};
const launchToken = option("--launch");
const pick = option("--pick");
const CLIENT_ID = "fhirclient-js";
const SCOPE = [
  "openid",
  "fhirUser",
  "offline_access",
  "patient/Patient.read",
  "patient/Encounter.read",
  "user/Practitioner.read",
].join(" ");
const app = `http://127.0.0.1:${port}`;

// Server-side session storage shared by /launch and /callback (one user: this script).
const session = new Map();
const storage = {
  get: async (key) => session.get(key),
  set: async (key, value) => {
    session.set(key, value);
    return value;
  },
  unset: async (key) => session.delete(key),
};

function summary(resource) {
  return resource && { resourceType: resource.resourceType, id: resource.id };
}

async function callback(req, res) {
  const client = await smart(req, res, storage).ready();
  const state = client.state;
  const result = {
    serverUrl: state.serverUrl,
    authorizeUri: state.authorizeUri,
    tokenUri: state.tokenUri,
    pkce: Boolean(state.codeVerifier),
    tokenResponseKeys: Object.keys(state.tokenResponse || {}).sort(),
    patientId: client.patient.id,
    encounterId: client.encounter.id,
    user: client.user.fhirUser,
  };
  result.patient = summary(await client.patient.read());
  result.encounter = summary(await client.encounter.read());
  result.userResource = summary(await client.user.read()); // the id_token's fhirUser
  if (state.tokenResponse.refresh_token) {
    // fhirclient 2.6 sends a refresh with no client authentication unless it holds a secret,
    // so a private_key_jwt client's refresh is refused: reported, not thrown.
    const before = state.tokenResponse.access_token;
    try {
      await client.refresh();
      result.refreshed = client.state.tokenResponse.access_token !== before;
      result.patientAfterRefresh = summary(await client.patient.read());
    } catch (err) {
      result.refreshed = false;
      result.refreshError = String(err.message || err);
    }
  }
  const pages = await client.request(`Encounter?patient=${client.patient.id}&_count=5`, {
    pageLimit: 0,
  });
  const entries = pages.flatMap((page) => page.entry || []);
  result.pages = pages.length;
  result.total = pages[0].total;
  result.searchedTypes = [...new Set(entries.map((e) => e.resource.resourceType))].sort();
  result.searchedEncounters = new Set(
    entries.filter((e) => e.search?.mode === "match").map((e) => e.resource.id),
  ).size;
  return result;
}

function startApp() {
  return new Promise((resolve, reject) => {
    const server = http.createServer(async (req, res) => {
      const path = new URL(req.url, app).pathname;
      try {
        if (path === "/launch") {
          await smart(req, res, storage).authorize({
            clientId: CLIENT_ID,
            scope: launchToken ? `launch ${SCOPE}` : `launch/patient launch/encounter ${SCOPE}`,
            redirectUri: "/callback",
            pkceMode: "ifSupported",
            clientSecret: process.env.SMART_CLIENT_SECRET || undefined,
            clientPrivateJwk: process.env.SMART_PRIVATE_JWK
              ? JSON.parse(process.env.SMART_PRIVATE_JWK)
              : undefined,
          });
          return;
        }
        if (path === "/callback") {
          const body = JSON.stringify(await callback(req, res));
          res.writeHead(200, { "content-type": "application/json" });
          res.end(body);
          return;
        }
        res.writeHead(404).end();
      } catch (err) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: `${path}: ${err.message || err}` }));
      }
    });
    server.on("error", reject);
    server.listen(Number(port), "127.0.0.1", () => resolve(server));
  });
}

// The browser: follow redirects by hand, submit the patient picker's form.
async function browse() {
  const query = new URLSearchParams({ iss: base });
  if (launchToken) {
    query.set("launch", launchToken);
  }
  let response = await fetch(`${app}/launch?${query}`, { redirect: "manual" });
  const visited = [];
  for (let hop = 0; hop < 10; hop += 1) {
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get("location"), response.url || app).href;
      visited.push(next.split("?")[0]);
      response = await fetch(next, { redirect: "manual" });
      continue;
    }
    const type = response.headers.get("content-type") || "";
    if (response.status === 200 && type.startsWith("text/html")) {
      const page = await response.text();
      response = await submitPicker(page, response.url, visited);
      continue;
    }
    const text = await response.text();
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: `HTTP ${response.status}: ${text.slice(0, 300)}` };
    }
    return { ...body, visited };
  }
  return { error: "too many redirects", visited };
}

function decode(text) {
  return text
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

async function submitPicker(page, pageUrl, visited) {
  const form = page.match(/<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i);
  if (!form) {
    throw new Error(`an HTML page without a form at ${pageUrl}`);
  }
  const fields = new URLSearchParams();
  for (const input of form[2].matchAll(/<input[^>]*>/gi)) {
    const name = input[0].match(/name="([^"]*)"/);
    const value = input[0].match(/value="([^"]*)"/);
    if (name) {
      fields.append(decode(name[1]), value ? decode(value[1]) : "");
    }
  }
  const buttons = [...form[2].matchAll(/<button[^>]*name="([^"]*)"[^>]*value="([^"]*)"/gi)];
  const button = pick ? buttons.find((b) => decode(b[2]) === pick) : buttons[0];
  if (!button) {
    throw new Error(`the patient picker does not offer ${pick || "any patient"}`);
  }
  fields.append(decode(button[1]), decode(button[2]));
  const action = new URL(decode(form[1]), pageUrl).href;
  visited.push(`${action} (picked ${decode(button[2])})`);
  return fetch(action, {
    method: "POST",
    body: fields,
    headers: { "content-type": "application/x-www-form-urlencoded" },
    redirect: "manual",
  });
}

async function main() {
  if (!base || !port) {
    throw new Error("usage: node launch.js FHIR_BASE PORT [--launch TOKEN] [--pick PATIENT_ID]");
  }
  const server = await startApp();
  try {
    const result = await browse();
    process.stdout.write(JSON.stringify(result) + "\n");
    return result.error ? 1 : 0;
  } finally {
    server.close();
  }
}

main().then(
  (status) => process.exit(status),
  (err) => {
    process.stdout.write(JSON.stringify({ error: String(err.message || err) }) + "\n");
    process.exit(1);
  },
);
