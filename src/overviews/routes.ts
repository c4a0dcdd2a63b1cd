/** GET /admin/overviews: the state of every layer's overview (admin only: src/security/admin.ts checks every /admin/ route). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { OverviewManager } from './manager.js';

export function registerOverviewRoutes(app: FastifyInstance, m: OverviewManager): void {
  app.get('/admin/overviews', async (_req: FastifyRequest, reply: FastifyReply) => {
    return reply.send({ enabled: m.opts.enabled, minRows: m.opts.minRows, cellsPerPixel: m.opts.cellsPerPixel, overviews: m.status() });
  });
}
