import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export const DEFAULT_MIN_VALIDITY_SECONDS = 60;
/** Below an access token's 3600-second life minus the refresh lead, so a fresh token always satisfies it. */
export const MAX_MIN_VALIDITY_SECONDS = 3000;

export class AccessTokenRequestDto {
  @ApiPropertyOptional({
    description: 'The returned token stays valid at least this long; otherwise it is refreshed first.',
    minimum: 0,
    maximum: MAX_MIN_VALIDITY_SECONDS,
    default: DEFAULT_MIN_VALIDITY_SECONDS,
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(MAX_MIN_VALIDITY_SECONDS)
  minValiditySeconds?: number;
}

export class AccessTokenResponseDto {
  @ApiProperty({ description: "The user's Atlassian access token (Bearer)." })
  accessToken: string;

  @ApiProperty({ description: 'When the token expires (ISO 8601).', format: 'date-time' })
  expiresAt: string;
}
