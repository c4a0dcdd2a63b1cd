/** GET /admin/overviews: the state of every layer's overview (admin only). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isAdminRequest } from '../security/auth.js';
import type { OverviewManager } from './manager.js';

function denied(reply: FastifyReply) {
  return reply.code(401).header('WWW-Authenticate', 'Bearer realm="geodata-admin"').type('application/problem+json').send({
    type: 'about:blank',
    title: 'Unauthorized',
    status: 401,
    detail: 'admin role or token required (HTTP Basic of a user with role admin, or Authorization: Bearer <GEODATA_ADMIN_TOKEN>)',
  });
}

export function registerOverviewRoutes(app: FastifyInstance, m: OverviewManager): void {
  app.get('/admin/overviews', async (req: FastifyRequest, reply: FastifyReply) => {
    if (!isAdminRequest(req)) return denied(reply);
    return reply.send({ enabled: m.opts.enabled, minRows: m.opts.minRows, cellsPerPixel: m.opts.cellsPerPixel, overviews: m.status() });
  });
}
