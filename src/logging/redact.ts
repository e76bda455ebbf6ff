/** Query parameters that carry a credential or a one-time value; their values never reach a log line. */
const SECRET_QUERY_PARAMS = new Set(['code', 'state', 'ticket', 'access_token', 'refresh_token', 'client_secret']);

/**
 * Fields whose values never reach a log line, at any depth and in any case: tokens, one-time codes and values,
 * secrets, and the headers that carry them.
 */
const SECRET_FIELDS = [
  'accessToken',
  'refreshToken',
  'access_token',
  'refresh_token',
  'clientSecret',
  'client_secret',
  'code',
  'ticket',
  'state',
  'apiKey',
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
];

/** A secret field's name as a key of a JSON object (after `{` or `,`, so never inside a string, where quotes are escaped). */
const SECRET_KEY = new RegExp(`[{,]"(?:${SECRET_FIELDS.join('|')})":`, 'gi');

const CENSORED = '"[Redacted]"';

/**
 * A log line (pino's JSON, as it is about to be written) with the value of every secret field replaced, wherever the
 * field sits: in the logged object, in a child logger's bindings, in an error's properties. Working on the finished
 * line costs one scan of it; pino's own path-based `redact` was the largest cost of a request log line.
 */
export function redactLine(line: string): string {
  SECRET_KEY.lastIndex = 0;
  let match = SECRET_KEY.exec(line);
  if (match === null) return line;
  let redacted = '';
  let copied = 0;
  while (match !== null) {
    const valueStart = match.index + match[0].length;
    const valueEnd = endOfValue(line, valueStart);
    redacted += line.slice(copied, valueStart) + CENSORED;
    copied = valueEnd;
    SECRET_KEY.lastIndex = valueEnd;
    match = SECRET_KEY.exec(line);
  }
  return redacted + line.slice(copied);
}

/** pino hooks that pass every line through `redactLine`. */
export const REDACTING_HOOKS = { streamWrite: redactLine };

/** Where the JSON value starting at `start` ends: after a string, a whole object or array, or a number or literal. */
function endOfValue(json: string, start: number): number {
  let depth = 0;
  let index = start;
  while (index < json.length) {
    const char = json[index];
    if (char === '"') {
      index = endOfString(json, index);
      if (depth === 0) return index;
      continue;
    }
    if (char === '{' || char === '[') depth += 1;
    else if (char === '}' || char === ']') {
      if (depth === 0) return index;
      depth -= 1;
      if (depth === 0) return index + 1;
    } else if (char === ',' && depth === 0) return index;
    index += 1;
  }
  return index;
}

/** The index after the JSON string whose opening quote is at `start`. */
function endOfString(json: string, start: number): number {
  let index = start + 1;
  while (index < json.length && json[index] !== '"') index += json[index] === '\\' ? 2 : 1;
  return index + 1;
}

/** The URL with the values of secret query parameters replaced, for logs. */
export function maskUrl(url: string): string {
  const queryStart = url.indexOf('?');
  if (queryStart < 0) return url;
  const params = url
    .slice(queryStart + 1)
    .split('&')
    .map((pair) => {
      const name = decodeSafely(pair.split('=', 1)[0]);
      return SECRET_QUERY_PARAMS.has(name) ? `${name}=[Redacted]` : pair;
    });
  return `${url.slice(0, queryStart)}?${params.join('&')}`;
}

function decodeSafely(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A short, stable, non-reversible label for an id in logs. */
export function shortId(id: string): string {
  return id.length <= 8 ? id : `${id.slice(0, 8)}…`;
}
