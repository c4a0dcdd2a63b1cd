/** Configuration: one YAML file validated against schemas/config.schema.json. */
import { readFileSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Ajv, type ErrorObject } from 'ajv';
import addFormats from 'ajv-formats';

export interface ContactConfig {
  person?: string;
  organisation?: string;
  position?: string;
  email?: string;
  phone?: string;
  address?: string;
  city?: string;
  postcode?: string;
  country?: string;
  url?: string;
}

export interface LayerConfig {
  name?: string;
  table: string;
  geometryColumn?: string;
  title?: string;
  abstract?: string;
  keywords?: string[];
  queryable?: boolean;
  defaultStyle?: string;
  styles?: Record<string, Record<string, unknown>>;
  temporalField?: string;
  access?: { public?: boolean; roles?: string[] };
  metadata?: Record<string, unknown>;
  cache?: Record<string, unknown>;
  /** Pre-generalised overview of this layer (src/overviews/): false to disable, or overrides. */
  overview?: boolean | Record<string, unknown>;
}

export interface Config {
  service: {
    title: string;
    abstract: string;
    keywords: string[];
    onlineResource?: string;
    fees: string;
    accessConstraints: string;
    language: string;
    contact: ContactConfig;
    inspire?: { metadataUrl?: string; language?: string; spatialDatasetIdentifierNamespace?: string };
  };
  database: {
    url?: string;
    schemas: string[];
    poolSize: number;
    statementTimeoutMs: number;
    /** Hot-standby replicas that serve reads (renders, tiles, feature pages, exports). */
    replicas: string[];
    replicaPoolSize: number;
    replicaCheckMs: number;
    /** The primary without the pooler: LISTEN and session-level locks (default: url). */
    directUrl?: string;
    /** url goes through a pooler in transaction mode (PgBouncer pool_mode=transaction). */
    transactionPooling: boolean;
  };
  server: {
    port: number;
    host: string;
    trustProxy: boolean;
    shutdownGraceMs: number;
    /** A request's headers and body must arrive within this time (408 and connection closed otherwise). */
    requestTimeoutMs: number;
    /** Worker processes sharing the port (node:cluster); 1 = this process serves alone (src/cluster.ts). */
    processes: number;
  };
  /** The Redis every process of a cluster shares (src/ops/shared.ts); absent = PostgreSQL only. */
  redis: { url?: string };
  limits: {
    maxFeatures: number;
    defaultCount: number;
    maxImageWidth: number;
    maxImageHeight: number;
    maxBodyBytes: number;
    renderTimeoutMs: number;
    maxConcurrentRenders: number;
    renderQueue: number;
    /** Feature streams (WFS GetFeature, OGC API items, downloads) running at once, and waiting. */
    maxConcurrentExports: number;
    exportQueue: number;
    /** Longest wait for a render or stream slot before 503 (ms). */
    maxQueueWaitMs: number;
    /** Waiters per slot served in arrival order; a deeper queue is standing (newest first, oldest refused). */
    orderedQueuePerSlot: number;
    /** Median event-loop delay (ms, a 20 ms probe's ticks over the last second) above which new heavy requests are refused with 503; 0 = never. */
    shedEventLoopDelayMs: number;
    /** Largest bbox one request may ask for, in km² (WMS GetMap, WFS, OGC API, downloads); unset = no limit. */
    maxBboxAreaKm2?: number;
    /** OGC API – Features: items per page when `limit` is absent, and the largest `limit` accepted. */
    itemsDefaultLimit: number;
    itemsMaxLimit: number;
    /** Byte cap of a file-based download's temporary directory. */
    downloadTempBytes: number;
    /** Queries one WFS GetFeature/GetPropertyValue may carry (wfs:Query elements, TYPENAMES groups, stored query calls). */
    maxQueriesPerRequest: number;
    /** Layers one WMS GetMap/GetFeatureInfo may draw or query (LAYERS, QUERY_LAYERS, SLD NamedLayers, groups expanded). */
    maxLayersPerMap: number;
    /** XML in requests (POST bodies, FILTER, SLD_BODY): elements, attributes, nesting depth; checked before parsing. */
    maxXmlElements: number;
    maxXmlAttributes: number;
    maxXmlDepth: number;
  };
  demo: { autoload: boolean; seed: number; parcels: number };
  security: {
    realm: string;
    users: { name: string; passwordHash: string; roles: string[] }[];
    apiKeys: { name: string; keyHash: string; roles: string[] }[];
    rateLimit: { enabled: boolean; max: number; windowMs: number; authenticatedMax: number };
  };
  ops: {
    metricsToken?: string;
    metricsPort?: number;
    /** Addresses (IP or CIDR) that may read /metrics on the main port without the token; default loopback when no token is set. */
    metricsAllow?: string[];
    usageFlushSeconds: number;
  };
  /** Catalogue: remote catalogues harvested on a schedule. */
  catalog?: {
    schema?: string;
    /** Derive dataset and service records from the layers (default true). */
    deriveFromLayers?: boolean;
    /** Refuse imported records that fail the INSPIRE / EU vocabulary checks (default false: accept, report). */
    strictImport?: boolean;
    /** DCAT-AP defaults for this server's own records (src/catalog/dcat.ts dcatDefaults). */
    dcat?: { publisherType?: string; defaultThemes?: string[] };
    harvest?: { name: string; url: string; type: 'csw' | 'dcat'; intervalMinutes?: number; minKeptShare?: number; maxPages?: number }[];
  };
  /** Tile cache settings, raw (defaults applied by src/tiles/engine.ts tilesOptions). */
  tiles?: Record<string, unknown>;
  /** Pre-generalised overviews of big layers, raw (defaults applied by overviewOptions in src/overviews/model.ts). */
  overviews?: Record<string, unknown>;
  /** undefined = publish every spatial table. */
  layers?: LayerConfig[];
  /** WMS options: `sldUrl` enables the GetMap SLD parameter for URLs under the listed prefixes (defaults in src/services/wms/sld-url.ts). */
  wms?: { sldUrl?: { allowed: string[]; timeoutMs?: number; maxBytes?: number; cacheSeconds?: number } };
  /** Output formats: the ogr2ogr command, and format ids not to offer (src/features/formats.ts). */
  formats?: { ogr2ogr?: string; exclude?: string[] };
  /** WMS layer groups (name → member layers, bottom first). */
  layerGroups: { name: string; title?: string; abstract?: string; layers: string[] }[];
  /** Path of the file the config came from, if any. */
  source?: string;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** Project root: works from src/config (vitest) and dist/src/config (built). */
export const projectRoot = findRoot(here);

function findRoot(start: string): string {
  let dir = start;
  for (let i = 0; i < 6; i++) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'schemas'))) return dir;
    dir = path.dirname(dir);
  }
  return process.cwd();
}

let validator: (((data: unknown) => boolean) & { errors?: ErrorObject[] | null }) | undefined;

function getValidator() {
  if (!validator) {
    const schema = JSON.parse(readFileSync(path.join(projectRoot, 'schemas', 'config.schema.json'), 'utf8'));
    const ajv = new Ajv({ allErrors: true, strict: false });
    (addFormats as unknown as (a: Ajv) => void)(ajv);
    validator = ajv.compile(schema);
  }
  return validator;
}

/** Turn ajv errors into messages naming the faulty key and why. */
export function describeErrors(errors: ErrorObject[]): string[] {
  return errors.map((e) => {
    const where = e.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : '(top level)';
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = (e.params as { additionalProperty: string }).additionalProperty;
        const full = e.instancePath ? `${where}.${key}` : key;
        return `unknown key '${full}' (not allowed ${e.instancePath ? `in '${where}'` : 'at the top level'})`;
      }
      case 'required':
        return `'${where}' is missing required key '${(e.params as { missingProperty: string }).missingProperty}'`;
      case 'type':
        return `'${where}' ${e.message}`;
      default:
        return `'${where}' ${e.message}`;
    }
  });
}

/** Validate a raw (parsed) config object and fill in defaults. Throws ConfigError. */
export function validateConfig(raw: unknown, source?: string): Config {
  const data = raw ?? {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`${source ?? 'config'}: the configuration must be a mapping of keys`);
  }
  const v = getValidator();
  if (!v(data)) {
    const msgs = describeErrors(v.errors ?? []);
    throw new ConfigError(`${source ?? 'config'} is invalid:\n  - ${msgs.join('\n  - ')}`);
  }
  const c = data as Record<string, any>;
  const s = c.service ?? {};
  const cfg: Config = {
    service: {
      title: s.title ?? 'Geodata server',
      abstract: s.abstract ?? 'OGC services (WMS, WFS, WMTS, OGC API Features, CSW) over PostGIS.',
      keywords: s.keywords ?? ['WMS', 'WFS', 'PostGIS'],
      onlineResource: s.onlineResource,
      fees: s.fees ?? 'none',
      accessConstraints: s.accessConstraints ?? 'none',
      language: s.language ?? 'fre',
      contact: s.contact ?? {},
      inspire: s.inspire,
    },
    database: {
      url: c.database?.url,
      schemas: c.database?.schemas ?? ['public'],
      poolSize: c.database?.poolSize ?? 10,
      statementTimeoutMs: c.database?.statementTimeoutMs ?? 60000,
      replicas: c.database?.replicas ?? [],
      replicaPoolSize: c.database?.replicaPoolSize ?? c.database?.poolSize ?? 10,
      replicaCheckMs: c.database?.replicaCheckMs ?? 1000,
      directUrl: c.database?.directUrl,
      transactionPooling: c.database?.transactionPooling ?? false,
    },
    server: {
      port: c.server?.port ?? 8080,
      host: c.server?.host ?? '127.0.0.1',
      trustProxy: c.server?.trustProxy ?? false,
      shutdownGraceMs: c.server?.shutdownGraceMs ?? 10000,
      requestTimeoutMs: c.server?.requestTimeoutMs ?? 30000,
      processes: c.server?.processes ?? Math.max(1, availableParallelism()),
    },
    redis: { url: c.redis?.url },
    limits: {
      maxFeatures: c.limits?.maxFeatures ?? 1000000,
      defaultCount: c.limits?.defaultCount ?? 1000000,
      maxImageWidth: c.limits?.maxImageWidth ?? 4096,
      maxImageHeight: c.limits?.maxImageHeight ?? 4096,
      maxBodyBytes: c.limits?.maxBodyBytes ?? 2 * 1024 * 1024,
      renderTimeoutMs: c.limits?.renderTimeoutMs ?? 30000,
      maxConcurrentRenders: c.limits?.maxConcurrentRenders ?? 4,
      renderQueue: c.limits?.renderQueue ?? 1000,
      maxConcurrentExports: c.limits?.maxConcurrentExports ?? Math.max(1, (c.database?.poolSize ?? 10) - 2),
      exportQueue: c.limits?.exportQueue ?? 1000,
      maxQueueWaitMs: c.limits?.maxQueueWaitMs ?? 10000,
      orderedQueuePerSlot: c.limits?.orderedQueuePerSlot ?? 16,
      shedEventLoopDelayMs: c.limits?.shedEventLoopDelayMs ?? 150,
      maxBboxAreaKm2: c.limits?.maxBboxAreaKm2,
      itemsDefaultLimit: c.limits?.itemsDefaultLimit ?? 10,
      itemsMaxLimit: c.limits?.itemsMaxLimit ?? 10000,
      downloadTempBytes: c.limits?.downloadTempBytes ?? 4 * 1024 ** 3,
      maxQueriesPerRequest: c.limits?.maxQueriesPerRequest ?? 50,
      maxLayersPerMap: c.limits?.maxLayersPerMap ?? 100,
      maxXmlElements: c.limits?.maxXmlElements ?? 10000,
      maxXmlAttributes: c.limits?.maxXmlAttributes ?? 20000,
      maxXmlDepth: c.limits?.maxXmlDepth ?? 64,
    },
    demo: {
      autoload: c.demo?.autoload ?? true,
      seed: c.demo?.seed ?? 42,
      parcels: c.demo?.parcels ?? 200000,
    },
    security: {
      realm: c.security?.realm ?? 'geodata',
      users: (c.security?.users ?? []).map((u: any) => ({ name: u.name, passwordHash: u.passwordHash, roles: u.roles ?? [] })),
      apiKeys: (c.security?.apiKeys ?? []).map((k: any) => ({ name: k.name, keyHash: k.keyHash, roles: k.roles ?? [] })),
      rateLimit: {
        enabled: c.security?.rateLimit?.enabled ?? false,
        max: c.security?.rateLimit?.max ?? 600,
        windowMs: c.security?.rateLimit?.windowMs ?? 60_000,
        authenticatedMax: c.security?.rateLimit?.authenticatedMax ?? 6000,
      },
    },
    ops: {
      metricsToken: c.ops?.metricsToken,
      metricsPort: c.ops?.metricsPort,
      metricsAllow: c.ops?.metricsAllow,
      usageFlushSeconds: c.ops?.usageFlushSeconds ?? 60,
    },
    tiles: c.tiles,
    overviews: c.overviews,
    layers: c.layers,
    wms: c.wms,
    formats: c.formats,
    layerGroups: (c.layerGroups ?? []).map((g: any) => ({ name: g.name, title: g.title, abstract: g.abstract, layers: g.layers })),
    catalog: c.catalog,
    source,
  };
  return cfg;
}

/**
 * Database settings that only make sense together: a transaction pooler cannot carry LISTEN (the
 * change feed) nor session-level locks, so database.transactionPooling needs database.directUrl.
 */
export function checkDatabase(cfg: Config, source = 'config'): void {
  const d = cfg.database;
  if (d.transactionPooling && !d.directUrl)
    throw new ConfigError(
      `${source}: database.transactionPooling needs database.directUrl (or DATABASE_DIRECT_URL), a URL of the primary that bypasses the pooler: LISTEN and session locks cannot go through a pooler in transaction mode`,
    );
  for (const u of d.replicas)
    if (!/^postgres(ql)?:\/\//.test(u))
      throw new ConfigError(`${source}: database.replicas: '${u.replace(/:[^:@/]*@/, ':***@')}' is not a postgres:// URL`);
}

/**
 * Load the configuration: the file named by GEODATA_CONFIG (or the given path), else ./config.yaml
 * when present, else defaults. Environment variables PORT, HOST, PROCESSES, REDIS_URL and DATABASE_URL override the file.
 */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  const candidate = file || env.GEODATA_CONFIG || (existsSync('config.yaml') ? 'config.yaml' : undefined);
  let raw: unknown = {};
  if (candidate) {
    if (!existsSync(candidate)) throw new ConfigError(`config file not found: ${candidate}`);
    const text = readFileSync(candidate, 'utf8');
    const doc = YAML.parseDocument(text);
    if (doc.errors.length) {
      throw new ConfigError(`${candidate}: YAML syntax error: ${doc.errors[0].message}`);
    }
    raw = doc.toJS() ?? {};
  }
  const cfg = validateConfig(raw, candidate);
  if (env.PORT) {
    const p = Number(env.PORT);
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new ConfigError(`PORT must be an integer 0-65535, got '${env.PORT}'`);
    cfg.server.port = p;
  }
  if (env.HOST) cfg.server.host = env.HOST;
  if (env.PROCESSES) {
    const n = Number(env.PROCESSES);
    if (!Number.isInteger(n) || n < 1 || n > 256) throw new ConfigError(`PROCESSES must be an integer 1-256, got '${env.PROCESSES}'`);
    cfg.server.processes = n;
  }
  if (env.REDIS_URL) cfg.redis.url = env.REDIS_URL;
  if (env.METRICS_TOKEN) cfg.ops.metricsToken = env.METRICS_TOKEN;
  if (env.METRICS_PORT) cfg.ops.metricsPort = Number(env.METRICS_PORT);
  if (env.DATABASE_URL) cfg.database.url = env.DATABASE_URL;
  if (env.DATABASE_DIRECT_URL) cfg.database.directUrl = env.DATABASE_DIRECT_URL;
  if (env.DATABASE_REPLICAS !== undefined)
    cfg.database.replicas = env.DATABASE_REPLICAS.split(',')
      .map((u) => u.trim())
      .filter(Boolean);
  checkDatabase(cfg, candidate);
  if (env.DEMO_PARCELS) {
    const n = Number(env.DEMO_PARCELS);
    if (!Number.isInteger(n) || n < 0) throw new ConfigError(`DEMO_PARCELS must be a non-negative integer, got '${env.DEMO_PARCELS}'`);
    cfg.demo.parcels = n;
  }
  return cfg;
}
