import { Injectable, type PipeTransform } from '@nestjs/common';
import { type CallbackParams, parseCallbackParams, parseStartParams, type StartParams } from './browser-params.js';

@Injectable()
export class StartParamsPipe implements PipeTransform<unknown, StartParams> {
  transform(query: unknown): StartParams {
    return parseStartParams(query);
  }
}

@Injectable()
export class CallbackParamsPipe implements PipeTransform<unknown, CallbackParams> {
  transform(query: unknown): CallbackParams {
    return parseCallbackParams(query);
  }
}
