/**
 * Requests that never reach a route: a request line or headers longer than Node accepts, a
 * request (headers + body) that does not arrive within `server.requestTimeoutMs`, malformed
 * HTTP. Node hands them to Fastify's clientErrorHandler with the raw bytes read so far; this one
 * answers in the protocol's form of the path asked for (an OWS exception report on the OWS
 * endpoints, problem+json elsewhere) and closes the connection.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { renderOws, renderProblem, flavourFor } from './render.js';
import { ServiceError } from './service-error.js';

interface ClientError extends Error {
  code?: string;
  /** The bytes Node had read (a Buffer at run time, whatever the typings say). */
  rawPacket?: unknown;
}

/** The error for what Node reported, given the first line of the request (when it was read). */
export function clientErrorOf(code: string | undefined, requestLine: string | undefined): ServiceError {
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return new ServiceError('request-timeout', 'the request (headers and body) was not received in time; the connection is closed');
  }
  if (code === 'HPE_HEADER_OVERFLOW') {
    // no complete request line in what was read, or a request line that fills most of it: the URL is too long
    if (requestLine === undefined || requestLine.length > 4096) {
      return new ServiceError('uri-too-long', 'the request URL is longer than the server accepts; send the parameters in a POST body', {
        locator: 'request',
      });
    }
    return new ServiceError('too-large', 'the request headers are larger than the server accepts', { locator: 'request', status: 431 });
  }
  return new ServiceError('invalid', 'malformed HTTP request', { locator: 'request' });
}

const PATH = Symbol('geodata.requestPath');

/**
 * Remember the path of the request being read on this connection (call from an onRequest hook):
 * a request whose body then times out is answered in the form of its path.
 */
export function notePath(socket: Socket | undefined, url: string): void {
  if (socket) (socket as Socket & { [PATH]?: string })[PATH] = url.split('?')[0];
}

/** A Fastify clientErrorHandler writing OWS reports on `owsPaths` and problems elsewhere. */
export function clientErrorHandler(owsPaths: string[]) {
  return (err: ClientError, socket: Socket): void => {
    if (err.code === 'ECONNRESET' || socket.destroyed) return;
    const raw = Buffer.isBuffer(err.rawPacket) ? err.rawPacket.toString('latin1') : '';
    const eol = raw.indexOf('\r\n');
    const line = eol >= 0 ? raw.slice(0, eol) : undefined;
    const target = raw ? ((line ?? raw).split(' ')[1] ?? '') : ((socket as Socket & { [PATH]?: string })[PATH] ?? '');
    const path = target.split('?')[0].toLowerCase().replace(/\/+$/, '');
    const se = clientErrorOf(err.code, line);
    let r: { status: number; contentType: string; body: string };
    if (owsPaths.includes(path)) {
      const svc = path.slice(1).toUpperCase();
      r = renderOws(se, flavourFor(svc === 'OWS' ? undefined : svc, undefined));
    } else {
      r = renderProblem(se, path || undefined);
    }
    if (socket.writable) {
      const body = Buffer.from(r.body, 'utf8');
      socket.write(
        `HTTP/1.1 ${r.status} ${http.STATUS_CODES[r.status] ?? 'Error'}\r\nContent-Type: ${r.contentType}\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`,
      );
      socket.write(body);
    }
    socket.destroy();
  };
}
