/**
 * The tile engine (no HTTP): cache keys, metatile rendering through the WMS renderer (drawn, cut
 * into tiles and encoded in a render worker: renderMetatile), vector tiles with ST_AsMVT, request coalescing, and freshness (data versions
 * and bbox-targeted invalidation: src/tiles/freshness.ts, a subscriber of the change feed).
 * One engine per application, built by src/runtime.ts.
 */
import path from 'node:path';
import sharp from 'sharp';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import type { Metrics } from '../ops/metrics.js';
import type { ChangeFeed } from '../changes/index.js';
import type { Extent, Layer } from '../registry/types.js';
import { renderMetatile, resolveStyle, type RenderContext } from '../render/index.js';
import { layerStyles } from '../render/style.js';
import { RenderGate } from '../render/queue.js';
import { transformExtent } from '../crs/index.js';
import { quoteIdent, qualifiedTable } from '../db/pool.js';
import { counterFor, DiskTier, makeEntry, MemoryTier, RedisTier, TieredCache, type CacheTier, type TileEntry } from './cache.js';
import { MATRIX_SETS, tileExtent, tileRange, type TileMatrixSet } from './matrixsets.js';
import { TileFreshness } from './freshness.js';
import type { SharedState } from '../ops/shared.js';

export type TileFormat = 'png' | 'mvt';

export interface TilesOptions {
  memoryBytes: number;
  diskDir: string | null;
  redisUrl: string | null;
  redisTtlSeconds: number;
  metatile: number;
  buffer: number;
  maxAge: number;
  /** Statements changing more rows than this bump the layer version instead of invalidating boxes. */
  bulkRows: number;
  /** A box invalidation touching more tiles than this bumps the version instead. */
  maxInvalidateTiles: number;
  freshness: boolean;
}

export function tilesOptions(config: Config, env: NodeJS.ProcessEnv = process.env): TilesOptions {
  const t = (config.tiles ?? {}) as Record<string, any>;
  const disk =
    t.diskDir === null || t.diskDir === false ? null : (t.diskDir ?? env.TILES_DIR ?? path.join(process.cwd(), '.cache', 'tiles'));
  return {
    memoryBytes: t.memoryBytes ?? 64 * 1024 * 1024,
    diskDir: disk ? path.resolve(disk) : null,
    // the cluster's Redis (redis.url) holds the shared tier unless tiles.redisUrl names another (or null: none)
    redisUrl: t.redisUrl !== undefined ? t.redisUrl : (config.redis?.url ?? env.REDIS_URL ?? null),
    redisTtlSeconds: t.redisTtlSeconds ?? 0,
    metatile: t.metatile ?? 4,
    buffer: t.buffer ?? 64,
    maxAge: t.maxAge ?? 3600,
    bulkRows: t.bulkRows ?? 1000,
    maxInvalidateTiles: t.maxInvalidateTiles ?? 20000,
    freshness: t.freshness ?? true,
  };
}

export interface TileResult {
  entry: TileEntry;
  /** memory | disk | redis when served from cache; render | coalesced | other-process (rendered by another process of the cluster) otherwise. */
  source: string;
  hit: boolean;
}

export class TileOutOfRange extends Error {
  constructor(
    message: string,
    readonly locator: string,
  ) {
    super(message);
  }
}

const SAFE = /[^A-Za-z0-9_.-]/g;
export const safeName = (s: string) => s.replace(SAFE, (c) => `%${c.charCodeAt(0).toString(16)}`);
const shard = (n: number) => `${String(Math.floor(n / 1000)).padStart(3, '0')}/${String(n % 1000).padStart(3, '0')}`;

/** What the tile engine is built from (src/runtime.ts). */
export interface TileEngineDeps {
  config: Config;
  pool: pg.Pool;
  log: Logger;
  /** The published layers (the full registry, not a caller's view). */
  layers: () => Layer[];
  /** The renderer's context (pool, overview source). */
  render: RenderContext;
  /** The change feed freshness subscribes to. */
  feed: ChangeFeed;
  metrics?: Metrics;
  /** The cluster's shared state: with Redis, one process renders a cold metatile and the others wait for it. */
  shared?: SharedState;
}

export class TileEngine {
  readonly opts: TilesOptions;
  readonly cache: TieredCache;
  readonly gate: RenderGate;
  readonly freshness: TileFreshness;
  /** table ('schema.table') → data version */
  readonly versions = new Map<string, number>();
  /** layer name → invalidation epoch (renders started before an invalidation are not stored) */
  private readonly epochs = new Map<string, number>();
  /** tables whose version bump is pending: bypass the cache until it arrives */
  readonly bypass = new Set<string>();
  /** metatile → its render here (null: another process rendered it into the shared tier) */
  private readonly inflight = new Map<string, Promise<Map<string, TileEntry> | null>>();
  private readonly layerExtents = new Map<string, Extent | null>();
  private blank?: Buffer;
  private started?: Promise<void>;
  /** ready() has resolved (the hit fast path answers only then). */
  isReady = false;
  readonly stats = {
    renders: 0,
    metatiles: 0,
    mvt: 0,
    coalesced: 0,
    /** Tiles another process rendered while this one waited for its lock (src/ops/shared.ts). */
    otherProcess: 0,
    invalidatedTiles: 0,
    bumps: 0,
    changes: 0,
  };
  private readonly count;

  constructor(
    readonly deps: TileEngineDeps,
    opts?: Partial<TilesOptions>,
    tiers?: CacheTier[],
  ) {
    const ctx = deps;
    this.opts = { ...tilesOptions(ctx.config), ...opts };
    this.count = counterFor(ctx.metrics);
    const t: CacheTier[] = tiers ?? [
      new MemoryTier(this.opts.memoryBytes, this.count),
      ...(this.opts.diskDir ? [new DiskTier(this.opts.diskDir)] : []),
      ...(this.opts.redisUrl
        ? [
            new RedisTier(this.opts.redisUrl, 'geodata:tile:', this.opts.redisTtlSeconds, (e) =>
              ctx.log.warn({ err: e.message }, 'redis tile tier error'),
            ),
          ]
        : []),
    ];
    this.cache = new TieredCache(t, this.count);
    this.gate = new RenderGate(
      Math.max(1, ctx.config.limits.maxConcurrentRenders),
      Math.max(16, ctx.config.limits.renderQueue),
      ctx.config.limits.maxQueueWaitMs,
      ctx.config.limits.orderedQueuePerSlot,
    );
    this.freshness = new TileFreshness(this, deps.feed, { pool: deps.pool, log: deps.log, layers: deps.layers });
  }

  /** Starts the change feed once (triggers, versions, replay, LISTEN); every tile request awaits it. */
  ready(): Promise<void> {
    if (!this.started) {
      this.started = this.opts.freshness
        ? this.deps.feed.ready().then((ok) => {
            if (!ok && this.deps.feed.enabled)
              this.deps.log.error('tile freshness tracking could not start; tiles are cached without invalidation');
          })
        : Promise.resolve();
      this.started.then(
        () => {
          this.isReady = true;
        },
        () => undefined,
      );
    }
    return this.started;
  }

  /** Saves the freshness state and closes the cache tiers (after the change feed has stopped). */
  async close(): Promise<void> {
    await this.freshness.stop();
    await this.cache.close();
  }

  tableOf(layer: Layer): string {
    return `${layer.schema}.${layer.table}`;
  }

  versionOf(layer: Layer): number {
    return this.versions.get(this.tableOf(layer)) ?? 0;
  }

  epochOf(layer: Layer): number {
    return this.epochs.get(layer.name) ?? 0;
  }

  bumpEpoch(layerName: string): void {
    this.epochs.set(layerName, (this.epochs.get(layerName) ?? 0) + 1);
  }

  /** Canonical style name of a raster tile (the default style under its real name). */
  styleName(layer: Layer, style?: string): string {
    return resolveStyle(layer, style).name;
  }

  layerPrefix(layer: Layer | string, version?: number): string {
    const name = typeof layer === 'string' ? layer : layer.name;
    return version === undefined ? `${safeName(name)}/` : `${safeName(name)}/v${version}/`;
  }

  key(
    layer: Layer,
    style: string,
    set: TileMatrixSet,
    z: number,
    col: number,
    row: number,
    format: TileFormat,
    version = this.versionOf(layer),
  ): string {
    return `${this.layerPrefix(layer, version)}${safeName(format === 'mvt' ? '_' : style)}/${set.id}/${z}/${shard(col)}/${shard(row)}.${format}`;
  }

  checkTile(set: TileMatrixSet, z: number, col: number, row: number): void {
    if (!Number.isInteger(z) || z < 0 || z >= set.matrices.length)
      throw new TileOutOfRange(`TileMatrix ${z} is not in TileMatrixSet ${set.id} (0-${set.matrices.length - 1})`, 'TileMatrix');
    const m = set.matrices[z];
    if (!Number.isInteger(row) || row < 0 || row >= m.matrixHeight)
      throw new TileOutOfRange(`TileRow ${row} is outside 0-${m.matrixHeight - 1} in TileMatrix ${z} of ${set.id}`, 'TileRow');
    if (!Number.isInteger(col) || col < 0 || col >= m.matrixWidth)
      throw new TileOutOfRange(`TileCol ${col} is outside 0-${m.matrixWidth - 1} in TileMatrix ${z} of ${set.id}`, 'TileCol');
  }

  /** Get a tile from the cache or render it (metatile for images, one query for vector tiles). */
  async getTile(
    layer: Layer,
    style: string | undefined,
    set: TileMatrixSet,
    z: number,
    col: number,
    row: number,
    format: TileFormat,
  ): Promise<TileResult> {
    this.checkTile(set, z, col, row);
    await this.ready();
    const sname = format === 'mvt' ? '_' : this.styleName(layer, style);
    const version = this.versionOf(layer);
    const key = this.key(layer, sname, set, z, col, row, format, version);
    const bypass = this.bypass.has(this.tableOf(layer));
    if (!bypass) {
      const hit = await this.cache.get(key);
      if (hit) return { entry: hit.entry, source: hit.tier, hit: true };
    }
    const n = format === 'mvt' ? 1 : Math.max(1, this.opts.metatile);
    const mx = Math.floor(col / n) * n;
    const my = Math.floor(row / n) * n;
    const flightKey = `${this.layerPrefix(layer, version)}${safeName(sname)}/${set.id}/${z}/${mx}/${my}.${format}`;
    let p = this.inflight.get(flightKey);
    let source = 'render';
    const render = () => {
      const epoch = this.epochOf(layer);
      return (
        format === 'mvt' ? this.renderMvt(layer, set, z, col, row, version) : this.renderMetatile(layer, sname, set, z, mx, my, version)
      ).then(async (tiles) => {
        // an invalidation during the render: serve the result, but do not keep it
        if (this.epochOf(layer) === epoch && !this.bypass.has(this.tableOf(layer))) {
          await Promise.all(
            [...tiles].map(([k, e]) =>
              this.cache.put(k, e).catch((err) => this.deps.log.warn({ err: (err as Error).message }, 'tile cache write failed')),
            ),
          );
        }
        return tiles;
      });
    };
    if (p) {
      this.stats.coalesced++;
      this.count('render', 'coalesced');
      source = 'coalesced';
    } else {
      p = (bypass ? render() : this.acrossProcesses(flightKey, key, render)).finally(() => this.inflight.delete(flightKey));
      this.inflight.set(flightKey, p);
    }
    let tiles = await p;
    if (!tiles) {
      // another process rendered it into the shared tier
      const hit = await this.cache.get(key);
      if (hit) {
        this.stats.otherProcess++;
        this.count('render', 'other-process');
        return { entry: hit.entry, source: 'other-process', hit: false };
      }
      tiles = await render(); // gone again (an invalidation, an eviction): render it here
      source = 'render';
    }
    const entry = tiles.get(key);
    if (!entry) throw new Error(`metatile render did not produce ${key}`);
    return { entry, source, hit: false };
  }

  /** The tier every process reads (Redis), when there is one. */
  private get sharedTier(): CacheTier | undefined {
    return this.cache.tiers.find((t) => t instanceof RedisTier);
  }

  /**
   * One render of a cold metatile across the processes sharing Redis: the process that takes the
   * lock renders (and stores into the shared tier before releasing it); the others wait for the
   * tile to appear there and resolve to null (read it from the cache). A lock whose holder died
   * expires after the longest a render may take; a render that could not be stored (an invalidation
   * during it) leaves nothing: a waiter then takes the lock itself.
   */
  private async acrossProcesses(
    flightKey: string,
    key: string,
    render: () => Promise<Map<string, TileEntry>>,
  ): Promise<Map<string, TileEntry> | null> {
    const shared = this.deps.shared;
    const tier = this.sharedTier;
    if (!shared?.redis || !tier) return render();
    const limits = this.deps.config.limits;
    const ttl = limits.renderTimeoutMs + limits.maxQueueWaitMs + 5000;
    const lock = `render:${flightKey}`;
    for (let attempt = 0; attempt < 3; attempt++) {
      const release = await shared.tryLock(lock, ttl);
      if (release) {
        try {
          return await render();
        } finally {
          await release();
        }
      }
      const until = Date.now() + ttl;
      for (;;) {
        await new Promise((r) => setTimeout(r, 40));
        if (await tier.get(key)) return null;
        if (!(await shared.locked(lock))) {
          if (await tier.get(key)) return null;
          break; // released without a stored tile: try to take it
        }
        if (Date.now() > until) break;
      }
    }
    return render();
  }

  private layerExtentIn(layer: Layer, set: TileMatrixSet): Extent | null {
    const k = `${layer.name}|${set.id}`;
    if (!this.layerExtents.has(k)) {
      let e: Extent | null = null;
      const src = layer.extent ?? layer.estimatedExtent;
      if (src) {
        try {
          e = transformExtent(src, layer.srid, set.epsg);
        } catch {
          e = null;
        }
      }
      this.layerExtents.set(k, e);
    }
    return this.layerExtents.get(k) ?? null;
  }

  private async blankPng(): Promise<Buffer> {
    this.blank ??= await sharp({ create: { width: 256, height: 256, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .png()
      .toBuffer();
    return this.blank;
  }

  private async renderMetatile(
    layer: Layer,
    style: string,
    set: TileMatrixSet,
    z: number,
    mx: number,
    my: number,
    version: number,
  ): Promise<Map<string, TileEntry>> {
    const m = set.matrices[z];
    const n = Math.max(1, this.opts.metatile);
    const cols = Math.min(n, m.matrixWidth - mx);
    const rows = Math.min(n, m.matrixHeight - my);
    const ts = set.tileSize;
    const out = new Map<string, TileEntry>();
    const ext = tileExtent(set, z, mx, my, cols, rows);
    const le = this.layerExtentIn(layer, set);
    const buf = Math.max(0, this.opts.buffer);
    const r = m.resolution;
    const bbox = { minx: ext.minx - buf * r, miny: ext.miny - buf * r, maxx: ext.maxx + buf * r, maxy: ext.maxy + buf * r };
    // nothing of the layer near this metatile (layers with an extent; 256 px margin for symbols): blank tiles
    if (
      le &&
      (le.minx > bbox.maxx + 256 * r || le.maxx < bbox.minx - 256 * r || le.miny > bbox.maxy + 256 * r || le.maxy < bbox.miny - 256 * r)
    ) {
      const blank = await this.blankPng();
      for (let j = 0; j < rows; j++)
        for (let i = 0; i < cols; i++) out.set(this.key(layer, style, set, z, mx + i, my + j, 'png', version), makeEntry(blank));
      return out;
    }
    const width = cols * ts + 2 * buf;
    const height = rows * ts + 2 * buf;
    this.stats.renders++;
    this.stats.metatiles++;
    this.count('render', 'render');
    // drawn, cut and each tile encoded in a render worker (the event loop stays free), else here
    const pngs = await this.gate.run(() =>
      renderMetatile(
        this.deps.render,
        {
          layers: [{ layer, style }],
          bbox,
          epsg: set.epsg,
          width,
          height,
          format: 'image/png',
          transparent: true,
          timeoutMs: this.deps.config.limits.renderTimeoutMs,
        },
        { tile: ts, cols, rows, buffer: buf },
      ),
    );
    for (let j = 0; j < rows; j++)
      for (let i = 0; i < cols; i++) out.set(this.key(layer, style, set, z, mx + i, my + j, 'png', version), makeEntry(pngs[j * cols + i]));
    return out;
  }

  /** Vector tile: one SQL query (ST_AsMVTGeom + ST_AsMVT), 4096 extent, 64-unit buffer. */
  private async renderMvt(
    layer: Layer,
    set: TileMatrixSet,
    z: number,
    col: number,
    row: number,
    version: number,
  ): Promise<Map<string, TileEntry>> {
    const e = tileExtent(set, z, col, row);
    const span = e.maxx - e.minx;
    const b = (span * 64) / 4096;
    const out = new Map<string, TileEntry>();
    const key = this.key(layer, '_', set, z, col, row, 'mvt', version);
    const le = this.layerExtentIn(layer, set);
    if (le && (le.minx > e.maxx + b || le.maxx < e.minx - b || le.miny > e.maxy + b || le.maxy < e.miny - b)) {
      out.set(key, makeEntry(Buffer.alloc(0)));
      return out;
    }
    const search = transformExtent({ minx: e.minx - b, miny: e.miny - b, maxx: e.maxx + b, maxy: e.maxy + b }, set.epsg, layer.srid);
    const g = `t.${quoteIdent(layer.geometryColumn)}`;
    const geom = layer.srid === set.epsg ? g : `ST_Transform(${g}, ${set.epsg})`;
    const simple = new Set(['string', 'integer', 'long', 'number', 'boolean']);
    const cols = layer.fields.map((f) =>
      simple.has(f.type) && !f.pgType.startsWith('numeric')
        ? `t.${quoteIdent(f.name)}`
        : `t.${quoteIdent(f.name)}::text AS ${quoteIdent(f.name)}`,
    );
    const pkInt = layer.primaryKey && layer.fields.some((f) => f.name === layer.primaryKey && (f.type === 'integer' || f.type === 'long'));
    const sql = `SELECT ST_AsMVT(q, $1, 4096, '__geom'${pkInt ? ', $10' : ''}) AS mvt FROM (
      SELECT ${[...cols, `ST_AsMVTGeom(${geom}, ST_MakeEnvelope($2::float8, $3::float8, $4::float8, $5::float8, ${set.epsg})::box2d, 4096, 64, true) AS __geom`].join(', ')}
      FROM ${qualifiedTable(layer.schema, layer.table)} t
      WHERE ${g} && ST_MakeEnvelope($6::float8, $7::float8, $8::float8, $9::float8, ${layer.srid})) q
      WHERE q.__geom IS NOT NULL`;
    this.stats.renders++;
    this.stats.mvt++;
    this.count('render', 'render');
    const reads = this.deps.render.reads;
    const run = (params: unknown[]) => (reads ? reads.query([this.tableOf(layer)], sql, params) : this.deps.pool.query(sql, params));
    const res = await this.gate.run(() =>
      run([
        layer.name,
        e.minx,
        e.miny,
        e.maxx,
        e.maxy,
        search.minx,
        search.miny,
        search.maxx,
        search.maxy,
        ...(pkInt ? [layer.primaryKey] : []),
      ]),
    );
    out.set(key, makeEntry((res.rows[0]?.mvt as Buffer) ?? Buffer.alloc(0)));
    return out;
  }

  /**
   * The tile ranges over an extent (in the layer's CRS) in every matrix set and zoom level,
   * widened by `marginPx` pixels of each level (labels and symbols reach over tile edges).
   */
  private *rangesOver(layer: Layer, box: Extent, marginPx: number, zooms?: [number, number]) {
    for (const set of MATRIX_SETS) {
      let e: Extent;
      try {
        e = transformExtent(box, layer.srid, set.epsg, 4);
      } catch {
        continue;
      }
      for (const m of set.matrices) {
        if (zooms && (m.zoom < zooms[0] || m.zoom > zooms[1])) continue;
        const pad = marginPx * m.resolution;
        const r = tileRange(set, m.zoom, { minx: e.minx - pad, miny: e.miny - pad, maxx: e.maxx + pad, maxy: e.maxy + pad });
        if (r) yield { set, zoom: m.zoom, r };
      }
    }
  }

  /** Keys of every cached tile of a layer over an extent (in the layer's CRS), all sets, styles and formats. */
  *keysOver(layer: Layer, box: Extent, zooms?: [number, number], marginPx = 128): Generator<string> {
    const styles = [...layerStyles(layer).styles.keys()];
    const version = this.versionOf(layer);
    for (const { set, zoom, r } of this.rangesOver(layer, box, marginPx, zooms)) {
      for (let col = r.minCol; col <= r.maxCol; col++) {
        for (let row = r.minRow; row <= r.maxRow; row++) {
          for (const s of styles) yield this.key(layer, s, set, zoom, col, row, 'png', version);
          yield this.key(layer, '_', set, zoom, col, row, 'mvt', version);
        }
      }
    }
  }

  /** Number of tiles over boxes (for the bulk decision), stopping at `limit`. */
  countTilesOver(layer: Layer, boxes: Extent[], limit: number, marginPx = 128): number {
    let n = 0;
    for (const box of boxes) {
      for (const { r } of this.rangesOver(layer, box, marginPx)) {
        n += (r.maxCol - r.minCol + 1) * (r.maxRow - r.minRow + 1);
        if (n > limit) return n;
      }
    }
    return n;
  }

  /** Delete the tiles of a layer over boxes (layer CRS) from every tier. */
  async invalidateBoxes(layer: Layer, boxes: Extent[], zooms?: [number, number]): Promise<number> {
    this.bumpEpoch(layer.name);
    let n = 0;
    const batch: Promise<void>[] = [];
    for (const box of boxes) {
      for (const k of this.keysOver(layer, box, zooms)) {
        batch.push(this.cache.delete(k));
        n++;
        if (batch.length >= 256) await Promise.all(batch.splice(0));
      }
    }
    await Promise.all(batch);
    this.stats.invalidatedTiles += n;
    return n;
  }

  /** Purge a whole layer (every version) from every tier. */
  async purgeLayer(layer: Layer): Promise<number> {
    this.bumpEpoch(layer.name);
    return this.cache.deletePrefix(this.layerPrefix(layer));
  }
}
