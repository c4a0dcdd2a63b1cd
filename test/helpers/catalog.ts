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
