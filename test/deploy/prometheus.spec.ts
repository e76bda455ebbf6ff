import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { freePort } from '../utils/app.js';
import { createTestDatabase, describePostgres, type TestDatabase } from '../utils/database.js';
import { alertRules, dashboardQueries, documentedMetrics, documentedPrefixes, metricNamesIn, seriesNames } from '../utils/deploy.js';
import { connectSandboxUser, startDeployment, type Deployment } from '../utils/service-processes.js';
import { describeWithTools, run } from '../utils/tools.js';

const JOB = 'token-service';
const WAIT_MS = 60_000;

interface PromAnswer<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}
type Vector = { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] };

/** Grafana's variables, as Grafana would fill them in for this deployment. */
function grafanaQuery(expr: string): string {
  return expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', JOB);
}

/**
 * A real Prometheus (Debian's) scraping two replicas of the built service on one database every second, with the
 * alert rules loaded. What it sees is what an operator's Prometheus would see.
 */
describeWithTools(['prometheus', 'promtool'], 'Prometheus scraping the service', () => {
  describePostgres('two replicas', () => {
    let database: TestDatabase;
    let workDir: string;
    let deployment: Deployment;
    let prometheus: ChildProcess;
    let prometheusUrl: string;

    async function api<T>(path: string, params: Record<string, string> = {}): Promise<PromAnswer<T>> {
      const url = new URL(`/api/v1/${path}`, prometheusUrl);
      for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
      return (await (await fetch(url)).json()) as PromAnswer<T>;
    }
    const query = (expr: string) => api<Vector>('query', { query: expr });

    async function until(what: string, check: () => Promise<boolean>): Promise<void> {
      const deadline = Date.now() + WAIT_MS;
      while (!(await check().catch(() => false))) {
        if (Date.now() > deadline) throw new Error(`Prometheus: ${what} not seen within ${WAIT_MS / 1000} s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    /** Every metric name Prometheus holds series of for the service's job. */
    async function exported(): Promise<Set<string>> {
      const names = await api<string[]>('label/__name__/values', { 'match[]': `{job="${JOB}"}` });
      return new Set(names.data);
    }

    beforeAll(async () => {
      database = await createTestDatabase();
      workDir = mkdtempSync(join(tmpdir(), 'ats-prometheus-'));
      deployment = await startDeployment({ databaseUrl: database.url, replicas: 2, logDir: workDir, accessTokenTtlSeconds: 2000 });
      const port = await freePort();
      prometheusUrl = `http://127.0.0.1:${port}`;
      const targets = deployment.replicas.map((replica) => new URL(replica.url).host);
      writeFileSync(
        join(workDir, 'prometheus.yml'),
        JSON.stringify({
          global: { scrape_interval: '1s', evaluation_interval: '1s' },
          rule_files: [resolve('deploy/prometheus/alerts.yml')],
          scrape_configs: [{ job_name: JOB, static_configs: [{ targets }] }],
        }),
      );
      prometheus = spawn(
        'prometheus',
        [
          `--config.file=${join(workDir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(workDir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { stdio: 'ignore' },
      );
      // Some traffic: a user connected through the flow on one replica and the other, and a refresh on demand (the
      // sandbox's tokens live 2,000 s: outside the 600 s lead, so no alert, but short of the validity asked for).
      await connectSandboxUser(deployment, { userId: 'prometheus-user', login: 'prometheus-user' });
      const token = await fetch(`${deployment.replicas[1].url}/v1/users/prometheus-user/access-token`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${deployment.apiKey}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ minValiditySeconds: 3000 }),
      });
      expect(token.status).toBe(200);
      await token.body?.cancel();
      // A Jira call through the proxy on each replica, so that the call and proxy histograms have series on both.
      const authorization = { Authorization: `Bearer ${deployment.apiKey}` };
      const sites = await fetch(`${deployment.replicas[0].url}/v1/users/prometheus-user/accessible-resources`, { headers: authorization });
      const site = ((await sites.json()) as { resources: { id: string }[] }).resources[0].id;
      for (const replica of deployment.replicas) {
        const proxied = await fetch(`${replica.url}/v1/users/prometheus-user/proxy/jira/${site}/rest/api/3/myself`, {
          headers: authorization,
        });
        expect(proxied.status).toBe(200);
        await proxied.body?.cancel();
      }
      await until('both targets up', async () => (await query(`sum(up{job="${JOB}"})`)).data.result[0]?.value[1] === '2');
      await until('the proxied calls on both replicas', async () => {
        const replicas = await query(`count(atlassian_proxy_request_duration_seconds_count{job="${JOB}"})`);
        return Number(replicas.data.result[0]?.value[1]) === 2;
      });
      await until('the refresh', async () => {
        const refreshed = await query(`sum(atlassian_token_refreshes_total{job="${JOB}",outcome="refreshed"})`);
        return Number(refreshed.data.result[0]?.value[1]) >= 1;
      });
    }, 120_000);
    afterAll(async () => {
      prometheus?.kill('SIGTERM');
      await deployment?.stop();
      await database?.drop();
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    }, 60_000);

    it('scrapes every replica: targets up, in the exposition format it asked for', async () => {
      const targets = await api<{ activeTargets: { scrapeUrl: string; health: string; lastError: string }[] }>('targets');
      const seen = targets.data.activeTargets.map((t) => `${t.scrapeUrl} ${t.health}${t.lastError ? ` (${t.lastError})` : ''}`);
      process.stdout.write(`Prometheus targets:\n  ${seen.join('\n  ')}\n`);
      expect(targets.data.activeTargets.map((t) => [t.health, t.lastError])).toEqual([
        ['up', ''],
        ['up', ''],
      ]);
    });

    it('has series of every metric docs/operations.md names, from every replica', async () => {
      const lines: string[] = [];
      const missing: string[] = [];
      for (const metric of documentedMetrics()) {
        const counts = await Promise.all(
          seriesNames(metric).map(async (name) => {
            const answer = await query(`count by (instance) (${name}{job="${JOB}"})`);
            return { name, replicas: answer.data.result.length, series: answer.data.result.reduce((n, r) => n + Number(r.value[1]), 0) };
          }),
        );
        lines.push(`${metric.name} (${metric.type}): ${counts.map((c) => `${c.name} ${c.series} series`).join(', ')}`);
        missing.push(...counts.filter((c) => c.replicas < 2).map((c) => `${c.name}: from ${c.replicas} of 2 replicas`));
      }
      for (const prefix of documentedPrefixes()) {
        const answer = await query(`count({job="${JOB}",__name__=~"${prefix}.+"})`);
        const series = Number(answer.data.result[0]?.value[1] ?? 0);
        lines.push(`${prefix}*: ${series} series`);
        if (series === 0) missing.push(`${prefix}*`);
      }
      process.stdout.write(`Series per documented metric (2 replicas):\n  ${lines.join('\n  ')}\n`);
      expect(documentedMetrics().length).toBeGreaterThan(10);
      expect(missing).toEqual([]);
    });

    it('finds nothing wrong with a scrape: promtool check metrics', async () => {
      const scrape = await fetch(`${deployment.replicas[0].url}/metrics`);
      expect(scrape.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const result = run('promtool', ['check', 'metrics'], { input: await scrape.text() });
      expect({ status: result.status, problems: result.stdout + result.stderr }).toEqual({ status: 0, problems: '' });
    });

    it('runs every query of the Grafana dashboard without error, on metrics the service exports', async () => {
      const names = await exported();
      const lines: string[] = [];
      const problems: string[] = [];
      for (const { panel, expr } of dashboardQueries()) {
        const answer = await query(grafanaQuery(expr));
        const unknown = metricNamesIn(grafanaQuery(expr)).filter((name) => !names.has(name));
        lines.push(`${panel}: ${answer.status}, ${answer.data?.result?.length ?? 0} series  ${expr}`);
        if (answer.status !== 'success') problems.push(`${panel}: ${answer.error}`);
        if (unknown.length > 0) problems.push(`${panel}: no such metric ${unknown.join(', ')}`);
      }
      process.stdout.write(`Dashboard queries:\n  ${lines.join('\n  ')}\n`);
      expect(dashboardQueries().length).toBeGreaterThan(10);
      expect(problems).toEqual([]);
    });

    it('evaluates every alert rule without error, on metrics the service exports, none firing while healthy', async () => {
      const names = await exported();
      // Every rule evaluated, and settled: a replica's readiness probe may time out once on a busy machine, which puts
      // an alert with a `for:` into pending for an evaluation. A rule still pending or firing after the wait fails below.
      await until('the rules evaluated and settled', async () => {
        const rules = await api<{ groups: { rules: { lastEvaluation: string; state: string }[] }[] }>('rules');
        return rules.data.groups.flatMap((g) => g.rules).every((r) => !r.lastEvaluation.startsWith('0001') && r.state === 'inactive');
      }).catch(() => undefined);
      const rules = await api<{ groups: { rules: { name: string; health: string; lastError?: string; state: string }[] }[] }>('rules');
      const loaded = rules.data.groups.flatMap((group) => group.rules);
      process.stdout.write(`Alert rules: ${loaded.map((r) => `${r.name} ${r.health}/${r.state}`).join(', ')}\n`);
      expect(loaded.map((r) => r.name).sort()).toEqual(
        alertRules()
          .map((rule) => rule.alert)
          .sort(),
      );
      expect(loaded.filter((r) => r.health !== 'ok' || r.state !== 'inactive')).toEqual([]);
      const unknown = alertRules().flatMap((rule) =>
        metricNamesIn(rule.expr)
          .filter((name) => !names.has(name))
          .map((n) => `${rule.alert}: ${n}`),
      );
      expect(unknown).toEqual([]);
    });
  });
});
