/**
 * Fault-injection suite: `npm run test:faults` (builds first). It runs the built service as real processes against
 * PostgreSQL and the sandbox identity provider (each its own process, with 20-second access tokens), breaks things
 * the way production breaks them, and checks from the outside (the API, the identity provider's counters, /metrics,
 * the webhook receiver, the database) that no token was lost, reused or used expired.
 *
 * Five independent deployments run side by side to fit the time budget:
 *   ratelimit  3 replicas, 30 users, the machine's PostgreSQL: scenario 7 (a minute-long pause), first and short, so it
 *              is over while the others are still setting up, before their timing-sensitive scenarios start
 *   jira       3 replicas, 20 users, a throwaway PostgreSQL cluster: scenario 8 (Jira webhooks living 3.5 minutes, a
 *              replica killed mid-extension); not the machine's server, whose 100 connections the other lanes'
 *              replicas (up to 20 each) already come close to
 *   outage     2 replicas, 200 users, a throwaway PostgreSQL cluster: scenario 4 (waits out the refresh backoff)
 *   main       3 replicas, 200 users, the machine's PostgreSQL (a fresh database): scenarios 1, 2, 5, 6 in turn
 *   pgrestart  2 replicas, 100 users, another throwaway cluster that scenario 3 restarts
 *
 * Environment: FAULTS_STEADY_SECONDS (scenario 1's length, default 180), FAULTS_ONLY (comma-separated scenario
 * ids, e.g. 1-steady,5-revoked), TEST_PG_URL (admin URL of the shared server), PG_BIN (initdb and pg_ctl's folder).
 * The last line is `N passed, M failed`; the exit code is 1 when anything failed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadOptions } from './lib/load.js';
import { SHARED_ADMIN_URL, ThrowawayCluster } from './lib/postgres.js';
import { killAllChildren } from './lib/processes.js';
import { ScenarioReport } from './lib/report.js';
import type { Scenario } from './lib/scenario.js';
import { Stack } from './lib/stack.js';
import { errorMessage } from './lib/util.js';
import { gracefulShutdown } from './scenarios/graceful-shutdown.js';
import { grantRevoked } from './scenarios/grant-revoked.js';
import { postgresRestart } from './scenarios/postgres-restart.js';
import { JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS, jiraWebhooks } from './scenarios/jira-webhooks.js';
import { rateLimitPause } from './scenarios/rate-limit-pause.js';
import { replicaCrash } from './scenarios/replica-crash.js';
import { steadyRefresh } from './scenarios/steady-refresh.js';
import { tokenEndpointOutage } from './scenarios/token-endpoint-outage.js';

/** The hard limit of the whole suite; past it everything is killed and the run fails. */
const SUITE_DEADLINE_MS = 9.5 * 60_000;
/** What a token, code or key looks like in a log line; none may appear. */
const SECRET_PATTERNS = [/sbx_(at|rt|code)_/];

/** One deployment and the scenarios it runs in turn. */
interface Lane {
  name: string;
  /** The machine's server (a fresh database), or a throwaway cluster of the lane's own. */
  postgres: 'shared' | 'throwaway';
  replicas: number;
  users: number;
  load: LoadOptions;
  /** More of the replicas' environment. */
  env?: Record<string, string>;
  scenarios: Scenario[];
}

const LANES: Lane[] = [
  {
    name: 'ratelimit',
    postgres: 'shared',
    replicas: 3,
    users: 30,
    load: { workers: 2, callsPerSecond: 4 },
    scenarios: [rateLimitPause],
  },
  {
    name: 'jira',
    postgres: 'throwaway',
    replicas: 3,
    users: 20,
    load: { workers: 2, callsPerSecond: 4 },
    env: {
      ATLASSIAN_SCOPES: 'read:jira-work manage:jira-webhook',
      JIRA_WEBHOOK_DEFAULTS: JSON.stringify([{ events: ['jira:issue_created'], jqlFilter: 'project = DEF' }]),
      JIRA_WEBHOOK_EXTEND_BEFORE_DAYS: String(JIRA_WEBHOOK_EXTEND_BEFORE_SECONDS / 86_400),
    },
    scenarios: [jiraWebhooks],
  },
  {
    name: 'outage',
    postgres: 'throwaway',
    replicas: 2,
    users: 200,
    load: { workers: 4, callsPerSecond: 8 },
    scenarios: [tokenEndpointOutage],
  },
  {
    name: 'main',
    postgres: 'shared',
    replicas: 3,
    users: 200,
    load: { workers: 8, callsPerSecond: 25 },
    scenarios: [steadyRefresh, replicaCrash, grantRevoked, gracefulShutdown],
  },
  {
    name: 'pgrestart',
    postgres: 'throwaway',
    replicas: 2,
    users: 100,
    load: { workers: 4, callsPerSecond: 8 },
    scenarios: [postgresRestart],
  },
];

const options = { steadySeconds: Number(process.env.FAULTS_STEADY_SECONDS || 180) };
const only = process.env.FAULTS_ONLY ? new Set(process.env.FAULTS_ONLY.split(',').map((id) => id.trim())) : null;
const runId = `${Date.now().toString(36)}_${process.pid}`;
const logDir = mkdtempSync(join(tmpdir(), 'ats-faults-'));
const stacks: Stack[] = [];
const cleanups: Array<() => Promise<void>> = [];
const startedAt = Date.now();

/** Starts a lane's deployment and connects its users; answers the stack, or null (its scenarios then fail) on error. */
async function setUp(lane: Lane, reports: ScenarioReport[]): Promise<Stack | null> {
  const setupStarted = Date.now();
  let cluster: ThrowawayCluster | undefined;
  let stack: Stack | undefined;
  try {
    if (lane.postgres === 'throwaway') {
      cluster = await ThrowawayCluster.create();
      cleanups.push(cluster.destroy.bind(cluster));
    }
    stack = new Stack({
      name: lane.name,
      logDir,
      cluster,
      adminUrl: cluster?.adminUrl ?? SHARED_ADMIN_URL,
      databaseName: `ats_faults_${runId}_${lane.name}`,
      replicas: lane.replicas,
      users: lane.users,
      load: lane.load,
      env: lane.env,
    });
    stacks.push(stack);
    cleanups.push(stack.stop.bind(stack));
    await stack.start();
    await stack.connectUsers(lane.users);
    stack.load.start();
    console.log(
      `[${lane.name}] ${lane.replicas} replicas up, ${lane.users} users connected in ${Math.round((Date.now() - setupStarted) / 1000)} s`,
    );
    return stack;
  } catch (error) {
    for (const report of reports) report.fail(`setting up ${lane.name}: ${errorMessage(error)}`);
    if (stack) console.log(`[${lane.name}] log tails:\n${stack.tails()}`);
    if (cluster) console.log(`[${lane.name}] postgres log:\n${cluster.logTail()}`);
    return null;
  }
}

async function runScenarios(scenarios: Scenario[], reports: ScenarioReport[], stack: Stack): Promise<void> {
  for (const [index, scenario] of scenarios.entries()) {
    const report = reports[index];
    report.startedAt = Date.now();
    report.log(`== ${scenario.title}`);
    try {
      await scenario.run(report, stack, { ...options, cluster: stack.cluster });
    } catch (error) {
      report.fail(errorMessage(error));
    }
    report.finish();
    report.log(`${report.passed ? 'passed' : 'FAILED'} in ${report.seconds} s`);
    if (!report.passed) report.log(`log tails:\n${stack.tails()}`);
  }
  await stack.stop();
}

/**
 * Lanes are set up one after the other (booting replicas and connecting users is what loads the two cores most),
 * the short rate-limit lane first, then the longest; each runs its scenarios as soon as it is set up, beside the others.
 */
async function runLanes(): Promise<ScenarioReport[]> {
  const all: ScenarioReport[] = [];
  const running: Array<Promise<void>> = [];
  for (const lane of LANES) {
    const scenarios = lane.scenarios.filter((s) => !only || only.has(s.id));
    if (scenarios.length === 0) continue;
    const reports = scenarios.map((s) => new ScenarioReport(s.id, s.title));
    all.push(...reports);
    const stack = await setUp(lane, reports);
    if (stack) running.push(runScenarios(scenarios, reports, stack));
  }
  await Promise.all(running);
  return all;
}

/** The children's logs may say anything except a token, a code or one of this run's secrets. */
function checkLogs(): ScenarioReport {
  const report = new ScenarioReport('logs', 'child logs hold no token, code or secret');
  const secrets = stacks.flatMap((s) => s.secrets());
  const leaks: string[] = [];
  for (const file of readdirSync(logDir).filter((f) => f.endsWith('.log'))) {
    const text = readFileSync(join(logDir, file), 'utf8');
    if (SECRET_PATTERNS.some((p) => p.test(text)) || secrets.some((s) => text.includes(s))) leaks.push(file);
  }
  report.check('no token, code or secret in any child log', leaks.length === 0, leaks.join(', '));
  report.finish();
  return report;
}

async function cleanUp(): Promise<void> {
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => console.log(`cleanup: ${errorMessage(error)}`));
  cleanups.length = 0;
  killAllChildren();
}

function summarize(reports: ScenarioReport[]): number {
  console.log('\n== Summary');
  for (const report of [...reports].sort((a, b) => a.id.localeCompare(b.id))) {
    console.log(`${report.passed ? 'PASS' : 'FAIL'}  ${report.id}  ${report.title} (${report.seconds} s)`);
    for (const [name, value] of report.figures) console.log(`        ${name}: ${value}`);
    for (const failure of report.failures) console.log(`        FAILED: ${failure}`);
  }
  console.log(`duration: ${Math.round((Date.now() - startedAt) / 1000)} s`);
  return reports.filter((r) => !r.passed).length;
}

async function abort(reason: string): Promise<never> {
  console.log(`\n${reason}: stopping every process the suite started`);
  await cleanUp();
  console.log(`logs kept in ${logDir}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}

async function main(): Promise<void> {
  const deadline = setTimeout(() => void abort(`The suite ran past its ${SUITE_DEADLINE_MS / 60_000}-minute limit`), SUITE_DEADLINE_MS);
  process.once('SIGINT', () => void abort('Interrupted'));
  process.once('SIGTERM', () => void abort('Terminated'));
  console.log(`fault-injection suite: logs in ${logDir}`);
  let reports: ScenarioReport[];
  try {
    reports = await runLanes();
  } finally {
    await cleanUp();
  }
  reports.push(checkLogs());
  clearTimeout(deadline);
  const failed = summarize(reports);
  if (failed === 0) rmSync(logDir, { recursive: true, force: true });
  else console.log(`logs kept in ${logDir}`);
  console.log(`${reports.length - failed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

await main();
