/**
 * The cached-tile fast path (src/services/wmts/fast.ts): over real HTTP (inject() never reaches it),
 * a cached tile is answered with the same bytes and headers as the full path; 304 on If-None-Match;
 * a memory miss read from the disk tier; a restricted layer's tile never served to a caller without
 * the role (answered like an unknown layer), wrong credentials answered 401 by the full path;
 * metrics and usage statistics count what it served.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { makeTestApp, basic, testUsers, type TestApp } from './helpers/app.js';
import type { TileFastPath } from '../src/services/wmts/fast.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'tiles-fast-'));

interface Answer {
  status: number;
  headers: Record<string, string>;
  /** Header names in the order sent. */
  names: string[];
  body: Buffer;
}

/** A raw keep-alive connection: what is written goes as is, answers are read back one by one (HEAD and 304 without a body). */
class Conn {
  private buf = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  ended = false;
  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.waiting?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiting?.();
    });
  }
  static open(base: string): Promise<Conn> {
    const u = new URL(base);
    return new Promise((resolve, reject) => {
      const s = net.connect(Number(u.port), u.hostname, () => resolve(new Conn(s)));
      s.once('error', reject);
    });
  }
  write(s: string): void {
    this.socket.write(s);
  }
  private async more(): Promise<void> {
    if (this.ended) throw new Error('connection closed');
    await new Promise<void>((resolve) => {
      this.waiting = resolve;
    });
    this.waiting = undefined;
  }
  async read(head = false): Promise<Answer> {
    let end = this.buf.indexOf('\r\n\r\n');
    while (end < 0) {
      await this.more();
      end = this.buf.indexOf('\r\n\r\n');
    }
    const lines = this.buf.subarray(0, end).toString('latin1').split('\r\n');
    const status = Number(lines[0].split(' ')[1]);
    const headers: Record<string, string> = {};
    const names: string[] = [];
    for (const l of lines.slice(1)) {
      const i = l.indexOf(':');
      names.push(l.slice(0, i).toLowerCase());
      headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
    }
    const length = head || status === 304 ? 0 : Number(headers['content-length']);
    while (this.buf.length < end + 4 + length) await this.more();
    const body = this.buf.subarray(end + 4, end + 4 + length);
    this.buf = this.buf.subarray(end + 4 + length);
    return { status, headers, names, body };
  }
}

const get = (url: string, headers = '', method = 'GET') => `${method} ${url} HTTP/1.1\r\nHost: test\r\n${headers}\r\n`;

describe('cached tiles answered before Fastify', () => {
  let t: TestApp;
  let base: string;
  let fast: TileFastPath;
  let tile: { z: number; x: number; y: number };
  const agent = { authorization: basic('agent', 'pw-agent') };

  beforeAll(async () => {
    t = await makeTestApp({
      security: { users: testUsers() },
      tiles: { diskDir: dir },
      layers: [{ table: 'public.communes' }, { table: 'public.parcels', access: { public: false, roles: ['agents'] } }],
    });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const a = t.app.server.address();
    base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    fast = (t.app as unknown as { tileFastPath: TileFastPath }).tileFastPath;
    const r = await t.ctx.pool.query<{ lon: number; lat: number }>(
      `SELECT ST_X(p) lon, ST_Y(p) lat FROM (SELECT ST_Transform(ST_PointOnSurface(geom), 4326) p FROM public.parcels ORDER BY id LIMIT 1) q`,
    );
    const { lon, lat } = r.rows[0];
    const z = 15;
    const n = 2 ** z;
    const latR = (lat * Math.PI) / 180;
    tile = {
      z,
      x: Math.floor(((lon + 180) / 360) * n),
      y: Math.floor(((1 - Math.log(Math.tan(latR) + 1 / Math.cos(latR)) / Math.PI) / 2) * n),
    };
  });
  afterAll(async () => {
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const SAME = [
    'etag',
    'last-modified',
    'cache-control',
    'content-type',
    'content-length',
    'vary',
    'x-cache',
    'access-control-allow-origin',
    'access-control-expose-headers',
  ];

  it('lets a page of another origin read tiles, maps and features (CORS on every front door, fast path included)', async () => {
    // a tile of its own (the tests below start from an empty cache for theirs)
    const url = `/tiles/communes/${tile.z - 1}/${tile.x >> 1}/${tile.y >> 1}.png`;
    await t.app.inject({ url }); // cached
    const origin = { origin: 'https://portal.example' };
    const hit = await fetch(`${base}${url}`, { headers: origin });
    expect(hit.headers.get('x-cache-tier')).toBe('memory'); // the fast path answered
    expect(hit.headers.get('access-control-allow-origin')).toBe('*');
    expect(hit.headers.get('access-control-expose-headers')).toContain('ETag');
    for (const other of [
      '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetCapabilities',
      '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&COUNT=1&OUTPUTFORMAT=application/json',
      '/collections/communes/items?limit=1',
    ]) {
      const r = await fetch(`${base}${other}`, { headers: origin });
      expect(r.status, other).toBe(200);
      expect(r.headers.get('access-control-allow-origin'), other).toBe('*');
      await r.arrayBuffer();
    }
    // a preflight (a page posting a WFS query in XML)
    const pre = await fetch(`${base}/wfs`, {
      method: 'OPTIONS',
      headers: { ...origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    // never with credentials: a restricted layer's answer stays unreadable to another site's script
    expect(hit.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('answers a cached tile with the full path’s bytes and headers, and 304 to a current copy', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x}/${tile.y}.png`;
    const first = await t.app.inject({ url }); // the full path renders and caches it
    expect(first.statusCode).toBe(200);
    expect(first.headers['x-cache']).toBe('MISS');
    const full = await t.app.inject({ url }); // the full path again: a memory hit
    expect(full.headers['x-cache-tier']).toBe('memory');
    const before = fast.served;
    const r = await fetch(base + url, { headers: { 'x-request-id': 'fast-1' } });
    expect(r.status).toBe(200);
    expect(fast.served).toBe(before + 1);
    const body = Buffer.from(await r.arrayBuffer());
    expect(body.equals(full.rawPayload)).toBe(true);
    for (const h of SAME)
      expect(r.headers.get(h) ?? undefined, h).toBe(full.headers[h] === undefined ? undefined : String(full.headers[h]));
    expect(r.headers.get('x-cache-tier')).toBe('memory');
    expect(r.headers.get('x-request-id')).toBe('fast-1');
    expect(r.headers.get('cache-control')).toMatch(/^public, max-age=\d+$/);
    const { info } = await sharp(body).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([256, 256]);

    const nm = await fetch(base + url, { headers: { 'if-none-match': `W/${r.headers.get('etag')}` } });
    expect(nm.status).toBe(304);
    expect((await nm.arrayBuffer()).byteLength).toBe(0);
    expect(nm.headers.get('etag')).toBe(r.headers.get('etag'));
    expect(fast.served).toBe(before + 2);

    // the same tile through RESTful WMTS
    const w = await fetch(`${base}/wmts/1.0.0/communes/default/WebMercatorQuad/${tile.z}/${tile.y}/${tile.x}.png`);
    expect(w.status).toBe(200);
    expect(Buffer.from(await w.arrayBuffer()).equals(body)).toBe(true);
    expect(fast.served).toBe(before + 3);

    // HEAD: the GET's headers (Content-Length included), no body
    const fullHead = await t.app.inject({ url, method: 'HEAD' });
    const head = await fetch(base + url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(fast.served).toBe(before + 4);
    expect((await head.arrayBuffer()).byteLength).toBe(0);
    for (const h of SAME) expect(head.headers.get(h) ?? undefined, h).toBe(r.headers.get(h) ?? undefined);
    expect(head.headers.get('content-length')).toBe(String(body.length));
    expect(head.headers.get('content-length')).toBe(String(fullHead.headers['content-length']));
    // each answer has its own request id when the client sends none
    const ids = new Set<string | null>();
    for (let i = 0; i < 3; i++) {
      const a = await fetch(base + url);
      await a.arrayBuffer();
      expect(a.headers.get('x-cache-tier')).toBe('memory');
      ids.add(a.headers.get('x-request-id'));
    }
    expect(ids.size).toBe(3);
    expect(fast.served).toBe(before + 7);

    // what it does not take goes the full way: a query string, another method, a tile outside the matrix
    const q = await fetch(`${base}${url}?style=nosuch`);
    expect(q.status).toBe(400);
    const post = await fetch(base + url, { method: 'POST' });
    expect(post.status).toBe(404);
    const out = await fetch(`${base}/tiles/communes/2/9/0.png`);
    expect(out.status).toBe(404);
    expect(fast.served).toBe(before + 7);
  });

  it('reads a memory miss from the disk tier in one go', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x + 1}/${tile.y}.png`;
    const full = await t.app.inject({ url });
    expect(full.statusCode).toBe(200);
    const engine = t.ctx.runtime.tiles;
    await engine.cache.memory!.deletePrefix('');
    const before = fast.served;
    const r = await fetch(base + url);
    expect(r.status).toBe(200);
    expect(r.headers.get('x-cache-tier')).toBe('disk');
    expect(Buffer.from(await r.arrayBuffer()).equals(full.rawPayload)).toBe(true);
    expect(r.headers.get('etag')).toBe(full.headers.etag);
    const again = await fetch(base + url);
    expect(again.headers.get('x-cache-tier')).toBe('memory');
    await again.arrayBuffer();
    expect(fast.served).toBe(before + 2);
  });

  it('never serves a restricted layer’s cached tile to a caller without the role', async () => {
    const url = `/tiles/parcels/${tile.z}/${tile.x}/${tile.y}.png`;
    const rendered = await t.app.inject({ url, headers: agent }); // cached by a caller with the role
    expect(rendered.statusCode).toBe(200);
    expect(t.ctx.runtime.tiles.cache.memory!.size).toBeGreaterThan(0);
    const before = fast.served;
    const unknown = await fetch(`${base}/tiles/zz_nosuch/${tile.z}/${tile.x}/${tile.y}.png`);
    for (const headers of [{}, { authorization: basic('visitor', 'pw-visitor') }]) {
      const r = await fetch(base + url, { headers });
      expect(r.status).toBe(404);
      expect(r.status).toBe(unknown.status);
      expect(r.headers.get('content-type')).toBe(unknown.headers.get('content-type'));
      expect(r.headers.get('etag')).toBeNull();
    }
    await unknown.arrayBuffer();
    const wrong = await fetch(base + url, { headers: { authorization: basic('agent', 'not-the-password') } });
    expect(wrong.status).toBe(401);
    const wrongPublic = await fetch(`${base}/tiles/communes/${tile.z}/${tile.x}/${tile.y}.png`, {
      headers: { authorization: basic('agent', 'not-the-password') },
    });
    expect(wrongPublic.status).toBe(401);
    expect(fast.served).toBe(before); // none of these was answered by the fast path

    const ok = await fetch(base + url, { headers: agent });
    expect(ok.status).toBe(200);
    expect(Buffer.from(await ok.arrayBuffer()).equals(rendered.rawPayload)).toBe(true);
    expect(ok.headers.get('cache-control')).toMatch(/^private, /);
    expect(ok.headers.get('vary')).toBe(String(rendered.headers.vary));
    expect(fast.served).toBe(before + 1);
  });

  it('counts what it served in metrics and usage statistics', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x}/${tile.y}.png`;
    await t.app.inject({ url });
    const { runtime } = t.ctx;
    const metric = async () => {
      const text = await runtime.metrics.text();
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('geodata_requests_total{') &&
            l.includes('layer="communes"') &&
            l.includes('status="200"') &&
            l.includes('service="Tiles"'),
        );
      return Number(line?.split(' ').pop() ?? 0);
    };
    const usage = async () =>
      (await runtime.usage.query({ layer: 'communes' })).filter((u) => u.service === 'Tiles').reduce((a, u) => a + u.requests, 0);
    const m0 = await metric();
    const u0 = await usage();
    const before = fast.served;
    let etag = '';
    for (let i = 0; i < 5; i++) {
      const r = await fetch(base + url);
      expect(r.status).toBe(200);
      etag = r.headers.get('etag') ?? '';
      await r.arrayBuffer();
    }
    expect(fast.served).toBe(before + 5);
    expect(await metric()).toBe(m0 + 5);
    expect(await usage()).toBe(u0 + 5);
    // HEAD and 304 answers are counted too, under their status
    expect((await fetch(base + url, { method: 'HEAD' })).status).toBe(200);
    expect((await fetch(base + url, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect(fast.served).toBe(before + 7);
    expect(await metric()).toBe(m0 + 6);
    expect(await usage()).toBe(u0 + 7);
    await runtime.usage.flush();
    expect(await usage()).toBe(u0 + 7);
  });

  it('answers tiles on the connection itself until a request it leaves to Node’s server', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x}/${tile.y}.png`;
    await t.app.inject({ url });
    const full = await t.app.inject({ url });
    expect(full.headers['x-cache-tier']).toBe('memory');
    const c = await Conn.open(base);
    const on0 = fast.servedOnSocket;
    const all0 = fast.served;
    c.write(get(url, 'X-Request-Id: front-1\r\nUser-Agent: test\r\nConnection: keep-alive\r\n'));
    const a = await c.read();
    expect(a.status).toBe(200);
    expect(a.body.equals(full.rawPayload)).toBe(true);
    for (const h of SAME) expect(a.headers[h], h).toBe(full.headers[h] === undefined ? undefined : String(full.headers[h]));
    expect(a.headers['x-request-id']).toBe('front-1');
    expect(a.headers['x-cache-tier']).toBe('memory');
    expect(a.headers.connection).toBe('keep-alive');
    expect(a.headers['keep-alive']).toMatch(/^timeout=\d+$/);
    expect(Math.abs(Date.parse(a.headers.date) - Date.now())).toBeLessThan(5000);
    // Node's server writes the same header names in the same order for the same answer
    const viaNode = await fetch(`${base}${url}`, { method: 'HEAD', headers: { authorization: basic('agent', 'pw-agent') } });
    expect(viaNode.status).toBe(200);
    expect(fast.servedOnSocket).toBe(on0 + 1);
    // a 304 to a current copy, HEAD with the GET's Content-Length and no body
    c.write(get(url, `If-None-Match: ${a.headers.etag}\r\n`));
    const nm = await c.read();
    expect(nm.status).toBe(304);
    expect(nm.headers.etag).toBe(a.headers.etag);
    expect(nm.headers['content-length']).toBeUndefined();
    c.write(get(url, '', 'HEAD'));
    const h = await c.read(true);
    expect(h.status).toBe(200);
    expect(h.headers['content-length']).toBe(String(a.body.length));
    expect(h.names).toEqual(a.names);
    expect(fast.servedOnSocket).toBe(on0 + 3);
    // a request split over two reads: Node's server reads it, and the connection is Node's from then on
    const split = get(url);
    c.write(split.slice(0, 20));
    await new Promise((r) => setTimeout(r, 50));
    c.write(split.slice(20));
    const b = await c.read();
    expect(b.status).toBe(200);
    expect(b.body.equals(a.body)).toBe(true);
    c.write(get(url));
    const b2 = await c.read();
    expect(b2.body.equals(a.body)).toBe(true);
    expect(fast.servedOnSocket).toBe(on0 + 3);
    expect(fast.served).toBe(all0 + 5 + 1); // both answered by the request-level fast path; the HEAD through fetch too
    c.socket.destroy();

    // two requests in one read (pipelining), then anything but a tile first: Node's server answers, in order
    const p = await Conn.open(base);
    p.write(get(url) + get(url, '', 'HEAD'));
    expect((await p.read()).body.equals(a.body)).toBe(true);
    expect((await p.read(true)).headers['content-length']).toBe(String(a.body.length));
    p.socket.destroy();
    const w = await Conn.open(base);
    w.write(get('/wms?SERVICE=WMS&REQUEST=GetCapabilities'));
    const caps = await w.read();
    expect(caps.status).toBe(200);
    expect(caps.body.toString()).toContain('WMS_Capabilities');
    w.write(get(url));
    expect((await w.read()).body.equals(a.body)).toBe(true);
    w.socket.destroy();
    expect(fast.servedOnSocket).toBe(on0 + 3);

    // a client that half-closes after its request gets its answer, then the connection ends
    const e = await Conn.open(base);
    e.write(get(url));
    e.socket.end();
    expect((await e.read()).body.equals(a.body)).toBe(true);
    await expect.poll(() => e.ended).toBe(true);
    expect(fast.servedOnSocket).toBe(on0 + 4);
  });

  it('reads a memory miss from the disk tier on the connection, and leaves a tile not cached to the full path', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x + 2}/${tile.y}.png`;
    const full = await t.app.inject({ url });
    expect(full.statusCode).toBe(200);
    await t.ctx.runtime.tiles.cache.memory!.deletePrefix('');
    const on0 = fast.servedOnSocket;
    const c = await Conn.open(base);
    c.write(get(url));
    const d = await c.read();
    expect(d.status).toBe(200);
    expect(d.headers['x-cache-tier']).toBe('disk');
    expect(d.body.equals(full.rawPayload)).toBe(true);
    c.write(get(url)); // the connection reads again after the file read
    const m = await c.read();
    expect(m.headers['x-cache-tier']).toBe('memory');
    expect(fast.servedOnSocket).toBe(on0 + 2);
    // neither in memory nor on disk: the full path renders it, on the same connection
    const cold = `/tiles/communes/${tile.z}/${tile.x + 9}/${tile.y + 9}.png`;
    c.write(get(cold));
    const r = await c.read();
    expect(r.status).toBe(200);
    expect(r.headers['x-cache']).toBe('MISS');
    expect(fast.servedOnSocket).toBe(on0 + 2);
    c.socket.destroy();
  });

  it('answers a restricted layer’s tile on the connection only to a caller with the role', async () => {
    const url = `/tiles/parcels/${tile.z}/${tile.x}/${tile.y}.png`;
    const rendered = await t.app.inject({ url, headers: agent });
    expect(rendered.statusCode).toBe(200);
    const unknown = await t.app.inject({ url: `/tiles/zz_nosuch/${tile.z}/${tile.x}/${tile.y}.png` });
    const on0 = fast.servedOnSocket;
    for (const auth of ['', `Authorization: ${basic('visitor', 'pw-visitor')}\r\n`]) {
      const c = await Conn.open(base);
      c.write(get(url, auth));
      const r = await c.read();
      expect(r.status).toBe(404);
      expect(r.body.toString()).toBe(unknown.body.replaceAll('zz_nosuch', 'parcels')); // as for a layer that does not exist
      c.socket.destroy();
    }
    const bad = await Conn.open(base);
    bad.write(get(url, `Authorization: ${basic('agent', 'not-the-password')}\r\n`));
    expect((await bad.read()).status).toBe(401);
    bad.socket.destroy();
    expect(fast.servedOnSocket).toBe(on0);
    const ok = await Conn.open(base);
    ok.write(get(url, `Authorization: ${agent.authorization}\r\n`));
    const r = await ok.read();
    expect(r.status).toBe(200);
    expect(r.body.equals(rendered.rawPayload)).toBe(true);
    expect(r.headers.vary).toBe(String(rendered.headers.vary));
    expect(r.headers['cache-control']).toMatch(/^private, /);
    ok.socket.destroy();
    expect(fast.servedOnSocket).toBe(on0 + 1);
  });

  it('stops answering a tile whose table changed, and whose layer was reloaded, from what it kept', async () => {
    const url = `/tiles/communes/${tile.z}/${tile.x}/${tile.y}.png`;
    await t.app.inject({ url });
    const before = fast.served;
    const first = await fetch(base + url);
    expect(first.headers.get('x-cache-tier')).toBe('memory');
    await first.arrayBuffer();
    expect(fast.served).toBe(before + 1);
    // a reload makes new layer objects: the next hit resolves the path again, with the same answer
    await t.ctx.registry.reload();
    const reloaded = await fetch(base + url);
    expect(reloaded.status).toBe(200);
    expect(reloaded.headers.get('etag')).toBe(first.headers.get('etag'));
    await reloaded.arrayBuffer();
    expect(fast.served).toBe(before + 2);
    // an edit of the table bumps its version (the change feed): the tile kept under the old key is
    // not served any more, the full path renders it anew
    const engine = t.ctx.runtime.tiles;
    const layer = t.ctx.registry.get('communes')!;
    const v0 = engine.versionOf(layer);
    await t.ctx.pool.query('UPDATE public.communes SET geom = geom WHERE id = (SELECT min(id) FROM public.communes)');
    await expect.poll(() => engine.versionOf(layer), { timeout: 10_000 }).toBeGreaterThan(v0);
    const after = await fetch(base + url);
    expect(after.status).toBe(200);
    expect(after.headers.get('x-cache')).toBe('MISS');
    await after.arrayBuffer();
    expect(fast.served).toBe(before + 2);
    const hit = await fetch(base + url);
    expect(hit.headers.get('x-cache-tier')).toBe('memory');
    await hit.arrayBuffer();
    expect(fast.served).toBe(before + 3);
  });
});

describe('closing with connections the front reads', () => {
  const url = '/tiles/communes/0/0/0.png';
  /** A listening app of its own with `url` cached; the test closes it. */
  async function withApp(test: (t: TestApp, base: string, fast: TileFastPath) => Promise<void>): Promise<void> {
    const d = mkdtempSync(path.join(os.tmpdir(), 'tiles-fast-close-'));
    const t = await makeTestApp({ tiles: { diskDir: d }, layers: [{ table: 'public.communes' }] });
    try {
      await t.app.listen({ port: 0, host: '127.0.0.1' });
      const a = t.app.server.address();
      await t.app.inject({ url });
      await test(
        t,
        `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`,
        (t.app as unknown as { tileFastPath: TileFastPath }).tileFastPath,
      );
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }

  it('closes the idle ones, so that the server stops at once', () =>
    withApp(async (t, base, fast) => {
      const c = await Conn.open(base);
      c.write(get(url));
      expect((await c.read()).status).toBe(200);
      expect(fast.servedOnSocket).toBe(1);
      const started = Date.now();
      await t.close();
      expect(Date.now() - started).toBeLessThan(5000); // not the keep-alive timeout (72 s)
      await expect.poll(() => c.ended).toBe(true);
    }));

  it('leaves a connection whose first request has not arrived to Node’s server, which answers it as a closing server', () =>
    withApp(async (t, base, fast) => {
      const c = await Conn.open(base);
      await new Promise((r) => setTimeout(r, 50)); // accepted, nothing sent yet
      const closing = t.close();
      await new Promise((r) => setTimeout(r, 50));
      c.write(get(url));
      const r = await c.read();
      expect([200, 503]).toContain(r.status); // not a reset connection
      await closing;
      expect(fast.servedOnSocket).toBe(0);
    }));
});
