/** The API's page for people: Swagger UI at /api.html, served from the package (no CDN), over the same document as /api. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp({ limits: { itemsMaxLimit: 123 } });
});
afterAll(async () => {
  await t?.close();
});

describe('Swagger UI at /api.html', () => {
  it('serves the page, its scripts and styles from this server', async () => {
    const page = await t.app.inject('/api.html');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    // every asset the page loads is a relative URL on this server, and answers
    const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    expect(assets.length).toBeGreaterThan(2);
    for (const a of assets) {
      expect(a).not.toMatch(/^https?:/);
      const url = new URL(a, 'http://x/api.html/').pathname;
      const r = await t.app.inject(url);
      expect(r.statusCode, url).toBe(200);
      expect(r.body.length, url).toBeGreaterThan(0);
    }
    const bundle = await t.app.inject('/api.html/static/swagger-ui-bundle.js');
    expect(bundle.statusCode).toBe(200);
    expect(bundle.body.length).toBeGreaterThan(100_000);
  });

  it('shows the document /api serves, with this server and its limits', async () => {
    const ui = (await t.app.inject({ url: '/api.html/json', headers: { host: 'maps.example.org' } })).json();
    const api = (await t.app.inject({ url: '/api?f=json', headers: { host: 'maps.example.org' } })).json();
    expect(ui.paths).toEqual(api.paths);
    expect(ui.servers).toEqual(api.servers);
    expect(ui.components.parameters.limit.schema.maximum).toBe(123);
  });

  it('/api as HTML links to it', async () => {
    const r = await t.app.inject({ url: '/api', headers: { accept: 'text/html' } });
    expect(r.statusCode).toBe(200);
    expect(r.body).toMatch(/href="\/api\.html"/);
  });
});
