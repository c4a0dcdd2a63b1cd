/**
 * OWS common front door: one dispatcher for /ows, /wms, /wfs, /wmts and /csw. It reads the
 * request (KVP in the query string or a form body, or an XML document in a POST body), finds
 * the service and operation, negotiates the version, and writes exceptions in the protocol's
 * own form. Services plug in with registerOwsService().
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../context.js';
import { OwsException, type ServiceError } from '../errors/service-error.js';
import { classify } from '../errors/classify.js';
import { sendOws } from '../errors/render.js';
import { normaliseKvp, negotiateAcceptVersions, negotiateWmsVersion, type Kvp } from './kvp.js';
import { parseXml, XmlInputError, xmlLimitsOf, type XmlElement, type XmlLimits } from './xmldom.js';
import { tagRequest } from '../ops/tags.js';
import { layersFor } from '../security/access.js';

export type ServiceName = 'WMS' | 'WFS' | 'WMTS' | 'CSW';
export const SERVICE_NAMES: ServiceName[] = ['WMS', 'WFS', 'WMTS', 'CSW'];

export interface OwsRequest {
  service: ServiceName;
  /** Operation name in its canonical case (as registered). */
  operation: string;
  /** Negotiated (GetCapabilities) or requested version. */
  version: string;
  /** KVP with upper-cased keys (empty for XML requests). */
  kvp: Kvp;
  /** Root element of a POST XML request. */
  xml?: XmlElement;
  http: FastifyRequest;
  reply: FastifyReply;
  /** Public base URL of the server, without trailing slash. */
  baseUrl: string;
  ctx: AppContext;
}

export type OwsHandler = (req: OwsRequest) => Promise<unknown>;

export interface OwsServiceDef {
  name: ServiceName;
  /** Supported versions, highest first. */
  versions: string[];
  /** WMS negotiates with VERSION; the others with AcceptVersions. */
  negotiation: 'wms' | 'ows';
  operations: Record<string, OwsHandler>;
  /**
   * Operations the standard defines that this server does not implement (e.g. WFS Transaction):
   * asking for one is answered 501, the server's limitation, not the client's mistake.
   */
  unimplemented?: string[];
  /** Refuse requests without a service parameter even at the service's own endpoint (CSW). */
  requireService?: boolean;
  /** Optional hook to write exceptions differently (e.g. WMS EXCEPTIONS=INIMAGE). */
  exceptionHandler?: (
    err: ServiceError,
    req: Partial<OwsRequest> & { http: FastifyRequest; reply: FastifyReply; kvp: Kvp; version?: string },
  ) => Promise<boolean>;
}

const services = new Map<ServiceName, OwsServiceDef>();

export function registerOwsService(def: OwsServiceDef): void {
  services.set(def.name, def);
}

export function getOwsService(name: ServiceName): OwsServiceDef | undefined {
  return services.get(name);
}

export function baseUrlOf(req: FastifyRequest, ctx: AppContext): string {
  const configured = ctx.config.service.onlineResource;
  if (configured) return configured.replace(/\/+$/, '');
  const host = req.headers.host ?? `${ctx.config.server.host}:${ctx.config.server.port}`;
  return `${req.protocol}://${host}`;
}

/** Write an OWS exception (anything thrown, classified) in the right flavour for the service and version. */
export function sendOwsException(
  reply: FastifyReply,
  err: unknown,
  service: string | undefined,
  version: string | undefined,
): FastifyReply {
  return sendOws(reply, reply.request, err, service, version);
}

function pathService(url: string): ServiceName | undefined {
  const p = url.split('?')[0].toLowerCase().replace(/\/+$/, '');
  const last = p.slice(p.lastIndexOf('/') + 1);
  return (SERVICE_NAMES as string[]).includes(last.toUpperCase()) ? (last.toUpperCase() as ServiceName) : undefined;
}

interface ParsedInput {
  kvp: Kvp;
  xml?: XmlElement;
}

function readInput(req: FastifyRequest, limits: XmlLimits): ParsedInput {
  const queryKvp = normaliseKvp(req.query as Record<string, unknown>);
  if (req.method !== 'POST') return { kvp: queryKvp };
  const ctype = String(req.headers['content-type'] ?? '').toLowerCase();
  const body = req.body;
  if (ctype.startsWith('application/x-www-form-urlencoded')) {
    const form = normaliseKvp(body as Record<string, unknown>);
    return { kvp: { ...queryKvp, ...form } };
  }
  const text = typeof body === 'string' ? body : Buffer.isBuffer(body) ? body.toString('utf8') : '';
  if (!text.trim()) {
    throw new OwsException('MissingParameterValue', 'POST request without an XML body', 'request');
  }
  try {
    return { kvp: queryKvp, xml: parseXml(text, limits) };
  } catch (e) {
    if (e instanceof XmlInputError) throw new OwsException('OperationParsingFailed', e.message, 'request');
    throw e;
  }
}

/** The Fastify handler for every OWS endpoint. */
export function owsHandler(ctx: AppContext) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    let serviceName: string | undefined = pathService(req.url);
    let version: string | undefined;
    let kvp: Kvp = {};
    let def: OwsServiceDef | undefined;
    try {
      const input = readInput(req, xmlLimitsOf(ctx.config.limits));
      kvp = input.kvp;
      const xml = input.xml;
      const declared = (xml?.attrs.service ?? kvp.SERVICE)?.trim();
      version = (xml?.attrs.version ?? kvp.VERSION ?? kvp.WMTVER)?.trim() || undefined;
      if (declared) {
        const up = declared.toUpperCase();
        if (!(SERVICE_NAMES as string[]).includes(up)) {
          // report in the form of the endpoint's own service when there is one
          throw new OwsException(
            'InvalidParameterValue',
            `unknown service '${declared}' (this server offers ${SERVICE_NAMES.join(', ')})`,
            'service',
          );
        }
        if (serviceName && serviceName !== up) {
          throw new OwsException(
            'InvalidParameterValue',
            `service '${declared}' is not offered at this endpoint (${serviceName})`,
            'service',
          );
        }
        serviceName = up;
      }
      const operationRaw = (xml ? xml.name : kvp.REQUEST)?.trim();
      if (!serviceName) {
        // WMS clients may omit SERVICE for GetMap etc.; OWS Common requires it.
        if (operationRaw && /^(getmap|getfeatureinfo|getlegendgraphic)$/i.test(operationRaw)) serviceName = 'WMS';
        else throw new OwsException('MissingParameterValue', "missing parameter 'service'", 'service');
      }
      def = services.get(serviceName as ServiceName);
      // CSW 2.0.2 (OGC 07-006r1 §10.3.2): service is mandatory in every request, even at /csw
      if (!declared && def?.requireService) throw new OwsException('MissingParameterValue', "missing parameter 'service'", 'service');
      if (!operationRaw) throw new OwsException('MissingParameterValue', "missing parameter 'request'", 'request');
      if (!def) {
        throw new OwsException('OperationNotSupported', `the ${serviceName} service is not implemented by this server yet`, 'service', 501);
      }
      const opName = Object.keys(def.operations).find((o) => o.toLowerCase() === operationRaw.toLowerCase());
      if (!opName && def.unimplemented?.some((o) => o.toLowerCase() === operationRaw.toLowerCase())) {
        throw new OwsException('OperationNotSupported', `operation '${operationRaw}' is not implemented by this server`, 'request', 501);
      }
      if (!opName) {
        // the client asked for an operation that does not exist here: its mistake, so 400
        throw new OwsException(
          'OperationNotSupported',
          `operation '${operationRaw}' is not supported by ${def.name} (supported: ${Object.keys(def.operations).join(', ')})`,
          'request',
          400,
        );
      }
      tagRequest(req, { service: def.name, operation: opName });
      if (opName === 'GetCapabilities') {
        version =
          def.negotiation === 'wms'
            ? negotiateWmsVersion(version, def.versions)
            : negotiateAcceptVersions(
                (xml ? acceptVersionsFromXml(xml) : kvp.ACCEPTVERSIONS) ??
                  (version && def.versions.includes(version) ? version : undefined),
                def.versions,
              );
      } else if (!version) {
        version = def.versions[0];
      } else if (!def.versions.includes(version)) {
        const v = version;
        version = def.versions[0];
        throw new OwsException(
          'InvalidParameterValue',
          `version '${v}' is not supported by ${def.name} (supported: ${def.versions.join(', ')})`,
          'version',
        );
      }
      const owsReq: OwsRequest = {
        service: def.name,
        operation: opName,
        version,
        kvp,
        xml,
        http: req,
        reply,
        baseUrl: baseUrlOf(req, ctx),
        // the registry as this caller sees it: layers it may not read are unknown to it; the runtime is the application's
        ctx: { ...ctx, registry: layersFor(ctx, req) },
      };
      return await def.operations[opName](owsReq);
    } catch (e) {
      const err = classify(e, { requestId: req.id, limits: ctx.config.limits });
      if (err.kind === 'internal') req.log.error({ err: e }, 'unexpected error');
      if (def?.exceptionHandler && !reply.sent) {
        const handled = await def.exceptionHandler(err, { http: req, reply, kvp, version });
        if (handled) return reply;
      }
      if (reply.sent || reply.raw.headersSent) {
        // mid-stream failure: nothing more can be said in-band; end the response.
        req.log.warn({ err: err.message }, 'error after the response started');
        reply.raw.destroy();
        return reply;
      }
      return sendOws(reply, req, err, serviceName, version);
    }
  };
}

function acceptVersionsFromXml(xml: XmlElement): string | undefined {
  const av = xml.children.find((c) => c.name === 'AcceptVersions');
  if (!av) return undefined;
  return av.children
    .filter((c) => c.name === 'Version')
    .map((c) => c.text)
    .join(',');
}
