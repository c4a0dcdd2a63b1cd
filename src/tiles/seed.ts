/**
 * Seeding: render every metatile of a layer over an area and a zoom range into the cache, with
 * bounded concurrency, progress (count, rate, ETA) and a progress file to resume after an
 * interruption (the low-water mark of metatiles done, in a deterministic order).
 */
import { existsSync, readFileSync, writeFileSync, renameSync, rmSync } from 'node:fs';
import type * as Turf from '@turf/turf';
import type { Extent, Layer } from '../registry/types.js';
import { transformExtent } from '../crs/index.js';
import { quoteIdent, qualifiedTable } from '../db/pool.js';
import type { TileEngine } from './engine.js';
import { tileExtent, tileRange, type TileMatrixSet } from './matrixsets.js';

export interface SeedOptions {
  layer: Layer;
  style?: string;
  set: TileMatrixSet;
  zooms: [number, number];
  /** Area in EPSG:4326 lon/lat (default: the layer's extent). */
  bbox?: Extent;
  /** Limit to a polygon of a layer: {layer, id} (primary key value). */
  polygon?: { layer: Layer; id: string };
  concurrency?: number;
  format?: 'png' | 'mvt';
  progressFile?: string;
  onProgress?: (p: SeedProgress) => void;
  signal?: AbortSignal;
}

export interface SeedProgress {
  done: number;
  total: number;
  tiles: number;
  rate: number;
  etaSeconds: number;
  finished: boolean;
}

interface Job {
  z: number;
  col: number;
  row: number;
}

export async function planSeed(engine: TileEngine, o: SeedOptions): Promise<Job[]> {
  const { set, layer } = o;
  let area: Extent;
  let poly: ReturnType<typeof Turf.feature> | null = null;
  // turf is loaded only when seeding by polygon (it weighs ~25 MB of resident memory)
  let turf: typeof Turf | undefined;
  if (o.polygon) {
    turf = await import('@turf/turf');
    const pl = o.polygon.layer;
    const g = quoteIdent(pl.geometryColumn);
    // 'id' matches the primary key (or the INSEE code when the layer has one); 'column=value' any column
    const eq = o.polygon.id.indexOf('=');
    const candidates = eq > 0 ? [o.polygon.id.slice(0, eq)] : [pl.primaryKey, 'insee'].filter((c): c is string => Boolean(c));
    const value = eq > 0 ? o.polygon.id.slice(eq + 1) : o.polygon.id;
    let gj: string | undefined;
    for (const col of candidates) {
      if (!pl.fields.some((f) => f.name === col)) continue;
      const r = await engine.deps.pool.query(
        `SELECT ST_AsGeoJSON(ST_Transform(${g}, ${set.epsg})) AS gj FROM ${qualifiedTable(pl.schema, pl.table)} WHERE ${quoteIdent(col)}::text = $1 LIMIT 1`,
        [value],
      );
      gj = r.rows[0]?.gj;
      if (gj) break;
    }
    if (!gj) throw new Error(`no feature '${o.polygon.id}' in layer '${pl.name}' (give its primary key or column=value)`);
    const r = { rows: [{ gj }] };
    poly = turf.feature(JSON.parse(r.rows[0].gj));
    const b = turf.bbox(poly);
    area = { minx: b[0], miny: b[1], maxx: b[2], maxy: b[3] };
  } else if (o.bbox) {
    area = transformExtent(o.bbox, 4326, set.epsg);
  } else {
    if (!layer.extent) throw new Error(`layer '${layer.name}' has no extent; give a bbox`);
    area = transformExtent(layer.extent, layer.srid, set.epsg);
  }
  const n = o.format === 'mvt' ? 1 : Math.max(1, engine.opts.metatile);
  const jobs: Job[] = [];
  for (let z = o.zooms[0]; z <= o.zooms[1]; z++) {
    if (z < 0 || z >= set.matrices.length) continue;
    const r = tileRange(set, z, area);
    if (!r) continue;
    for (let my = Math.floor(r.minRow / n) * n; my <= r.maxRow; my += n) {
      for (let mx = Math.floor(r.minCol / n) * n; mx <= r.maxCol; mx += n) {
        if (poly && turf) {
          const e = tileExtent(set, z, mx, my, n, n);
          if (
            !turf.booleanIntersects(
              poly as Parameters<typeof turf.booleanIntersects>[0],
              turf.bboxPolygon([e.minx, e.miny, e.maxx, e.maxy]),
            )
          )
            continue;
        }
        jobs.push({ z, col: Math.max(mx, r.minCol), row: Math.max(my, r.minRow) });
      }
    }
  }
  return jobs;
}

export async function seed(engine: TileEngine, o: SeedOptions): Promise<SeedProgress> {
  const jobs = await planSeed(engine, o);
  const signature = `${o.layer.name}|${o.style ?? ''}|${o.set.id}|${o.zooms.join('-')}|${JSON.stringify(o.bbox ?? null)}|${o.polygon ? `${o.polygon.layer.name}:${o.polygon.id}` : ''}|${o.format ?? 'png'}|${jobs.length}`;
  let start = 0;
  if (o.progressFile && existsSync(o.progressFile)) {
    try {
      const p = JSON.parse(readFileSync(o.progressFile, 'utf8'));
      if (p.signature === signature) start = Math.min(jobs.length, Number(p.done) || 0);
    } catch {
      start = 0;
    }
  }
  const conc = Math.max(1, o.concurrency ?? 2);
  const t0 = Date.now();
  let next = start;
  let lowWater = start;
  let tiles = 0;
  const completed = new Set<number>();
  const save = () => {
    if (!o.progressFile) return;
    const tmp = `${o.progressFile}.tmp`;
    writeFileSync(tmp, JSON.stringify({ signature, done: lowWater, total: jobs.length }));
    renameSync(tmp, o.progressFile);
  };
  const progress = (finished: boolean): SeedProgress => {
    const secs = Math.max(0.001, (Date.now() - t0) / 1000);
    const doneNow = lowWater - start + [...completed].length;
    const rate = doneNow / secs;
    const left = jobs.length - lowWater - completed.size;
    return { done: lowWater + completed.size, total: jobs.length, tiles, rate, etaSeconds: rate > 0 ? left / rate : Infinity, finished };
  };
  let lastReport = 0;
  const worker = async () => {
    while (next < jobs.length && !o.signal?.aborted) {
      const i = next++;
      const j = jobs[i];
      await engine.getTile(o.layer, o.style, o.set, j.z, j.col, j.row, o.format ?? 'png');
      tiles += o.format === 'mvt' ? 1 : Math.max(1, engine.opts.metatile) ** 2;
      completed.add(i);
      while (completed.has(lowWater)) completed.delete(lowWater++);
      if (Date.now() - lastReport > 1000) {
        lastReport = Date.now();
        save();
        o.onProgress?.(progress(false));
      }
    }
  };
  await Promise.all(Array.from({ length: conc }, worker));
  save();
  const p = progress(!o.signal?.aborted);
  if (p.finished && o.progressFile) rmSync(o.progressFile, { force: true });
  o.onProgress?.(p);
  return p;
}
