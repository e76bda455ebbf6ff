import type { AtlassianProduct } from './atlassian.types.js';

/** `platform`: the API calls that belong to no product and no site (accessible-resources, /me). */
export type GatedProduct = AtlassianProduct | 'platform';

/** One call to Atlassian's API as a user, as the gate sees it before it goes out. */
export interface GatedCall {
  readonly product: GatedProduct;
  /** The site of a product call. */
  readonly cloudId?: string;
  readonly method: string;
  /** The path under `/ex/{product}/{cloudId}` for a product call, under the API base otherwise; without the query. */
  readonly path: string;
}

/** A call the gate holds back because its scope is paused. */
export interface GateRefusal {
  readonly retryAfterMs: number;
  /** Atlassian's `RateLimit-Reason` for the pause; absent when its 429 named none. */
  readonly reason?: string;
}

/** The answer's headers, whichever HTTP client read them. */
export interface AnswerHeaders {
  get(name: string): string | null;
}

/** How a call that went out ended: Atlassian's answer (its head), or no answer. */
export type CallOutcome =
  | { readonly kind: 'answered'; readonly status: number; readonly headers: AnswerHeaders; readonly seconds: number }
  | { readonly kind: 'timeout' | 'network'; readonly seconds: number };

/**
 * What AtlassianClient consults around every call to Atlassian's API as a user: `admit` before it goes out (answered
 * from memory: it must not slow every call down), `record` once Atlassian answered or did not. The rate-limit
 * governor implements it; without one every call is admitted.
 */
export abstract class AtlassianCallGate {
  abstract admit(call: GatedCall): GateRefusal | undefined;

  /** Settles before the caller sees the answer, so a pause that answer starts is in force when it does. Never rejects. */
  abstract record(call: GatedCall, outcome: CallOutcome): Promise<void>;
}

export class OpenGate extends AtlassianCallGate {
  admit(): undefined {
    return undefined;
  }

  record(): Promise<void> {
    return Promise.resolve();
  }
}
