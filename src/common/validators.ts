import { isISO8601, ValidateBy } from 'class-validator';

/**
 * A whole number from `min` to `max`, checked as one rule: a value that is no number at all (`"60"`) is refused with
 * one message saying what is accepted, not one per failed check (IsInt, Min and Max each add their own).
 */
export function IsIntInRange(min: number, max: number, unit: string): PropertyDecorator {
  return ValidateBy({
    name: 'isIntInRange',
    constraints: [min, max],
    validator: {
      validate: (value: unknown) => Number.isInteger(value) && (value as number) >= min && (value as number) <= max,
      defaultMessage: (args) => `${args?.property ?? 'value'} must be a whole ${unit} from ${min} to ${max}`,
    },
  });
}

/** A date, or a date and time with its offset from UTC: never a local time, whose meaning would depend on the server. */
const ISO_TIME = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** An ISO 8601 time that means one instant: a real calendar date, and an offset whenever a time of day is given. */
export function IsIsoTime(): PropertyDecorator {
  return ValidateBy({
    name: 'isIsoTime',
    validator: {
      validate: (value: unknown) => typeof value === 'string' && ISO_TIME.test(value) && isISO8601(value, { strict: true }),
      defaultMessage: (args) => `${args?.property ?? 'value'} must be an ISO 8601 time, e.g. 2027-03-02T09:00:00Z`,
    },
  });
}
