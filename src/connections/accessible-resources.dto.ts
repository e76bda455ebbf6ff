import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional } from 'class-validator';

export class AccessibleResourceDto {
  @ApiProperty({
    description: 'The cloudId: use it in https://api.atlassian.com/ex/jira/{cloudId}/….',
    example: '1324a887-45db-1bf4-1e99-ef0ff456d421',
  })
  id: string;

  @ApiProperty({ example: 'https://acme.atlassian.net' })
  url: string;

  @ApiProperty({ example: 'acme' })
  name: string;

  @ApiProperty({ type: [String], description: 'Scopes granted on this site, united across its products.', example: ['read:jira-work'] })
  scopes: string[];

  @ApiProperty({ type: String, nullable: true })
  avatarUrl: string | null;
}

export class ResourceChangesDto {
  @ApiProperty({ type: [String], description: 'cloudIds listed now that were not listed at the previous read.' })
  added: string[];

  @ApiProperty({ type: [String], description: 'cloudIds listed at the previous read that are gone now.' })
  removed: string[];
}

export class AccessibleResourcesDto {
  @ApiProperty({ example: 'user-42' })
  userId: string;

  @ApiProperty({ type: [AccessibleResourceDto], description: 'One entry per site (merged by id across products).' })
  resources: AccessibleResourceDto[];

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When these sites were read from Atlassian.' })
  fetchedAt: string | null;

  @ApiPropertyOptional({ type: ResourceChangesDto, description: 'Only with refresh=true: what this read changed.' })
  changes?: ResourceChangesDto;
}

export class AccessibleResourcesQueryDto {
  @ApiPropertyOptional({
    enum: ['true', 'false'],
    description: 'true re-reads the sites from Atlassian (with a valid token) and stores them.',
  })
  @IsOptional()
  @IsIn(['true', 'false'])
  refresh?: 'true' | 'false';
}
