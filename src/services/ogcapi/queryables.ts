/** OGC API – Features Part 3: a collection's queryables as a JSON Schema. */
import { baseUrlOf } from '../../ows/service.js';
import { negotiate, rejectUnknown } from './common.js';
import { page, table, val } from './html.js';
import { queryableFields } from './params.js';
import { collectionOf, send, svc, type OgcApiRoutes } from './respond.js';

function jsonSchemaType(t: string): Record<string, unknown> {
  switch (t) {
    case 'integer':
    case 'long':
      return { type: 'integer' };
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'date':
      return { type: 'string', format: 'date' };
    case 'datetime':
      return { type: 'string', format: 'date-time' };
    case 'time':
      return { type: 'string', format: 'time' };
    case 'uuid':
      return { type: 'string', format: 'uuid' };
    default:
      return { type: 'string' };
  }
}

function geometryFormat(g: string): string {
  const m: Record<string, string> = {
    POINT: 'geometry-point',
    LINESTRING: 'geometry-linestring',
    POLYGON: 'geometry-polygon',
    MULTIPOINT: 'geometry-multipoint',
    MULTILINESTRING: 'geometry-multilinestring',
    MULTIPOLYGON: 'geometry-multipolygon',
    GEOMETRYCOLLECTION: 'geometry-geometrycollection',
  };
  return m[g] ?? 'geometry-any';
}

export const registerQueryablesRoutes: OgcApiRoutes = (api, ctx) => {
  api.get<{ Params: { collectionId: string } }>('/collections/:collectionId/queryables', async (req, reply) => {
    const layer = collectionOf(ctx, req, req.params.collectionId);
    svc(req, 'Queryables', [layer.name]);
    rejectUnknown(req);
    const fmt = negotiate(req, ['json', 'html']) as 'json' | 'html';
    const base = baseUrlOf(req, ctx);
    const properties: Record<string, unknown> = {};
    properties[layer.geometryColumn] = {
      title: 'geometry',
      format: geometryFormat(layer.geometryType),
      'x-ogc-role': 'primary-geometry',
    };
    for (const f of queryableFields(layer)) {
      properties[f.name] = {
        title: f.name,
        ...jsonSchemaType(f.type),
        ...(f.name === layer.temporalField ? { 'x-ogc-role': 'primary-instant' } : {}),
      };
    }
    const doc = {
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: `${base}/collections/${encodeURIComponent(layer.name)}/queryables`,
      type: 'object',
      title: layer.title,
      properties,
      additionalProperties: false,
    };
    return send(
      req,
      reply,
      fmt,
      doc,
      () =>
        page(
          `${layer.title} — queryables`,
          table(
            ['name', 'schema'],
            Object.entries(properties).map(([k, v]) => [val(k), val(v)]),
          ),
        ),
      'application/schema+json',
    );
  });
};
