/**
 * Deterministic, seeded demo-data generator (Grand Est, EPSG:2154 / Lambert-93).
 *
 * Creates four tables in a schema: `communes` (a partition of the region
 * rectangle), `parcels` (cadastre-like polygons, denser around towns),
 * `roads` (line strings in five classes: autoroutes as consecutive sections
 * of eight corridors between the towns, nationales as sections of three
 * routes out of each town, départementales linking neighbouring villages,
 * communales and chemins around towns and villages) and `pois` (points in
 * twelve categories).
 *
 * Determinism: every pseudo-random number is computed in SQL by
 * `hashint8extended(key, streamSeed)` (a pure function of the key and of a
 * stream seed derived from `seed` in Node), never by `random()`. Every
 * aggregate whose result depends on input order is ordered explicitly, so the
 * same seed and options give byte-identical rows whatever plan PostgreSQL
 * chooses. All geometry work is done by PostGIS.
 */
import type pg from 'pg';

export interface DemoOptions {
  seed?: number;
  communes?: number;
  parcels?: number;
  roads?: number;
  pois?: number;
  schema?: string;
  log?: (msg: string) => void;
}

export interface DemoSummary {
  seed: number;
  counts: Record<string, number>;
  seconds: number;
}

// ---------------------------------------------------------------------------
// Region and reference towns
// ---------------------------------------------------------------------------

const SRID = 2154;
const XMIN = 760000;
const XMAX = 1080000;
const YMIN = 6700000;
const YMAX = 6990000;
const W = XMAX - XMIN;
const H = YMAX - YMIN;
const AREA = W * H;
const ENV = `ST_MakeEnvelope(${XMIN}, ${YMIN}, ${XMAX}, ${YMAX}, ${SRID})`;

interface Town {
  nom: string;
  x: number;
  y: number;
  /** share of the clustered features */
  w: number;
  /** spread (m) of the dense urban cluster */
  sigma: number;
  pop: number;
}

const TOWNS: Town[] = [
  { nom: 'Strasbourg', x: 1050000, y: 6840000, w: 0.22, sigma: 1800, pop: 290000 },
  { nom: 'Reims', x: 775000, y: 6905000, w: 0.15, sigma: 1500, pop: 180000 },
  { nom: 'Metz', x: 930000, y: 6895000, w: 0.14, sigma: 1400, pop: 120000 },
  { nom: 'Nancy', x: 933000, y: 6847000, w: 0.14, sigma: 1300, pop: 105000 },
  { nom: 'Mulhouse', x: 1025500, y: 6748000, w: 0.13, sigma: 1400, pop: 108000 },
  { nom: 'Colmar', x: 1023500, y: 6788000, w: 0.08, sigma: 1100, pop: 70000 },
  { nom: 'Troyes', x: 780500, y: 6794000, w: 0.08, sigma: 1100, pop: 62000 },
  { nom: 'Charleville-Mézières', x: 823000, y: 6963000, w: 0.06, sigma: 1000, pop: 46000 },
];
const NT = TOWNS.length;
const TX = `(ARRAY[${TOWNS.map((t) => t.x).join(',')}]::float8[])`;
const TY = `(ARRAY[${TOWNS.map((t) => t.y).join(',')}]::float8[])`;
const TSIG = `(ARRAY[${TOWNS.map((t) => t.sigma).join(',')}]::float8[])`;
const TW = `(ARRAY[${TOWNS.map((t) => t.w).join(',')}]::float8[])`;

/**
 * Motorway corridors between towns (1-based indexes into TOWNS) and their numbers: the autoroutes
 * are consecutive sections of these, not one line per road.
 */
const CORRIDORS: [number, number, string][] = [
  [2, 3, 'A4'],
  [3, 1, 'A4'],
  [3, 4, 'A31'],
  [1, 6, 'A35'],
  [6, 5, 'A35'],
  [2, 7, 'A26'],
  [2, 8, 'A34'],
  [4, 1, 'A33'],
];
const NCOR = CORRIDORS.length;
/** Nationale routes: three per town (built from the villages around it, buildRoads). */
const NNC = 3 * TOWNS.length;
const CA = `(ARRAY[${CORRIDORS.map((c) => c[0]).join(',')}]::int[])`;
const CB = `(ARRAY[${CORRIDORS.map((c) => c[1]).join(',')}]::int[])`;
const CN = `(ARRAY[${CORRIDORS.map((c) => `'${c[2]}'`).join(',')}]::text[])`;

/** SQL CASE choosing a town index 1..NT from a uniform column, by weight. */
function townIdx(u: string): string {
  const total = TOWNS.reduce((s, t) => s + t.w, 0);
  let acc = 0;
  const whens = TOWNS.slice(0, -1).map((t, i) => {
    acc += t.w / total;
    return `WHEN ${u} < ${acc} THEN ${i + 1}`;
  });
  return `(CASE ${whens.join(' ')} ELSE ${NT} END)`;
}

/** Distance from (x,y) to the nearest town centre. */
function nearestTownDist(x: string, y: string): string {
  return `LEAST(${TOWNS.map((t) => `sqrt((${x} - ${t.x})^2 + (${y} - ${t.y})^2)`).join(', ')})`;
}

/** Rough département layout of Grand Est, by location (Lambert-93). */
function deptSql(x: string, y: string): string {
  return `(CASE
    WHEN ${x} < 880000 AND ${y} > 6925000 - (${x} - 760000) * 0.15 THEN '08'
    WHEN ${x} < 860000 AND ${y} >= 6805000 THEN '51'
    WHEN ${x} < 835000 THEN '10'
    WHEN ${x} < 905000 AND ${y} < 6805000 THEN '52'
    WHEN ${x} < 905000 THEN '55'
    WHEN ${x} >= 1000000 AND ${y} >= 6800000 THEN '67'
    WHEN ${x} >= 995000 AND ${y} < 6800000 THEN '68'
    WHEN ${y} >= 6880000 THEN '57'
    WHEN ${x} >= 960000 AND ${y} >= 6830000 THEN '57'
    WHEN ${x} < 960000 AND ${y} >= 6800000 THEN '54'
    ELSE '88' END)`;
}

// ---------------------------------------------------------------------------
// Word lists (French / Alsatian / Lorrain flavour)
// ---------------------------------------------------------------------------

const ROOTS = [
  'Vand',
  'Lun',
  'Épin',
  'Sarre',
  'Thion',
  'Hag',
  'Forb',
  'Mont',
  'Bar',
  'Comm',
  'Toul',
  'Pont',
  'Bou',
  'Châl',
  'Vitr',
  'Sed',
  'Rethel',
  'Baccar',
  'Raon',
  'Gér',
  'Rem',
  'Neuf',
  'Mire',
  'Dom',
  'Void',
  'Sten',
  'Dieu',
  'Saul',
  'Bitch',
  'Hay',
  'Phals',
  'Dab',
  'Marl',
  'Brum',
  'Sélest',
  'Obern',
  'Molsh',
  'Wiss',
  'Guebw',
  'Than',
  'Ribeau',
  'Kaysers',
  'Riquew',
  'Munst',
  'Altk',
  'Chaum',
  'Langr',
  'Joinv',
  'Wass',
  'Vouz',
  'Charm',
  'Rambe',
  'Brû',
  'Fréj',
  'Gondre',
  'Mouz',
  'Fum',
  'Giv',
  'Rocr',
  'Sign',
  'Crê',
  'Fêch',
  'Bœuf',
  'Ançe',
  'Haï',
  'Vœll',
  'Ars',
  'Herm',
  'Hom',
  'Blâm',
  'Maiz',
  'Sor',
  'Ess',
  'Lign',
  'Écr',
  'Nomé',
  'Aub',
  'Vern',
  'Orn',
  'Bréh',
  'Gorc',
  'Sierck',
  'Rodem',
  'Boul',
  'Vill',
];
const SUFFIXES = [
  'ville',
  'court',
  'ange',
  'ing',
  'heim',
  'willer',
  'bach',
  'ey',
  'y',
  'ay',
  'mont',
  'ières',
  'bourg',
  'ecourt',
  'hoffen',
  'sheim',
  'weiler',
  'dorf',
  'champ',
  'val',
  'é',
  'aucourt',
  'eville',
  'ancourt',
  'ach',
  'ingen',
  'stroff',
  'troff',
  'çon',
  'ël',
  'ôme',
  'ès',
  'ère',
  'ménil',
  'fontaine',
  'ecey',
  'oncourt',
  'igny',
  'euvre',
  'ivaux',
  'ancy',
  'ïs',
];
const QUALIFIERS = [
  '-sur-Moselle',
  '-lès-Nancy',
  '-en-Argonne',
  '-sur-Meuse',
  '-sur-Marne',
  '-sur-Seille',
  '-aux-Bois',
  '-le-Château',
  '-lès-Metz',
  '-en-Woëvre',
  '-sur-Sarre',
  '-devant-Verdun',
  '-la-Côte',
  '-sur-Aube',
  '-en-Champagne',
  '-sur-Saône',
  '-aux-Forges',
  '-la-Forêt',
  '-lès-Reims',
  '-sur-Ill',
  '-sous-les-Côtes',
  '-en-Ornois',
  '-Saint-Martin',
  '-sur-Vologne',
  '-le-Haut',
  '-le-Bas',
  '-sur-Mortagne',
  '-en-Saintois',
];
const SAINTS = [
  'Dié',
  'Avold',
  'Nicolas',
  'Mihiel',
  'Étienne',
  'Rémy',
  'Dizier',
  'Max',
  'Quentin',
  'Hippolyte',
  'Louis',
  'Maurice',
  'Amé',
  'Jean',
  'Léger',
  'Martin',
  'Benoît',
  'Gérard',
  'Loup',
  'Ouen',
  'Clément',
  'Èvre',
  'Germain',
  'Joseph',
  'Aubin',
  'Hilaire',
  'Mansuy',
  'Baslemont',
  'Pierremont',
  'Firmin',
];
const SAINTES = ['Marie', 'Menehould', 'Croix', 'Anne', 'Ruffine', 'Barbe', 'Colombe', 'Geneviève', 'Hélène', 'Odile', 'Ségolène'];
const LE_NAMES = ['Ménil', 'Val', 'Thillot', 'Tholy', 'Hohwald', 'Chesne', 'Bonhomme', 'Mesnil', 'Frêne', 'Châtelet', 'Pâquis', 'Syndicat'];
const LA_NAMES = [
  'Bresse',
  'Neuveville',
  'Chapelle',
  'Petite-Raon',
  'Wantzenau',
  'Broque',
  'Côte',
  'Houssière',
  'Forêt',
  'Grange',
  'Malmaison',
  'Besace',
];
const LES_NAMES = [
  'Islettes',
  'Rouges-Eaux',
  'Forges',
  'Riceys',
  'Hautes-Rivières',
  'Petites-Loges',
  'Mazures',
  'Grandes-Loges',
  'Éparges',
  'Noës',
  'Trois-Épis',
];

const PERSONS = [
  'Jean Moulin',
  'Victor Hugo',
  'Jules Ferry',
  'Louis Pasteur',
  'Marie Curie',
  'Jean Jaurès',
  'Charles de Gaulle',
  'Paul Verlaine',
  'Georges Brassens',
  "Jeanne d'Arc",
  'Albert Schweitzer',
  'Émile Zola',
  'Robert Schuman',
  'Stanislas',
  'Gustave Eiffel',
  'Jules Verne',
  'Antoine de Saint-Exupéry',
  'Françoise Dolto',
  'Simone Veil',
  'Camille Claudel',
  'Émile Gallé',
  'Maurice Barrès',
  'Louise Michel',
  'Paul Éluard',
  'Jacques Prévert',
  'Hélène Boucher',
];
const SURNAMES = [
  'Muller',
  'Schmitt',
  'Meyer',
  'Klein',
  'Weber',
  'Martin',
  'Bernard',
  'Thomas',
  'Petit',
  'Durand',
  'Lefèvre',
  'Girard',
  'François',
  'Mathieu',
  'Hoffmann',
  'Wagner',
  'Becker',
  'Fischer',
  'Lambert',
  'Rémy',
  'Gérard',
  'Noël',
  'Hérault',
  'Bœuf',
  'Schneider',
  'Humbert',
  'Jacquot',
  'Colin',
  'Laurent',
];
const STREET_TYPES = ['Rue', 'Rue', 'Rue', 'Avenue', 'Boulevard', 'Place', 'Impasse', 'Allée', 'Route', 'Quai', 'Ruelle'];
const STREET_NAMES = [
  'Jean Jaurès',
  'de la Libération',
  'Victor Hugo',
  'du Général de Gaulle',
  'de la Gare',
  'des Écoles',
  'Pasteur',
  'Clemenceau',
  'du Moulin',
  'des Lilas',
  "de l'Église",
  'de la République',
  'du Maréchal Foch',
  'Saint-Nicolas',
  'des Jardins',
  'de la Forêt',
  'du Château',
  'des Vosges',
  'de Verdun',
  'Gambetta',
  'Carnot',
  'de la Fontaine',
  'des Tilleuls',
  'du 8 Mai 1945',
  'de Lorraine',
  "d'Alsace",
  'de Champagne',
  'des Châtaigniers',
  'Émile Zola',
  'des Prés',
  'du Stade',
  'de la Côte',
  'des Vergers',
  'Jeanne d’Arc',
  'du Ruisseau',
  'des Acacias',
  'de la Mairie',
  'du Calvaire',
  'Principale',
  'des Roses',
];
const CHEMIN_NAMES = [
  'Chemin des Vignes',
  'Chemin du Moulin',
  'Chemin de la Côte',
  'Chemin des Prés',
  'Chemin de la Forêt',
  'Chemin du Calvaire',
  'Chemin des Écoliers',
  'Chemin de Halage',
  'Chemin du Bois Brûlé',
  'Chemin des Étangs',
  'Chemin de la Fontaine',
  'Sentier du Moulin',
  'Chemin des Crêtes',
  'Chemin de la Croix',
  'Chemin des Pâtures',
  'Sentier des Châtaigniers',
];
const A_NUMS = ['4', '31', '33', '34', '35', '36', '5', '26', '320', '330', '344', '350', '351', '352', '4'];
const N_NUMS = ['4', '44', '52', '57', '59', '66', '83', '353', '415', '422', '31', '51', '67', '77'];
const NATURES_TOWN = ['sol', 'sol', 'sol', 'jardins', 'jardins', 'terrains à bâtir', 'terrains d’agrément', 'sol'];
const NATURES_RURAL = [
  'terres',
  'terres',
  'terres',
  'prés',
  'prés',
  'bois',
  'bois',
  'vignes',
  'vergers',
  'landes',
  'eaux',
  'sol',
  'jardins',
  'carrières',
];

const EGLISES = [
  'Église Saint-Étienne',
  'Église Saint-Martin',
  'Église Notre-Dame',
  'Église Saint-Rémi',
  'Église Saint-Nicolas',
  'Église Saint-Maurice',
  'Église Sainte-Croix',
  'Église Saint-Pierre-et-Saint-Paul',
  'Temple protestant',
  'Église Saint-Georges',
  'Chapelle Sainte-Anne',
  'Église Saint-Léger',
  'Église Saint-Gengoult',
  'Collégiale Saint-Thiébaut',
];
const BOULANGERIES = [
  'Boulangerie du Marché',
  'Boulangerie de la Gare',
  'Au Pain Doré',
  'La Fournée Lorraine',
  'Aux Délices d’Alsace',
  'La Mie Câline',
  'Le Fournil de l’Église',
];
const PHARMACIES = [
  'Pharmacie du Centre',
  'Pharmacie de la Gare',
  "Pharmacie de l'Hôtel de Ville",
  'Grande Pharmacie',
  'Pharmacie des Vosges',
  'Pharmacie Saint-Jean',
  'Pharmacie du Marché',
];
const CLINIQUES = [
  'Clinique Sainte-Anne',
  'Clinique Saint-Joseph',
  'Hôpital Bel-Air',
  'Polyclinique des Trois Frontières',
  'Hôpital Émile Durkheim',
  'Clinique Claude Bernard',
];
const MUSEES = [
  'Musée des Beaux-Arts',
  'Musée lorrain',
  'Musée de la Mine',
  "Écomusée d'Alsace",
  "Musée de l'École de Nancy",
  "Musée de la Cour d'Or",
  'Musée du Vin de Champagne',
  'Musée de la Guerre de 1870',
  'Musée Unterlinden',
  'Musée du Textile',
  'Maison de la Nature',
  "Musée de l'Image",
  'Musée de la Faïence',
  'Musée du Cristal',
];
const RESTO_TYPES = ['Restaurant', 'Restaurant', 'Brasserie', 'Winstub', 'Auberge', 'Bistrot', 'Café-Restaurant'];
const RESTO_NAMES = [
  'du Cerf',
  "du Lion d'Or",
  'de la Cigogne',
  'des Tilleuls',
  'du Commerce',
  'de la Poste',
  'du Marché',
  'des Vignerons',
  'au Bœuf Rouge',
  "de l'Ill",
  'de la Forêt',
  'Saint-Hubert',
  'à la Couronne',
  'du Pont',
  'des Trois Rois',
  'à l’Ours Blanc',
];
const HOTELS = [
  'Hôtel de la Gare',
  'Hôtel du Commerce',
  'Hôtel de France',
  'Hôtel du Centre',
  'Hôtel des Vosges',
  'Hôtel de la Poste',
  'Hôtel Le Relais',
  'Hôtel Au Cheval Blanc',
  'Hôtel du Parc',
  'Hôtel Saint-Christophe',
  "Hôtel de l'Europe",
  'Hôtel Les Remparts',
  'Hôtel de la Cathédrale',
];
const PISCINES = [
  'Piscine municipale',
  'Centre aquatique',
  'Piscine olympique',
  'Piscine Jean Bouin',
  'Espace nautique',
  'Piscine des Trois Fontaines',
];
const ECOLE_TYPES = ['École primaire', 'École primaire', 'École maternelle', 'Groupe scolaire', 'Collège', 'Lycée'];
const CATEGORIES: [string, number][] = [
  ['restaurant', 0.18],
  ['boulangerie', 0.14],
  ['école', 0.14],
  ['mairie', 0.1],
  ['église', 0.1],
  ['pharmacie', 0.09],
  ['hôtel', 0.07],
  ['bibliothèque', 0.05],
  ['gare', 0.04],
  ['musée', 0.03],
  ['piscine', 0.03],
  ['hôpital', 0.03],
];

// ---------------------------------------------------------------------------
// SQL helpers
// ---------------------------------------------------------------------------

/**
 * Table comments of the demo layers: a title line (the layer title, see the registry), then the
 * description (the abstract).
 */
export const DEMO_COMMENTS: Record<string, string> = {
  communes:
    'Communes\nDonnées de démonstration générées : communes partitionnant le rectangle du Grand Est (demo municipalities), EPSG:2154.',
  parcels:
    'Parcelles cadastrales\nDonnées de démonstration générées : parcelles cadastrales, plus denses autour de huit villes (demo cadastral parcels), EPSG:2154.',
  roads: 'Tronçons de route\nDonnées de démonstration générées : réseau routier en cinq classes (demo road network), EPSG:2154.',
  pois: "Points d'intérêt\nDonnées de démonstration générées : points d'intérêt en douze catégories (demo points of interest), EPSG:2154.",
};

function lit(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

function num(n: number): string {
  if (!Number.isFinite(n)) throw new Error(`non-finite number ${n}`);
  return n < 0 ? `(${String(n)})` : String(n);
}

/** Element of a text list chosen by a uniform [0,1) SQL expression. */
function pick(list: string[], u: string): string {
  return `((ARRAY[${list.map(lit).join(',')}]::text[])[1 + floor(${u} * ${list.length})::int])`;
}

/** Weighted choice among text values by a uniform SQL expression (evaluated once per WHEN: pass a column). */
function wpick(items: [string, number][], u: string): string {
  const total = items.reduce((s, [, w]) => s + w, 0);
  let acc = 0;
  const whens = items.slice(0, -1).map(([v, w]) => {
    acc += w / total;
    return `WHEN ${u} < ${acc} THEN ${lit(v)}`;
  });
  return `(CASE ${whens.join(' ')} ELSE ${lit(items[items.length - 1][0])} END)`;
}

/** French "de X" with elision / contraction. */
function deSql(nom: string): string {
  return `(CASE WHEN ${nom} LIKE 'Le %' THEN 'du ' || substr(${nom}, 4)
    WHEN ${nom} LIKE 'Les %' THEN 'des ' || substr(${nom}, 5)
    WHEN ${nom} ~ '^[AEIOUYÉÈÊÂÎÔÛ]' THEN 'd''' || ${nom}
    ELSE 'de ' || ${nom} END)`;
}

/** 64-bit splitmix-style mix of (seed, salt) → signed int8 used as hash seed. */
function mix64(seed: number, salt: number): bigint {
  let z = BigInt.asUintN(64, BigInt(seed) * 0x9e3779b97f4a7c15n + BigInt(salt) * 0xbf58476d1ce4e5b9n + 0x94d049bb133111ebn);
  z = BigInt.asUintN(64, (z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n);
  z = BigInt.asUintN(64, (z ^ (z >> 27n)) * 0x94d049bb133111ebn);
  z = z ^ (z >> 31n);
  return BigInt.asIntN(64, z);
}

/** Deterministic uniform [0,1) in SQL: a pure function of (seed, salt, key). */
class Rnd {
  constructor(private readonly seed: number) {}
  u(salt: number, key: string): string {
    const s = mix64(this.seed, salt);
    return `((hashint8extended((${key})::int8, (${s.toString()})::int8) & 9007199254740991)::float8 / 9007199254740992.0)`;
  }
  /** Standard normal deviate (Box–Muller) from two streams. */
  gauss(salt: number, key: string): string {
    return `(sqrt(-2.0 * ln(1.0 - ${this.u(salt, key)})) * cos(2.0 * pi() * ${this.u(salt + 1, key)}))`;
  }
}

/** Small seeded PRNG (mulberry32) used only for the few constants of the noise field. */
function mulberry32(seed: number): () => number {
  let a = (Math.floor(seed) ^ Math.floor(seed / 4294967296) ^ 0x5bd1e995) >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function quoteIdent(s: string): string {
  return `"${s.replace(/"/g, '""')}"`;
}

// ---------------------------------------------------------------------------
// Generator
// ---------------------------------------------------------------------------

export async function generateDemo(pool: pg.Pool, opts: DemoOptions = {}): Promise<DemoSummary> {
  const seed = opts.seed ?? 42;
  const nCommunes = opts.communes ?? 5000;
  const nParcels = opts.parcels ?? 200000;
  const nRoads = opts.roads ?? 20000;
  const nPois = opts.pois ?? 20000;
  const schemaName = opts.schema ?? 'public';
  const log = opts.log ?? (() => undefined);

  if (!Number.isSafeInteger(seed)) throw new Error('demo: seed must be a safe integer');
  for (const [k, v, min] of [
    ['communes', nCommunes, 2],
    ['parcels', nParcels, 0],
    ['roads', nRoads, 0],
    ['pois', nPois, 0],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < min || v > 50_000_000) throw new Error(`demo: ${k} must be an integer >= ${min}`);
  }
  if (!schemaName) throw new Error('demo: schema must not be empty');

  const S = quoteIdent(schemaName);
  const R = new Rnd(seed);
  const t0 = Date.now();
  let tStage = t0;
  const stage = (msg: string): void => {
    const now = Date.now();
    log(`demo: ${msg} (${((now - tStage) / 1000).toFixed(1)}s)`);
    tStage = now;
  };

  const client = await pool.connect();
  try {
    const ext = await client.query(`SELECT 1 FROM pg_extension WHERE extname = 'postgis'`);
    if (ext.rowCount === 0) await client.query('CREATE EXTENSION IF NOT EXISTS postgis');

    await client.query('BEGIN');
    await client.query(`SET LOCAL client_min_messages = warning`);
    await client.query(`SET LOCAL work_mem = '256MB'`);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${S}`);
    for (const t of ['pois', 'roads', 'parcels', 'communes']) {
      await client.query(`DROP TABLE IF EXISTS ${S}.${t} CASCADE`);
    }
    log(`demo: seed=${seed} communes=${nCommunes} parcels=${nParcels} roads=${nRoads} pois=${nPois} schema=${schemaName}`);

    await buildCommunes(client, S, R, seed, nCommunes);
    stage(`communes built`);
    await buildParcels(client, S, R, nParcels, nCommunes);
    stage(`parcels built`);
    await buildRoads(client, S, R, nRoads, nCommunes);
    stage(`roads built`);
    await buildPois(client, S, R, nPois, nCommunes);
    stage(`pois built`);

    // Indexes, comments.
    const ddl = [
      `CREATE INDEX ON ${S}.communes (nom)`,
      `CREATE INDEX ON ${S}.parcels USING gist (geom)`,
      `CREATE INDEX ON ${S}.parcels (insee)`,
      `CREATE INDEX ON ${S}.parcels (idu)`,
      `CREATE INDEX ON ${S}.roads USING gist (geom)`,
      `CREATE INDEX ON ${S}.roads (classe)`,
      `CREATE INDEX ON ${S}.pois USING gist (geom)`,
      `CREATE INDEX ON ${S}.pois (categorie)`,
      ...Object.entries(DEMO_COMMENTS).map(([t, c]) => `COMMENT ON TABLE ${S}.${t} IS ${lit(c)}`),
    ];
    for (const q of ddl) await client.query(q);
    stage('indexes created');

    const counts: Record<string, number> = {};
    for (const t of ['communes', 'parcels', 'roads', 'pois']) {
      const r = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${S}.${t}`);
      counts[t] = Number(r.rows[0].n);
    }
    if (counts.parcels !== nParcels) {
      throw new Error(`demo: generated ${counts.parcels} parcels instead of ${nParcels}`);
    }
    await client.query('COMMIT');
    for (const t of ['communes', 'parcels', 'roads', 'pois']) await client.query(`ANALYZE ${S}.${t}`);
    stage('committed and analyzed');
    const seconds = (Date.now() - t0) / 1000;
    log(`demo: done in ${seconds.toFixed(1)}s: ${JSON.stringify(counts)}`);
    return { seed, counts, seconds };
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw e;
  } finally {
    client.release();
  }
}

// ---------------------------------------------------------------------------
// Communes: Voronoi partition, densified, displaced by a smooth noise field
// ---------------------------------------------------------------------------

async function buildCommunes(client: pg.PoolClient, S: string, R: Rnd, seed: number, n: number): Promise<void> {
  // Seeds: 80% uniform, 20% around the towns (smaller communes near towns).
  // vsig: spread of the "village" cluster attached to this commune (used by parcels/pois/roads).
  await client.query(`
    CREATE TEMP TABLE _cseed ON COMMIT DROP AS
    SELECT i AS id, x, y, vsig, ST_SetSRID(ST_MakePoint(x, y), ${SRID}) AS geom
    FROM (
      SELECT i, vsig,
        least(greatest(CASE WHEN ut < 0.8 THEN ${XMIN} + ux * ${W} ELSE ${TX}[tk] + 15000 * g1 END, ${XMIN + 1}), ${XMAX - 1}) AS x,
        least(greatest(CASE WHEN ut < 0.8 THEN ${YMIN} + uy * ${H} ELSE ${TY}[tk] + 15000 * g2 END, ${YMIN + 1}), ${YMAX - 1}) AS y
      FROM (
        SELECT i, ${R.u(101, 'i')} AS ut, ${R.u(102, 'i')} AS ux, ${R.u(103, 'i')} AS uy,
          ${townIdx(R.u(104, 'i'))} AS tk, ${R.gauss(105, 'i')} AS g1, ${R.gauss(107, 'i')} AS g2,
          200 + 600 * ${R.u(109, 'i')} AS vsig
        FROM generate_series(1, ${n}) AS i
        OFFSET 0) a
    ) b`);
  await client.query(`CREATE INDEX ON _cseed USING gist (geom)`);
  await client.query(`ANALYZE _cseed`);

  // Voronoi cells clipped to the rectangle (cells are convex, so the box clip is exact and valid).
  await client.query(`
    CREATE TEMP TABLE _ccell ON COMMIT DROP AS
    SELECT DISTINCT ON (s.id) s.id, ST_ClipByBox2D(v.geom, ${ENV}::box2d) AS geom
    FROM (
      SELECT d.path[1] AS cell_no, d.geom
      FROM ST_Dump((SELECT ST_VoronoiPolygons(ST_Collect(geom ORDER BY id), 0, ${ENV}) FROM _cseed)) AS d
    ) v
    JOIN _cseed s ON ST_Intersects(v.geom, s.geom)
    ORDER BY s.id, v.cell_no`);

  // Smooth displacement field: a sum of sinusoids at three scales, with a
  // gradient bounded by ~0.35 per component so the mapping stays one-to-one,
  // tapered to zero on the outer rectangle.
  const scale = Math.sqrt(AREA / n); // typical commune size
  const seg = Math.max(5, (4 * scale) / 250); // ≈ 250 vertices per commune ring
  const prng = mulberry32(seed * 7 + 3);
  const octaves: [number, number][] = [
    [0.9 * scale, 0.15],
    [0.3 * scale, 0.12],
    [0.1 * scale, 0.08],
  ];
  let amax = 0;
  const terms = (): string => {
    const parts: string[] = [];
    let amp = 0;
    for (const [lambda, grad] of octaves) {
      for (let j = 0; j < 2; j++) {
        const a = ((grad / 2) * lambda) / (2 * Math.PI);
        const ang = prng() * 2 * Math.PI;
        const k = (2 * Math.PI) / lambda;
        const kx = k * Math.cos(ang);
        const ky = k * Math.sin(ang);
        const ph = prng() * 2 * Math.PI;
        amp += a;
        parts.push(`${num(a)} * sin(${num(kx)} * X + ${num(ky)} * Y + ${num(ph)})`);
      }
    }
    amax = Math.max(amax, amp);
    return parts.join(' + ');
  };
  const fx = terms();
  const fy = terms();
  const taperLen = 10 * amax;

  await client.query(`
    CREATE TEMP TABLE _cgeom ON COMMIT DROP AS
    WITH pts AS (
      SELECT c.id, (c.d).path[2] AS k, ST_X((c.d).geom) AS x, ST_Y((c.d).geom) AS y
      FROM (
        SELECT id, ST_DumpPoints(ST_SnapToGrid(ST_Segmentize(ST_SnapToGrid(geom, 0.01), ${seg}), 0.01)) AS d
        FROM _ccell
      ) c
    ), disp AS (
      SELECT id, k,
        x + t * (${fx.replace(/X/g, 'xr').replace(/Y/g, 'yr')}) AS nx,
        y + t * (${fy.replace(/X/g, 'xr').replace(/Y/g, 'yr')}) AS ny
      FROM (
        SELECT id, k, x, y, x - ${XMIN} AS xr, y - ${YMIN} AS yr,
          least(1.0, least(x - ${XMIN}, ${XMAX} - x, y - ${YMIN}, ${YMAX} - y) / ${taperLen}) AS t
        FROM pts
      ) q
    ), rings AS (
      SELECT id, ST_MakeLine(ST_SnapToGrid(ST_MakePoint(nx, ny), 0.01) ORDER BY k) AS ring
      FROM disp GROUP BY id
    )
    SELECT id, ST_SetSRID(ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_MakePolygon(ring)), 3)), ${SRID}) AS geom
    FROM rings
    WHERE ST_NPoints(ring) >= 4`);
  await client.query(`DELETE FROM _cgeom WHERE ST_IsEmpty(geom)`);
  await client.query(`CREATE INDEX ON _cgeom USING gist (geom)`);

  // Which commune holds each reference town (gets its name and population).
  const townsValues = TOWNS.map((t, i) => `(${i + 1}, ${lit(t.nom)}, ${t.pop}, ST_SetSRID(ST_MakePoint(${t.x}, ${t.y}), ${SRID}))`).join(
    ',',
  );
  await client.query(`
    CREATE TEMP TABLE _ctown ON COMMIT DROP AS
    SELECT DISTINCT ON (g.id) g.id, t.nom, t.pop
    FROM (VALUES ${townsValues}) AS t(k, nom, pop, geom)
    JOIN _cgeom g ON ST_Intersects(g.geom, t.geom)
    ORDER BY g.id, t.k`);

  const nameSql = `(CASE
      WHEN n1 < 0.10 THEN 'Saint-' || ${pick(SAINTS, 'n2')}
      WHEN n1 < 0.13 THEN 'Sainte-' || ${pick(SAINTES, 'n2')}
      WHEN n1 < 0.16 THEN 'Le ' || ${pick(LE_NAMES, 'n2')}
      WHEN n1 < 0.19 THEN 'La ' || ${pick(LA_NAMES, 'n2')}
      WHEN n1 < 0.21 THEN 'Les ' || ${pick(LES_NAMES, 'n2')}
      ELSE ${pick(ROOTS, 'n3')} || ${pick(SUFFIXES, 'n4')}
    END || CASE WHEN n5 < 0.15 THEN ${pick(QUALIFIERS, 'n6')} ELSE '' END)`;

  await client.query(`
    CREATE TABLE ${S}.communes (
      id integer PRIMARY KEY,
      insee text NOT NULL UNIQUE,
      nom text NOT NULL,
      population integer NOT NULL,
      superficie_km2 double precision NOT NULL,
      chef_lieu boolean NOT NULL,
      date_maj date,
      code_postal text,
      geom geometry(MultiPolygon, ${SRID}) NOT NULL
    )`);
  await client.query(`
    INSERT INTO ${S}.communes (id, insee, nom, population, superficie_km2, chef_lieu, date_maj, code_postal, geom)
    SELECT id,
      dept || CASE WHEN rn <= 999 THEN lpad(rn::text, 3, '0')
                   WHEN rn <= 3599 THEN chr(65 + ((rn - 1000) / 100)::int) || lpad(((rn - 1000) % 100)::text, 2, '0')
                   ELSE lpad(rn::text, 6, '0') END,
      nom, population, superficie_km2,
      town OR prank <= greatest(1, dcount / 40),
      date_maj,
      CASE WHEN upc < 0.05 THEN NULL
           WHEN town THEN dept || '000'
           ELSE dept || lpad((10 * (1 + floor(upc * 98))::int)::text, 3, '0') END,
      geom
    FROM (
      SELECT b.*,
        row_number() OVER (PARTITION BY dept ORDER BY nom, id) AS rn,
        row_number() OVER (PARTITION BY dept ORDER BY population DESC, id) AS prank,
        count(*) OVER (PARTITION BY dept) AS dcount
      FROM (
        SELECT g.id, g.geom, ${deptSql('s.x', 's.y')} AS dept,
          coalesce(t.nom, ${nameSql}) AS nom,
          (t.id IS NOT NULL) AS town,
          coalesce(t.pop, round(exp(5.0 + 1.1 * zg) * (1 + 6 * exp(0.0 - (${nearestTownDist('s.x', 's.y')} / 12000.0)^2)))::int) AS population,
          round((ST_Area(g.geom) / 1e6)::numeric, 3)::float8 AS superficie_km2,
          date '2019-01-01' + floor(ud * 1800)::int AS date_maj,
          upc
        FROM _cgeom g
        JOIN _cseed s USING (id)
        LEFT JOIN _ctown t USING (id)
        CROSS JOIN LATERAL (SELECT
          ${R.u(111, 'g.id')} AS n1, ${R.u(112, 'g.id')} AS n2, ${R.u(113, 'g.id')} AS n3,
          ${R.u(114, 'g.id')} AS n4, ${R.u(115, 'g.id')} AS n5, ${R.u(116, 'g.id')} AS n6,
          ${R.gauss(117, 'g.id')} AS zg, ${R.u(119, 'g.id')} AS ud, ${R.u(120, 'g.id')} AS upc) r
      ) b
    ) c`);
  await client.query(`CREATE INDEX ON ${S}.communes USING gist (geom)`);
  await client.query(`ANALYZE ${S}.communes`);
}

// ---------------------------------------------------------------------------
// Parcels: Voronoi cells of clustered seeds, computed per 5 km chunk
// ---------------------------------------------------------------------------

async function buildParcels(client: pg.PoolClient, S: string, R: Rnd, n: number, nCommunes: number): Promise<void> {
  const CH = 5000;
  const NCX = Math.ceil(W / CH);
  const NCY = Math.ceil(H / CH);
  const nTownShare = 0.5;
  const nVillageShare = 0.45;
  const nTown = n * nTownShare;
  const nVillage = (n * nVillageShare) / nCommunes;
  const nIsolated = n * (1 - nTownShare - nVillageShare);

  await client.query(`
    CREATE TEMP TABLE _pseed ON COMMIT DROP AS
    SELECT id, kind, x, y, r, chunk, ST_SetSRID(ST_MakePoint(x, y), ${SRID}) AS geom
    FROM (
      SELECT id, kind, x, y,
        least(450.0, greatest(6.0, 0.85 / sqrt(greatest(dens, 1e-12)))) AS r,
        least(floor((y - ${YMIN}) / ${CH})::int, ${NCY - 1}) * ${NCX} + least(floor((x - ${XMIN}) / ${CH})::int, ${NCX - 1}) AS chunk
      FROM (
        SELECT id, kind,
          least(greatest(x0, ${XMIN + 0.5}), ${XMAX - 0.5}) AS x,
          least(greatest(y0, ${YMIN + 0.5}), ${YMAX - 0.5}) AS y,
          dens
        FROM (
          SELECT a.id, a.kind,
            CASE a.kind WHEN 1 THEN ${TX}[a.tk] + ${TSIG}[a.tk] * a.gr * cos(a.ga)
                        WHEN 2 THEN s.x + s.vsig * a.gr * cos(a.ga)
                        ELSE ${XMIN} + a.ux * ${W} END AS x0,
            CASE a.kind WHEN 1 THEN ${TY}[a.tk] + ${TSIG}[a.tk] * a.gr * sin(a.ga)
                        WHEN 2 THEN s.y + s.vsig * a.gr * sin(a.ga)
                        ELSE ${YMIN} + a.uy * ${H} END AS y0,
            CASE a.kind WHEN 1 THEN ${nTown} * ${TW}[a.tk] / (2 * pi() * ${TSIG}[a.tk]^2) * exp(0.0 - a.gr^2 / 2)
                        WHEN 2 THEN ${nVillage} / (2 * pi() * s.vsig^2) * exp(0.0 - a.gr^2 / 2)
                        ELSE ${nIsolated / AREA} END AS dens
          FROM (
            SELECT i AS id,
              CASE WHEN ut < ${nTownShare} THEN 1 WHEN ut < ${nTownShare + nVillageShare} THEN 2 ELSE 3 END AS kind,
              ${townIdx('uc')} AS tk,
              1 + floor(uc * ${nCommunes})::int AS vj,
              sqrt(-2.0 * ln(1.0 - ua)) AS gr, 2.0 * pi() * ub AS ga, ux, uy
            FROM (
              SELECT i, ${R.u(201, 'i')} AS ut, ${R.u(202, 'i')} AS uc, ${R.u(203, 'i')} AS ua,
                ${R.u(204, 'i')} AS ub, ${R.u(205, 'i')} AS ux, ${R.u(206, 'i')} AS uy
              FROM generate_series(1, ${n}::bigint) AS i
              OFFSET 0) u
            OFFSET 0) a
          LEFT JOIN _cseed s ON s.id = a.vj AND a.kind = 2
        OFFSET 0) b
      ) c
    ) d`);

  // Voronoi diagram per chunk; a chunk with a single seed is its own cell.
  const chunkEnv = `ST_MakeEnvelope(${XMIN} + (chunk % ${NCX}) * ${CH}, ${YMIN} + (chunk / ${NCX}) * ${CH}, ${XMIN} + (chunk % ${NCX} + 1) * ${CH}, ${YMIN} + (chunk / ${NCX} + 1) * ${CH}, ${SRID})`;
  await client.query(`
    CREATE TEMP TABLE _pvor ON COMMIT DROP AS
    SELECT v.chunk, d.path[1] AS cell_no, ST_ClipByBox2D(d.geom, v.env::box2d) AS geom
    FROM (
      SELECT chunk, ${chunkEnv} AS env, ST_VoronoiPolygons(ST_Collect(geom ORDER BY id), 0, ${chunkEnv}) AS vg
      FROM _pseed GROUP BY chunk HAVING count(*) > 1
    ) v, ST_Dump(v.vg) AS d
    UNION ALL
    SELECT chunk, 1, ${chunkEnv}
    FROM _pseed GROUP BY chunk HAVING count(*) = 1`);
  await client.query(`CREATE INDEX ON _pseed USING gist (geom)`);
  await client.query(`ANALYZE _pseed`);
  await client.query(`ANALYZE _pvor`);

  // Match each cell to its seed; clip it to its chunk and to a box sized by the local density.
  await client.query(`
    CREATE TEMP TABLE _pcell ON COMMIT DROP AS
    SELECT DISTINCT ON (p.id) p.id,
      ST_ClipByBox2D(v.geom, ST_MakeBox2D(ST_Point(p.x - p.r, p.y - p.r), ST_Point(p.x + p.r, p.y + p.r))) AS geom
    FROM _pvor v
    CROSS JOIN LATERAL (
      SELECT q.id, q.x, q.y, q.r FROM _pseed q
      WHERE q.geom && v.geom AND q.chunk = v.chunk AND ST_Intersects(v.geom, q.geom)
    ) p
    ORDER BY p.id, v.cell_no`);

  // Commune of each parcel (by its seed point); nearest commune as a fallback.
  await client.query(`
    CREATE TEMP TABLE _pcom ON COMMIT DROP AS
    SELECT DISTINCT ON (p.id) p.id, c.insee
    FROM ${S}.communes c JOIN _pseed p ON ST_Intersects(c.geom, p.geom)
    ORDER BY p.id, c.id`);
  await client.query(`CREATE UNIQUE INDEX ON _pcom (id)`);
  await client.query(`
    INSERT INTO _pcom
    SELECT p.id, (SELECT c.insee FROM ${S}.communes c ORDER BY c.geom <-> p.geom LIMIT 1)
    FROM _pseed p WHERE NOT EXISTS (SELECT 1 FROM _pcom q WHERE q.id = p.id)`);

  await client.query(`
    CREATE TABLE ${S}.parcels (
      id bigint PRIMARY KEY,
      idu text NOT NULL,
      insee text NOT NULL,
      section text NOT NULL,
      numero integer NOT NULL,
      contenance integer NOT NULL,
      nature text,
      bati boolean,
      valeur double precision,
      date_maj date,
      updated_at timestamptz,
      geom geometry(MultiPolygon, ${SRID}) NOT NULL
    )`);
  await client.query(`
    INSERT INTO ${S}.parcels (id, idu, insee, section, numero, contenance, nature, bati, valeur, date_maj, updated_at, geom)
    SELECT id,
      insee || '000' || section || CASE WHEN numero < 10000 THEN lpad(numero::text, 4, '0') ELSE numero::text END,
      insee, section, numero::int, contenance,
      CASE WHEN u1 < 0.06 THEN NULL
           WHEN kind = 1 THEN ${pick(NATURES_TOWN, 'u2')}
           ELSE ${pick(NATURES_RURAL, 'u2')} END,
      CASE WHEN u3 < 0.08 THEN NULL
           ELSE u4 < (CASE kind WHEN 1 THEN 0.6 WHEN 2 THEN 0.3 ELSE 0.08 END) END,
      CASE WHEN u5 < 0.2 THEN NULL
           ELSE round((contenance * (CASE kind WHEN 1 THEN 60 + 900 * u6 WHEN 2 THEN 5 + 250 * u6 ELSE 0.3 + 5 * u6 END))::numeric, 2)::float8 END,
      date '2018-01-01' + floor(u7 * 2500)::int,
      CASE WHEN u8 < 0.03 THEN NULL
           ELSE timestamptz '2023-01-01 00:00:00+00' + floor(u8 * 63072000)::bigint * interval '1 second' END,
      geom
    FROM (
      SELECT q.*, row_number() OVER (PARTITION BY insee, section ORDER BY id) AS numero
      FROM (
        SELECT p.id, p.kind, c.insee,
          chr(65 + ((floor(p.x / 1500)::bigint * 7 + floor(p.y / 1500)::bigint * 13) % 26)::int)
            || chr(65 + ((floor(p.x / 1500)::bigint * 3 + floor(p.y / 1500)::bigint * 11 + 5) % 26)::int) AS section,
          round(ST_Area(g.geom))::int AS contenance,
          ST_Multi(g.geom) AS geom,
          ${R.u(211, 'p.id')} AS u1, ${R.u(212, 'p.id')} AS u2, ${R.u(213, 'p.id')} AS u3, ${R.u(214, 'p.id')} AS u4,
          ${R.u(215, 'p.id')} AS u5, ${R.u(216, 'p.id')} AS u6, ${R.u(217, 'p.id')} AS u7, ${R.u(218, 'p.id')} AS u8
        FROM _pseed p
        JOIN _pcell g USING (id)
        JOIN _pcom c USING (id)
      ) q
    ) z`);
}

// ---------------------------------------------------------------------------
// Roads
// ---------------------------------------------------------------------------

async function buildRoads(client: pg.PoolClient, S: string, R: Rnd, n: number, nCommunes: number): Promise<void> {
  // Nationale routes: three from each town, to the village 20–45 km away closest to one of three
  // directions a third of a turn apart (the nationales are consecutive sections of these).
  await client.query(`
    CREATE TEMP TABLE _ncor ON COMMIT DROP AS
    SELECT 1 + c AS corr, ${TX}[1 + c % ${NT}] AS tx, ${TY}[1 + c % ${NT}] AS ty, e.x AS ex, e.y AS ey
    FROM generate_series(0, ${NNC - 1}) AS c
    CROSS JOIN LATERAL (
      SELECT x, y FROM _cseed
      WHERE sqrt((x - ${TX}[1 + c % ${NT}]) ^ 2 + (y - ${TY}[1 + c % ${NT}]) ^ 2) BETWEEN 20000 AND 45000
      ORDER BY cos(atan2(y - ${TY}[1 + c % ${NT}], x - ${TX}[1 + c % ${NT}]) - 2 * pi() * ((c / ${NT}) / 3.0 + 0.13 * (c % ${NT}))) DESC, id
      LIMIT 1) e`);
  await client.query(`
    CREATE TEMP TABLE _road ON COMMIT DROP AS
    WITH u AS MATERIALIZED (
      SELECT i, ${R.u(301, 'i')} AS uc, ${townIdx(R.u(302, 'i'))} AS tk, ${R.u(303, 'i')} AS utk2,
        1 + floor(${R.u(304, 'i')} * ${nCommunes})::int AS vj,
        ${R.gauss(305, 'i')} AS g1, ${R.gauss(307, 'i')} AS g2, ${R.gauss(309, 'i')} AS g3, ${R.gauss(311, 'i')} AS g4,
        ${R.u(313, 'i')} AS ul, ${R.u(314, 'i')} AS uth, ${R.u(315, 'i')} AS un, ${R.u(316, 'i')} AS ua,
        ${R.u(317, 'i')} AS uloc, ${R.u(318, 'i')} AS ux, ${R.u(319, 'i')} AS uy,
        ${R.u(320, 'i')} AS f1, ${R.u(321, 'i')} AS f2, ${R.u(322, 'i')} AS p1, ${R.u(323, 'i')} AS p2
      FROM generate_series(1, ${n}) AS i
    ), c AS MATERIALIZED (
      SELECT u.*, CASE WHEN uc < 0.02 THEN 1 WHEN uc < 0.08 THEN 2 WHEN uc < 0.35 THEN 3 WHEN uc < 0.75 THEN 4 ELSE 5 END AS cl,
        1 + ((tk + floor(utk2 * ${NT - 1})::int) % ${NT}) AS tk2
      FROM u
    ), s AS MATERIALIZED (
      SELECT c.*,
        CASE
          WHEN cl = 1 THEN ${TX}[tk] + 3000 * g1
          WHEN cl = 2 THEN ${TX}[tk] + 8000 * g1
          WHEN cl = 3 THEN cs.x
          WHEN cl = 4 AND uloc < 0.6 THEN ${TX}[tk] + 1.3 * ${TSIG}[tk] * g1
          WHEN cl = 5 AND uloc < 0.2 THEN ${XMIN} + ux * ${W}
          ELSE cs.x + (CASE cl WHEN 3 THEN 1000 WHEN 4 THEN 400 ELSE 1500 END) * g1 END AS sx,
        CASE
          WHEN cl = 1 THEN ${TY}[tk] + 3000 * g2
          WHEN cl = 2 THEN ${TY}[tk] + 8000 * g2
          WHEN cl = 3 THEN cs.y
          WHEN cl = 4 AND uloc < 0.6 THEN ${TY}[tk] + 1.3 * ${TSIG}[tk] * g2
          WHEN cl = 5 AND uloc < 0.2 THEN ${YMIN} + uy * ${H}
          ELSE cs.y + (CASE cl WHEN 3 THEN 1000 WHEN 4 THEN 400 ELSE 1500 END) * g2 END AS sy0,
        CASE cl WHEN 1 THEN 0 WHEN 2 THEN 15000 + 35000 * ul WHEN 3 THEN 3000 + 17000 * ul
                WHEN 4 THEN 100 + 1400 * ul ELSE 300 + 2700 * ul END AS len,
        CASE cl WHEN 1 THEN 40 + floor(un * 41) WHEN 2 THEN 30 + floor(un * 31) WHEN 3 THEN 20 + floor(un * 31)
                WHEN 4 THEN 10 + floor(un * 21) ELSE 10 + floor(un * 31) END::int AS nv,
        CASE cl WHEN 1 THEN 0.03 WHEN 2 THEN 0.05 WHEN 3 THEN 0.06 WHEN 4 THEN 0.05 ELSE 0.12 END * (0.5 + ua) AS wig
      FROM c LEFT JOIN _cseed cs ON cs.id = c.vj
    ), e AS MATERIALIZED (
      -- a départementale links its village to one of the three nearest other villages (PostGIS KNN)
      SELECT s.*,
        CASE WHEN cl = 1 THEN ${TX}[tk2] + 3000 * g3 - sx WHEN cl = 3 AND nb.x IS NOT NULL THEN nb.x - sx ELSE len * cos(2 * pi() * uth) END AS ddx,
        CASE WHEN cl = 1 THEN ${TY}[tk2] + 3000 * g4 - sy0 WHEN cl = 3 AND nb.y IS NOT NULL THEN nb.y - sy0 ELSE len * sin(2 * pi() * uth) END AS ddy
      FROM s
      LEFT JOIN LATERAL (
        SELECT n.x, n.y FROM _cseed n
        WHERE s.cl = 3 AND n.id <> s.vj
        ORDER BY n.geom <-> ST_SetSRID(ST_MakePoint(s.sx, s.sy0), ${SRID}), n.id
        OFFSET floor(s.ux * 3)::int LIMIT 1) nb ON true
    ), m AS MATERIALIZED (
      -- margin: wiggle amplitude + vertex jitter + 5 m, so every vertex stays inside the rectangle
      SELECT e.*, (wig + 0.3 / nv) * sqrt(ddx ^ 2 + ddy ^ 2) + 5 AS mg
      FROM e
    ), k AS MATERIALIZED (
      SELECT m.*, least(greatest(sx, ${XMIN} + mg), ${XMAX} - mg) AS x0,
        least(greatest(sy0, ${YMIN} + mg), ${YMAX} - mg) AS y0
      FROM m
    ), f AS MATERIALIZED (
      -- end point: reflected back when it would leave the rectangle (not for motorways), then clamped
      SELECT k.*,
        least(greatest(CASE WHEN cl <> 1 AND (x0 + ddx > ${XMAX} - mg OR x0 + ddx < ${XMIN} + mg) THEN x0 - ddx ELSE x0 + ddx END, ${XMIN} + mg), ${XMAX} - mg) AS x1,
        least(greatest(CASE WHEN cl <> 1 AND (y0 + ddy > ${YMAX} - mg OR y0 + ddy < ${YMIN} + mg) THEN y0 - ddy ELSE y0 + ddy END, ${YMIN} + mg), ${YMAX} - mg) AS y1
      FROM k
    ), g AS MATERIALIZED (
      -- autoroutes: the j-th of a corridor's k sections runs over [j/k, (j+1)/k] of the corridor
      SELECT f.*, CASE WHEN cl <= 2 THEN 1 + (mr % nc) END AS corr, mr / nc AS sec,
        count(*) OVER (PARTITION BY cl, mr % nc) AS nsec
      FROM (SELECT f.*, (row_number() OVER (PARTITION BY cl ORDER BY i) - 1)::int AS mr,
              CASE cl WHEN 1 THEN ${NCOR} WHEN 2 THEN ${NNC} ELSE 1 END AS nc FROM f) f
    )
    SELECT i, cl, tk, nv, g.corr,
      CASE WHEN cl <= 2 THEN (g.corr * 0.37 + cl * 0.5) % 1 ELSE f1 END AS f1, CASE WHEN cl <= 2 THEN (g.corr * 0.61) % 1 ELSE f2 END AS f2,
      CASE WHEN cl <= 2 THEN (g.corr * 0.23) % 1 ELSE p1 END AS p1, CASE WHEN cl <= 2 THEN (g.corr * 0.71 + cl * 0.3) % 1 ELSE p2 END AS p2,
      CASE WHEN cl <= 2 THEN 0.025 ELSE wig END AS wig,
      CASE WHEN cl <= 2 THEN sec::float8 / nsec ELSE 0 END AS ta, CASE WHEN cl <= 2 THEN (sec + 1)::float8 / nsec ELSE 1 END AS tb,
      CASE cl WHEN 1 THEN ${TX}[${CA}[g.corr]] WHEN 2 THEN nc.tx ELSE x0 END AS x0,
      CASE cl WHEN 1 THEN ${TY}[${CA}[g.corr]] WHEN 2 THEN nc.ty ELSE y0 END AS y0,
      CASE WHEN cl = 1 THEN ${TX}[${CB}[g.corr]] WHEN cl = 2 THEN nc.ex
           WHEN abs(x1 - x0) + abs(y1 - y0) < 1 THEN x0 + CASE WHEN x0 < ${(XMIN + XMAX) / 2} THEN 50 ELSE -50 END ELSE x1 END AS x1,
      CASE cl WHEN 1 THEN ${TY}[${CB}[g.corr]] WHEN 2 THEN nc.ey ELSE y1 END AS y1
    FROM g LEFT JOIN _ncor nc ON g.cl = 2 AND nc.corr = g.corr`);

  await client.query(`
    CREATE TEMP TABLE _rgeom ON COMMIT DROP AS
    SELECT i, ST_SetSRID(ST_MakeLine(ST_MakePoint(px, py) ORDER BY kk), ${SRID}) AS geom
    FROM (
      SELECT r.i, kk,
        r.x0 + t * dx + (-dy / l) * a * w + jx AS px,
        r.y0 + t * dy + (dx / l) * a * w + jy AS py
      FROM _road r
      CROSS JOIN LATERAL (SELECT r.x1 - r.x0 AS dx, r.y1 - r.y0 AS dy, sqrt((r.x1 - r.x0)^2 + (r.y1 - r.y0)^2) AS l) d
      CROSS JOIN LATERAL generate_series(0, r.nv - 1) AS kk
      CROSS JOIN LATERAL (SELECT CASE WHEN kk = r.nv - 1 THEN r.tb ELSE r.ta + kk::float8 / (r.nv - 1) * (r.tb - r.ta) END AS t) tt
      CROSS JOIN LATERAL (SELECT
        r.wig * l AS a,
        sin(pi() * t) * (0.65 * sin(2 * pi() * (0.5 + 1.5 * r.f1) * t + 2 * pi() * r.p1)
                       + 0.35 * sin(2 * pi() * (2 + 3 * r.f2) * t + 2 * pi() * r.p2)) AS w,
        CASE WHEN kk = 0 OR kk = r.nv - 1 THEN 0 ELSE (${R.u(331, 'r.i * 256 + kk')} - 0.5) * 0.3 * l * (r.tb - r.ta) / r.nv END AS jx,
        CASE WHEN kk = 0 OR kk = r.nv - 1 THEN 0 ELSE (${R.u(332, 'r.i * 256 + kk')} - 0.5) * 0.3 * l * (r.tb - r.ta) / r.nv END AS jy) ww
    ) q
    GROUP BY i`);

  const communaleName = `(CASE WHEN v2 < 0.04 THEN 'Grand''Rue'
      ELSE ${pick(STREET_TYPES, 'v3')} || ' ' || ${pick(STREET_NAMES, 'v4')} END)`;
  await client.query(`
    CREATE TABLE ${S}.roads (
      id integer PRIMARY KEY,
      classe text NOT NULL,
      nom text,
      numero text,
      largeur double precision,
      sens_unique boolean,
      date_mise_service date,
      geom geometry(LineString, ${SRID}) NOT NULL
    )`);
  await client.query(`
    INSERT INTO ${S}.roads (id, classe, nom, numero, largeur, sens_unique, date_mise_service, geom)
    SELECT i,
      (ARRAY['autoroute','nationale','departementale','communale','chemin'])[cl],
      CASE cl WHEN 1 THEN ${CN}[corr] WHEN 2 THEN 'N' || (3 + 7 * corr) WHEN 3 THEN 'D' || dn
              WHEN 4 THEN ${communaleName}
              ELSE CASE WHEN v1 < 0.4 THEN NULL WHEN v2 < 0.2 THEN 'Chemin rural n°' || (1 + floor(v5 * 60))::int
                        ELSE ${pick(CHEMIN_NAMES, 'v4')} END END,
      CASE cl WHEN 1 THEN ${CN}[corr] WHEN 2 THEN 'N' || (3 + 7 * corr) WHEN 3 THEN 'D' || dn
              WHEN 4 THEN CASE WHEN v1 < 0.6 THEN NULL ELSE 'VC' || (1 + floor(v5 * 40))::int END
              ELSE CASE WHEN v1 < 0.5 THEN NULL ELSE 'CR' || (1 + floor(v5 * 80))::int END END,
      CASE WHEN (cl = 5 AND v6 < 0.3) OR (cl = 4 AND v6 < 0.1) THEN NULL
           ELSE round((CASE cl WHEN 1 THEN 25 + 10 * v7 WHEN 2 THEN 9 + 5 * v7 WHEN 3 THEN 6 + 3 * v7
                               WHEN 4 THEN 4 + 4 * v7 ELSE 2.5 + 1.5 * v7 END)::numeric, 1)::float8 END,
      CASE WHEN cl = 5 AND v8 < 0.2 THEN NULL ELSE cl = 4 AND v8 > 0.85 END,
      CASE WHEN v9 < 0.1 THEN NULL
           ELSE date '1950-01-01' + floor((CASE cl WHEN 1 THEN 0.3 + 0.7 * v10 ELSE v10 END) * 26000)::int END,
      g.geom
    FROM (
      SELECT r.*, ${pick(A_NUMS, R.u(341, 'r.i'))} AS an, ${pick(N_NUMS, R.u(342, 'r.i'))} AS nn,
        (1 + floor(${R.u(343, 'r.i')} ^ 2 * 1200))::int::text AS dn,
        ${R.u(344, 'r.i')} AS v1, ${R.u(345, 'r.i')} AS v2, ${R.u(346, 'r.i')} AS v3, ${R.u(347, 'r.i')} AS v4,
        ${R.u(348, 'r.i')} AS v5, ${R.u(349, 'r.i')} AS v6, ${R.u(350, 'r.i')} AS v7, ${R.u(351, 'r.i')} AS v8,
        ${R.u(352, 'r.i')} AS v9, ${R.u(353, 'r.i')} AS v10
      FROM _road r
    OFFSET 0) r
    JOIN _rgeom g USING (i)`);
}

// ---------------------------------------------------------------------------
// Points of interest
// ---------------------------------------------------------------------------

async function buildPois(client: pg.PoolClient, S: string, R: Rnd, n: number, nCommunes: number): Promise<void> {
  await client.query(`
    CREATE TEMP TABLE _poi ON COMMIT DROP AS
    SELECT i, cat,
      ST_SetSRID(ST_MakePoint(least(greatest(x0, ${XMIN + 1}), ${XMAX - 1}), least(greatest(y0, ${YMIN + 1}), ${YMAX - 1})), ${SRID}) AS geom
    FROM (
      SELECT a.i, a.cat,
        CASE WHEN a.ul < 0.55 THEN ${TX}[a.tk] + 1.2 * ${TSIG}[a.tk] * a.g1 ELSE s.x + s.vsig * 0.8 * a.g1 END AS x0,
        CASE WHEN a.ul < 0.55 THEN ${TY}[a.tk] + 1.2 * ${TSIG}[a.tk] * a.g2 ELSE s.y + s.vsig * 0.8 * a.g2 END AS y0
      FROM (
        SELECT i, ${wpick(CATEGORIES, 'uc')} AS cat, ul, tk, vj, g1, g2
        FROM (
          SELECT i, ${R.u(401, 'i')} AS uc, ${R.u(402, 'i')} AS ul, ${townIdx(R.u(403, 'i'))} AS tk,
            1 + floor(${R.u(404, 'i')} * ${nCommunes})::int AS vj,
            ${R.gauss(405, 'i')} AS g1, ${R.gauss(407, 'i')} AS g2
          FROM generate_series(1, ${n}) AS i
        ) u
      ) a
      LEFT JOIN _cseed s ON s.id = a.vj
    ) b`);

  const cname = 'cm.nom';
  const nameSql = `(CASE cat
    WHEN 'école' THEN ${pick(ECOLE_TYPES, 'w1')} || ' ' || ${pick(PERSONS, 'w2')}
    WHEN 'mairie' THEN CASE WHEN cm.population > 40000 THEN 'Hôtel de ville ' ELSE 'Mairie ' END || ${deSql(cname)}
    WHEN 'église' THEN ${pick(EGLISES, 'w2')}
    WHEN 'boulangerie' THEN CASE WHEN w1 < 0.5 THEN 'Boulangerie ' || ${pick(SURNAMES, 'w2')} ELSE ${pick(BOULANGERIES, 'w2')} END
    WHEN 'pharmacie' THEN CASE WHEN w1 < 0.5 THEN 'Pharmacie ' || ${pick(SURNAMES, 'w2')} ELSE ${pick(PHARMACIES, 'w2')} END
    WHEN 'gare' THEN 'Gare ' || ${deSql(cname)}
    WHEN 'hôpital' THEN CASE WHEN w1 < 0.6 THEN 'Centre hospitalier ' || ${deSql(cname)} ELSE ${pick(CLINIQUES, 'w2')} END
    WHEN 'musée' THEN ${pick(MUSEES, 'w2')}
    WHEN 'restaurant' THEN ${pick(RESTO_TYPES, 'w1')} || ' ' || ${pick(RESTO_NAMES, 'w2')}
    WHEN 'hôtel' THEN ${pick(HOTELS, 'w2')}
    WHEN 'bibliothèque' THEN CASE WHEN w1 < 0.5 THEN 'Médiathèque ' || ${pick(PERSONS, 'w2')} ELSE 'Bibliothèque municipale ' || ${deSql(cname)} END
    ELSE ${pick(PISCINES, 'w2')} || CASE WHEN w1 < 0.5 THEN ' ' || ${deSql(cname)} ELSE '' END
  END)`;
  const capSql = `(CASE cat
    WHEN 'école' THEN 50 + floor(w4 * 750)
    WHEN 'hôpital' THEN 50 + floor(w4 * 1450)
    WHEN 'hôtel' THEN 8 + floor(w4 * 190)
    WHEN 'restaurant' THEN 15 + floor(w4 * 235)
    WHEN 'piscine' THEN 100 + floor(w4 * 1400)
    WHEN 'musée' THEN 50 + floor(w4 * 1950)
    WHEN 'église' THEN 80 + floor(w4 * 700)
    ELSE NULL END)::int`;
  const dimancheSql = `(CASE cat
    WHEN 'boulangerie' THEN 0.6 WHEN 'restaurant' THEN 0.7 WHEN 'hôtel' THEN 1.0 WHEN 'pharmacie' THEN 0.1
    WHEN 'musée' THEN 0.8 WHEN 'piscine' THEN 0.5 WHEN 'église' THEN 1.0 WHEN 'gare' THEN 1.0
    WHEN 'hôpital' THEN 1.0 WHEN 'bibliothèque' THEN 0.2 ELSE 0.0 END)`;

  await client.query(`
    CREATE TABLE ${S}.pois (
      id integer PRIMARY KEY,
      categorie text NOT NULL,
      nom text NOT NULL,
      adresse text,
      capacite integer,
      note real,
      ouvert_dimanche boolean,
      date_creation date,
      geom geometry(Point, ${SRID}) NOT NULL
    )`);
  await client.query(`
    INSERT INTO ${S}.pois (id, categorie, nom, adresse, capacite, note, ouvert_dimanche, date_creation, geom)
    SELECT i, cat, ${nameSql},
      CASE WHEN w3 < 0.15 THEN NULL
           ELSE (1 + floor(w5 * 150))::int || ' ' || lower(${pick(STREET_TYPES, 'w6')}) || ' ' || ${pick(STREET_NAMES, 'w7')}
                || ', ' || coalesce(cm.code_postal, left(cm.insee, 2) || '000') || ' ' || cm.nom END,
      CASE WHEN w8 < 0.1 THEN NULL ELSE ${capSql} END,
      CASE WHEN w9 < 0.3 THEN NULL ELSE round((2.5 + 2.5 * w10)::numeric, 1)::real END,
      CASE WHEN w11 < 0.05 THEN NULL ELSE w12 < ${dimancheSql} END,
      CASE WHEN w13 < 0.1 THEN NULL ELSE date '1880-01-01' + floor(w14 * 52000)::int END,
      p.geom
    FROM (
      SELECT p.*, ${R.u(411, 'p.i')} AS w1, ${R.u(412, 'p.i')} AS w2, ${R.u(413, 'p.i')} AS w3,
        ${R.u(414, 'p.i')} AS w4, ${R.u(415, 'p.i')} AS w5, ${R.u(416, 'p.i')} AS w6, ${R.u(417, 'p.i')} AS w7,
        ${R.u(418, 'p.i')} AS w8, ${R.u(419, 'p.i')} AS w9, ${R.u(420, 'p.i')} AS w10, ${R.u(421, 'p.i')} AS w11,
        ${R.u(422, 'p.i')} AS w12, ${R.u(423, 'p.i')} AS w13, ${R.u(424, 'p.i')} AS w14
      FROM _poi p
    OFFSET 0) p
    CROSS JOIN LATERAL (
      SELECT x.nom, x.insee, x.code_postal, x.population FROM (
        (SELECT c.nom, c.insee, c.code_postal, c.population, 0 AS pri FROM ${S}.communes c
         WHERE ST_Intersects(c.geom, p.geom) ORDER BY c.id LIMIT 1)
        UNION ALL
        (SELECT c.nom, c.insee, c.code_postal, c.population, 1 AS pri FROM ${S}.communes c
         ORDER BY c.geom <-> p.geom LIMIT 1)
      ) x ORDER BY x.pri LIMIT 1
    ) cm`);
}
