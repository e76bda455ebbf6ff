import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
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
}

export class AccessTokenResponseDto {
  @ApiProperty({ description: "The user's Atlassian access token (Bearer)." })
  accessToken: string;

  @ApiProperty({ description: 'When the token expires (ISO 8601).', format: 'date-time' })
  expiresAt: string;
}
