import { Controller, Get, Head, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { AtlassianCallbackGuard, AtlassianStartGuard } from './atlassian-auth.guards.js';
import type { ConnectedUser } from './callback.service.js';
import { ConnectPageFilter } from './connect-page.filter.js';
import { ConnectResultSender } from './connect-result.sender.js';

/**
 * The browser's side of the OAuth dance, run by passport's `atlassian` strategy through its guards; every answer is a
 * redirect or a small HTML page.
 */
@ApiExcludeController()
@Controller('auth/atlassian')
@UseFilters(ConnectPageFilter)
export class AtlassianAuthController {
  constructor(private readonly results: ConnectResultSender) {}

  /**
   * Express would answer HEAD with the GET handler, so a link checker probing the address would spend the ticket or
   * the state (and the code with it). Declared first, so it is the route HEAD finds.
   */
  @Head(['start', 'callback'])
  probe(): void {}

  /** The guard has answered: the redirect to Atlassian, or a refusal. */
  @Get('start')
  @UseGuards(AtlassianStartGuard)
  start(): void {}

  @Get('callback')
  @UseGuards(AtlassianCallbackGuard)
  callback(@Req() request: Request, @Res() res: Response): void {
    this.results.success(res, request.user as ConnectedUser);
  }
}
