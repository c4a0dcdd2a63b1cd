/** docs/configuration.md is generated from the config schema, and the schema's defaults are the ones the server applies. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { configDoc } from '../scripts/config-doc.mjs';
import { validateConfig } from '../src/config/index.js';

const schema = JSON.parse(readFileSync(new URL('../schemas/config.schema.json', import.meta.url), 'utf8'));

describe('configuration reference', () => {
  it('docs/configuration.md is what the schema generates (run npm run docs:config after changing the schema)', () => {
    const have = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    expect(have).toBe(configDoc(schema));
  });

  it('every key of the schema says what it means', () => {
    const missing: string[] = [];
    const walk = (node: Record<string, any>, at: string) => {
      for (const [k, n] of Object.entries<Record<string, any>>(node.properties ?? {})) {
        const p = at ? `${at}.${k}` : k;
        if (!n.description && !n.$ref) missing.push(p);
        walk(n, p);
        if (n.items?.properties) walk(n.items, `${p}[]`);
      }
    };
    walk(schema, '');
    for (const [name, d] of Object.entries<Record<string, any>>(schema.definitions ?? {})) walk(d, `#${name}`);
    expect(missing).toEqual([]);
  });

  it('every default the schema states is the one the server applies when the key is absent', () => {
    const applied = validateConfig({}) as unknown as Record<string, unknown>;
    const checked: string[] = [];
    const walk = (node: Record<string, any>, at: string[]) => {
      for (const [k, n] of Object.entries<Record<string, any>>(node.properties ?? {})) {
        const p = [...at, k];
        if (n.default !== undefined) {
          let v: unknown = applied;
          for (const part of p) v = (v as Record<string, unknown> | undefined)?.[part];
          // a section the server leaves undefined applies its defaults where it is read: skip those
          if (v !== undefined) {
            expect(v, p.join('.')).toEqual(n.default);
            checked.push(p.join('.'));
          }
        }
        if (n.properties) walk(n, p);
      }
    };
    walk(schema, []);
    expect(checked.length).toBeGreaterThan(0);
  });
});
