/**
 * The change feed: one module owns the change triggers, the connection that hears them, the
 * reconnection, and the replay of the log; the tile cache, the overviews and the catalogue
 * subscribe to it (src/runtime.ts wires them) instead of each keeping a LISTEN connection.
 *
 *   database triggers ──NOTIFY id──▶ ChangeSource (PgListenSource) ──▶ ChangeFeed ──▶ subscribers
 *                                                                      │  reads the logged row,
 *                                                                      │  delivers in id order
 *
 * A source is anything that tells the feed about logged changes: PostgreSQL LISTEN today; a
 * pub/sub bridge between processes (Redis) can be another one, delivering whole changes. A
 * process that forwards changes elsewhere is a subscriber that publishes what it receives.
 *
 * Subscribers see, in order: prepare() once before any change is delivered (load state, replay
 * what they missed with since()), change() for each logged change, lost() when the source drops
 * (changes may be missed from then on) and resumed() when it is back (what happened in between is
 * unknown: resynchronise).
 */
import pg from 'pg';
import type { Logger } from 'pino';
import type { Extent, Layer } from '../registry/types.js';
import { CHANNEL, ensureChangeLog, installTriggers, isTable } from './schema.js';

/** One logged change of a source table. */
export interface Change {
  id: number;
  /** schema.table */
  table: string;
  /** INSERT | UPDATE | DELETE | TRUNCATE (edits), or the reason of a data-version bump (large-edit, reconnect). */
  op: string;
  /** Old and new boxes of the changed rows (table CRS); null for a bulk edit, TRUNCATE or a bump: the whole table. */
  boxes: Extent[] | null;
  /** The table's data version after the change. */
  version: number;
  /**
   * The primary's WAL insert position read once the change was committed (pg_lsn text): a read
   * replica that has replayed this far sees the change (src/db/replicas.ts). Absent when unknown.
   */
  lsn?: string;
}

export interface ChangeSubscriber {
  /** Before the first delivery, once the triggers exist (load state, replay the log since a saved id). */
  prepare?(): Promise<void>;
  change?(c: Change): Promise<void> | void;
  lost?(): void;
  resumed?(): Promise<void> | void;
}

export interface ChangeSourceHandler {
  /** A logged change: its id (the feed reads the row), or the change itself. */
  notice(c: number | Change): void;
  lost(): void;
  resumed(): void;
}

/** Where the feed hears of changes. */
export interface ChangeSource {
  readonly connected: boolean;
  open(h: ChangeSourceHandler): Promise<void>;
  close(): Promise<void>;
  /** For tests: drop the connection as a network failure would. */
  simulateLoss?(): void;
}

export interface ChangeFeedOptions {
  pool: pg.Pool;
  /** The published layers (their tables get the triggers). */
  layers: () => Layer[];
  log: Logger;
  /** false: no triggers, no connection (tiles.freshness: false). */
  enabled: boolean;
  /** Statements changing more rows than this log no boxes (the table's version is bumped instead). */
  bulkRows: number;
  /** Default: one PgListenSource on the pool's database. */
  sources?: ChangeSource[];
}

interface ChangeRow {
  id: string;
  table_name: string;
  op: string;
  boxes: number[][] | null;
  version: string;
  lsn?: string | null;
}

const toChange = (r: ChangeRow): Change => ({
  id: Number(r.id),
  table: r.table_name,
  op: r.op,
  boxes: r.boxes ? r.boxes.map((b) => ({ minx: Number(b[0]), miny: Number(b[1]), maxx: Number(b[2]), maxy: Number(b[3]) })) : null,
  version: Number(r.version),
  ...(r.lsn ? { lsn: r.lsn } : {}),
});

/** The logged change's columns, and the primary's WAL position now (after its commit: the row is visible). */
const CHANGE_COLUMNS = 'id, table_name, op, boxes, version, pg_current_wal_insert_lsn()::text AS lsn';

export class ChangeFeed {
  private readonly subscribers = new Set<ChangeSubscriber>();
  private readonly sources: ChangeSource[];
  private chain: Promise<void> = Promise.resolve();
  private started?: Promise<boolean>;
  private stopped = false;
  /** Tables (schema.table) carrying the triggers. */
  readonly tracked = new Set<string>();
  readonly stats = { delivered: 0 };

  constructor(readonly opts: ChangeFeedOptions) {
    this.sources = opts.sources ?? [new PgListenSource(opts.pool, opts.log)];
  }

  get enabled(): boolean {
    return this.opts.enabled;
  }

  /** Whether every source is connected. */
  get connected(): boolean {
    return this.sources.every((s) => s.connected);
  }

  /** Subscribe; returns the function that unsubscribes. */
  subscribe(s: ChangeSubscriber): () => void {
    this.subscribers.add(s);
    return () => this.subscribers.delete(s);
  }

  /**
   * Start once (triggers, subscribers' prepare, sources); resolves true when the feed runs,
   * false when disabled or when it could not start (changes are then not followed).
   */
  ready(): Promise<boolean> {
    if (!this.started) {
      this.started = this.opts.enabled
        ? this.start().then(
            () => true,
            (e) => {
              this.opts.log.error({ err: (e as Error).message }, 'change feed could not start: edits are not followed');
              return false;
            },
          )
        : Promise.resolve(false);
    }
    return this.started;
  }

  private async start(): Promise<void> {
    const client = await this.opts.pool.connect();
    try {
      await client.query('SELECT pg_advisory_lock(hashtext($1))', ['geodata_tiles_setup']);
      try {
        await ensureChangeLog(client);
        for (const layer of this.opts.layers()) {
          const table = `${layer.schema}.${layer.table}`;
          if (!(await isTable(client, layer))) {
            this.opts.log.info(
              { layer: layer.name },
              'change feed: not a table (view?), no change triggers; purge its tiles through the admin endpoint after edits',
            );
            continue;
          }
          try {
            await installTriggers(client, layer, this.opts.bulkRows);
            this.tracked.add(table);
          } catch (e) {
            this.opts.log.warn(
              { layer: layer.name, err: (e as Error).message },
              'change feed: cannot install change triggers (role lacks the right?); edits of this layer are not followed',
            );
          }
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['geodata_tiles_setup']).catch(() => undefined);
      }
    } finally {
      client.release();
    }
    for (const s of this.subscribers) {
      // one subscriber that cannot prepare (e.g. replay) does not keep the others from their changes
      await s.prepare?.().catch((e) => this.opts.log.error({ err: (e as Error).message }, 'change feed: a subscriber could not prepare'));
    }
    const handler: ChangeSourceHandler = {
      notice: (c) => this.enqueue(async () => this.deliver(typeof c === 'number' ? await this.get(c) : c)),
      lost: () => {
        for (const s of this.subscribers) s.lost?.();
      },
      resumed: () =>
        this.enqueue(async () => {
          for (const s of this.subscribers) await s.resumed?.();
        }),
    };
    for (const src of this.sources) await src.open(handler);
  }

  private enqueue(fn: () => Promise<void>): void {
    this.chain = this.chain
      .then(fn)
      .catch((e) => this.opts.log.warn({ err: (e as Error).message }, 'change feed: delivering a change failed'));
  }

  private async deliver(c: Change | undefined): Promise<void> {
    if (!c || this.stopped) return;
    this.stats.delivered++;
    for (const s of this.subscribers) {
      try {
        await s.change?.(c);
      } catch (e) {
        this.opts.log.warn({ err: (e as Error).message, change: c.id }, 'change feed: a subscriber failed to apply a change');
      }
    }
  }

  /** One logged change. */
  async get(id: number): Promise<Change | undefined> {
    const r = await this.opts.pool.query(`SELECT ${CHANGE_COLUMNS} FROM geodata_tiles.changes WHERE id = $1`, [id]);
    return r.rows[0] ? toChange(r.rows[0] as ChangeRow) : undefined;
  }

  /** Logged changes after an id, in order (replay), at most `limit`; optionally of one table. */
  async since(afterId: number, limit: number, table?: string): Promise<Change[]> {
    const r = await this.opts.pool.query(
      `SELECT ${CHANGE_COLUMNS} FROM geodata_tiles.changes WHERE id > $1 ${table ? 'AND table_name = $3' : ''} ORDER BY id LIMIT $2`,
      table ? [afterId, limit, table] : [afterId, limit],
    );
    return (r.rows as ChangeRow[]).map(toChange);
  }

  /** Id of the last logged change (0 when none). */
  async latestId(client: pg.Pool | pg.PoolClient = this.opts.pool): Promise<number> {
    return Number((await client.query('SELECT coalesce(max(id), 0) AS m FROM geodata_tiles.changes')).rows[0].m);
  }

  /** Resolves when every change heard so far has been delivered. */
  idle(): Promise<void> {
    return this.chain;
  }

  /** For tests: drop the connection of every source as a network failure would. */
  simulateConnectionLoss(): void {
    for (const s of this.sources) s.simulateLoss?.();
  }

  async close(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.sources.map((s) => s.close()));
    await this.chain.catch(() => undefined);
  }
}

/** LISTEN on the database's channel, on a connection of its own; reconnects every second after a loss. */
export class PgListenSource implements ChangeSource {
  private client?: pg.Client;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private handler?: ChangeSourceHandler;
  connected = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger,
  ) {}

  async open(h: ChangeSourceHandler): Promise<void> {
    this.handler = h;
    await this.listen(false);
  }

  private async listen(reconnect: boolean): Promise<void> {
    if (this.stopped) return;
    const client = new pg.Client({
      ...(this.pool as unknown as { options: pg.ClientConfig }).options,
      application_name: 'geodata-changes-listen',
    } as pg.ClientConfig);
    client.on('error', (e) => this.log.warn({ err: e.message }, 'change feed: LISTEN connection lost'));
    client.on('end', () => {
      this.connected = false;
      if (this.stopped || this.client !== client) return;
      this.client = undefined;
      this.scheduleReconnect();
    });
    client.on('notification', (msg) => {
      if (msg.channel !== CHANNEL || !msg.payload) return;
      this.handler?.notice(Number(msg.payload));
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (e) {
      this.log.warn({ err: (e as Error).message }, 'change feed: cannot LISTEN; retrying');
      await client.end().catch(() => undefined);
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.connected = true;
    if (reconnect) this.handler?.resumed();
  }

  private scheduleReconnect(): void {
    if (this.stopped || this.timer) return;
    this.handler?.lost();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.listen(true);
    }, 1000);
    this.timer.unref();
  }

  simulateLoss(): void {
    const c = this.client as unknown as { connection?: { stream?: { destroy(): void } } } | undefined;
    c?.connection?.stream?.destroy();
  }

  async close(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    const c = this.client;
    this.client = undefined;
    this.connected = false;
    await c?.end().catch(() => undefined);
  }
}
