/**
 * The database side of the overviews: the catalogue of builds in the overview schema, full builds
 * in one REPEATABLE READ snapshot, incremental refreshes cell by cell, and the dropping of
 * replaced level tables. It reads the change log (src/changes/) inside its snapshots, to know
 * which edits a build includes. The manager (manager.ts) decides when; this file does the work.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Layer } from '../registry/types.js';
import { qualifiedTable, quoteIdent } from '../db/pool.js';
import { EDIT_OPS } from '../changes/index.js';
import {
  columnsFor,
  incrementalShare,
  layerConfig,
  num,
  type LayerOverviewConfig,
  type LayerState,
  type OverviewBuild,
  type OverviewLevel,
  type OverviewOptions,
  type OverviewStatus,
} from './model.js';

/** What the builder tells the manager. */
export interface BuildHost {
  readonly stopped: boolean;
  readonly stats: { builds: number; refreshes: number };
  /** Use a build; `applied`: the pending change ids it includes (default: those up to its change id). */
  install(layer: Layer, st: LayerState, b: OverviewBuild, applied?: number[]): void;
  setStatus(st: LayerState, status: OverviewStatus, reason?: string): void;
}

export class OverviewBuilder {
  constructor(
    readonly opts: OverviewOptions,
    private readonly pool: pg.Pool,
    private readonly log: Logger,
    private readonly renderTimeoutMs: number,
    private readonly host: BuildHost,
  ) {}

  async setup(): Promise<void> {
    const s = quoteIdent(this.opts.schema);
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock(hashtext($1))', ['geodata_overview_setup']);
      try {
        await c.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
        await c.query(`CREATE TABLE IF NOT EXISTS ${s}.builds (
          source text NOT NULL, generation bigint NOT NULL, signature text NOT NULL, levels jsonb NOT NULL,
          columns jsonb NOT NULL, change_id bigint NOT NULL, source_rows bigint NOT NULL,
          built_at timestamptz NOT NULL DEFAULT now(), build_ms integer NOT NULL, PRIMARY KEY (source, generation))`);
        await c.query(`CREATE SEQUENCE IF NOT EXISTS ${s}.generation`);
      } finally {
        await c.query('SELECT pg_advisory_unlock(hashtext($1))', ['geodata_overview_setup']).catch(() => undefined);
      }
    } finally {
      c.release();
    }
  }

  async findBuild(layer: Layer, cols: string[], cfg: LayerOverviewConfig): Promise<OverviewBuild | null> {
    const s = quoteIdent(this.opts.schema);
    const r = await this.pool.query(`SELECT * FROM ${s}.builds WHERE source = $1 ORDER BY generation DESC LIMIT 1`, [
      `${layer.schema}.${layer.table}`,
    ]);
    const row = r.rows[0];
    if (!row) return null;
    const levels = row.levels as { cell: number; outSrid?: number | null; minSize: number; table: string; rows: number }[];
    const sig = this.signature(layer, cols, levels[0]?.cell ?? 0, cfg);
    if (row.signature !== sig) return null;
    const newer = await this.pool.query('SELECT 1 FROM geodata_tiles.changes WHERE id > $1 AND table_name = $2 AND op = ANY($3) LIMIT 1', [
      row.change_id,
      `${layer.schema}.${layer.table}`,
      EDIT_OPS,
    ]);
    if (newer.rows.length) return null;
    for (const l of levels) {
      const ok = await this.pool.query('SELECT to_regclass($1) IS NOT NULL AS ok', [qualifiedTable(this.opts.schema, l.table)]);
      if (!ok.rows[0].ok) return null;
    }
    return {
      generation: Number(row.generation),
      signature: row.signature,
      columns: row.columns,
      levels: levels.map((l) => ({ ...l, layer: this.levelLayer(layer, l.table, row.columns, l.rows) })),
      changeId: Number(row.change_id),
      builtAt: new Date(row.built_at),
      buildMs: row.build_ms,
      sourceRows: Number(row.source_rows),
    };
  }

  outSrid(layer: Layer): number | null {
    const o = this.opts.outputCrs;
    return o && o !== layer.srid ? o : null;
  }

  private signature(layer: Layer, cols: string[], base: number, cfg: LayerOverviewConfig): string {
    return JSON.stringify({
      v: 3,
      out: this.outSrid(layer),
      g: layer.geometryColumn,
      srid: layer.srid,
      cols,
      base: cfg.baseCell ?? this.opts.baseCell ?? `auto`,
      levels: cfg.levels ?? this.opts.levels,
      f: this.opts.cellsPerPixel,
      first: base > 0,
    });
  }

  levelLayer(layer: Layer, table: string, cols: string[], rows: number): Layer {
    const keep = new Set(cols);
    return {
      ...layer,
      schema: this.opts.schema,
      table,
      geometryColumn: 'geom',
      fields: layer.fields.filter((f) => keep.has(f.name)),
      rowEstimate: rows,
    };
  }

  /**
   * Drop the tables of the builds a new one replaces (this process's and those left by earlier
   * runs), once renders that may still read them are done.
   */
  async dropOlder(source: string, generation: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 2 * (this.renderTimeoutMs || 30000)).unref());
    if (this.host.stopped) return;
    const s = quoteIdent(this.opts.schema);
    try {
      const r = await this.pool.query(`SELECT generation, levels FROM ${s}.builds WHERE source = $1 AND generation < $2`, [
        source,
        generation,
      ]);
      for (const row of r.rows) {
        for (const l of row.levels as { table: string }[]) await this.pool.query(`DROP TABLE IF EXISTS ${s}.${quoteIdent(l.table)}`);
        await this.pool.query(`DELETE FROM ${s}.builds WHERE source = $1 AND generation = $2`, [source, row.generation]);
      }
    } catch (e) {
      this.log.warn({ source, err: (e as Error).message }, 'overviews: could not drop replaced overview tables');
    }
  }

  /**
   * The two statements that make level rows from `from` (rows geom, n, sz, cx, cy, carried
   * columns): the cell points (grouped per cell and carried values) and the kept features; both
   * select (geom, n, sz, cx, cy, columns…, geom_out). The full build and the incremental refresh
   * share them, so a refreshed cell holds what a rebuild would put there.
   */
  private levelSelects(
    layer: Layer,
    cols: string[],
    l: { cell: number; minSize: number },
    from: string,
  ): { cells: string; kept: string; columns: string } {
    const colList = cols.map((x) => `, ${quoteIdent(x)}`).join('');
    const out = this.outSrid(layer);
    return {
      columns: `geom, n, sz, cx, cy${colList}, geom_out`,
      cells: `SELECT ST_SetSRID(ST_MakePoint(sum(cx * n) / sum(n), sum(cy * n) / sum(n)), ${num(layer.srid)})::geometry(Geometry, ${num(layer.srid)}) AS geom,
                  sum(n)::bigint AS n, 0::float8 AS sz, sum(cx * n) / sum(n) AS cx, sum(cy * n) / sum(n) AS cy${colList},
                  NULL::geometry AS geom_out
             FROM ${from} WHERE sz < ${num(l.minSize)}
            GROUP BY floor(cx / ${num(l.cell)}), floor(cy / ${num(l.cell)})${colList}`,
      kept: `SELECT k, n, sz, cx, cy${colList}, ${out ? `ST_Transform(k, ${num(out)})` : 'NULL'}
             FROM (SELECT ST_Simplify(geom, ${num(l.cell / 4)}, true) AS k, n, sz, cx, cy${colList} FROM ${from} WHERE sz >= ${num(l.minSize)} OFFSET 0) q`,
    };
  }

  /** Source rows in the level-0 row form (box centre and size), from `src` (a table or a FROM item). */
  private sourceRows(layer: Layer, cols: string[], src: string): string {
    const g = quoteIdent(layer.geometryColumn);
    const colList = cols.map((x) => `, ${quoteIdent(x)}`).join('');
    return `(SELECT ${g} AS geom, 1 AS n, greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b)) AS sz, (ST_XMin(b) + ST_XMax(b)) / 2 AS cx, (ST_YMin(b) + ST_YMax(b)) / 2 AS cy${colList}
               FROM (SELECT ${g}, ${g}::box2d AS b${colList} FROM ${src} WHERE ${g} IS NOT NULL OFFSET 0) s) f`;
  }

  async build(layer: Layer, st: LayerState, mode: 'auto' | 'full'): Promise<void> {
    const cfg = layerConfig(layer);
    if (cfg === false) return;
    const cols = columnsFor(layer, cfg);
    if (typeof cols === 'string') return this.host.setStatus(st, 'disabled', cols);
    if (st.status !== 'stale' && st.status !== 'partial') this.host.setStatus(st, 'building');
    st.dirty = false;
    const t0 = Date.now();
    const S = this.opts.schema;
    const src = qualifiedTable(layer.schema, layer.table);
    const g = quoteIdent(layer.geometryColumn);
    const c = await this.pool.connect();
    let ok = false;
    let locked = false;
    try {
      // one build per table across server processes: the second one waits, then reuses the first's
      await c.query('SELECT pg_advisory_lock(hashtext($1))', [`geodata_overview:${st.source}`]);
      locked = true;
      const other = await this.findBuild(layer, cols, cfg);
      if (other && other.generation !== st.built?.generation) {
        ok = true;
        this.host.install(layer, st, other);
        return;
      }
      if (mode === 'auto' && st.built && (await this.incremental(c, layer, st, cols))) {
        ok = true;
        return;
      }
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      await c.query(
        `SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '10s', true), set_config('work_mem', '64MB', true)`,
      );
      // the snapshot starts here: every change with a smaller id is in it
      const changeId = Number((await c.query('SELECT coalesce(max(id), 0) AS m FROM geodata_tiles.changes')).rows[0].m);
      // the pending edits this snapshot sees (one committed after it, with a smaller id, stays pending)
      const applied = (
        await c.query('SELECT id FROM geodata_tiles.changes WHERE id = ANY($1::bigint[])', [[...st.pending.keys()]])
      ).rows.map((r) => Number(r.id));
      // rows with a geometry (those the overview stands for; an incremental refresh keeps this count)
      const sourceRows = Number((await c.query(`SELECT count(*) AS n FROM ${src} WHERE ${g} IS NOT NULL`)).rows[0].n);
      // combinations of the carried columns (the grouping key besides the cell)
      if (cols.length) {
        const combos = Number(
          (
            await c.query(
              `SELECT count(*) AS n FROM (SELECT DISTINCT ${cols.map(quoteIdent).join(', ')} FROM ${src} TABLESAMPLE SYSTEM (1) LIMIT ${this.opts.maxCombinations + 1}) s`,
            )
          ).rows[0].n,
        );
        if (combos > this.opts.maxCombinations) {
          await c.query('ROLLBACK');
          ok = true;
          this.log.warn({ layer: layer.name, cols }, 'overviews: style columns have too many value combinations; no overview');
          return this.host.setStatus(st, 'disabled', `more than ${this.opts.maxCombinations} combinations of ${cols.join(', ')}`);
        }
      }
      let base = cfg.baseCell ?? this.opts.baseCell;
      if (!base) {
        const r = await c.query(
          `SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b))) AS m FROM (SELECT ${g}::box2d AS b FROM ${src} TABLESAMPLE SYSTEM (${num(Math.min(100, (5000 / Math.max(1, sourceRows)) * 100))}) WHERE ${g} IS NOT NULL LIMIT 5000) s`,
        );
        let m = Number(r.rows[0]?.m) || 0;
        if (!(m > 0)) {
          // points (no size): an eighth of the mean spacing over the layer's extent, so that level 0
          // still groups the points of dense areas and a level serves region scales
          const e = layer.extent;
          const area = e ? (e.maxx - e.minx) * (e.maxy - e.miny) : 0;
          m = area > 0 && sourceRows > 0 ? Math.sqrt(area / sourceRows) / 8 : 1;
        }
        base = 2 ** Math.ceil(Math.log2(2 * m));
      }
      const nLevels = Math.max(1, Math.min(12, cfg.levels ?? this.opts.levels));
      const gen = Number((await c.query(`SELECT nextval('${quoteIdent(S)}.generation') AS g`)).rows[0].g);
      const f = this.opts.cellsPerPixel;
      const colList = cols.map((x) => `, ${quoteIdent(x)}`).join('');
      const levels: OverviewLevel[] = [];
      const out = this.outSrid(layer);
      let prev: string | null = null;
      const stem = `${layer.table}`.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 40);
      for (let k = 0; k < nLevels; k++) {
        const cell = base * 2 ** k;
        const minSize = f * cell;
        const name = `${stem}_g${gen}_l${k}`;
        const t = qualifiedTable(S, name);
        // rows: (geom, n, sz, cx, cy, carried columns); sz = 0 for cell points
        const from = prev ? `(SELECT geom, n, sz, cx, cy${colList} FROM ${qualifiedTable(S, prev)}) f` : this.sourceRows(layer, cols, src);
        const q = this.levelSelects(layer, cols, { cell, minSize }, from);
        await c.query(`CREATE TABLE ${t} AS ${q.cells}`);
        await c.query(`INSERT INTO ${t} (${q.columns}) ${q.kept}`);
        await c.query(`CREATE INDEX ON ${t} USING gist (geom)`);
        // the kept features alone, for the renderer's scan of rows wider than a pixel
        await c.query(`CREATE INDEX ON ${t} USING gist (geom) WHERE sz > 0`);
        await c.query(`ANALYZE ${t}`);
        const rows = Number((await c.query(`SELECT count(*) AS n FROM ${t}`)).rows[0].n);
        levels.push({ cell, outSrid: out, minSize, table: name, rows, layer: this.levelLayer(layer, name, cols, rows) });
        prev = name;
      }
      const buildMs = Date.now() - t0;
      const sig = this.signature(layer, cols, base, cfg);
      const r = await c.query(
        `INSERT INTO ${quoteIdent(S)}.builds (source, generation, signature, levels, columns, change_id, source_rows, build_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING built_at`,
        [
          st.source,
          gen,
          sig,
          JSON.stringify(levels.map(({ cell, outSrid, minSize, table, rows }) => ({ cell, outSrid, minSize, table, rows }))),
          JSON.stringify(cols),
          changeId,
          sourceRows,
          buildMs,
        ],
      );
      await c.query('COMMIT');
      ok = true;
      const b: OverviewBuild = {
        generation: gen,
        signature: sig,
        columns: cols,
        levels,
        changeId,
        builtAt: new Date(r.rows[0].built_at),
        buildMs,
        sourceRows,
      };
      this.log.info({ layer: layer.name, buildMs, levels: levels.map((l) => `${l.cell}:${l.rows}`) }, 'overviews: built');
      if (this.host.stopped) return;
      this.host.stats.builds++;
      // a change logged while building and not in this snapshot stays pending
      this.host.install(layer, st, b, applied);
    } finally {
      if (!ok) await c.query('ROLLBACK').catch(() => undefined);
      if (locked) await c.query('SELECT pg_advisory_unlock(hashtext($1))', [`geodata_overview:${st.source}`]).catch(() => undefined);
      c.release();
    }
  }

  /**
   * Apply the logged edits since the build's snapshot to its level tables, cell by cell, in one
   * REPEATABLE READ transaction (renders see the levels before or after it, never half-way).
   *
   * Every row of a level belongs to the grid cell of its centre (cx, cy): a cell point's centre is
   * the mean of its features' centres, all in the cell; a kept feature's is its box centre. An
   * edited source row (old and new box, as the change triggers log them) can therefore only change
   * the rows of the cell of its centre, at each level. For every level, in order: delete the rows of
   * those cells and make them again, with the build's own statements, from the rows of the level
   * below (the source for level 0) whose centre is in them: the result is what a full rebuild
   * gives. A centre within 1e-6 cell of a cell edge marks both cells. Returns false (nothing
   * changed) when a full rebuild is needed: a logged edit without boxes (bulk statement,
   * TRUNCATE), another build in the catalogue, or edits reaching more than incrementalMaxShare.
   */
  async incremental(c: pg.PoolClient, layer: Layer, st: LayerState, cols: string[]): Promise<boolean> {
    const built = st.built!;
    const t0 = Date.now();
    const S = this.opts.schema;
    await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
    let done = false;
    try {
      await c.query(`SELECT set_config('statement_timeout', '0', true), set_config('lock_timeout', '10s', true)`);
      const changeId = Number((await c.query('SELECT coalesce(max(id), 0) AS m FROM geodata_tiles.changes')).rows[0].m);
      const cat = (
        await c.query(
          `SELECT change_id, signature, levels, source_rows FROM ${quoteIdent(S)}.builds WHERE source = $1 AND generation = $2`,
          [st.source, built.generation],
        )
      ).rows[0];
      if (!cat || cat.signature !== built.signature) return false;
      // the edits since the catalogue's snapshot, and those pending that committed after it with a smaller id
      const ch = await c.query(
        `SELECT id, op, boxes IS NULL AS whole FROM geodata_tiles.changes WHERE table_name = $1 AND (id > $2 OR id = ANY($3::bigint[]))`,
        [st.source, Number(cat.change_id), [...st.pending.keys()]],
      );
      const applied = ch.rows.map((r) => Number(r.id));
      const edits = ch.rows.filter((r) => EDIT_OPS.includes(r.op)).map((r) => Number(r.id));
      if (ch.rows.some((r) => EDIT_OPS.includes(r.op) && r.whole)) return false;
      const stored = cat.levels as { cell: number; outSrid?: number | null; minSize: number; table: string; rows: number }[];
      if (stored.length !== built.levels.length) return false;
      let sourceRows = Number(cat.source_rows);
      const cells: number[] = [];
      if (edits.length) {
        // the cells each edited row's centre falls in, per level (k, ix, iy)
        const lv = stored.map((l, k) => `(${k}, ${num(l.cell)}::float8)`).join(', ');
        await c.query(
          `CREATE TEMP TABLE ov_cells ON COMMIT DROP AS
           WITH centres AS (SELECT DISTINCT ((b->>0)::float8 + (b->>2)::float8) / 2 AS cx, ((b->>1)::float8 + (b->>3)::float8) / 2 AS cy
                              FROM geodata_tiles.changes ch CROSS JOIN LATERAL jsonb_array_elements(ch.boxes) b WHERE ch.id = ANY($1::bigint[]))
           SELECT DISTINCT lv.k, floor((cx + e.dx * lv.cell) / lv.cell) AS ix, floor((cy + e.dy * lv.cell) / lv.cell) AS iy
             FROM centres, (VALUES ${lv}) lv(k, cell), (VALUES (-1e-6::float8, -1e-6::float8), (-1e-6, 1e-6), (1e-6, -1e-6), (1e-6, 1e-6)) e(dx, dy)`,
          [edits],
        );
        await c.query('ANALYZE ov_cells');
        const counts = new Map(
          (await c.query('SELECT k, count(*) AS n FROM ov_cells GROUP BY k')).rows.map((r) => [Number(r.k), Number(r.n)]),
        );
        stored.forEach((_, k) => cells.push(counts.get(k) ?? 0));
        const share = incrementalShare(
          st,
          { ...built, sourceRows, levels: built.levels.map((l, k) => ({ ...l, rows: stored[k].rows })) },
          cells,
        );
        if (share > this.opts.incrementalMaxShare) {
          this.log.info({ layer: layer.name, share, cells }, 'overviews: edits too wide for an incremental refresh; full rebuild');
          return false;
        }
        const srid = num(layer.srid);
        for (let k = 0; k < stored.length; k++) {
          const l = stored[k];
          const cell = num(l.cell);
          const t = qualifiedTable(S, l.table);
          const d = `(SELECT ix, iy FROM ov_cells WHERE k = ${k})`;
          // kept geometries are simplified (each level by cell/4, less than cell/2 in all): their box
          // is within half a cell of the original one, whose centre is in the cell
          const near = (a: string) =>
            `${a}.geom && ST_MakeEnvelope((d.ix - 1) * ${cell}, (d.iy - 1) * ${cell}, (d.ix + 2) * ${cell}, (d.iy + 2) * ${cell}, ${srid})`;
          const inCell = (x: string, y: string) => `floor(${x} / ${cell}) = d.ix AND floor(${y} / ${cell}) = d.iy`;
          let from: string;
          if (k === 0) {
            const gcol = quoteIdent(layer.geometryColumn);
            const box = `x.${gcol}::box2d`;
            // source rows whose box centre is in a marked cell (their box meets the cell: the GiST
            // index finds them; a row matches one cell at most, that of its centre)
            from = this.sourceRows(
              layer,
              cols,
              `(SELECT x.* FROM ${qualifiedTable(layer.schema, layer.table)} x JOIN ${d} d ON x.${gcol} && ST_MakeEnvelope(d.ix * ${cell}, d.iy * ${cell}, (d.ix + 1) * ${cell}, (d.iy + 1) * ${cell}, ${srid})
                 AND ${inCell(`((ST_XMin(${box}) + ST_XMax(${box})) / 2)`, `((ST_YMin(${box}) + ST_YMax(${box})) / 2)`)}) src`,
            );
          } else {
            from = `(SELECT o.geom, o.n, o.sz, o.cx, o.cy${cols.map((x) => `, o.${quoteIdent(x)}`).join('')} FROM ${qualifiedTable(S, stored[k - 1].table)} o JOIN ${d} d ON ${near('o')} AND ${inCell('o.cx', 'o.cy')}) f`;
          }
          const q = this.levelSelects(layer, cols, l, from);
          // one statement per level: the insert reads the level below, never this one, so the
          // deleted rows and the new ones do not meet
          const r = (
            await c.query(
              `WITH del AS (DELETE FROM ${t} o USING ${d} d WHERE ${near('o')} AND ${inCell('o.cx', 'o.cy')} RETURNING o.n),
                    ins AS (INSERT INTO ${t} (${q.columns}) ${q.cells} UNION ALL ${q.kept} RETURNING n)
               SELECT (SELECT count(*) FROM del) AS dr, (SELECT coalesce(sum(n), 0) FROM del) AS dn, (SELECT count(*) FROM ins) AS ir, (SELECT coalesce(sum(n), 0) FROM ins) AS inn`,
            )
          ).rows[0];
          l.rows += Number(r.ir) - Number(r.dr);
          // level 0 counts source rows with a geometry: the change in its n is the change in those
          if (k === 0) sourceRows += Number(r.inn) - Number(r.dn);
        }
      }
      const r = await c.query(
        `UPDATE ${quoteIdent(S)}.builds SET change_id = $3, levels = $4, source_rows = $5, built_at = now() WHERE source = $1 AND generation = $2 RETURNING built_at`,
        [st.source, built.generation, changeId, JSON.stringify(stored), sourceRows],
      );
      await c.query('COMMIT');
      done = true;
      const ms = Date.now() - t0;
      const b: OverviewBuild = {
        ...built,
        changeId,
        builtAt: new Date(r.rows[0].built_at),
        sourceRows,
        levels: built.levels.map((l, k) => ({ ...l, rows: stored[k].rows, layer: { ...l.layer, rowEstimate: stored[k].rows } })),
      };
      st.lastRefresh = { at: new Date(), ms, changes: edits.length, cells };
      this.host.stats.refreshes++;
      this.log.info({ layer: layer.name, ms, edits: edits.length, cells }, 'overviews: refreshed incrementally');
      if (!this.host.stopped) this.host.install(layer, st, b, applied);
      return true;
    } finally {
      if (!done) await c.query('ROLLBACK').catch(() => undefined);
    }
  }
}
