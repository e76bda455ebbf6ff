import { type ArgumentMetadata, Injectable, ValidationPipe } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';

/**
 * Validation for every route: unknown fields refused, values converted to their DTO class. The commonest input, an
 * empty query or body (`GET …/accessible-resources` without `refresh`), is answered without running class-validator
 * each time: whether a DTO accepts `{}` is learned from its first full validation, and cannot change. Any other input
 * is validated in full.
 */
@Injectable()
export class AppValidationPipe extends ValidationPipe {
  private readonly acceptsEmpty = new Set<ArgumentMetadata['metatype']>();

  constructor() {
    super({ whitelist: true, forbidNonWhitelisted: true, transform: true });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const { metatype } = metadata;
    if (metatype === undefined || !isEmptyObject(value) || !this.toValidate(metadata)) return super.transform(value, metadata);
    if (this.acceptsEmpty.has(metatype)) return plainToInstance(metatype, {});
    const validated = await super.transform(value, metadata);
    this.acceptsEmpty.add(metatype);
    return validated;
  }
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}
