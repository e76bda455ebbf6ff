import type { FaultPlan } from '../../../src/sandbox/sandbox.faults.js';
import type { ApiCallRecord, SandboxStats } from '../../../src/sandbox/sandbox.idp.js';
import type { Latency } from '../../../src/sandbox/sandbox.params.js';
import type { SandboxSite } from '../../../src/sandbox/sandbox.users.js';
import { expectJson, request } from './http.js';

/** A fault plan of one endpoint: the method names the endpoint. */
export type EndpointFaultPlan = Omit<FaultPlan, 'endpoint'>;

/** The direct authorize control's body: the consent a user would give on the page, without the browser. */
export interface ConsentInput {
  user: string;
  redirect_uri: string;
  scope: string;
  state: string;
}

export interface Consent {
  code: string;
  state?: string;
  accountId: string;
}

/** The sandbox identity provider's API and control endpoints (`/sandbox/_control/…`), as the scenarios drive them. */
export class SandboxClient {
  readonly base: string;

  constructor(origin: string) {
    this.base = `${origin}/sandbox`;
  }

  async control<T>(path: string, body?: object): Promise<T> {
    return expectJson<T>(await request(`${this.base}/_control/${path}`, { method: 'POST', json: body ?? {} }), 200, `sandbox ${path}`);
  }

  async stats(): Promise<SandboxStats> {
    return expectJson<SandboxStats>(await request(`${this.base}/_control/stats`, { timeoutMs: 10_000 }), 200, 'sandbox stats');
  }

  /** Queues `count` faulty answers of the token endpoint (the switch counts calls, not time). */
  addFaults(plan: EndpointFaultPlan): Promise<{ pendingFaults: number }> {
    return this.control('faults', { endpoint: 'token', ...plan });
  }

  /** Queues `count` faulty answers of the API (`productPath` keeps them for the product calls under it). */
  addApiFaults(plan: EndpointFaultPlan): Promise<{ pendingFaults: number }> {
    return this.control('faults', { endpoint: 'api', ...plan });
  }

  /** The latest API calls the sandbox answered: `{ at, method, path, status }`, oldest first. */
  async apiCalls(): Promise<ApiCallRecord[]> {
    const response = await request(`${this.base}/_control/api-calls`, { timeoutMs: 10_000 });
    return (await expectJson<{ calls: ApiCallRecord[] }>(response, 200, 'sandbox api-calls')).calls;
  }

  setTokenLatency(ms: number): Promise<Latency> {
    return this.control('latency', { tokenMs: ms });
  }

  /** The user removes the app under "Connected apps". False when there was no live grant. */
  async revoke(accountId: string): Promise<boolean> {
    const response = await request(`${this.base}/_control/grants/${encodeURIComponent(accountId)}/revoke`, { method: 'POST', json: {} });
    await response.body?.cancel();
    return response.status === 200;
  }

  /** Consent without the browser: a code for this user, redirect_uri, scope and state. */
  authorize(input: ConsentInput): Promise<Consent> {
    return this.control('authorize', input);
  }

  /** Uses an access token the way the SaaS backend would: a product call. Answers the HTTP status. */
  async useToken(accessToken: string, cloudId?: string): Promise<number> {
    const path = cloudId ? `/ex/jira/${cloudId}/rest/api/3/myself` : '/me';
    const response = await request(`${this.base}${path}`, { headers: { Authorization: `Bearer ${accessToken}` }, timeoutMs: 10_000 });
    await response.body?.cancel();
    return response.status;
  }

  async sites(accessToken: string): Promise<SandboxSite[]> {
    const response = await request(`${this.base}/oauth/token/accessible-resources`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    return expectJson(response, 200, 'accessible-resources');
  }
}
