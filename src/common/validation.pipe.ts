import { type ArgumentMetadata, BadRequestException, Injectable, ValidationPipe } from '@nestjs/common';
import { plainToInstance } from 'class-transformer';

/**
 * Validation for every route: unknown fields refused, values converted to their DTO class. The commonest input, an
 * empty query or body (`GET …/accessible-resources` without `refresh`), is answered without running class-validator
 * each time: whether a DTO accepts `{}` is learned from its first full validation, and cannot change. Any other input
 * is validated in full. Keys that name an object's prototype (`__proto__`, `constructor`, `prototype`), which
 * class-transformer drops silently, are refused like any other unknown field.
 */
@Injectable()
export class AppValidationPipe extends ValidationPipe {
  private readonly acceptsEmpty = new Set<ArgumentMetadata['metatype']>();

  constructor() {
    super({ whitelist: true, forbidNonWhitelisted: true, transform: true });
  }

  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const { metatype } = metadata;
    const prototypeKey = metatype !== undefined && this.toValidate(metadata) ? prototypeKeyIn(value) : undefined;
    if (prototypeKey !== undefined) throw new BadRequestException(`property ${prototypeKey} should not exist`);
    if (metatype === undefined || !isEmptyObject(value) || !this.toValidate(metadata)) return super.transform(value, metadata);
    if (this.acceptsEmpty.has(metatype)) return plainToInstance(metatype, {});
    const validated: unknown = await super.transform(value, metadata);
    this.acceptsEmpty.add(metatype);
    return validated;
  }
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** The first key naming a prototype anywhere in a parsed body or query, walked without recursion. */
function prototypeKeyIn(value: unknown): string | undefined {
  const pending = [value];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (typeof next !== 'object' || next === null) continue;
    for (const key of Object.keys(next)) {
      if (PROTOTYPE_KEYS.has(key)) return key;
      pending.push((next as Record<string, unknown>)[key]);
    }
  }
  return undefined;
}
