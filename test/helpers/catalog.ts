import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CatalogRecord } from '../../src/catalog/model.js';

/** Shared configuration for the catalogue tests (every catalogue test file uses the same one, so
 * the records they derive into the shared test database are identical). */
export const catalogConfig = {
  service: {
    title: 'Plateforme géo de test',
    abstract: 'Données géographiques de démonstration du Grand Est.',
    keywords: ['Grand Est', 'open data'],
    onlineResource: 'http://geo.test',
    contact: { organisation: 'Région Test', person: 'Jeanne Martin', email: 'sig@region.test', url: 'https://region.test' },
    inspire: { language: 'fre' },
  },
  layers: [
    {
      table: 'public.roads',
      title: 'Réseau routier',
      abstract: 'Tronçons de routes du réseau routier régional, classés de l’autoroute au chemin.',
      keywords: ['route', 'voirie'],
      metadata: {
        inspireThemes: ['tn'],
        euThemes: ['TRAN'],
        licence: 'etalab-2.0',
        updateFrequency: 'annual',
        temporalExtent: { start: '2020-01-01', end: '2024-12-31' },
        lineage: 'Numérisé à partir des orthophotographies 2020.',
        contact: { organisation: 'Direction des routes', email: 'routes@region.test' },
        publisher: { organisation: 'Région Test', email: 'sig@region.test' },
        issued: '2021-03-01',
      },
    },
    {
      table: 'public.communes',
      title: 'Communes',
      abstract: 'Limites communales avec code INSEE et population.',
      keywords: ['commune', 'limites administratives'],
      metadata: { inspireThemes: ['au'], euThemes: ['REGI', 'GOVE'], licence: 'odbl', updateFrequency: 'ANNUAL' },
    },
    { table: 'public.pois', title: 'Points d’intérêt', keywords: ['tourisme'], metadata: { euThemes: ['SOCI'] } },
    { table: 'public.parcels', title: 'Parcelles cadastrales', metadata: { inspireThemes: ['cp'] } },
  ],
};

/** A minimal record of `source` (no extent, no dates unless given), for tests that load the store directly. */
export function testRecord(identifier: string, o: Partial<CatalogRecord> = {}): CatalogRecord {
  return {
    identifier,
    type: 'dataset',
    title: `Jeu ${identifier}`,
    abstract: '',
    keywords: [],
    themes: [],
    licence: null,
    contact: null,
    publisher: null,
    modified: null,
    language: 'fre',
    bbox: null,
    crs: [],
    links: [],
    operatesOn: [],
    source: 'test',
    metadataModified: new Date().toISOString(),
    ...o,
  };
}

export type SourceRoute = () => { status?: number; type: string; body: string };

/**
 * A local HTTP server standing for remote catalogues (the machine has no Internet): GET answers
 * `routes` (path with query, else path; 404 otherwise); a POST to a path `onPost` knows gets 204.
 */
export async function startSourceServer(
  routes: Map<string, SourceRoute>,
  onPost?: (path: string, body: string) => boolean,
): Promise<{ server: http.Server; base: string }> {
  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && onPost?.(u.pathname, Buffer.concat(chunks).toString('utf8'))) {
        res.writeHead(204).end();
        return;
      }
      const route = routes.get(u.pathname + u.search) ?? routes.get(u.pathname);
      if (!route) {
        res.writeHead(404).end('not found');
        return;
      }
      const r = route();
      res.writeHead(r.status ?? 200, { 'content-type': r.type }).end(r.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
