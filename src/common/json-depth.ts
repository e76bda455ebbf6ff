import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The deepest nesting of arrays and objects a JSON body may have. Far above what any body of this service needs (the
 * deepest DTO nests three levels), far below what the recursive code after parsing survives: class-transformer and
 * class-validator walk a body recursively, and a 100 KB body of nested arrays exhausts the stack.
 */
export const MAX_JSON_DEPTH = 64;

const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * Whether the JSON text nests arrays and objects deeper than `limit`, read byte by byte without parsing (brackets inside
 * strings do not count). In UTF-8 no byte of a multi-byte character is an ASCII bracket, quote or backslash.
 */
export function nestsDeeperThan(json: Uint8Array, limit: number): boolean {
  if (json.length <= limit) return false;
  let depth = 0;
  let inString = false;
  for (let index = 0; index < json.length; index++) {
    const byte = json[index];
    if (inString) {
      if (byte === BACKSLASH) index += 1;
      else if (byte === QUOTE) inString = false;
    } else if (byte === QUOTE) inString = true;
    else if (byte === OPEN_ARRAY || byte === OPEN_OBJECT) {
      depth += 1;
      if (depth > limit) return true;
    } else if (byte === CLOSE_ARRAY || byte === CLOSE_OBJECT) depth -= 1;
  }
  return false;
}

/** A request refused as malformed: body-parser hands it on as a 400 whose message the caller may see. */
class TooDeepError extends Error {
  readonly status = 400;
  readonly expose = true;
  readonly type = 'entity.too.deep';
}

/**
 * body-parser's `verify` hook for JSON: a body nested deeper than MAX_JSON_DEPTH is refused with 400 before it is
 * parsed, so it never reaches validation.
 */
export function refuseDeepJson(_req: IncomingMessage, _res: ServerResponse, body: Buffer): void {
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new TooDeepError(`The JSON body nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels.`);
  }
}
