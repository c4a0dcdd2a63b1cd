/**
 * WMS 1.3.0 / 1.1.1: GetCapabilities, GetMap, GetFeatureInfo, GetLegendGraphic, with EXCEPTIONS
 * XML / INIMAGE / BLANK and a bounded render queue (503 + Retry-After when full).
 */
import { createCanvas } from '@napi-rs/canvas';
import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../../context.js';
import { OwsException } from '../../ows/exceptions.js';
import { parseIntParam, required, type Kvp } from '../../ows/kvp.js';
import { registerOwsService, type OwsRequest } from '../../ows/service.js';
import { encodeCanvas, renderMap, StyleNotFound, resolveStyle, type MapFormat } from '../../render/index.js';
import { renderGroupLegend, renderLegend } from '../../render/legend.js';
import { layerStyles, ruleActive } from '../../render/style.js';
import { ClientGone } from '../../ops/gate.js';
import { capabilities } from './capabilities.js';
import { getFeatureInfo } from './featureinfo.js';
import { tiledGetMap } from '../wmts/tiled-wms.js';
import {
  CONTENT_TYPE,
  exceptionMode,
  findLayers,
  groupLegendParts,
  parseBgcolor,
  parseBool,
  parseFormat,
  parseMapParams,
} from './params.js';

/**
 * Renderer errors are classified by src/errors (queue full → ServerBusy 503, render timeout →
 * 503, unknown style → StyleNotDefined, a client gone before its render → 499, not logged);
 * WMS names the STYLES parameter.
 */
function wmsError(e: unknown): unknown {
  if (e instanceof StyleNotFound) return new OwsException('StyleNotDefined', e.message, 'styles');
  return e;
}

async function getMap(req: OwsRequest): Promise<unknown> {
  const { ctx } = req;
  try {
    const mp = await parseMapParams(ctx, req.kvp, req.version);
    // tiled WMS (src/services/wmts/tiled-wms.ts): a request that is exactly a grid tile comes from the tile cache
    const tiled = await tiledGetMap(req, mp);
    if (tiled) return tiled;
    const img = await ctx.runtime.gates.render.run(() => {
      // a client that gave up while its request waited in the queue gets no render
      if (req.http.raw.destroyed) throw new ClientGone();
      return renderMap(ctx.runtime.render, {
        layers: mp.layers,
        bbox: mp.bbox,
        epsg: mp.crs.epsg,
        width: mp.width,
        height: mp.height,
        format: mp.format,
        transparent: mp.transparent,
        bgcolor: mp.bgcolor,
        timeoutMs: ctx.config.limits.renderTimeoutMs,
      });
    });
    return req.reply.code(200).type(CONTENT_TYPE[mp.format]).send(img);
  } catch (e) {
    throw wmsError(e);
  }
}

function legendScale(kvp: Kvp): number | undefined {
  if (!kvp.SCALE) return undefined;
  const scale = Number(kvp.SCALE);
  if (!Number.isFinite(scale) || scale <= 0)
    throw new OwsException('InvalidParameterValue', `SCALE must be a positive number, got '${kvp.SCALE}'`, 'scale');
  return scale;
}

async function getLegendGraphic(req: OwsRequest): Promise<unknown> {
  const { ctx, kvp } = req;
  const name = required(kvp, 'LAYER');
  const fmt = (kvp.FORMAT ?? 'image/png').toLowerCase();
  if (!fmt.startsWith('image/png'))
    throw new OwsException('InvalidFormat', `legend format '${kvp.FORMAT}' is not supported (image/png)`, 'format');
  const width = parseIntParam(kvp, 'WIDTH', { min: 4, max: 512 }) ?? 20;
  const height = parseIntParam(kvp, 'HEIGHT', { min: 4, max: 512 }) ?? 20;
  const scale = legendScale(kvp);
  const { layers: found, group } = findLayers(ctx, name, 'layer');
  if (group) {
    // a group's legend: its members' legends (default styles), in drawing order
    if (kvp.STYLE && kvp.STYLE.toLowerCase() !== 'default')
      throw new OwsException('StyleNotDefined', `layer group '${name}' has only the style 'default' (its layers' default styles)`, 'style');
    if (kvp.RULE)
      throw new OwsException(
        'InvalidParameterValue',
        `RULE cannot be used with layer group '${name}'; ask for the legend of one of its layers`,
        'rule',
      );
    let parts;
    try {
      parts = groupLegendParts(group, scale);
    } catch (e) {
      throw wmsError(e);
    }
    const png = await renderGroupLegend(parts, { width, height });
    return req.reply.code(200).type('image/png').send(png);
  }
  const layer = found[0];
  let style;
  try {
    style = resolveStyle(layer, kvp.STYLE);
  } catch (e) {
    throw wmsError(e);
  }
  if (kvp.RULE) {
    const rule = style.rules.find((r) => r.name === kvp.RULE);
    if (!rule) throw new OwsException('InvalidParameterValue', `rule '${kvp.RULE}' is not in style '${style.name}'`, 'rule');
    style = { ...style, rules: [rule] };
  }
  if (scale !== undefined) style = { ...style, rules: style.rules.filter((r) => ruleActive(r, scale)) };
  const png = await renderLegend(style, layer, { width, height });
  return req.reply.code(200).type('image/png').send(png);
}

/** EXCEPTIONS=INIMAGE / BLANK for GetMap: an image of the requested size and format. */
async function imageException(err: OwsException, kvp: Kvp): Promise<{ body: Buffer; type: string } | null> {
  const mode = exceptionMode(kvp);
  if (mode === 'xml') return null;
  let format: MapFormat;
  let width: number;
  let height: number;
  let transparent = false;
  let bgcolor = '#ffffff';
  try {
    format = parseFormat(kvp.FORMAT);
    width = Number(kvp.WIDTH);
    height = Number(kvp.HEIGHT);
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 8192 || height > 8192) return null;
    transparent = parseBool(kvp.TRANSPARENT, 'transparent');
    bgcolor = parseBgcolor(kvp.BGCOLOR);
  } catch {
    return null;
  }
  const canvas = createCanvas(width, height);
  const g = canvas.getContext('2d');
  if (!transparent || format === 'image/jpeg') {
    g.fillStyle = bgcolor;
    g.fillRect(0, 0, width, height);
  }
  if (mode === 'inimage') {
    g.fillStyle = '#cc0000';
    g.font = '12px "DejaVu Sans", sans-serif';
    g.textBaseline = 'top';
    // wrap the message on the image width
    const words = `${err.code}: ${err.message}`.split(/\s+/);
    let line = '';
    let y = 4;
    for (const word of words) {
      const next = line ? `${line} ${word}` : word;
      if (g.measureText(next).width > width - 8 && line) {
        g.fillText(line, 4, y);
        y += 15;
        line = word;
      } else line = next;
    }
    if (line) g.fillText(line, 4, y);
  }
  return { body: await encodeCanvas(canvas, format, transparent), type: CONTENT_TYPE[format] };
}

export function registerWms(app: FastifyInstance, ctx: AppContext): void {
  void app;
  // report style configuration errors at start (they also answer a clear exception per request)
  for (const layer of ctx.registry.list()) {
    try {
      layerStyles(layer);
    } catch (e) {
      ctx.log.error({ layer: layer.name, err: (e as Error).message }, 'invalid style');
    }
  }
  registerOwsService({
    name: 'WMS',
    versions: ['1.3.0', '1.1.1'],
    negotiation: 'wms',
    operations: {
      GetCapabilities: async (req) => {
        const body = capabilities(req.ctx, req.version, req.baseUrl);
        const type = req.version === '1.3.0' ? 'text/xml; charset=UTF-8' : 'application/vnd.ogc.wms_xml; charset=UTF-8';
        return req.reply.code(200).type(type).send(body);
      },
      GetMap: getMap,
      GetFeatureInfo: async (req) => {
        try {
          const r = await getFeatureInfo(req.ctx, req.kvp, req.version);
          return req.reply.code(200).type(r.contentType).send(r.body);
        } catch (e) {
          throw wmsError(e);
        }
      },
      GetLegendGraphic: getLegendGraphic,
    },
    exceptionHandler: async (err, r) => {
      if (!/^getmap$/i.test(r.kvp.REQUEST ?? '')) return false;
      const img = await imageException(err, r.kvp);
      if (!img) return false;
      for (const [k, v] of Object.entries(err.headers)) r.reply.header(k, v);
      await r.reply.code(200).type(img.type).send(img.body);
      return true;
    },
  });
}
