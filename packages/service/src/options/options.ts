import { OptionError } from '@swarmdrop/protocol';
import type { LogFormat } from '../log/log.js';

/** Reads a whole decimal number within [min, max]; `field` names the option in the error. */
export function parseIntegerOption(
  text: string | undefined,
  field: string,
  min: number,
  max: number,
): number {
  if (text === undefined || !/^\d+$/.test(text.trim())) {
    throw new OptionError(field, `"${text ?? ''}" is not a whole number`);
  }
  const value = Number(text.trim());
  if (value < min || value > max)
    throw new OptionError(field, `${value} is out of range (${min}-${max})`);
  return value;
}

/** Reads a log format; `field` names the option in the error (`logFormat` for a library caller). */
export function parseLogFormat(text: string | undefined, field = '--log-format'): LogFormat {
  if (text === undefined || text === 'text') return 'text';
  if (text === 'json') return 'json';
  throw new OptionError(field, `"${text}" is not one of: text, json`);
}
