import { describe, expect, it, jest } from '@jest/globals';
import { BadRequestException } from '@nestjs/common';
import { IsIn, IsOptional, IsString } from 'class-validator';
import { AppValidationPipe } from './validation.pipe.js';

class OptionalQuery {
  @IsOptional()
  @IsIn(['true', 'false'])
  refresh?: 'true' | 'false';
}

class RequiredBody {
  @IsString()
  name!: string;
}

const query = { type: 'query' as const, metatype: OptionalQuery };
const body = { type: 'body' as const, metatype: RequiredBody };

/** Counts the pipe's runs of class-validator. */
function countingPipe(): { pipe: AppValidationPipe; validations: () => number } {
  const pipe = new AppValidationPipe();
  const validate = jest.spyOn(pipe as unknown as { validate: (...args: unknown[]) => unknown }, 'validate');
  return { pipe, validations: () => validate.mock.calls.length };
}

describe('AppValidationPipe', () => {
  it('validates an empty query once per DTO, then answers the same DTO without validating again', async () => {
    const { pipe, validations } = countingPipe();
    const first = await pipe.transform({}, query);
    const second = await pipe.transform({}, query);
    expect(first).toBeInstanceOf(OptionalQuery);
    expect(second).toBeInstanceOf(OptionalQuery);
    expect(second).toEqual(first);
    expect(second).not.toBe(first);
    expect(validations()).toBe(1);
  });

  it('validates every input that is not empty, and refuses unknown and invalid fields', async () => {
    const { pipe, validations } = countingPipe();
    await pipe.transform({}, query);
    await expect(pipe.transform({ refresh: 'true' }, query)).resolves.toEqual(Object.assign(new OptionalQuery(), { refresh: 'true' }));
    await expect(pipe.transform({ refresh: 'maybe' }, query)).rejects.toBeInstanceOf(BadRequestException);
    await expect(pipe.transform({ extra: '1' }, query)).rejects.toBeInstanceOf(BadRequestException);
    expect(validations()).toBe(4);
  });

  it('keeps refusing an empty input that its DTO does not accept', async () => {
    const { pipe, validations } = countingPipe();
    await expect(pipe.transform({}, body)).rejects.toBeInstanceOf(BadRequestException);
    await expect(pipe.transform({}, body)).rejects.toBeInstanceOf(BadRequestException);
    expect(validations()).toBe(2);
    await expect(pipe.transform({ name: 'x' }, body)).resolves.toBeInstanceOf(RequiredBody);
  });
});

describe('AppValidationPipe and prototype keys', () => {
  it.each([
    ['__proto__', '{"__proto__":{"polluted":true},"name":"x"}'],
    ['constructor', '{"name":"x","constructor":{"prototype":{"polluted":true}}}'],
    ['prototype', '{"name":"x","nested":[{"prototype":1}]}'],
  ])('refuses a body with a %s key, which class-transformer would drop silently', async (key, json) => {
    await expect(new AppValidationPipe().transform(JSON.parse(json), body)).rejects.toThrow(`property ${key} should not exist`);
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});
