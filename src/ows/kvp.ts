/** KVP parsing for OGC requests: case-insensitive keys, one value per key, list helpers. */
import { OwsException } from './exceptions.js';

export type Kvp = Record<string, string>;

/**
 * Normalise a parsed query string: keys upper-cased; repeated keys are an error for OGC KVP
 * (except identical repeats, which some clients send).
 */
export function normaliseKvp(query: Record<string, unknown> | null | undefined): Kvp {
  const out: Kvp = {};
  if (!query) return out;
  for (const [k, v] of Object.entries(query)) {
    const key = k.toUpperCase();
    const values = Array.isArray(v) ? v.map(String) : [v === undefined || v === null ? '' : String(v)];
    for (const value of values) {
      if (key in out && out[key] !== value) {
        throw new OwsException('InvalidParameterValue', `parameter '${k}' is given more than once with different values`, k.toLowerCase());
      }
      out[key] = value;
    }
  }
  return out;
}

/** Split a comma-separated KVP list; empty string → []. */
export function kvpList(v: string | undefined): string[] {
  if (v === undefined || v === '') return [];
  return v.split(',').map((s) => s.trim());
}

/** A required parameter, or MissingParameterValue with the parameter as locator. */
export function required(kvp: Kvp, key: string): string {
  const v = kvp[key.toUpperCase()];
  if (v === undefined || v.trim() === '') {
    throw new OwsException('MissingParameterValue', `missing parameter '${key}'`, key.toLowerCase());
  }
  return v;
}

export function parseIntParam(kvp: Kvp, key: string, opts: { min?: number; max?: number } = {}): number | undefined {
  const v = kvp[key.toUpperCase()];
  if (v === undefined || v === '') return undefined;
  if (!/^[-+]?\d+$/.test(v.trim())) {
    throw new OwsException('InvalidParameterValue', `parameter '${key}' must be an integer, got '${v}'`, key.toLowerCase());
  }
  const n = Number(v);
  // forty digits are not "everything": a value that does not fit exactly is refused
  if (!Number.isSafeInteger(n)) {
    throw new OwsException('InvalidParameterValue', `parameter '${key}' is too large: '${v.trim().slice(0, 40)}'`, key.toLowerCase());
  }
  if ((opts.min !== undefined && n < opts.min) || (opts.max !== undefined && n > opts.max)) {
    const range = `${opts.min ?? '-∞'}..${opts.max ?? '∞'}`;
    throw new OwsException('InvalidParameterValue', `parameter '${key}' must be in ${range}, got ${n}`, key.toLowerCase());
  }
  return n;
}

/** Parse a list of numbers (e.g. BBOX); throws InvalidParameterValue naming the parameter (too few or too many values included). */
export function parseNumberList(v: string, key: string, minLen: number, maxLen = minLen): number[] {
  const parts = v.split(',');
  const nums = parts.map((p) => Number(p.trim()));
  if (parts.length < minLen || parts.length > maxLen || nums.some((n, i) => !Number.isFinite(n) || parts[i].trim() === '')) {
    throw new OwsException(
      'InvalidParameterValue',
      `parameter '${key}' must be ${minLen === maxLen ? minLen : `${minLen} to ${maxLen}`} comma-separated numbers, got '${v.slice(0, 200)}'`,
      key.toLowerCase(),
    );
  }
  return nums;
}

/** Compare dotted version strings. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * WMS-style version negotiation (WMS 1.3.0 §6.2.4): exact match, else the highest version lower
 * than the requested one, else the lowest supported. `supported` is ordered highest first.
 */
export function negotiateWmsVersion(requested: string | undefined, supported: string[]): string {
  if (!requested) return supported[0];
  if (supported.includes(requested)) return requested;
  const lower = supported.filter((v) => compareVersions(v, requested) < 0);
  return lower.length ? lower[0] : supported[supported.length - 1];
}

/**
 * OWS Common AcceptVersions negotiation: the first listed version we support; none listed →
 * highest; none supported → VersionNegotiationFailed.
 */
export function negotiateAcceptVersions(acceptVersions: string | undefined, supported: string[]): string {
  if (!acceptVersions) return supported[0];
  for (const v of kvpList(acceptVersions)) if (supported.includes(v)) return v;
  throw new OwsException(
    'VersionNegotiationFailed',
    `none of the versions '${acceptVersions}' is supported (supported: ${supported.join(', ')})`,
    'acceptversions',
  );
}
