import { applyDecorators } from '@nestjs/common';
import { ApiProperty, ApiResponse } from '@nestjs/swagger';
import { ERROR_CODES, type ErrorCode } from '../common/errors.js';

export class ErrorDetailDto {
  @ApiProperty({ enum: Object.keys(ERROR_CODES), description: 'Stable machine code; switch on this.' })
  code: ErrorCode;

  @ApiProperty({ description: 'A sentence for people; it may change.' })
  message: string;
}

export class ErrorBodyDto {
  @ApiProperty({ type: ErrorDetailDto })
  error: ErrorDetailDto;
}

/** Every /v1 route can answer these: a missing or wrong API key, too many requests, the database out of reach, a bug. */
const EVERY_ROUTE: readonly ErrorCode[] = ['unauthorized', 'rate_limited', 'database_unavailable', 'internal_error'];

const HEADERS_BY_CODE: Partial<Record<ErrorCode, Record<string, { description: string; schema: { type: 'integer' | 'string' } }>>> = {
  rate_limited: { 'Retry-After': { description: 'Seconds until this API key may call again.', schema: { type: 'integer' } } },
  atlassian_rate_limited: {
    'Retry-After': { description: "Whole seconds left of the pause Atlassian's 429 started, rounded up.", schema: { type: 'integer' } },
    'RateLimit-Reason': { description: "Atlassian's reason for that 429, when it gave one.", schema: { type: 'string' } },
  },
  atlassian_unavailable: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } },
  configuration_error: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } },
  database_unavailable: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } },
};

/**
 * Documents a route's error answers, one OpenAPI response per HTTP status listing its codes, with the error body's
 * schema; the codes every /v1 route shares are added here.
 */
export function ApiErrors(...codes: ErrorCode[]): MethodDecorator & ClassDecorator {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...codes, ...EVERY_ROUTE])) {
    const status = ERROR_CODES[code];
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  return applyDecorators(
    ...[...byStatus].map(([status, shared]) => {
      const headers = Object.fromEntries(shared.flatMap((code) => Object.entries(HEADERS_BY_CODE[code] ?? {})));
      return ApiResponse({
        status,
        type: ErrorBodyDto,
        description: shared.join(', '),
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
      });
    }),
  );
}
