/**
 * The cached-tile fast path (issue 18: "send stored bytes with the fewest copies and syscalls; no
 * per-request work that a hit does not need"). A GET or HEAD of an XYZ tile (`/tiles/{layer}/{z}/{x}/{y}.png`
 * or `.mvt`) or a RESTful WMTS tile (`/wmts/1.0.0/{layer}/{style}/{set}/{z}/{row}/{col}.png`) that
 * the memory tier holds is answered from Node's HTTP server before Fastify sees the request: the
 * cache key straight from the path, the stored Buffer written once with its headers, 304 on
 * If-None-Match / If-Modified-Since.
 *
 * Anything else takes the full way, which answers exactly as before: a memory miss, a query string,
 * a method other than GET and HEAD, a path that does not parse, a tile outside its matrix, a layer the caller
 * may not read (the same `canRead` on the same principal: no answer here ever differs in what it
 * reveals), credentials that do not check out cleanly (the full path answers 401), a rate-limited
 * server, a table whose freshness is pending, a server that is closing.
 *
 * Per hit, only what changes: what a URL resolves to is kept per URL while its layer and table
 * version hold, and the headers of a cached entry are built on its first hit.
 *
 * Kept from the full path: access control, the request id, metrics (requests, duration, bytes,
 * cache hits) and usage statistics — counted in a batch handed over before /metrics or the usage
 * table is read or flushed, and at the end of the event loop's turn with Redis (a worker killed
 * after answering has already sent its counts, as on the full path) or once a second without. Skipped: Fastify's routing and request/reply
 * objects, its per-request logger, the hooks, the promise chain of the tier reads.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import type { TileEngine, TileFormat } from '../../tiles/engine.js';
import { DiskTier, type TileEntry } from '../../tiles/cache.js';
import { findMatrixSet, WEB_MERCATOR_QUAD, type TileMatrixSet } from '../../tiles/matrixsets.js';
import { ANONYMOUS, canRead, type Principal } from '../../security/auth.js';
import { requestIdFrom } from '../../ops/tags.js';
import { cacheControlOf, lastModifiedOf, notModified, TILE_TYPES } from './http.js';

interface Parsed {
  layer: string;
  style: string | undefined;
  set: TileMatrixSet;
  z: number;
  col: number;
  row: number;
  format: TileFormat;
  service: 'Tiles' | 'WMTS';
}

const DIGITS = /^\d+$/;

function tileFile(s: string): { n: number; format: TileFormat } | undefined {
  const dot = s.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const ext = s.slice(dot + 1);
  const format: TileFormat | undefined = ext === 'png' ? 'png' : ext === 'mvt' || ext === 'pbf' ? 'mvt' : undefined;
  const n = s.slice(0, dot);
  return format && DIGITS.test(n) ? { n: Number(n), format } : undefined;
}

/** The tile a path names, or undefined for anything the full path should look at. */
export function parseTilePath(url: string): Parsed | undefined {
  if (url.includes('?') || url.includes('%')) return undefined;
  const p = url.split('/');
  if (p[1] === 'tiles' && p.length === 6) {
    const f = tileFile(p[5]);
    if (!f || !DIGITS.test(p[3]) || !DIGITS.test(p[4]) || !p[2]) return undefined;
    return {
      layer: p[2],
      style: undefined,
      set: WEB_MERCATOR_QUAD,
      z: Number(p[3]),
      col: Number(p[4]),
      row: f.n,
      format: f.format,
      service: 'Tiles',
    };
  }
  if (p[1] === 'wmts' && p[2] === '1.0.0' && p.length === 9) {
    const f = tileFile(p[8]);
    const set = findMatrixSet(p[5]);
    if (!f || !set || !DIGITS.test(p[6]) || !DIGITS.test(p[7]) || !p[3] || !p[4]) return undefined;
    const style = p[4].toLowerCase() === 'default' ? 'default' : p[4];
    return { layer: p[3], style, set, z: Number(p[6]), row: Number(p[7]), col: f.n, format: f.format, service: 'WMTS' };
  }
  return undefined;
}

interface Batch {
  service: string;
  operation: string;
  layer: string;
  status: string;
  authenticated: boolean;
  requests: number;
  bytes: number;
}

/**
 * What a tile URL resolved to, kept while its layer object (a reload makes new ones) and its
 * table's version stay the same: a repeated hit skips the path parsing, the style lookup and the
 * key's string building.
 */
interface Route {
  name: string;
  layer: Layer;
  table: string;
  version: number;
  key: string;
  format: TileFormat;
  service: 'Tiles' | 'WMTS';
  operation: string;
  duration: { observe(v: number): void };
  /** Its batch keys, by `batchSlot` (status and authentication), built on first use. */
  batchKeys: string[];
}

/** Which of a route's batch keys a hit counts under. */
const batchSlot = (status: 200 | 304, authenticated: boolean) => (status === 304 ? 2 : 0) + (authenticated ? 1 : 0);

/** Routes kept at most (the table is emptied when full: a crawl of many distinct tiles then costs what it did before). */
const MAX_ROUTES = 8192;

/** Response headers a page of another origin may read (CORS, every front door: src/app.ts). */
export const CORS_EXPOSED = ['Link', 'Content-Crs', 'ETag', 'Content-Disposition', 'X-Cache'];
const CORS_EXPOSED_LIST = CORS_EXPOSED.join(', ');

/** The headers of one cached tile as a hit sends them, built once per entry and layer. */
interface Headers {
  layer: Layer;
  ok: string[];
  notModified: string[];
  /** The same as an HTTP/1.1 header block for the connection front, cut where the request id and the tier go (Date and Connection come last). */
  rawOk: [string, string, string];
  rawNotModified: [string, string, string];
}
/** Index of the request id and the cache tier in `Headers.ok` / `notModified` (filled per request). */
const ID_AT = 1;
const TIER_AT = 11;

/** An HTTP/1.1 status line and header block from a header list, cut at the request id and the tier (ID_AT, TIER_AT). */
function rawHead(status: string, list: string[]): [string, string, string] {
  const parts = ['', '', ''];
  let at = 0;
  parts[0] = `HTTP/1.1 ${status}\r\n`;
  for (let i = 0; i < list.length; i += 2) {
    parts[at] += `${list[i]}: `;
    if (i === ID_AT - 1 || i === TIER_AT - 1) at++;
    else parts[at] += list[i + 1];
    parts[at] += '\r\n';
  }
  // the request id's line ends in the part after it, and so does the tier's
  return parts as [string, string, string];
}

let dateSecond = -1;
let dateKeepAlive = '';
let dateTail = '';
/** The Date line (as Node's HTTP server writes it, formatted once a second), then the connection lines and the blank line. */
function httpDateLines(keepAlive: string): string {
  const s = Math.floor(Date.now() / 1000);
  if (s !== dateSecond || keepAlive !== dateKeepAlive) {
    dateSecond = s;
    dateKeepAlive = keepAlive;
    dateTail = `Date: ${new Date(s * 1000).toUTCString()}\r\n${keepAlive}\r\n`;
  }
  return dateTail;
}

export class TileFastPath {
  /** Requests answered here (tests and docs read it). */
  served = 0;
  /** Of which answered by the connection front, on the socket (src/services/wmts/fast-socket.ts). */
  servedOnSocket = 0;
  /** Of which read from the disk tier (not yet counted in metrics). */
  private diskHits = 0;
  closing = false;
  private batch = new Map<string, Batch>();
  private scheduled: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** With Redis, counts go to the cluster's hash at the end of each turn; without, this process's counters take them once a second (and before any read). */
  private readonly perTurn: boolean;
  private readonly enabled: boolean;
  private readonly routes = new Map<string, Route>();
  private readonly headers = new WeakMap<TileEntry, Headers>();
  private readonly flushSoon = () => this.flush();
  /** Connections the connection front reads (src/services/wmts/fast-socket.ts), closed when idle as the server closes. */
  readonly fronted = new Set<{ closeIdle(): void }>();

  constructor(private readonly ctx: AppContext) {
    this.enabled = !ctx.config.security.rateLimit.enabled;
    this.perTurn = ctx.runtime.shared.redis !== null;
    const { metrics, usage } = ctx.runtime;
    metrics.onBeforeCollect(() => this.flush());
    usage.onBeforeFlush(() => this.flush());
  }

  private readonly durations = new Map<string, { observe(v: number): void }>();
  /** The latency histogram's series for a service and operation (labels resolved once, not per request). */
  private durationOf(service: string, operation: string): { observe(v: number): void } {
    const k = `${service}/${operation}`;
    let d = this.durations.get(k);
    if (!d) {
      d = this.ctx.runtime.metrics.duration.labels({ service, operation });
      this.durations.set(k, d);
    }
    return d;
  }

  /** Hand the batched counts to metrics and usage statistics. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    if (this.timer) clearTimeout(this.timer);
    this.scheduled = undefined;
    this.timer = undefined;
    if (!this.batch.size) return;
    const { metrics, usage } = this.ctx.runtime;
    const rows = this.batch;
    this.batch = new Map();
    let hits = 0;
    for (const b of rows.values()) {
      hits += b.requests;
      metrics.requests.inc({ service: b.service, operation: b.operation, layer: b.layer, status: b.status }, b.requests);
      metrics.bytes.inc({ service: b.service }, b.bytes);
      usage.record({
        layers: [b.layer],
        service: b.service,
        authenticated: b.authenticated,
        features: 0,
        bytes: b.bytes,
        requests: b.requests,
      });
    }
    const disk = this.diskHits;
    this.diskHits = 0;
    metrics.cache.inc({ tier: 'memory', event: 'hit' }, hits - disk);
    if (disk) {
      metrics.cache.inc({ tier: 'memory', event: 'miss' }, disk);
      metrics.cache.inc({ tier: 'disk', event: 'hit' }, disk);
    }
  }

  close(): void {
    this.closing = true;
    for (const c of this.fronted) c.closeIdle();
    this.flush();
  }

  private principal(h: IncomingHttpHeaders): Principal | undefined {
    if (h.authorization === undefined && h['x-api-key'] === undefined) return ANONYMOUS;
    try {
      return this.ctx.runtime.auth.authenticate({ headers: h, query: undefined } as unknown as FastifyRequest);
    } catch {
      return undefined; // the full path answers 401
    }
  }

  /** The route of a tile URL: the kept one while it still holds, else parsed and kept; undefined for the full path. */
  private routeOf(url: string, engine: TileEngine): Route | undefined {
    const registry = this.ctx.registry.unrestricted;
    const kept = this.routes.get(url);
    if (kept && registry.resolve(kept.name) === kept.layer && (engine.versions.get(kept.table) ?? 0) === kept.version) return kept;
    if (!url.startsWith('/tiles/') && !url.startsWith('/wmts/1.0.0/')) return undefined;
    const t = parseTilePath(url);
    if (!t) return undefined;
    const layer = registry.resolve(t.layer);
    if (!layer) return undefined;
    const table = engine.tableOf(layer);
    const version = engine.versions.get(table) ?? 0;
    const key = this.keyOf(engine, layer, t, version);
    if (key === undefined) return undefined;
    const operation = t.service === 'Tiles' && t.format === 'mvt' ? 'GetVectorTile' : 'GetTile';
    const route: Route = {
      name: t.layer,
      layer,
      table,
      version,
      key,
      format: t.format,
      service: t.service,
      operation,
      duration: this.durationOf(t.service, operation),
      batchKeys: [],
    };
    if (this.routes.size >= MAX_ROUTES) this.routes.clear();
    this.routes.set(url, route);
    return route;
  }

  /** Whether hits may be answered here now (the connection front checks it for each request). */
  get active(): boolean {
    return this.enabled && !this.closing;
  }

  /**
   * What a GET or HEAD of `url` with these request headers resolves to: the route and the caller's
   * principal when the fast path may answer it from the cache, undefined for the full path.
   */
  private resolve(url: string, headers: IncomingHttpHeaders): { route: Route; principal: Principal } | undefined {
    if (url.includes('?') || url.includes('%')) return undefined;
    const engine = this.ctx.runtime.tiles;
    if (!engine.cache.memory || !engine.isReady) return undefined;
    const route = this.routeOf(url, engine);
    if (!route) return undefined;
    const principal = this.principal(headers);
    if (!principal || !canRead(route.layer, principal)) return undefined;
    if (engine.bypass.has(route.table)) return undefined;
    return { route, principal };
  }

  /** The disk tier when it comes right after memory (a Redis tier in front of it, or none at all: undefined). */
  private diskTier(): DiskTier | undefined {
    const { cache } = this.ctx.runtime.tiles;
    const disk = cache.tiers[1];
    return disk instanceof DiskTier && cache.tiers[0] === cache.memory ? disk : undefined;
  }

  /**
   * Takes the request when it is a tile it may serve from the memory tier (answered now) or
   * possibly from the disk tier (read, then answered — or handed to `next`, the full path, when
   * the file is not there). False: not taken, the caller hands it to the full path.
   */
  handle(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void): boolean {
    if (!this.active || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
    const started = performance.now();
    const r = this.resolve(req.url ?? '', req.headers);
    if (!r) return false;
    const { route, principal } = r;
    const memory = this.ctx.runtime.tiles.cache.memory!;
    const entry = memory.peek(route.key);
    if (entry) {
      this.answer(req, res, route, entry, 'memory', principal.authenticated, started);
      return true;
    }
    const disk = this.diskTier();
    if (!disk) return false;
    disk.get(route.key).then(
      (e) => {
        if (req.socket.destroyed) return; // the client left while the file was read
        if (!e) return next(req, res);
        void memory.put(route.key, e);
        this.answer(req, res, route, e, 'disk', principal.authenticated, started);
      },
      () => next(req, res),
    );
    return true;
  }

  /**
   * The connection front's entry (src/services/wmts/fast-socket.ts): a parsed GET or HEAD answered
   * on the socket itself — status line, headers and body in one write — when the memory tier holds
   * the tile (true), or after a read of the disk tier (a promise: true when answered, false when
   * the file is not there either); false when the full path must take it.
   */
  serveOnSocket(socket: Socket, head: boolean, url: string, headers: IncomingHttpHeaders): boolean | Promise<boolean> {
    const started = performance.now();
    const r = this.resolve(url, headers);
    if (!r) return false;
    const { route, principal } = r;
    const memory = this.ctx.runtime.tiles.cache.memory!;
    const entry = memory.peek(route.key);
    if (entry) {
      this.write(socket, head, headers, route, entry, 'memory', principal.authenticated, started);
      return true;
    }
    const disk = this.diskTier();
    if (!disk) return false;
    return disk.get(route.key).then(
      (e) => {
        if (!e) return false;
        void memory.put(route.key, e);
        if (!socket.destroyed) this.write(socket, head, headers, route, e, 'disk', principal.authenticated, started);
        return true;
      },
      () => false,
    );
  }

  private write(
    socket: Socket,
    head: boolean,
    headers: IncomingHttpHeaders,
    route: Route,
    e: TileEntry,
    tier: 'memory' | 'disk',
    authenticated: boolean,
    started: number,
  ): void {
    const kept = this.headersOf(route.layer, e, route.format);
    const fresh = notModified(headers, e);
    const raw = fresh ? kept.rawNotModified : kept.rawOk;
    const text = raw[0] + requestIdFrom(headers) + raw[1] + tier + raw[2] + httpDateLines(this.keepAliveLine);
    let bytes = text.length;
    if (fresh || head) socket.write(text, 'latin1');
    else {
      // one writev: the header block and the stored bytes (no copy of the tile)
      socket.cork();
      socket.write(text, 'latin1');
      socket.write(e.data);
      socket.uncork();
      bytes += e.data.length;
    }
    this.served++;
    this.servedOnSocket++;
    route.duration.observe((performance.now() - started) / 1000);
    this.count(route, fresh ? 304 : 200, authenticated, bytes, tier);
  }

  /** `Connection` and `Keep-Alive` lines as Node's HTTP server writes them for this server's keep-alive timeout. */
  private keepAliveLine = 'Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n';

  /** The keep-alive timeout the connection front announces and applies (the HTTP server's). */
  setKeepAlive(ms: number): void {
    this.keepAliveLine =
      ms > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${Math.floor(ms / 1000)}\r\n` : 'Connection: keep-alive\r\n';
  }

  private answer(
    req: IncomingMessage,
    res: ServerResponse,
    route: Route,
    entry: TileEntry,
    tier: 'memory' | 'disk',
    authenticated: boolean,
    started: number,
  ): void {
    // what the socket was handed, headers included (the full path counts the same way)
    const before = req.socket.bytesWritten;
    const status = this.send(req, res, route.layer, entry, route.format, tier);
    this.served++;
    route.duration.observe((performance.now() - started) / 1000);
    this.count(route, status, authenticated, req.socket.bytesWritten - before, tier);
  }

  /** The cache key of a tile, or undefined for a tile outside its matrix or an unknown style (the full path says so). */
  private keyOf(engine: TileEngine, layer: Layer, t: Parsed, version: number): string | undefined {
    const m = t.set.matrices[t.z];
    if (!m || t.row >= m.matrixHeight || t.col >= m.matrixWidth) return undefined;
    let style = '_';
    if (t.format === 'png') {
      try {
        style = engine.styleName(layer, t.style);
      } catch {
        return undefined;
      }
    }
    return engine.key(layer, style, t.set, t.z, t.col, t.row, t.format, version);
  }

  /**
   * The headers of a tile's answers (200 and 304), built on its first hit and kept with the entry:
   * the request id and the cache tier are the only fields that change from one hit to the next.
   */
  private headersOf(layer: Layer, e: TileEntry, format: TileFormat): Headers {
    const kept = this.headers.get(e);
    if (kept && kept.layer === layer) return kept;
    const common = [
      'x-request-id',
      '',
      'etag',
      e.etag,
      'last-modified',
      lastModifiedOf(e),
      'cache-control',
      cacheControlOf(layer, this.ctx.runtime.tiles),
      'x-cache',
      'HIT',
      'x-cache-tier',
      '',
      'access-control-allow-origin',
      '*',
      'access-control-expose-headers',
      CORS_EXPOSED_LIST,
    ];
    // what the access hook adds to a response that is not public (src/security/access.ts)
    if (!layer.access.public) common.push('vary', 'Authorization, X-API-Key');
    const ok = [...common, 'content-type', TILE_TYPES[format], 'content-length', String(e.data.length)];
    const h: Headers = {
      layer,
      notModified: common,
      ok,
      rawOk: rawHead('200 OK', ok),
      rawNotModified: rawHead('304 Not Modified', common),
    };
    this.headers.set(e, h);
    return h;
  }

  /** Answers the tile (200, or 304 to a current copy; a HEAD gets the headers only); returns the status. */
  private send(
    req: IncomingMessage,
    res: ServerResponse,
    layer: Layer,
    e: TileEntry,
    format: TileFormat,
    tier: 'memory' | 'disk',
  ): 200 | 304 {
    const kept = this.headersOf(layer, e, format);
    const fresh = notModified(req.headers, e);
    const h = (fresh ? kept.notModified : kept.ok).slice();
    h[ID_AT] = requestIdFrom(req.headers);
    h[TIER_AT] = tier;
    if (fresh) {
      res.writeHead(304, h);
      res.end();
      return 304;
    }
    res.writeHead(200, h);
    // Node sends no body to a HEAD request (the Content-Length stays, as the full path's)
    res.end(e.data);
    return 200;
  }

  private count(route: Route, status: 200 | 304, authenticated: boolean, bytes: number, tier: string): void {
    if (tier === 'disk') this.diskHits++;
    const { service, operation, layer } = route;
    const slot = batchSlot(status, authenticated);
    const k = (route.batchKeys[slot] ??= `${service}\u0000${operation}\u0000${layer.name}\u0000${status}\u0000${authenticated ? 1 : 0}`);
    // with Redis, handed over at the end of this turn of the event loop: every hit the turn answered
    // in one pipelined count into the cluster's hash (a worker killed after answering has sent its
    // counts, as on the full path); without, once a second (reads of /metrics and of the usage
    // statistics take the batch first): a flush costs several µs, as much as the rest of a hit
    if (this.perTurn) this.scheduled ??= setImmediate(this.flushSoon);
    else this.timer ??= setTimeout(this.flushSoon, 1000).unref();
    const b = this.batch.get(k);
    if (b) {
      b.requests++;
      b.bytes += bytes;
    } else
      this.batch.set(k, {
        service,
        operation,
        layer: layer.name,
        status: String(status),
        authenticated,
        requests: 1,
        bytes,
      });
  }
}
