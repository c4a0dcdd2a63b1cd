/** Types shared by the layer registry and every engine that reads it. */

/** Logical type of an attribute column, derived from the PostgreSQL type. */
export type FieldType =
  | 'string'
  | 'integer' // int2, int4
  | 'long' // int8
  | 'number' // float4, float8, numeric
  | 'boolean'
  | 'date'
  | 'datetime' // timestamp, timestamptz
  | 'time'
  | 'json'
  | 'uuid'
  | 'binary'
  | 'array';

export interface FieldInfo {
  /** Column name as in PostgreSQL (also the public property name). */
  name: string;
  type: FieldType;
  /** PostgreSQL type name as reported by format_type(). */
  pgType: string;
  nullable: boolean;
}

export interface Extent {
  minx: number;
  miny: number;
  maxx: number;
  maxy: number;
}

export type GeometryType =
  | 'POINT'
  | 'LINESTRING'
  | 'POLYGON'
  | 'MULTIPOINT'
  | 'MULTILINESTRING'
  | 'MULTIPOLYGON'
  | 'GEOMETRYCOLLECTION'
  | 'GEOMETRY';

export interface LayerAccess {
  /** 'public' or a list of roles allowed to read. */
  public: boolean;
  roles: string[];
}

/** One published layer: a PostGIS table (or view) with one geometry column. */
export interface Layer {
  /** Public name, used in WMS LAYERS, WFS TYPENAMES, OGC API collection id. */
  name: string;
  title: string;
  abstract: string;
  keywords: string[];
  schema: string;
  table: string;
  geometryColumn: string;
  geometryType: GeometryType;
  srid: number;
  /** Primary key column (a single column); null when the table has none. */
  primaryKey: string | null;
  /** Attribute columns, in table order, geometry column excluded. */
  fields: FieldInfo[];
  /** Extent in the layer's native CRS. */
  extent: Extent | null;
  /** Extent from ST_EstimatedExtent (planner statistics). */
  estimatedExtent: Extent | null;
  /** Extent in CRS84 (lon/lat), computed from the exact extent. */
  wgs84Extent: Extent | null;
  /** Row estimate from pg_class.reltuples. */
  rowEstimate: number;
  queryable: boolean;
  defaultStyle: string;
  /** Named styles from config (free-form until the renderer defines them). */
  styles: Record<string, unknown>;
  access: LayerAccess;
  /** Optional temporal field (for OGC API datetime). */
  temporalField: string | null;
  /** Extra per-layer config passed through untouched (metadata, cache, …). */
  extra: Record<string, unknown>;
}
