import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { AtlassianCallGate } from './atlassian-call.gate.js';
import { AtlassianClient } from './atlassian.client.js';

/** The gate is whatever the application provides as AtlassianCallGate (the rate-limit governor); none admits every call. */
@Global()
@Module({
  providers: [
    {
      provide: AtlassianClient,
      useFactory: (config: AppConfig, gate: AtlassianCallGate | undefined) => new AtlassianClient(config, undefined, gate),
      inject: [AppConfig, { token: AtlassianCallGate, optional: true }],
    },
  ],
  exports: [AtlassianClient],
})
export class AtlassianModule {}
