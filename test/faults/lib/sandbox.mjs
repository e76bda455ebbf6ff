import { expectJson, request } from './http.mjs';

/** The sandbox identity provider's API and control endpoints (`/sandbox/_control/…`), as the scenarios drive them. */
export class SandboxClient {
  constructor(origin) {
    this.base = `${origin}/sandbox`;
  }

  async control(path, body) {
    return expectJson(await request(`${this.base}/_control/${path}`, { method: 'POST', json: body ?? {} }), 200, `sandbox ${path}`);
  }

  async stats() {
    return expectJson(await request(`${this.base}/_control/stats`, { timeoutMs: 10_000 }), 200, 'sandbox stats');
  }

  /** Queues `count` faulty answers of the token endpoint (the switch counts calls, not time). */
  addFaults(plan) {
    return this.control('faults', { endpoint: 'token', ...plan });
  }

  /** Queues `count` faulty answers of the API (`productPath` keeps them for the product calls under it). */
  addApiFaults(plan) {
    return this.control('faults', { endpoint: 'api', ...plan });
  }

  /** The latest API calls the sandbox answered: `{ at, method, path, status }`, oldest first. */
  async apiCalls() {
    return (await expectJson(await request(`${this.base}/_control/api-calls`, { timeoutMs: 10_000 }), 200, 'sandbox api-calls')).calls;
  }

  setTokenLatency(ms) {
    return this.control('latency', { tokenMs: ms });
  }

  /** The user removes the app under "Connected apps". False when there was no live grant. */
  async revoke(accountId) {
    const response = await request(`${this.base}/_control/grants/${encodeURIComponent(accountId)}/revoke`, { method: 'POST', json: {} });
    await response.body?.cancel();
    return response.status === 200;
  }

  /** Consent without the browser: a code for this user, redirect_uri, scope and state. */
  authorize(input) {
    return this.control('authorize', input);
  }

  /** Uses an access token the way the SaaS backend would: a product call. Answers the HTTP status. */
  async useToken(accessToken, cloudId) {
    const path = cloudId ? `/ex/jira/${cloudId}/rest/api/3/myself` : '/me';
    const response = await request(`${this.base}${path}`, { headers: { Authorization: `Bearer ${accessToken}` }, timeoutMs: 10_000 });
    await response.body?.cancel();
    return response.status;
  }

  async sites(accessToken) {
    const response = await request(`${this.base}/oauth/token/accessible-resources`, {
      headers: { Authorization: `Bearer ${accessToken}` },
    });
    return expectJson(response, 200, 'accessible-resources');
  }
}
