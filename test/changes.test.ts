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
import { bykindStyle, createSquaresGrid, GRID, squareBox, tileOf } from './helpers/squares-grid.js';
import { waitFor } from './helpers/wait.js';

const S = 'changes_t';
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
      styles: { bykind: bykindStyle() },
    },
  ],
};

let t: TestApp;
let db: pg.Client;

beforeAll(async () => {
  db = new pg.Client({ connectionString: testDatabaseUrl() });
  await db.connect();
  await db.query(`DROP SCHEMA IF EXISTS ${S} CASCADE; DROP SCHEMA IF EXISTS ${S}_ov CASCADE`);
  await createSquaresGrid(db, S);
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
    const sq = squareBox(2, 3);
    const { x, y } = tileOf(sq.minx + GRID.SIZE / 2, sq.miny + GRID.SIZE / 2);
    const url = `/tiles/chsquares/${GRID.Z}/${x}/${y}.png?style=bykind`;
    expect((await t.app.inject({ url })).statusCode).toBe(200);
    expect((await t.app.inject({ url })).headers['x-cache']).toBe('HIT');
    expect((await t.app.inject({ url: '/catalog/records/changes-test-squares' })).statusCode).toBe(200);
    const syncs = runtime.catalog.stats.syncs;

    const delivered = runtime.changes.stats.delivered;
    const tileChanges = runtime.tiles.stats.changes;
    const refreshes = runtime.overviews.stats.refreshes;
    const catalogEdits = runtime.catalog.stats.edits;
    await db.query(`UPDATE ${S}.squares SET kind = 'small' WHERE id = $1`, [2 * GRID.N + 3 + 1]);
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
