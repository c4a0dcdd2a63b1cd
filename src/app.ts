/** Builds the Fastify instance from an application context and registers every front door. */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import querystring from 'node:querystring';
import type { AppContext } from './context.js';
import { projectRoot } from './config/index.js';
import { OwsException } from './ows/exceptions.js';
import { owsHandler, sendOwsException, SERVICE_NAMES } from './ows/service.js';
import { registerLanding } from './services/landing.js';
import { registerServices } from './services/index.js';

export const OWS_PATHS = ['/ows', '/wms', '/wfs', '/wmts', '/csw'];

export interface BuildOptions {
  /** A pino logger for request logs (off when absent). */
  logger?: FastifyServerOptions['loggerInstance'];
}

export async function buildApp(ctx: AppContext, opts: BuildOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: ctx.config.limits.maxBodyBytes,
    trustProxy: ctx.config.server.trustProxy,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
    },
    forceCloseConnections: 'idle',
    return503OnClosing: true,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500, querystringParser: (s: string) => querystring.parse(s) },
  });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
  });

  // XML (and anything else) as a string; OWS POST bodies are parsed by the dispatcher.
  app.addContentTypeParser(['application/xml', 'text/xml', 'application/ogc+xml'], { parseAs: 'string' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, querystring.parse(String(body)));
  });
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((error, req, reply) => {
    const err = error as Error & { statusCode?: number; code?: string };
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) req.log.error({ err }, 'request failed');
    const p = req.url.split('?')[0].toLowerCase().replace(/\/+$/, '');
    if (OWS_PATHS.includes(p)) {
      const code = status === 413 ? 'InvalidParameterValue' : status >= 500 ? 'NoApplicableCode' : 'InvalidParameterValue';
      const msg = status === 413 ? `request body larger than ${ctx.config.limits.maxBodyBytes} bytes` : status >= 500 ? `internal error (request id ${req.id})` : err.message;
      const svc = p.slice(1).toUpperCase();
      return sendOwsException(reply, new OwsException(code, msg, 'request', status), (SERVICE_NAMES as string[]).includes(svc) ? svc : undefined, undefined);
    }
    return reply
      .code(status)
      .type('application/problem+json')
      .send({ type: 'about:blank', title: status >= 500 ? 'Internal Server Error' : 'Bad Request', status, detail: status >= 500 ? `internal error (request id ${req.id})` : err.message });
  });

  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type('application/problem+json').send({ type: 'about:blank', title: 'Not Found', status: 404, detail: `no resource at ${req.url.split('?')[0]}` });
  });

  registerLanding(app, ctx);
  await registerServices(app, ctx);

  const handler = owsHandler(ctx);
  for (const p of OWS_PATHS) app.route({ method: ['GET', 'POST'], url: p, handler });

  const openapiPath = path.join(projectRoot, 'openapi.yaml');
  app.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml; charset=utf-8').send(readFileSync(openapiPath, 'utf8')));

  // Admin: reload the registry without a restart. Needs GEODATA_ADMIN_TOKEN (Bearer).
  app.post('/admin/reload', async (req, reply) => {
    if (!adminAuthorised(req.headers.authorization)) {
      return reply
        .code(401)
        .header('WWW-Authenticate', 'Bearer realm="geodata-admin"')
        .type('application/problem+json')
        .send({ type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'admin token required (Authorization: Bearer <GEODATA_ADMIN_TOKEN>)' });
    }
    await ctx.registry.reload();
    return { status: 'reloaded', layers: ctx.registry.list().length, version: ctx.registry.version };
  });

  return app;
}

function adminAuthorised(header: string | undefined): boolean {
  const token = process.env.GEODATA_ADMIN_TOKEN;
  if (!token || !header?.startsWith('Bearer ')) return false;
  const a = Buffer.from(header.slice(7));
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
