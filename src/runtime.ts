/**
 * The runtime: everything in the application that outlives a request, built once at start in
 * this one place and handed to every request through its context (`ctx.runtime`). Nothing
 * long-lived is found any other way (no module-level map keyed by pool, config or context).
 *
 *   shared                what the processes of a cluster share beyond PostgreSQL (Redis: locks, counters)
 *   metrics, usage        Prometheus registry; usage statistics flushed to the database
 *   auth                  authenticator (users, API keys, realm)
 *   features              the feature engine's database: pool + stream gate + query limits
 *   gates.render          WMS GetMap renders (limits.maxConcurrentRenders / renderQueue)
 *   gates.stream          feature streams (limits.maxConcurrentExports / exportQueue)
 *   changes               the change feed (src/changes/): triggers, LISTEN, reconnect, replay
 *   overviews             pre-generalised tables of big layers (src/overviews/), a feed subscriber
 *   render                the renderer's context: pool + the overviews as its layer source
 *   tiles                 the tile engine and its cache tiers; its freshness is a feed subscriber
 *   catalog               keeps the catalogue's local records in step (registry reloads, edits)
 *   catalogCache          answers of catalogue searches (CSW GetRecords, DCAT pages) keyed by the
 *                         catalogue's version in the database (src/catalog/search-cache.ts)
 *   sldDocuments          documents fetched for the WMS SLD parameter
 *   temporalExtents       OGC API collections' temporal extents, dropped on edits (a feed subscriber)
 *   pagePositions         where the pages of WFS walks ended (STARTINDEX read as a keyset; LRU
 *                         of PAGE_POSITIONS_MAX entries, each kept PAGE_POSITIONS_TTL_MS)
 *   tools                 the external tools that answer (GDAL's ogr2ogr), run once per command
 *   shedder               refuses new heavy requests while the event loop runs late (src/ops/shed.ts)
 *   reads                 the read router (src/db/replicas.ts): renders, tiles and feature reads on
 *                         database.replicas that have replayed the tables' last edits, else the primary
 *   direct                the primary without the pooler (database.directUrl): the change feed and the
 *                         overview builds (LISTEN, session locks); the application pool when not set
 *
 * Lifecycle: start() before the server listens (usage table), startBackground() once it is
 * ready (overview builds), close() when it closes (overviews, change feed, tiles, usage).
 * The change feed itself starts on first need (the first tile, or the overviews).
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import type { Config } from './config/index.js';
import type { Registry } from './registry/registry.js';
import client from 'prom-client';
import { Metrics } from './ops/metrics.js';
import { LoadShedder } from './ops/shed.js';
import { UsageStats } from './ops/usage.js';
import { SharedState } from './ops/shared.js';
import { streamGate, type Gate } from './ops/gate.js';
import { Authenticator } from './security/auth.js';
import { RenderGate } from './render/queue.js';
import type { RenderContext } from './render/index.js';
import type { FeatureDb } from './features/stream.js';
import { ChangeFeed } from './changes/index.js';
import { OverviewManager } from './overviews/index.js';
import { TileEngine, tilesOptions, type TilesOptions } from './tiles/engine.js';
import type { CacheTier } from './tiles/cache.js';
import { CatalogSync } from './catalog/sync-state.js';
import { SearchCache } from './catalog/search-cache.js';
import { SldDocuments } from './services/wms/sld-documents.js';
import { TemporalExtents } from './registry/temporal.js';
import { labelSpriteBytes } from './render/draw.js';
import { setRenderProcesses } from './render/workers.js';
import { PagePositions } from './services/wfs/positions.js';
import { ToolProbe, toolCommands } from './features/tools.js';
import { ReadRouter } from './db/replicas.js';
import { createPool } from './db/pool.js';
import { checkDatabase } from './config/index.js';

/** What the runtime is built from: the configuration, the database pool, the registry, the logger. */
export interface RuntimeBase {
  config: Config;
  pool: pg.Pool;
  registry: Registry;
  log: Logger;
}

export interface RuntimeOptions {
  /** Tile engine options over the configuration's (tests, tools). */
  tiles?: Partial<TilesOptions>;
  /** Tile cache tiers instead of those the configuration describes. */
  tileTiers?: CacheTier[];
}

export class Runtime {
  readonly shared: SharedState;
  readonly metrics: Metrics;
  readonly usage: UsageStats;
  readonly auth: Authenticator;
  readonly gates: { readonly render: RenderGate; readonly stream: Gate };
  readonly features: FeatureDb;
  readonly changes: ChangeFeed;
  readonly overviews: OverviewManager;
  readonly render: RenderContext;
  readonly tiles: TileEngine;
  readonly catalog: CatalogSync;
  readonly sldDocuments = new SldDocuments();
  readonly temporalExtents: TemporalExtents;
  readonly pagePositions = new PagePositions();
  readonly catalogCache = new SearchCache();
  readonly tools: ToolProbe;
  readonly shedder: LoadShedder;
  readonly reads: ReadRouter;
  /** The primary without the pooler (database.directUrl), or the application pool. */
  readonly direct: pg.Pool;
  private readonly ownDirect?: pg.Pool;
  private closing?: Promise<void>;
  private started = false;

  constructor(base: RuntimeBase, opts: RuntimeOptions = {}) {
    const { config, pool, registry, log } = base;
    const limits = config.limits;
    // the full registry, whatever view a request has
    const layers = () => registry.list();
    this.shared = new SharedState(config.redis?.url, log);
    this.metrics = new Metrics(pool);
    const db = config.database;
    checkDatabase(config);
    if (db.directUrl)
      this.ownDirect = createPool({
        url: db.directUrl,
        max: 4,
        statementTimeoutMs: db.statementTimeoutMs,
        applicationName: 'geodata-server-direct',
        log,
      });
    this.direct = this.ownDirect ?? pool;
    this.reads = new ReadRouter(pool, {
      replicas: db.replicas,
      poolSize: db.replicaPoolSize,
      statementTimeoutMs: db.statementTimeoutMs,
      checkMs: db.replicaCheckMs,
      noStartupTimeout: db.transactionPooling,
      log,
      registry: this.metrics.registry,
    });
    const reads = this.reads.enabled ? this.reads : undefined;
    this.shedder = new LoadShedder(limits.shedEventLoopDelayMs);
    this.usage = new UsageStats(pool, log, config.ops.usageFlushSeconds, this.shared);
    this.auth = new Authenticator(config);
    this.tools = new ToolProbe(toolCommands(config));
    this.gates = {
      render: new RenderGate(
        Math.max(1, limits.maxConcurrentRenders),
        Math.max(0, limits.renderQueue),
        limits.maxQueueWaitMs,
        limits.orderedQueuePerSlot,
      ),
      stream: streamGate(limits.maxConcurrentExports, limits.exportQueue, limits.maxQueueWaitMs, limits.orderedQueuePerSlot),
    };
    this.gateMetrics();
    this.features = {
      pool,
      reads,
      streams: this.gates.stream,
      limits: { maxBboxAreaKm2: limits.maxBboxAreaKm2 },
      // through a transaction pooler the connection carries no statement_timeout: each stream's transaction sets it
      ...(db.transactionPooling ? { transactionPooling: true, statementTimeoutMs: db.statementTimeoutMs || undefined } : {}),
    };
    const tileOpts = { ...tilesOptions(config), ...opts.tiles };
    this.changes = new ChangeFeed({ pool: this.direct, layers, log, enabled: tileOpts.freshness, bulkRows: tileOpts.bulkRows });
    // the read router hears each edit before the tile cache drops its tiles (subscribers run in order)
    if (reads) this.changes.subscribe(reads);
    this.overviews = new OverviewManager({
      config,
      pool: this.direct,
      log,
      layers,
      feed: this.changes,
      metrics: this.metrics,
      written: reads ? (table) => reads.written(table) : undefined,
    });
    this.render = { pool, reads, source: this.overviews, prepare: !db.transactionPooling };
    // render workers per process from the cluster's size (src/render/workers.ts)
    setRenderProcesses(config.server.processes);
    this.tiles = new TileEngine(
      { config, pool, log, layers, render: this.render, feed: this.changes, metrics: this.metrics, shared: this.shared },
      opts.tiles,
      opts.tileTiers,
    );
    this.metrics.memorySource('tile_memory_tier', () => this.tiles.cache.memory?.bytes ?? 0);
    this.metrics.memorySource('sld_documents', () => this.sldDocuments.bytes);
    this.metrics.memorySource('label_sprites', labelSpriteBytes);
    this.temporalExtents = new TemporalExtents(pool);
    this.changes.subscribe(this.temporalExtents);
    this.catalog = new CatalogSync(registry);
    this.changes.subscribe(this.catalog);
  }

  /** Slots held and requests waiting at each gate (queue depth and saturation, for dashboards and alerts). */
  private gateMetrics(): void {
    const gates = () => ({ render: this.gates.render, stream: this.gates.stream, tile_render: this.tiles?.gate });
    new client.Gauge({
      name: 'geodata_gate_slots',
      help: 'Work gates (render: WMS GetMap, tile_render: metatiles and vector tiles, stream: feature streams): slots active and their max, requests queued and the queue bound',
      labelNames: ['gate', 'state'],
      registers: [this.metrics.registry],
      collect() {
        for (const [gate, g] of Object.entries(gates())) {
          if (!g) continue;
          this.set({ gate, state: 'active' }, g.active);
          this.set({ gate, state: 'max' }, g.max);
          this.set({ gate, state: 'queued' }, g.queued);
          this.set({ gate, state: 'queue_max' }, g.queue);
        }
      },
    });
    const shedder = this.shedder;
    new client.Counter({
      name: 'geodata_gate_refused_total',
      help: 'Requests refused with 503 before any work, by gate and reason: full (queue bound), wait (expected wait in a short queue over limits.maxQueueWaitMs), standing (an old waiter of a standing queue), timeout (not served within limits.maxQueueWaitMs), event_loop (gate "shed": heavy requests refused while the event loop ran late)',
      labelNames: ['gate', 'reason'],
      registers: [this.metrics.registry],
      collect() {
        this.reset();
        for (const [gate, g] of Object.entries(gates())) {
          if (!g) continue;
          for (const [reason, n] of Object.entries(g.refused)) this.inc({ gate, reason }, n);
        }
        this.inc({ gate: 'shed', reason: 'event_loop' }, shedder.shed);
      },
    });
  }

  /** Before the server listens. */
  async start(): Promise<void> {
    this.started = true;
    this.reads.start();
    await this.usage.start();
  }

  /** Once the server is ready: work that must not delay readiness (overview builds). */
  startBackground(): void {
    void this.overviews.start();
  }

  /** Stop background work, the change feed, the cache tiers; flush usage statistics; close Redis. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.shedder.close();
      await this.overviews.stop();
      await this.changes.close();
      await this.tiles.close();
      if (this.started) await this.usage.close();
      await this.shared.close();
      await this.reads.close();
      await this.ownDirect?.end();
    })();
    return this.closing;
  }
}
