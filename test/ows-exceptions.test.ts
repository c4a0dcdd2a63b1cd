import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { OwsException, renderOws as renderException, flavourFor } from '../src/ows/exceptions.js';
import { negotiateAcceptVersions, negotiateWmsVersion, normaliseKvp, parseNumberList } from '../src/ows/kvp.js';
import { parseXml } from '../src/ows/xmldom.js';
import { makeTestApp, type TestApp } from './helpers/app.js';
import { canValidate, skipReason, validateXml } from './helpers/xml-validate.js';

const err = new OwsException('InvalidParameterValue', 'bad <value> & "more"', 'bbox');

describe('exception reports, one form per protocol and version', () => {
  const cases = [
    { service: 'WFS', version: '2.0.0', root: 'ExceptionReport', ns: 'http://www.opengis.net/ows/1.1', ctype: 'application/xml' },
    { service: 'WFS', version: '1.1.0', root: 'ExceptionReport', ns: 'http://www.opengis.net/ows', ctype: 'application/xml' },
    { service: 'WMTS', version: '1.0.0', root: 'ExceptionReport', ns: 'http://www.opengis.net/ows/1.1', ctype: 'application/xml' },
    { service: 'CSW', version: '2.0.2', root: 'ExceptionReport', ns: 'http://www.opengis.net/ows', ctype: 'application/xml' },
    { service: 'WMS', version: '1.3.0', root: 'ServiceExceptionReport', ns: 'http://www.opengis.net/ogc', ctype: 'text/xml' },
    { service: 'WMS', version: '1.1.1', root: 'ServiceExceptionReport', ns: '', ctype: 'application/vnd.ogc.se_xml' },
  ];
  const rendered = cases.map((c) => ({ c, r: renderException(err, flavourFor(c.service, c.version), c.version) }));

  it.each(rendered)('$c.service $c.version', ({ c, r }) => {
    expect(r.status).toBe(400);
    expect(r.contentType.startsWith(c.ctype)).toBe(true);
    const body = r.body.replace(/<!DOCTYPE[^>]*>/, ''); // our parser refuses DOCTYPE by design
    const el = parseXml(body);
    expect(el.name).toBe(c.root);
    expect(el.ns).toBe(c.ns);
    const ex = el.children[0];
    if (c.root === 'ExceptionReport') {
      expect(ex.attrs.exceptionCode).toBe('InvalidParameterValue');
      expect(ex.attrs.locator).toBe('bbox');
      expect(ex.children[0].text).toBe('bad <value> & "more"');
    } else if (c.version === '1.3.0') {
      expect(ex.attrs.code).toBe('InvalidParameterValue');
      expect(ex.attrs.locator).toBe('bbox');
      expect(ex.text).toBe('bad <value> & "more"');
    } else {
      // WMS 1.1.1's DTD has no locator attribute: it is carried in the text
      expect(ex.attrs.code).toBe('InvalidParameterValue');
      expect(ex.attrs.locator).toBeUndefined();
      expect(ex.text).toBe('bad <value> & "more" (locator: bbox)');
    }
  });

  it.skipIf(!canValidate)('every form is valid against the OGC schemas', () => {
    const results = validateXml(rendered.map((x) => x.r.body));
    results.forEach((res, i) => expect(res.valid, `${rendered[i].c.service} ${rendered[i].c.version}: ${res.output}`).toBe(true));
  });
  if (!canValidate) it.skip(skipReason, () => {});

  it('maps codes to HTTP statuses', () => {
    expect(new OwsException('MissingParameterValue', 'x').status).toBe(400);
    expect(new OwsException('NotFound', 'x').status).toBe(404);
    expect(new OwsException('ServerBusy', 'x').status).toBe(503);
    expect(renderException(new OwsException('InvalidCRS', 'x'), 'wms111').body).toContain('code="InvalidSRS"');
    expect(renderException(new OwsException('InvalidCRS', 'x'), 'ows11').body).toContain('exceptionCode="InvalidParameterValue"');
  });
});

describe('KVP and version negotiation', () => {
  it('keys are case-insensitive, conflicting repeats refused', () => {
    expect(normaliseKvp({ service: 'WMS', Request: 'GetMap' })).toEqual({ SERVICE: 'WMS', REQUEST: 'GetMap' });
    expect(() => normaliseKvp({ bbox: ['1,2,3,4', '5,6,7,8'] })).toThrow(OwsException);
    expect(() => parseNumberList('1,2,x,4', 'bbox', 4)).toThrow(/bbox/);
    expect(parseNumberList('1, 2,3,4', 'bbox', 4)).toEqual([1, 2, 3, 4]);
  });
  it('WMS: exact, next lower, else lowest', () => {
    const s = ['1.3.0', '1.1.1'];
    expect(negotiateWmsVersion(undefined, s)).toBe('1.3.0');
    expect(negotiateWmsVersion('1.1.1', s)).toBe('1.1.1');
    expect(negotiateWmsVersion('1.2.0', s)).toBe('1.1.1');
    expect(negotiateWmsVersion('2.0.0', s)).toBe('1.3.0');
    expect(negotiateWmsVersion('1.0.0', s)).toBe('1.1.1');
  });
  it('OWS AcceptVersions: first supported, else VersionNegotiationFailed', () => {
    const s = ['2.0.0', '1.1.0'];
    expect(negotiateAcceptVersions(undefined, s)).toBe('2.0.0');
    expect(negotiateAcceptVersions('3.0.0,1.1.0,2.0.0', s)).toBe('1.1.0');
    expect(() => negotiateAcceptVersions('3.0.0', s)).toThrow(/VersionNegotiationFailed|none of the versions/);
  });
});

describe('OWS dispatcher over HTTP', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await makeTestApp({ limits: { maxBodyBytes: 4096 } });
  });
  afterAll(async () => t?.close());

  it('unknown service → OWS exception, HTTP 400, locator service', async () => {
    const r = await t.app.inject({ url: '/ows?SERVICE=NOPE&REQUEST=GetCapabilities' });
    expect(r.statusCode).toBe(400);
    const el = parseXml(r.body);
    expect(el.name).toBe('ExceptionReport');
    expect(el.children[0].attrs.exceptionCode).toBe('InvalidParameterValue');
    expect(el.children[0].attrs.locator).toBe('service');
  });

  it('missing service and missing request are MissingParameterValue', async () => {
    const a = await t.app.inject({ url: '/ows?REQUEST=GetCapabilities' });
    expect(a.statusCode).toBe(400);
    expect(a.body).toContain('exceptionCode="MissingParameterValue"');
    expect(a.body).toContain('locator="service"');
    const b = await t.app.inject({ url: '/ows?service=WFS' });
    expect(b.statusCode).toBe(400);
    expect(b.body).toContain('locator="request"');
    // keys are case-insensitive
    const c = await t.app.inject({ url: '/ows?sErViCe=nope&request=GetCapabilities' });
    expect(c.body).toContain('locator="service"');
  });

  it('an endpoint refuses another service', async () => {
    const r = await t.app.inject({ url: '/wfs?SERVICE=WMS&REQUEST=GetCapabilities' });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('locator="service"');
  });

  it('XML bodies: DOCTYPE refused, malformed refused, oversize refused — all as OWS exceptions', async () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><GetCapabilities service="WFS">&a;</GetCapabilities>';
    const a = await t.app.inject({ method: 'POST', url: '/ows', payload: bomb, headers: { 'content-type': 'application/xml' } });
    expect(a.statusCode).toBe(400);
    expect(a.body).toContain('OperationParsingFailed');
    const b = await t.app.inject({
      method: 'POST',
      url: '/ows',
      payload: '<GetCapabilities service="WFS">',
      headers: { 'content-type': 'text/xml' },
    });
    expect(b.statusCode).toBe(400);
    expect(b.body).toContain('not well-formed');
    const c = await t.app.inject({
      method: 'POST',
      url: '/wfs',
      payload: `<GetCapabilities service="WFS"><!-- ${'x'.repeat(10000)} --></GetCapabilities>`,
      headers: { 'content-type': 'application/xml' },
    });
    expect(c.statusCode).toBe(413);
    expect(c.body).toContain('ExceptionReport');
    expect(c.body).not.toMatch(/at .*\.ts:\d+/); // no stack trace
  });

  it('form-encoded POST is read as KVP', async () => {
    const r = await t.app.inject({
      method: 'POST',
      url: '/ows',
      payload: 'SERVICE=NOPE&REQUEST=GetCapabilities',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(r.statusCode).toBe(400);
    expect(r.body).toContain('locator="service"');
  });
});
