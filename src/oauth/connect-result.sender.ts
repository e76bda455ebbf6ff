import { Injectable } from '@nestjs/common';
import type { Response } from 'express';
import { AppConfig } from '../config/app-config.js';
import type { ConnectedUser } from './callback.service.js';
import { ConnectFailure } from './connect-failure.js';
import { renderAlreadyConnectedPage, renderFailurePage, renderSuccessPage } from './connect-pages.js';

/**
 * Ends a browser route: on the SaaS backend's own pages when CONNECT_SUCCESS_URL / CONNECT_FAILURE_URL are set
 * (`?userId=…` / `?error=<code>`), on the service's small result pages otherwise.
 */
@Injectable()
export class ConnectResultSender {
  constructor(private readonly config: AppConfig) {}

  alreadyConnected(res: Response): void {
    const { successUrl } = this.config.connect;
    if (successUrl) res.redirect(302, successUrl);
    else res.status(200).type('html').send(renderAlreadyConnectedPage());
  }

  success(res: Response, connected: ConnectedUser): void {
    const { successUrl } = this.config.connect;
    if (successUrl) res.redirect(302, withQuery(successUrl, 'userId', connected.userId));
    else res.status(200).type('html').send(renderSuccessPage(connected));
  }

  failure(res: Response, failure: ConnectFailure): void {
    // A reload of the page that ended a sign-in: the same result again, not an error about the reload.
    if (failure.finishedWith === 'connected') {
      this.alreadyConnected(res);
      return;
    }
    if (failure.finishedWith) {
      this.failure(
        res,
        new ConnectFailure(failure.finishedWith, 'This sign-in has already ended this way; opening its address again does not try again.'),
      );
      return;
    }
    const { failureUrl } = this.config.connect;
    if (failureUrl) {
      res.redirect(302, withQuery(failureUrl, 'error', failure.code));
      return;
    }
    const reference = res.getHeader('X-Request-Id');
    res
      .status(failure.status)
      .type('html')
      .send(renderFailurePage(failure, typeof reference === 'string' ? reference : undefined));
  }
}

function withQuery(base: string, name: string, value: string): string {
  const url = new URL(base);
  url.searchParams.set(name, value);
  return url.toString();
}
