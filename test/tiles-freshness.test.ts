/**
 * Freshness through the real path: statement triggers on a table created for this test →
 * geodata_tiles.changes + NOTIFY → the LISTEN connection → bbox invalidation in every tier
 * (exactly the tiles over the edit), version bumps for bulk edits and after a lost connection.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import pg from 'pg';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeTestApp, testDatabaseUrl, type TestApp } from './helpers/app.js';
import { transformExtent, transformPoint } from '../src/crs/index.js';
import type { TileEngine } from '../src/tiles/engine.js';
import { WEB_MERCATOR_QUAD as W, tileExtent, tileRange } from '../src/tiles/matrixsets.js';
import type { Layer } from '../src/registry/types.js';
import { bykindStyle, createSquaresGrid, GRID, squareBox, tileOf } from './helpers/squares-grid.js';
import { waitFor as waitUntil } from './helpers/wait.js';

const { X0, Y0, STEP, SIZE, Z } = GRID;
const dir = mkdtempSync(path.join(os.tmpdir(), 'tiles-fresh-'));
const config = {
  database: { schemas: ['tilesfresh'] },
  tiles: { diskDir: dir, metatile: 2, buffer: 16, bulkRows: 5 },
  layers: [
    {
      table: 'tilesfresh.squares',
      name: 'fsquares',
      styles: { bykind: bykindStyle() },
    },
  ],
};

let t: TestApp;
let db: pg.Client;
let engine: TileEngine;
let layer: Layer;

/** Wait for the change notification's effect, then for the freshness work it started. */
async function waitFor(cond: () => boolean, what: string): Promise<void> {
  await waitUntil(cond, what, { timeoutMs: 15_000 });
  await engine.freshness.idle();
}

function allTiles(): { x: number; y: number }[] {
  const e = transformExtent({ minx: X0, miny: Y0, maxx: X0 + 5 * STEP + SIZE, maxy: Y0 + 5 * STEP + SIZE }, 2154, 3857);
  const r = tileRange(W, Z, e)!;
  const out: { x: number; y: number }[] = [];
  for (let x = r.minCol; x <= r.maxCol; x++) for (let y = r.minRow; y <= r.maxRow; y++) out.push({ x, y });
  return out;
}

/** Tiles a box (Lambert-93) can touch with a 128-pixel margin (symbols, labels, metatile buffer). */
function affected(box: { minx: number; miny: number; maxx: number; maxy: number }, x: number, y: number): boolean {
  const e = transformExtent(box, 2154, 3857);
  const pad = 128 * W.matrices[Z].resolution;
  const te = tileExtent(W, Z, x, y);
  return te.minx < e.maxx + pad && te.maxx > e.minx - pad && te.miny < e.maxy + pad && te.maxy > e.miny - pad;
}

async function pixelAt(png: Buffer, x: number, y: number, lx: number, ly: number): Promise<number[]> {
  const [mx, my] = transformPoint(lx, ly, 2154, 3857);
  const te = tileExtent(W, Z, x, y);
  const px = Math.floor(((mx - te.minx) / (te.maxx - te.minx)) * 256);
  const py = Math.floor(((te.maxy - my) / (te.maxy - te.miny)) * 256);
  const { data } = await sharp(png).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const i = (py * 256 + px) * 4;
  return [data[i], data[i + 1], data[i + 2], data[i + 3]];
}

const url = (x: number, y: number) => `/tiles/fsquares/${Z}/${x}/${y}.png`;
const key = (x: number, y: number) => engine.key(layer, 'bykind', W, Z, x, y, 'png');

beforeAll(async () => {
  db = new pg.Client({ connectionString: testDatabaseUrl() });
  await db.connect();
  await createSquaresGrid(db, 'tilesfresh');
  t = await makeTestApp(config);
  engine = t.ctx.runtime.tiles;
  layer = t.ctx.registry.resolve('fsquares')!;
  await engine.ready();
}, 60_000);

afterAll(async () => {
  await t?.close();
  await db?.end();
  rmSync(dir, { recursive: true, force: true });
});

describe('freshness through triggers and LISTEN', () => {
  it('installs statement triggers with transition tables on the source table', async () => {
    const r = await db.query(
      `SELECT tgname FROM pg_trigger WHERE tgrelid = 'tilesfresh.squares'::regclass AND NOT tgisinternal ORDER BY 1`,
    );
    expect(r.rows.map((x) => x.tgname)).toEqual(['geodata_tiles_del', 'geodata_tiles_ins', 'geodata_tiles_trunc', 'geodata_tiles_upd']);
    expect(engine.freshness.connected).toBe(true);
  });

  it('editing one row invalidates exactly the tiles over it; the others stay cached', async () => {
    const tiles = allTiles();
    expect(tiles.length).toBeGreaterThan(8);
    for (const { x, y } of tiles) expect((await t.app.inject({ url: url(x, y) })).statusCode).toBe(200);
    for (const { x, y } of tiles) expect(engine.cache.memory!.has(key(x, y))).toBe(true);
    const changes = engine.stats.changes;
    const version = engine.versionOf(layer);
    // square (2,3) becomes 'small': drawn blue
    const id = 2 * 6 + 3 + 1;
    await db.query(`UPDATE tilesfresh.squares SET kind = 'small' WHERE id = $1`, [id]);
    await waitFor(() => engine.stats.changes > changes, 'the change notification');
    expect(engine.versionOf(layer)).toBe(version); // a targeted invalidation, not a version bump
    const box = squareBox(2, 3);
    const hit = tiles.filter(({ x, y }) => affected(box, x, y));
    const kept = tiles.filter(({ x, y }) => !affected(box, x, y));
    expect(hit.length).toBeGreaterThan(0);
    expect(kept.length).toBeGreaterThan(0);
    for (const { x, y } of hit) expect(engine.cache.memory!.has(key(x, y)), `tile ${x},${y} over the edit`).toBe(false);
    for (const { x, y } of kept) expect(engine.cache.memory!.has(key(x, y)), `tile ${x},${y} away from the edit`).toBe(true);
    // not on disk either
    for (const { x, y } of hit) expect(await engine.cache.tiers[1].get(key(x, y))).toBeUndefined();
    // the next request for the tile over the square shows the edit
    const c = tileOf(box.minx + SIZE / 2, box.miny + SIZE / 2);
    const r = await t.app.inject({ url: url(c.x, c.y) });
    expect(r.headers['x-cache']).toBe('MISS');
    expect(await pixelAt(r.rawPayload, c.x, c.y, box.minx + SIZE / 2, box.miny + SIZE / 2)).toEqual([0, 0, 255, 255]);
    const k = kept[0];
    expect((await t.app.inject({ url: url(k.x, k.y) })).headers['x-cache']).toBe('HIT');
  });

  it('moving a geometry invalidates its old and its new place', async () => {
    const from = squareBox(0, 0);
    const to = squareBox(5, 5);
    const a = tileOf(from.minx + 10, from.miny + 10);
    const b = tileOf(to.minx + 2000, to.miny + 2000);
    for (const p of [a, b]) await t.app.inject({ url: url(p.x, p.y) });
    expect(engine.cache.memory!.has(key(a.x, a.y)) && engine.cache.memory!.has(key(b.x, b.y))).toBe(true);
    const changes = engine.stats.changes;
    await db.query(`UPDATE tilesfresh.squares SET geom = ST_Translate(geom, $1::float8, $2::float8) WHERE id = 1`, [
      to.minx - from.minx + 2000,
      to.miny - from.miny + 2000,
    ]);
    await waitFor(() => engine.stats.changes > changes, 'the change notification');
    expect(engine.cache.memory!.has(key(a.x, a.y))).toBe(false);
    expect(engine.cache.memory!.has(key(b.x, b.y))).toBe(false);
    const r = await t.app.inject({ url: url(b.x, b.y) });
    expect(await pixelAt(r.rawPayload, b.x, b.y, to.minx + 2000 + SIZE / 2, to.miny + 2000 + SIZE / 2)).toEqual([255, 0, 0, 255]);
  });

  it('a bulk edit (more rows than bulkRows) and TRUNCATE bump the data version: no old tile is served', async () => {
    const { x, y } = allTiles()[0];
    await t.app.inject({ url: url(x, y) });
    expect((await t.app.inject({ url: url(x, y) })).headers['x-cache']).toBe('HIT');
    const v = engine.versionOf(layer);
    await db.query(`UPDATE tilesfresh.squares SET kind = 'small'`);
    await waitFor(() => engine.versionOf(layer) > v, 'the version bump');
    expect((await t.app.inject({ url: url(x, y) })).headers['x-cache']).toBe('MISS');
    const v2 = engine.versionOf(layer);
    await db.query(
      `CREATE TEMP TABLE keep AS SELECT * FROM tilesfresh.squares; TRUNCATE tilesfresh.squares; INSERT INTO tilesfresh.squares SELECT * FROM keep; DROP TABLE keep`,
    );
    await waitFor(() => engine.versionOf(layer) > v2, 'the TRUNCATE bump');
    const log = await db.query(
      `SELECT op, n_rows, boxes IS NULL AS bulk FROM geodata_tiles.changes WHERE table_name = 'tilesfresh.squares' ORDER BY id DESC LIMIT 2`,
    );
    expect(log.rows.map((r) => [r.op, r.bulk])).toEqual([
      ['INSERT', true],
      ['TRUNCATE', true],
    ]);
  });

  it('after the LISTEN connection is lost, the reconnect bumps the version', async () => {
    await engine.freshness.idle();
    const v = engine.versionOf(layer);
    engine.freshness.simulateConnectionLoss();
    await waitFor(() => engine.versionOf(layer) > v && engine.freshness.connected, 'the reconnect bump');
    const { x, y } = allTiles()[1];
    expect((await t.app.inject({ url: url(x, y) })).statusCode).toBe(200);
    expect((await t.app.inject({ url: url(x, y) })).headers['x-cache']).toBe('HIT');
  });

  it('changes made while the server was down are replayed at start: the disk tier is not stale', async () => {
    const tiles = allTiles();
    for (const { x, y } of tiles) expect((await t.app.inject({ url: url(x, y) })).statusCode).toBe(200);
    await t.close(); // the last applied change id is kept in the disk folder
    const box = squareBox(4, 1);
    await db.query(`UPDATE tilesfresh.squares SET kind = 'big' WHERE id = $1`, [4 * 6 + 1 + 1]);
    t = await makeTestApp(config);
    engine = t.ctx.runtime.tiles;
    layer = t.ctx.registry.resolve('fsquares')!;
    await engine.ready();
    const over = tileOf(box.minx + SIZE / 2, box.miny + SIZE / 2);
    const r = await t.app.inject({ url: url(over.x, over.y) });
    expect(r.headers['x-cache']).toBe('MISS');
    expect(await pixelAt(r.rawPayload, over.x, over.y, box.minx + SIZE / 2, box.miny + SIZE / 2)).toEqual([255, 0, 0, 255]);
    const away = tiles.find(({ x, y }) => !affected(box, x, y))!;
    const a = await t.app.inject({ url: url(away.x, away.y) });
    expect(a.headers['x-cache']).toBe('HIT');
    expect(a.headers['x-cache-tier']).toBe('disk');
  });
});
