import { Controller, Get, Head, Query, Res, UseFilters } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { CookieOptions, Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import { AuthorizationService } from './authorization.service.js';
import { BROWSER_COOKIE, BrowserSecret, browserCookieOptions } from './browser-cookie.js';
import type { CallbackParams, StartParams } from './browser-params.js';
import { CallbackParamsPipe, StartParamsPipe } from './browser-params.pipes.js';
import { CallbackService } from './callback.service.js';
import { ConnectPageFilter } from './connect-page.filter.js';
import { ConnectResultSender } from './connect-result.sender.js';

/** The browser's side of the OAuth dance; every answer is a redirect or a small HTML page. */
@ApiExcludeController()
@Controller('auth/atlassian')
@UseFilters(ConnectPageFilter)
export class AtlassianAuthController {
  private readonly cookieOptions: CookieOptions;

  constructor(
    private readonly authorization: AuthorizationService,
    private readonly callbacks: CallbackService,
    private readonly results: ConnectResultSender,
    config: AppConfig,
  ) {
    this.cookieOptions = browserCookieOptions(config);
  }

  /**
   * Express would answer HEAD with the GET handler, so a link checker probing the address would spend the ticket or
   * the state (and the code with it). Declared first, so it is the route HEAD finds.
   */
  @Head(['start', 'callback'])
  probe(): void {}

  @Get('start')
  async start(
    @Query(StartParamsPipe) params: StartParams,
    @BrowserSecret() browserSecret: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    const started = await this.authorization.start(params.ticket, browserSecret);
    res.cookie(BROWSER_COOKIE, started.browserSecret, this.cookieOptions).redirect(302, started.location);
  }

  @Get('callback')
  async callback(
    @Query(CallbackParamsPipe) params: CallbackParams,
    @BrowserSecret() browserSecret: string | undefined,
    @Res() res: Response,
  ): Promise<void> {
    this.results.success(res, await this.callbacks.complete(params, browserSecret));
  }
}
