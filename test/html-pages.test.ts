/**
 * The HTML faces, read as a browser reads them (parsed, not grepped): French layer titles from the
 * table comments, layer names on / linking to their pages, items pages with the key shown once,
 * collection pages without a 'null' temporal extent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { parseHtml } from './helpers/html.js';

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp();
});
afterAll(async () => {
  await t?.close();
});

async function html(url: string) {
  const r = await t.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } });
  expect(r.statusCode, `${url}: ${r.body.slice(0, 200)}`).toBe(200);
  expect(r.headers['content-type']).toMatch(/text\/html/);
  return parseHtml(r.body);
}

const TITLES: Record<string, string> = {
  communes: 'Communes',
  parcels: 'Parcelles cadastrales',
  roads: 'Tronçons de route',
  pois: "Points d'intérêt",
};

describe('HTML pages', () => {
  it('/ lists the layers with their French titles, each name a link to its page', async () => {
    const p = await html('/');
    const table = p.tables.find((tb) => tb[0]?.[0] === 'name')!;
    expect(table).toBeDefined();
    for (const [name, title] of Object.entries(TITLES)) {
      const row = table.find((r) => r[0] === name);
      expect(row, name).toBeDefined();
      expect(row![1]).toBe(title);
      const link = p.links.find((l) => l.text === name);
      expect(link, `a link on ${name}`).toBeDefined();
      // the link leads to that layer's page, which names it by its title
      const u = new URL(link!.href, 'http://localhost');
      const page = await html(u.pathname + u.search);
      expect(page.h1).toContain(title);
    }
    // the same titles in the capabilities and in JSON
    const caps = await t.app.inject({ method: 'GET', url: '/wfs?SERVICE=WFS&REQUEST=GetCapabilities&VERSION=2.0.0' });
    expect(caps.body).toContain('<wfs:Title>Parcelles cadastrales</wfs:Title>');
    const j = (await t.app.inject({ method: 'GET', url: '/collections/pois?f=json' })).json();
    expect(j.title).toBe(TITLES.pois);
    expect(j.description).toMatch(/^Données de démonstration générées/);
  });

  it('items page: one column for the key, named as the key, every other property once', async () => {
    for (const coll of ['pois', 'communes']) {
      const p = await html(`/collections/${coll}/items?f=html&limit=5`);
      const [head, ...rows] = p.tables[0];
      expect(new Set(head).size, head.join(',')).toBe(head.length);
      expect(head[0]).toBe('id');
      expect(head.filter((h) => h === 'id').length).toBe(1);
      expect(rows.length).toBe(5);
      // the first cell links to the feature page
      expect(p.links.some((l) => l.text === rows[0][0] && l.href.includes(`/collections/${coll}/items/${rows[0][0]}`))).toBe(true);
    }
  });

  it('collection page: the temporal extent when there is one, no row saying null when there is none', async () => {
    const t2 = await makeTestApp({ layers: [{ table: 'public.communes', temporalField: 'date_maj' }, { table: 'public.roads' }] });
    try {
      const get = async (url: string) => parseHtml((await t2.app.inject({ method: 'GET', url, headers: { accept: 'text/html' } })).body);
      const roads = await get('/collections/roads?f=html');
      const rowsOf = (p: Awaited<ReturnType<typeof get>>) => p.tables[0].map((r) => r[0]);
      expect(rowsOf(roads)).not.toContain('temporal extent');
      expect(roads.text).not.toMatch(/\bnull\b/);
      const communes = await get('/collections/communes?f=html');
      const row = communes.tables[0].find((r) => r[0] === 'temporal extent');
      expect(row?.[1]).toMatch(/^\d{4}-\d{2}-\d{2}.* \/ \d{4}-\d{2}-\d{2}/);
    } finally {
      await t2.close();
    }
  });

  it('WMS GetFeatureInfo as HTML: the key once', async () => {
    const r = await t.app.inject({
      method: 'GET',
      url: '/wms?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetFeatureInfo&LAYERS=communes&QUERY_LAYERS=communes&CRS=EPSG:2154&BBOX=760000,6700000,1080000,6990000&WIDTH=256&HEIGHT=256&I=128&J=128&INFO_FORMAT=text/html&STYLES=',
    });
    expect(r.statusCode).toBe(200);
    const p = parseHtml(r.body);
    const head = p.tables[0][0];
    expect(head.filter((h) => h === 'id').length).toBe(1);
  });
});
