import { describe, it, expect } from 'vitest';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureEmbeddedCluster, stopEmbeddedCluster, postgisInstalled, INSTALL_COMMAND } from '../src/db/embedded.js';

const external = Boolean(process.env.GEODATA_TEST_EXTERNAL_DB);

describe('embedded PostGIS provisioning', () => {
  it.skipIf(external || !postgisInstalled())(
    'creates a cluster, reuses it, restarts it after a stop, on loopback with a password',
    async () => {
      const home = mkdtempSync(path.join(os.tmpdir(), 'geodata-home-'));
      const env = { ...process.env, GEODATA_HOME: home };
      const logs: string[] = [];
      try {
        const a = await ensureEmbeddedCluster((m) => logs.push(m), env);
        expect(a.startedHere).toBe(true);
        // mkdtemp made home 0700: as root, the postgres user cannot reach it, so the cluster's files
        // go to /var/lib/geodata-server/<hash>; otherwise they are in home/pg
        if (process.getuid?.() === 0) expect(a.dataDir.startsWith('/var/lib/geodata-server/')).toBe(true);
        else expect(a.dataDir).toBe(path.join(home, 'pg'));
        expect(existsSync(path.join(a.dataDir, 'PG_VERSION'))).toBe(true);
        expect(logs.some((l) => l.includes('initialising'))).toBe(true);
        const conf = readFileSync(path.join(a.dataDir, 'postgresql.conf'), 'utf8');
        expect(conf).toContain("listen_addresses = '127.0.0.1'");
        const c = new pg.Client({ connectionString: a.url });
        await c.connect();
        const v = await c.query('SELECT postgis_lib_version() AS v, current_user AS u, inet_server_addr()::text AS addr');
        expect(v.rows[0].v).toMatch(/^3\./);
        expect(v.rows[0].u).toBe('geodata');
        expect(v.rows[0].addr).toMatch(/^127\.0\.0\.1/);
        await c.end();
        // a wrong password is refused (scram auth, not trust)
        const bad = new pg.Client({ connectionString: a.url.replace(encodeURIComponent(a.password), 'wrong') });
        await expect(bad.connect()).rejects.toThrow(/password/);

        // second call: same cluster, nothing re-initialised
        logs.length = 0;
        const b = await ensureEmbeddedCluster((m) => logs.push(m), env);
        expect(b.startedHere).toBe(false);
        expect(b.port).toBe(a.port);
        expect(b.password).toBe(a.password);
        expect(logs.some((l) => l.includes('initialising'))).toBe(false);

        // after a stop, the next call restarts the same cluster with the same credentials
        stopEmbeddedCluster(b);
        const c2 = await ensureEmbeddedCluster(() => {}, env);
        expect(c2.startedHere).toBe(true);
        expect(c2.password).toBe(a.password);
        const again = new pg.Client({ connectionString: c2.url });
        await again.connect();
        await again.end();
        stopEmbeddedCluster(c2);
      } finally {
        const state = existsSync(path.join(home, 'cluster.json'))
          ? JSON.parse(readFileSync(path.join(home, 'cluster.json'), 'utf8'))
          : null;
        if (state?.dataDir) {
          try {
            stopEmbeddedCluster({ dataDir: state.dataDir });
          } catch {
            /* already stopped */
          }
          rmSync(path.dirname(state.dataDir), { recursive: true, force: true });
        }
        rmSync(home, { recursive: true, force: true });
      }
    },
    180_000,
  );

  it('tells a non-root user the exact install command', () => {
    expect(INSTALL_COMMAND).toBe('apt-get update && apt-get install -y postgresql-15 postgresql-15-postgis-3');
  });
});
