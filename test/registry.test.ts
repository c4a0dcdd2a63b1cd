import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import pg from 'pg';
import { validateConfig } from '../src/config/index.js';
import { Registry, RegistryError, fieldTypeOf } from '../src/registry/registry.js';
import { testDatabaseUrl } from './helpers/app.js';

const SCHEMA = 'regtest';

describe('layer registry (PostGIS introspection)', () => {
  let pool: pg.Pool;
  beforeAll(async () => {
    pool = new pg.Pool({ connectionString: testDatabaseUrl(), max: 3 });
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE; CREATE SCHEMA ${SCHEMA}`);
    await pool.query(`
      CREATE TABLE ${SCHEMA}.every_type (
        gid serial PRIMARY KEY,
        t text NOT NULL, vc varchar(20), i2 smallint, i4 integer, i8 bigint, r real, d8 double precision,
        num numeric(10,2), b boolean, dt date, ts timestamp, tstz timestamptz, tm time, js jsonb, u uuid,
        by bytea, arr text[],
        geom geometry(Polygon, 2154)
      );
      INSERT INTO ${SCHEMA}.every_type (t, geom) VALUES
        ('Saint-Dié-des-Vosges', ST_GeomFromText('POLYGON((900000 6800000, 900100 6800000, 900100 6800100, 900000 6800000))', 2154)),
        ('Sélestat', ST_GeomFromText('POLYGON((1000000 6850000, 1000100 6850000, 1000100 6850100, 1000000 6850000))', 2154));
      COMMENT ON TABLE ${SCHEMA}.every_type IS 'Table de test';
      CREATE TABLE ${SCHEMA}.mixed (name text, geom geometry(Geometry, 4326));
      INSERT INTO ${SCHEMA}.mixed VALUES ('p', 'SRID=4326;POINT(7.75 48.58)'), ('l', 'SRID=4326;LINESTRING(7 48, 8 49)');
      CREATE TABLE ${SCHEMA}.empty (id int PRIMARY KEY, geom geometry(Point, 3857));
      ANALYZE ${SCHEMA}.every_type;
    `);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
    await pool.end();
  });

  it('maps every PostgreSQL column type', async () => {
    const reg = new Registry(pool, validateConfig({ database: { schemas: [SCHEMA] } }));
    await reg.reload();
    const l = reg.get('every_type')!;
    expect(l).toBeDefined();
    expect(l.primaryKey).toBe('gid');
    expect(l.srid).toBe(2154);
    expect(l.geometryType).toBe('POLYGON');
    expect(l.geometryColumn).toBe('geom');
    expect(l.abstract).toBe('Table de test');
    const types = Object.fromEntries(l.fields.map((f) => [f.name, f.type]));
    expect(types).toEqual({
      gid: 'integer',
      t: 'string',
      vc: 'string',
      i2: 'integer',
      i4: 'integer',
      i8: 'long',
      r: 'number',
      d8: 'number',
      num: 'number',
      b: 'boolean',
      dt: 'date',
      ts: 'datetime',
      tstz: 'datetime',
      tm: 'time',
      js: 'json',
      u: 'uuid',
      by: 'binary',
      arr: 'array',
    });
    expect(l.fields.find((f) => f.name === 't')!.nullable).toBe(false);
    expect(l.fields.find((f) => f.name === 'vc')!.pgType).toBe('character varying(20)');
    expect(l.extent).toEqual({ minx: 900000, miny: 6800000, maxx: 1000100, maxy: 6850100 });
    expect(l.wgs84Extent!.minx).toBeGreaterThan(3);
    expect(l.wgs84Extent!.maxx).toBeLessThan(9);
    expect(l.wgs84Extent!.miny).toBeGreaterThan(46);
    expect(l.estimatedExtent).not.toBeNull();
    expect(l.rowEstimate).toBe(2);
  });

  it('mixed geometry, no primary key, empty table', async () => {
    const reg = new Registry(pool, validateConfig({ database: { schemas: [SCHEMA] } }));
    await reg.reload();
    const m = reg.get('mixed')!;
    expect(m.geometryType).toBe('GEOMETRY');
    expect(m.primaryKey).toBeNull();
    expect(m.srid).toBe(4326);
    expect(m.wgs84Extent).toEqual(m.extent);
    const e = reg.get('empty')!;
    expect(e.extent).toBeNull();
    expect(e.geometryType).toBe('POINT');
    expect(reg.resolve('ns:mixed')?.name).toBe('mixed');
  });

  it('config layers: names, titles, errors naming the key', async () => {
    const reg = new Registry(
      pool,
      validateConfig({
        layers: [
          { table: `${SCHEMA}.every_type`, name: 'all_types', title: 'Tous les types', access: { public: false, roles: ['agents'] } },
        ],
      }),
    );
    await reg.reload();
    expect(reg.list().map((l) => l.name)).toEqual(['all_types']);
    expect(reg.get('all_types')!.title).toBe('Tous les types');
    expect(reg.get('all_types')!.access).toEqual({ public: false, roles: ['agents'] });
    const bad = new Registry(pool, validateConfig({ layers: [{ table: `${SCHEMA}.nope` }] }));
    await expect(bad.reload()).rejects.toThrow(/layers\[0\]\.table/);
    const badCol = new Registry(pool, validateConfig({ layers: [{ table: `${SCHEMA}.mixed`, geometryColumn: 'the_geom' }] }));
    await expect(badCol.reload()).rejects.toThrow(RegistryError);
  });

  it('reload picks up a new table without restart', async () => {
    const reg = new Registry(pool, validateConfig({ database: { schemas: [SCHEMA] } }));
    await reg.reload();
    const v = reg.version;
    expect(reg.get('later')).toBeUndefined();
    await pool.query(`CREATE TABLE ${SCHEMA}.later (id int PRIMARY KEY, geom geometry(LineString, 2154))`);
    await reg.reload();
    expect(reg.get('later')?.geometryType).toBe('LINESTRING');
    expect(reg.version).toBe(v + 1);
  });

  it('type mapping helper', () => {
    expect(fieldTypeOf('numeric(12,3)')).toBe('number');
    expect(fieldTypeOf('timestamp(3) with time zone')).toBe('datetime');
    expect(fieldTypeOf('integer[]')).toBe('array');
  });
});
