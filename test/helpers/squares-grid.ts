/**
 * The grid of squares the change-feed tests edit (test/changes.test.ts, test/tiles-freshness.test.ts):
 * N × N squares of SIZE m, STEP m apart from (X0, Y0) in Lambert-93, all of kind 'big' (ids 1…N²,
 * column by column), drawn by the style fixtures/config/styles/bykind.json (big red, others blue);
 * their tiles are looked at at zoom Z of WebMercatorQuad.
 */
import type pg from 'pg';
import { transformPoint } from '../../src/crs/index.js';
import { WEB_MERCATOR_QUAD as W } from '../../src/tiles/matrixsets.js';
import { fixtureJson } from './fixtures.js';

export const GRID = { X0: 850000, Y0: 6850000, STEP: 5000, SIZE: 300, N: 6, Z: 12 } as const;

/** Square (i, j): column i, row j. */
export function squareBox(i: number, j: number): { minx: number; miny: number; maxx: number; maxy: number } {
  const minx = GRID.X0 + i * GRID.STEP;
  const miny = GRID.Y0 + j * GRID.STEP;
  return { minx, miny, maxx: minx + GRID.SIZE, maxy: miny + GRID.SIZE };
}

/** The WebMercatorQuad tile at zoom Z over a Lambert-93 point. */
export function tileOf(lx: number, ly: number): { x: number; y: number } {
  const [mx, my] = transformPoint(lx, ly, 2154, 3857);
  const span = W.matrices[GRID.Z].resolution * 256;
  return { x: Math.floor((mx - W.origin[0]) / span), y: Math.floor((W.origin[1] - my) / span) };
}

/** The `bykind` style of the squares layers. */
export const bykindStyle = () => fixtureJson('config/styles/bykind.json');

/** (Re)create `schema.squares` (id, kind, geom) holding the grid, indexed and analysed. */
export async function createSquaresGrid(db: pg.Client, schema: string): Promise<void> {
  const rows: string[] = [];
  let id = 1;
  for (let i = 0; i < GRID.N; i++)
    for (let j = 0; j < GRID.N; j++) {
      const b = squareBox(i, j);
      rows.push(`(${id++}, 'big', ST_MakeEnvelope(${b.minx}, ${b.miny}, ${b.maxx}, ${b.maxy}, 2154))`);
    }
  await db.query(`CREATE SCHEMA IF NOT EXISTS ${schema};
    DROP TABLE IF EXISTS ${schema}.squares;
    CREATE TABLE ${schema}.squares (id int PRIMARY KEY, kind text, geom geometry(Polygon, 2154));
    INSERT INTO ${schema}.squares VALUES ${rows.join(',')};
    CREATE INDEX ON ${schema}.squares USING gist (geom);
    ANALYZE ${schema}.squares;`);
}
