import { Module } from '@nestjs/common';
import { ConnectionsModule } from '../connections/connections.module.js';
import { AtlassianAuthController } from './atlassian-auth.controller.js';
import { AtlassianCallbackGuard, AtlassianStartGuard } from './atlassian-auth.guards.js';
import { AtlassianStrategy } from './atlassian.strategy.js';
import { CallbackService } from './callback.service.js';
import { ConnectResultSender } from './connect-result.sender.js';
import { ConnectTicketsRepository } from './connect-tickets.repository.js';
import { ConnectTicketsService } from './connect-tickets.service.js';
import { ConnectController } from './connect.controller.js';
import { OAuthHousekeepingService } from './oauth-housekeeping.service.js';
import { OAuthStateStore } from './oauth-state.store.js';
import { OAuthStatesRepository } from './oauth-states.repository.js';
import { OAuthStatesService } from './oauth-states.service.js';
import { RandomSecretGenerator, SecretGenerator } from './secrets.js';

/** Connecting a user: connect tickets, the authorization request, the callback, and their result pages. */
@Module({
  imports: [ConnectionsModule],
  controllers: [ConnectController, AtlassianAuthController],
  providers: [
    { provide: SecretGenerator, useClass: RandomSecretGenerator },
    ConnectTicketsRepository,
    OAuthStatesRepository,
    ConnectTicketsService,
    OAuthStatesService,
    OAuthStateStore,
    AtlassianStrategy,
    AtlassianStartGuard,
    AtlassianCallbackGuard,
    CallbackService,
    ConnectResultSender,
    OAuthHousekeepingService,
  ],
})
export class OAuthModule {}
