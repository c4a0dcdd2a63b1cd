/**
 * One change feed (src/changes/) for the whole application: an edit of a published table is read
 * from the change log once and delivered to every subscriber — the tile cache (the tile over it is
 * deleted), the overviews (refreshed cell by cell) and the catalogue (records derived again) — over
 * the one LISTEN connection of the application.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { transformPoint } from '../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../src/tiles/matrixsets.js';

const S = 'changes_t';
const X0 = 850000;
const Y0 = 6850000;
const STEP = 5000;
const SIZE = 300;
const Z = 12;
const dir = mkdtempSync(path.join(os.tmpdir(), 'changes-'));
const config = {
  database: { schemas: [S] },
  tiles: { diskDir: dir },
  overviews: { schema: `${S}_ov`, baseCell: 256, levels: 2, rebuildDelayMs: 100, minRebuildIntervalMs: 0, checkIntervalMs: 60_000 },
  layers: [
    {
      table: `${S}.squares`,
      name: 'chsquares',
      overview: true,
      metadata: { identifier: 'changes-test-squares' },
      styles: {
        bykind: {
          title: 'By kind',
          rules: [
            { title: 'Big', filter: "kind = 'big'", polygon: { fill: '#ff0000' } },
            { title: 'Other', else: true, polygon: { fill: '#0000ff' } },
          ],
        },
      },
    },
  ],
};

let t: TestApp;
let db: pg.Client;

const tileOf = (lx: number, ly: number) => {
  const [mx, my] = transformPoint(lx, ly, 2154, 3857);
  const span = W.matrices[Z].resolution * 256;
  return { x: Math.floor((mx - W.origin[0]) / span), y: Math.floor((W.origin[1] - my) / span) };
};

async function waitFor(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const until = Date.now() + 20_000;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

beforeAll(async () => {
  db = new pg.Client({ connectionString: testDatabaseUrl() });
  await db.connect();
  const rows: string[] = [];
  let id = 1;
  for (let i = 0; i < 6; i++)
    for (let j = 0; j < 6; j++) {
      const [x, y] = [X0 + i * STEP, Y0 + j * STEP];
      rows.push(`(${id++}, 'big', ST_MakeEnvelope(${x}, ${y}, ${x + SIZE}, ${y + SIZE}, 2154))`);
    }
  await db.query(`DROP SCHEMA IF EXISTS ${S} CASCADE; DROP SCHEMA IF EXISTS ${S}_ov CASCADE; CREATE SCHEMA ${S};
    CREATE TABLE ${S}.squares (id int PRIMARY KEY, kind text, geom geometry(Polygon, 2154));
    INSERT INTO ${S}.squares VALUES ${rows.join(',')};
    CREATE INDEX ON ${S}.squares USING gist (geom);
    ANALYZE ${S}.squares;`);
  t = await makeTestApp(config);
}, 60_000);

afterAll(async () => {
  await t?.close();
  await db?.query(`DROP SCHEMA IF EXISTS ${S} CASCADE; DROP SCHEMA IF EXISTS ${S}_ov CASCADE`).catch(() => undefined);
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('the change feed', () => {
  it('delivers one edit once to the tiles, the overviews and the catalogue', async () => {
    const { runtime } = t.ctx;
    // the overviews start the feed (triggers, LISTEN) and build in the background
    await runtime.overviews.idle();
    expect(runtime.overviews.status().map((s) => [s.layer, s.status])).toEqual([['chsquares', 'ready']]);
    expect(runtime.changes.connected).toBe(true);
    expect([...runtime.changes.tracked]).toEqual([`${S}.squares`]);
    // a cached tile over square (2,3), and the catalogue's records
    const cx = X0 + 2 * STEP + SIZE / 2;
    const cy = Y0 + 3 * STEP + SIZE / 2;
    const { x, y } = tileOf(cx, cy);
    const url = `/tiles/chsquares/${Z}/${x}/${y}.png?style=bykind`;
    expect((await t.app.inject({ url })).statusCode).toBe(200);
    expect((await t.app.inject({ url })).headers['x-cache']).toBe('HIT');
    expect((await t.app.inject({ url: '/catalog/records/changes-test-squares' })).statusCode).toBe(200);
    const syncs = runtime.catalog.stats.syncs;

    const delivered = runtime.changes.stats.delivered;
    const tileChanges = runtime.tiles.stats.changes;
    const refreshes = runtime.overviews.stats.refreshes;
    const catalogEdits = runtime.catalog.stats.edits;
    await db.query(`UPDATE ${S}.squares SET kind = 'small' WHERE id = $1`, [2 * 6 + 3 + 1]);
    await waitFor(() => runtime.changes.stats.delivered > delivered, 'the change');
    await runtime.changes.idle();

    // read once from the log, delivered once to each subscriber
    expect(runtime.changes.stats.delivered).toBe(delivered + 1);
    expect(runtime.tiles.stats.changes).toBe(tileChanges + 1);
    const edit = (await db.query(`SELECT max(id) AS id FROM geodata_tiles.changes WHERE table_name = $1`, [`${S}.squares`])).rows[0];
    expect(Number(edit.id)).toBeGreaterThan(0);
    // tiles: the tile over the edit is gone from the cache
    expect((await t.app.inject({ url })).headers['x-cache']).toBe('MISS');
    // overviews: the edit is pending, then applied cell by cell
    await waitFor(() => runtime.overviews.stats.refreshes > refreshes, 'the overview refresh');
    const st = runtime.overviews.status()[0];
    expect(st.status).toBe('ready');
    expect(st.lastRefresh?.changes).toBe(1);
    // catalogue: the first edit of the day makes the next catalogue request derive the records again,
    // with the day of the edit (from the change log) as the dataset's modification date
    expect(runtime.catalog.stats.edits).toBe(catalogEdits + 1);
    expect((await t.app.inject({ url: '/catalog/records/changes-test-squares' })).statusCode).toBe(200);
    expect(runtime.catalog.stats.syncs).toBe(syncs + 1);
    const today = new Date().toISOString().slice(0, 10);
    const rec = (await t.app.inject({ url: '/catalog/records/changes-test-squares' })).json();
    expect(String(rec.modified).slice(0, 10)).toBe(today);
  }, 60_000);

  it('after its connection is lost, the feed reconnects: the tile versions are bumped, the overviews stay ready', async () => {
    const { runtime } = t.ctx;
    const layer = t.ctx.registry.resolve('chsquares')!;
    const version = runtime.tiles.versionOf(layer);
    runtime.changes.simulateConnectionLoss();
    await waitFor(() => runtime.tiles.versionOf(layer) > version && runtime.changes.connected, 'the reconnection');
    await runtime.changes.idle();
    // the reconnect bump is logged as a change but is not an edit: the overview stays ready
    expect(runtime.overviews.status()[0].status).toBe('ready');
  }, 60_000);
});
