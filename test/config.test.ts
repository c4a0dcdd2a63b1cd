import { describe, it, expect } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, validateConfig } from '../src/config/index.js';

function tmpFile(content: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cfg-'));
  const f = path.join(dir, 'config.yaml');
  writeFileSync(f, content);
  return f;
}

describe('configuration', () => {
  it('fills defaults when empty', () => {
    const c = validateConfig({});
    expect(c.server.port).toBe(8080);
    expect(c.layers).toBeUndefined();
    expect(c.database.schemas).toEqual(['public']);
    expect(c.limits.maxImageWidth).toBeGreaterThan(0);
  });

  it('refuses an unknown key and names it', () => {
    expect(() => validateConfig({ service: { titel: 'x' } }, 'my.yaml')).toThrow(/unknown key 'service\.titel'/);
    expect(() => validateConfig({ servise: {} }, 'my.yaml')).toThrow(/unknown key 'servise'/);
    expect(() => validateConfig({ layers: [{ table: 'a', tabel: 'b' }] })).toThrow(/unknown key 'layers\.0\.tabel'/);
  });

  it('names a key with a wrong type and a missing required key', () => {
    expect(() => validateConfig({ server: { port: 'eighty' } })).toThrow(/'server\.port' must be integer/);
    expect(() => validateConfig({ layers: [{ name: 'x' }] })).toThrow(/'layers\.0' is missing required key 'table'/);
    expect(() => validateConfig({ limits: { maxImageWidth: 0 } })).toThrow(/'limits\.maxImageWidth' must be >= 1/);
  });

  it('loads YAML, applies environment overrides, and reports YAML syntax errors', () => {
    const f = tmpFile(
      'service:\n  title: "Géo Grand Est"\nserver:\n  port: 9000\nlayers:\n  - table: public.parcels\n    title: Parcelles\n',
    );
    const c = loadConfig(f, {});
    expect(c.service.title).toBe('Géo Grand Est');
    expect(c.server.port).toBe(9000);
    expect(c.layers?.[0].table).toBe('public.parcels');
    const c2 = loadConfig(f, { PORT: '9100', HOST: '0.0.0.0', DATABASE_URL: 'postgres://u@h/db' });
    expect(c2.server.port).toBe(9100);
    expect(c2.server.host).toBe('0.0.0.0');
    expect(c2.database.url).toBe('postgres://u@h/db');
    expect(() => loadConfig(f, { PORT: 'abc' })).toThrow(ConfigError);
    expect(() => loadConfig(tmpFile('service: [unclosed'), {})).toThrow(/YAML syntax error/);
    expect(() => loadConfig('/nonexistent/config.yaml', {})).toThrow(/not found/);
  });

  it('the example configuration in the repository is valid', () => {
    const c = loadConfig(path.join(process.cwd(), 'config.example.yaml'), {});
    expect(c.layers?.length).toBeGreaterThanOrEqual(4);
  });
});
