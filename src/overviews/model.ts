/**
 * The overviews' vocabulary: options (config `overviews`, `layers[].overview`), the shape of a
 * build and of a layer's state, and the pure rules shared by the builder and the manager (which
 * columns an overview carries, how much of a rebuild an incremental refresh would read).
 */
import type { Extent, Layer } from '../registry/types.js';
import { layerStyles } from '../render/style.js';

export interface OverviewOptions {
  enabled: boolean;
  /** Layers with more rows (planner estimate) than this get an overview. */
  minRows: number;
  /** Schema holding the overview tables and their catalogue. */
  schema: string;
  /** Cell of level 0 in layer-CRS units; null = 2 × the median feature size, rounded up to a power of 2. */
  baseCell: number | null;
  levels: number;
  /** Cells per output pixel (per axis) at least: the level's cell is at most 1/cellsPerPixel of a pixel. */
  cellsPerPixel: number;
  /** Largest number of distinct attribute combinations per cell (estimated); above it no overview is built. */
  maxCombinations: number;
  /** Quiet time after the last change before a rebuild starts (ms). */
  rebuildDelayMs: number;
  /** Shortest time between two builds of the same layer (ms). */
  minRebuildIntervalMs: number;
  /** Period of the staleness check that backs up LISTEN (ms). */
  checkIntervalMs: number;
  /** Kept geometries are also stored projected to this CRS (the web maps' EPSG:3857 by default); null = none. */
  outputCrs: number | null;
  /**
   * Edits are applied cell by cell (incremental refresh) while the rows they make the levels
   * re-read stay under this share of what a full rebuild reads; above it, full rebuild.
   */
  incrementalMaxShare: number;
}

export interface LayerOverviewConfig {
  enabled?: boolean;
  minRows?: number;
  baseCell?: number;
  levels?: number;
  /** Extra columns to carry (besides those the layer's style filters read). */
  columns?: string[];
}

export function overviewOptions(raw: unknown): OverviewOptions {
  const o = (raw ?? {}) as Record<string, any>;
  return {
    enabled: o.enabled ?? true,
    minRows: o.minRows ?? 100000,
    schema: o.schema ?? 'geodata_overview',
    baseCell: o.baseCell ?? null,
    levels: o.levels ?? 4,
    cellsPerPixel: o.cellsPerPixel ?? 2,
    maxCombinations: o.maxCombinations ?? 64,
    rebuildDelayMs: o.rebuildDelayMs ?? 5000,
    minRebuildIntervalMs: o.minRebuildIntervalMs ?? 60000,
    checkIntervalMs: o.checkIntervalMs ?? 15000,
    outputCrs: o.outputCrs === undefined ? 3857 : o.outputCrs,
    incrementalMaxShare: o.incrementalMaxShare ?? 0.2,
  };
}

export interface OverviewLevel {
  cell: number;
  /** SRID of the geom_out column (kept geometries already projected), or null. */
  outSrid?: number | null;
  /** Features at least this size are kept with their geometry; smaller ones are grouped per cell. */
  minSize: number;
  table: string;
  rows: number;
  /** The layer as the renderer sees it, pointing at the level table. */
  layer: Layer;
}

export interface OverviewBuild {
  generation: number;
  signature: string;
  columns: string[];
  levels: OverviewLevel[];
  changeId: number;
  builtAt: Date;
  buildMs: number;
  sourceRows: number;
}

/**
 * 'partial': edits are pending (an incremental refresh is scheduled); renders whose view does not
 * reach the areas they touch keep reading the overview, the others read the source.
 */
export type OverviewStatus = 'pending' | 'building' | 'ready' | 'partial' | 'stale' | 'disabled' | 'failed';

/** The maintenance state of one source table's overview. */
export interface LayerState {
  source: string;
  layerName: string;
  status: OverviewStatus;
  reason?: string;
  built?: OverviewBuild;
  /** a change arrived after the current build's snapshot */
  dirty: boolean;
  /**
   * Logged edits not yet in the overview, by change id: the areas whose overview rows they may
   * change (per changed row, its box joined with the coarsest level's cell of its centre), or
   * null for an edit without boxes (bulk statement, TRUNCATE): the whole layer.
   */
  pending: Map<number, Extent[] | null>;
  /** Last incremental refresh: duration, edits and level-0 cells it re-read. */
  lastRefresh?: { at: Date; ms: number; changes: number; cells: number[] };
  /** The layer's extent (layer CRS), to weigh the pending edits. */
  extent: Extent | null;
  timer?: NodeJS.Timeout;
  firstChangeAt?: number;
  lastBuildEnd: number;
  building?: Promise<void>;
}

/** Render an SQL number literal (finite only). */
export const num = (x: number): string => {
  if (!Number.isFinite(x)) throw new Error(`overview: not a finite number: ${x}`);
  return String(x);
};

/** Property names read by a filter AST, or null if it uses something an overview cannot answer (spatial, ids, time). */
export function filterColumns(node: unknown, out = new Set<string>()): Set<string> | null {
  if (node === null || typeof node !== 'object') return out;
  if (Array.isArray(node)) {
    for (const n of node) if (!filterColumns(n, out)) return null;
    return out;
  }
  const o = node as Record<string, unknown>;
  if (o.kind === 'spatial' || o.kind === 'resourceId' || o.kind === 'temporal') return null;
  if (o.kind === 'property' && typeof o.name === 'string') {
    out.add(bare(o.name));
    return out;
  }
  for (const v of Object.values(o)) if (!filterColumns(v, out)) return null;
  return out;
}

function bare(raw: string): string {
  let s = raw.trim();
  const slash = s.lastIndexOf('/');
  if (slash >= 0) s = s.slice(slash + 1);
  s = s.replace(/\[[^\]]*\]$/, '');
  if (s.startsWith('@')) s = s.slice(1);
  const colon = s.indexOf(':');
  return colon >= 0 ? s.slice(colon + 1) : s;
}

/** Per-layer config (layers[].overview), false when disabled. */
export function layerConfig(layer: Layer): LayerOverviewConfig | false {
  const raw = (layer.extra as Record<string, unknown>).overview;
  if (raw === false) return false;
  const c = raw && typeof raw === 'object' ? (raw as LayerOverviewConfig) : {};
  if (c.enabled === false) return false;
  return c;
}

/** Columns the overview carries: those the layer's style filters read, plus configured ones; a reason when a filter cannot be served. */
export function columnsFor(layer: Layer, cfg: LayerOverviewConfig): string[] | string {
  const cols = new Set<string>(cfg.columns ?? []);
  for (const s of layerStyles(layer).styles.values()) {
    for (const r of s.rules) {
      if (!r.filter) continue;
      if (!filterColumns(r.filter, cols)) return `style '${s.name}' rule '${r.name}' has a spatial, temporal or id filter`;
    }
  }
  const fields = new Set(layer.fields.map((f) => f.name));
  for (const c of cols) if (!fields.has(c)) return `column '${c}' is not a column of the layer`;
  return [...cols].sort();
}

/**
 * Share of a full rebuild's reads that refreshing `cells[k]` cells of each level k reads (the
 * source for level 0, level k-1 for level k), assuming rows spread evenly over the layer's extent.
 */
export function incrementalShare(st: LayerState, b: OverviewBuild, cells: number[]): number {
  const e = st.extent;
  const area = e ? (e.maxx - e.minx) * (e.maxy - e.miny) : 0;
  if (!(area > 0)) return 0;
  let inc = 0;
  let full = 0;
  b.levels.forEach((l, k) => {
    const input = k ? b.levels[k - 1].rows : b.sourceRows;
    full += input;
    inc += Math.min(1, (cells[k] * l.cell * l.cell) / area) * input;
  });
  return full > 0 ? inc / full : 0;
}
