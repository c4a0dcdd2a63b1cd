/**
 * Streaming execution: a pg-query-stream cursor per query, rows (already serialised by PostGIS)
 * handed to a writer, text pushed into a Readable with backpressure. Destroying the Readable
 * (client gone) closes the cursor and returns the connection to the pool at once.
 */
import { Readable } from 'node:stream';
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import { ClientGone, type Gate, type QueryLimits } from '../ops/gate.js';
export { ClientGone };
import { bboxAreaKm2 } from '../crs/area.js';
import {
  buildCountSql,
  buildFeatureSql,
  FeatureQueryError,
  MATCHED_COLUMN,
  type FeatureFormat,
  type FeatureQuery,
  type FeatureRow,
  type SelectOptions,
} from './query.js';
import type { CollectionInfo, FeatureWriter } from './writers/types.js';
import type { ReadRouter } from '../db/replicas.js';

export interface FeatureStreamOptions {
  /** Queries run in order into one collection (several layers, or pages of one). */
  queries: FeatureQuery[];
  writer: FeatureWriter;
  info: CollectionInfo;
  /** Rows fetched per cursor round trip (default 1000). */
  batchSize?: number;
  /** Bytes gathered before a chunk is pushed (default 64 KiB). */
  chunkChars?: number;
  /**
   * Called after the last row, before the footer, with a query function on the stream's own
   * connection and the number of features written; what it returns is merged into the info the
   * footer sees. Lets footer-based formats (GeoJSON) learn numberMatched without a count query
   * when the page was not full, and count on the same connection otherwise (no second connection).
   */
  finalize?: (run: SqlRunner, returned: number, matched?: number) => Promise<Partial<CollectionInfo>>;
  /**
   * Ask the page queries to carry numberMatched (SelectOptions.countMatched): where a query can,
   * finalize then receives the count of all matches (summed over the queries) as `matched`, and
   * need not run a count of its own. Undefined when any query could not, or returned no row.
   */
  countMatched?: boolean;
  /**
   * Write the header only once numberMatched is known, from the page itself (with countMatched,
   * for one query that can carry it: see inlineCountable): called with the count the first row
   * carries, or at the end of an empty page with `run` on the stream's connection (to count when
   * the page lies past the end); what it returns is merged into the info the header and the footer see.
   */
  header?: (matched: number | undefined, run?: SqlRunner) => Promise<Partial<CollectionInfo>>;
  /** Told how many features were written once the stream is complete (metrics, usage statistics). */
  onComplete?: (written: number) => void;
  /** Aborted when the client goes away (clientSignal): stops the work and releases everything at once. */
  signal?: AbortSignal;
}

/**
 * Where the feature engine runs: the pool, and the application's bounds (src/runtime.ts builds
 * one: runtime.features). A bare pool runs unbounded (tests, tools).
 */
export interface FeatureDb {
  pool: pg.Pool;
  /** Read replicas (src/db/replicas.ts): pages, counts and streams of a layer run on one that has replayed its last edits. */
  reads?: ReadRouter;
  /** Set in each stream's transaction (the pool's connections carry none behind a transaction pooler). */
  statementTimeoutMs?: number;
  /** The pool goes through a pooler in transaction mode: no startup options (PGOPTIONS) for other clients of it. */
  transactionPooling?: boolean;
  /** At most this many streams hold a connection at once; a few wait, the rest get ServerBusy. */
  streams?: Gate;
  limits?: QueryLimits;
}

export type FeatureDbLike = pg.Pool | FeatureDb;

/** The FeatureDb of a pool or FeatureDb. */
export function featureDb(db: FeatureDbLike): FeatureDb {
  return 'pool' in db && !('connect' in db) ? db : { pool: db as pg.Pool };
}

export type SqlRunner = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

/** Exact count of features matching a query, on a given connection/runner. */
export async function countWith(run: SqlRunner, q: FeatureQuery): Promise<number> {
  const { sql, params } = buildCountSql(q);
  const rows = await run(sql, params);
  return Number(rows[0].n);
}

/** Refuse a query whose bbox is larger than the application allows (limits.maxBboxAreaKm2). */
export function checkQueryLimits(db: FeatureDbLike, q: FeatureQuery): void {
  const max = featureDb(db).limits?.maxBboxAreaKm2;
  if (!max || !q.bbox) return;
  const area = bboxAreaKm2(q.bbox, q.bbox.epsg);
  if (area > max) {
    throw new FeatureQueryError(
      `the bbox covers ${Math.round(area).toLocaleString('en')} km², more than the ${max.toLocaleString('en')} km² this server allows in one request`,
      'bbox',
    );
  }
}

/**
 * Run one statement of the engine that is not a stream (a count, a keyset anchor, a small page)
 * under the same discipline as the streams: a slot of the stream gate first (bounded wait,
 * ServerBusy beyond; the client leaving gives the place up), then a pooled connection for the
 * statement alone; both given back on every outcome. A burst of counts or deep pages then waits
 * or is refused at the gate instead of taking every connection of the pool.
 */
export async function engineQuery<R extends Record<string, unknown> = Record<string, unknown>>(
  db: FeatureDbLike,
  sql: string,
  params: unknown[],
  signal?: AbortSignal,
  /** The queries the statement reads: with them, it may run on a read replica (FeatureDb.reads). */
  reads?: FeatureQuery[],
): Promise<R[]> {
  const fdb = featureDb(db);
  const release = fdb.streams ? await fdb.streams.acquire(signal) : () => {};
  try {
    if (signal?.aborted) throw new ClientGone();
    if (fdb.reads && reads) return (await fdb.reads.query<R>(tablesOf(reads), sql, params)).rows;
    return (await fdb.pool.query<R>(sql, params)).rows;
  } finally {
    release();
  }
}

/** Exact count of features matching a query (limit/offset ignored), through the stream gate. */
export async function countFeatures(db: FeatureDbLike, q: FeatureQuery, signal?: AbortSignal): Promise<number> {
  checkQueryLimits(db, q);
  const { sql, params } = buildCountSql(q);
  const rows = await engineQuery<{ n: number | string }>(db, sql, params, signal, [q]);
  return Number(rows[0].n);
}

/** The tables the queries read ('schema.table'). */
const tablesOf = (queries: FeatureQuery[]) => queries.map((q) => `${q.layer.schema}.${q.layer.table}`);

/**
 * The numberMatched a row carries (SelectOptions.countMatched). The column stays on the row, as
 * null: writers read their own columns by name, and deleting it turned every row into a slow
 * dictionary object (0.6 µs a row, the writer's reads after it slower too).
 */
function takeMatched(row: FeatureRow): number | undefined {
  const v = row[MATCHED_COLUMN];
  if (v === undefined || v === null) return undefined;
  row[MATCHED_COLUMN] = null;
  return Number(v);
}

/**
 * A (small) page of a query that can carry its count (inlineCountable) and its numberMatched: from
 * the rows, or counted for an empty page past the start.
 */
export async function fetchPageWithCount(
  pool: FeatureDbLike,
  q: FeatureQuery,
  format: FeatureFormat,
  opts: SelectOptions = {},
  signal?: AbortSignal,
): Promise<{ rows: FeatureRow[]; matched: number }> {
  const rows = await fetchFeatureRows(pool, q, format, { ...opts, countMatched: true }, signal);
  let matched: number | undefined;
  for (const row of rows) matched = takeMatched(row) ?? matched;
  return { rows, matched: matched ?? (q.offset ? await countFeatures(pool, q, signal) : 0) };
}

/** Run a (small) query and return its serialised rows, e.g. one feature by id (through the stream gate). */
export async function fetchFeatureRows(
  db: FeatureDbLike,
  q: FeatureQuery,
  format: FeatureFormat,
  opts: SelectOptions = {},
  signal?: AbortSignal,
): Promise<FeatureRow[]> {
  checkQueryLimits(db, q);
  const { sql, params } = buildFeatureSql(q, format, opts);
  return engineQuery<FeatureRow>(db, sql, params, signal, [q]);
}

/**
 * Close a stream's cursor so that its connection can be reused. Not while a read is in flight:
 * pg-cursor sets its state back to 'idle' when the query's RowDescription arrives, whatever it
 * was, so a cursor closed before that (the client gone while the first batch is being computed)
 * closes its portal a second time when the batch ends — a second Sync, a second ReadyForQuery,
 * which ends the *next* query on the connection early (our COMMIT), whose own CommandComplete then
 * arrives for no query: "Received unexpected commandComplete message from backend", and the
 * connection is lost, or worse handed back to the pool out of step. So the read in flight is
 * waited for first (one batch), polling the cursor's state.
 */
async function closeCursor(qs: QueryStream): Promise<void> {
  if (qs.destroyed) return;
  const cursor = (qs as unknown as { cursor?: { state?: string } }).cursor;
  while (cursor && (cursor.state === 'submitted' || cursor.state === 'busy')) await new Promise((r) => setTimeout(r, 2));
  await new Promise<void>((resolve) => {
    qs.once('close', () => resolve());
    qs.destroy();
  });
}

/** How long a stream waits on its cursor before it gives the connection up for dead. */
function cursorPatienceMs(pool: pg.Pool): number {
  const t = Number((pool.options as { statement_timeout?: number }).statement_timeout) || 60_000;
  return t + 5_000;
}

export interface RowEvent {
  /** 'begin' before each query's rows, one 'row' per feature, then one 'end'. */
  kind: 'begin' | 'row' | 'end';
  q: FeatureQuery;
  /** Query index for 'begin'; feature index over all queries for 'row'; features written for 'end'. */
  index: number;
  row?: FeatureRow;
  /** On 'end': runs SQL on the stream's own connection (valid until the next iteration). */
  run?: SqlRunner;
  /**
   * With opts.countMatched: on 'end', numberMatched over all queries when every query carried it;
   * on 'row', the count the row's query carried.
   */
  matched?: number;
}

/**
 * The engine's cursor loop, for consumers that want rows rather than text (spreadsheets, file
 * formats). Statements are all built before a connection is taken; returning early (break,
 * throw, generator return) closes the cursor and releases the connection.
 */
export async function* featureRowEvents(
  db: FeatureDbLike,
  queries: FeatureQuery[],
  format: FeatureFormat,
  opts: SelectOptions = {},
  batchSize = 1000,
  signal?: AbortSignal,
): AsyncGenerator<RowEvent> {
  const fdb = featureDb(db);
  const { pool } = fdb;
  for (const q of queries) checkQueryLimits(fdb, q);
  const built = queries.map((q) => buildFeatureSql(q, format, opts));
  let written = 0;
  // numberMatched carried by the rows (opts.countMatched), per query; NaN when a query did not carry it
  const carried = queries.map(() => NaN);
  if (queries.every((q) => q.limit === 0)) {
    // nothing to fetch: no connection held
    for (let i = 0; i < queries.length; i++) yield { kind: 'begin', q: queries[i], index: i };
    yield { kind: 'end', q: queries[queries.length - 1], index: 0, run: async (sql, params) => (await pool.query(sql, params)).rows };
    return;
  }
  // bounded: at most N streams hold a connection at once, a few wait, the rest get ServerBusy
  const release = await (fdb.streams?.acquire(signal) ?? (async () => () => {})());
  let client: pg.PoolClient;
  try {
    if (signal?.aborted) throw new ClientGone();
    client = fdb.reads ? (await fdb.reads.connect(tablesOf(queries))).client : await pool.connect();
  } catch (e) {
    release();
    throw e;
  }
  let qs: QueryStream | undefined;
  let broken: Error | undefined;
  // if the connection dies while the cursor waits for rows, fail the stream at once (a cursor
  // is not always told, and would wait forever holding its slot and its connection)
  let pendingRun: ((e: Error) => void) | undefined;
  // the read in progress can be failed from outside: destroying a QueryStream waits for its cursor
  // to close, which a dead connection never does, so a pending read is rejected directly
  // (one settled promise per read: nothing accumulates however many rows are streamed)
  let failRead: ((e: Error) => void) | undefined;
  const onGone = (err?: Error) => {
    broken ??= err instanceof Error ? err : new Error('database connection lost');
    failRead?.(broken);
    pendingRun?.(broken);
  };
  client.on('error', onGone);
  client.on('end', onGone);
  // the client went away: stop reading at once; the cursor is then closed and the connection kept
  const gone = new ClientGone();
  const onAbort = () => failRead?.(gone);
  signal?.addEventListener('abort', onAbort, { once: true });
  // and if the database stops answering without the connection being seen to close, give up
  // after statement_timeout + 5 s of waiting on the cursor (time spent waiting on a slow client
  // does not count)
  const patience = cursorPatienceMs(pool);
  let waitingSince = 0;
  const watchdog = setInterval(
    () => {
      if (waitingSince && Date.now() - waitingSince > patience)
        onGone(new Error(`no answer from the database for ${Math.round(patience / 1000)} s`));
    },
    Math.min(1000, patience),
  );
  watchdog.unref();
  // The stream runs in one read-only transaction: its cursor and settings stay on one server
  // connection even behind a pooler in transaction mode, and nothing outlives it on the connection.
  // No parallel workers for a stream. A long one (an export, not a page) must start at once: without
  // them the planner walks the primary key index instead of sorting the whole table in parallel
  // before the first row (1M parcels in GML: first byte after 3–7 s). A page reads a few tens of
  // thousands of rows at most: two workers started for it cost more CPU than they save, and under
  // load (where the CPU is what limits) they only take it from other requests.
  const timeout = fdb.statementTimeoutMs && Number.isSafeInteger(fdb.statementTimeoutMs) ? fdb.statementTimeoutMs : 0;
  let open = false;
  try {
    await client.query(
      `BEGIN READ ONLY; SET LOCAL max_parallel_workers_per_gather = 0${timeout ? `; SET LOCAL statement_timeout = ${timeout}` : ''}`,
    );
    open = true;
    for (let i = 0; i < queries.length; i++) {
      const q = queries[i];
      yield { kind: 'begin', q, index: i };
      if (q.limit === 0) continue;
      // a page that fits in one batch is fetched in one round trip (rows + end of the portal)
      const lim = q.limit !== undefined ? q.limit + 1 : Infinity;
      qs = new QueryStream(built[i].sql, built[i].params, { batchSize: lim <= MAX_ONE_BATCH ? Math.max(lim, 1) : batchSize });
      corked(client, () => client.query(qs!));
      const rows = (qs as AsyncIterable<FeatureRow>)[Symbol.asyncIterator]();
      for (;;) {
        waitingSince = Date.now();
        const n = await new Promise<IteratorResult<FeatureRow>>((resolve, reject) => {
          if (broken) return reject(broken);
          if (signal?.aborted) return reject(gone);
          failRead = reject;
          corked(client, () => rows.next()).then(resolve, reject);
        });
        failRead = undefined;
        waitingSince = 0;
        if (n.done) break;
        const row = n.value;
        if (opts.countMatched) carried[i] = takeMatched(row) ?? carried[i];
        yield { kind: 'row', q, index: written++, row, matched: Number.isNaN(carried[i]) ? undefined : carried[i] };
      }
      qs = undefined;
    }
    // SQL after the rows (e.g. numberMatched) runs on the same connection, under the same watch
    const run: SqlRunner = (sql, params) =>
      new Promise((resolve, reject) => {
        if (broken) return reject(broken);
        waitingSince = Date.now();
        pendingRun = reject;
        client
          .query(sql, params)
          .then(
            (r) => resolve(r.rows),
            (e) => reject(e),
          )
          .finally(() => {
            waitingSince = 0;
            pendingRun = undefined;
          });
      });
    const total = carried.reduce((a, b) => a + b, 0);
    yield { kind: 'end', q: queries[queries.length - 1], index: written, run, matched: Number.isNaN(total) ? undefined : total };
  } catch (e) {
    if (e !== gone) broken = e as Error;
    throw e;
  } finally {
    clearInterval(watchdog);
    signal?.removeEventListener('abort', onAbort);
    client.off('error', onGone);
    client.off('end', onGone);
    if (qs && !broken) {
      // stopped early (client gone): close the cursor so the connection can be reused — but never
      // wait on a connection that does not answer
      const closed = await Promise.race([
        closeCursor(qs).then(
          () => true,
          () => false,
        ),
        new Promise<boolean>((r) => setTimeout(() => r(false), 2000).unref()),
      ]);
      if (!closed) broken = new Error('cursor did not close');
    } else if (qs) {
      qs.destroy(); // the query failed: the connection may be dead, do not wait for it
      qs.on('error', () => undefined);
    }
    if (open && !broken) {
      try {
        await client.query('COMMIT');
      } catch (e) {
        broken = e as Error;
      }
    }
    // a connection that failed or whose cursor could not be closed cleanly is discarded, not reused
    client.release(broken ? (broken instanceof Error ? broken : true) : undefined);
    release();
  }
}

/** Largest page fetched in a single cursor batch. */
const MAX_ONE_BATCH = 5000;

/**
 * Run fn with the connection's socket corked: the cursor protocol sends each message (parse, bind,
 * describe, execute, flush) as its own write, i.e. its own system call and loopback packet;
 * corked, they leave in one writev.
 */
function corked<T>(client: pg.PoolClient, fn: () => T): T {
  const sock = (client as unknown as { connection?: { stream?: { cork?: () => void; uncork?: () => void } } }).connection?.stream;
  sock?.cork?.();
  try {
    return fn();
  } finally {
    sock?.uncork?.();
  }
}

/**
 * UTF-8 bytes gathered into chunks of about `size` bytes. Each piece (a feature's text, built from
 * a few strings just read) is encoded at once into the chunk's buffer: joining a chunk's features
 * into one string first made V8 flatten a rope of a few thousand scattered pieces, then encode it
 * into a new zero-filled buffer — a quarter of a GML page's CPU in Node.
 */
class ByteChunks {
  private buf: Buffer;
  private used = 0;
  constructor(private readonly size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  get length(): number {
    return this.used;
  }
  add(s: string): void {
    // at most 3 bytes per UTF-16 code unit: a piece that might not fit starts a new buffer
    if (this.used + 3 * s.length > this.buf.length) this.grow(3 * s.length);
    this.used += this.buf.write(s, this.used, 'utf8');
  }
  /** The bytes gathered so far (a view: the buffer is not written again), then a fresh buffer. */
  take(): Buffer {
    const out = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(this.size);
    this.used = 0;
    return out;
  }
  private grow(need: number): void {
    const next = Buffer.allocUnsafe(Math.max(this.size, this.used + need));
    this.buf.copy(next, 0, 0, this.used);
    this.buf = next;
  }
}

async function* generate(pool: FeatureDbLike, o: FeatureStreamOptions): AsyncGenerator<Buffer> {
  const { writer, info } = o;
  const chunk = o.chunkChars ?? 65536;
  let written = 0;
  let extra: Partial<CollectionInfo> = {};
  const out = new ByteChunks(chunk + 16384);
  // a deferred header is written at the first row or at the end, before what came until then
  let headerPending = !!o.header;
  let before = '';
  if (!headerPending) out.add(writer.header(info));
  const select = { ...(writer.selectOptions ?? {}), ...(o.countMatched ? { countMatched: true } : {}) };
  for await (const ev of featureRowEvents(pool, o.queries, writer.format, select, o.batchSize ?? 1000, o.signal)) {
    if (ev.kind === 'begin') {
      if (writer.beginQuery) {
        if (headerPending) before += writer.beginQuery(ev.q, ev.index);
        else out.add(writer.beginQuery(ev.q, ev.index));
      }
      continue;
    }
    if (headerPending) {
      headerPending = false;
      extra = await o.header!(ev.matched, ev.kind === 'end' ? ev.run : undefined);
      out.add(writer.header({ ...info, ...extra }) + before);
    }
    if (ev.kind === 'end') {
      if (o.finalize) extra = { ...extra, ...(await o.finalize(ev.run!, written, ev.matched)) };
      continue;
    }
    out.add(writer.feature(ev.row!, ev.q, ev.index));
    written++;
    if (out.length >= chunk) yield out.take();
  }
  out.add(writer.footer({ ...info, ...extra }, written));
  o.onComplete?.(written);
  yield out.take();
}

/**
 * Open a feature stream. Resolves once the first chunk is ready (so database errors such as a
 * failed reprojection or a timeout surface before any byte is sent); the Readable then yields
 * the rest. Destroy it to stop: the cursor is closed and the connection released.
 */
export async function openFeatureStream(pool: FeatureDbLike, o: FeatureStreamOptions): Promise<Readable> {
  const it = generate(pool, o);
  // every way out of the stream ends the generator, which closes the cursor and gives back the
  // connection and the export slot (its finally blocks): destroyed before the first read, during
  // a read, after the end, or never read at all. A generator that was never started would skip
  // them (Readable.from() over a wrapping generator did, and leaked both for good).
  let ended: Promise<unknown> | undefined;
  const end = () => (ended ??= it.return(undefined).catch(() => undefined));
  let first: IteratorResult<Buffer>;
  try {
    first = await it.next();
  } catch (e) {
    await end();
    throw e;
  }
  let pending: Buffer | undefined = first.done ? undefined : first.value;
  let done = !!first.done;
  let reading = false;
  const stream = new Readable({
    highWaterMark: 65536,
    read() {
      if (reading) return;
      if (pending !== undefined) {
        const v = pending;
        pending = undefined;
        if (v.length > 0) {
          this.push(v);
          return;
        }
      }
      if (done) {
        this.push(null);
        return;
      }
      reading = true;
      const pull = (): void => {
        it.next().then(
          (n) => {
            if (this.destroyed) return;
            if (n.done) {
              done = true;
              reading = false;
              this.push(null);
            } else if (n.value.length === 0) {
              pull(); // an empty chunk would stall the stream: ask for the next one
            } else {
              reading = false;
              this.push(n.value);
            }
          },
          (e) => {
            reading = false;
            this.destroy(e as Error);
          },
        );
      };
      pull();
    },
    destroy(err, cb) {
      end().then(() => cb(err));
    },
  });
  if (o.signal?.aborted) stream.destroy();
  else o.signal?.addEventListener('abort', () => stream.destroy(), { once: true });
  return stream;
}

/**
 * An AbortSignal that fires when the client goes away before the response is complete, for the
 * work done before the first byte (count queries, the first chunk, a wait for an export slot).
 */
export function clientSignal(res: import('node:http').ServerResponse): AbortSignal {
  const ac = new AbortController();
  if (res.destroyed && !res.writableFinished) ac.abort(new ClientGone());
  else
    res.once('close', () => {
      if (!res.writableFinished) ac.abort(new ClientGone());
    });
  return ac.signal;
}
