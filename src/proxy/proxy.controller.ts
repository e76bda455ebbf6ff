import { applyDecorators, Controller, Delete, Get, Param, Patch, Post, Put, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { ApiErrors } from '../api/api-errors.docs.js';
import { ApiKeyGuard } from '../api/api-key.guard.js';
import { UserIdPipe } from '../api/user-id.pipe.js';
import { PROXY_PRODUCTS, proxyTarget } from './proxy-path.js';
import { sendProxied } from './proxy.http.js';
import { ProxyService } from './proxy.service.js';

const ROUTE = ':product/:cloudId/*path';

function ProxyRoute(method: string): MethodDecorator {
  return applyDecorators(
    ApiOperation({
      summary: `${method} a Jira or Confluence REST path on one of the user's sites, as the user`,
      description:
        "Forwarded to {ATLASSIAN_API_URL}/ex/{product}/{cloudId}/{path}?{query} with the user's access token (refreshed when " +
        'needed; after a 401 refreshed once more and retried once), with the headers Accept, Accept-Language, Content-Type, ' +
        'X-Atlassian-Token and X-ExperimentalApi and the body (up to PROXY_MAX_BODY_BYTES); never your Authorization. ' +
        "Answers Atlassian's status and body, streamed, with Content-Type, Retry-After, X-RateLimit-*, RateLimit-*, " +
        'Beta-RateLimit*, Beta-Retry-After, Link and X-AREQUESTID. After a 429 from Atlassian, calls in the same scope ' +
        '(the product app-wide, the site, or the writes to one issue) are answered 429 atlassian_rate_limited at once, on every ' +
        'replica, until its Retry-After has passed.',
    }),
    ApiParam({ name: 'userId', description: 'Your own id for the user.', example: 'user-42' }),
    ApiParam({ name: 'product', enum: PROXY_PRODUCTS }),
    ApiParam({
      name: 'cloudId',
      description: 'The site: an id from accessible-resources.',
      example: '1324a887-45db-1bf4-1e99-ef0ff456d421',
    }),
    ApiParam({
      name: 'path',
      description: 'The REST path under the site, percent-encoded, e.g. rest/api/3/myself or wiki/api/v2/pages/42.',
      example: 'rest/api/3/myself',
    }),
    ApiResponse({ status: 200, description: "Atlassian's answer, whatever its status, as it came." }),
    ApiErrors(
      'invalid_request',
      'invalid_product',
      'invalid_path',
      'body_too_large',
      'connection_not_found',
      'site_not_found',
      'reauth_required',
      'atlassian_rate_limited',
      'atlassian_unavailable',
      'atlassian_timeout',
      'configuration_error',
    ),
  );
}

@ApiTags('proxy')
@ApiBearerAuth()
@Controller('v1/users/:userId/proxy')
@UseGuards(ApiKeyGuard)
export class ProxyController {
  constructor(private readonly proxy: ProxyService) {}

  @Get(ROUTE)
  @ProxyRoute('GET')
  get(@Param('userId', UserIdPipe) userId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.forward(userId, req, res);
  }

  @Post(ROUTE)
  @ProxyRoute('POST')
  post(@Param('userId', UserIdPipe) userId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.forward(userId, req, res);
  }

  @Put(ROUTE)
  @ProxyRoute('PUT')
  put(@Param('userId', UserIdPipe) userId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.forward(userId, req, res);
  }

  @Patch(ROUTE)
  @ProxyRoute('PATCH')
  patch(@Param('userId', UserIdPipe) userId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.forward(userId, req, res);
  }

  @Delete(ROUTE)
  @ProxyRoute('DELETE')
  delete(@Param('userId', UserIdPipe) userId: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    return this.forward(userId, req, res);
  }

  /** The path and query are taken from the URL as sent: Express has decoded its copies, which is what must be checked. */
  private async forward(userId: string, req: Request, res: Response): Promise<void> {
    const { product, cloudId } = req.params as Record<string, string>;
    const answer = await this.proxy.forward({
      userId,
      product,
      cloudId,
      method: req.method,
      ...proxyTarget(req.originalUrl),
      request: req,
    });
    await sendProxied(res, answer);
  }
}
