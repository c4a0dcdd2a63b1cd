/**
 * Test data kept as files under fixtures/ (see fixtures/README.md): configurations, SLD documents,
 * small GML/GeoJSON inputs and expected responses that are long or shared by several test files.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

export const FIXTURES_DIR = path.resolve(import.meta.dirname, '..', '..', 'fixtures');

export function fixturePath(rel: string): string {
  return path.join(FIXTURES_DIR, rel);
}

/**
 * The text of a fixture, with each `{{name}}` replaced by `vars[name]`; a placeholder without a
 * value is an error (a test never sends a half-filled document by mistake).
 */
export function fixtureText(rel: string, vars: Record<string, string | number> = {}): string {
  return readFileSync(fixturePath(rel), 'utf8').replace(/\{\{(\w+)\}\}/g, (_, name: string) => {
    if (!(name in vars)) throw new Error(`fixture ${rel}: no value for {{${name}}}`);
    return String(vars[name]);
  });
}

/** A JSON fixture, parsed (a fresh object on every call: tests may change it). */
export function fixtureJson<T = Record<string, unknown>>(rel: string): T {
  return JSON.parse(fixtureText(rel)) as T;
}
