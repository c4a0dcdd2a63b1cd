import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import pg from 'pg';
import { pino } from 'pino';
import { hashSecret, verifySecret, canRead, ANONYMOUS } from '../src/security/auth.js';
import { UsageStats } from '../src/ops/usage.js';
import { tagRequest, addFeatures } from '../src/ops/tags.js';
import { makeTestApp, testDatabaseUrl, type TestApp, basic, testUsers } from './helpers/app.js';
import type { Layer } from '../src/registry/types.js';

describe('secrets', () => {
  it('are stored hashed (scrypt) and verified', () => {
    const h = hashSecret('s3cret-é');
    expect(h).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(h).not.toContain('s3cret');
    expect(verifySecret('s3cret-é', h)).toBe(true);
    expect(verifySecret('s3cret', h)).toBe(false);
    expect(verifySecret('x', 'plain-text')).toBe(false);
    expect(hashSecret('a')).not.toBe(hashSecret('a')); // salted
  });
  it('roles decide what a principal may read', () => {
    const layer = { access: { public: false, roles: ['agents'] } } as Layer;
    expect(canRead(layer, ANONYMOUS)).toBe(false);
    expect(canRead(layer, { name: 'a', roles: ['agents'], authenticated: true, via: 'basic' })).toBe(true);
    expect(canRead(layer, { name: 'b', roles: ['other'], authenticated: true, via: 'basic' })).toBe(false);
    expect(canRead(layer, { name: 'c', roles: ['admin'], authenticated: true, via: 'basic' })).toBe(true);
  });
});

describe('access control, metrics and rate limits over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({
      security: {
        users: testUsers(),
        apiKeys: [{ name: 'portal', keyHash: hashSecret('key-123'), roles: ['agents'] }],
        rateLimit: { enabled: true, max: 40, windowMs: 60000, authenticatedMax: 1000 },
      },
      ops: { metricsToken: 'metrics-secret' },
      layers: [
        { table: 'public.communes' },
        { table: 'public.parcels', access: { public: false, roles: ['agents'] } },
        { table: 'public.roads' },
        { table: 'public.pois' },
      ],
    });
  });
  afterAll(async () => t?.close());

  const names = (body: string) => (JSON.parse(body).layers as { name: string }[]).map((l) => l.name);

  it('restricted layers are absent for anonymous callers and present with credentials', async () => {
    const anon = await t.app.inject({ url: '/?f=json' });
    expect(names(anon.body)).not.toContain('parcels');
    expect(names(anon.body)).toContain('communes');
    const withBasic = await t.app.inject({ url: '/?f=json', headers: { authorization: basic('agent', 'pw-agent') } });
    expect(names(withBasic.body)).toContain('parcels');
    const withKeyHeader = await t.app.inject({ url: '/?f=json', headers: { 'x-api-key': 'key-123' } });
    expect(names(withKeyHeader.body)).toContain('parcels');
    const withKeyParam = await t.app.inject({ url: '/?f=json&apikey=key-123' });
    expect(names(withKeyParam.body)).toContain('parcels');
    const noRole = await t.app.inject({ url: '/?f=json', headers: { authorization: basic('visitor', 'pw-visitor') } });
    expect(names(noRole.body)).not.toContain('parcels');
  });

  it('WFS, OGC API and the catalogue hide a restricted layer from callers without its role, as if it did not exist', async () => {
    const capsAnon = await t.app.inject({ url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0' });
    expect(capsAnon.statusCode).toBe(200);
    expect(capsAnon.body).toContain('geodata:communes');
    expect(capsAnon.body).not.toContain('geodata:parcels');
    const capsAgent = await t.app.inject({
      url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0',
      headers: { authorization: basic('agent', 'pw-agent') },
    });
    expect(capsAgent.body).toContain('geodata:parcels');

    const gf = (type: string) =>
      `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=${type}&COUNT=1&OUTPUTFORMAT=application/json`;
    const unknown = await t.app.inject({ url: gf('nosuch') });
    expect(unknown.statusCode).toBe(400);
    const anon = await t.app.inject({ url: gf('parcels') });
    expect(anon.statusCode).toBe(400);
    expect(anon.headers['www-authenticate']).toBeUndefined();
    expect(anon.body.replace('parcels', 'nosuch')).toBe(unknown.body);
    const visitor = await t.app.inject({ url: gf('parcels'), headers: { authorization: basic('visitor', 'pw-visitor') } });
    expect(visitor.statusCode).toBe(400);
    expect(visitor.body.replace('parcels', 'nosuch')).toBe(unknown.body);
    const agent = await t.app.inject({ url: gf('parcels'), headers: { authorization: basic('agent', 'pw-agent') } });
    expect(agent.statusCode).toBe(200);
    expect(agent.json().features).toHaveLength(1);
    const byKey = await t.app.inject({ url: `${gf('parcels')}&apikey=key-123` });
    expect(byKey.statusCode).toBe(200);

    const cols = await t.app.inject({ url: '/collections?f=json' });
    expect(cols.json().collections.map((c: { id: string }) => c.id)).not.toContain('parcels');
    expect((await t.app.inject({ url: '/collections/parcels/items?f=json' })).statusCode).toBe(404);
    expect(
      (await t.app.inject({ url: '/collections/parcels/items?f=json', headers: { authorization: basic('agent', 'pw-agent') } })).statusCode,
    ).toBe(200);

    const dl = await t.app.inject({ url: '/downloads/parcels.csv' });
    expect(dl.statusCode).toBe(404);

    const cat = await t.app.inject({ url: '/catalog?f=json&limit=100' });
    expect(cat.statusCode).toBe(200);
    expect(cat.body).toMatch(/Communes/);
    expect(cat.body).not.toMatch(/"parcels"|Parcels/);
    const csw = await t.app.inject({
      url: '/csw?SERVICE=CSW&VERSION=2.0.2&REQUEST=GetRecords&typeNames=csw:Record&resultType=results&ElementSetName=brief&maxRecords=100',
    });
    expect(csw.statusCode).toBe(200);
    expect(csw.body).not.toMatch(/Parcels/);
  });

  it('wrong credentials are refused with 401 and WWW-Authenticate, in the protocol form', async () => {
    const r = await t.app.inject({ url: '/?f=json', headers: { authorization: basic('agent', 'nope') } });
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toMatch(/^Basic realm="geodata"/);
    expect(r.headers['content-type']).toContain('application/problem+json');
    const o = await t.app.inject({ url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities&apikey=wrong' });
    expect(o.statusCode).toBe(401);
    expect(o.body).toContain('ExceptionReport');
    expect(o.headers['www-authenticate']).toContain('Basic');
  });

  it('admin endpoints need the admin role: 401 for anonymous, 403 for an authenticated non-admin', async () => {
    expect((await t.app.inject({ method: 'POST', url: '/admin/reload' })).statusCode).toBe(401);
    expect(
      (await t.app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: basic('agent', 'pw-agent') } })).statusCode,
    ).toBe(403);
    const ok = await t.app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: basic('root', 'pw-root') } });
    expect(ok.statusCode).toBe(200);
  });

  it('/metrics needs its token and counts requests by service, operation and status', async () => {
    await t.app.inject({ url: '/ows?SERVICE=NOPE&REQUEST=GetCapabilities' });
    await t.app.inject({ url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities' });
    expect((await t.app.inject({ url: '/metrics' })).statusCode).toBe(401);
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: basic('agent', 'pw-agent') } })).statusCode).toBe(401);
    const m = await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-secret' } });
    expect(m.statusCode).toBe(200);
    expect(m.body).toMatch(/geodata_requests_total\{service="OWS",operation="other",layer="",status="400"\} [1-9]/);
    expect(m.body).toMatch(/geodata_requests_total\{service="WFS",operation="GetCapabilities",layer="",status="200"\} [1-9]/);
    expect(m.body).toContain('geodata_request_duration_seconds_bucket');
    expect(m.body).toMatch(/geodata_db_pool_connections\{state="total"\} \d+/);
    expect(m.body).toContain('geodata_response_bytes_total');
    // a GetFeature is counted against its layer, with the features it returned
    await t.app.inject({
      url: '/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=communes&COUNT=3&OUTPUTFORMAT=application/json',
    });
    const m2 = await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-secret' } });
    expect(m2.body).toMatch(/geodata_requests_total\{service="WFS",operation="GetFeature",layer="communes",status="200"\} [1-9]/);
    expect(m2.body).toMatch(/geodata_features_total\{service="WFS",layer="communes"\} [3-9]/);
  });

  it('rate limit answers 429 with Retry-After (OWS form on OWS endpoints), per client', async () => {
    let last;
    for (let i = 0; i < 45; i++) last = await t.app.inject({ url: '/ows?SERVICE=NOPE&REQUEST=GetCapabilities', remoteAddress: '10.9.9.9' });
    expect(last!.statusCode).toBe(429);
    expect(Number(last!.headers['retry-after'])).toBeGreaterThan(0);
    expect(last!.body).toContain('ServerBusy');
    // another client is not affected; an authenticated one has its own, higher budget
    expect((await t.app.inject({ url: '/?f=json', remoteAddress: '10.9.9.10' })).statusCode).toBe(200);
    expect(
      (await t.app.inject({ url: '/?f=json', remoteAddress: '10.9.9.9', headers: { authorization: basic('agent', 'pw-agent') } }))
        .statusCode,
    ).toBe(200);
    // health checks are never limited
    expect((await t.app.inject({ url: '/healthz', remoteAddress: '10.9.9.9' })).statusCode).toBe(200);
  });
});

describe('usage statistics', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 2 });
  });
  afterAll(async () => pool?.end());

  it('aggregates in memory, flushes in one statement, adds up across flushes', async () => {
    const u = new UsageStats(pool, pino({ level: 'silent' }), 3600);
    await u.start();
    const day = '2031-01-0' + (1 + (process.pid % 8)); // a day nobody else writes to
    await pool.query('DELETE FROM geodata_ops.usage_daily WHERE day = $1', [day]);
    const at = new Date(`${day}T12:00:00Z`);
    u.record({ layers: ['parcels'], service: 'WFS', authenticated: false, features: 100, bytes: 5000, at });
    u.record({ layers: ['parcels'], service: 'WFS', authenticated: false, features: 50, bytes: 1000, at });
    u.record({ layers: ['parcels', 'roads'], service: 'WMS', authenticated: true, features: 0, bytes: 301, at });
    expect(u.unflushed()).toHaveLength(3);
    // before the flush, query() already includes the in-memory counts
    const before = await u.query({ from: day, to: day });
    expect(before.find((r) => r.layer === 'parcels' && r.service === 'WFS')).toMatchObject({ requests: 2, features: 150, bytes: 6000 });
    await u.flush();
    expect(u.unflushed()).toHaveLength(0);
    u.record({ layers: ['parcels'], service: 'WFS', authenticated: false, features: 1, bytes: 1, at });
    await u.close(); // flushes what is left
    const rows = (
      await pool.query(
        'SELECT layer, service, caller, requests, features, bytes FROM geodata_ops.usage_daily WHERE day = $1 ORDER BY layer, service',
        [day],
      )
    ).rows;
    expect(rows).toEqual([
      { layer: 'parcels', service: 'WFS', caller: 'anonymous', requests: 3, features: 151, bytes: 6001 },
      { layer: 'parcels', service: 'WMS', caller: 'authenticated', requests: 1, features: 0, bytes: 151 },
      { layer: 'roads', service: 'WMS', caller: 'authenticated', requests: 1, features: 0, bytes: 150 },
    ]);
  });

  it('a failed flush keeps the counts for the next one', async () => {
    const dead = new pg.Pool({ connectionString: 'postgres://nobody:x@127.0.0.1:1/none', connectionTimeoutMillis: 500 });
    dead.on('error', () => {});
    const u = new UsageStats(dead, pino({ level: 'silent' }), 3600);
    u.record({ layers: ['x'], service: 'WMS', authenticated: false, features: 0, bytes: 10 });
    await expect(u.flush()).rejects.toThrow();
    expect(u.unflushed()).toEqual([expect.objectContaining({ layer: 'x', requests: 1, bytes: 10 })]);
    await dead.end();
  });

  it('is exposed as JSON, CSV and HTML from the running application', async () => {
    const t = await makeTestApp({}, (app) =>
      app.get('/__test_tagged', async (req) => {
        tagRequest(req, { service: 'WFS', operation: 'GetFeature', layers: ['communes'] });
        addFeatures(req, 7);
        return { ok: true };
      }),
    );
    try {
      await t.app.inject({ url: '/__test_tagged' });
      const today = new Date().toISOString().slice(0, 10);
      const j = await t.app.inject({ url: `/usage?from=${today}&to=${today}` });
      expect(j.statusCode).toBe(200);
      const row = j.json().rows.find((r: { layer: string; service: string }) => r.layer === 'communes' && r.service === 'WFS');
      expect(row.requests).toBeGreaterThanOrEqual(1);
      expect(row.features).toBeGreaterThanOrEqual(7);
      const c = await t.app.inject({ url: '/usage.csv' });
      expect(c.headers['content-type']).toContain('text/csv');
      expect(c.body.split('\n')[0]).toBe('day,layer,service,caller,requests,features,bytes');
      const h = await t.app.inject({ url: '/usage.html' });
      expect(h.body).toContain('<svg');
      expect(h.body).toContain('communes');
      expect((await t.app.inject({ url: '/usage?from=yesterday' })).statusCode).toBe(400);
    } finally {
      await t.close();
    }
  });
});
