import { Body, Controller, Delete, Get, Headers, Inject, Param, Post, Put, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import type { AtlassianProduct } from '../atlassian/atlassian.client.js';
import { sendAnswer, sendPage, sendRedirect } from './sandbox.http.js';
import { SandboxIdentityProvider, type AuthorizeRequest, type ProductCall } from './sandbox.idp.js';
import { renderConsentPage, renderErrorPage } from './sandbox.pages.js';
import { apiError } from './sandbox.responses.js';

const ISSUE_API_VERSIONS = ['2', '3'];

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

  @Get('ex/jira/:cloudId/rest/api/:version/issue/:issueIdOrKey')
  async issue(@Param() params: Record<string, string>, @Req() req: Request, @Res() res: Response): Promise<void> {
    const answer = await this.idp.product(req.headers.authorization, productCall(req, 'jira', params.cloudId), (_, site) =>
      ISSUE_API_VERSIONS.includes(params.version) ? this.idp.products.issue(site, params.issueIdOrKey) : apiError(404, 'Not Found'),
    );
    sendAnswer(res, answer);
  }

  @Put('ex/jira/:cloudId/rest/api/:version/issue/:issueIdOrKey')
  async editIssue(
    @Param() params: Record<string, string>,
    @Body() body: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    const answer = await this.idp.product(req.headers.authorization, productCall(req, 'jira', params.cloudId), (_, site) =>
      ISSUE_API_VERSIONS.includes(params.version)
        ? this.idp.products.editIssue(site, params.issueIdOrKey, body)
        : apiError(404, 'Not Found'),
    );
    sendAnswer(res, answer);
  }

  @Get('ex/jira/:cloudId/rest/api/3/search/jql')
  async search(
    @Param('cloudId') cloudId: string,
    @Query('maxResults') maxResults: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    sendAnswer(
      res,
      await this.idp.product(req.headers.authorization, productCall(req, 'jira', cloudId), (_, site) =>
        this.idp.products.search(site, maxResults),
      ),
    );
  }

  @Post('ex/jira/:cloudId/rest/api/3/search/jql')
  async searchByPost(@Param('cloudId') cloudId: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    const maxResults = (body as { maxResults?: unknown } | undefined)?.maxResults;
    sendAnswer(
      res,
      await this.idp.product(req.headers.authorization, productCall(req, 'jira', cloudId), (_, site) =>
        this.idp.products.search(site, maxResults),
      ),
    );
  }

  @Get('ex/jira/:cloudId/rest/api/3/attachment/content/:id')
  async attachment(@Param('cloudId') cloudId: string, @Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    sendAnswer(
      res,
      await this.idp.product(req.headers.authorization, productCall(req, 'jira', cloudId), () => this.idp.products.attachment(id)),
    );
  }

  @Post('ex/jira/:cloudId/rest/api/3/webhook')
  async registerWebhooks(
    @Param('cloudId') cloudId: string,
    @Body() body: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    sendAnswer(res, await this.idp.jiraWebhookCall(req.headers.authorization, productCall(req, 'jira', cloudId), 'register', body));
  }

  @Get('ex/jira/:cloudId/rest/api/3/webhook')
  async listWebhooks(@Param('cloudId') cloudId: string, @Query() query: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    sendAnswer(res, await this.idp.jiraWebhookCall(req.headers.authorization, productCall(req, 'jira', cloudId), 'list', query));
  }

  @Delete('ex/jira/:cloudId/rest/api/3/webhook')
  async deleteWebhooks(@Param('cloudId') cloudId: string, @Body() body: unknown, @Req() req: Request, @Res() res: Response): Promise<void> {
    sendAnswer(res, await this.idp.jiraWebhookCall(req.headers.authorization, productCall(req, 'jira', cloudId), 'remove', body));
  }

  @Put('ex/jira/:cloudId/rest/api/3/webhook/refresh')
  async refreshWebhooks(
    @Param('cloudId') cloudId: string,
    @Body() body: unknown,
    @Req() req: Request,
    @Res() res: Response,
  ): Promise<void> {
    sendAnswer(res, await this.idp.jiraWebhookCall(req.headers.authorization, productCall(req, 'jira', cloudId), 'refresh', body));
  }

  @Get('ex/confluence/:cloudId/wiki/api/v2/pages/:id')
  async page(@Param('cloudId') cloudId: string, @Param('id') id: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    const answer = await this.idp.product(req.headers.authorization, productCall(req, 'confluence', cloudId), ({ user }, site) =>
      this.idp.products.page(site, user, id),
    );
    sendAnswer(res, answer);
  }

  private sendConsent(res: Response, status: number, request: AuthorizeRequest, message?: string): void {
    const html = renderConsentPage({ appName: this.idp.appName, request, users: this.idp.pickableUsers(), message });
    sendPage(res, status, html, [new URL(request.redirectUri).origin]);
  }
}

/** The call as the sandbox logs it: the path under `/ex/{product}/{cloudId}`, as it came. */
function productCall(req: Request, product: AtlassianProduct, cloudId: string): ProductCall {
  const prefix = `/sandbox/ex/${product}/${encodeURIComponent(cloudId)}`;
  return { method: req.method, product, cloudId, path: req.path.startsWith(prefix) ? req.path.slice(prefix.length) : req.path };
}
