import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import pg from 'pg';
import { generateDemo, type DemoSummary } from '../src/demo/generator.js';

const DB_URL = process.env.TEST_DATABASE_URL;

const TABLES = ['communes', 'parcels', 'roads', 'pois'] as const;
const SIZES = { communes: 300, parcels: 5000, roads: 500, pois: 500 };
const RECT_AREA = 320000 * 290000;
const ENV = 'ST_MakeEnvelope(760000, 6700000, 1080000, 6990000, 2154)';

const NULLABLE: Record<(typeof TABLES)[number], string[]> = {
  communes: ['code_postal'],
  parcels: ['nature', 'bati', 'valeur', 'updated_at'],
  roads: ['nom', 'numero', 'largeur', 'sens_unique', 'date_mise_service'],
  pois: ['adresse', 'capacite', 'note', 'ouvert_dimanche', 'date_creation'],
};

if (!DB_URL) {
  describe('demo generator', () => {
    it.skip('TEST_DATABASE_URL is not set: demo generator tests need a PostGIS database', () => {});
  });
} else {
  describe('demo generator', () => {
    const suffix = `${process.pid}`;
    const schemaA = `demo_gen_a_${suffix}`;
    const schemaB = `demo_gen_b_${suffix}`;
    const schemaC = `demo_gen_c_${suffix}`;
    let pool: pg.Pool;
    let summaryA: DemoSummary;

    async function md5s(schema: string): Promise<Record<string, string>> {
      const out: Record<string, string> = {};
      for (const t of TABLES) {
        const r = await pool.query<{ h: string }>(`SELECT md5(string_agg(t::text, '' ORDER BY id)) AS h FROM "${schema}".${t} t`);
        out[t] = r.rows[0].h;
      }
      return out;
    }

    beforeAll(async () => {
      pool = new pg.Pool({ connectionString: DB_URL, max: 2 });
      summaryA = await generateDemo(pool, { seed: 7, schema: schemaA, ...SIZES });
      await generateDemo(pool, { seed: 7, schema: schemaB, ...SIZES });
      await generateDemo(pool, { seed: 8, schema: schemaC, ...SIZES });
    }, 300_000);

    afterAll(async () => {
      if (!pool) return;
      for (const s of [schemaA, schemaB, schemaC]) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
      await pool.end();
    }, 60_000);

    it('is deterministic: same seed gives byte-identical rows', async () => {
      const a = await md5s(schemaA);
      const b = await md5s(schemaB);
      for (const t of TABLES) expect(a[t], t).toBeTruthy();
      expect(b).toEqual(a);
    });

    it('a different seed gives different data', async () => {
      const a = await md5s(schemaA);
      const c = await md5s(schemaC);
      for (const t of TABLES) expect(c[t], t).not.toBe(a[t]);
    });

    it('produces the requested counts', async () => {
      const counts: Record<string, number> = {};
      for (const t of TABLES) {
        const r = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schemaA}".${t}`);
        counts[t] = Number(r.rows[0].n);
      }
      expect(counts.parcels).toBe(SIZES.parcels);
      expect(counts.roads).toBe(SIZES.roads);
      expect(counts.pois).toBe(SIZES.pois);
      expect(counts.communes).toBeGreaterThanOrEqual(SIZES.communes * 0.95);
      expect(counts.communes).toBeLessThanOrEqual(SIZES.communes);
      expect(summaryA.counts).toEqual(counts);
      expect(summaryA.seed).toBe(7);
    });

    it('geometries are valid, in EPSG:2154, typed and inside the region', async () => {
      for (const t of TABLES) {
        const r = await pool.query<{ bad: string; n: string }>(
          `SELECT count(*) FILTER (WHERE geom IS NULL OR NOT ST_IsValid(geom) OR ST_SRID(geom) <> 2154
                                   OR NOT ST_CoveredBy(geom, ${ENV}) OR ST_IsEmpty(geom)) AS bad,
                  count(*) AS n
           FROM "${schemaA}".${t}`,
        );
        expect(Number(r.rows[0].bad), t).toBe(0);
      }
      const gc = await pool.query<{ f_table_name: string; type: string; srid: number }>(
        `SELECT f_table_name, type, srid FROM geometry_columns WHERE f_table_schema = $1 ORDER BY f_table_name`,
        [schemaA],
      );
      const types = Object.fromEntries(gc.rows.map((r) => [r.f_table_name, `${r.type}/${r.srid}`]));
      expect(types.communes).toBe('MULTIPOLYGON/2154');
      expect(['MULTIPOLYGON/2154', 'POLYGON/2154']).toContain(types.parcels);
      expect(types.roads).toBe('LINESTRING/2154');
      expect(types.pois).toBe('POINT/2154');
    });

    it('communes partition the rectangle with realistic vertex counts', async () => {
      const r = await pool.query<{ sum_area: number; union_area: number; avg_pts: number }>(
        `SELECT sum(ST_Area(geom)) AS sum_area, ST_Area(ST_Union(geom)) AS union_area, avg(ST_NPoints(geom))::float8 AS avg_pts
         FROM "${schemaA}".communes`,
      );
      const { sum_area, union_area, avg_pts } = r.rows[0];
      expect(Math.abs(sum_area - RECT_AREA) / RECT_AREA).toBeLessThan(0.005);
      expect(Math.abs(union_area - RECT_AREA) / RECT_AREA).toBeLessThan(0.005);
      expect(avg_pts).toBeGreaterThan(100);
      const codes = await pool.query<{ bad: string }>(
        `SELECT count(*) FILTER (WHERE insee !~ '^(08|10|51|52|54|55|57|67|68|88)') AS bad FROM "${schemaA}".communes`,
      );
      expect(Number(codes.rows[0].bad)).toBe(0);
    });

    it('parcels are small cadastre-like polygons with consistent attributes', async () => {
      const r = await pool.query<{ max_pts: number; min_pts: number; bad_area: string; no_commune: string }>(
        `SELECT max(ST_NPoints(geom)) AS max_pts, min(ST_NPoints(geom)) AS min_pts,
                count(*) FILTER (WHERE abs(contenance - ST_Area(geom)) > 1) AS bad_area,
                count(*) FILTER (WHERE insee NOT IN (SELECT insee FROM "${schemaA}".communes)) AS no_commune
         FROM "${schemaA}".parcels`,
      );
      expect(r.rows[0].min_pts).toBeGreaterThanOrEqual(4);
      expect(r.rows[0].max_pts).toBeLessThan(40);
      expect(Number(r.rows[0].bad_area)).toBe(0);
      expect(Number(r.rows[0].no_commune)).toBe(0);
    });

    it('roads form a network: few autoroutes, each route continuous from town to town; départementales link villages', async () => {
      const cls = await pool.query<{ classe: string; n: string }>(`SELECT classe, count(*) AS n FROM "${schemaA}".roads GROUP BY classe`);
      const n = Object.fromEntries(cls.rows.map((r) => [r.classe, Number(r.n)]));
      expect(n.autoroute).toBeLessThan(n.nationale);
      expect(n.nationale).toBeLessThan(n.departementale);
      // the sections of one autoroute or nationale join end to end into one line
      const merged = await pool.query<{ nom: string; parts: number }>(
        `SELECT nom, ST_NumGeometries(ST_LineMerge(ST_Collect(geom ORDER BY id)))::int AS parts
           FROM "${schemaA}".roads WHERE classe IN ('autoroute', 'nationale') GROUP BY nom`,
      );
      expect(merged.rows.length).toBeGreaterThan(3);
      for (const r of merged.rows) expect(r.parts, r.nom).toBe(1);
      // every départementale starts at a village and ends near another one (within its clamp margin)
      const far = await pool.query<{ n: string }>(
        `SELECT count(*) AS n FROM "${schemaA}".roads r WHERE classe = 'departementale'
           AND ST_Length(geom) > 60000`,
      );
      expect(Number(far.rows[0].n)).toBe(0);
    });

    it('has French names with non-ASCII letters', async () => {
      for (const t of ['communes', 'pois', 'roads']) {
        const r = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schemaA}".${t} WHERE nom ~ '[^\\x01-\\x7F]'`);
        expect(Number(r.rows[0].n), t).toBeGreaterThan(0);
      }
      const cats = await pool.query<{ n: string }>(`SELECT count(DISTINCT categorie) AS n FROM "${schemaA}".pois`);
      expect(Number(cats.rows[0].n)).toBe(12);
      const classes = await pool.query<{ n: string }>(`SELECT count(DISTINCT classe) AS n FROM "${schemaA}".roads`);
      expect(Number(classes.rows[0].n)).toBe(5);
    });

    it('has NULLs in the documented nullable columns', async () => {
      for (const t of TABLES) {
        for (const c of NULLABLE[t]) {
          const r = await pool.query<{ n: string }>(`SELECT count(*) AS n FROM "${schemaA}".${t} WHERE ${c} IS NULL`);
          expect(Number(r.rows[0].n), `${t}.${c}`).toBeGreaterThan(0);
        }
      }
    });

    it('creates GiST indexes and table comments', async () => {
      const idx = await pool.query<{ tablename: string }>(
        `SELECT c.relname AS tablename
         FROM pg_index i
         JOIN pg_class ic ON ic.oid = i.indexrelid
         JOIN pg_am am ON am.oid = ic.relam
         JOIN pg_class c ON c.oid = i.indrelid
         JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = $1 AND am.amname = 'gist'
         ORDER BY c.relname`,
        [schemaA],
      );
      expect(idx.rows.map((r) => r.tablename)).toEqual(['communes', 'parcels', 'pois', 'roads']);
      for (const t of TABLES) {
        const r = await pool.query<{ c: string | null }>(`SELECT obj_description($1::regclass, 'pg_class') AS c`, [`"${schemaA}".${t}`]);
        expect(r.rows[0].c, t).toBeTruthy();
      }
    });
  });
}
