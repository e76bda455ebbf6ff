import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

export interface DocumentedMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
}

/** The table of docs/operations.md's "Metrics" section: the metrics operators are promised. */
function metricsTable(): string[] {
  const docs = readFileSync('docs/operations.md', 'utf8');
  const section = docs.slice(docs.indexOf('\n## Metrics'), docs.indexOf('\n### Alerts'));
  return section.split('\n').filter((line) => line.startsWith('| `'));
}

export function documentedMetrics(): DocumentedMetric[] {
  return metricsTable().flatMap((line) => {
    const match = /^\| `([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?` \| (counter|gauge|histogram|summary) \|/.exec(line);
    return match ? [{ name: match[1], type: match[3] as DocumentedMetric['type'] }] : [];
  });
}

/** Families the docs name by prefix only (`process_*`, `nodejs_*`). */
export function documentedPrefixes(): string[] {
  return metricsTable().flatMap((line) => [...line.matchAll(/`([a-z_]+_)\*`/g)].map((m) => m[1]));
}

/** The series names a metric of this type shows in Prometheus. */
export function seriesNames(metric: DocumentedMetric): string[] {
  if (metric.type === 'histogram') return [`${metric.name}_bucket`, `${metric.name}_count`, `${metric.name}_sum`];
  if (metric.type === 'summary') return [metric.name, `${metric.name}_count`, `${metric.name}_sum`];
  return [metric.name];
}

const NOT_METRICS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'offset',
  'bool',
  'and',
  'or',
  'unless',
  'inf',
  'nan',
]);

/** The metric names a PromQL expression selects (functions, keywords, labels, strings and ranges left out). */
export function metricNamesIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = [...bare.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?/g)]
    .filter((m) => m[2] === undefined && !NOT_METRICS.has(m[1].toLowerCase()))
    .map((m) => m[1]);
  return [...new Set(names)];
}

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly labels?: Record<string, string>;
}

export function alertRules(): AlertRule[] {
  const file = parse(readFileSync('deploy/prometheus/alerts.yml', 'utf8')) as { groups: { rules: Partial<AlertRule>[] }[] };
  return file.groups.flatMap((group) => group.rules).filter((rule): rule is AlertRule => typeof rule.alert === 'string');
}

/** The expressions of docs/operations.md's "Alerts" table (column two), `\|` read as `|`, whitespace collapsed. */
export function documentedAlertExpressions(): string[] {
  const docs = readFileSync('docs/operations.md', 'utf8');
  const section = docs.slice(docs.indexOf('\n### Alerts'), docs.indexOf('\n## Runbooks'));
  return section
    .split('\n')
    .filter((line) => line.startsWith('| ') && !line.startsWith('| alert |'))
    .flatMap((line) => {
      const match = /^\| [^|]+ \| `((?:[^`])+)`/.exec(line);
      return match ? [normalisedExpression(match[1].replaceAll('\\|', '|'))] : [];
    });
}

export function normalisedExpression(expr: string): string {
  return expr.replace(/\s+/g, ' ').trim();
}

export interface DashboardQuery {
  readonly panel: string;
  readonly expr: string;
}

export function dashboardQueries(): DashboardQuery[] {
  const dashboard = JSON.parse(readFileSync('deploy/grafana/token-service.json', 'utf8')) as {
    panels: { title: string; targets?: { expr: string }[] }[];
  };
  return dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => ({ panel: panel.title, expr: target.expr })));
}
