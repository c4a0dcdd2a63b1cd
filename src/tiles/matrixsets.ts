/**
 * Tile matrix sets (OGC 17-083r2 / WMTS 1.0.0 well-known scale sets): WebMercatorQuad
 * (GoogleMapsCompatible), WorldCRS84Quad and a Lambert-93 set for French data (docs/tiles.md).
 * Tile (col,row) counts from the top-left corner; 256×256 pixels.
 */
import { OGC_PIXEL_SIZE, metersPerUnit } from '../crs/index.js';
import type { Extent } from '../registry/types.js';

export interface TileMatrix {
  id: string;
  zoom: number;
  resolution: number;
  scaleDenominator: number;
  matrixWidth: number;
  matrixHeight: number;
}

export interface TileMatrixSet {
  id: string;
  title: string;
  epsg: number;
  /** CRS URI as written in WMTS capabilities. */
  crsUri: string;
  wellKnownScaleSet?: string;
  /** Top-left corner, x/y order. */
  origin: [number, number];
  /** Extent covered by the set, x/y order. */
  extent: Extent;
  tileSize: number;
  matrices: TileMatrix[];
  /** Geographic CRSs are advertised lat/lon in WMTS TopLeftCorner (EPSG axis order). */
  latLonAxes: boolean;
}

const TILE = 256;

function build(
  id: string,
  title: string,
  epsg: number,
  crsUri: string,
  origin: [number, number],
  extent: Extent,
  res0: number,
  levels: number,
  width0: number,
  height0: number,
  opts: { wellKnown?: string; latLon?: boolean; fixedSize?: boolean } = {},
): TileMatrixSet {
  const matrices: TileMatrix[] = [];
  for (let z = 0; z < levels; z++) {
    const resolution = res0 / 2 ** z;
    const span = resolution * TILE;
    const matrixWidth = opts.fixedSize ? width0 * 2 ** z : Math.ceil((extent.maxx - origin[0]) / span - 1e-9);
    const matrixHeight = opts.fixedSize ? height0 * 2 ** z : Math.ceil((origin[1] - extent.miny) / span - 1e-9);
    matrices.push({
      id: String(z),
      zoom: z,
      resolution,
      scaleDenominator: (resolution * metersPerUnit(epsg)) / OGC_PIXEL_SIZE,
      matrixWidth,
      matrixHeight,
    });
  }
  return {
    id,
    title,
    epsg,
    crsUri,
    wellKnownScaleSet: opts.wellKnown,
    origin,
    extent,
    tileSize: TILE,
    matrices,
    latLonAxes: Boolean(opts.latLon),
  };
}

const MERC = 20037508.342789244;

export const WEB_MERCATOR_QUAD = build(
  'WebMercatorQuad',
  'Google Maps compatible (EPSG:3857)',
  3857,
  'urn:ogc:def:crs:EPSG::3857',
  [-MERC, MERC],
  { minx: -MERC, miny: -MERC, maxx: MERC, maxy: MERC },
  (2 * MERC) / TILE,
  21,
  1,
  1,
  { wellKnown: 'urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible', fixedSize: true },
);

export const WORLD_CRS84_QUAD = build(
  'WorldCRS84Quad',
  'CRS84 for the world (two tiles at level 0)',
  4326,
  'urn:ogc:def:crs:OGC:1.3:CRS84',
  [-180, 90],
  { minx: -180, miny: -90, maxx: 180, maxy: 90 },
  180 / TILE,
  19,
  2,
  1,
  { fixedSize: true },
);

/**
 * Lambert-93: origin (0, 12 000 000), 17 levels halving from 3359.5 m/px (level 0, tiles of
 * 860 km: the whole of France in 2×2 tiles) to 0.051 m/px (level 16); level 5 is the classic
 * 104.985 m/px. Extent x 0…1 400 000, y 5 800 000…12 000 000. See docs/tiles.md.
 */
export const LAMB93 = build(
  'LAMB93',
  'Lambert-93 (EPSG:2154), France métropolitaine',
  2154,
  'urn:ogc:def:crs:EPSG::2154',
  [0, 12_000_000],
  { minx: 0, miny: 5_800_000, maxx: 1_400_000, maxy: 12_000_000 },
  104.98463541666667 * 32,
  17,
  1,
  1,
);

export const MATRIX_SETS: TileMatrixSet[] = [WEB_MERCATOR_QUAD, WORLD_CRS84_QUAD, LAMB93];

export function findMatrixSet(id: string): TileMatrixSet | undefined {
  const l = id.toLowerCase();
  return MATRIX_SETS.find(
    (s) =>
      s.id.toLowerCase() === l ||
      (l === 'googlemapscompatible' || l === 'epsg:3857' || l === 'epsg:900913' ? s.id === 'WebMercatorQuad' : false) ||
      (l === 'epsg:4326' || l === 'crs84' ? s.id === 'WorldCRS84Quad' : false) ||
      (l === 'epsg:2154' || l === 'lambert93' ? s.id === 'LAMB93' : false),
  );
}

/** Bounds of one tile, x/y order. */
export function tileExtent(set: TileMatrixSet, z: number, col: number, row: number, cols = 1, rows = 1): Extent {
  const span = set.matrices[z].resolution * set.tileSize;
  const minx = set.origin[0] + col * span;
  const maxy = set.origin[1] - row * span;
  return { minx, maxy, maxx: minx + cols * span, miny: maxy - rows * span };
}

/** Tile ranges (inclusive) of a matrix intersecting an extent in the set's CRS, clamped; null when outside. */
export function tileRange(
  set: TileMatrixSet,
  z: number,
  e: Extent,
): { minCol: number; maxCol: number; minRow: number; maxRow: number } | null {
  const m = set.matrices[z];
  const span = m.resolution * set.tileSize;
  const minCol = Math.max(0, Math.floor((e.minx - set.origin[0]) / span));
  const maxCol = Math.min(m.matrixWidth - 1, Math.floor((e.maxx - set.origin[0]) / span));
  const minRow = Math.max(0, Math.floor((set.origin[1] - e.maxy) / span));
  const maxRow = Math.min(m.matrixHeight - 1, Math.floor((set.origin[1] - e.miny) / span));
  if (minCol > maxCol || minRow > maxRow) return null;
  return { minCol, maxCol, minRow, maxRow };
}

/**
 * The tile a map request matches exactly (for tiled WMS): same CRS, tile-sized image and a bbox
 * aligned on the grid within `tol` of a pixel. Returns null otherwise.
 */
export function matchTile(
  epsg: number,
  bbox: Extent,
  width: number,
  height: number,
  tol = 0.01,
): { set: TileMatrixSet; z: number; col: number; row: number } | null {
  for (const set of MATRIX_SETS) {
    if (set.epsg !== epsg || width !== set.tileSize || height !== set.tileSize) continue;
    const resx = (bbox.maxx - bbox.minx) / width;
    const resy = (bbox.maxy - bbox.miny) / height;
    for (const m of set.matrices) {
      if (Math.abs(resx - m.resolution) > m.resolution * tol || Math.abs(resy - m.resolution) > m.resolution * tol) continue;
      const span = m.resolution * set.tileSize;
      const c = (bbox.minx - set.origin[0]) / span;
      const r = (set.origin[1] - bbox.maxy) / span;
      const col = Math.round(c);
      const row = Math.round(r);
      if (Math.abs(c - col) * set.tileSize > tol * 100 || Math.abs(r - row) * set.tileSize > tol * 100) return null;
      if (col < 0 || row < 0 || col >= m.matrixWidth || row >= m.matrixHeight) return null;
      return { set, z: m.zoom, col, row };
    }
  }
  return null;
}
