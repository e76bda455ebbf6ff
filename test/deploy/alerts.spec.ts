import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { alertRules, documentedAlertExpressions, normalisedExpression } from '../utils/deploy.js';
import { describeWithTools, run } from '../utils/tools.js';

const DIR = 'deploy/prometheus';

interface RuleTests {
  tests: { name?: string; alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] }[];
}

describeWithTools(['promtool'], 'the alert rules (deploy/prometheus/alerts.yml)', () => {
  it('pass promtool check rules', () => {
    const result = run('promtool', ['check', 'rules', `${DIR}/alerts.yml`]);
    process.stdout.write(result.stdout + result.stderr);
    expect(result.status).toBe(0);
  });

  it('pass their unit tests: promtool test rules', () => {
    const result = run('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: DIR });
    process.stdout.write(result.stdout + result.stderr);
    expect(result.status).toBe(0);
  });

  it('each have a test that sees them silent on healthy series and firing on bad ones, and a severity', () => {
    const tests = parse(readFileSync(`${DIR}/alerts.test.yml`, 'utf8')) as RuleTests;
    const evaluations = tests.tests.flatMap((test) => test.alert_rule_test ?? []);
    const untested = alertRules()
      .map((rule) => rule.alert)
      .filter((alert) => {
        const mine = evaluations.filter((evaluation) => evaluation.alertname === alert);
        return !mine.some((e) => (e.exp_alerts ?? []).length === 0) || !mine.some((e) => (e.exp_alerts ?? []).length > 0);
      });
    expect(untested).toEqual([]);
    for (const rule of alertRules())
      expect([rule.alert, rule.labels?.severity]).toEqual([rule.alert, expect.stringMatching(/^(page|ticket|info)$/)]);
  });
});

describe('the alerts docs/operations.md promises', () => {
  it('are each a rule of alerts.yml, expression for expression', () => {
    const rules = new Set(alertRules().map((rule) => normalisedExpression(rule.expr)));
    const documented = documentedAlertExpressions();
    expect(documented.length).toBeGreaterThan(10);
    expect(documented.filter((expr) => !rules.has(expr))).toEqual([]);
  });
});
