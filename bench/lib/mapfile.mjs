// MapServer 8 mapfile + config file and MapCache configuration generated for the bench database.
// Styles mirror the server's demo styles (see bench/README.md for the equivalence table).
import { existsSync } from 'node:fs';

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

function pgConn(url) {
  const u = new URL(url);
  return `host=${u.hostname} port=${u.port || 5432} dbname=${decodeURIComponent(u.pathname.slice(1))} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`;
}

const hex = (h) => {
  const n = parseInt(h.slice(1), 16);
  return `${(n >> 16) & 255} ${(n >> 8) & 255} ${n & 255}`;
};

function metadata(name, title) {
  return `    METADATA
      "ows_title" "${title}"
      "ows_srs" "EPSG:2154 EPSG:3857 EPSG:4326 EPSG:4258 EPSG:3035"
      "ows_enable_request" "*"
      "gml_include_items" "all"
      "gml_exclude_items" "geom"
      "gml_featureid" "id"
      "gml_types" "auto"
      "wfs_getfeature_formatlist" "application/json,geojson,text/xml; subtype=gml/3.2.1"
      "wfs_use_default_extent_for_getfeature" "false"
      "oga_enable_request" "*"
    END
    NAME "${name}"`;
}

function layer(name, title, type, table, classes, conn, extra = '') {
  return `  LAYER
${metadata(name, title)}
    TYPE ${type}
    STATUS ON
    CONNECTIONTYPE POSTGIS
    CONNECTION "${conn}"
    DATA "geom from public.${table} using unique id using srid=2154"
    PROCESSING "CLOSE_CONNECTION=DEFER"
    PROJECTION "init=epsg:2154" END
    TEMPLATE "ttt"
${extra}${classes}
  END
`;
}

function cls(name, expr, styles, { maxscale, label } = {}) {
  return `    CLASS
      NAME "${name}"
${expr ? `      EXPRESSION ${expr}\n` : ''}${maxscale ? `      MAXSCALEDENOM ${maxscale}\n` : ''}${styles.join('\n')}
${label ?? ''}    END
`;
}

const line = (c, w, extra = '') => `      STYLE COLOR ${hex(c)} WIDTH ${w} LINECAP ROUND LINEJOIN ROUND ${extra}END`;
const poly = (fill, stroke, w) => `      STYLE COLOR ${hex(fill)} OUTLINECOLOR ${hex(stroke)} WIDTH ${w} END`;
const point = (sym, size, fill, stroke, w = 1) =>
  `      STYLE SYMBOL "${sym}" SIZE ${size} COLOR ${hex(fill)} OUTLINECOLOR ${hex(stroke)} WIDTH ${w} END`;
const label = (size, color, offsetY = 0) =>
  existsSync(FONT)
    ? `      LABEL TYPE TRUETYPE FONT "sans" SIZE ${size} COLOR ${hex(color)} OUTLINECOLOR 255 255 255 OUTLINEWIDTH 2 ${offsetY ? `OFFSET 0 ${offsetY} POSITION CC ` : ''}PARTIALS FALSE END\n`
    : '';

export function mapfile({ url, dir }) {
  const conn = pgConn(url);
  const fontset = existsSync(FONT) ? `  FONTSET "${dir}/fonts.txt"\n` : '';
  return `MAP
  NAME "bench"
  EXTENT 760000 6700000 1080000 6990000
  SIZE 256 256
  MAXSIZE 4096
  UNITS METERS
  RESOLUTION 90.714
  DEFRESOLUTION 90.714
  IMAGETYPE png
  IMAGECOLOR 255 255 255
${fontset}  PROJECTION "init=epsg:2154" END
  CONFIG "MS_ERRORFILE" "stderr"
  OUTPUTFORMAT
    NAME "png"
    DRIVER AGG/PNG
    MIMETYPE "image/png"
    IMAGEMODE RGBA
    EXTENSION "png"
    TRANSPARENT ON
  END
  OUTPUTFORMAT
    NAME "geojson"
    DRIVER "OGR/GEOJSON"
    MIMETYPE "application/json"
    FORMATOPTION "FORM=SIMPLE"
    FORMATOPTION "STORAGE=stream"
    FORMATOPTION "LCO:RFC7946=NO"
  END
  SYMBOL NAME "circle" TYPE ELLIPSE FILLED TRUE POINTS 1 1 END END
  SYMBOL NAME "square" TYPE VECTOR FILLED TRUE POINTS 0 0 0 1 1 1 1 0 0 0 END END
  SYMBOL NAME "triangle" TYPE VECTOR FILLED TRUE POINTS 0 1 0.5 0 1 1 0 1 END END
  SYMBOL NAME "star" TYPE VECTOR FILLED TRUE
    POINTS 0 0.375 0.35 0.375 0.5 0 0.65 0.375 1 0.375 0.75 0.625 0.875 1 0.5 0.75 0.125 1 0.25 0.625 0 0.375 END END
  SYMBOL NAME "cross" TYPE VECTOR FILLED TRUE
    POINTS 0.35 0 0.65 0 0.65 0.35 1 0.35 1 0.65 0.65 0.65 0.65 1 0.35 1 0.35 0.65 0 0.65 0 0.35 0.35 0.35 0.35 0 END END
  WEB
    METADATA
      "ows_title" "MapServer bench"
      "ows_onlineresource" "http://127.0.0.1/mapserv?"
      "ows_srs" "EPSG:2154 EPSG:3857 EPSG:4326 EPSG:4258 EPSG:3035"
      "ows_enable_request" "*"
      "oga_enable_request" "*"
      "oga_onlineresource" "http://127.0.0.1/mapserv/bench/ogcapi"
      "wfs_getfeature_formatlist" "application/json,geojson"
      "wms_feature_info_mime_type" "text/html"
    END
  END
${layer(
  'parcels',
  'Parcelles',
  'POLYGON',
  'parcels',
  cls('batie', '("[bati]" = "t" OR "[bati]" = "true" OR "[bati]" = "1")', [poly('#f4d6b0', '#a0522d', 0.5)]) +
    cls('non-batie', '', [poly('#e8f0d8', '#7a8f5a', 0.5)]),
  conn,
)}
${layer(
  'roads',
  'Routes',
  'LINE',
  'roads',
  cls('autoroute', '("[classe]" = "autoroute")', [line('#8c2a1c', 5), line('#e8423f', 3)], { label: label(8, '#333333') }) +
    cls('nationale', '("[classe]" = "nationale")', [line('#9a5b00', 4), line('#f5a623', 2.5)], { label: label(8, '#333333') }) +
    cls('departementale', '("[classe]" = "departementale")', [line('#f2c94c', 1.6)], { label: label(8, '#333333') }) +
    cls('communale', '("[classe]" = "communale")', [line('#b0b0b0', 1)], { maxscale: 500000 }) +
    cls('chemin', '("[classe]" = "chemin")', [line('#8a7a66', 0.8, 'PATTERN 3 2 END ')], { maxscale: 200000 }),
  conn,
  existsSync(FONT) ? '    LABELITEM "nom"\n    LABELMAXSCALEDENOM 100000\n' : '',
)}
${layer(
  'pois',
  "Points d'intérêt",
  'POINT',
  'pois',
  cls('sante', '("[categorie]" = "pharmacie" OR "[categorie]" = "hôpital")', [point('cross', 9, '#2e9e44', '#1d6b2d', 2)], {
    label: label(8, '#222222', -9),
  }) +
    cls('culte', '("[categorie]" = "église")', [point('triangle', 9, '#7b4fa0', '#ffffff')], { label: label(8, '#222222', -9) }) +
    cls('culture', '("[categorie]" = "musée" OR "[categorie]" = "bibliothèque")', [point('star', 10, '#d4a017', '#6b4f00')], {
      label: label(8, '#222222', -9),
    }) +
    cls('transport', '("[categorie]" = "gare")', [point('square', 8, '#1f5fa8', '#ffffff')], { label: label(8, '#222222', -9) }) +
    cls('commerce', '', [point('circle', 6, '#e4572e', '#ffffff')], { label: label(8, '#222222', -9) }),
  conn,
  existsSync(FONT) ? '    LABELITEM "nom"\n    LABELMAXSCALEDENOM 25000\n' : '',
)}
END
`;
}

export function fontset() {
  return `sans ${FONT}\n`;
}

/** MapServer 8 configuration file (MAPSERVER_CONFIG_FILE): the map alias used by OGC API URLs. */
export function msConfig({ dir }) {
  return `CONFIG
  ENV
    MS_MAP_NO_PATH "1"
    MS_ERRORFILE "stderr"
  END
  MAPS
    "bench" "${dir}/bench.map"
  END
END
`;
}

/** MapCache configuration: one tileset per layer on GoogleMapsCompatible, disk cache with a template layout. */
export function mapcacheXml({ dir, mapservUrl, layers }) {
  const tilesets = layers
    .map(
      (l) => `
  <source name="${l}" type="wms">
    <getmap><params><FORMAT>image/png</FORMAT><LAYERS>${l}</LAYERS><TRANSPARENT>true</TRANSPARENT></params></getmap>
    <http><url>${mapservUrl}</url></http>
  </source>
  <tileset name="${l}">
    <source>${l}</source>
    <cache>disk</cache>
    <grid>GoogleMapsCompatible</grid>
    <format>PNG</format>
    <metatile>1 1</metatile>
    <metabuffer>0</metabuffer>
    <expires>3600</expires>
  </tileset>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<mapcache>
  <cache name="disk" type="disk" layout="template">
    <template>${dir}/tiles/{tileset}/{z}/{x}/{inv_y}.{ext}</template>
  </cache>
  <format name="PNG" type="PNG"><compression>fast</compression></format>
${tilesets}
  <default_format>PNG</default_format>
  <service type="wms" enabled="true"><full_wms>assemble</full_wms></service>
  <service type="wmts" enabled="true"/>
  <service type="tms" enabled="true"/>
  <service type="gmaps" enabled="true"/>
  <errors>report</errors>
  <locker type="disk"><directory>${dir}/locks</directory><retry>0.01</retry><timeout>60</timeout></locker>
  <threaded_fetching>true</threaded_fetching>
  <log_level>warn</log_level>
</mapcache>
`;
}

export function nginxConf({ dir, port, mapservPort, mapcachePort, workers }) {
  return `worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
${process.getuid && process.getuid() === 0 ? 'user root;\n' : ''}events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  client_body_temp_path ${dir}/nginx-tmp/body;
  fastcgi_temp_path ${dir}/nginx-tmp/fastcgi;
  proxy_temp_path ${dir}/nginx-tmp/proxy;
  uwsgi_temp_path ${dir}/nginx-tmp/uwsgi;
  scgi_temp_path ${dir}/nginx-tmp/scgi;
  types { image/png png; application/json json; }
  upstream mapserv { server 127.0.0.1:${mapservPort}; }
  upstream mapcache { server 127.0.0.1:${mapcachePort}; }
  server {
    listen 127.0.0.1:${port};
    location /static/ { alias ${dir}/tiles/; }
    location /mapserv {
      fastcgi_split_path_info ^(/mapserv)(/.*)?$;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_NAME /mapserv;
      fastcgi_param MAPSERVER_CONFIG_FILE ${dir}/mapserver.conf;
      fastcgi_param MS_MAPFILE ${dir}/bench.map;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_buffering on;
      fastcgi_read_timeout 600s;
      fastcgi_pass mapserv;
    }
    location /mapcache {
      fastcgi_split_path_info ^(/mapcache)(/.*)?$;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_NAME /mapcache;
      fastcgi_param PATH_INFO $fastcgi_path_info;
      fastcgi_pass mapcache;
    }
  }
}
`;
}
