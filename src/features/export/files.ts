/**
 * File-based exports (ESRI Shapefile in a ZIP, GeoPackage, Excel XLSX) built from the engine's own
 * query path: the rows come from featureRowEvents()/openFeatureStream() like every other format.
 *
 * Each export works in a fresh temporary directory, watched against a byte cap; the result is one
 * file the caller streams and then removes with cleanup(). An abort (client gone) kills the work
 * in progress and removes the directory.
 *
 * Shapefile, GeoPackage and FlatGeobuf are written by GDAL's ogr2ogr (the writers every GIS reader
 * is tested against), reading the engine's query from PostGIS itself (directSource), or the
 * engine's GeoJSON where the query cannot be given as SQL text; XLSX by exceljs's
 * streaming WorkbookWriter; the ZIP by yazl.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import yazl from 'yazl';
import type ExcelJS from 'exceljs';
import { buildNativeSql, selectedFields, outputEpsgOf, type FeatureQuery } from '../query.js';
import { featureDb, featureRowEvents, openFeatureStream, type FeatureDbLike } from '../stream.js';
import { inlineParams } from '../../db/inline.js';
import { GeoJsonWriter } from '../writers/geojson.js';
import type { FeatureWriter } from '../writers/types.js';
import type { ToolProbe } from '../tools.js';

/** A request the export cannot honour (too big, too many fields): status + clear message. */
export class ExportError extends Error {
  constructor(
    readonly status: 400 | 413 | 500 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ExportError';
  }
}

export interface FileExportOptions {
  /** The pool, or the application's feature database (src/runtime.ts: runtime.features, with its stream gate and limits). */
  pool: FeatureDbLike;
  /** The queries (one layer each); a file holds them in order. */
  queries: FeatureQuery[];
  /** Base name of the files inside (layer name). */
  baseName: string;
  /** Byte cap on the temporary directory. */
  maxBytes: number;
  signal?: AbortSignal;
  /** Parent of the temporary directory (default os.tmpdir()). */
  tmpRoot?: string;
  /** The external tools (ctx.runtime.tools): GDAL's ogr2ogr command, and whether it answers. */
  tools: ToolProbe;
}

export interface FileExport {
  path: string;
  size: number;
  contentType: string;
  features: number;
  /** Remove the temporary directory (idempotent). */
  cleanup: () => Promise<void>;
}

export const SHAPEFILE_MAX_FIELDS = 255;
export const XLSX_MAX_ROWS = 1_048_576;
const XLSX_MAX_CELL = 32_767;

/** Total size of the files in a directory (not recursive beyond one level of subdirectories). */
async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += await dirSize(p);
    else total += (await stat(p).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

/** Work in a temporary directory under a byte cap; abort (signal or cap) stops the work. */
async function inTempDir<T>(
  o: FileExportOptions,
  work: (dir: string, signal: AbortSignal) => Promise<T>,
): Promise<{ dir: string; value: T }> {
  const dir = await mkdtemp(path.join(o.tmpRoot ?? os.tmpdir(), 'geodata-export-'));
  const ac = new AbortController();
  let overCap = false;
  const onAbort = () => ac.abort(o.signal?.reason);
  o.signal?.addEventListener('abort', onAbort, { once: true });
  if (o.signal?.aborted) ac.abort();
  const timer = setInterval(() => {
    void dirSize(dir).then((n) => {
      if (n > o.maxBytes && !ac.signal.aborted) {
        overCap = true;
        ac.abort(new Error('size cap'));
      }
    });
  }, 200);
  try {
    const value = await work(dir, ac.signal);
    if ((await dirSize(dir)) > o.maxBytes) overCap = true;
    if (overCap) throw capError(o.maxBytes);
    return { dir, value };
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    if (overCap) throw capError(o.maxBytes);
    throw e;
  } finally {
    clearInterval(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}

function capError(max: number): ExportError {
  return new ExportError(
    413,
    `the export exceeds the server's limit of ${formatBytes(max)} for files built on the server; narrow it with bbox, filter, clip or properties, or use GeoJSON/CSV (streamed without a file)`,
  );
}

function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  return `${n} bytes`;
}

/** Write the engine's GeoJSON for the queries into a file, counting features and bytes. */
async function writeGeoJson(o: FileExportOptions, file: string, signal: AbortSignal): Promise<number> {
  let features = 0;
  const inner = new GeoJsonWriter({ crsMember: true });
  const writer: FeatureWriter = {
    format: inner.format,
    contentType: inner.contentType,
    header: (i) => inner.header(i),
    feature: (row, q, index) => {
      features++;
      return inner.feature(row, q, index);
    },
    footer: (i, n) => inner.footer(i, n),
  };
  const epsg = outputEpsgOf(o.queries[0]);
  const stream = await openFeatureStream(o.pool, {
    signal,
    queries: o.queries,
    writer,
    info: {
      numberMatched: 'unknown',
      timeStamp: new Date().toISOString(),
      links: {},
      layers: o.queries.map((q) => q.layer),
      outputEpsg: epsg,
    },
  });
  let bytes = 0;
  const cap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      bytes += chunk.length;
      if (bytes > o.maxBytes) cb(capError(o.maxBytes));
      else cb(null, chunk);
    },
  });
  await pipeline(stream, cap, createWriteStream(file), { signal });
  return features;
}

/** Run ogr2ogr; rejects with its last error lines. */
function ogr2ogr(o: FileExportOptions, args: string[], signal: AbortSignal, env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(o.tools.commands.ogr2ogr, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      signal,
      env: { ...process.env, CPL_LOG: undefined, ...env } as NodeJS.ProcessEnv,
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString('utf8')).slice(-4000);
    });
    child.on('error', (e) => reject(e));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(Object.assign(new Error(`ogr2ogr failed (exit ${code}): ${err.trim().split('\n').slice(-3).join(' ')}`), { stderr: err }));
    });
  });
}

/**
 * Where GDAL can read a query's rows itself: a PostgreSQL source (conninfo without the password,
 * which goes in the environment, never on a command line) and the query as self-contained SQL.
 * ogr2ogr then reads typed rows straight from the database, as `ogr2ogr PG:… table` does, instead
 * of parsing a GeoJSON file we wrote first (twice the work: 0.49× ogr2ogr's time for a Shapefile
 * and 0.71× for a GeoPackage of 1M parcels, bench/results/downloads-latest.md). Null when the
 * query cannot be given that way (several layers in one file, a value that is not a plain
 * literal, a statement too long for a command line, a pool without a URL): the GeoJSON path stays.
 */
interface DirectSource {
  src: string;
  sql: string;
  env: Record<string, string>;
}

const GEOMETRY_NAME = 'geom';
const MAX_SQL_ARG = 100_000;

function directSource(o: FileExportOptions, extra?: (geom: string) => string): DirectSource | null {
  if (o.queries.length !== 1 || o.queries[0].after) return null;
  // PgBouncer refuses the startup options GDAL would send (PGOPTIONS): the stream path serves instead
  if (featureDb(o.pool).transactionPooling) return null;
  const pool = featureDb(o.pool).pool;
  const opts = pool.options as { connectionString?: string; statement_timeout?: number; application_name?: string };
  if (!opts.connectionString) return null;
  let url: URL;
  try {
    url = new URL(opts.connectionString);
  } catch {
    return null;
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') return null;
  const { sql, params } = buildNativeSql(o.queries[0], GEOMETRY_NAME, extra);
  const text = inlineParams(sql, params);
  if (text === null || text.length > MAX_SQL_ARG) return null;
  const env: Record<string, string> = {
    PGAPPNAME: `${opts.application_name ?? 'geodata-server'} export`,
    // the same statement timeout as the pool's own connections
    PGOPTIONS: `-c statement_timeout=${Number(opts.statement_timeout) || 0} -c default_transaction_read_only=on`,
    // rows are fetched by a cursor, a few thousand at a time (GDAL's default is 500)
    PG_LIST_ALL_TABLES: 'NO',
    OGR_PG_CURSOR_PAGE: '5000',
  };
  if (url.password) env.PGPASSWORD = decodeURIComponent(url.password);
  url.password = '';
  return { src: `PG:${url.toString()}`, sql: text, env };
}

/** Hold one export slot (the stream gate) while GDAL reads from the database with its own connection. */
function withStreamSlot<T>(o: FileExportOptions, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  return featureDb(o.pool).streams?.run(work, signal) ?? work();
}

/**
 * One file written by ogr2ogr (`args`: driver and creation options) at `out`: from the database
 * when the query can be given as SQL (`directArgs` added then), else from the engine's GeoJSON.
 */
async function gdalFile(
  o: FileExportOptions,
  dir: string,
  signal: AbortSignal,
  args: string[],
  out: string,
  directArgs: string[] = [],
): Promise<{ file: string; features: number }> {
  const direct = directSource(o);
  if (direct) {
    await withStreamSlot(o, signal, () => ogr2ogr(o, [...args, ...directArgs, out, direct.src, '-sql', direct.sql], signal, direct.env));
    return { file: out, features: await countInFile(o, out, signal) };
  }
  const input = path.join(dir, 'input.geojson');
  const features = await writeGeoJson(o, input, signal);
  await ogr2ogr(o, [...args, out, input], signal);
  await rm(input, { force: true });
  return { file: out, features };
}

/** The number of features in a file GDAL wrote (its own count: GPKG contents table, FlatGeobuf header, .shx). */
async function countInFile(o: FileExportOptions, file: string, signal: AbortSignal): Promise<number> {
  // ogrinfo lives beside ogr2ogr (gdal-bin)
  const ogrinfo = o.tools.commands.ogr2ogr.replace(/ogr2ogr$/, 'ogrinfo');
  return new Promise((resolve, reject) => {
    const child = spawn(ogrinfo, ['-ro', '-so', '-al', file], { stdio: ['ignore', 'pipe', 'ignore'], signal });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString('utf8');
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`ogrinfo failed on ${path.basename(file)} (exit ${code})`));
      let n = 0;
      for (const m of out.matchAll(/^Feature Count: (\d+)/gm)) n += Number(m[1]);
      resolve(n);
    });
  });
}

/** Formats that need ogr2ogr are offered only where it answers; this guards a caller that did not check. */
function requireGdal(o: FileExportOptions, what: string): void {
  if (!o.tools.has('ogr2ogr'))
    throw new ExportError(503, `${what} export needs GDAL's ogr2ogr on the server (Debian: apt-get install gdal-bin)`);
}

type Family = 'point' | 'line' | 'polygon';
const FAMILY_TYPES: Record<Family, string[]> = {
  point: ['POINT', 'MULTIPOINT'],
  line: ['LINESTRING', 'MULTILINESTRING'],
  polygon: ['POLYGON', 'MULTIPOLYGON'],
};

function familiesOf(geometryType: string): Family[] {
  for (const [f, types] of Object.entries(FAMILY_TYPES)) if (types.includes(geometryType)) return [f as Family];
  return ['point', 'line', 'polygon'];
}

/**
 * ESRI Shapefile(s) in a ZIP: .shp/.shx/.dbf/.prj/.cpg per geometry family (one shapefile per
 * family when the layer mixes points, lines and polygons), UTF-8 DBF (.cpg says so), field names
 * made unique within 10 characters by GDAL's laundering, .prj in ESRI WKT as GDAL writes it.
 */
export async function exportShapefileZip(o: FileExportOptions): Promise<FileExport> {
  const nFields = Math.max(...o.queries.map((q) => selectedFields(q).length));
  if (nFields > SHAPEFILE_MAX_FIELDS) {
    throw new ExportError(
      400,
      `a Shapefile (dBase) holds at most ${SHAPEFILE_MAX_FIELDS} fields and this request selects ${nFields}; choose fewer with properties=, or use GeoPackage`,
    );
  }
  requireGdal(o, 'Shapefile');
  const q0 = o.queries[0];
  const epsg = outputEpsgOf(q0);
  const { dir, value } = await inTempDir(o, async (dir, signal) => {
    const shpDir = path.join(dir, 'shp');
    const families = familiesOf(q0.layer.geometryType);
    const mixed = families.length > 1;
    const familyWhere = (fam: Family) => (g: string) => `GeometryType(${g}) IN (${FAMILY_TYPES[fam].map((t) => `'${t}'`).join(', ')})`;
    // GDAL reads the rows from the database itself, one query per geometry family, or else the
    // engine's GeoJSON, written once and read per family
    const direct = families.map((fam) => directSource(o, mixed ? familyWhere(fam) : undefined));
    const viaFile = direct.some((d) => d === null);
    const input = path.join(dir, 'input.geojson');
    let features = viaFile ? await writeGeoJson(o, input, signal) : 0;
    const written: string[] = [];
    for (const [i, fam] of families.entries()) {
      const name = mixed ? `${o.baseName}_${fam}` : o.baseName;
      const args = ['-f', 'ESRI Shapefile', '-a_srs', `EPSG:${epsg}`, '-lco', 'ENCODING=UTF-8', '-lco', '2GB_LIMIT=YES', '-nln', name];
      if (fam !== 'point' || mixed) args.push('-nlt', 'PROMOTE_TO_MULTI');
      const d = direct[i];
      if (!viaFile && d) args.push(shpDir, d.src, '-sql', d.sql);
      else {
        if (mixed) args.push('-where', FAMILY_TYPES[fam].map((t) => `OGR_GEOMETRY='${t}'`).join(' OR '));
        args.push(shpDir, input);
      }
      try {
        if (!viaFile && d) await withStreamSlot(o, signal, () => ogr2ogr(o, args, signal, d.env));
        else await ogr2ogr(o, args, signal);
      } catch (e) {
        const msg = String((e as { stderr?: string }).stderr ?? (e as Error).message);
        if (/2GB/i.test(msg))
          throw new ExportError(
            413,
            "a Shapefile part (.shp or .dbf) would exceed 2 GB, the format's limit; narrow the export (bbox, filter, clip, properties) or use GeoPackage",
          );
        throw e;
      }
      // a family with no feature (.shx is its 100-byte header alone) is left out of a mixed export
      const shx = await stat(path.join(shpDir, `${name}.shx`)).catch(() => undefined);
      if (mixed && shx && shx.size <= 100) {
        for (const ext of ['shp', 'shx', 'dbf', 'prj', 'cpg']) await rm(path.join(shpDir, `${name}.${ext}`), { force: true });
        continue;
      }
      written.push(name);
    }
    if (viaFile) await rm(input, { force: true });
    else features = await countInFile(o, shpDir, signal);
    const zipPath = path.join(dir, `${o.baseName}.zip`);
    const zip = new yazl.ZipFile();
    for (const f of (await readdir(shpDir)).sort()) zip.addFile(path.join(shpDir, f), f, { compress: true });
    zip.end();
    await pipeline(zip.outputStream as unknown as NodeJS.ReadableStream, createWriteStream(zipPath), { signal });
    await rm(shpDir, { recursive: true, force: true });
    return { file: zipPath, features };
  });
  return done(dir, value.file, 'application/zip', value.features);
}

/** GeoPackage (one table named after the layer, srs from the output CRS). */
export async function exportGeoPackage(o: FileExportOptions): Promise<FileExport> {
  requireGdal(o, 'GeoPackage');
  const q0 = o.queries[0];
  const epsg = outputEpsgOf(q0);
  const { dir, value } = await inTempDir(o, async (dir, signal) => {
    const out = path.join(dir, `${o.baseName}.gpkg`);
    const args = ['-f', 'GPKG', '-a_srs', `EPSG:${epsg}`, '-nln', o.baseName];
    const gt = q0.layer.geometryType;
    args.push('-nlt', gt.startsWith('MULTI') ? 'PROMOTE_TO_MULTI' : gt === 'GEOMETRY' ? 'GEOMETRY' : gt);
    if (q0.layer.title) args.push('-lco', `IDENTIFIER=${q0.layer.title}`);
    if (q0.layer.abstract) args.push('-lco', `DESCRIPTION=${q0.layer.abstract}`);
    // a file in a private temporary folder: no fsync per transaction, one transaction
    args.push('--config', 'OGR_SQLITE_SYNCHRONOUS', 'OFF', '-gt', 'unlimited');
    return gdalFile(o, dir, signal, args, out, ['-lco', `GEOMETRY_NAME=${GEOMETRY_NAME}`]);
  });
  return done(dir, value.file, 'application/geopackage+sqlite3', value.features);
}

/**
 * FlatGeobuf (one layer named after the layer, CRS from the output CRS, packed Hilbert R-tree
 * index), written by GDAL's FlatGeobuf driver from the engine's GeoJSON. Measured against
 * PostGIS's ST_AsFlatGeobuf (an aggregate: the whole file is one bytea in the backend's memory,
 * 1 GB at most) and the flatgeobuf npm package (serialises an in-memory feature array): GDAL is the
 * only one whose memory stays bounded on a large layer (features spill to a temporary file, the
 * index keeps one small entry per feature); see docs/formats.md.
 */
export async function exportFlatGeobuf(o: FileExportOptions): Promise<FileExport> {
  requireGdal(o, 'FlatGeobuf');
  const q0 = o.queries[0];
  const epsg = outputEpsgOf(q0);
  const { dir, value } = await inTempDir(o, async (dir, signal) => {
    const out = path.join(dir, `${o.baseName}.fgb`);
    const args = ['-f', 'FlatGeobuf', '-a_srs', `EPSG:${epsg}`, '-nln', o.baseName, '-lco', 'SPATIAL_INDEX=YES'];
    const gt = q0.layer.geometryType;
    // one geometry type per file when the layer has one (readers then know it from the header)
    args.push('-nlt', gt.startsWith('MULTI') ? 'PROMOTE_TO_MULTI' : gt === 'GEOMETRY' ? 'GEOMETRY' : gt);
    return gdalFile(o, dir, signal, args, out);
  });
  return done(dir, value.file, 'application/flatgeobuf', value.features);
}

/** exceljs weighs ~30 MB of resident memory once loaded: it is loaded by the first XLSX export, not at start. */
let excel: Promise<typeof ExcelJS> | undefined;
function loadExcel(): Promise<typeof ExcelJS> {
  excel ??= import('exceljs').then((m) => (m as unknown as { default: typeof ExcelJS }).default ?? (m as unknown as typeof ExcelJS));
  return excel;
}

export interface XlsxOptions {
  /** Geometry columns: 'wkt' (default), 'xy', 'both' or 'none'. */
  geometry?: 'wkt' | 'xy' | 'both' | 'none';
}

/**
 * Excel workbook, one sheet per query: attributes typed (numbers, booleans, dates) and the
 * geometry as WKT and/or x/y. Written by exceljs's streaming WorkbookWriter (rows committed as
 * they arrive). Excel's limits: 1,048,576 rows per sheet (checked by the caller with a count)
 * and 32,767 characters per cell (longer WKT is replaced by a note).
 */
export async function exportXlsx(o: FileExportOptions & XlsxOptions): Promise<FileExport> {
  const g = o.geometry ?? 'wkt';
  const geomCols = g === 'wkt' ? ['wkt'] : g === 'xy' ? ['x', 'y'] : g === 'both' ? ['wkt', 'x', 'y'] : [];
  const { dir, value } = await inTempDir(o, async (dir, signal) => {
    const file = path.join(dir, `${o.baseName}.xlsx`);
    const wb = new (await loadExcel()).stream.xlsx.WorkbookWriter({ filename: file, useStyles: false, useSharedStrings: false });
    let features = 0;
    let sheet: ExcelJS.Worksheet | undefined;
    let fields: ReturnType<typeof selectedFields> = [];
    let rows = 0;
    for await (const ev of featureRowEvents(o.pool, o.queries, 'csv', { xy: g === 'xy' || g === 'both' }, 1000, signal)) {
      if (signal.aborted) throw signal.reason ?? new Error('aborted');
      if (ev.kind === 'begin') {
        sheet?.commit();
        fields = selectedFields(ev.q);
        sheet = wb.addWorksheet(sheetName(ev.q.layer.name, ev.index));
        sheet.addRow([...fields.map((f) => f.name), ...geomCols].map(inlineText)).commit();
        rows = 1;
        continue;
      }
      if (ev.kind === 'end') continue;
      const row = ev.row!;
      if (++rows > XLSX_MAX_ROWS)
        throw new ExportError(413, `an Excel sheet holds at most ${XLSX_MAX_ROWS} rows; narrow the export or use CSV`);
      const values: unknown[] = fields.map((f) => cellValue(f.type, row[f.name]));
      for (const c of geomCols) {
        const v = row[c];
        if (c === 'wkt')
          values.push(
            v == null
              ? null
              : inlineText(
                  v.length > XLSX_MAX_CELL
                    ? `(geometry of ${v.length} characters: longer than an Excel cell holds; use geometry=xy, CSV or GeoPackage)`
                    : v,
                ),
          );
        else values.push(v === null || v === undefined ? null : Number(v));
      }
      sheet!.addRow(values).commit();
      features++;
      // backpressure: exceljs pipes the sheet into the zip's deflate stream without waiting for it,
      // so rows pile up in memory when PostgreSQL is faster than deflate (1M parcels peaked at
      // 1 GB RSS); wait while more than XLSX_PENDING_MAX bytes are queued
      if (features % 500 === 0) {
        await new Promise((r) => setImmediate(r));
        while (sheetPendingBytes(sheet!) > XLSX_PENDING_MAX) {
          if (signal.aborted) throw signal.reason ?? new Error('aborted');
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }
    sheet?.commit();
    await wb.commit();
    return { file, features };
  });
  return done(dir, value.file, 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', value.features);
}

/**
 * Bytes a streaming worksheet has produced that the zip has not compressed yet: exceljs's
 * StreamBuf buffers, then the PassThrough archiver puts between it and the deflate stream
 * (readable-stream, hence the internal states). Internals, read defensively: 0 if absent.
 */
const XLSX_PENDING_MAX = 8 * 1024 * 1024;
interface StreamStates {
  writableLength?: number;
  _writableState?: { length?: number };
  _readableState?: { length?: number };
}
function sheetPendingBytes(sheet: ExcelJS.Worksheet): number {
  const s = (sheet as unknown as { _stream?: { buffers?: Array<{ length?: number }>; pipes?: StreamStates[] } })._stream;
  if (!s) return 0;
  let n = 0;
  for (const b of s.buffers ?? []) n += Number(b.length) || 0;
  for (const p of s.pipes ?? []) {
    n += (Number(p._writableState?.length ?? p.writableLength) || 0) + (Number(p._readableState?.length) || 0);
  }
  return n;
}

function sheetName(name: string, i: number): string {
  const s = name.replace(/[\\/?*[\]:]/g, '_').slice(0, 28);
  return i === 0 ? s : `${s}_${i + 1}`;
}

/**
 * A string cell written inline (`t="inlineStr"`). exceljs writes plain strings without shared
 * strings as `t="str"`, the type of a formula's cached result, which readers such as GDAL take
 * for numbers (GDAL then misses the header row); shared strings would keep every distinct value
 * in memory until the end, which a streamed export cannot afford.
 */
function inlineText(v: string): ExcelJS.CellRichTextValue {
  return { richText: [{ text: v }] };
}

function cellValue(type: string, v: string | null | undefined): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'integer':
    case 'number':
      return Number(v);
    case 'long': {
      const n = Number(v);
      return Number.isSafeInteger(n) ? n : inlineText(v);
    }
    case 'boolean':
      return v === 'true';
    case 'date': {
      const m = v.match(/^(\d{4})-(\d{2})-(\d{2})$/);
      return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]))) : inlineText(v);
    }
    default:
      return inlineText(v);
  }
}

async function done(dir: string, file: string, contentType: string, features: number): Promise<FileExport> {
  const size = (await stat(file)).size;
  let removed = false;
  return {
    path: file,
    size,
    contentType,
    features,
    cleanup: async () => {
      if (removed) return;
      removed = true;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Stream a finished export (Content-Length = size) and remove it once sent or abandoned. */
export function streamExport(f: FileExport): NodeJS.ReadableStream & import('node:stream').Readable {
  const s = createReadStream(f.path);
  s.once('close', () => void f.cleanup());
  return s;
}
