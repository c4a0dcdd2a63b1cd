/**
 * Tile freshness: the tile cache's subscriber to the change feed (src/changes/). Small edits carry
 * the old and new extents of the changed rows and invalidate the tiles over them; bulk edits (more
 * than `bulkRows` rows, TRUNCATE) bump the table's data version, which is part of every cache key.
 * While the feed's connection is down no cached tile of a tracked table is served; after it comes
 * back every tracked table's version is bumped (events may have been missed). At start, changes
 * logged since the last one applied (kept in the disk cache folder) are replayed so the disk tier
 * is not stale after a restart.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type pg from 'pg';
import type { Change, ChangeFeed, ChangeSubscriber } from '../changes/index.js';
import type { Extent, Layer } from '../registry/types.js';

/** What freshness needs of the tile engine (src/tiles/engine.ts). */
export interface FreshnessTarget {
  readonly opts: { diskDir: string | null; maxInvalidateTiles: number };
  readonly versions: Map<string, number>;
  readonly bypass: Set<string>;
  readonly stats: { bumps: number; changes: number };
  readonly cache: { deletePrefix(prefix: string): Promise<number> };
  bumpEpoch(layerName: string): void;
  layerPrefix(layer: Layer | string, version?: number): string;
  countTilesOver(layer: Layer, boxes: Extent[], limit: number): number;
  invalidateBoxes(layer: Layer, boxes: Extent[]): Promise<number>;
  purgeLayer(layer: Layer): Promise<number>;
}

export class TileFreshness implements ChangeSubscriber {
  private lastId = 0;
  private stateTimer?: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly engine: FreshnessTarget,
    private readonly feed: ChangeFeed,
    private readonly env: { pool: pg.Pool; log: Logger; layers: () => Layer[] },
  ) {
    feed.subscribe(this);
  }

  /** Whether the feed's connection is up. */
  get connected(): boolean {
    return this.feed.connected;
  }

  private stateFile(): string | null {
    return this.engine.opts.diskDir ? path.join(this.engine.opts.diskDir, '.freshness.json') : null;
  }

  /** Versions, then the changes logged since the last one applied (called by the feed before it delivers any). */
  async prepare(): Promise<void> {
    await this.loadVersions();
    await this.replay();
  }

  private async loadVersions(): Promise<void> {
    const r = await this.env.pool.query('SELECT table_name, version FROM geodata_tiles.versions');
    for (const row of r.rows) this.setVersion(row.table_name, Number(row.version));
  }

  private setVersion(table: string, v: number): void {
    const old = this.engine.versions.get(table);
    if (old === v) {
      this.engine.bypass.delete(table);
      return;
    }
    this.engine.versions.set(table, v);
    this.engine.bypass.delete(table);
    if (old !== undefined) {
      this.engine.stats.bumps++;
      for (const layer of this.layersOf(table)) {
        this.engine.bumpEpoch(layer.name);
        // old versions are unreachable; free their space in the background
        void this.engine.cache.deletePrefix(this.engine.layerPrefix(layer, old)).catch(() => undefined);
      }
    }
  }

  private layersOf(table: string): Layer[] {
    return this.env.layers().filter((l) => `${l.schema}.${l.table}` === table);
  }

  /** Replay logged changes newer than the last one applied (from a previous run). */
  private async replay(): Promise<void> {
    const f = this.stateFile();
    const maxId = await this.feed.latestId();
    let last = maxId;
    let known = false;
    if (f) {
      try {
        last = Number(JSON.parse(readFileSync(f, 'utf8')).lastChangeId) || 0;
        known = true;
      } catch {
        last = maxId; // a fresh cache folder holds nothing stale
      }
    }
    this.lastId = last;
    if (last >= maxId) {
      // record the starting point at once, so that a crash before the first change cannot hide later ones
      if (!known) this.saveState();
      return;
    }
    const rows = await this.feed.since(last, 10001);
    if (rows.length > 10000) {
      for (const t of this.feed.tracked) for (const layer of this.layersOf(t)) await this.engine.purgeLayer(layer);
    } else {
      for (const c of rows) await this.apply(c, true);
    }
    this.lastId = maxId;
    this.saveState();
  }

  change(c: Change): Promise<void> {
    return this.apply(c, false);
  }

  /** While disconnected nothing is known about changes: serve no cached tile of tracked tables. */
  lost(): void {
    for (const t of this.feed.tracked) this.engine.bypass.add(t);
  }

  resumed(): Promise<void> {
    return this.bumpAll('reconnect');
  }

  /** After a connection loss: bump every tracked table's version (events may have been missed). */
  async bumpAll(why: string): Promise<void> {
    for (const t of this.feed.tracked) {
      try {
        await this.env.pool.query('SELECT geodata_tiles.bump($1, NULL, $2)', [t, why]);
      } catch (e) {
        this.env.log.warn({ table: t, err: (e as Error).message }, 'tile freshness: version bump failed');
      }
    }
    await this.loadVersions();
  }

  /** Resolves when every change heard so far has been applied. */
  idle(): Promise<void> {
    return this.feed.idle();
  }

  private async apply(c: Change, replaying: boolean): Promise<void> {
    const table = c.table;
    this.engine.stats.changes++;
    if (!c.boxes) {
      this.setVersion(table, Math.max(c.version, this.engine.versions.get(table) ?? 0));
    } else {
      for (const layer of this.layersOf(table)) {
        if (this.engine.countTilesOver(layer, c.boxes, this.engine.opts.maxInvalidateTiles) > this.engine.opts.maxInvalidateTiles) {
          // too many tiles to delete one by one: bump the version (once across processes)
          this.engine.bypass.add(table);
          this.engine.bumpEpoch(layer.name);
          await this.env.pool.query('SELECT geodata_tiles.bump($1, $2, $3)', [
            table,
            this.engine.versions.get(table) ?? c.version,
            'large-edit',
          ]);
          if (replaying) await this.loadVersions();
        } else {
          await this.engine.invalidateBoxes(layer, c.boxes);
        }
      }
    }
    if (c.id > this.lastId) this.lastId = c.id;
    this.saveStateSoon();
  }

  private saveStateSoon(): void {
    if (this.stateTimer || this.stopped) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      this.saveState();
    }, 500);
    this.stateTimer.unref();
  }

  private saveState(): void {
    const f = this.stateFile();
    if (!f) return;
    try {
      mkdirSync(path.dirname(f), { recursive: true });
      const tmp = `${f}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ lastChangeId: this.lastId }));
      renameSync(tmp, f);
    } catch (e) {
      this.env.log.warn({ err: (e as Error).message }, 'tile freshness: cannot save state');
    }
  }

  /** For tests: drop the feed's connection as a network failure would. */
  simulateConnectionLoss(): void {
    this.feed.simulateConnectionLoss();
  }

  /** Save the last applied change id (after the feed has stopped delivering). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.stateTimer) {
      clearTimeout(this.stateTimer);
      this.stateTimer = undefined;
    }
    await this.feed.idle().catch(() => undefined);
    if (this.lastId) this.saveState();
  }
}
