export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as the JSON body, with its Content-Type. */
  json?: unknown;
  timeoutMs?: number;
}

/** One sample of a Prometheus metric: `name{label="value",…} number`. */
export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The service's error body (SPEC): `{ error: { code, message } }`. */
export interface ErrorBody {
  error?: { code?: string; message?: string };
}

/** fetch with a deadline (nothing in the suite waits on a socket forever) and no redirect following. */
export function request(
  url: string | URL,
  { method = 'GET', headers = {}, json, timeoutMs = 30_000 }: RequestOptions = {},
): Promise<Response> {
  const allHeaders = json === undefined ? headers : { 'Content-Type': 'application/json', ...headers };
  return fetch(url, {
    method,
    headers: allHeaders,
    body: json === undefined ? undefined : JSON.stringify(json),
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
}

/** The body of an answer with the expected status, as the caller says it looks; any other status throws. */
export async function expectJson<T>(response: Response, status: number, what: string): Promise<T> {
  if (response.status !== status) {
    const text = await response.text().catch(() => '');
    throw new Error(`${what}: HTTP ${response.status}, expected ${status}: ${text.slice(0, 200)}`);
  }
  return (await response.json()) as T;
}

/** A JSON body of any status, as the caller says it may look; `{}` when there is none. */
export async function jsonBody<T extends object>(response: Response): Promise<T> {
  return (await response.json().catch(() => ({}))) as T;
}

/** Prometheus text format, enough of it for our metrics: `name{label="value",…} number`. */
export function parseMetrics(text: string): MetricSample[] {
  const samples: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `labels`. */
export function metricValue(samples: readonly MetricSample[], name: string, labels: Record<string, string> = {}): number {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((sum, s) => sum + s.value, 0);
}
