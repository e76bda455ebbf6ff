import { Controller, Headers, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { JiraWebhookReceiver } from './jira-webhook.receiver.js';
import { JIRA_WEBHOOK_RECEIVER_PATH } from './jira-webhooks.service.js';

/** Where Jira delivers (`PUBLIC_URL/atlassian/jira-webhooks`): Jira's caller, not the SaaS backend's, so no API key. */
@ApiExcludeController()
@Controller(JIRA_WEBHOOK_RECEIVER_PATH.slice(1))
export class JiraWebhookReceiverController {
  constructor(private readonly receiver: JiraWebhookReceiver) {}

  @Post()
  @HttpCode(202)
  async receive(
    @Headers('authorization') authorization: string | undefined,
    @Headers('x-atlassian-webhook-identifier') identifier: string | undefined,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const answer = await this.receiver.receive(authorization, identifier, body);
    res.status(answer.status).set('Cache-Control', 'no-store');
    if (answer.status === 401)
      res.set('WWW-Authenticate', 'Bearer').json({ error: { code: 'unauthorized', message: 'No valid JWT from Jira.' } });
    else if (answer.status === 400) res.json({ error: { code: 'invalid_request', message: 'The body is not a Jira webhook event.' } });
    else res.end();
  }
}
