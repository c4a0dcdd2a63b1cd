/**
 * The CRSs this server offers: one list that every capability and document derives from.
 *
 *  - feature services (WFS DefaultCRS/OtherCRS and the SRSNAME it accepts, OGC API – Features
 *    `crs` lists and the `crs`/`bbox-crs`/`filter-crs` values they accept, the downloads' `crs`):
 *    each layer's own CRS, then OFFERED_EPSG, then CRS84 (PostGIS reprojects);
 *  - map services (WMS CRS/SRS): OFFERED_EPSG and the nine French conic conformal zones (drawn
 *    through proj4: src/crs/index.ts holds their definitions), then CRS:84.
 *
 * Pure data and functions: no proj4, no database.
 */

/** Offered by every service besides each layer's own CRS (EPSG codes; CRS84 is 4326 in lon/lat order), in the order capabilities list them. */
export const OFFERED_EPSG: readonly number[] = [2154, 3857, 4326, 4258, 3035];

/** Offered by the map services besides OFFERED_EPSG: RGF93 / CC42 … CC50 (EPSG:3942–3950). */
export const MAP_EXTRA_EPSG: readonly number[] = Array.from({ length: 9 }, (_, i) => 3942 + i);

/** The EPSG codes a layer's features are offered in: its own CRS first, then OFFERED_EPSG (CRS84 besides). */
export function offeredEpsg(layerSrid: number): number[] {
  return [layerSrid, ...OFFERED_EPSG.filter((e) => e !== layerSrid)];
}

/** Whether a layer's features are offered in this EPSG code. */
export function isOfferedEpsg(epsg: number, layerSrid: number): boolean {
  return epsg === layerSrid || OFFERED_EPSG.includes(epsg);
}

/** The offered CRSs of a layer as short names, for error messages: `EPSG:2154, EPSG:3857, …, CRS84`. */
export function offeredNames(layerSrid: number): string {
  return [...offeredEpsg(layerSrid).map((e) => `EPSG:${e}`), 'CRS84'].join(', ');
}

/** CRS identifiers of the WMS capabilities (CRS in 1.3.0, SRS in 1.1.1), in this order. */
export const MAP_CRS_CODES: readonly string[] = [...[...OFFERED_EPSG, ...MAP_EXTRA_EPSG].map((e) => `EPSG:${e}`), 'CRS:84'];
