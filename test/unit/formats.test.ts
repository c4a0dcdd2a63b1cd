/**
 * The format table (src/features/formats.ts), without a database: lookups by name, media type and
 * extension, the CRS rules, what is offered with and without GDAL, what WFS advertises; and the
 * embedded default's package step (src/db/embedded.ts) with the machine injected.
 */
import { describe, expect, it } from 'vitest';
import {
  FORMATS,
  formatById,
  formatByExtension,
  formatByName,
  listedDownloads,
  missingFormats,
  offeredFormats,
  ogcApiFileFormats,
  outputCrsOf,
  splitDownloadFile,
  wfsOutputFormatNames,
} from '../../src/features/formats.js';
import { ensureFeaturePackages, FEATURE_INSTALL_COMMAND, type FeaturePackageHost } from '../../src/db/embedded.js';

const ALL = { ogr2ogr: true };
const NO_GDAL = { ogr2ogr: false };

describe('format table: one entry per format', () => {
  it('ids, media types and download extensions are unique', () => {
    const ids = FORMATS.map((f) => f.id);
    expect(new Set(ids).size).toBe(ids.length);
    const types = FORMATS.map((f) => f.mediaType);
    expect(new Set(types).size).toBe(types.length);
    const exts = FORMATS.flatMap((f) => (f.download ? [f.download.ext, ...(f.download.extAliases ?? [])] : []));
    expect(new Set(exts).size).toBe(exts.length);
  });

  it('no alias designates two formats', () => {
    const seen = new Map<string, string>();
    for (const f of FORMATS) {
      for (const n of [f.mediaType, ...f.aliases, ...(f.wfs?.names ?? [])]) {
        const hit = formatByName(n);
        expect(hit?.def.id, `${n} (declared by ${f.id})`).toBe(f.id);
        seen.set(n.toLowerCase(), f.id);
      }
    }
    expect(seen.size).toBeGreaterThan(30);
  });

  it('finds a format by media type, alias, GeoServer/GDAL short name, any case, and a "+" decoded to a space', () => {
    expect(formatByName('application/flatgeobuf')?.def.id).toBe('fgb');
    expect(formatByName('FlatGeobuf')?.def.id).toBe('fgb');
    expect(formatByName('fgb')?.def.id).toBe('fgb');
    expect(formatByName('SHAPE-ZIP')?.def.id).toBe('shp');
    expect(formatByName('shape-zip')?.def.id).toBe('shp');
    expect(formatByName('GPKG')?.def.id).toBe('gpkg');
    expect(formatByName('application/geopackage sqlite3')?.def.id).toBe('gpkg');
    expect(formatByName('application/geo json')?.def.id).toBe('geojson');
    expect(formatByName('application/gml+xml; version=3.2')?.def.id).toBe('gml32');
    expect(formatByName('application/gml+xml;version=3.2')?.def.id).toBe('gml32');
    expect(formatByName('text/xml; subtype=gml/3.1.1')?.def.id).toBe('gml311');
    expect(formatByName('excel2007')?.def.id).toBe('xlsx');
    expect(formatByName('application/vnd.google-earth.kml+xml')?.def.id).toBe('kml');
    expect(formatByName('image/png')).toBeUndefined();
    expect(formatByName('')).toBeUndefined();
  });

  it('a JSON alias is answered with the content type the client named', () => {
    expect(formatByName('application/json')).toMatchObject({ contentType: 'application/json; charset=UTF-8' });
    expect(formatByName('json')?.contentType).toBe('application/json; charset=UTF-8');
    expect(formatByName('application/geo+json')?.contentType).toBe('application/geo+json');
    expect(formatByName('text/csv')?.contentType).toBe('text/csv; charset=UTF-8');
  });

  it('finds a download by extension, and splits a file name on the longest extension', () => {
    expect(formatByExtension('fgb')?.id).toBe('fgb');
    expect(formatByExtension('json')?.id).toBe('geojson');
    expect(formatByExtension('zip')?.id).toBe('shp');
    expect(formatByExtension('geojsonl')?.id).toBe('ndjson');
    expect(formatByExtension('gml')).toBeUndefined();
    expect(splitDownloadFile('communes.shp.zip')).toMatchObject({ name: 'communes', def: { id: 'shp' } });
    expect(splitDownloadFile('my.layer.fgb')).toMatchObject({ name: 'my.layer', def: { id: 'fgb' } });
    expect(splitDownloadFile('parcels.GeoJSON')).toMatchObject({ name: 'parcels', def: { id: 'geojson' } });
    expect(splitDownloadFile('parcels.docx')).toBeUndefined();
    expect(splitDownloadFile('.fgb')).toBeUndefined();
  });

  it('files carry their extension and EU file type; FlatGeobuf has no EU code and says so by having none', () => {
    expect(formatById('shp').fileExt).toBe('zip');
    expect(formatById('fgb')).toMatchObject({ fileExt: 'fgb', mediaType: 'application/flatgeobuf', spatialIndex: true, streams: false });
    expect(formatById('fgb').euFileType).toBeUndefined();
    expect(formatById('gpkg').euFileType).toBe('GPKG');
  });
});

describe('format table: CRS rules', () => {
  it('KML is WGS 84 whatever is asked', () => {
    expect(outputCrsOf(formatById('kml'), undefined, 2154)).toBe(4326);
    expect(outputCrsOf(formatById('kml'), 2154, 2154)).toBe(4326);
    expect(outputCrsOf(formatById('kml'), 3857, 2154)).toBe(4326);
  });
  it('the GeoJSON family defaults to WGS 84 (RFC 7946) and keeps a CRS that is asked', () => {
    for (const id of ['geojson', 'ndjson', 'geojsonseq'] as const) {
      expect(outputCrsOf(formatById(id), undefined, 2154), id).toBe(4326);
      expect(outputCrsOf(formatById(id), 2154, 2154), id).toBe(2154);
    }
  });
  it('GML and the GIS files default to the layer’s own CRS', () => {
    for (const id of ['gml32', 'gml311', 'csv', 'shp', 'gpkg', 'fgb', 'xlsx'] as const) {
      expect(outputCrsOf(formatById(id), undefined, 2154), id).toBe(2154);
      expect(outputCrsOf(formatById(id), 3035, 2154), id).toBe(3035);
    }
  });
  it('files are written x/y whatever the protocol axis order; GML follows the protocol', () => {
    expect(formatById('fgb').xyOnly).toBe(true);
    expect(formatById('gpkg').xyOnly).toBe(true);
    expect(formatById('gml32').xyOnly).toBe(false);
  });
});

describe('format table: offered only where it works', () => {
  it('without ogr2ogr, Shapefile, GeoPackage and FlatGeobuf are not offered; the rest is', () => {
    const ids = offeredFormats(NO_GDAL).map((f) => f.id);
    expect(ids).not.toContain('shp');
    expect(ids).not.toContain('gpkg');
    expect(ids).not.toContain('fgb');
    for (const id of ['gml32', 'gml311', 'geojson', 'csv', 'kml', 'xlsx', 'ndjson']) expect(ids).toContain(id);
    expect(missingFormats(NO_GDAL).map((m) => m.def.id)).toEqual(['shp', 'gpkg', 'fgb']);
    expect(missingFormats(ALL)).toEqual([]);
    expect(offeredFormats(ALL).length).toBe(FORMATS.length);
  });
  it('configured exclusions remove a format everywhere', () => {
    expect(offeredFormats(ALL, ['xlsx', 'KML']).map((f) => f.id)).not.toEqual(expect.arrayContaining(['xlsx']));
    expect(offeredFormats(ALL, ['xlsx', 'KML']).some((f) => f.id === 'kml')).toBe(false);
  });
  it('WFS advertises the version’s GML first, then the rest in table order, and nothing that is not offered', () => {
    const v20 = wfsOutputFormatNames('2.0.0', offeredFormats(ALL));
    expect(v20[0]).toBe('application/gml+xml; version=3.2');
    expect(v20).toEqual(expect.arrayContaining(['application/geo+json', 'SHAPE-ZIP', 'GPKG', 'application/flatgeobuf', 'FlatGeobuf']));
    const v11 = wfsOutputFormatNames('1.1.0', offeredFormats(ALL));
    expect(v11[0]).toBe('text/xml; subtype=gml/3.1.1');
    expect(v11).not.toContain('application/geo+json');
    expect(v11).toContain('application/json');
    const noGdal = wfsOutputFormatNames('2.0.0', offeredFormats(NO_GDAL));
    for (const n of ['SHAPE-ZIP', 'GPKG', 'application/geopackage+sqlite3', 'application/flatgeobuf', 'FlatGeobuf'])
      expect(noGdal).not.toContain(n);
    expect(noGdal).toContain('excel2007');
  });
  it('OGC API and download links follow the offered formats', () => {
    expect(ogcApiFileFormats(offeredFormats(ALL)).map((f) => f.download!.ext)).toEqual(['csv', 'kml', 'shp', 'gpkg', 'fgb', 'xlsx']);
    expect(ogcApiFileFormats(offeredFormats(NO_GDAL)).map((f) => f.download!.ext)).toEqual(['csv', 'kml', 'xlsx']);
    expect(listedDownloads(offeredFormats(NO_GDAL)).map((f) => f.download!.ext)).toEqual(['geojson', 'csv', 'kml', 'xlsx']);
  });
});

describe('embedded default: the packages the formats need', () => {
  function host(o: { root: boolean; gdal: boolean; gdalAfter?: boolean; aptFails?: boolean }) {
    const calls: string[][] = [];
    let installed = false;
    const h: FeaturePackageHost = {
      isRoot: () => o.root,
      hasOgr2ogr: () => o.gdal || (installed && (o.gdalAfter ?? true)),
      apt: (args) => {
        calls.push(args);
        if (o.aptFails) return 100;
        if (args[0] === 'install') installed = true;
        return 0;
      },
    };
    return { h, calls };
  }
  it('does nothing when ogr2ogr is there', () => {
    const { h, calls } = host({ root: true, gdal: true });
    const log: string[] = [];
    expect(ensureFeaturePackages((m) => log.push(m), h)).toBe(true);
    expect(calls).toEqual([]);
    expect(log).toEqual([]);
  });
  it('installs gdal-bin from Debian when root', () => {
    const { h, calls } = host({ root: true, gdal: false });
    const log: string[] = [];
    expect(ensureFeaturePackages((m) => log.push(m), h)).toBe(true);
    expect(calls).toEqual([
      ['update', '-qq'],
      ['install', '-y', '-qq', '--no-install-recommends', 'gdal-bin'],
    ]);
    expect(log.join('\n')).toContain('installing gdal-bin');
  });
  it('prints the exact command and goes on without those formats when not root', () => {
    const { h, calls } = host({ root: false, gdal: false });
    const log: string[] = [];
    expect(ensureFeaturePackages((m) => log.push(m), h)).toBe(false);
    expect(calls).toEqual([]);
    expect(log.join('\n')).toContain(`sudo sh -c '${FEATURE_INSTALL_COMMAND}'`);
    expect(FEATURE_INSTALL_COMMAND).toContain('apt-get install -y --no-install-recommends gdal-bin');
    expect(log.join('\n')).toContain('Shapefile, GeoPackage and FlatGeobuf outputs are not offered');
  });
  it('a failed apt-get is reported with the command, not thrown', () => {
    const { h } = host({ root: true, gdal: false, aptFails: true });
    const log: string[] = [];
    expect(ensureFeaturePackages((m) => log.push(m), h)).toBe(false);
    expect(log.join('\n')).toContain(FEATURE_INSTALL_COMMAND);
  });
});
