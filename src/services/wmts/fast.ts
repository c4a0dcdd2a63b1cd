/**
 * The cached-tile fast path (issue 18: "send stored bytes with the fewest copies and syscalls; no
 * per-request work that a hit does not need"). A GET of an XYZ tile (`/tiles/{layer}/{z}/{x}/{y}.png`
 * or `.mvt`) or a RESTful WMTS tile (`/wmts/1.0.0/{layer}/{style}/{set}/{z}/{row}/{col}.png`) that
 * the memory tier holds is answered from Node's HTTP server before Fastify sees the request: the
 * cache key straight from the path, the stored Buffer written once with its headers, 304 on
 * If-None-Match / If-Modified-Since.
 *
 * Anything else takes the full way, which answers exactly as before: a memory miss, a query string,
 * a method other than GET, a path that does not parse, a tile outside its matrix, a layer the caller
 * may not read (the same `canRead` on the same principal: no answer here ever differs in what it
 * reveals), credentials that do not check out cleanly (the full path answers 401), a rate-limited
 * server, a table whose freshness is pending, a server that is closing.
 *
 * Kept from the full path: access control, the request id, metrics (requests, duration, bytes,
 * cache hits) and usage statistics — counted in a batch handed over at the end of the event loop's
 * turn (and before /metrics or the usage table is read or flushed): with Redis, a worker killed
 * after answering has already sent its counts, as on the full path. Skipped: Fastify's routing and request/reply
 * objects, its per-request logger, the hooks, the promise chain of the tier reads.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyRequest } from 'fastify';
import type { AppContext } from '../../context.js';
import type { Layer } from '../../registry/types.js';
import type { TileEngine, TileFormat } from '../../tiles/engine.js';
import { DiskTier, type TileEntry } from '../../tiles/cache.js';
import { findMatrixSet, WEB_MERCATOR_QUAD, type TileMatrixSet } from '../../tiles/matrixsets.js';
import { ANONYMOUS, canRead, type Principal } from '../../security/auth.js';
import { requestIdOf } from '../../ops/tags.js';
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

export class TileFastPath {
  /** Requests answered here (tests and docs read it). */
  served = 0;
  /** Of which read from the disk tier (not yet counted in metrics). */
  private diskHits = 0;
  closing = false;
  private batch = new Map<string, Batch>();
  private scheduled: NodeJS.Immediate | undefined;
  private readonly enabled: boolean;

  constructor(private readonly ctx: AppContext) {
    this.enabled = !ctx.config.security.rateLimit.enabled;
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
    this.scheduled = undefined;
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
    this.flush();
  }

  private principal(req: IncomingMessage): Principal | undefined {
    const h = req.headers;
    if (h.authorization === undefined && h['x-api-key'] === undefined) return ANONYMOUS;
    try {
      return this.ctx.runtime.auth.authenticate({ headers: h, query: undefined } as unknown as FastifyRequest);
    } catch {
      return undefined; // the full path answers 401
    }
  }

  /**
   * Takes the request when it is a tile it may serve from the memory tier (answered now) or
   * possibly from the disk tier (read, then answered — or handed to `next`, the full path, when
   * the file is not there). False: not taken, the caller hands it to the full path.
   */
  handle(req: IncomingMessage, res: ServerResponse, next: (req: IncomingMessage, res: ServerResponse) => void): boolean {
    if (!this.enabled || this.closing || req.method !== 'GET') return false;
    const url = req.url ?? '';
    if (!url.startsWith('/tiles/') && !url.startsWith('/wmts/1.0.0/')) return false;
    const t = parseTilePath(url);
    if (!t) return false;
    const started = performance.now();
    const engine = this.ctx.runtime.tiles;
    const memory = engine.cache.memory;
    if (!memory || !engine.isReady) return false;
    const layer = this.ctx.registry.unrestricted.resolve(t.layer);
    if (!layer) return false;
    const principal = this.principal(req);
    if (!principal || !canRead(layer, principal)) return false;
    if (engine.bypass.has(engine.tableOf(layer))) return false;
    const key = this.keyOf(engine, layer, t);
    if (key === undefined) return false;
    const answer = (entry: TileEntry, tier: string) => {
      const bytes = this.send(req, res, layer, engine, entry, t.format, tier);
      this.served++;
      const operation = t.service === 'Tiles' && t.format === 'mvt' ? 'GetVectorTile' : 'GetTile';
      this.durationOf(t.service, operation).observe((performance.now() - started) / 1000);
      this.count(t.service, operation, layer.name, res.statusCode === 304 ? '304' : '200', principal.authenticated, bytes, tier);
    };
    const entry = memory.peek(key);
    if (entry) {
      answer(entry, 'memory');
      return true;
    }
    // the disk tier when it comes next (a Redis tier in front of it, or none at all: the full path)
    const disk = engine.cache.tiers[1];
    if (!(disk instanceof DiskTier) || engine.cache.tiers[0] !== memory) return false;
    disk.get(key).then(
      (e) => {
        if (req.socket.destroyed) return; // the client left while the file was read
        if (!e) return next(req, res);
        void memory.put(key, e);
        answer(e, 'disk');
      },
      () => next(req, res),
    );
    return true;
  }

  /** The cache key of a tile, or undefined for a tile outside its matrix or an unknown style (the full path says so). */
  private keyOf(engine: TileEngine, layer: Layer, t: Parsed): string | undefined {
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
    return engine.key(layer, style, t.set, t.z, t.col, t.row, t.format);
  }

  private send(
    req: IncomingMessage,
    res: ServerResponse,
    layer: Layer,
    engine: TileEngine,
    e: TileEntry,
    format: TileFormat,
    tier: string,
  ): number {
    const h = [
      'x-request-id',
      requestIdOf(req),
      'etag',
      e.etag,
      'last-modified',
      lastModifiedOf(e),
      'cache-control',
      cacheControlOf(layer, engine),
      'x-cache',
      'HIT',
      'x-cache-tier',
      tier,
    ];
    // what the access hook adds to a response that is not public (src/security/access.ts)
    if (!layer.access.public) h.push('vary', 'Authorization, X-API-Key');
    const before = req.socket.bytesWritten;
    if (notModified(req.headers, e)) {
      res.writeHead(304, h);
      res.end();
    } else {
      h.push('content-type', TILE_TYPES[format], 'content-length', String(e.data.length));
      res.writeHead(200, h);
      res.end(e.data);
    }
    // what the socket was handed, headers included (the full path counts the same way)
    return req.socket.bytesWritten - before;
  }

  private count(
    service: string,
    operation: string,
    layer: string,
    status: string,
    authenticated: boolean,
    bytes: number,
    tier: string,
  ): void {
    if (tier === 'disk') this.diskHits++;
    const k = `${service}\u0000${operation}\u0000${layer}\u0000${status}\u0000${authenticated ? 1 : 0}`;
    // handed over at the end of this turn of the event loop: every hit the turn answered in one go
    // (with Redis, one pipelined count into the cluster's hash, as the full path does per request)
    this.scheduled ??= setImmediate(() => this.flush());
    const b = this.batch.get(k);
    if (b) {
      b.requests++;
      b.bytes += bytes;
    } else this.batch.set(k, { service, operation, layer, status, authenticated, requests: 1, bytes });
  }
}
