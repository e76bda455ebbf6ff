/** fetch with a deadline (nothing in the suite waits on a socket forever) and no redirect following. */
export function request(url, { method = 'GET', headers = {}, json, timeoutMs = 30_000 } = {}) {
  const allHeaders = json === undefined ? headers : { 'Content-Type': 'application/json', ...headers };
  return fetch(url, {
    method,
    headers: allHeaders,
    body: json === undefined ? undefined : JSON.stringify(json),
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
}

export async function expectJson(response, status, what) {
  if (response.status !== status) {
    const text = await response.text().catch(() => '');
    throw new Error(`${what}: HTTP ${response.status}, expected ${status}: ${text.slice(0, 200)}`);
  }
  return response.json();
}

/** Prometheus text format, enough of it for our metrics: `name{label="value",…} number`. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)/.exec(line);
    if (!match) continue;
    const labels = {};
    for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value;
    samples.push({ name: match[1], labels, value: Number(match[3]) });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `labels`. */
export function metricValue(samples, name, labels = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value))
    .reduce((sum, s) => sum + s.value, 0);
}
