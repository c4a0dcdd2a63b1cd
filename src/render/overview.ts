/**
 * Pre-generalised overviews of big point, line and polygon layers, maintained by the server (the idea of
 * GeoServer's pre-generalised features and MapServer's overview layers, built and refreshed here).
 *
 * For a layer with more rows than `overviews.minRows`, the server keeps a small pyramid of tables
 * in its own schema (default `geodata_overview`; the publisher's table is never altered). Level k
 * has a grid cell of `c_k = baseCell · 2^k` layer-CRS units and a size threshold
 * `s_k = cellsPerPixel · c_k`:
 *
 *   - features whose bounding box is smaller than s_k are grouped per grid cell and per combination
 *     of the attribute values the layer's style filters read; each group is one point at the mean
 *     of its features' box centres, with their count;
 *   - features at least s_k wide or high are kept as they are (simplified to c_k/4), with their
 *     attribute values.
 *
 * Level 0 is built from the source table, level k from level k-1 (grids nest, so this is the same
 * as grouping the source), all in one REPEATABLE READ snapshot. A level table has the columns
 * the renderer's query needs, under the source's names, so the unchanged renderer query
 * (src/render/index.ts layerQuery) runs on it: points and features smaller than the output pixel
 * are reduced per pixel exactly as for the source, larger features drawn with their geometry.
 *
 * The renderer uses the coarsest level with s_k ≤ output pixel (in the layer CRS), i.e. a cell of
 * at most 1/cellsPerPixel pixel, and only when every active rule's filter reads overview columns
 * and no active rule labels; otherwise it renders directly from the source.
 *
 * Freshness reuses the tile cache's change triggers (src/tiles/freshness.ts: every statement on
 * the source logs a row in geodata_tiles.changes, with the boxes of the rows it changed — old and
 * new — up to tiles.bulkRows rows, and NOTIFYs `geodata_tiles`). A build records the last change
 * id of its snapshot. A notification (or the periodic check) notes the edit as pending and
 * schedules a refresh after the edits settle. Edits with boxes are applied incrementally: at
 * every level, the rows of the grid cells holding an edited row's centre are made again (see
 * incremental()), in one transaction; meanwhile the overview is 'partial' and serves the views
 * that do not reach those cells. A bulk edit or TRUNCATE (no boxes), or edits whose cells add up
 * to more than incrementalMaxShare of a rebuild's reads, make it 'stale' (renders go direct) and
 * are followed by a full rebuild. Builds run in the background after start and never delay readiness.
 */
import pg from 'pg';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import client from 'prom-client';
import type { AppContext } from '../context.js';
import type { Layer } from '../registry/types.js';
import type { Rule, TextSymbolizer } from './style.js';
import { compileFilter } from '../filter/sql.js';
import { layerStyles } from './style.js';
import { qualifiedTable, quoteIdent } from '../db/pool.js';
import { transformExtent } from '../crs/index.js';
import type { Extent } from '../registry/types.js';
import { isAdminRequest } from '../security/auth.js';
import { tileEngine } from '../tiles/engine.js';
import { CHANNEL } from '../tiles/freshness.js';

export interface OverviewOptions {
  enabled: boolean;
  /** Layers with more rows (planner estimate) than this get an overview. */
  minRows: number;
  /** Schema holding the overview tables and their catalogue. */
  schema: string;
  /** Cell of level 0 in layer-CRS units; null = 2 × the median feature size, rounded up to a power of 2. */
  baseCell: number | null;
  levels: number;
  /** Cells per output pixel (per axis) at least: the level's cell is at most 1/cellsPerPixel of a pixel. */
  cellsPerPixel: number;
  /** Largest number of distinct attribute combinations per cell (estimated); above it no overview is built. */
  maxCombinations: number;
  /** Quiet time after the last change before a rebuild starts (ms). */
  rebuildDelayMs: number;
  /** Shortest time between two builds of the same layer (ms). */
  minRebuildIntervalMs: number;
  /** Period of the staleness check that backs up LISTEN (ms). */
  checkIntervalMs: number;
  /** Kept geometries are also stored projected to this CRS (the web maps' EPSG:3857 by default); null = none. */
  outputCrs: number | null;
  /**
   * Edits are applied cell by cell (incremental refresh) while the rows they make the levels
   * re-read stay under this share of what a full rebuild reads; above it, full rebuild.
   */
  incrementalMaxShare: number;
}

export interface LayerOverviewConfig {
  enabled?: boolean;
  minRows?: number;
  baseCell?: number;
  levels?: number;
  /** Extra columns to carry (besides those the layer's style filters read). */
  columns?: string[];
}

export function overviewOptions(raw: unknown): OverviewOptions {
  const o = (raw ?? {}) as Record<string, any>;
  return {
    enabled: o.enabled ?? true,
    minRows: o.minRows ?? 200000,
    schema: o.schema ?? 'geodata_overview',
    baseCell: o.baseCell ?? null,
    levels: o.levels ?? 4,
    cellsPerPixel: o.cellsPerPixel ?? 2,
    maxCombinations: o.maxCombinations ?? 64,
    rebuildDelayMs: o.rebuildDelayMs ?? 5000,
    minRebuildIntervalMs: o.minRebuildIntervalMs ?? 60000,
    checkIntervalMs: o.checkIntervalMs ?? 15000,
    outputCrs: o.outputCrs === undefined ? 3857 : o.outputCrs,
    incrementalMaxShare: o.incrementalMaxShare ?? 0.2,
  };
}

export interface OverviewLevel {
  cell: number;
  /** SRID of the geom_out column (kept geometries already projected), or null. */
  outSrid?: number | null;
  /** Features at least this size are kept with their geometry; smaller ones are grouped per cell. */
  minSize: number;
  table: string;
  rows: number;
  /** The layer as the renderer sees it, pointing at the level table. */
  layer: Layer;
}

export interface OverviewBuild {
  generation: number;
  signature: string;
  columns: string[];
  levels: OverviewLevel[];
  changeId: number;
  builtAt: Date;
  buildMs: number;
  sourceRows: number;
}

/**
 * 'partial': edits are pending (an incremental refresh is scheduled); renders whose view does not
 * reach the areas they touch keep reading the overview, the others read the source.
 */
export type OverviewStatus = 'pending' | 'building' | 'ready' | 'partial' | 'stale' | 'disabled' | 'failed';

/** Operations of the change triggers (the other rows of the changes log are cache-version bumps, not edits). */
const EDIT_OPS = ['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE'];

interface State {
  source: string;
  layerName: string;
  status: OverviewStatus;
  reason?: string;
  built?: OverviewBuild;
  /** a change arrived after the current build's snapshot */
  dirty: boolean;
  /**
   * Logged edits not yet in the overview, by change id: the areas whose overview rows they may
   * change (per changed row, its box joined with the coarsest level's cell of its centre), or
   * null for an edit without boxes (bulk statement, TRUNCATE): the whole layer.
   */
  pending: Map<number, Extent[] | null>;
  /** Last incremental refresh: duration, edits and level-0 cells it re-read. */
  lastRefresh?: { at: Date; ms: number; changes: number; cells: number[] };
  /** The layer's extent (layer CRS), to weigh the pending edits. */
  extent: Extent | null;
  timer?: NodeJS.Timeout;
  firstChangeAt?: number;
  lastBuildEnd: number;
  building?: Promise<void>;
}

const num = (x: number): string => {
  if (!Number.isFinite(x)) throw new Error(`overview: not a finite number: ${x}`);
  return String(x);
};

/** Property names read by a filter AST, or null if it uses something an overview cannot answer (spatial, ids, time). */
export function filterColumns(node: unknown, out = new Set<string>()): Set<string> | null {
  if (node === null || typeof node !== 'object') return out;
  if (Array.isArray(node)) {
    for (const n of node) if (!filterColumns(n, out)) return null;
    return out;
  }
  const o = node as Record<string, unknown>;
  if (o.kind === 'spatial' || o.kind === 'resourceId' || o.kind === 'temporal') return null;
  if (o.kind === 'property' && typeof o.name === 'string') {
    out.add(bare(o.name));
    return out;
  }
  for (const v of Object.values(o)) if (!filterColumns(v, out)) return null;
  return out;
}

function bare(raw: string): string {
  let s = raw.trim();
  const slash = s.lastIndexOf('/');
  if (slash >= 0) s = s.slice(slash + 1);
  s = s.replace(/\[[^\]]*\]$/, '');
  if (s.startsWith('@')) s = s.slice(1);
  const colon = s.indexOf(':');
  return colon >= 0 ? s.slice(colon + 1) : s;
}

const managers = new WeakMap<pg.Pool, OverviewManager>();

/**
 * The render hook (called by drawMap for each layer): the SQL that reads the layer's overview
 * instead of the layer, in the row form of layerQuery (g = screen-space TWKB, r<i> = rule
 * matches), or null to render from the source. Synchronous and cheap.
 */
export function overviewQuery(
  rc: { pool: pg.Pool },
  layer: Layer,
  rules: Rule[],
  o: { bbox: Extent; epsg: number; width: number; height: number },
  margin: number,
): { text: string; values: unknown[]; textRules: TextSymbolizer[] } | null {
  const m = managers.get(rc.pool);
  if (!m) return null;
  const pick = m.pick(layer, rules, o, margin);
  if (pick) m.stats.overviewRenders++;
  return pick ? levelQuery(pick.level, layer, rules, o, pick.search, pick.resN) : null;
}

/**
 * One overview level read for a view, in two index scans (sized TWKB, as layerQuery with
 * `sizes`, so that the renderer can aggregate the rows per rule combination):
 *  - rows at least a pixel wide or high (kept features; partial GiST index on sz > 0): drawn with
 *    their geometry, projected to the screen and simplified to half a pixel as layerQuery does;
 *  - smaller rows (cell points and kept features under a pixel) grouped per output pixel on the
 *    layer-CRS grid layerQuery uses, from their stored box centre (no geometry read), one point
 *    per pixel with the OR of each rule's match, as layerQuery's per-pixel reduction.
 */
export function levelQuery(
  level: OverviewLevel,
  layer: Layer,
  rules: Rule[],
  o: { bbox: Extent; epsg: number; width: number; height: number },
  search: Extent,
  resN: number,
): { text: string; values: unknown[]; textRules: TextSymbolizer[] } {
  const values: unknown[] = [];
  const p = (v: unknown) => {
    values.push(v);
    return `$${values.length}`;
  };
  const t = qualifiedTable(level.layer.schema, level.layer.table);
  const env = `ST_MakeEnvelope(${p(search.minx)}::float8, ${p(search.miny)}::float8, ${p(search.maxx)}::float8, ${p(search.maxy)}::float8, ${num(layer.srid)})`;
  const inOut = (expr: string) => (layer.srid === o.epsg ? expr : `ST_Transform(${expr}, ${num(o.epsg)})`);
  const resx = (o.bbox.maxx - o.bbox.minx) / o.width;
  const resy = (o.bbox.maxy - o.bbox.miny) / o.height;
  const affine = (expr: string) =>
    `ST_Affine(${expr}, ${p(1 / resx)}::float8, 0, 0, ${p(-1 / resy)}::float8, ${p(-o.bbox.minx / resx)}::float8, ${p(o.bbox.maxy / resy)}::float8)`;
  const target = {
    fields: level.layer.fields,
    geometryColumn: 'geom',
    srid: layer.srid,
    primaryKey: layer.primaryKey,
    layerName: layer.name,
  };
  const ruleCols: string[] = [];
  const ruleAggs: string[] = [];
  const ruleNames: string[] = [];
  rules.forEach((r, i) => {
    if (!r.filter) return;
    ruleCols.push(`, coalesce((${compileFilter(r.filter, target, values)}), false) AS r${i}`);
    ruleAggs.push(`, bool_or(r${i}) AS r${i}`);
    ruleNames.push(`, r${i}`);
  });
  const points = /POINT/.test(layer.geometryType);
  const lines = /LINESTRING/.test(layer.geometryType);
  // kept geometries stored already projected to the output CRS skip ST_Transform
  let screen = `ST_Simplify(${affine(level.outSrid === o.epsg ? 'geom_out' : inOut('geom'))}, 0.5, true)`;
  if (!lines) screen = `ST_ForcePolygonCW(${screen})`;
  screen = `ST_ClipByBox2D(${screen}, ST_MakeEnvelope(${num(-o.width)}, ${num(-o.height)}, ${num(2 * o.width)}, ${num(2 * o.height)}))`;
  const r = p(resN);
  const ox = p(search.minx);
  const oy = p(search.miny);
  const centre = `ST_SetSRID(ST_MakePoint(${ox}::float8 + (gx + 0.5) * ${r}::float8, ${oy}::float8 + (gy + 0.5) * ${r}::float8), ${num(layer.srid)})`;
  const kept = `SELECT ST_AsTWKB(${screen}, 1, 0, 0, true) AS g${ruleCols.join('')} FROM ${t} WHERE geom && ${env} AND sz > 0 AND sz >= ${r}::float8\n`;
  if (points) {
    // The direct render of points does not reduce them per pixel: every point is drawn with its
    // rule's mark where it is. Here a pixel gives one point per rule combination found in it (an
    // else-rule still draws beside the other rules), at the mean place of its points — exactly
    // in place when the pixel holds one cell point.
    const mean = `ST_SetSRID(ST_MakePoint(sum(cx * n) / sum(n), sum(cy * n) / sum(n)), ${num(layer.srid)})`;
    const text =
      kept +
      `UNION ALL\n` +
      `SELECT ST_AsTWKB(${affine(inOut(mean))}, 1, 0, 0, true) AS g${ruleNames.join('')}\n` +
      `FROM (SELECT floor((cx - ${ox}::float8) / ${r}::float8) AS gx, floor((cy - ${oy}::float8) / ${r}::float8) AS gy, cx, cy, n${ruleCols.join('')}\n` +
      `      FROM ${t} WHERE geom && ${env} AND sz < ${r}::float8) q\n` +
      `GROUP BY gx, gy${ruleNames.join('')}`;
    return { text, values, textRules: [] };
  }
  const text =
    kept +
    `UNION ALL\n` +
    `SELECT ST_AsTWKB(${affine(inOut(centre))}, 1, 0, 0, true) AS g${ruleAggs.join('')}\n` +
    `FROM (SELECT floor((cx - ${ox}::float8) / ${r}::float8) AS gx, floor((cy - ${oy}::float8) / ${r}::float8) AS gy${ruleCols.join('')}\n` +
    `      FROM ${t} WHERE geom && ${env} AND sz < ${r}::float8) q\n` +
    `GROUP BY gx, gy`;
  return { text, values, textRules: [] };
}

export function overviewManager(ctx: AppContext): OverviewManager | undefined {
  return managers.get((ctx.root ?? ctx).pool);
}

export class OverviewManager {
  readonly opts: OverviewOptions;
  private readonly states = new Map<string, State>();
  private listener?: pg.Client;
  private checkTimer?: NodeJS.Timeout;
  private stopped = false;
  private started?: Promise<void>;
  /** false: renders never use the overviews (benchmarks and tests compare both paths). */
  use = true;
  /** Layer renders answered from an overview; builds completed. */
  readonly stats = { overviewRenders: 0, builds: 0, refreshes: 0 };
  private readonly gauges?: {
    built: client.Gauge<'layer'>;
    ready: client.Gauge<'layer'>;
    buildSeconds: client.Gauge<'layer'>;
    rows: client.Gauge<'layer' | 'level'>;
  };

  constructor(readonly ctx: AppContext) {
    this.opts = overviewOptions(ctx.config.overviews);
    const reg = ctx.metrics?.registry;
    if (reg) {
      const mk = <T extends string>(name: string, help: string, labelNames: T[]) => {
        const old = reg.getSingleMetric(name);
        if (old) reg.removeSingleMetric(name);
        return new client.Gauge<T>({ name, help, labelNames, registers: [reg] });
      };
      this.gauges = {
        built: mk('geodata_overview_built_timestamp_seconds', 'When the overview of a layer in use was built (Unix time)', ['layer']),
        ready: mk('geodata_overview_ready', '1 when renders may use the layer overview, 0 while it is building or stale', ['layer']),
        buildSeconds: mk('geodata_overview_build_seconds', 'Duration of the last overview build of a layer', ['layer']),
        rows: mk('geodata_overview_rows', 'Rows per overview level', ['layer', 'level']),
      };
    }
    managers.set(ctx.pool, this);
  }

  /** Per-layer config (layers[].overview), false when disabled. */
  private layerConfig(layer: Layer): LayerOverviewConfig | false {
    const raw = (layer.extra as Record<string, unknown>).overview;
    if (raw === false) return false;
    const c = raw && typeof raw === 'object' ? (raw as LayerOverviewConfig) : {};
    if (c.enabled === false) return false;
    return c;
  }

  /** Layers that should have an overview. */
  candidates(): Layer[] {
    if (!this.opts.enabled) return [];
    return this.ctx.registry.list().filter((l) => {
      const c = this.layerConfig(l);
      if (c === false) return false;
      const forced = (l.extra as Record<string, unknown>).overview === true || c.enabled === true;
      return forced || (l.rowEstimate ?? 0) > (c.minRows ?? this.opts.minRows);
    });
  }

  /** Start in the background; resolves when the first builds are done (tests await it, the server does not). */
  start(): Promise<void> {
    if (!this.started)
      this.started = this.run().catch((e) =>
        this.ctx.log.error({ err: (e as Error).message }, 'overviews: could not start; maps render from the source tables'),
      );
    return this.started;
  }

  private async run(): Promise<void> {
    const layers = this.candidates();
    if (!layers.length) return;
    await this.setup();
    // the change triggers and the changes log belong to the tile cache's freshness tracking
    await tileEngine(this.ctx).ready();
    await this.listen();
    this.checkTimer = setInterval(() => void this.check().catch(() => undefined), this.opts.checkIntervalMs);
    this.checkTimer.unref();
    for (const layer of layers) {
      if (this.stopped) return;
      await this.ensure(layer);
    }
  }

  private async setup(): Promise<void> {
    const s = quoteIdent(this.opts.schema);
    const c = await this.ctx.pool.connect();
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

  private async listen(): Promise<void> {
    if (this.stopped) return;
    const cl = new pg.Client({
      ...(this.ctx.pool as unknown as { options: pg.ClientConfig }).options,
      application_name: 'geodata-overview-listen',
    } as pg.ClientConfig);
    cl.on('error', (e) => this.ctx.log.warn({ err: e.message }, 'overviews: LISTEN connection lost'));
    cl.on('end', () => {
      if (this.stopped || this.listener !== cl) return;
      this.listener = undefined;
      // events may have been missed: the periodic check finds them; reconnect soon
      const t = setTimeout(
        () =>
          void this.listen()
            .then(() => this.check())
            .catch(() => undefined),
        1000,
      );
      t.unref();
    });
    cl.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      void this.ctx.pool
        .query('SELECT id, table_name, op, boxes FROM geodata_tiles.changes WHERE id = $1', [Number(msg.payload)])
        .then((r) => {
          const row = r.rows[0];
          if (row) this.changed(row.table_name, { id: Number(row.id), op: row.op, boxes: row.boxes });
        })
        .catch(() => undefined);
    });
    try {
      await cl.connect();
      await cl.query(`LISTEN ${CHANNEL}`);
      this.listener = cl;
    } catch (e) {
      this.ctx.log.warn({ err: (e as Error).message }, 'overviews: cannot LISTEN; relying on the periodic check');
      await cl.end().catch(() => undefined);
    }
  }

  /**
   * A change was logged for a source table: note the area it touches and schedule a refresh.
   * Renders keep using the overview away from the pending edits ('partial') when they can be
   * applied incrementally; otherwise ('stale') every render reads the source until the rebuild.
   */
  changed(source: string, ch: { id: number; op: string; boxes: number[][] | null }): void {
    const st = this.states.get(source);
    if (!st || st.status === 'disabled') return;
    // a tile-cache version bump (large-edit, reconnect) repeats or covers logged edits: nothing to apply
    if (!EDIT_OPS.includes(ch.op)) return;
    if (st.pending.has(ch.id)) return;
    st.pending.set(
      ch.id,
      ch.boxes ? ch.boxes.map((b) => ({ minx: Number(b[0]), miny: Number(b[1]), maxx: Number(b[2]), maxy: Number(b[3]) })) : null,
    );
    st.dirty = true;
    if (st.status === 'ready' || st.status === 'partial') this.setStatus(st, this.pendingMode(st));
    this.schedule(st);
  }

  /** 'partial' when the pending edits can be applied cell by cell, 'stale' when they need a full rebuild. */
  private pendingMode(st: State): 'partial' | 'stale' {
    const b = st.built;
    if (!b) return 'stale';
    const centres: [number, number][] = [];
    for (const boxes of st.pending.values()) {
      if (!boxes) return 'stale';
      for (const x of boxes) centres.push([(x.minx + x.maxx) / 2, (x.miny + x.maxy) / 2]);
      if (centres.length > 100000) return 'stale';
    }
    const counts = b.levels.map((l) => new Set(centres.map(([x, y]) => `${Math.floor(x / l.cell)},${Math.floor(y / l.cell)}`)).size);
    return this.incrementalShare(st, b, counts) <= this.opts.incrementalMaxShare ? 'partial' : 'stale';
  }

  /**
   * Share of a full rebuild's reads that refreshing `cells[k]` cells of each level k reads (the
   * source for level 0, level k-1 for level k), assuming rows spread evenly over the layer's extent.
   */
  private incrementalShare(st: State, b: OverviewBuild, cells: number[]): number {
    const e = st.extent;
    const area = e ? (e.maxx - e.minx) * (e.maxy - e.miny) : 0;
    if (!(area > 0)) return 0;
    let inc = 0;
    let full = 0;
    b.levels.forEach((l, k) => {
      const input = k ? b.levels[k - 1].rows : b.sourceRows;
      full += input;
      inc += Math.min(1, (cells[k] * l.cell * l.cell) / area) * input;
    });
    return full > 0 ? inc / full : 0;
  }

  /** Whether a view's search extent reaches an area a pending edit may change in the overview. */
  private touchesPending(st: State, b: OverviewBuild, search: Extent): boolean {
    const top = b.levels[b.levels.length - 1].cell;
    const eps = top * 1e-6;
    for (const boxes of st.pending.values()) {
      if (!boxes) return true;
      for (const x of boxes) {
        // the overview rows an edited row feeds: its kept geometry (within its box) or the point of its cell
        const ix = Math.floor((x.minx + x.maxx) / 2 / top);
        const iy = Math.floor((x.miny + x.maxy) / 2 / top);
        const minx = Math.min(x.minx, ix * top) - eps;
        const miny = Math.min(x.miny, iy * top) - eps;
        const maxx = Math.max(x.maxx, (ix + 1) * top) + eps;
        const maxy = Math.max(x.maxy, (iy + 1) * top) + eps;
        if (minx <= search.maxx && maxx >= search.minx && miny <= search.maxy && maxy >= search.miny) return true;
      }
    }
    return false;
  }

  private schedule(st: State): void {
    if (this.stopped) return;
    const now = Date.now();
    st.firstChangeAt ??= now;
    if (st.timer) clearTimeout(st.timer);
    // rebuild once edits have been quiet for rebuildDelayMs, but not later than 10 quiet periods after the first one
    // a full rebuild (5-8 s for a million rows) waits minRebuildIntervalMs after the previous one; a cell-by-cell refresh does not
    const gap = st.status === 'partial' ? 0 : this.opts.minRebuildIntervalMs;
    const at = Math.max(Math.min(now + this.opts.rebuildDelayMs, st.firstChangeAt + 10 * this.opts.rebuildDelayMs), st.lastBuildEnd + gap);
    st.timer = setTimeout(
      () => {
        st.timer = undefined;
        const layer = this.ctx.registry.list().find((l) => `${l.schema}.${l.table}` === st.source);
        if (layer) void this.rebuild(layer, st, 'auto');
      },
      Math.max(0, at - now),
    );
    st.timer.unref();
  }

  /** Periodic check: changes newer than the build and not yet noted (backs up LISTEN). */
  async check(): Promise<void> {
    for (const st of this.states.values()) {
      if (!st.built || (st.status !== 'ready' && st.status !== 'partial')) continue;
      const r = await this.ctx.pool.query(
        'SELECT id, op, boxes FROM geodata_tiles.changes WHERE id > $1 AND table_name = $2 AND NOT (id = ANY($3::bigint[])) ORDER BY id LIMIT 1000',
        [st.built.changeId, st.source, [...st.pending.keys()]],
      );
      for (const row of r.rows) this.changed(st.source, { id: Number(row.id), op: row.op, boxes: row.boxes });
    }
  }

  private setStatus(st: State, status: OverviewStatus, reason?: string): void {
    st.status = status;
    st.reason = reason;
    this.gauges?.ready.set({ layer: st.layerName }, status === 'ready' || status === 'partial' ? 1 : 0);
  }

  /** Resolves when no build is running or scheduled (tests). */
  async idle(): Promise<void> {
    await this.started;
    for (;;) {
      const running = [...this.states.values()].map((s) => s.building).filter(Boolean);
      if (!running.length) return;
      await Promise.all(running);
    }
  }

  status(): {
    layer: string;
    source: string;
    status: OverviewStatus;
    reason?: string;
    pendingEdits?: number;
    lastRefresh?: { at: string; ms: number; changes: number; cells: number[] };
    builtAt?: string;
    buildMs?: number;
    sourceRows?: number;
    columns?: string[];
    levels?: { cell: number; minSize: number; table: string; rows: number }[];
  }[] {
    return [...this.states.values()].map((s) => ({
      layer: s.layerName,
      source: s.source,
      status: s.status,
      ...(s.reason ? { reason: s.reason } : {}),
      ...(s.pending.size ? { pendingEdits: s.pending.size } : {}),
      ...(s.lastRefresh
        ? {
            lastRefresh: {
              at: s.lastRefresh.at.toISOString(),
              ms: s.lastRefresh.ms,
              changes: s.lastRefresh.changes,
              cells: s.lastRefresh.cells,
            },
          }
        : {}),
      ...(s.built
        ? {
            builtAt: s.built.builtAt.toISOString(),
            buildMs: s.built.buildMs,
            sourceRows: s.built.sourceRows,
            columns: s.built.columns,
            levels: s.built.levels.map((l) => ({ cell: l.cell, minSize: l.minSize, table: l.table, rows: l.rows })),
          }
        : {}),
    }));
  }

  private state(layer: Layer): State {
    const source = `${layer.schema}.${layer.table}`;
    let st = this.states.get(source);
    if (!st) {
      st = { source, layerName: layer.name, status: 'pending', dirty: false, pending: new Map(), extent: layer.extent, lastBuildEnd: 0 };
      this.states.set(source, st);
      this.gauges?.ready.set({ layer: layer.name }, 0);
    }
    return st;
  }

  /** Columns the overview carries: those the layer's style filters read, plus configured ones; null when a filter cannot be served. */
  private columnsFor(layer: Layer, cfg: LayerOverviewConfig): string[] | string {
    const cols = new Set<string>(cfg.columns ?? []);
    for (const s of layerStyles(layer).styles.values()) {
      for (const r of s.rules) {
        if (!r.filter) continue;
        if (!filterColumns(r.filter, cols)) return `style '${s.name}' rule '${r.name}' has a spatial, temporal or id filter`;
      }
    }
    const fields = new Set(layer.fields.map((f) => f.name));
    for (const c of cols) if (!fields.has(c)) return `column '${c}' is not a column of the layer`;
    return [...cols].sort();
  }

  /** Use a fresh existing build, or build one. */
  async ensure(layer: Layer): Promise<void> {
    const st = this.state(layer);
    const cfg = this.layerConfig(layer);
    if (cfg === false) return this.setStatus(st, 'disabled', 'disabled in config');
    const cols = this.columnsFor(layer, cfg);
    if (typeof cols === 'string') {
      this.ctx.log.warn({ layer: layer.name, reason: cols }, 'overviews: not built');
      return this.setStatus(st, 'disabled', cols);
    }
    const trig = await this.ctx.pool.query(
      `SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = $1::regclass AND tgname LIKE 'geodata_tiles_%' AND NOT tgisinternal`,
      [qualifiedTable(layer.schema, layer.table)],
    );
    if (trig.rows[0].n < 4) {
      this.ctx.log.warn(
        { layer: layer.name },
        'overviews: the table has no change triggers (tiles.freshness off, a view, or no right): no overview, it could not be kept fresh',
      );
      return this.setStatus(st, 'disabled', 'no change triggers on the source (tiles.freshness)');
    }
    // an existing build with the same parameters and no change since its snapshot is reused (restarts, other instances)
    const existing = await this.findBuild(layer, cols, cfg);
    if (existing) {
      this.install(layer, st, existing);
      this.ctx.log.info({ layer: layer.name, builtAt: existing.builtAt }, 'overviews: reusing an up-to-date overview');
      return;
    }
    await this.rebuild(layer, st, 'full');
  }

  private async findBuild(layer: Layer, cols: string[], cfg: LayerOverviewConfig): Promise<OverviewBuild | null> {
    const s = quoteIdent(this.opts.schema);
    const r = await this.ctx.pool.query(`SELECT * FROM ${s}.builds WHERE source = $1 ORDER BY generation DESC LIMIT 1`, [
      `${layer.schema}.${layer.table}`,
    ]);
    const row = r.rows[0];
    if (!row) return null;
    const levels = row.levels as { cell: number; outSrid?: number | null; minSize: number; table: string; rows: number }[];
    const sig = this.signature(layer, cols, levels[0]?.cell ?? 0, cfg);
    if (row.signature !== sig) return null;
    const newer = await this.ctx.pool.query(
      'SELECT 1 FROM geodata_tiles.changes WHERE id > $1 AND table_name = $2 AND op = ANY($3) LIMIT 1',
      [row.change_id, `${layer.schema}.${layer.table}`, EDIT_OPS],
    );
    if (newer.rows.length) return null;
    for (const l of levels) {
      const ok = await this.ctx.pool.query('SELECT to_regclass($1) IS NOT NULL AS ok', [qualifiedTable(this.opts.schema, l.table)]);
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

  private outSrid(layer: Layer): number | null {
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

  private levelLayer(layer: Layer, table: string, cols: string[], rows: number): Layer {
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

  /** Use a build; `applied`: the pending change ids it includes (default: those up to its change id). */
  private install(layer: Layer, st: State, b: OverviewBuild, applied?: number[]): void {
    const old = st.built;
    st.built = b;
    if (applied) for (const id of applied) st.pending.delete(id);
    else for (const id of st.pending.keys()) if (id <= b.changeId) st.pending.delete(id);
    st.dirty = st.pending.size > 0;
    st.firstChangeAt = undefined;
    this.setStatus(st, st.dirty ? this.pendingMode(st) : 'ready');
    this.gauges?.built.set({ layer: layer.name }, b.builtAt.getTime() / 1000);
    this.gauges?.buildSeconds.set({ layer: layer.name }, b.buildMs / 1000);
    b.levels.forEach((l, i) => this.gauges?.rows.set({ layer: layer.name, level: String(i) }, l.rows));
    if (!old || old.generation !== b.generation) void this.dropOlder(st.source, b.generation);
  }

  /**
   * Drop the tables of the builds a new one replaces (this process's and those left by earlier
   * runs), once renders that may still read them are done.
   */
  private async dropOlder(source: string, generation: number): Promise<void> {
    await new Promise((r) => setTimeout(r, 2 * (this.ctx.config.limits.renderTimeoutMs || 30000)).unref());
    if (this.stopped) return;
    const s = quoteIdent(this.opts.schema);
    try {
      const r = await this.ctx.pool.query(`SELECT generation, levels FROM ${s}.builds WHERE source = $1 AND generation < $2`, [
        source,
        generation,
      ]);
      for (const row of r.rows) {
        for (const l of row.levels as { table: string }[]) await this.ctx.pool.query(`DROP TABLE IF EXISTS ${s}.${quoteIdent(l.table)}`);
        await this.ctx.pool.query(`DELETE FROM ${s}.builds WHERE source = $1 AND generation = $2`, [source, row.generation]);
      }
    } catch (e) {
      this.ctx.log.warn({ source, err: (e as Error).message }, 'overviews: could not drop replaced overview tables');
    }
  }

  /**
   * Build a layer's overview now (benchmarks, tests), whatever its state: 'full' rebuilds it,
   * 'auto' applies the logged edits cell by cell when they are few enough (as scheduled refreshes do).
   */
  refresh(layer: Layer, mode: 'auto' | 'full' = 'full'): Promise<void> {
    return this.rebuild(layer, this.state(layer), mode);
  }

  private rebuild(layer: Layer, st: State, mode: 'auto' | 'full'): Promise<void> {
    if (st.building) {
      // a change arrived during a build: it will be rebuilt afterwards
      st.dirty = true;
      return st.building;
    }
    st.building = this.build(layer, st, mode)
      .catch((e) => {
        this.ctx.log.error({ layer: layer.name, err: (e as Error).message }, 'overviews: build failed; maps render from the source');
        this.setStatus(st, 'failed', (e as Error).message);
      })
      .finally(() => {
        st.building = undefined;
        st.lastBuildEnd = Date.now();
        if (st.dirty && !this.stopped) this.schedule(st);
      });
    return st.building;
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

  private async build(layer: Layer, st: State, mode: 'auto' | 'full'): Promise<void> {
    const cfg = this.layerConfig(layer);
    if (cfg === false) return;
    const cols = this.columnsFor(layer, cfg);
    if (typeof cols === 'string') return this.setStatus(st, 'disabled', cols);
    if (st.status !== 'stale' && st.status !== 'partial') this.setStatus(st, 'building');
    st.dirty = false;
    const t0 = Date.now();
    const S = this.opts.schema;
    const src = qualifiedTable(layer.schema, layer.table);
    const g = quoteIdent(layer.geometryColumn);
    const c = await this.ctx.pool.connect();
    let ok = false;
    let locked = false;
    try {
      // one build per table across server processes: the second one waits, then reuses the first's
      await c.query('SELECT pg_advisory_lock(hashtext($1))', [`geodata_overview:${st.source}`]);
      locked = true;
      const other = await this.findBuild(layer, cols, cfg);
      if (other && other.generation !== st.built?.generation) {
        ok = true;
        this.install(layer, st, other);
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
          this.ctx.log.warn({ layer: layer.name, cols }, 'overviews: style columns have too many value combinations; no overview');
          return this.setStatus(st, 'disabled', `more than ${this.opts.maxCombinations} combinations of ${cols.join(', ')}`);
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
      this.ctx.log.info({ layer: layer.name, buildMs, levels: levels.map((l) => `${l.cell}:${l.rows}`) }, 'overviews: built');
      if (this.stopped) return;
      this.stats.builds++;
      // a change logged while building and not in this snapshot stays pending
      this.install(layer, st, b, applied);
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
  private async incremental(c: pg.PoolClient, layer: Layer, st: State, cols: string[]): Promise<boolean> {
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
        const share = this.incrementalShare(
          st,
          { ...built, sourceRows, levels: built.levels.map((l, k) => ({ ...l, rows: stored[k].rows })) },
          cells,
        );
        if (share > this.opts.incrementalMaxShare) {
          this.ctx.log.info({ layer: layer.name, share, cells }, 'overviews: edits too wide for an incremental refresh; full rebuild');
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
      this.stats.refreshes++;
      this.ctx.log.info({ layer: layer.name, ms, edits: edits.length, cells }, 'overviews: refreshed incrementally');
      if (!this.stopped) this.install(layer, st, b, applied);
      return true;
    } finally {
      if (!done) await c.query('ROLLBACK').catch(() => undefined);
    }
  }

  /** The level to render from, or null (see overviewLayer). */
  pick(
    layer: Layer,
    rules: Rule[],
    o: { bbox: Extent; epsg: number; width: number; height: number },
    margin: number,
  ): { level: OverviewLevel; search: Extent; resN: number } | null {
    const st = this.states.get(`${layer.schema}.${layer.table}`);
    const b = st?.built;
    if (!this.use || !b || (st.status !== 'ready' && st.status !== 'partial') || b.levels[0].layer.geometryColumn !== 'geom') return null;
    // resolution of the renderer's query in the layer CRS (as layerQuery computes it)
    let search: Extent;
    try {
      const resx = (o.bbox.maxx - o.bbox.minx) / o.width;
      const resy = (o.bbox.maxy - o.bbox.miny) / o.height;
      search = transformExtent(
        {
          minx: o.bbox.minx - margin * resx,
          miny: o.bbox.miny - margin * resy,
          maxx: o.bbox.maxx + margin * resx,
          maxy: o.bbox.maxy + margin * resy,
        },
        o.epsg,
        layer.srid,
      );
    } catch {
      return null;
    }
    // edits pending: the rows this view reads must be those the refresh will leave as they are
    if (st.status === 'partial' && this.touchesPending(st, b, search)) return null;
    const resN = Math.min((search.maxx - search.minx) / (o.width + 2 * margin), (search.maxy - search.miny) / (o.height + 2 * margin));
    let level: OverviewLevel | undefined;
    for (const l of b.levels) if (l.minSize <= resN) level = l;
    if (!level) return null;
    const carried = new Set(b.columns);
    for (const r of rules) {
      if (r.symbolizers.some((s) => s.kind === 'text')) return null;
      if (r.filter) {
        const cols = filterColumns(r.filter);
        if (!cols || [...cols].some((x) => !carried.has(x))) return null;
      }
    }
    return { level, search, resN };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.checkTimer) clearInterval(this.checkTimer);
    for (const st of this.states.values()) if (st.timer) clearTimeout(st.timer);
    await Promise.all([...this.states.values()].map((s) => s.building)).catch(() => undefined);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => undefined);
    if (managers.get(this.ctx.pool) === this) managers.delete(this.ctx.pool);
  }
}

function denied(reply: FastifyReply) {
  return reply.code(401).header('WWW-Authenticate', 'Bearer realm="geodata-admin"').type('application/problem+json').send({
    type: 'about:blank',
    title: 'Unauthorized',
    status: 401,
    detail: 'admin role or token required (HTTP Basic of a user with role admin, or Authorization: Bearer <GEODATA_ADMIN_TOKEN>)',
  });
}

/** Start overview maintenance after the server is ready (not awaited: readiness does not wait for builds); GET /admin/overviews. */
export function registerOverviews(app: FastifyInstance, ctx: AppContext): void {
  const m = new OverviewManager(ctx);
  app.addHook('onReady', async () => {
    void m.start();
  });
  app.addHook('onClose', async () => {
    await m.stop();
  });
  app.get('/admin/overviews', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!isAdminRequest(req)) return denied(reply);
    return reply.send({ enabled: m.opts.enabled, minRows: m.opts.minRows, cellsPerPixel: m.opts.cellsPerPixel, overviews: m.status() });
  });
}
