// MapServer 8 mapfile + config file and MapCache configuration generated for the bench database.
// The bench layers' classes come from lib/symbology.mjs, the description our server's styles are
// generated from too.
import { existsSync } from 'node:fs';
import { SYMBOLOGY, mapserverClasses } from './symbology.mjs';

const FONT = '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf';

function pgConn(url) {
  const u = new URL(url);
  return `host=${u.hostname} port=${u.port || 5432} dbname=${decodeURIComponent(u.pathname.slice(1))} user=${decodeURIComponent(u.username)} password=${decodeURIComponent(u.password)}`;
}

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
${['parcels', 'roads', 'pois'].map((name) => layer(name, SYMBOLOGY[name].title, SYMBOLOGY[name].geometry, name, mapserverClasses(name), conn)).join('\n')}
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

/**
 * MapCache configuration: one tileset per layer on GoogleMapsCompatible, disk cache with a template layout,
 * metatiles of the same size and buffer as our tile cache's defaults (tiles.metatile 4, tiles.buffer 64).
 */
export function mapcacheXml({ dir, mapservUrl, layers, metatile = 4, metabuffer = 64 }) {
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
    <metatile>${metatile} ${metatile}</metatile>
    <metabuffer>${metabuffer}</metabuffer>
    <expires>3600</expires>
  </tileset>`,
    )
    .join('\n');
  return `<?xml version="1.0" encoding="UTF-8"?>
<mapcache>
  <cache name="disk" type="disk" layout="template">
    <template>${dir}/tiles/{tileset}/{z}/{x}/{inv_y}.{ext}</template>
  </cache>
  <format name="PNG" type="PNG"/>
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
