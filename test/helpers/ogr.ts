/** What GDAL sees in a file (shared by the download tests). */
import { spawnSync } from 'node:child_process';

export interface OgrLayer {
  name: string;
  featureCount: number;
  epsg?: number;
  extent?: [number, number, number, number];
  fields: Array<{ name: string; type: string }>;
  features?: Array<{ properties: Record<string, unknown>; geometry: { type: string; coordinates: unknown } | null }>;
}

/**
 * `ogrinfo -ro -so -al` for the layers, counts, fields, extent and CRS (GDAL 3.6 has no
 * ogrinfo -json), and the first layer's features as `ogr2ogr -f GeoJSON /vsistdout/` when
 * withFeatures.
 */
export function ogrinfo(file: string, withFeatures = false): { layers: OgrLayer[] } {
  const r = spawnSync('ogrinfo', ['-ro', '-so', '-al', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`ogrinfo failed: ${r.stderr}`);
  const blocks = r.stdout.split(/\nLayer name: /).slice(1);
  const layers = blocks.map((b) => {
    const name = b.split('\n')[0].trim();
    const featureCount = Number(b.match(/Feature Count: (\d+)/)![1]);
    const srs = b.split('Data axis to CRS axis mapping')[0];
    const ids = [...srs.matchAll(/ID\["EPSG",(\d+)\]\]\s*$/gm)];
    const epsg = ids.length ? Number(ids[ids.length - 1][1]) : undefined;
    const m = b.match(/Extent: \(([-\d.e]+), ([-\d.e]+)\) - \(([-\d.e]+), ([-\d.e]+)\)/);
    const extent = m ? ([Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])] as [number, number, number, number]) : undefined;
    const after = b.split('Data axis to CRS axis mapping')[1] ?? b;
    const fields = [...after.matchAll(/^([^\s:][^:\n]*): (\w+) \(/gm)].map((mm) => ({ name: mm[1], type: mm[2] }));
    return { name, featureCount, epsg, extent, fields } as OgrLayer;
  });
  if (withFeatures) {
    const j = spawnSync('ogr2ogr', ['-f', 'GeoJSON', '/vsistdout/', file, ...(layers[0] ? [layers[0].name] : [])], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
    });
    if (j.status !== 0) throw new Error(`ogr2ogr failed: ${j.stderr}`);
    layers[0].features = JSON.parse(j.stdout).features;
  }
  return { layers };
}
