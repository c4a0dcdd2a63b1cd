/** Fault tolerance: a PostgreSQL restart under load is survived without restarting the server. */
import { describe, it, expect } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureEmbeddedCluster, postgisInstalled, restartEmbeddedCluster, stopEmbeddedCluster } from '../src/db/embedded.js';
import { makeTestApp } from './helpers/app.js';

describe.skipIf(!postgisInstalled())('database restart under load', () => {
  it('requests in flight fail cleanly (503), the pool reconnects, service resumes', async () => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'geodata-fault-'));
    chmodSync(home, 0o755);
    const env = { ...process.env, GEODATA_HOME: home };
    const cluster = await ensureEmbeddedCluster(() => {}, env);
    const t = await makeTestApp({ database: { url: cluster.url } });
    try {
      expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
      const statuses = new Map<number, number>();
      let stop = false;
      const load = Array.from({ length: 8 }, async () => {
        while (!stop) {
          const r = await t.app.inject({ url: '/readyz' });
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
      expect(recovered).toBeGreaterThanOrEqual(0);
      // every answer was either success or a clean 503, never a 500 or a hang
      for (const code of statuses.keys()) expect([200, 503]).toContain(code);
      expect(statuses.get(200)).toBeGreaterThan(0);
      console.log(`restart under load: ${JSON.stringify(Object.fromEntries(statuses))}, recovered ${recovered} ms after the restart began`);
    } finally {
      await t.close();
      stopEmbeddedCluster(cluster);
      const state = existsSync(path.join(home, 'cluster.json')) ? JSON.parse(readFileSync(path.join(home, 'cluster.json'), 'utf8')) : null;
      if (state?.dataDir && !state.dataDir.startsWith(home)) rmSync(path.dirname(state.dataDir), { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  }, 120_000);
});
