/**
 * The tile fast path's connection front reads only whole, plain GET/HEAD tile requests; anything
 * else is left to Node's HTTP server (src/services/wmts/fast-socket.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseFrontRequest } from '../../src/services/wmts/fast-socket.js';

const req = (s: string) => parseFrontRequest(Buffer.from(s, 'latin1'));
const TILE = '/tiles/parcels/17/67781/44945.png';

describe('connection front request parsing', () => {
  it('reads a plain GET or HEAD and the headers an answer depends on', () => {
    expect(req(`GET ${TILE} HTTP/1.1\r\nHost: a\r\n\r\n`)).toEqual({ head: false, url: TILE, headers: {} });
    const r = req(
      `HEAD /wmts/1.0.0/parcels/default/WebMercatorQuad/17/44945/67781.png HTTP/1.1\r\nhost: a\r\nUser-Agent: x\r\n` +
        `Authorization:  Basic YTpi \r\nIf-None-Match: "e1"\r\nX-Request-Id: r-1\r\nConnection: Keep-Alive\r\nAccept: */*\r\n\r\n`,
    );
    expect(r).toEqual({
      head: true,
      url: '/wmts/1.0.0/parcels/default/WebMercatorQuad/17/44945/67781.png',
      headers: { authorization: 'Basic YTpi', 'if-none-match': '"e1"', 'x-request-id': 'r-1' },
    });
  });

  it('leaves everything else to Node’s server', () => {
    for (const s of [
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\n`, // not whole yet
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\n\r\nGET ${TILE} HTTP/1.1\r\nHost: a\r\n\r\n`, // pipelined
      `GET ${TILE} HTTP/1.0\r\nHost: a\r\n\r\n`,
      `POST ${TILE} HTTP/1.1\r\nHost: a\r\n\r\n`,
      `GET /wms?SERVICE=WMS HTTP/1.1\r\nHost: a\r\n\r\n`, // not a tile path
      `GET ${TILE} HTTP/1.1\r\n\r\n`, // no Host
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nAuthorization: Basic YTpi\r\nAuthorization: Basic Yzpk\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nX-Long:\r\n folded\r\n\r\n`, // obsolete line folding
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nX-Ctl: a\u0001b\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nX-Lf: a\nb\r\n\r\n`,
      `GET ${TILE}\u0000 HTTP/1.1\r\nHost: a\r\n\r\n`,
      `GET  ${TILE} HTTP/1.1\r\nHost: a\r\n\r\n`,
      `GET ${TILE} HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`,
    ])
      expect(req(s), JSON.stringify(s.slice(0, 80))).toBeUndefined();
  });
});
