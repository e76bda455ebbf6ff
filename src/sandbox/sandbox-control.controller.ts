import { Body, Controller, Get, Inject, Param, Post, Res } from '@nestjs/common';
import type { Response } from 'express';
import { sendAnswer, sendChecked } from './sandbox.http.js';
import { SandboxIdentityProvider } from './sandbox.idp.js';
import { parseDeliveryInput, parseDirectAuthorize, parseFaultPlan, parseLatency, parseSettings, parseUserInput } from './sandbox.params.js';
import { oauthError, ok } from './sandbox.responses.js';

/** Test and benchmark controls; they exist only because the sandbox is mounted, never next to real Atlassian. */
@Controller('sandbox/_control')
export class SandboxControlController {
  constructor(@Inject(SandboxIdentityProvider) private readonly idp: SandboxIdentityProvider) {}

  @Post('faults')
  faults(@Body() body: unknown, @Res() res: Response): void {
    sendChecked(res, parseFaultPlan(body), (plan) => ok(this.idp.addFault(plan)));
  }

  @Post('latency')
  latency(@Body() body: unknown, @Res() res: Response): void {
    sendChecked(res, parseLatency(body), (latency) => ok(this.idp.setLatency(latency)));
  }

  @Post('settings')
  settings(@Body() body: unknown, @Res() res: Response): void {
    sendChecked(res, parseSettings(body), (settings) => ok(this.idp.updateSettings(settings)));
  }

  @Post('reset')
  reset(@Res() res: Response): void {
    this.idp.reset();
    sendAnswer(res, ok({ reset: true }));
  }

  @Post('grants/:accountId/revoke')
  revoke(@Param('accountId') accountId: string, @Res() res: Response): void {
    const revoked = this.idp.revokeAccount(accountId);
    sendAnswer(res, revoked ? ok({ revoked: true }) : oauthError(404, 'not_found', 'No live grant for that account.'));
  }

  @Get('stats')
  stats(@Res() res: Response): void {
    sendAnswer(res, ok(this.idp.stats()));
  }

  /** The latest API calls with their time, method, path and status: which calls reached "Atlassian", and when. */
  @Get('api-calls')
  apiCalls(@Res() res: Response): void {
    sendAnswer(res, ok({ calls: this.idp.apiCalls() }));
  }

  /** Jira's dynamic webhooks: what is registered, extended, deleted and expired, and what was delivered. */
  @Get('jira-webhooks')
  jiraWebhooks(@Res() res: Response): void {
    sendAnswer(res, ok(this.idp.jiraWebhookStats()));
  }

  /**
   * Something changes on a made-up site (`{ cloudId, webhookEvent?, issueKey?, duplicate? }`): Jira's signed delivery
   * goes to every registration it matches, sent twice when `duplicate` (or, unsaid, at the sandbox's duplicate rate).
   */
  @Post('jira-webhooks/deliveries')
  async deliver(@Body() body: unknown, @Res() res: Response): Promise<void> {
    const input = parseDeliveryInput(body);
    sendAnswer(res, input.ok ? await this.idp.deliverJiraEvent(input.value) : oauthError(400, 'invalid_request', input.message));
  }

  @Post('users')
  users(@Body() body: unknown, @Res() res: Response): void {
    sendChecked(res, parseUserInput(body), ({ user, sites }) => {
      const resolved = this.idp.resolveUser(user, sites);
      return resolved.ok ? { status: 201, body: resolved.value } : oauthError(400, 'invalid_request', resolved.message);
    });
  }

  @Post('authorize')
  authorize(@Body() body: unknown, @Res() res: Response): void {
    sendChecked(res, parseDirectAuthorize(body), (input) => this.idp.authorizeDirect(input));
  }
}
