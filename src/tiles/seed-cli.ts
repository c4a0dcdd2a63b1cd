/**
 * `geodata seed`: fill the tile cache for a layer, matrix set, zoom range and area, with
 * progress (count, rate, ETA) on stderr and a progress file to resume after an interruption
 * (Ctrl-C stops cleanly after the metatiles in flight; run the same command again to resume).
 */
import path from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, type Config } from '../config/index.js';
import { createPool } from '../db/pool.js';
import { resolveDatabase } from '../db/resolve.js';
import { Registry } from '../registry/registry.js';
import { createContext } from '../context.js';
import { findMatrixSet } from './matrixsets.js';
import { seed } from './seed.js';

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i >= 0) return args[i + 1];
  return args.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
}

function fmtSecs(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = Math.round(s % 60);
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

export async function seedCommand(config: Config, args: string[], log: Logger): Promise<void> {
  const layerName = arg(args, '--layer');
  if (!layerName) throw new ConfigError('seed: --layer is required');
  const set = findMatrixSet(arg(args, '--matrixset') ?? 'WebMercatorQuad');
  if (!set) throw new ConfigError(`seed: unknown --matrixset (WebMercatorQuad, WorldCRS84Quad, LAMB93)`);
  const zm = (arg(args, '--zoom') ?? '').match(/^(\d+)(?:-(\d+))?$/);
  if (!zm) throw new ConfigError('seed: --zoom N or N-M is required');
  const zooms: [number, number] = [Number(zm[1]), Number(zm[2] ?? zm[1])];
  if (zooms[0] > zooms[1] || zooms[1] >= set.matrices.length)
    throw new ConfigError(`seed: zoom range outside 0-${set.matrices.length - 1}`);
  let bbox;
  const b = arg(args, '--bbox');
  if (b) {
    const v = b.split(',').map(Number);
    if (v.length !== 4 || v.some((n) => !Number.isFinite(n))) throw new ConfigError('seed: --bbox minlon,minlat,maxlon,maxlat');
    bbox = { minx: v[0], miny: v[1], maxx: v[2], maxy: v[3] };
  }
  const concurrency = Number(arg(args, '--concurrency') ?? 2);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new ConfigError('seed: --concurrency must be a positive integer');
  const format = (arg(args, '--format') ?? 'png') === 'mvt' ? 'mvt' : 'png';
  const db = await resolveDatabase(config, (m) => log.info(m));
  const pool = createPool({ url: db.url, max: concurrency + 2, log });
  const registry = new Registry(pool, config);
  const { runtime } = createContext({ config, pool, registry, log });
  const engine = runtime.tiles;
  const ac = new AbortController();
  const stop = () => {
    process.stderr.write('\nstopping after the metatiles in flight; run the same command again to resume\n');
    ac.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    await registry.reload();
    const layer = registry.resolve(layerName);
    if (!layer) throw new ConfigError(`seed: layer '${layerName}' is not published`);
    let polygon;
    const p = arg(args, '--polygon');
    if (p) {
      const i = p.lastIndexOf(':');
      const pl = i > 0 ? registry.resolve(p.slice(0, i)) : undefined;
      if (!pl) throw new ConfigError(`seed: --polygon layer:id, with a published layer (got '${p}')`);
      polygon = { layer: pl, id: p.slice(i + 1) };
    }
    const progressFile =
      arg(args, '--progress-file') ??
      path.join(engine.opts.diskDir ?? process.cwd(), `.seed-${layer.name}-${set.id}-${zooms.join('-')}.json`);
    const t0 = Date.now();
    const res = await seed(engine, {
      layer,
      set,
      zooms,
      bbox,
      polygon,
      concurrency,
      format,
      style: arg(args, '--style'),
      progressFile,
      signal: ac.signal,
      onProgress: (pr) => {
        const pct = pr.total ? ((100 * pr.done) / pr.total).toFixed(1) : '100';
        process.stderr.write(
          `\r${pr.done}/${pr.total} metatiles (${pct}%), ${pr.rate.toFixed(1)} metatiles/s, ETA ${fmtSecs(pr.etaSeconds)}   `,
        );
      },
    });
    process.stderr.write('\n');
    log.info(
      {
        layer: layer.name,
        matrixset: set.id,
        zooms,
        metatiles: res.total,
        done: res.done,
        tiles: res.tiles,
        seconds: (Date.now() - t0) / 1000,
        finished: res.finished,
      },
      res.finished ? 'seeding finished' : 'seeding interrupted (resumable)',
    );
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    await runtime.close();
    await pool.end();
  }
}
