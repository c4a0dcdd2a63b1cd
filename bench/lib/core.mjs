// Pure parts of the benchmark harness: seeded PRNG, request lists, percentiles, validity checks.
// No I/O here (except sharp for image decoding) so that test/bench-harness.test.ts can cover it.
import proj4 from 'proj4';
import sharp from 'sharp';

proj4.defs(
  'EPSG:2154',
  '+proj=lcc +lat_0=46.5 +lon_0=3 +lat_1=49 +lat_2=44 +x_0=700000 +y_0=6600000 +ellps=GRS80 +towgs84=0,0,0,0,0,0,0 +units=m +no_defs +type=crs',
);

/** mulberry32: small, fast, deterministic PRNG; returns a function giving floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal deviate from a uniform source (Box–Muller). */
function gauss(rnd) {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

// The demo region and its towns (same constants as src/demo/generator.ts).
export const REGION = { xmin: 760000, ymin: 6700000, xmax: 1080000, ymax: 6990000 };
export const TOWNS = [
  [1050000, 6840000],
  [775000, 6905000],
  [930000, 6895000],
  [933000, 6847000],
  [1025500, 6748000],
  [1023500, 6788000],
  [780500, 6794000],
  [823000, 6963000],
];

/** Box widths (metres, Lambert-93) for the three WMS scales of a 256 px image. */
export const SCALES = {
  region: 150000, // ~1:2,000,000 — a département or more: every parcel of the area is sub-pixel
  town: 4000, //     ~1:55,000   — a town with its parcels visible
  street: 400, //    ~1:5,500    — a few streets
};

function clampBox(cx, cy, w) {
  const h = w;
  cx = Math.min(Math.max(cx, REGION.xmin + w / 2), REGION.xmax - w / 2);
  cy = Math.min(Math.max(cy, REGION.ymin + h / 2), REGION.ymax - h / 2);
  return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
}

/** A Lambert-93 bbox at a scale: region boxes anywhere, town/street boxes near a town centre. */
export function randomBox(rnd, scale) {
  const w = SCALES[scale];
  if (!w) throw new Error(`unknown scale ${scale}`);
  if (scale === 'region') {
    return clampBox(REGION.xmin + rnd() * (REGION.xmax - REGION.xmin), REGION.ymin + rnd() * (REGION.ymax - REGION.ymin), w);
  }
  const [tx, ty] = TOWNS[Math.floor(rnd() * TOWNS.length)];
  const spread = scale === 'town' ? 2500 : 1500;
  return clampBox(tx + spread * gauss(rnd), ty + spread * gauss(rnd), w);
}

/** Envelope of a Lambert-93 box in another CRS (the four corners, projected by proj4). */
export function transformBox(box, crs) {
  if (crs === 'EPSG:2154') return box;
  const pts = [
    [box[0], box[1]],
    [box[0], box[3]],
    [box[2], box[1]],
    [box[2], box[3]],
  ].map((p) => proj4('EPSG:2154', crs, p));
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
}

/** Square the box around its centre (so a 256×256 image has square pixels after reprojection). */
export function squareBox(b) {
  const cx = (b[0] + b[2]) / 2,
    cy = (b[1] + b[3]) / 2;
  const s = Math.max(b[2] - b[0], b[3] - b[1]) / 2;
  return [cx - s, cy - s, cx + s, cy + s];
}

const round = (v, d) => Number(v.toFixed(d));

/**
 * List of `n` abstract requests for a scenario kind, deterministic for (seed, kind, params).
 * Every server receives exactly this list; each server's adapter turns an entry into its own URL.
 */
export function requestList(kind, params, n, seed) {
  // the stream depends on the seed and on the scenario, so two scenarios do not share boxes
  let h = seed >>> 0;
  for (const ch of `${kind}:${JSON.stringify(params)}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const rnd = prng(h);
  const out = [];
  for (let i = 0; i < n; i++) {
    switch (kind) {
      case 'wms': {
        const b = squareBox(transformBox(randomBox(rnd, params.scale), params.crs));
        const d = params.crs === 'EPSG:4326' ? 7 : 2;
        out.push({ bbox: b.map((v) => round(v, d)), crs: params.crs, layers: params.layers, width: 256, height: 256 });
        break;
      }
      case 'wfs-page':
        out.push({ bbox: randomBox(rnd, 'town').map((v) => round(v, 2)), count: params.count, typeName: 'parcels' });
        break;
      case 'items': {
        const b = transformBox(randomBox(rnd, 'town'), 'EPSG:4326');
        out.push({ bbox: b.map((v) => round(v, 6)), limit: params.limit, collection: 'parcels' });
        break;
      }
      case 'tile': {
        const z = params.zooms[Math.floor(rnd() * params.zooms.length)];
        const b = randomBox(rnd, params.spread ?? 'town');
        const [lon, lat] = proj4('EPSG:2154', 'EPSG:4326', [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]);
        out.push({ layer: params.layer, ...lonLatToTile(lon, lat, z) });
        break;
      }
      case 'csw': {
        const words = ['parcelles', 'routes', 'communes', 'cadastre', 'points', 'intérêt', 'Grand Est', 'limites'];
        out.push({ q: words[Math.floor(rnd() * words.length)] });
        break;
      }
      default:
        throw new Error(`unknown request kind ${kind}`);
    }
  }
  return out;
}

/** A KVP query string: each value URI-encoded, in the object's order. */
export function queryString(o) {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${encodeURIComponent(v)}`)
    .join('&');
}

/** The query string of a WMS 1.3.0 GetMap (transparent PNG) for a 'wms' entry of requestList: the same for every server. */
export function wmsGetMapQuery(r) {
  return queryString({
    SERVICE: 'WMS',
    VERSION: '1.3.0',
    REQUEST: 'GetMap',
    LAYERS: r.layers.join(','),
    STYLES: '',
    CRS: r.crs,
    BBOX: r.bbox.join(','),
    WIDTH: r.width,
    HEIGHT: r.height,
    FORMAT: 'image/png',
    TRANSPARENT: 'TRUE',
  });
}

/**
 * The query string of a WFS 2.0 GetFeature page for a 'wfs-page' entry of requestList (with
 * `format` 'gml' or 'geojson'): the same for every server.
 */
export function wfsPageQuery(r) {
  return queryString({
    SERVICE: 'WFS',
    VERSION: '2.0.0',
    REQUEST: 'GetFeature',
    TYPENAMES: r.typeName,
    COUNT: r.count,
    ...(r.format === 'gml' ? {} : { OUTPUTFORMAT: 'application/json' }), // WFS 2.0's default output is GML 3.2 on both servers
    // GeoJSON without SRSNAME is WGS 84 (RFC 7946): name the native CRS so that every server writes the same coordinates
    SRSNAME: 'urn:ogc:def:crs:EPSG::2154',
    BBOX: [...r.bbox, 'urn:ogc:def:crs:EPSG::2154'].join(','),
  });
}

/**
 * The query string of the csw-getrecords row's request for a 'csw' entry of requestList: GetRecords,
 * full Dublin Core records, AnyText LIKE '%word%' (bench/run.mjs and bench/catalog.mjs send the same).
 */
export function cswGetRecordsQuery(r) {
  return queryString({
    SERVICE: 'CSW',
    VERSION: '2.0.2',
    REQUEST: 'GetRecords',
    TYPENAMES: 'csw:Record',
    ELEMENTSETNAME: 'full',
    RESULTTYPE: 'results',
    CONSTRAINTLANGUAGE: 'CQL_TEXT',
    CONSTRAINT_LANGUAGE_VERSION: '1.1.0',
    CONSTRAINT: `AnyText LIKE '%${r.q}%'`,
  });
}

/** WebMercatorQuad tile (XYZ, y from the top) containing a point. */
export function lonLatToTile(lon, lat, z) {
  const n = 2 ** z;
  const x = Math.floor(((lon + 180) / 360) * n);
  const r = (lat * Math.PI) / 180;
  const y = Math.floor(((1 - Math.log(Math.tan(r) + 1 / Math.cos(r)) / Math.PI) / 2) * n);
  return { z, x: Math.min(Math.max(x, 0), n - 1), y: Math.min(Math.max(y, 0), n - 1) };
}

/** Distinct tiles of a list (for seeding / cold scenarios). */
export function distinctTiles(list) {
  const seen = new Set();
  return list.filter((t) => {
    const k = `${t.layer}/${t.z}/${t.x}/${t.y}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Percentile (nearest-rank, p in [0,100]) of an array of numbers; NaN when empty. */
export function percentile(values, p) {
  if (values.length === 0) return NaN;
  const s = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(Math.max(rank - 1, 0), s.length - 1)];
}

/** Summary of one measured series. */
export function summarise(samples, wallSeconds) {
  const lat = samples.map((s) => s.ms);
  const ok = samples.filter((s) => !s.error);
  const bytes = samples.reduce((a, s) => a + (s.bytes || 0), 0);
  return {
    requests: samples.length,
    errors: samples.length - ok.length,
    reqPerSec: wallSeconds > 0 ? samples.length / wallSeconds : NaN,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    meanBytes: samples.length ? bytes / samples.length : 0,
    mbPerSec: wallSeconds > 0 ? bytes / wallSeconds / 1e6 : NaN,
    firstErrors: [...new Set(samples.filter((s) => s.error).map((s) => s.error))].slice(0, 3),
  };
}

/**
 * Validity check of one response. `expect` is 'png' | 'json' | 'geojson' | 'xml' | 'gml'.
 * Returns null when valid, else a short reason. Non-2xx, wrong content type, undecodable
 * image, unparsable JSON/XML and OGC exception reports are errors.
 */
export async function checkResponse(status, contentType, body, expect) {
  if (status < 200 || status > 299) return `HTTP ${status}`;
  const ct = (contentType || '').toLowerCase();
  switch (expect) {
    case 'png': {
      if (!ct.startsWith('image/png')) return `content-type ${ct || '(none)'}`;
      if (body.length < 8 || body.readUInt32BE(0) !== 0x89504e47) return 'not a PNG';
      try {
        const m = await sharp(body).metadata();
        if (m.format !== 'png' || !m.width || !m.height) return 'undecodable PNG';
        // pixel data must decode, not only the header
        await sharp(body).raw().toBuffer();
      } catch {
        return 'undecodable PNG';
      }
      return null;
    }
    case 'json':
    case 'geojson': {
      if (!/json/.test(ct)) return `content-type ${ct || '(none)'}`;
      let doc;
      try {
        doc = JSON.parse(body.toString('utf8'));
      } catch {
        return 'unparsable JSON';
      }
      if (expect === 'geojson' && (doc?.type !== 'FeatureCollection' || !Array.isArray(doc.features))) return 'not a FeatureCollection';
      return null;
    }
    case 'xml':
    case 'gml': {
      if (!/xml/.test(ct)) return `content-type ${ct || '(none)'}`;
      const head = body.subarray(0, 2048).toString('utf8');
      if (!/^\s*(<\?xml|<)/.test(head)) return 'not XML';
      if (/ExceptionReport|ServiceExceptionReport/.test(head)) return 'OGC exception';
      const tail = body
        .subarray(Math.max(0, body.length - 256))
        .toString('utf8')
        .trimEnd();
      if (!tail.endsWith('>')) return 'truncated XML';
      return null;
    }
    default:
      throw new Error(`unknown expectation ${expect}`);
  }
}
