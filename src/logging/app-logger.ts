import { Logger, type Params, PinoLogger } from 'nestjs-pino';

/**
 * Nest's own start-up lines (each module initialised, each route mapped: about 55 of them) and its copy of a
 * start-up error, which main.ts reports itself in one line with what to check. They stay available at debug level.
 */
const DEBUG_ONLY_CONTEXTS = new Set([
  'NestFactory',
  'InstanceLoader',
  'RoutesResolver',
  'RouterExplorer',
  'NestApplication',
  'ExceptionHandler',
]);

/**
 * The application's logger, built before Nest so that everything logged while it starts (a database that is not
 * there yet, above all) is written at once, as pino lines like any other, instead of being held back.
 */
export class AppLogger extends Logger {
  constructor(params: Params) {
    super(new PinoLogger(params), params);
  }

  override log(message: unknown, ...optionalParams: unknown[]): void {
    if (isDebugOnly(optionalParams)) this.debug(message, ...optionalParams);
    else super.log(message, ...optionalParams);
  }

  override error(message: unknown, ...optionalParams: unknown[]): void {
    if (isDebugOnly(optionalParams)) this.debug(message, ...optionalParams);
    else super.error(message, ...optionalParams);
  }
}

/** Nest passes the context (the logger's name) last. */
function isDebugOnly(optionalParams: unknown[]): boolean {
  const context = optionalParams[optionalParams.length - 1];
  return typeof context === 'string' && DEBUG_ONLY_CONTEXTS.has(context);
}
