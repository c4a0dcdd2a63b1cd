/** QGIS (headless, python3-qgis) as a client: WMS in Lambert-93 and Web Mercator, identify, WFS with paging. */
import { describe, it, expect } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { makeTestApp, testDatabaseUrl } from './helpers/app.js';

const py = '/usr/bin/python3';
const hasQgis =
  existsSync(py) &&
  (() => {
    try {
      execFileSync(py, ['-c', 'import qgis.core'], { stdio: 'ignore', timeout: 60_000 });
      return true;
    } catch {
      return false;
    }
  })();

describe('QGIS as a client', () => {
  it.skipIf(!hasQgis)(
    'adds the WMS (2154 and 3857), identifies a feature, and loads the WFS with paging in 2.0.0 and 1.1.0',
    async () => {
      const t = await makeTestApp();
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
      try {
        // asynchronously: the server answering QGIS runs in this very process
        // QGIS may crash while tearing down (exit 139) after printing its result: the JSON line counts
        const stdout = await promisify(execFile)(py, ['test/clients/qgis_check.py', base], { encoding: 'utf8', timeout: 240_000 }).then(
          (r) => r.stdout,
          (e: { stdout?: string; message: string }) => {
            if (e.stdout?.includes('"wms"')) return e.stdout;
            throw new Error(`${e.message}\nstdout: ${e.stdout}`);
          },
        );
        const out = JSON.parse(stdout.trim().split('\n').pop()!);
        // drawn pixels out of 7,500 sampled; points of interest (a town, symbols of a few pixels) cover less of a map
        for (const [k, v] of Object.entries(out.wms as Record<string, number>))
          expect(v, `WMS ${k}: drawn pixels`).toBeGreaterThan(k.startsWith('pois') ? 30 : 100);
        expect(out.identify).toBeGreaterThanOrEqual(1);
        const pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 1 });
        const n = Number((await pool.query('SELECT count(*) n FROM public.pois')).rows[0].n);
        await pool.end();
        for (const v of ['2.0.0', '1.1.0']) {
          expect(out.wfs[v].valid).toBe(true);
          expect(out.wfs[v].count, `WFS ${v}`).toBe(n); // every page fetched, none twice
          expect(out.wfs[v].accented).toBeGreaterThan(0);
        }
      } finally {
        await t.close();
      }
    },
    300_000,
  );
  it.skipIf(hasQgis)('QGIS client check skipped: python3-qgis is not installed (apt-get install python3-qgis)', () => {});
});
