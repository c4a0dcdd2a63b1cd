/**
 * The server through a real PgBouncer in transaction mode (database.transactionPooling), with
 * fewer server connections than the server's pool has clients, so transactions of different
 * clients share server connections: maps with configured styles (no named prepared statements),
 * feature pages and streams (cursors inside a transaction), a download, vector tiles, and tile
 * freshness after an edit (LISTEN on database.directUrl, which bypasses PgBouncer).
 * pgbouncer (Debian) is installed when missing and the test runs as root; otherwise it skips visibly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { BYKIND_STYLE, createSquares, waitPort, waitUntil } from './helpers/squares.js';
import { checkDatabase, ConfigError, validateConfig } from '../src/config/index.js';
import { freePort } from '../src/db/embedded.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../src/tiles/matrixsets.js';

function findPgbouncer(): string | null {
  const bin = '/usr/sbin/pgbouncer';
  if (existsSync(bin)) return bin;
  if (process.getuid?.() === 0) {
    spawnSync('apt-get', ['install', '-y', '-q', 'pgbouncer'], { stdio: 'ignore', timeout: 240_000 });
    if (existsSync(bin)) return bin;
  }
  return null;
}

const bouncerBin = findPgbouncer();
if (!bouncerBin) console.warn('PgBouncer test skipped: pgbouncer is not installed and cannot be installed (not root)');

it('database.transactionPooling without database.directUrl is a configuration error', () => {
  const cfg = validateConfig({ database: { url: 'postgres://u:p@h:6432/d', transactionPooling: true } }, 'test');
  expect(() => checkDatabase(cfg)).toThrow(ConfigError);
  expect(() => checkDatabase(cfg)).toThrow(/directUrl/);
  cfg.database.directUrl = 'postgres://u:p@h:5432/d';
  expect(() => checkDatabase(cfg)).not.toThrow();
});

describe.skipIf(!bouncerBin)('through PgBouncer in transaction mode', () => {
  const X0 = 880000;
  const Y0 = 6880000;
  const Z = 12;
  let bouncer: ChildProcess;
  let dir: string;
  let port: number;
  let t: TestApp;
  let primary: pg.Client;
  const db = new URL(testDatabaseUrl());
  const user = decodeURIComponent(db.username);
  const password = decodeURIComponent(db.password);
  const bouncerUrl = () => `postgres://${db.username}:${db.password}@127.0.0.1:${port}${db.pathname}`;

  const adminStats = async () => {
    const c = new pg.Client({ connectionString: `postgres://${db.username}:${db.password}@127.0.0.1:${port}/pgbouncer` });
    await c.connect();
    try {
      const r = await c.query('SHOW STATS');
      const row = r.rows.find((x) => x.database === db.pathname.slice(1));
      return { xacts: Number(row?.total_xact_count ?? 0) };
    } finally {
      await c.end();
    }
  };

  beforeAll(async () => {
    primary = new pg.Client({ connectionString: testDatabaseUrl() });
    await primary.connect();
    const boxes = Array.from({ length: 30 }, (_, i) => {
      const x = X0 + (i % 6) * 3000;
      const y = Y0 + Math.floor(i / 6) * 3000;
      return { minx: x, miny: y, maxx: x + 1500, maxy: y + 1500 };
    });
    await createSquares(primary, 'bouncer_t', boxes);
    dir = mkdtempSync(path.join(os.tmpdir(), 'geodata-pgbouncer-'));
    port = await freePort();
    writeFileSync(path.join(dir, 'userlist.txt'), `"${user}" "${password}"\n`, { mode: 0o600 });
    writeFileSync(
      path.join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `* = host=127.0.0.1 port=${db.port}`,
        '[pgbouncer]',
        'listen_addr = 127.0.0.1',
        `listen_port = ${port}`,
        'unix_socket_dir =',
        'auth_type = scram-sha-256',
        `auth_file = ${path.join(dir, 'userlist.txt')}`,
        'pool_mode = transaction',
        // fewer server connections than the server's pool (5): transactions share them
        'default_pool_size = 2',
        'max_client_conn = 100',
        `admin_users = ${user}`,
        `logfile = ${path.join(dir, 'pgbouncer.log')}`,
        `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
        '',
      ].join('\n'),
    );
    const root = process.getuid?.() === 0;
    if (root) {
      // pgbouncer refuses to run as root
      const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
      chmodSync(dir, 0o755);
      for (const f of ['', 'userlist.txt', 'pgbouncer.ini']) chownSync(path.join(dir, f), uid, gid);
    }
    const ini = path.join(dir, 'pgbouncer.ini');
    bouncer = root
      ? spawn('runuser', ['-u', 'postgres', '--', bouncerBin!, ini], { stdio: 'ignore' })
      : spawn(bouncerBin!, [ini], { stdio: 'ignore' });
    await waitPort(port, 'pgbouncer');
    t = await makeTestApp({
      database: { url: bouncerUrl(), directUrl: testDatabaseUrl(), transactionPooling: true, schemas: ['bouncer_t'] },
      tiles: { diskDir: null, metatile: 1, buffer: 0 },
      // this test is about sharing server connections, not overload: every request waits for its slot
      limits: { maxQueueWaitMs: 60_000, exportQueue: 500, renderQueue: 500, orderedQueuePerSlot: 500 },
      layers: [
        {
          table: 'bouncer_t.squares',
          name: 'bsquares',
          styles: {
            bykind: BYKIND_STYLE,
          },
        },
      ],
    });
    await t.ctx.runtime.tiles.ready();
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    bouncer?.kill('SIGTERM');
    // runuser forwards the signal; make sure the daemon is gone
    const pidFile = dir && path.join(dir, 'pgbouncer.pid');
    if (pidFile && existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8').trim()), 'SIGTERM');
      } catch {
        /* gone already */
      }
    }
    await primary?.query('DROP SCHEMA IF EXISTS bouncer_t CASCADE').catch(() => undefined);
    await primary?.end();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('maps, feature pages, streams, downloads and vector tiles under concurrency, all through PgBouncer', async () => {
    const before = await adminStats();
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 24; i++) {
      const x = X0 + (i % 6) * 3000;
      jobs.push(
        (async () => {
          // a configured style: its queries would be named prepared statements without transactionPooling
          const map = await t.app.inject({
            method: 'GET',
            url: `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=bsquares&STYLES=bykind&CRS=EPSG:2154&BBOX=${x},${Y0},${x + 1500},${Y0 + 1500}&WIDTH=${32 + i}&HEIGHT=32&FORMAT=image/png`,
          });
          expect(map.statusCode, map.body).toBe(200);
          const px = await sharp(map.rawPayload).raw().toBuffer();
          expect([px[0], px[1], px[2]]).toEqual([255, 0, 0]);
        })(),
        (async () => {
          const page = await t.app.inject({ method: 'GET', url: `/collections/bsquares/items?limit=5&offset=${i}` });
          expect(page.statusCode, page.body).toBe(200);
          expect(page.json().numberMatched).toBe(30);
          expect(page.json().features).toHaveLength(Math.min(5, 30 - i));
        })(),
        (async () => {
          const wfs = await t.app.inject({
            method: 'GET',
            url: `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=bsquares&COUNT=7&STARTINDEX=${i}&OUTPUTFORMAT=application/json`,
          });
          expect(wfs.statusCode, wfs.body).toBe(200);
          expect(wfs.json().features.length).toBe(Math.min(7, 30 - i));
        })(),
      );
    }
    jobs.push(
      (async () => {
        // a file format GDAL writes: its direct read from PostGIS would need startup options PgBouncer refuses
        const gpkg = await t.app.inject({ method: 'GET', url: '/downloads/bsquares.gpkg' });
        expect(gpkg.statusCode, gpkg.body).toBe(200);
        expect(gpkg.rawPayload.subarray(0, 15).toString()).toBe('SQLite format 3');
      })(),
      (async () => {
        const csv = await t.app.inject({ method: 'GET', url: '/downloads/bsquares.csv' });
        expect(csv.statusCode, csv.body).toBe(200);
        expect(csv.body.trim().split('\n')).toHaveLength(31);
      })(),
      (async () => {
        const [mx, my] = transformPoint(X0 + 700, Y0 + 700, 2154, 3857);
        const span = W.matrices[Z].resolution * 256;
        const x = Math.floor((mx - W.origin[0]) / span);
        const y = Math.floor((W.origin[1] - my) / span);
        const mvt = await t.app.inject({ method: 'GET', url: `/tiles/bsquares/${Z}/${x}/${y}.mvt` });
        expect(mvt.statusCode, mvt.body).toBe(200);
        expect(mvt.rawPayload.length).toBeGreaterThan(0);
      })(),
    );
    await Promise.all(jobs);
    // every transaction went through PgBouncer
    await waitUntil(async () => (await adminStats()).xacts > before.xacts + 70, "PgBouncer's transaction count");
  });

  it('an edit reaches the tile cache: the change feed listens on the direct URL', async () => {
    const [mx, my] = transformPoint(X0 + 3000 + 700, Y0 + 700, 2154, 3857);
    const span = W.matrices[Z].resolution * 256;
    const x = Math.floor((mx - W.origin[0]) / span);
    const y = Math.floor((W.origin[1] - my) / span);
    const px = Math.floor(((mx - W.origin[0]) / span - x) * 256);
    const py = Math.floor(((W.origin[1] - my) / span - y) * 256);
    const url = `/tiles/bsquares/${Z}/${x}/${y}.png?style=bykind`;
    const pixel = async () => {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(200);
      const { data } = await sharp(res.rawPayload).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      const i = (py * 256 + px) * 4;
      return [data[i], data[i + 1], data[i + 2]];
    };
    expect(await pixel()).toEqual([255, 0, 0]);
    // the LISTEN session is on the primary itself, not on PgBouncer
    const listen = await primary.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'geodata-changes-listen'`);
    expect(listen.rows[0].n).toBeGreaterThan(0);
    await primary.query(`UPDATE bouncer_t.squares SET kind = 'small' WHERE id = 2`);
    await waitUntil(async () => (await pixel())[2] === 255, 'the edited tile');
    expect(await pixel()).toEqual([0, 0, 255]);
  });
});
