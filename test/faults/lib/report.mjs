import { eventually } from './util.mjs';

/**
 * What one scenario found: the figures it measured and the checks it made. A failed check does not stop the
 * scenario (the next figures still help whoever reads the failure); an exception does.
 */
export class ScenarioReport {
  constructor(id, title) {
    this.id = id;
    this.title = title;
    this.figures = [];
    this.failures = [];
    this.startedAt = Date.now();
    this.endedAt = null;
  }

  log(text) {
    console.log(`[${this.id}] ${text}`);
  }

  figure(name, value) {
    this.figures.push([name, value]);
    this.log(`  ${name}: ${value}`);
  }

  check(label, ok, detail = '') {
    if (ok) {
      this.log(`  ok    ${label}`);
    } else {
      this.failures.push(detail ? `${label}: ${detail}` : label);
      this.log(`  FAIL  ${label}${detail ? `: ${detail}` : ''}`);
    }
    return ok;
  }

  /** The figure and the check of a counter that must stay at zero. */
  zero(name, value) {
    return this.check(`${name} = 0`, value === 0, `was ${value}`);
  }

  /** A check on something that takes a while to become true: polled until it holds or the time is up. */
  async within(label, read, done, options) {
    try {
      const value = await eventually(label, read, done, options);
      this.check(label, true);
      return value;
    } catch (error) {
      this.check(label, false, error.message);
      return undefined;
    }
  }

  fail(message) {
    this.failures.push(message);
    this.log(`  FAIL  ${message}`);
  }

  finish() {
    this.endedAt = Date.now();
  }

  get passed() {
    return this.failures.length === 0;
  }

  get seconds() {
    return Math.round(((this.endedAt ?? Date.now()) - this.startedAt) / 1000);
  }
}
