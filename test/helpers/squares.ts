/**
 * The squares the freshness, change-feed, replica and PgBouncer tests edit: a table of their own
 * (id, kind, Lambert-93 polygon) and a style that paints kind = 'big' red and the rest blue, so
 * an edit shows in the pixels of a tile.
 */
import net from 'node:net';
import type pg from 'pg';

export const BYKIND_STYLE = {
  title: 'By kind',
  rules: [
    { title: 'Big', filter: "kind = 'big'", polygon: { fill: '#ff0000' } },
    { title: 'Other', else: true, polygon: { fill: '#0000ff' } },
  ],
};

/**
 * (Re)create `schema.squares` (the schema too) holding one 'big' square per box, ids from 1, with
 * its spatial index and statistics. `prelude` runs first in the same batch (dropping more, say).
 */
export async function createSquares(
  db: pg.Client,
  schema: string,
  boxes: { minx: number; miny: number; maxx: number; maxy: number }[],
  prelude = '',
): Promise<void> {
  const rows = boxes.map((b, i) => `(${i + 1}, 'big', ST_MakeEnvelope(${b.minx}, ${b.miny}, ${b.maxx}, ${b.maxy}, 2154))`);
  await db.query(`${prelude}CREATE SCHEMA IF NOT EXISTS ${schema};
    DROP TABLE IF EXISTS ${schema}.squares;
    CREATE TABLE ${schema}.squares (id int PRIMARY KEY, kind text, geom geometry(Polygon, 2154));
    INSERT INTO ${schema}.squares VALUES ${rows.join(',')};
    CREATE INDEX ON ${schema}.squares USING gist (geom);
    ANALYZE ${schema}.squares;`);
}

/** Poll until `cond` holds, or fail naming what was awaited. */
export async function waitUntil(cond: () => Promise<boolean> | boolean, what: string, ms = 20_000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Wait until something listens on a loopback port (a peer process started by a test). */
export async function waitPort(port: number, what = `port ${port}`): Promise<void> {
  await waitUntil(
    () =>
      new Promise<boolean>((r) => {
        const c = net.connect(port, '127.0.0.1', () => {
          c.end();
          r(true);
        });
        c.on('error', () => r(false));
      }),
    what,
    10_000,
  );
}
