/**
 * Read replicas with real streaming replication: a hot standby of the test cluster is made with
 * pg_basebackup (provisionReplica, as `cli replica` does) in a temporary folder on a free port.
 * Reads go to it; a replica whose replay is paused does not serve a tile invalidated by an edit it
 * has not replayed; a replica stopped under load sends the reads to the primary with no error
 * beyond the requests in flight, and comes back once it is started again.
 * Skipped when the test database is not the embedded cluster (TEST_DATABASE_URL elsewhere).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { BYKIND_STYLE, createSquares, waitUntil } from './helpers/squares.js';
import { geodataHome, PG_BIN, provisionReplica, stopEmbeddedCluster, type EmbeddedReplica } from '../src/db/embedded.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../src/tiles/matrixsets.js';
import { spawnSync } from 'node:child_process';

const primaryUrl = new URL(testDatabaseUrl());
const clusterFile = path.join(geodataHome(), 'cluster.json');
const embedded =
  existsSync(clusterFile) &&
  existsSync(path.join(PG_BIN, 'pg_basebackup')) &&
  Number(JSON.parse(readFileSync(clusterFile, 'utf8')).port) === Number(primaryUrl.port);

// a few squares in Lambert-93, red when kind = 'big', blue otherwise
const X0 = 870000;
const Y0 = 6870000;
const Z = 12;
const config = (replicaUrl: string) => ({
  database: { schemas: ['replicas_t'], replicas: [replicaUrl], replicaCheckMs: 200 },
  tiles: { diskDir: null, metatile: 1, buffer: 0 },
  layers: [
    {
      table: 'replicas_t.squares',
      name: 'rsquares',
      styles: {
        bykind: BYKIND_STYLE,
      },
    },
  ],
});

function tileOf(lx: number, ly: number) {
  const [mx, my] = transformPoint(lx, ly, 2154, 3857);
  const span = W.matrices[Z].resolution * 256;
  const x = Math.floor((mx - W.origin[0]) / span);
  const y = Math.floor((W.origin[1] - my) / span);
  const px = Math.floor(((mx - W.origin[0]) / span - x) * 256);
  const py = Math.floor(((W.origin[1] - my) / span - y) * 256);
  return { x, y, px, py };
}

async function pixel(png: Buffer, px: number, py: number): Promise<number[]> {
  const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (py * 256 + px) * 4;
  return [data[i], data[i + 1], data[i + 2], data[i + 3]];
}

describe.skipIf(!embedded)('read replicas (real streaming replication)', () => {
  let tmp: string;
  let replica: EmbeddedReplica;
  let t: TestApp;
  let primary: pg.Client;
  let standby: pg.Client;

  const metric = async (name: string, labels: string) => {
    const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
    return line ? Number(line.split(' ').pop()) : 0;
  };

  const scansOnReplica = async () =>
    Number(
      (
        await standby.query(
          `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0) AS n FROM pg_stat_user_tables WHERE schemaname = 'replicas_t' AND relname = 'squares'`,
        )
      ).rows[0]?.n ?? 0,
    );

  beforeAll(async () => {
    primary = new pg.Client({ connectionString: testDatabaseUrl() });
    await primary.connect();
    await createSquares(
      primary,
      'replicas_t',
      [0, 1, 2, 3].map((i) => ({ minx: X0 + i * 4000, miny: Y0, maxx: X0 + i * 4000 + 2000, maxy: Y0 + 2000 })),
    );
    tmp = mkdtempSync(path.join(os.tmpdir(), 'geodata-replica-'));
    chmodSync(tmp, 0o755);
    replica = await provisionReplica(
      {
        port: Number(primaryUrl.port),
        user: decodeURIComponent(primaryUrl.username),
        password: decodeURIComponent(primaryUrl.password),
        database: primaryUrl.pathname.slice(1),
        url: testDatabaseUrl(),
      },
      path.join(tmp, 'pg'),
    );
    standby = new pg.Client({ connectionString: replica.url });
    // the last test stops the replica under this session
    standby.on('error', () => undefined);
    await standby.connect();
    expect((await standby.query('SELECT pg_is_in_recovery() AS r')).rows[0].r).toBe(true);
    // the table (and its change triggers, installed by the app) reach the replica
    await waitUntil(
      async () => (await standby.query(`SELECT to_regclass('replicas_t.squares') IS NOT NULL AS ok`)).rows[0].ok === true,
      'the table on the replica',
    );
    t = await makeTestApp(config(replica.url));
    await t.ctx.runtime.tiles.ready();
  }, 180_000);

  afterAll(async () => {
    await t?.close();
    await standby?.end().catch(() => undefined);
    if (replica) stopEmbeddedCluster(replica);
    if (tmp) rmSync(tmp, { recursive: true, force: true });
    await primary?.query('DROP SCHEMA IF EXISTS replicas_t CASCADE').catch(() => undefined);
    await primary?.end();
  });

  it('renders, tiles and feature pages read from the replica', async () => {
    const router = t.ctx.runtime.reads;
    await waitUntil(() => router.status()[0].up && router.status()[0].replayed !== '0/0', 'the first replica check');
    const before = router.stats.replica;
    const scans = await scansOnReplica();
    const { x, y, px, py } = tileOf(X0 + 1000, Y0 + 1000);
    const tile = await t.app.inject({ method: 'GET', url: `/tiles/rsquares/${Z}/${x}/${y}.png?style=bykind` });
    expect(tile.statusCode).toBe(200);
    expect(await pixel(tile.rawPayload, px, py)).toEqual([255, 0, 0, 255]);
    const mvt = await t.app.inject({ method: 'GET', url: `/tiles/rsquares/${Z}/${x}/${y}.mvt` });
    expect(mvt.statusCode).toBe(200);
    expect(mvt.rawPayload.length).toBeGreaterThan(0);
    const map = await t.app.inject({
      method: 'GET',
      url: `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=rsquares&STYLES=bykind&CRS=EPSG:2154&BBOX=${X0},${Y0},${X0 + 2000},${Y0 + 2000}&WIDTH=64&HEIGHT=64&FORMAT=image/png`,
    });
    expect(map.statusCode).toBe(200);
    expect(
      await sharp(map.rawPayload)
        .raw()
        .toBuffer()
        .then((b) => [b[0], b[1], b[2]]),
    ).toEqual([255, 0, 0]);
    const items = await t.app.inject({ method: 'GET', url: '/collections/rsquares/items?limit=2' });
    expect(items.statusCode).toBe(200);
    expect(items.json().features).toHaveLength(2);
    const wfs = await t.app.inject({
      method: 'GET',
      url: '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=rsquares&OUTPUTFORMAT=application/json&COUNT=10',
    });
    expect(wfs.statusCode).toBe(200);
    expect(wfs.json().features).toHaveLength(4);
    // five reads (tile, vector tile, map, items page with its count, WFS page) on the replica
    expect(router.stats.replica - before).toBeGreaterThanOrEqual(5);
    expect(await metric('geodata_db_reads_total', 'pool="replica"')).toBeGreaterThanOrEqual(5);
    // seen from the replica itself: its own statistics count the scans of the layer's table
    await waitUntil(async () => (await scansOnReplica()) > scans, "the scans in the replica's statistics");
    expect(await metric('geodata_db_replica_up', `replica="127.0.0.1:${replica.port}"`)).toBe(1);
    const text = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/geodata_db_replica_lag_bytes\{replica="127\.0\.0\.1:\d+"\} \d+/);
    expect(text).toMatch(/geodata_db_replica_lag_seconds\{replica="127\.0\.0\.1:\d+"\} [\d.e-]+/);
  });

  it('a replica whose replay is paused does not serve an invalidated tile from its old data', async () => {
    const router = t.ctx.runtime.reads;
    const engine = t.ctx.runtime.tiles;
    const { x, y, px, py } = tileOf(X0 + 4000 + 1000, Y0 + 1000);
    const url = `/tiles/rsquares/${Z}/${x}/${y}.png?style=bykind`;
    const first = await t.app.inject({ method: 'GET', url });
    expect(await pixel(first.rawPayload, px, py)).toEqual([255, 0, 0, 255]);
    expect((await t.app.inject({ method: 'GET', url })).headers['x-cache']).toMatch(/HIT/i);
    await standby.query('SELECT pg_wal_replay_pause()');
    try {
      await waitUntil(
        async () => (await standby.query('SELECT pg_get_wal_replay_pause_state() AS s')).rows[0].s === 'paused',
        'replay paused',
      );
      const delivered = t.ctx.runtime.changes.stats.delivered;
      await primary.query(`UPDATE replicas_t.squares SET kind = 'small' WHERE id = 2`);
      await waitUntil(() => t.ctx.runtime.changes.stats.delivered > delivered, 'the change feed to deliver the edit');
      await engine.freshness.idle();
      // the replica still has the old row: a render there would be red
      expect((await standby.query('SELECT kind FROM replicas_t.squares WHERE id = 2')).rows[0].kind).toBe('big');
      const primaryReads = router.stats.primary;
      const fallbacks = await metric('geodata_db_replica_fallbacks_total', 'reason="lag"');
      const again = await t.app.inject({ method: 'GET', url });
      expect(again.statusCode).toBe(200);
      expect(again.headers['x-cache']).not.toMatch(/HIT/i);
      expect(await pixel(again.rawPayload, px, py)).toEqual([0, 0, 255, 255]);
      expect(router.stats.primary).toBeGreaterThan(primaryReads);
      expect(await metric('geodata_db_replica_fallbacks_total', 'reason="lag"')).toBeGreaterThan(fallbacks);
      // the feature pages of that table read the primary too
      const page = await t.app.inject({ method: 'GET', url: '/collections/rsquares/items/2' });
      expect(page.json().properties.kind).toBe('small');
    } finally {
      await standby.query('SELECT pg_wal_replay_resume()');
    }
    // once the replica has replayed the edit it serves the table again
    await waitUntil(
      async () => (await standby.query('SELECT kind FROM replicas_t.squares WHERE id = 2')).rows[0].kind === 'small',
      'replay',
    );
    const onReplica = router.stats.replica;
    await waitUntil(async () => {
      await t.app.inject({ method: 'GET', url: '/collections/rsquares/items/3' });
      return router.stats.replica > onReplica;
    }, 'a read on the replica after it caught up');
  });

  it('a replica stopped under load: reads move to the primary, no error beyond the requests in flight; it comes back when started', async () => {
    const router = t.ctx.runtime.reads;
    const statuses: number[] = [];
    let stop = false;
    const CONCURRENCY = 4;
    let n = 0;
    const worker = async () => {
      while (!stop) {
        const i = n++;
        // uncached reads: maps at varying sizes, and feature pages
        const res =
          i % 2
            ? await t.app.inject({
                method: 'GET',
                url: `/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=rsquares&STYLES=bykind&CRS=EPSG:2154&BBOX=${X0},${Y0},${X0 + 16000},${Y0 + 2000}&WIDTH=${200 + (i % 50)}&HEIGHT=40&FORMAT=image/png`,
              })
            : await t.app.inject({ method: 'GET', url: `/collections/rsquares/items?limit=3&offset=${i % 2}` });
        statuses.push(res.statusCode);
      }
    };
    const load = Array.from({ length: CONCURRENCY }, worker);
    await waitUntil(() => statuses.length >= 20, 'load on the replica');
    expect(router.stats.replica).toBeGreaterThan(0);
    const before = statuses.length;
    stopEmbeddedCluster(replica);
    await waitUntil(() => !router.status()[0].up, 'the replica taken out');
    const primaryReads = router.stats.primary;
    await waitUntil(() => statuses.length >= before + 40 && router.stats.primary > primaryReads + 20, 'load on the primary');
    stop = true;
    await Promise.all(load);
    const failed = statuses.filter((s) => s !== 200);
    // at most the requests in flight when the replica went down, and never a 500
    expect(failed.length).toBeLessThanOrEqual(CONCURRENCY);
    for (const s of failed) expect(s).toBe(503);
    expect(await metric('geodata_db_replica_up', 'replica=')).toBe(0);
    // started again: it is retried with backoff and serves reads once more
    const logFile = `${replica.dataDir}.log`;
    const exe = path.join(PG_BIN, 'pg_ctl');
    const args = ['start', '-w', '-t', '60', '-D', replica.dataDir, '-l', logFile, '-o', `-p ${replica.port}`];
    const r = process.getuid?.() === 0 ? spawnSync('runuser', ['-u', 'postgres', '--', exe, ...args], { cwd: '/' }) : spawnSync(exe, args);
    expect(r.status).toBe(0);
    await waitUntil(() => router.status()[0].up, 'the replica back', 40_000);
    const onReplica = router.stats.replica;
    await waitUntil(async () => {
      await t.app.inject({ method: 'GET', url: '/collections/rsquares/items/1' });
      return router.stats.replica > onReplica;
    }, 'reads on the replica again');
  }, 120_000);
});
