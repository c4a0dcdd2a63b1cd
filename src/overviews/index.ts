/**
 * Pre-generalised overviews of big point, line and polygon layers, maintained by the server (the idea of
 * GeoServer's pre-generalised features and MapServer's overview layers, built and refreshed here).
 *
 * For a layer with more rows than `overviews.minRows`, the server keeps a small pyramid of tables
 * in its own schema (default `geodata_overview`; the publisher's table is never altered). Level k
 * has a grid cell of `c_k = baseCell · 2^k` layer-CRS units and a size threshold
 * `s_k = cellsPerPixel · c_k`:
 *
 *   - features whose bounding box is smaller than s_k are grouped per grid cell and per combination
 *     of the attribute values the layer's style filters read; each group is one point at the mean
 *     of its features' box centres, with their count;
 *   - features at least s_k wide or high are kept as they are (simplified to c_k/4), with their
 *     attribute values.
 *
 * Level 0 is built from the source table, level k from level k-1 (grids nest, so this is the same
 * as grouping the source), all in one REPEATABLE READ snapshot. A level table has the columns
 * the renderer's query needs, under the source's names, so the unchanged renderer query
 * (src/render/index.ts layerQuery) runs on it: points and features smaller than the output pixel
 * are reduced per pixel exactly as for the source, larger features drawn with their geometry.
 *
 * The renderer uses the coarsest level with s_k ≤ output pixel (in the layer CRS), i.e. a cell of
 * at most 1/cellsPerPixel pixel, and only when every active rule's filter reads overview columns
 * and no active rule labels; otherwise it renders directly from the source.
 *
 * Freshness comes from the change feed (src/changes/: every statement on the source logs a row in
 * geodata_tiles.changes, with the boxes of the rows it changed — old and new — up to
 * tiles.bulkRows rows, and the feed delivers it to its subscribers, this manager among them). A build records the last change
 * id of its snapshot. A notification (or the periodic check) notes the edit as pending and
 * schedules a refresh after the edits settle. Edits with boxes are applied incrementally: at
 * every level, the rows of the grid cells holding an edited row's centre are made again (see
 * incremental()), in one transaction; meanwhile the overview is 'partial' and serves the views
 * that do not reach those cells. A bulk edit or TRUNCATE (no boxes), or edits whose cells add up
 * to more than incrementalMaxShare of a rebuild's reads, make it 'stale' (renders go direct) and
 * are followed by a full rebuild. Builds run in the background after start and never delay readiness.
 *
 * Files: model.ts (options, types, pure rules), builder.ts (builds and refreshes in the database),
 * query.ts (the SQL the renderer runs on a level), manager.ts (state, scheduling, the renderer's
 * LayerSource), routes.ts (GET /admin/overviews).
 */
export { OverviewManager, type OverviewDeps } from './manager.js';
export { registerOverviewRoutes } from './routes.js';
export { levelQuery } from './query.js';
export {
  filterColumns,
  overviewOptions,
  type LayerOverviewConfig,
  type OverviewBuild,
  type OverviewLevel,
  type OverviewOptions,
  type OverviewStatus,
} from './model.js';
