/**
 * The tile fast path's connection front (issue 18: cached tiles at half of nginx or better). Node's
 * HTTP server spends about two thirds of a cached hit's CPU on its own machinery — the parser's
 * callbacks, an IncomingMessage and a ServerResponse per request, header validation, the
 * `finish` bookkeeping — where a static file server reads the request and writes the file
 * (docs/services/tiles.md, "Third round"). A connection is therefore first read here: each request
 * that arrives whole in one read, a plain `GET` or `HEAD` of a tile the memory tier (or the disk tier
 * behind it) holds, is answered on the socket in one write — status line, headers and the stored
 * bytes, the same headers as the full path — by `TileFastPath.serveOnSocket`.
 *
 * The first request that is anything else hands the connection to Node's HTTP server for good, with
 * the bytes already read: a method other than GET/HEAD, a query string, a body (Content-Length,
 * Transfer-Encoding), `Expect`, `Upgrade`, `Connection` other than keep-alive, HTTP/1.0, a missing
 * or repeated Host, a repeated header the answer depends on, a header that is not plain text, a
 * request split over reads or several requests in one read (pipelining), a tile not cached, a layer
 * the caller may not read, a closing server. From then on the connection is Node's as any other
 * (parser, timeouts, the client error handler), and the request-level fast path
 * (`TileFastPath.handle`) still answers its cached tiles. Nothing is ever answered here that the full
 * path would answer differently: the parsing is stricter than Node's, never more lenient.
 *
 * Kept from Node's server: the keep-alive timeout (an idle connection is closed after
 * `keepAliveTimeout`, and the header says so), backpressure (no further request is read while the
 * client is not reading its answers), a client's half-close, closing idle connections when the
 * server closes, and the Date header.
 */
import type http from 'node:http';
import type { IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import type { TileFastPath } from './fast.js';

/** A request the front may answer: GET or HEAD, its target and the headers an answer reads. */
export interface FrontRequest {
  head: boolean;
  url: string;
  headers: IncomingHttpHeaders;
}

/** Headers after which Node's server (not the front) must read the request. */
const REFUSED = new Set(['content-length', 'transfer-encoding', 'expect', 'upgrade', 'http2-settings']);
const REQUEST_LINE = /^(GET|HEAD) (\/[!-~]*) HTTP\/1\.1$/;
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
/** Control characters other than HTAB (a bare CR or LF inside a line included). */
const CTL = /[\x00-\x08\x0a-\x1f\x7f]/;
/** The largest request read here (a browser's tile request is under 2 kB). */
const MAX_REQUEST = 8192;
/** Only these paths are worth parsing. */
const PREFIXES = ['GET /tiles/', 'GET /wmts/1.0.0/', 'HEAD /tiles/', 'HEAD /wmts/1.0.0/'];

/**
 * The request in `data` when it is one whole plain GET or HEAD the front may answer, undefined
 * otherwise (Node's server then reads it: see the module comment for what it leaves to it).
 */
export function parseFrontRequest(data: Buffer): FrontRequest | undefined {
  const n = data.length;
  if (n > MAX_REQUEST || n < 16) return undefined;
  // one whole request, nothing after it
  if (data[n - 4] !== 13 || data[n - 3] !== 10 || data[n - 2] !== 13 || data[n - 1] !== 10) return undefined;
  const text = data.toString('latin1', 0, n - 4);
  if (!PREFIXES.some((p) => text.startsWith(p)) || text.includes('\r\n\r\n')) return undefined;
  const lines = text.split('\r\n');
  const first = REQUEST_LINE.exec(lines[0]);
  if (!first) return undefined;
  // one shape for every request (the answer reads these five, nothing else)
  const headers: IncomingHttpHeaders = {
    authorization: undefined,
    'x-api-key': undefined,
    'if-none-match': undefined,
    'if-modified-since': undefined,
    'x-request-id': undefined,
  };
  let hosts = 0;
  for (let i = 1; i < lines.length; i++) {
    const m = HEADER_LINE.exec(lines[i]);
    if (!m) return undefined; // obsolete line folding, a missing colon, a space before it…
    const name = m[1].toLowerCase();
    const value = m[2];
    if (CTL.test(value)) return undefined;
    switch (name) {
      case 'host':
        hosts++;
        break;
      case 'connection':
        if (value.toLowerCase() !== 'keep-alive') return undefined;
        break;
      case 'authorization':
      case 'x-api-key':
      case 'if-none-match':
      case 'if-modified-since':
      case 'x-request-id':
        if (headers[name] !== undefined) return undefined;
        headers[name] = value;
        break;
      default:
        if (REFUSED.has(name)) return undefined;
    }
  }
  if (hosts !== 1) return undefined;
  return { head: first[1] === 'HEAD', url: first[2], headers };
}

/** Puts the front before the HTTP server's own connection handling; false (nothing changed) when the server is not as expected. */
export function frontConnections(server: http.Server, fast: TileFastPath): boolean {
  const listeners = server.listeners('connection');
  if (listeners.length !== 1 || (server.maxRequestsPerSocket ?? 0) > 0) return false;
  const node = listeners[0] as (socket: Socket) => void;
  const toNode = (socket: Socket) => node.call(server, socket);
  server.removeListener('connection', node);
  server.on('connection', (socket: Socket) => {
    if (!fast.active) return toNode(socket);
    new FrontConnection(socket, fast, toNode, server.keepAliveTimeout);
  });
  fast.setKeepAlive(server.keepAliveTimeout);
  return true;
}

/** A connection read by the front until its first request that Node's server must read. */
export class FrontConnection {
  private busy = false;
  /** Requests answered on this connection. */
  private answered = 0;
  private ended = false;
  private queued: Buffer[] = [];
  private readonly onData = (d: Buffer) => this.data(d);
  private readonly onEnd = () => this.end();
  private readonly onError = () => this.socket.destroy();
  private readonly onTimeout = () => this.socket.destroy();
  private readonly onClose = () => this.fast.fronted.delete(this);
  private readonly onDrain = () => {
    if (!this.busy) this.socket.resume();
  };

  /** What the front listens to on its socket (removed when the connection goes to Node's server). */
  private listeners(): [string, (d: Buffer) => void][] {
    return [
      ['data', this.onData],
      ['end', this.onEnd],
      ['error', this.onError],
      ['close', this.onClose],
      ['drain', this.onDrain],
      ['timeout', this.onTimeout],
    ];
  }

  constructor(
    private readonly socket: Socket,
    private readonly fast: TileFastPath,
    private readonly toNode: (socket: Socket) => void,
    keepAliveMs: number,
  ) {
    for (const [event, fn] of this.listeners()) socket.on(event, fn);
    if (keepAliveMs > 0) socket.setTimeout(keepAliveMs);
    fast.fronted.add(this);
  }

  /**
   * The server is closing: a connection waiting for its next request is closed, as Node closes its
   * idle keep-alive connections; one being answered closes after the answer; one that has not
   * sent its first request yet (just accepted: the request may be on its way) goes to Node's
   * server, which serves or refuses it the way a closing server does.
   */
  closeIdle(): void {
    if (this.busy) return;
    if (this.answered === 0) this.handOver([]);
    else if (this.socket.writableLength === 0) this.socket.destroy();
    else this.socket.end(); // an answer still being sent: closed once it is out
  }

  private data(d: Buffer): void {
    if (this.socket.writableEnded) return; // closing after its last answer
    if (this.busy) {
      this.queued.push(d); // not expected (reading is paused while a file is read): Node's server takes it after the answer
      return;
    }
    const r = this.fast.active ? parseFrontRequest(d) : undefined;
    const served = r ? this.fast.serveOnSocket(this.socket, r.head, r.url, r.headers) : false;
    if (served === true) {
      this.answered++;
      return this.afterAnswer();
    }
    if (served === false) return this.handOver([d]);
    // a read of the disk tier: nothing more is read from the client until it is answered
    this.busy = true;
    this.socket.pause();
    served
      .then((ok) => {
        this.busy = false;
        if (this.socket.destroyed) return;
        if (!ok) return this.handOver([d, ...this.queued]);
        this.answered++;
        if (!this.fast.active) return void this.socket.end(); // the server is closing
        if (this.queued.length) return this.handOver(this.queued);
        if (this.ended) return void this.socket.end();
        if (!this.socket.writableNeedDrain) this.socket.resume();
      })
      .catch(() => this.socket.destroy());
  }

  private afterAnswer(): void {
    // the client is not reading its answers: read no further request until it has
    if (this.socket.writableNeedDrain) this.socket.pause();
  }

  private end(): void {
    // the client sent all it will send; the connection closes once it is answered (allowHalfOpen servers end it themselves)
    this.ended = true;
    if (!this.busy) this.socket.end();
  }

  /** The connection from now on read by Node's HTTP server, starting with `data` (already read here). */
  private handOver(data: Buffer[]): void {
    const s = this.socket;
    for (const [event, fn] of this.listeners()) s.removeListener(event, fn);
    s.setTimeout(0);
    this.fast.fronted.delete(this);
    this.toNode(s);
    // what was read here goes to the server's parser as if it had just arrived
    for (const d of data) if (!s.destroyed) s.emit('data', d);
    // a client that half-closed while a file was read: Node's server ends the connection after its answer
    if (this.ended && !s.destroyed) s.emit('end');
    if (s.isPaused()) s.resume();
  }
}
