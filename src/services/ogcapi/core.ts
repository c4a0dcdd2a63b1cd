/** OGC API – Features: the conformance declaration and the API definition (OpenAPI 3.0). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import type { AppContext } from '../../context.js';
import { projectRoot } from '../../config/index.js';
import { baseUrlOf } from '../../ows/service.js';
import { CONFORMANCE, negotiate, rejectUnknown } from './common.js';
import { apiHtml, page, val } from './html.js';
import { OAS_T, send, svc, type OgcApiRoutes } from './respond.js';

/** The OpenAPI document: openapi.yaml, with this server's URL and configured limits filled in. */
export function openApiDocument(ctx: AppContext, base: string): Record<string, any> {
  const doc = YAML.parse(readFileSync(path.join(projectRoot, 'openapi.yaml'), 'utf8'));
  doc.servers = [{ url: base || '/' }];
  const lim = doc.components?.parameters?.limit?.schema;
  if (lim) {
    lim.default = ctx.config.limits.itemsDefaultLimit;
    lim.maximum = ctx.config.limits.itemsMaxLimit;
  }
  return doc;
}

export const registerCoreRoutes: OgcApiRoutes = (api, ctx) => {
  api.get('/conformance', async (req, reply) => {
    svc(req, 'Conformance');
    rejectUnknown(req);
    const fmt = negotiate(req, ['json', 'html']);
    const doc = { conformsTo: CONFORMANCE };
    return send(req, reply, fmt as 'json' | 'html', doc, () =>
      page('Conformance', `<ul>${CONFORMANCE.map((c) => `<li><code>${val(c)}</code></li>`).join('')}</ul>`),
    );
  });

  api.get('/api', async (req, reply) => {
    svc(req, 'API');
    rejectUnknown(req);
    const fmt = negotiate(req, ['json', 'html']);
    // as HTML: a summary of the paths with a link to Swagger UI at /api.html (services/apidocs.ts)
    const doc = openApiDocument(ctx, baseUrlOf(req, ctx));
    return send(req, reply, fmt as 'json' | 'html', doc, () => apiHtml(doc), OAS_T);
  });
};
