import { Body, Controller, Get, Headers, Inject, Param, Post, Query, Res } from '@nestjs/common';
import type { Response } from 'express';
import { sendAnswer, sendPage, sendRedirect } from './sandbox.http.js';
import { SandboxIdentityProvider, type AuthorizeRequest } from './sandbox.idp.js';
import { renderConsentPage, renderErrorPage } from './sandbox.pages.js';

/** Atlassian's authorization server and API paths, relative to `<base>/sandbox`. */
@Controller('sandbox')
export class SandboxController {
  constructor(@Inject(SandboxIdentityProvider) private readonly idp: SandboxIdentityProvider) {}

  @Get('authorize')
  showConsent(@Query() query: unknown, @Res() res: Response): void {
    const check = this.idp.checkAuthorize(query);
    if (check.ok) this.sendConsent(res, 200, check.request);
    else sendPage(res, 400, renderErrorPage(check.error));
  }

  @Post('authorize')
  decide(@Body() form: unknown, @Res() res: Response): void {
    const decision = this.idp.decide(form);
    if (decision.kind === 'redirect') sendRedirect(res, decision.location);
    else if (decision.kind === 'retry') this.sendConsent(res, 400, decision.request, decision.message);
    else sendPage(res, 400, renderErrorPage(decision.error));
  }

  @Post('oauth/token')
  async token(@Body() body: unknown, @Res() res: Response): Promise<void> {
    sendAnswer(res, await this.idp.token(body));
  }

  @Get('oauth/token/accessible-resources')
  async accessibleResources(@Headers('authorization') authorization: string | undefined, @Res() res: Response): Promise<void> {
    sendAnswer(res, await this.idp.accessibleResources(authorization));
  }

  @Get('me')
  async me(@Headers('authorization') authorization: string | undefined, @Res() res: Response): Promise<void> {
    sendAnswer(res, await this.idp.me(authorization));
  }

  @Get('ex/jira/:cloudId/rest/api/3/myself')
  async jiraMyself(
    @Param('cloudId') cloudId: string,
    @Headers('authorization') authorization: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    sendAnswer(res, await this.idp.jiraMyself(authorization, cloudId));
  }

  private sendConsent(res: Response, status: number, request: AuthorizeRequest, message?: string): void {
    const html = renderConsentPage({ appName: this.idp.appName, request, users: this.idp.pickableUsers(), message });
    sendPage(res, status, html, [new URL(request.redirectUri).origin]);
  }
}
