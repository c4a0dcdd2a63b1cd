/**
 * The one admin check. Every route under /admin/ (and any route declared with
 * `config: { admin: true }`, e.g. POST /catalog/harvest) passes through this guard before its
 * body is read: the caller must hold the `admin` role (HTTP Basic or API key) or give the operator's
 * token (Authorization: Bearer <GEODATA_ADMIN_TOKEN>).
 * - anonymous (or a wrong bearer token): 401 with WWW-Authenticate (Basic and Bearer challenges);
 * - authenticated without the admin role: 403.
 * OWS operations that need the same right (CSW-T Transaction) call adminDenial() and throw its error.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { ServiceError } from '../errors/service-error.js';
import { sendProblem } from '../errors/render.js';
import { isAdminRequest, principalOf } from './auth.js';

const WHAT =
  'the admin role (HTTP Basic or API key of a user with role admin) or the admin token (Authorization: Bearer <GEODATA_ADMIN_TOKEN>)';

/** The error refusing this request an admin operation, or undefined when it may proceed. */
export function adminDenial(req: FastifyRequest, realm: string, locator?: string): ServiceError | undefined {
  if (isAdminRequest(req)) return undefined;
  const p = principalOf(req);
  if (p.authenticated) return new ServiceError('forbidden', `'${p.name}' does not hold ${WHAT}`, { locator });
  return new ServiceError('unauthenticated', `this operation needs ${WHAT}`, {
    locator,
    headers: { 'WWW-Authenticate': `Basic realm="${realm}", charset="UTF-8", Bearer realm="${realm}-admin"` },
  });
}

export function isAdminRoute(url: string, config: { admin?: boolean } | undefined): boolean {
  return url === '/admin' || url.startsWith('/admin/') || config?.admin === true;
}

/**
 * Put every admin route behind the check. Call before any route is registered: it hooks route
 * creation, so a route added later under /admin/ cannot forget it.
 */
export function registerAdminGuard(app: FastifyInstance, realm: () => string): void {
  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    const denial = adminDenial(req, realm());
    if (denial) return sendProblem(reply, req, denial);
  };
  app.addHook('onRoute', (route: RouteOptions) => {
    if (!isAdminRoute(route.url, route.config)) return;
    // onRequest: after the global authentication hook, before the body is read
    const existing = route.onRequest ? (Array.isArray(route.onRequest) ? route.onRequest : [route.onRequest]) : [];
    route.onRequest = [guard, ...existing];
  });
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route is an admin operation (checked by registerAdminGuard). */
    admin?: boolean;
  }
}
