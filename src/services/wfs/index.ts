/** WFS 2.0.0 / 1.1.0 front door over the shared feature engine (src/features). */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { registerOwsService, type OwsRequest } from '../../ows/service.js';
import { attr, children } from '../../ows/xmldom.js';
import { XmlWriter } from '../../ows/xml.js';
import { capabilities } from './capabilities.js';
import { describeFeatureTypes } from './describe.js';
import { getFeature, getPropertyValue } from './getfeature.js';
import { GET_FEATURE_BY_ID, splitParenList } from './request.js';
import { NS_PREFIX, WFS_VERSIONS, is20, namespaceUri, publishedLayers, resolveType } from './common.js';

async function getCapabilities(req: OwsRequest): Promise<unknown> {
  const body = capabilities(req.ctx, req.version, req.baseUrl);
  return req.reply.header('Content-Type', 'application/xml; charset=UTF-8').send(body);
}

async function describeFeatureType(req: OwsRequest): Promise<unknown> {
  let names: string[] = [];
  if (req.xml) {
    names = children(req.xml, 'TypeName')
      .map((c) => c.text)
      .filter(Boolean);
  } else {
    const raw = req.kvp.TYPENAMES ?? req.kvp.TYPENAME;
    if (raw)
      names = splitParenList(raw)
        .flatMap((s) => s.split(','))
        .map((s) => s.trim())
        .filter(Boolean);
  }
  const fmt = (req.xml ? attr(req.xml, 'outputFormat') : req.kvp.OUTPUTFORMAT)?.toLowerCase().replace(/\s+/g, '');
  const v20 = is20(req.version);
  let gml: '3.2' | '3.1.1' = v20 ? '3.2' : '3.1.1';
  if (fmt) {
    if (/gml\/3\.2|version=3\.2|gml32/.test(fmt.replace(/ /g, '+'))) gml = '3.2';
    else if (/gml\/3\.1|version=3\.1|gml3$|gml311/.test(fmt)) gml = '3.1.1';
    else if (fmt !== 'text/xml' && fmt !== 'application/xml' && fmt !== 'xmlschema') {
      throw new OwsException('InvalidParameterValue', `unsupported output format '${fmt}' for DescribeFeatureType`, 'outputFormat');
    }
  }
  const layers = names.length ? names.map((n) => resolveType(req.ctx, n)) : publishedLayers(req.ctx);
  const body = describeFeatureTypes(req.ctx, layers, gml);
  const ctype = gml === '3.2' ? 'application/gml+xml; version=3.2' : 'text/xml; subtype=gml/3.1.1';
  return req.reply.header('Content-Type', `${ctype}; charset=UTF-8`).send(body);
}

function wfs20Root(w: XmlWriter, name: string, ctx: AppContext): void {
  w.start(name, {
    'xmlns:wfs': 'http://www.opengis.net/wfs/2.0',
    'xmlns:xsi': 'http://www.w3.org/2001/XMLSchema-instance',
    [`xmlns:${NS_PREFIX}`]: namespaceUri(ctx),
    'xsi:schemaLocation': 'http://www.opengis.net/wfs/2.0 http://schemas.opengis.net/wfs/2.0/wfs.xsd',
  });
}

async function listStoredQueries(req: OwsRequest): Promise<unknown> {
  const w = new XmlWriter();
  wfs20Root(w, 'wfs:ListStoredQueriesResponse', req.ctx);
  w.start('wfs:StoredQuery', { id: GET_FEATURE_BY_ID });
  w.el('wfs:Title', { 'xml:lang': 'en' }, 'Get feature by identifier');
  for (const l of publishedLayers(req.ctx)) w.el('wfs:ReturnFeatureType', `${NS_PREFIX}:${l.name}`);
  w.end();
  return req.reply.header('Content-Type', 'application/xml; charset=UTF-8').send(w.toString());
}

async function describeStoredQueries(req: OwsRequest): Promise<unknown> {
  const ids = req.xml
    ? children(req.xml, 'StoredQueryId').map((c) => c.text)
    : (req.kvp.STOREDQUERY_ID ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
  for (const id of ids) {
    if (id !== GET_FEATURE_BY_ID) throw new OwsException('InvalidParameterValue', `unknown stored query '${id}'`, 'storedQuery_Id');
  }
  const w = new XmlWriter();
  wfs20Root(w, 'wfs:DescribeStoredQueriesResponse', req.ctx);
  w.start('wfs:StoredQueryDescription', { id: GET_FEATURE_BY_ID });
  w.el('wfs:Title', { 'xml:lang': 'en' }, 'Get feature by identifier');
  w.el('wfs:Abstract', { 'xml:lang': 'en' }, 'Returns the single feature whose identifier (type.id, e.g. parcels.42) is given in ID.');
  w.el('wfs:Parameter', { name: 'ID', type: 'xsd:string', 'xmlns:xsd': 'http://www.w3.org/2001/XMLSchema' });
  w.el('wfs:QueryExpressionText', {
    returnFeatureTypes: publishedLayers(req.ctx)
      .map((l) => `${NS_PREFIX}:${l.name}`)
      .join(' '),
    language: 'urn:ogc:def:queryLanguage:OGC-WFS::WFSQueryExpression',
    isPrivate: 'true',
  });
  w.end();
  return req.reply.header('Content-Type', 'application/xml; charset=UTF-8').send(w.toString());
}

function only20(h: (req: OwsRequest) => Promise<unknown>) {
  return async (req: OwsRequest) => {
    if (!is20(req.version)) throw new OwsException('OperationNotSupported', `${req.operation} is a WFS 2.0 operation`, 'request');
    return h(req);
  };
}

export function registerWfs(app: FastifyInstance, ctx: AppContext): void {
  void app;
  void ctx;
  registerOwsService({
    name: 'WFS',
    versions: WFS_VERSIONS,
    negotiation: 'ows',
    unimplemented: ['Transaction', 'LockFeature', 'GetFeatureWithLock', 'CreateStoredQuery', 'DropStoredQuery', 'GetGmlObject'],
    operations: {
      GetCapabilities: getCapabilities,
      DescribeFeatureType: describeFeatureType,
      GetFeature: getFeature,
      GetPropertyValue: only20(getPropertyValue),
      ListStoredQueries: only20(listStoredQueries),
      DescribeStoredQueries: only20(describeStoredQueries),
    },
  });
}
