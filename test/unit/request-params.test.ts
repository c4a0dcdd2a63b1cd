/** The shared request vocabulary and the error model: pure functions, no database. */
import { describe, it, expect } from 'vitest';
import pg from 'pg';
import { parseBbox, parseCount, parseCrs, parseDatetime, parseSortBy, parseTileIndex, parseZoomRange } from '../../src/request/params.js';
import { OwsException, ServiceError } from '../../src/errors/service-error.js';
import { classify, classifyDbError } from '../../src/errors/classify.js';
import { renderOws, renderProblem } from '../../src/errors/render.js';
import { clientErrorOf } from '../../src/errors/client-error.js';

function refused(f: () => unknown): ServiceError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ServiceError);
    return e as ServiceError;
  }
  throw new Error('not refused');
}

describe('parseBbox', () => {
  it('four numbers in CRS84 by default; a CRS suffix with its axis order', () => {
    expect(parseBbox('1,2,3,4')).toEqual({ minx: 1, miny: 2, maxx: 3, maxy: 4, epsg: 4326 });
    expect(parseBbox('48,5,49,6,urn:ogc:def:crs:EPSG::4326', { crsSuffix: { locator: 'bbox' } })).toEqual({
      minx: 5,
      miny: 48,
      maxx: 6,
      maxy: 49,
      epsg: 4326,
    });
    expect(parseBbox('1,2,0,3,4,9', { allow3d: true })).toEqual({ minx: 1, miny: 2, maxx: 3, maxy: 4, epsg: 4326 });
    expect(parseBbox(['1', '2', '3', '4']).maxy).toBe(4);
  });
  it('refuses wrong counts, non-numbers, inverted corners, out-of-range degrees and unknown CRSs, naming the parameter', () => {
    for (const v of ['1,2,3', '1,2,3,4,5', '1,2,3,x', '3,2,1,4', '1,95,2,96', '-190,0,0,1', '1,2,3,NaN', '1,2,3,Infinity']) {
      const e = refused(() => parseBbox(v, { locator: 'bbox' }));
      expect(e.kind).toBe('invalid');
      expect(e.locator).toBe('bbox');
      expect(e.status).toBe(400);
    }
    expect(refused(() => parseBbox('1,2,3,4,EPSG:999999', { crsSuffix: { locator: 'bbox' } })).message).toMatch(/unsupported CRS/);
  });
});

describe('parseCrs, parseCount, parseSortBy, parseDatetime, tiles', () => {
  it('CRS names in every form', () => {
    for (const n of ['EPSG:2154', 'urn:ogc:def:crs:EPSG::2154', 'http://www.opengis.net/def/crs/EPSG/0/2154', '[EPSG:2154]'])
      expect(parseCrs(n, { locator: 'crs' }).epsg).toBe(2154);
    expect(parseCrs('CRS84', { locator: 'crs' })).toEqual({ epsg: 4326, latLonOrder: false });
    expect(refused(() => parseCrs('EPSG:999999', { locator: 'srsName' })).locator).toBe('srsName');
    expect(refused(() => parseCrs('EPSG:3857', { locator: 'crs', accept: (e) => e === 2154 })).kind).toBe('invalid');
  });
  it('counts: integers that fit; forty digits refused, or clamped when the standard says so', () => {
    expect(parseCount('12', { locator: 'count' })).toBe(12);
    expect(parseCount(undefined, { locator: 'count' })).toBeUndefined();
    expect(refused(() => parseCount('1234567890123456789012345678901234567890', { locator: 'count' })).locator).toBe('count');
    expect(refused(() => parseCount('-1', { locator: 'count' })).kind).toBe('invalid');
    expect(refused(() => parseCount('1e3', { locator: 'count' })).kind).toBe('invalid');
    expect(parseCount('1234567890123456789012345678901234567890', { locator: 'limit', max: 10000, clamp: true })).toBe(10000);
    expect(parseCount('20000', { locator: 'limit', max: 10000, clamp: true })).toBe(10000);
    expect(refused(() => parseCount('0', { locator: 'limit', min: 1 })).locator).toBe('limit');
  });
  it('sort keys in both vocabularies', () => {
    expect(parseSortBy('nom ASC,geodata:date DESC,b D', 'ows')).toEqual([
      { property: 'nom', desc: false },
      { property: 'date', desc: true },
      { property: 'b', desc: true },
    ]);
    expect(parseSortBy('nom,-date, c', 'api')).toEqual([
      { property: 'nom', desc: false },
      { property: 'date', desc: true },
      { property: 'c', desc: false },
    ]);
    expect(refused(() => parseSortBy('a,,b', 'api')).locator).toBe('sortby');
    expect(refused(() => parseSortBy('a SIDEWAYS', 'ows')).locator).toBe('sortBy');
  });
  it('datetimes: instants, open and closed intervals; impossible or inverted ones refused', () => {
    expect(parseDatetime('2024-05-01')).toMatchObject({ type: 'instant', isDate: true });
    expect(parseDatetime('2024-05-01T10:00:00Z/..')).toMatchObject({ type: 'interval', end: null });
    for (const v of ['2024-13-01', '../..', 'a/b/c', '2024-05-02/2024-05-01'])
      expect(refused(() => parseDatetime(v)).locator).toBe('datetime');
  });
  it('tile indices and zoom ranges', () => {
    expect(parseTileIndex('-1', 'TileRow')).toBe(-1); // out of the matrix: for the tile matrix set to say
    expect(refused(() => parseTileIndex('1.5', 'TileRow')).locator).toBe('TileRow');
    expect(parseZoomRange('3-5', 20)).toEqual([3, 5]);
    expect(refused(() => parseZoomRange('5-3', 20)).locator).toBe('zoom');
  });
});

describe('the error model', () => {
  it('status, exceptionCode and title follow from the kind; OwsException is the OWS-code way in', () => {
    expect(new ServiceError('missing', 'x').code).toBe('MissingParameterValue');
    expect(new ServiceError('busy', 'x').headers['Retry-After']).toBe('2');
    const tile = new ServiceError('tile-out-of-range', 'x', { locator: 'TileRow' });
    expect([tile.status, tile.restStatus]).toEqual([400, 404]);
    expect(renderOws(tile, 'ows11', '1.0.0').status).toBe(400);
    expect(renderOws(tile, 'ows11', '1.0.0', 'rest').status).toBe(404);
    const ows = new OwsException('LayerNotDefined', 'x', 'layers');
    expect(ows).toBeInstanceOf(ServiceError);
    expect([ows.kind, ows.status]).toEqual(['invalid', 400]);
    expect(new OwsException('OperationNotSupported', 'x', 'request', 501).kind).toBe('not-implemented');
  });
  it('a request still working when a stopping server has ended its pool gets 503 with Retry-After, not 500', async () => {
    const pool = new pg.Pool({ connectionString: 'postgres://nobody@127.0.0.1:1/none' });
    await pool.end();
    const e = await pool.query('SELECT 1').then(
      () => null,
      (err: unknown) => err,
    );
    const s = classify(e);
    expect([s.kind, s.status, s.headers['Retry-After']]).toEqual(['unavailable', 503, '2']);
  });
  it('problem+json names the parameter and never shows a 500 internals', () => {
    const p = JSON.parse(renderProblem(new ServiceError('invalid', 'bad', { locator: 'bbox' }), '/x').body);
    expect(p).toEqual({
      type: 'about:blank',
      title: 'Bad Request',
      status: 400,
      detail: 'bad',
      instance: '/x',
      parameter: 'bbox',
      code: 'InvalidParameterValue',
    });
    const internal = classify(new Error('SELECT secret FROM x'), { requestId: 'r1' });
    expect(internal.status).toBe(500);
    expect(internal.message).toBe('internal error (request id r1)');
  });
  it('PostgreSQL errors: timeouts and lost connections are 503 with Retry-After; PROJ and data exceptions from request values are 400', () => {
    const pg = (code: string, message: string) => Object.assign(new Error(message), { code });
    expect(classifyDbError(pg('57014', 'canceling statement due to statement timeout'))?.kind).toBe('timeout');
    expect(classifyDbError(pg('57P01', 'terminating connection'))?.status).toBe(503);
    expect(classifyDbError(pg('ECONNREFUSED', 'connect ECONNREFUSED'))?.headers['Retry-After']).toBe('5');
    expect(classifyDbError(new Error('timeout exceeded when trying to connect'))?.kind).toBe('busy');
    expect(classifyDbError(pg('22P02', 'invalid input syntax for type integer'))?.status).toBe(400);
    expect(classifyDbError(pg('XX000', 'transform: latitude or longitude exceeded limits (-14)'))?.kind).toBe('invalid');
    expect(classifyDbError(pg('XX000', 'GetProj4StringSPI: Cannot find SRID (999999) in spatial_ref_sys'))?.kind).toBe('invalid');
    expect(classifyDbError(pg('XX000', 'Invalid reserved SRID (999999)'))?.status).toBe(400);
    expect(classifyDbError(pg('XX000', 'something else'))).toBeNull();
    expect(classifyDbError(pg('42P01', 'relation does not exist'))).toBeNull();
  });
  it('requests refused by Node: over-long URL 414, slow request 408', () => {
    expect(clientErrorOf('HPE_HEADER_OVERFLOW', undefined).status).toBe(414);
    expect(clientErrorOf('HPE_HEADER_OVERFLOW', 'GET /x HTTP/1.1').status).toBe(431);
    expect(clientErrorOf('ERR_HTTP_REQUEST_TIMEOUT', undefined).status).toBe(408);
  });
});
