/**
 * The overview manager: one per application (src/runtime.ts builds it). It keeps the state of each
 * big layer's overview, follows edits through the change feed (src/changes/) and schedules
 * refreshes, and answers the renderer's question "which table to draw this layer from" (it is the
 * renderer's LayerSource, handed to it in its RenderContext). The builds themselves are builder.ts's.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import client from 'prom-client';
import type { Config } from '../config/index.js';
import type { Metrics } from '../ops/metrics.js';
import type { Extent, Layer } from '../registry/types.js';
import type { Rule } from '../render/style.js';
import type { LayerSource } from '../render/index.js';
import { transformExtent } from '../crs/index.js';
import { EDIT_OPS, hasTriggers, type Change, type ChangeFeed, type ChangeSubscriber } from '../changes/index.js';
import { OverviewBuilder } from './builder.js';
import { levelQuery } from './query.js';
import {
  columnsFor,
  filterColumns,
  incrementalShare,
  layerConfig,
  overviewOptions,
  type LayerState,
  type OverviewBuild,
  type OverviewLevel,
  type OverviewOptions,
  type OverviewStatus,
} from './model.js';

/** What the manager is built from (src/runtime.ts). */
export interface OverviewDeps {
  config: Config;
  pool: pg.Pool;
  log: Logger;
  /** The published layers (the full registry). */
  layers: () => Layer[];
  feed: ChangeFeed;
  metrics?: Metrics;
  /** Told when a build of a source table's overview is put in use (read replicas must replay it first). */
  written?: (table: string) => void;
}

export class OverviewManager implements LayerSource, ChangeSubscriber {
  readonly opts: OverviewOptions;
  private readonly states = new Map<string, LayerState>();
  private readonly builder: OverviewBuilder;
  private readonly pool: pg.Pool;
  private readonly log: Logger;
  private readonly feed: ChangeFeed;
  private unsubscribe?: () => void;
  private checkTimer?: NodeJS.Timeout;
  stopped = false;
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

  constructor(private readonly deps: OverviewDeps) {
    this.opts = overviewOptions(deps.config.overviews);
    this.pool = deps.pool;
    this.log = deps.log;
    this.feed = deps.feed;
    this.builder = new OverviewBuilder(this.opts, deps.pool, deps.log, deps.config.limits.renderTimeoutMs || 30000, this);
    const reg = deps.metrics?.registry;
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
  }

  private get registry() {
    return { list: this.deps.layers };
  }

  /** Layers that should have an overview. */
  candidates(): Layer[] {
    if (!this.opts.enabled) return [];
    return this.registry.list().filter((l) => {
      const c = layerConfig(l);
      if (c === false) return false;
      const forced = (l.extra as Record<string, unknown>).overview === true || c.enabled === true;
      return forced || (l.rowEstimate ?? 0) > (c.minRows ?? this.opts.minRows);
    });
  }

  /** Start in the background; resolves when the first builds are done (tests await it, the server does not). */
  start(): Promise<void> {
    if (!this.started)
      this.started = this.run().catch((e) =>
        this.log.error({ err: (e as Error).message }, 'overviews: could not start; maps render from the source tables'),
      );
    return this.started;
  }

  private async run(): Promise<void> {
    const layers = this.candidates();
    if (!layers.length) return;
    await this.builder.setup();
    // the change triggers and the changes log belong to the change feed
    await this.feed.ready();
    if (this.stopped) return;
    this.unsubscribe = this.feed.subscribe(this);
    this.checkTimer = setInterval(() => void this.check().catch(() => undefined), this.opts.checkIntervalMs);
    this.checkTimer.unref();
    for (const layer of layers) {
      if (this.stopped) return;
      await this.ensure(layer);
    }
  }

  /** Change feed: a logged change of a table. */
  change(c: Change): void {
    this.changed(c.table, c);
  }

  /** Change feed: back after a connection loss; events may have been missed, the check finds them. */
  async resumed(): Promise<void> {
    await this.check().catch(() => undefined);
  }

  /**
   * The renderer's hook (LayerSource, called by drawMap for each layer): the SQL that reads the
   * layer's overview instead of the layer, in the row form of layerQuery (g = screen-space TWKB,
   * r<i> = rule matches), or null to render from the source. Synchronous and cheap.
   */
  query(
    layer: Layer,
    rules: Rule[],
    o: { bbox: Extent; epsg: number; width: number; height: number },
    margin: number,
  ): { text: string; values: unknown[] } | null {
    const pick = this.pick(layer, rules, o, margin);
    if (pick) this.stats.overviewRenders++;
    return pick ? levelQuery(pick.level, layer, rules, o, pick.search, pick.resN) : null;
  }

  /**
   * A change was logged for a source table: note the area it touches and schedule a refresh.
   * Renders keep using the overview away from the pending edits ('partial') when they can be
   * applied incrementally; otherwise ('stale') every render reads the source until the rebuild.
   */
  changed(source: string, ch: { id: number; op: string; boxes: Extent[] | null }): void {
    const st = this.states.get(source);
    if (!st || st.status === 'disabled') return;
    // a tile-cache version bump (large-edit, reconnect) repeats or covers logged edits: nothing to apply
    if (!EDIT_OPS.includes(ch.op)) return;
    if (st.pending.has(ch.id)) return;
    st.pending.set(ch.id, ch.boxes);
    st.dirty = true;
    if (st.status === 'ready' || st.status === 'partial') this.setStatus(st, this.pendingMode(st));
    this.schedule(st);
  }

  /** 'partial' when the pending edits can be applied cell by cell, 'stale' when they need a full rebuild. */
  private pendingMode(st: LayerState): 'partial' | 'stale' {
    const b = st.built;
    if (!b) return 'stale';
    const centres: [number, number][] = [];
    for (const boxes of st.pending.values()) {
      if (!boxes) return 'stale';
      for (const x of boxes) centres.push([(x.minx + x.maxx) / 2, (x.miny + x.maxy) / 2]);
      if (centres.length > 100000) return 'stale';
    }
    const counts = b.levels.map((l) => new Set(centres.map(([x, y]) => `${Math.floor(x / l.cell)},${Math.floor(y / l.cell)}`)).size);
    return incrementalShare(st, b, counts) <= this.opts.incrementalMaxShare ? 'partial' : 'stale';
  }

  /** Whether a view's search extent reaches an area a pending edit may change in the overview. */
  private touchesPending(st: LayerState, b: OverviewBuild, search: Extent): boolean {
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

  private schedule(st: LayerState): void {
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
        const layer = this.registry.list().find((l) => `${l.schema}.${l.table}` === st.source);
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
      const seen = st.pending;
      for (const c of await this.feed.since(st.built.changeId, 1000 + seen.size, st.source))
        if (!seen.has(c.id)) this.changed(st.source, c);
    }
  }

  setStatus(st: LayerState, status: OverviewStatus, reason?: string): void {
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

  private state(layer: Layer): LayerState {
    const source = `${layer.schema}.${layer.table}`;
    let st = this.states.get(source);
    if (!st) {
      st = { source, layerName: layer.name, status: 'pending', dirty: false, pending: new Map(), extent: layer.extent, lastBuildEnd: 0 };
      this.states.set(source, st);
      this.gauges?.ready.set({ layer: layer.name }, 0);
    }
    return st;
  }

  /** Use a fresh existing build, or build one. */
  async ensure(layer: Layer): Promise<void> {
    const st = this.state(layer);
    const cfg = layerConfig(layer);
    if (cfg === false) return this.setStatus(st, 'disabled', 'disabled in config');
    const cols = columnsFor(layer, cfg);
    if (typeof cols === 'string') {
      this.log.warn({ layer: layer.name, reason: cols }, 'overviews: not built');
      return this.setStatus(st, 'disabled', cols);
    }
    if (!(await hasTriggers(this.pool, layer.schema, layer.table))) {
      this.log.warn(
        { layer: layer.name },
        'overviews: the table has no change triggers (tiles.freshness off, a view, or no right): no overview, it could not be kept fresh',
      );
      return this.setStatus(st, 'disabled', 'no change triggers on the source (tiles.freshness)');
    }
    // an existing build with the same parameters and no change since its snapshot is reused (restarts, other instances)
    const existing = await this.builder.findBuild(layer, cols, cfg);
    if (existing) {
      this.install(layer, st, existing);
      this.log.info({ layer: layer.name, builtAt: existing.builtAt }, 'overviews: reusing an up-to-date overview');
      return;
    }
    await this.rebuild(layer, st, 'full');
  }

  install(layer: Layer, st: LayerState, b: OverviewBuild, applied?: number[]): void {
    const old = st.built;
    this.deps.written?.(st.source);
    st.built = b;
    if (applied) for (const id of applied) st.pending.delete(id);
    else for (const id of st.pending.keys()) if (id <= b.changeId) st.pending.delete(id);
    st.dirty = st.pending.size > 0;
    st.firstChangeAt = undefined;
    this.setStatus(st, st.dirty ? this.pendingMode(st) : 'ready');
    this.gauges?.built.set({ layer: layer.name }, b.builtAt.getTime() / 1000);
    this.gauges?.buildSeconds.set({ layer: layer.name }, b.buildMs / 1000);
    b.levels.forEach((l, i) => this.gauges?.rows.set({ layer: layer.name, level: String(i) }, l.rows));
    if (!old || old.generation !== b.generation) void this.builder.dropOlder(st.source, b.generation);
  }

  /**
   * Build a layer's overview now (benchmarks, tests), whatever its state: 'full' rebuilds it,
   * 'auto' applies the logged edits cell by cell when they are few enough (as scheduled refreshes do).
   */
  refresh(layer: Layer, mode: 'auto' | 'full' = 'full'): Promise<void> {
    return this.rebuild(layer, this.state(layer), mode);
  }

  private rebuild(layer: Layer, st: LayerState, mode: 'auto' | 'full'): Promise<void> {
    if (st.building) {
      // a change arrived during a build: it will be rebuilt afterwards
      st.dirty = true;
      return st.building;
    }
    st.building = this.builder
      .build(layer, st, mode)
      .catch((e) => {
        this.log.error({ layer: layer.name, err: (e as Error).message }, 'overviews: build failed; maps render from the source');
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

  }

  /** The level to render from, or null (see overviewLayer). */
  /** The level to render from, or null (see query()). */
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
    this.unsubscribe?.();
    if (this.checkTimer) clearInterval(this.checkTimer);
    for (const st of this.states.values()) if (st.timer) clearTimeout(st.timer);
    await Promise.all([...this.states.values()].map((s) => s.building)).catch(() => undefined);
  }
}
