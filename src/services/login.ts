/**
 * GET /login: the one place that challenges an anonymous caller (401 + WWW-Authenticate: Basic).
 *
 * Layers a caller may not read are answered as unknown everywhere else (src/security/access.ts),
 * so a client that only sends credentials when challenged (a web browser) would never be asked
 * for them; it opens /login once, and then sends them with every request under the same path
 * (RFC 7617 §2.2). Clients that send Basic credentials up front (QGIS, GDAL, OWSLib) need no
 * challenge. An authenticated caller is sent on to `next` (a path on this server) or to the
 * landing page.
 */
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../context.js';
import { principalOf } from '../security/auth.js';
import { ServiceError } from '../errors/service-error.js';

/** A path on this server: starts with one slash, no scheme, no authority, no backslash. */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s\\]*$/.test(next) ? next : '/';
}

export function registerLogin(app: FastifyInstance, ctx: AppContext): void {
  app.get('/login', async (req, reply) => {
    const p = principalOf(req);
    if (!p.authenticated) {
      throw new ServiceError('unauthenticated', 'give your user name and password (or an API key) to see the layers of your roles', {
        headers: { 'WWW-Authenticate': `Basic realm="${ctx.config.security.realm}", charset="UTF-8"` },
      });
    }
    return reply
      .code(303)
      .header('Location', localPath((req.query as Record<string, unknown>).next))
      .header('Cache-Control', 'no-store')
      .send();
  });
}
