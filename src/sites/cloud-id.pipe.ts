import { Injectable, type PipeTransform } from '@nestjs/common';
import { DomainError } from '../common/errors.js';

/** Atlassian cloudIds are UUIDs; this is looser (any id of that alphabet), strict enough to keep paths out of the URL. */
const CLOUD_ID_PATTERN = /^[A-Za-z0-9-]{1,64}$/;

@Injectable()
export class CloudIdPipe implements PipeTransform<unknown, string> {
  transform(value: unknown): string {
    if (typeof value !== 'string' || !CLOUD_ID_PATTERN.test(value)) {
      throw new DomainError('invalid_request', 'cloudId must be a site id from accessible-resources: 1 to 64 letters, digits and -');
    }
    return value;
  }
}
