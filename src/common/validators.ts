import { ValidateBy, type ValidationOptions } from 'class-validator';

/**
 * A whole number from `min` to `max`, checked as one rule: a value that is no number at all (`"60"`) is refused with
 * one message saying what is accepted, not one per failed check (IsInt, Min and Max each add their own).
 */
export function IsIntInRange(min: number, max: number, unit = 'number', options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isIntInRange',
      constraints: [min, max],
      validator: {
        validate: (value: unknown) => Number.isInteger(value) && (value as number) >= min && (value as number) <= max,
        defaultMessage: (args) => `${args?.property ?? 'value'} must be a whole ${unit} from ${min} to ${max}`,
      },
    },
    options,
  );
}
