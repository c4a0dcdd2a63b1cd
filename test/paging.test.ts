/**
 * Deep paging: OGC API `next` links carry a keyset cursor (the last feature's primary key), WFS
 * STARTINDEX pages skip by key only. Walks over whole collections, with and without sortby and
 * filters, return every feature exactly once; numbers and prev links stay right; a stale or forged
 * cursor is a clean 400.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { XMLParser } from 'fast-xml-parser';
import { makeTestApp, type TestApp } from './helpers/app.js';

let t: TestApp;
beforeAll(async () => {
  t = await makeTestApp({
    layers: [{ table: 'public.pois', temporalField: 'date_creation' }, { table: 'public.roads' }, { table: 'public.communes' }],
  });
});
afterAll(async () => {
  await t?.close();
});

async function sql<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await t.ctx.pool.query(text, params)).rows as T[];
}

interface Fc {
  features: Array<{ id: number; properties: Record<string, unknown> }>;
  numberMatched: number;
  numberReturned: number;
  links: Array<{ rel: string; href: string }>;
}

function local(href: string): string {
  const u = new URL(href);
  return u.pathname + u.search;
}

/** Follow `next` from a first page; every page checked for numberMatched and numberReturned. */
async function walk(first: string): Promise<{ ids: number[]; pages: Fc[] }> {
  const out: number[] = [];
  const pages: Fc[] = [];
  let url: string | undefined = first;
  while (url) {
    const r = await t.app.inject({ method: 'GET', url });
    expect(r.statusCode, `${url}: ${r.body.slice(0, 300)}`).toBe(200);
    const fc = r.json() as Fc;
    pages.push(fc);
    expect(fc.numberReturned).toBe(fc.features.length);
    out.push(...fc.features.map((f) => Number(f.id)));
    const next = fc.links.find((l) => l.rel === 'next');
    url = next ? local(next.href) : undefined;
    if (pages.length > 500) throw new Error('paging does not end');
  }
  return { ids: out, pages };
}

describe('OGC API – Features: keyset next links', () => {
  it('next links carry a cursor, not an offset; the walk returns every feature once, in primary-key order', async () => {
    const all = (await sql<{ id: number }>('SELECT id FROM public.pois ORDER BY id')).map((r) => Number(r.id));
    const { ids, pages } = await walk('/collections/pois/items?limit=170');
    expect(ids).toEqual(all);
    const next = pages[0].links.find((l) => l.rel === 'next')!;
    const u = new URL(next.href);
    expect(u.searchParams.get('cursor')).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(u.searchParams.get('offset')).toBeNull();
    for (const p of pages) expect(p.numberMatched).toBe(all.length);
    expect(pages.at(-1)!.links.find((l) => l.rel === 'next')).toBeUndefined();
  });

  it('the walk is the same with sortby on nullable and descending keys, and each page equals the OFFSET page', async () => {
    // the demo data has NULLs in these columns: they take their place in the order (ASC NULLS FIRST, DESC NULLS LAST)
    const [nulls] = await sql<{ a: string; b: string }>(
      'SELECT count(*) FILTER (WHERE nom IS NULL) a, count(*) FILTER (WHERE date_creation IS NULL) b FROM public.pois',
    );
    expect(Number(nulls.a) + Number(nulls.b)).toBeGreaterThan(0);
    for (const sortby of ['categorie,-nom', '-date_creation', 'nom', 'date_creation,-categorie']) {
      const order = sortby
        .split(',')
        .map((k) => (k.startsWith('-') ? `"${k.slice(1)}" DESC NULLS LAST` : `"${k}" ASC NULLS FIRST`))
        .join(', ');
      const all = (await sql<{ id: number }>(`SELECT id FROM public.pois ORDER BY ${order}, id`)).map((r) => Number(r.id));
      const { ids, pages } = await walk(`/collections/pois/items?limit=230&sortby=${encodeURIComponent(sortby)}`);
      expect(ids, sortby).toEqual(all);
      expect(new Set(ids).size).toBe(all.length);
      // a page reached by cursor equals the same page asked by offset
      const third = pages[2];
      const byOffset = (await (
        await t.app.inject({ method: 'GET', url: `/collections/pois/items?limit=230&offset=460&sortby=${encodeURIComponent(sortby)}` })
      ).json()) as Fc;
      expect(third.features.map((f) => f.id)).toEqual(byOffset.features.map((f) => f.id));
    }
  });

  it('with a filter and a bbox: every match once, numberMatched exact on every page', async () => {
    const filter = encodeURIComponent("categorie IN ('gare','culture','sante') OR nom LIKE 'B%'");
    const n = Number(
      (await sql<{ n: string }>(`SELECT count(*) n FROM public.pois WHERE categorie IN ('gare','culture','sante') OR nom LIKE 'B%'`))[0].n,
    );
    expect(n).toBeGreaterThan(100);
    const { ids, pages } = await walk(`/collections/pois/items?limit=40&filter=${filter}&sortby=-categorie`);
    expect(ids.length).toBe(n);
    expect(new Set(ids).size).toBe(n);
    for (const p of pages) expect(p.numberMatched).toBe(n);
    // a bbox (the inline-count path of the first page) and datetime
    const [e] = await sql<{ x0: number; y0: number; x1: number; y1: number }>(
      `SELECT ST_XMin(b) x0, ST_YMin(b) y0, ST_XMax(b) x1, ST_YMax(b) y1 FROM (SELECT ST_Extent(ST_Transform(geom, 4326)) b FROM public.pois) s`,
    );
    const bbox = [e.x0, e.y0, (e.x0 + e.x1) / 2, (e.y0 + e.y1) / 2].join(',');
    const m = Number(
      (
        await sql<{ n: string }>(
          `SELECT count(*) n FROM public.pois WHERE ST_Intersects(geom, ST_Transform(ST_MakeEnvelope($1, $2, $3, $4, 4326), 2154))`,
          bbox.split(',').map(Number),
        )
      )[0].n,
    );
    const w = await walk(`/collections/pois/items?limit=60&bbox=${bbox}&sortby=nom`);
    expect(w.ids.length).toBe(m);
    expect(new Set(w.ids).size).toBe(m);
    for (const p of w.pages) expect(p.numberMatched).toBe(m);
  });

  it('prev links go back to the previous page, with the right numbering', async () => {
    const p1 = (await (await t.app.inject({ method: 'GET', url: '/collections/pois/items?limit=25&sortby=nom' })).json()) as Fc;
    const p2 = (await (await t.app.inject({ method: 'GET', url: local(p1.links.find((l) => l.rel === 'next')!.href) })).json()) as Fc;
    const p3 = (await (await t.app.inject({ method: 'GET', url: local(p2.links.find((l) => l.rel === 'next')!.href) })).json()) as Fc;
    const back = (await (await t.app.inject({ method: 'GET', url: local(p3.links.find((l) => l.rel === 'prev')!.href) })).json()) as Fc;
    expect(back.features.map((f) => f.id)).toEqual(p2.features.map((f) => f.id));
    expect(p1.links.find((l) => l.rel === 'prev')).toBeUndefined();
    // HTML pages number the cursor page from its offset
    const html = await t.app.inject({
      method: 'GET',
      url: local(p2.links.find((l) => l.rel === 'next')!.href).replace('f=json', 'f=html'),
    });
    expect(html.statusCode).toBe(200);
    expect(html.body).toMatch(/shown from offset 50\./);
  });

  it('a forged, foreign or stale cursor is a 400 naming the cursor; cursor with offset too', async () => {
    const p1 = (await (await t.app.inject({ method: 'GET', url: '/collections/pois/items?limit=5&sortby=nom' })).json()) as Fc;
    const next = new URL(p1.links.find((l) => l.rel === 'next')!.href);
    const cursor = next.searchParams.get('cursor')!;
    const forged = Buffer.from(JSON.stringify({ k: 'abc', o: 5, s: JSON.parse(Buffer.from(cursor, 'base64url').toString()).s })).toString(
      'base64url',
    );
    const cases = [
      `/collections/pois/items?limit=5&sortby=nom&cursor=not*a*cursor`,
      `/collections/pois/items?limit=5&sortby=nom&cursor=${Buffer.from('{"k":1}').toString('base64url')}`,
      `/collections/pois/items?limit=5&sortby=-nom&cursor=${cursor}`, // made for another order
      `/collections/roads/items?limit=5&sortby=nom&cursor=${cursor}`, // for another collection
      `/collections/pois/items?limit=5&sortby=nom&cursor=${forged}`, // a key of the wrong type
      `/collections/pois/items?limit=5&sortby=nom&offset=5&cursor=${cursor}`,
    ];
    for (const url of cases) {
      const r = await t.app.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(400);
      expect(r.headers['content-type']).toMatch(/problem\+json/);
      expect(r.json().detail ?? r.json().title).toMatch(/cursor/);
    }
    // stale: the feature it points after was deleted (in a transaction rolled back afterwards, on a copy)
    await sql('CREATE TABLE IF NOT EXISTS public.paging_stale AS SELECT * FROM public.pois WHERE id <= 50');
    await sql('ALTER TABLE public.paging_stale ADD PRIMARY KEY (id)').catch(() => undefined);
    const t2 = await makeTestApp({ layers: [{ table: 'public.paging_stale' }] });
    try {
      const a = (await (await t2.app.inject({ method: 'GET', url: '/collections/paging_stale/items?limit=5&sortby=nom' })).json()) as Fc;
      const n = new URL(a.links.find((l) => l.rel === 'next')!.href);
      await sql('DELETE FROM public.paging_stale WHERE id = $1', [a.features[4].id]);
      const r = await t2.app.inject({ method: 'GET', url: n.pathname + n.search });
      expect(r.statusCode).toBe(400);
      expect(r.json().detail).toMatch(/stale cursor/);
      // without sortby the position is the key itself: still valid after the deletion
      const b = (await (await t2.app.inject({ method: 'GET', url: '/collections/paging_stale/items?limit=5' })).json()) as Fc;
      const nb = new URL(b.links.find((l) => l.rel === 'next')!.href);
      await sql('DELETE FROM public.paging_stale WHERE id = $1', [b.features[4].id]);
      const rb = (await (await t2.app.inject({ method: 'GET', url: nb.pathname + nb.search })).json()) as Fc;
      expect(rb.features[0].id).toBeGreaterThan(b.features[4].id);
    } finally {
      await t2.close();
      await sql('DROP TABLE IF EXISTS public.paging_stale');
    }
  });
});

describe('WFS: STARTINDEX pages', () => {
  const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true });
  const gmlIds = (body: string): number[] => {
    const fc = parser.parse(body).FeatureCollection;
    const members = [fc.member ?? []].flat() as Array<Record<string, { '@_id': string }>>;
    return members.map((m) => Number(String(Object.values(m)[0]['@_id']).split('.').pop()));
  };

  it('the next STARTINDEX of a walk is read after the last key of the page before: a deletion behind it skips nothing', async () => {
    await sql('DROP TABLE IF EXISTS public.paging_walk');
    await sql('CREATE TABLE public.paging_walk AS SELECT * FROM public.pois WHERE id <= 100');
    await sql('ALTER TABLE public.paging_walk ADD PRIMARY KEY (id)');
    const t2 = await makeTestApp({ layers: [{ table: 'public.paging_walk' }] });
    try {
      const page = async (start: number, fmt = '') =>
        t2.app.inject({
          method: 'GET',
          url: `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=paging_walk&COUNT=30&STARTINDEX=${start}${fmt}`,
        });
      for (const fmt of ['', '&OUTPUTFORMAT=application/json']) {
        const ids = (body: string) => (fmt ? JSON.parse(body).features.map((f: { id: number }) => f.id) : gmlIds(body));
        const p1 = ids((await page(0, fmt)).body);
        expect(p1.length).toBe(30);
        // a feature of the first page is deleted while the client reads it
        await sql('DELETE FROM public.paging_walk WHERE id = $1', [p1[5]]);
        const p2 = ids((await page(30, fmt)).body);
        // by offset the page would start one feature later, and that feature would never be seen
        expect(p2[0], fmt || 'GML').toBe(p1[29] + 1);
        // asked out of the blue (nothing remembered for that position), STARTINDEX is an offset
        const cold = ids((await page(31, fmt)).body);
        expect(cold[0]).toBe(p2[1] + 1);
        await sql('DELETE FROM public.paging_walk');
        await sql('INSERT INTO public.paging_walk SELECT * FROM public.pois WHERE id <= 100');
      }
    } finally {
      await t2.close();
      await sql('DROP TABLE IF EXISTS public.paging_walk');
    }
  });

  it('walking by next with and without SORTBY and with a filter returns every feature once', async () => {
    for (const extra of [
      '',
      '&SORTBY=nom%20DESC',
      `&FILTER=${encodeURIComponent('<Filter><PropertyIsEqualTo><ValueReference>categorie</ValueReference><Literal>gare</Literal></PropertyIsEqualTo></Filter>')}`,
    ]) {
      const where = extra.includes('FILTER') ? "WHERE categorie = 'gare'" : '';
      const all = (await sql<{ id: number }>(`SELECT id FROM public.pois ${where}`)).map((r) => Number(r.id));
      const seen: number[] = [];
      let url: string | undefined = `/wfs?SERVICE=WFS&VERSION=2.0.0&REQUEST=GetFeature&TYPENAMES=pois&COUNT=300${extra}`;
      let pages = 0;
      while (url) {
        const r = await t.app.inject({ method: 'GET', url });
        expect(r.statusCode, r.body.slice(0, 300)).toBe(200);
        const fc = parser.parse(r.body).FeatureCollection;
        const members = fc.member ? [fc.member].flat() : [];
        expect(Number(fc['@_numberMatched'])).toBe(all.length);
        expect(Number(fc['@_numberReturned'])).toBe(members.length);
        for (const m of members) seen.push(Number(String(m.pois['@_id']).split('.').pop()));
        url = fc['@_next'] ? local(fc['@_next']) : undefined;
        if (++pages > 100) throw new Error('paging does not end');
      }
      expect(seen.length, extra).toBe(all.length);
      expect(new Set(seen).size).toBe(all.length);
    }
  });
});
