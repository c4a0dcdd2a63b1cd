/** Fault tolerance: a PostgreSQL restart under load is survived without restarting the server. */
import { describe, it, expect } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureEmbeddedCluster, postgisInstalled, restartEmbeddedCluster, stopEmbeddedCluster } from '../src/db/embedded.js';
import pg from 'pg';
import { makeTestApp } from './helpers/app.js';

describe.skipIf(!postgisInstalled())('database restart under load', () => {
  it('requests in flight fail cleanly (503), the pool reconnects, service resumes', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'geodata-fault-'));
    chmodSync(home, 0o755);
    const env = { ...process.env, GEODATA_HOME: home };
    const cluster = await ensureEmbeddedCluster(() => {}, env);
    const setup = new pg.Client({ connectionString: cluster.url });
    await setup.connect();
    await setup.query(`DROP TABLE IF EXISTS public.stops; CREATE TABLE public.stops (id serial PRIMARY KEY, nom text, geom geometry(Point, 2154));
      INSERT INTO public.stops (nom, geom) SELECT 'arrêt ' || i, ST_SetSRID(ST_MakePoint(1040000 + i * 10, 6840000 + i * 7), 2154) FROM generate_series(1, 500) i; ANALYZE public.stops`);
    await setup.end();
    // statement_timeout 5 s: a request waiting on a database that no longer answers gives up
    // after statement_timeout + 5 s, well within the 20 s this test allows any request
    const t = await makeTestApp({ database: { url: cluster.url, statementTimeoutMs: 5000 } });
    try {
      expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      const statuses = new Map<number, number>();
      let stop = false;
      // health checks and database-backed requests of three front doors
      const urls = [
        '/readyz',
        '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=stops&COUNT=20&OUTPUTFORMAT=application/json',
        '/collections/stops/items?limit=20',
        '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=stops&STYLES=&CRS=EPSG:2154&BBOX=1040000,6840000,1046000,6844000&WIDTH=64&HEIGHT=64&FORMAT=image/png',
      ];
      const hung: string[] = [];
      const load = Array.from({ length: 8 }, async (_, w) => {
        for (let i = w; !stop; i++) {
          const url = urls[i % urls.length];
          // no request may hang: each must be answered within 20 s
          const r = await Promise.race([t.app.inject({ url }), new Promise<null>((res) => setTimeout(() => res(null), 20_000))]);
          if (!r) {
            const g = t.ctx.runtime.gates.stream;
            hung.push(
              `${url} (stream gate ${g?.active}/${g?.max} active, ${g?.queued} queued; pool ${t.ctx.pool.totalCount} total, ${t.ctx.pool.idleCount} idle, ${t.ctx.pool.waitingCount} waiting)`,
            );
            return;
          }
          statuses.set(r.statusCode, (statuses.get(r.statusCode) ?? 0) + 1);
        }
      });
      await new Promise((r) => setTimeout(r, 300));
      const t0 = Date.now();
      await restartEmbeddedCluster(cluster);
      // recovery: the first 200 after the restart
      let recovered = -1;
      for (let i = 0; i < 100; i++) {
        if ((await t.app.inject({ url: '/readyz' })).statusCode === 200) {
          recovered = Date.now() - t0;
          break;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      await new Promise((r) => setTimeout(r, 300));
      stop = true;
      await Promise.all(load);
      expect(hung).toEqual([]);
      expect(recovered).toBeGreaterThanOrEqual(0);
      // every answer was either success or a clean 503, never a 500 or a hang
      for (const code of statuses.keys()) expect([200, 503]).toContain(code);
      expect(statuses.get(200)).toBeGreaterThan(0);
      console.log(`restart under load: ${JSON.stringify(Object.fromEntries(statuses))}, recovered ${recovered} ms after the restart began`);
    } finally {
      await Promise.race([t.close(), new Promise((r) => setTimeout(r, 5000))]);
      stopEmbeddedCluster(cluster);
      const state = existsSync(path.join(home, 'cluster.json')) ? JSON.parse(readFileSync(path.join(home, 'cluster.json'), 'utf8')) : null;
      if (state?.dataDir && !state.dataDir.startsWith(home)) rmSync(path.dirname(state.dataDir), { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);
});
