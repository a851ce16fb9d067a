#!/usr/bin/env node
// `npm start` (scripts/start.sh): the studio on this machine. Private Postgres/Redis for whichever
// of DATABASE_URL/REDIS_URL is unset (data in .data/studio, apart from the demo's and the tests'),
// the api on 127.0.0.1:API_PORT and the worker (logs in .data/studio/logs), and the web app
// (`next start` on 127.0.0.1:WEB_PORT, built by scripts/bootstrap.sh for that api's URL). Prints the
// URL to open once the api and the web app answer and the worker consumes its queues, then runs
// until ^C (or until one of them dies) and stops everything.
//
//   node scripts/start.mjs                 the studio (scripts/start.sh bootstraps first)
//   node scripts/start.mjs --check-ports   only check that WEB_PORT and API_PORT are free (start.sh
//                                          does this before a build that could take a minute)
import path from "node:path";
import { fileURLToPath } from "node:url";
import { portTaken, startInfra } from "./infra.mjs";

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const STUDIO = path.join(REPO, ".data", "studio");
const LOGS = path.join(STUDIO, "logs");

const say = (msg) => process.stderr.write(`studio: ${msg}\n`);

/** A port from the environment, or a one-line error naming the variable. */
function portOf(name, raw = "", fallback) {
  if (raw === "") return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65535) {
    say(`${name}=${raw} is not a port number (1-65535)`);
    process.exit(2);
  }
  return port;
}

const unknown = process.argv.slice(2).find((a) => a !== "--check-ports");
if (unknown) {
  say(`unknown argument ${unknown} (npm start takes none; the ports come from WEB_PORT and API_PORT)`);
  process.exit(2);
}

const webPort = portOf("WEB_PORT", process.env.WEB_PORT, 3000);
const apiPort = portOf("API_PORT", process.env.API_PORT, 8080);
if (webPort === apiPort) {
  say(`WEB_PORT and API_PORT are both ${webPort}: the web app and the api need a port each`);
  process.exit(2);
}
const apiUrl = `http://127.0.0.1:${apiPort}`;

/** One line and exit 1 when a port is taken: the studio's ports are fixed (the web build knows the api's). */
async function checkPorts() {
  for (const [name, port] of [["WEB_PORT", webPort], ["API_PORT", apiPort]]) {
    if (await portTaken(port)) {
      say(`port ${port} (${name}) is taken on 127.0.0.1 — stop what listens there (ss -ltnp 'sport = :${port}') or set ${name}=<another port>`);
      process.exit(1);
    }
  }
}

if (process.argv.includes("--check-ports")) {
  await checkPorts();
  process.exit(0);
}

// Imported only now: stack.mjs needs the TypeScript build, which a fresh checkout does not have
// yet when start.sh checks the ports before bootstrapping.
const { API_ENTRY, Stack, WORKER_BIN, builtApiUrl, rel, requireBuilt, runStack, shutdownOnce } = await import("./stack.mjs");

const stack = new Stack(LOGS);
let infra;
const shutdown = shutdownOnce(stack, () => infra, say, "web, api, worker");

async function main() {
  requireBuilt([
    [API_ENTRY, "the api build (npx tsc -b)"],
    [WORKER_BIN, "the worker venv (scripts/bootstrap.sh)"],
  ]);
  builtApiUrl(); // the web build exists (startWeb checks that it is for this api)
  await checkPorts();

  infra = await startInfra({ dataDir: STUDIO });
  // No worker /metrics port unless asked for: the default (9101) may be the demo's or a bench's.
  const env = { ...infra.env, WORKER_METRICS_PORT: process.env.WORKER_METRICS_PORT ?? "0" };
  const { env: stackEnv } = await stack.startApiAndWorker(env, { storageDir: path.join(STUDIO, "objects"), port: apiPort });
  await stack.startWeb({ port: webPort, apiUrl, env: stackEnv });
  await stack.waitWorkerReady();

  console.log(`studio: open http://localhost:${webPort}  (api ${apiUrl}, logs ${rel(LOGS)}; ^C stops)`);
  await stack.whenOneExits(); // rejects when one of them dies: runStack reports it and stops the rest
}

await runStack("studio", stack, { main, shutdown, say });
