import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';
import { IsIntInRange } from '../common/validators.js';

export const DEFAULT_MIN_VALIDITY_SECONDS = 60;
/** The life of a fresh Atlassian access token: asking for all of it means "the freshest token there is". */
export const MAX_MIN_VALIDITY_SECONDS = 3600;

export class AccessTokenRequestDto {
  @ApiPropertyOptional({
    description: 'The returned token stays valid at least this long; otherwise it is refreshed first.',
    minimum: 0,
    maximum: MAX_MIN_VALIDITY_SECONDS,
    default: DEFAULT_MIN_VALIDITY_SECONDS,
  })
  @IsOptional()
  @IsIntInRange(0, MAX_MIN_VALIDITY_SECONDS, 'number of seconds')
  minValiditySeconds?: number;

  @ApiPropertyOptional({
    description:
      'Refresh now, for a token Atlassian refused (401) before its expiresAt. Callers forcing at once share one refresh: a token ' +
      'a refresh issued in the last 30 seconds is answered as it is.',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  forceRefresh?: boolean;
}

export class AccessTokenResponseDto {
  @ApiProperty({ description: "The user's Atlassian access token (Bearer)." })
  accessToken: string;

  @ApiProperty({ description: 'When the token expires (ISO 8601).', format: 'date-time' })
  expiresAt: string;
}
