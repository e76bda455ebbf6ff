import type { IncomingMessage, ServerResponse } from 'node:http';
import { describe, expect, it } from '@jest/globals';
import { MAX_JSON_DEPTH, nestsDeeperThan, refuseDeepJson } from './json-depth.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const nested = (depth: number) => `${'{"a":['.repeat(depth / 2)}1${']}'.repeat(depth / 2)}`;

describe('nestsDeeperThan', () => {
  it('counts arrays and objects alike, up to the limit and one past it', () => {
    expect(nestsDeeperThan(bytes(nested(8)), 8)).toBe(false);
    expect(nestsDeeperThan(bytes(nested(10)), 8)).toBe(true);
    expect(nestsDeeperThan(bytes('[[[[[[[[[]]]]]]]]]'), 8)).toBe(true);
    expect(nestsDeeperThan(bytes('[[],[],[],[],[],[],[],[],[],[]]'), 2)).toBe(false);
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    expect(nestsDeeperThan(bytes(JSON.stringify({ text: '[[[[[[[[[[{{{{{{{{{{' })), 2)).toBe(false);
    expect(nestsDeeperThan(bytes(JSON.stringify({ text: 'say \\"[[[[[[[[[[ and "{{{{{{{{{{' })), 2)).toBe(false);
    expect(nestsDeeperThan(bytes(JSON.stringify({ 'é€😀': '[[[[[[[[[[', x: [[[[[1]]]]] })), 4)).toBe(true);
  });

  it('reads a 100 KB body of nested arrays without recursion', () => {
    expect(nestsDeeperThan(bytes(`${'['.repeat(50_000)}${']'.repeat(50_000)}`), MAX_JSON_DEPTH)).toBe(true);
  });
});

describe('refuseDeepJson', () => {
  const request = {} as IncomingMessage;
  const response = {} as ServerResponse;

  it('lets a body within the limit through', () => {
    expect(() => refuseDeepJson(request, response, bytes(nested(MAX_JSON_DEPTH)))).not.toThrow();
  });

  it('refuses a deeper one with a 400 body-parser hands on as it is', () => {
    let thrown: unknown;
    try {
      refuseDeepJson(request, response, bytes(nested(MAX_JSON_DEPTH + 2)));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ status: 400, expose: true, message: expect.stringContaining(`deeper than ${MAX_JSON_DEPTH}`) });
  });
});
