/** Builds the Fastify instance from an application context and registers every front door. */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import http from 'node:http';
import querystring from 'node:querystring';
import type { AppContext } from './context.js';
import { projectRoot } from './config/index.js';
import { ServiceError } from './errors/service-error.js';
import { sendOws, sendProblem } from './errors/render.js';
import { clientErrorHandler, notePath } from './errors/client-error.js';
import cors from '@fastify/cors';
import { registerAdminGuard } from './security/admin.js';
import { owsHandler, SERVICE_NAMES } from './ows/service.js';
import { registerLanding } from './services/landing.js';
import { registerApiDocs } from './services/apidocs.js';
import { registerServices } from './services/index.js';
import { registerOps } from './services/ops.js';
import { registerLogin } from './services/login.js';
import { accessCacheHeaders } from './security/access.js';
import { requestIdOf, tagsOf, tagRequest } from './ops/tags.js';
import { CORS_EXPOSED, TileFastPath } from './services/wmts/fast.js';
import { frontConnections } from './services/wmts/fast-socket.js';
import { isHeavyRequest } from './ops/shed.js';
import { AuthError, principalOf, type Principal } from './security/auth.js';
import { registerOverviewRoutes } from './overviews/index.js';
import rateLimit from '@fastify/rate-limit';
import { processSlot } from './cluster.js';

export const OWS_PATHS = ['/ows', '/wms', '/wfs', '/wmts', '/csw'];

export interface BuildOptions {
  /** A pino logger for request logs (off when absent). */
  logger?: FastifyServerOptions['loggerInstance'];
  /** Called on the new instance before any hook or route is added (e.g. an onRoute hook listing routes). */
  onCreate?: (app: FastifyInstance) => void;
}

export async function buildApp(ctx: AppContext, opts: BuildOptions = {}): Promise<FastifyInstance> {
  let fast: TileFastPath | undefined;
  const app = Fastify({
    ...(opts.logger ? { loggerInstance: opts.logger } : { logger: false }),
    bodyLimit: ctx.config.limits.maxBodyBytes,
    trustProxy: ctx.config.server.trustProxy,
    genReqId: requestIdOf,
    // cached tiles are answered before Fastify sees the request when they can be (src/services/wmts/fast.ts)
    serverFactory: (handler, options) => {
      const o = options as { http?: http.ServerOptions; keepAliveTimeout?: number; requestTimeout?: number; connectionTimeout?: number };
      const server = http.createServer(o.http ?? {}, (req, res) => {
        if (!fast?.handle(req, res, handler)) handler(req, res);
      });
      // what Fastify does with the server it creates itself (fastify/lib/server.js)
      server.keepAliveTimeout = o.keepAliveTimeout ?? 72_000;
      server.requestTimeout = o.requestTimeout ?? 0;
      server.setTimeout(o.connectionTimeout ?? 0);
      return server;
    },
    forceCloseConnections: 'idle',
    // a request (headers and body) must arrive within this time: a slow body is cut off with 408
    requestTimeout: ctx.config.server.requestTimeoutMs,
    http: { connectionsCheckingInterval: Math.max(250, Math.min(30_000, Math.floor(ctx.config.server.requestTimeoutMs / 4))) },
    // over-long URLs, slow requests, malformed HTTP: answered in the protocol's form of the path
    clientErrorHandler: clientErrorHandler(OWS_PATHS),
    // a worker of a cluster being replaced (src/cluster.ts) serves what reaches it while it drains:
    // the primary has already stopped handing it connections, and no other process would get the request
    return503OnClosing: processSlot() === undefined,
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 500, querystringParser: (s: string) => querystring.parse(s) },
  });

  opts.onCreate?.(app);
  // the server's own header timeout may not outlast the whole-request timeout
  app.server.headersTimeout = Math.min(app.server.headersTimeout, ctx.config.server.requestTimeoutMs);

  // everything long-lived was built with the context (src/runtime.ts); the server drives its lifecycle
  const { runtime } = ctx;
  const { metrics, usage, auth } = runtime;
  await runtime.start();
  app.addHook('onReady', async () => {
    runtime.startBackground(); // not awaited: readiness does not wait for overview builds
  });
  fast = new TileFastPath(ctx);
  // connections are read by the fast path's front until a request it does not answer (src/services/wmts/fast-socket.ts)
  if (!frontConnections(app.server, fast))
    app.log.warn('tile fast path: the HTTP server is not as expected; connections are read by Node alone');
  app.decorate('tileFastPath', fast);
  app.addHook('preClose', async () => {
    fast?.close(); // requests still arriving take the full path, which answers a closing server's way
  });
  app.addHook('onClose', async () => {
    await runtime.close();
  });

  // overload: heavy requests are refused before any work while the event loop runs late
  // (src/ops/shed.ts); registered first, so that a refusal costs no more than this check
  const { shedder } = runtime;
  app.addHook('onRequest', async (req, reply) => {
    if (!shedder.overloaded || !isHeavyRequest(req.method, req.url)) return;
    shedder.shed++;
    const msg = `the server is overloaded (event loop ${Math.round(shedder.pinnedDelayMs ?? shedder.delayMs)} ms late); retry shortly`;
    // an OWS report on the OWS paths, a problem elsewhere; 503 ServerBusy with Retry-After: 2
    return sendError(req, reply, new ServiceError('busy', msg, { retryAfter: 2 }));
  });

  const bytesAtStart = new WeakMap<object, number>();
  app.decorateRequest('principal', null);
  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    notePath(req.raw.socket, req.url);
    bytesAtStart.set(req.raw, req.raw.socket?.bytesWritten ?? 0);
    const p = req.url.split('?')[0].toLowerCase().replace(/\/+$/, '');
    if (OWS_PATHS.includes(p)) tagRequest(req, { service: p === '/ows' ? 'OWS' : p.slice(1).toUpperCase() });
    try {
      (req as typeof req & { principal: Principal }).principal = auth.authenticate(req);
    } catch (e) {
      if (!(e instanceof AuthError)) throw e;
      const ex = new ServiceError(e.status === 401 ? 'unauthenticated' : 'forbidden', e.message, {
        locator: 'authorization',
        headers: e.status === 401 ? { 'WWW-Authenticate': `Basic realm="${auth.realm}", charset="UTF-8"` } : {},
      });
      return sendError(req, reply, ex);
    }
  });

  app.addHook('onSend', async (req, reply, payload) => {
    accessCacheHeaders(req, reply);
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    const tags = tagsOf(req);
    const status = String(reply.statusCode);
    const written = (req.raw.socket?.bytesWritten ?? 0) - (bytesAtStart.get(req.raw) ?? 0);
    const bytes = Math.max(0, written);
    if (tags.service === 'other' && !req.routeOptions.url) return; // 404s are not a service's traffic
    const layers = tags.layers.length ? tags.layers : [''];
    for (const layer of layers) metrics.requests.inc({ service: tags.service, operation: tags.operation, layer, status });
    metrics.duration.observe({ service: tags.service, operation: tags.operation }, reply.elapsedTime / 1000);
    metrics.bytes.inc({ service: tags.service }, bytes);
    if (tags.features) metrics.features.inc({ service: tags.service, layer: tags.layers[0] ?? '' }, tags.features);
    if (tags.service !== 'other' && reply.statusCode < 400) {
      usage.record({
        layers: tags.layers,
        service: tags.service,
        authenticated: principalOf(req).authenticated,
        features: tags.features,
        bytes,
      });
    }
  });

  const rl = ctx.config.security.rateLimit;
  if (rl.enabled) {
    await app.register(rateLimit, {
      hook: 'preParsing',
      global: true,
      // with Redis the counters are the cluster's, not each process's (src/ops/shared.ts)
      ...(runtime.shared.redis ? { redis: runtime.shared.redis, nameSpace: 'geodata:ratelimit:' } : {}),
      timeWindow: rl.windowMs,
      max: (req) => (principalOf(req).authenticated ? rl.authenticatedMax : rl.max),
      keyGenerator: (req) => {
        const p = principalOf(req);
        return p.authenticated ? `user:${p.name}` : `ip:${req.ip}`;
      },
      allowList: (req) => /^\/(healthz|readyz|metrics)\b/.test(req.url),
      errorResponseBuilder: (_req, context) =>
        new ServiceError(
          'rate-limited',
          `rate limit exceeded: ${context.max} requests per ${Math.round(context.ttl / 1000)} s; retry after ${context.after}`,
          { retryAfter: Math.max(1, Math.ceil(context.ttl / 1000)) },
        ),
    });
  }

  // XML (and anything else) as a string; OWS POST bodies are parsed by the dispatcher.
  app.addContentTypeParser(['application/xml', 'text/xml', 'application/ogc+xml'], { parseAs: 'string' }, (_req, body, done) =>
    done(null, body),
  );
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
    done(null, querystring.parse(String(body)));
  });
  app.addContentTypeParser('*', { parseAs: 'string' }, (_req, body, done) => done(null, body));

  /** Anything thrown outside a front door's own handling: an OWS report on the OWS paths, a problem elsewhere. */
  function sendError(req: FastifyRequest, reply: FastifyReply, e: unknown): FastifyReply {
    const p = req.url.split('?')[0].toLowerCase().replace(/\/+$/, '');
    if (OWS_PATHS.includes(p)) {
      const svc = p.slice(1).toUpperCase();
      return sendOws(reply, req, e, (SERVICE_NAMES as string[]).includes(svc) ? svc : undefined, undefined, {
        limits: ctx.config.limits,
      });
    }
    return sendProblem(reply, req, e, { limits: ctx.config.limits });
  }
  app.setErrorHandler((error, req, reply) => sendError(req, reply, error));

  app.setNotFoundHandler((req, reply) => sendProblem(reply, req, new ServiceError('not-found', `no resource at ${req.url.split('?')[0]}`)));

  // Every front door may be read from a web page of another origin (a portal's map with WMS,
  // tiles, vector tiles, GetFeatureInfo, OGC API): no credentials are ever allowed with it, so a
  // restricted layer's answer stays unreadable to another site's script. The tile fast path sends
  // the same header (src/services/wmts/fast.ts).
  await app.register(cors, {
    origin: '*',
    exposedHeaders: CORS_EXPOSED,
    methods: ['GET', 'HEAD', 'POST', 'OPTIONS'],
  });

  // every /admin/* route (and any route with config.admin) behind the one admin check
  registerAdminGuard(app, () => auth.realm);

  await registerApiDocs(app, ctx);
  registerLanding(app, ctx);
  registerOps(app, ctx, metrics, usage);
  registerLogin(app, ctx);
  await registerServices(app, ctx);
  registerOverviewRoutes(app, runtime.overviews);

  const handler = owsHandler(ctx);
  for (const p of OWS_PATHS) app.route({ method: ['GET', 'POST'], url: p, handler });

  const openapiPath = path.join(projectRoot, 'openapi.yaml');
  app.get('/openapi.yaml', async (_req, reply) => reply.type('application/yaml; charset=utf-8').send(readFileSync(openapiPath, 'utf8')));

  // Admin: reload the registry without a restart. Needs GEODATA_ADMIN_TOKEN (Bearer).
  app.post('/admin/reload', async () => {
    await ctx.registry.reload();
    return { status: 'reloaded', layers: ctx.registry.list().length, version: ctx.registry.version };
  });

  return app;
}
