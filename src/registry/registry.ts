/**
 * The layer registry: which PostGIS tables are published, and what they hold, from config plus
 * introspection (geometry column, type, SRID, primary key, fields, extents, row estimate).
 * Reloadable without a restart: reload() builds a new snapshot and swaps it in at once.
 */
import type pg from 'pg';
import type { Config, LayerConfig } from '../config/index.js';
import type { Extent, FieldInfo, FieldType, GeometryType, Layer } from './types.js';

interface GeomColumnRow {
  schema: string;
  table: string;
  column: string;
  type: string;
  srid: number;
  comment: string | null;
  reltuples: number;
}

export class RegistryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryError';
  }
}

export function fieldTypeOf(pgType: string): FieldType {
  const t = pgType.toLowerCase();
  if (t.endsWith('[]')) return 'array';
  if (t === 'smallint' || t === 'integer') return 'integer';
  if (t === 'bigint') return 'long';
  if (t === 'real' || t === 'double precision' || t.startsWith('numeric')) return 'number';
  if (t === 'boolean') return 'boolean';
  if (t === 'date') return 'date';
  if (t.startsWith('timestamp')) return 'datetime';
  if (t.startsWith('time')) return 'time';
  if (t === 'json' || t === 'jsonb') return 'json';
  if (t === 'uuid') return 'uuid';
  if (t === 'bytea') return 'binary';
  return 'string';
}

function boxToExtent(b: string | null): Extent | null {
  // BOX(minx miny,maxx maxy)
  if (!b) return null;
  const m = /BOX\(([-\d.eE+]+) ([-\d.eE+]+),([-\d.eE+]+) ([-\d.eE+]+)\)/.exec(b);
  if (!m) return null;
  return { minx: Number(m[1]), miny: Number(m[2]), maxx: Number(m[3]), maxy: Number(m[4]) };
}

function splitTable(ref: string): { schema: string; table: string } {
  const i = ref.indexOf('.');
  return i >= 0 ? { schema: ref.slice(0, i), table: ref.slice(i + 1) } : { schema: 'public', table: ref };
}

/**
 * Title and abstract from a table comment written like a commit message: a first line of at most
 * 120 characters, a blank line (or just a line break), then the description. A one-line comment
 * is only an abstract (it may be a sentence, not a name).
 */
export function commentTitle(comment: string | null): { title?: string; abstract?: string } {
  if (!comment) return {};
  const m = comment.match(/^([^\r\n]+)\r?\n([\s\S]*)$/);
  if (!m || m[1].trim().length > 120 || !m[1].trim()) return { abstract: comment };
  const rest = m[2].trim();
  return { title: m[1].trim(), abstract: rest || undefined };
}

function defaultTitle(table: string): string {
  const s = table.replace(/_/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export class Registry {
  private layers = new Map<string, Layer>();
  private order: string[] = [];
  /** Incremented on every successful (re)load. */
  version = 0;
  loadedAt: Date | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly config: Config,
  ) {}

  get loaded(): boolean {
    return this.loadedAt !== null;
  }

  /** The registry itself, every layer in it, whichever view it is asked of (access views, src/security/access.ts). */
  get unrestricted(): Registry {
    return this;
  }

  list(): Layer[] {
    return this.order.map((n) => this.layers.get(n)!);
  }

  get(name: string): Layer | undefined {
    return this.layers.get(name);
  }

  /** Lookup that also accepts a namespace prefix (ns:name), as WFS/WMS clients send. */
  resolve(name: string): Layer | undefined {
    const direct = this.layers.get(name);
    if (direct) return direct;
    const i = name.indexOf(':');
    return i >= 0 ? this.layers.get(name.slice(i + 1)) : undefined;
  }

  /**
   * The registry as one caller sees it (src/security/access.ts builds it per request): list()
   * holds only the layers it may read, and get()/resolve() of a layer it may not read answer
   * undefined, exactly as for a name that does not exist, so a front door that is given a view
   * cannot reveal nor serve a restricted layer by mistake.
   */
  viewFor(canRead: (l: Layer) => boolean, onUse?: (l: Layer) => void): Registry {
    const view = Object.create(this) as Registry;
    Object.defineProperty(view, 'unrestricted', { value: this.unrestricted });
    const check = (l: Layer | undefined) => {
      if (l === undefined || !canRead(l)) return undefined;
      onUse?.(l); // a layer a request names: counted in metrics and usage statistics
      return l;
    };
    view.list = () => this.list().filter(canRead);
    view.get = (name: string) => check(this.get(name));
    view.resolve = (name: string) => check(this.resolve(name));
    return view;
  }

  async reload(): Promise<void> {
    const next = await this.introspect();
    this.layers = new Map(next.map((l) => [l.name, l]));
    this.order = next.map((l) => l.name);
    this.version++;
    this.loadedAt = new Date();
  }

  private async geometryColumns(): Promise<GeomColumnRow[]> {
    const r = await this.pool.query<GeomColumnRow>(
      `SELECT g.f_table_schema AS schema, g.f_table_name AS table, g.f_geometry_column AS column,
              upper(g.type) AS type, g.srid, obj_description(c.oid, 'pg_class') AS comment,
              greatest(c.reltuples, 0)::float8 AS reltuples
         FROM geometry_columns g
         JOIN pg_namespace n ON n.nspname = g.f_table_schema
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = g.f_table_name
        ORDER BY g.f_table_schema, g.f_table_name, g.f_geometry_column`,
    );
    return r.rows;
  }

  private async introspect(): Promise<Layer[]> {
    const cols = await this.geometryColumns();
    const byTable = new Map<string, GeomColumnRow[]>();
    for (const c of cols) {
      const k = `${c.schema}.${c.table}`;
      byTable.set(k, [...(byTable.get(k) ?? []), c]);
    }
    const specs: { cfg: LayerConfig; geom: GeomColumnRow }[] = [];
    if (this.config.layers) {
      for (const [i, lc] of this.config.layers.entries()) {
        const { schema, table } = splitTable(lc.table);
        const candidates = byTable.get(`${schema}.${table}`);
        if (!candidates)
          throw new RegistryError(`layers[${i}].table: '${lc.table}' is not a table or view with a registered geometry column`);
        const geom = lc.geometryColumn ? candidates.find((c) => c.column === lc.geometryColumn) : candidates[0];
        if (!geom) throw new RegistryError(`layers[${i}].geometryColumn: '${lc.geometryColumn}' is not a geometry column of '${lc.table}'`);
        specs.push({ cfg: lc, geom });
      }
    } else {
      const schemas = new Set(this.config.database.schemas);
      for (const [, list] of byTable) {
        const g = list[0];
        if (!schemas.has(g.schema)) continue;
        specs.push({ cfg: { table: `${g.schema}.${g.table}` }, geom: g });
      }
    }
    const names = new Set<string>();
    const layers: Layer[] = [];
    // bounded parallelism: a platform may have thousands of tables
    const queue = [...specs];
    const results = new Map<number, Layer>();
    const workers = Array.from({ length: Math.min(4, queue.length) }, async () => {
      for (;;) {
        const idx = specs.length - queue.length;
        const spec = queue.shift();
        if (!spec) return;
        results.set(idx, await this.describe(spec.cfg, spec.geom));
      }
    });
    await Promise.all(workers);
    for (let i = 0; i < specs.length; i++) {
      const l = results.get(i)!;
      if (names.has(l.name)) {
        if (this.config.layers) throw new RegistryError(`layers[${i}].name: duplicate layer name '${l.name}'`);
        l.name = `${l.schema}_${l.table}`;
      }
      names.add(l.name);
      layers.push(l);
    }
    return layers;
  }

  private async describe(cfg: LayerConfig, g: GeomColumnRow): Promise<Layer> {
    const fieldsR = await this.pool.query<{ name: string; pgtype: string; notnull: boolean }>(
      `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS pgtype, a.attnotnull AS notnull
         FROM pg_attribute a
         JOIN pg_class c ON c.oid = a.attrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [g.schema, g.table],
    );
    const geomCols = new Set<string>();
    const fields: FieldInfo[] = [];
    for (const r of fieldsR.rows) {
      if (r.pgtype.startsWith('geometry') || r.pgtype.startsWith('geography') || r.pgtype === 'raster') {
        geomCols.add(r.name);
        continue;
      }
      fields.push({ name: r.name, pgType: r.pgtype, type: fieldTypeOf(r.pgtype), nullable: !r.notnull });
    }
    const pkR = await this.pool.query<{ name: string }>(
      `SELECT a.attname AS name
         FROM pg_index i
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
        WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary`,
      [g.schema, g.table],
    );
    const primaryKey = pkR.rows.length === 1 ? pkR.rows[0].name : null;
    const qt = `"${g.schema.replace(/"/g, '""')}"."${g.table.replace(/"/g, '""')}"`;
    const qg = `"${g.column.replace(/"/g, '""')}"`;
    let estimatedExtent: Extent | null = null;
    try {
      const e = await this.pool.query<{ b: string | null }>('SELECT ST_EstimatedExtent($1, $2, $3)::text AS b', [
        g.schema,
        g.table,
        g.column,
      ]);
      estimatedExtent = boxToExtent(e.rows[0]?.b ?? null);
    } catch {
      estimatedExtent = null; // no statistics yet
    }
    const ex = await this.pool.query<{ b: string | null; w: string | null }>(
      `WITH e AS (SELECT ST_Extent(${qg}) AS b FROM ${qt})
       SELECT b::text AS b,
              CASE WHEN b IS NULL OR ${g.srid} = 0 THEN NULL
                   WHEN ${g.srid} = 4326 THEN b::text
                   ELSE (SELECT ST_Extent(x)::text FROM (SELECT ST_Transform(ST_Segmentize(ST_SetSRID(b::geometry, ${g.srid}),
                          greatest(ST_XMax(b) - ST_XMin(b), ST_YMax(b) - ST_YMin(b)) / 16 + 1e-9), 4326) AS x) s) END AS w
         FROM e`,
    );
    const extent = boxToExtent(ex.rows[0]?.b ?? null);
    const wgs84Extent = boxToExtent(ex.rows[0]?.w ?? null);
    const name = cfg.name ?? g.table;
    const temporalField = cfg.temporalField ?? null;
    if (temporalField && !fields.some((f) => f.name === temporalField)) {
      throw new RegistryError(`layer '${name}': temporalField '${temporalField}' is not a column of ${g.schema}.${g.table}`);
    }
    return {
      name,
      title: cfg.title ?? commentTitle(g.comment).title ?? defaultTitle(g.table),
      abstract: cfg.abstract ?? commentTitle(g.comment).abstract ?? '',
      keywords: cfg.keywords ?? [],
      schema: g.schema,
      table: g.table,
      geometryColumn: g.column,
      geometryType: normaliseGeomType(g.type),
      srid: g.srid,
      primaryKey,
      fields: fields.filter((f) => !geomCols.has(f.name)),
      extent,
      estimatedExtent,
      wgs84Extent,
      rowEstimate: Math.round(g.reltuples),
      queryable: cfg.queryable ?? true,
      defaultStyle: cfg.defaultStyle ?? 'default',
      styles: cfg.styles ?? {},
      access: { public: cfg.access?.public ?? true, roles: cfg.access?.roles ?? [] },
      temporalField,
      extra: { metadata: cfg.metadata ?? {}, cache: cfg.cache ?? {}, overview: cfg.overview },
    };
  }
}

function normaliseGeomType(t: string): GeometryType {
  const u = t.toUpperCase().replace(/[ZM]+$/, '');
  const known: GeometryType[] = ['POINT', 'LINESTRING', 'POLYGON', 'MULTIPOINT', 'MULTILINESTRING', 'MULTIPOLYGON', 'GEOMETRYCOLLECTION'];
  return (known as string[]).includes(u) ? (u as GeometryType) : 'GEOMETRY';
}
