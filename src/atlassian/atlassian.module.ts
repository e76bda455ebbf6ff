import { Global, Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config.js';
import { AtlassianClient } from './atlassian.client.js';

@Global()
@Module({
  providers: [{ provide: AtlassianClient, useFactory: (config: AppConfig) => new AtlassianClient(config), inject: [AppConfig] }],
  exports: [AtlassianClient],
})
export class AtlassianModule {}
