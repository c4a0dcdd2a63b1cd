import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { makeTestApp, type TestApp } from './helpers/app.js';

describe('landing page and health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp();
  });
  afterAll(async () => t?.close());

  it('JSON lists the four demo layers with extents and the service URLs', async () => {
    const r = await t.app.inject({ url: '/?f=json', headers: { host: 'geo.example:8080' } });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toContain('application/json');
    const doc = r.json();
    const names = doc.layers.map((l: { name: string }) => l.name);
    for (const n of ['communes', 'parcels', 'roads', 'pois']) expect(names).toContain(n);
    const parcels = doc.layers.find((l: { name: string }) => l.name === 'parcels');
    expect(parcels.srid).toBe(2154);
    const [minx, miny, maxx, maxy] = parcels.extent;
    expect(minx).toBeGreaterThanOrEqual(760000);
    expect(maxx).toBeLessThanOrEqual(1080000);
    expect(miny).toBeGreaterThanOrEqual(6700000);
    expect(maxy).toBeLessThanOrEqual(6990000);
    const [lon0, lat0, lon1, lat1] = parcels.wgs84Extent;
    expect(lon0).toBeGreaterThan(3);
    expect(lon1).toBeLessThan(9);
    expect(lat0).toBeGreaterThan(47);
    expect(lat1).toBeLessThan(51);
    expect(doc.qgis.WMS).toBe('http://geo.example:8080/wms');
    expect(doc.services.map((s: { name: string }) => s.name)).toEqual(['WMS', 'WFS', 'WMTS', 'CSW']);
    // the document matches its published JSON Schema
    const validate = new Ajv({ strict: false }).compile(JSON.parse(readFileSync('schemas/landing.schema.json', 'utf8')));
    expect(validate(doc), JSON.stringify(validate.errors)).toBe(true);
  });

  it('HTML by default for browsers, JSON by Accept', async () => {
    const h = await t.app.inject({ url: '/', headers: { accept: 'text/html,application/xhtml+xml' } });
    expect(h.headers['content-type']).toContain('text/html');
    expect(h.body).toContain('<table>');
    expect(h.body).toContain('parcels');
    const j = await t.app.inject({ url: '/', headers: { accept: 'application/json' } });
    expect(j.headers['content-type']).toContain('application/json');
  });

  it('healthz, readyz, request ids and JSON 404s', async () => {
    const h = await t.app.inject({ url: '/healthz' });
    expect(h.statusCode).toBe(200);
    const r = await t.app.inject({ url: '/readyz' });
    expect(r.statusCode).toBe(200);
    expect(r.json().checks.database).toBe('ok');
    expect(r.headers['x-request-id']).toBeTruthy();
    const given = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
    expect(given.headers['x-request-id']).toBe('abc-123');
    const nf = await t.app.inject({ url: '/nowhere' });
    expect(nf.statusCode).toBe(404);
    expect(nf.headers['content-type']).toContain('application/problem+json');
  });

  it('admin reload needs the admin token', async () => {
    const r = await t.app.inject({ method: 'POST', url: '/admin/reload' });
    expect(r.statusCode).toBe(401);
    expect(r.headers['www-authenticate']).toContain('Basic realm=');
    process.env.GEODATA_ADMIN_TOKEN = 'secret-token';
    try {
      const ok = await t.app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer secret-token' } });
      expect(ok.statusCode).toBe(200);
      expect(ok.json().layers).toBeGreaterThanOrEqual(4);
      const bad = await t.app.inject({ method: 'POST', url: '/admin/reload', headers: { authorization: 'Bearer wrong' } });
      expect(bad.statusCode).toBe(401);
    } finally {
      delete process.env.GEODATA_ADMIN_TOKEN;
    }
  });
});
