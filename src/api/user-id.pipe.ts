import { Injectable, type PipeTransform } from '@nestjs/common';
import { DomainError } from '../common/errors.js';

export const USER_ID_PATTERN = /^[A-Za-z0-9._:@-]{1,128}$/;

/** The SaaS backend's own opaque user id: 1–128 characters of [A-Za-z0-9._:@-]. */
@Injectable()
export class UserIdPipe implements PipeTransform<unknown, string> {
  transform(value: unknown): string {
    if (typeof value !== 'string' || !USER_ID_PATTERN.test(value)) {
      throw new DomainError('invalid_request', 'userId must be 1 to 128 characters of letters, digits and . _ : @ -');
    }
    return value;
  }
}
