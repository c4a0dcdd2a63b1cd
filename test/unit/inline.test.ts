/** inlineParams: a parameterised statement made self-contained for a program that takes SQL text (ogr2ogr -sql). */
import { describe, expect, it } from 'vitest';
import { inlineParams } from '../../src/db/inline.js';

describe('inlineParams', () => {
  it('puts each value in as a literal, numbers in parentheses', () => {
    expect(inlineParams('SELECT * FROM t WHERE a = $1::text AND b < $2::float8 AND c = $3', ['Metz', -1.5, true])).toBe(
      "SELECT * FROM t WHERE a = 'Metz'::text AND b < (-1.5)::float8 AND c = TRUE",
    );
    expect(inlineParams('SELECT $1, $2', [null, 12n])).toBe('SELECT NULL, (12)');
  });

  it('quotes what a client sent so that it stays one literal', () => {
    const evil = "x'; DROP TABLE parcels; --";
    expect(inlineParams('SELECT 1 WHERE a = $1', [evil])).toBe("SELECT 1 WHERE a = 'x''; DROP TABLE parcels; --'");
    // a backslash is quoted the way libpq does (E'' with the backslash doubled)
    expect(inlineParams('SELECT $1', ['a\\b'])).toBe("SELECT  E'a\\\\b'");
    expect(inlineParams("SELECT 'é', $1", ["l'Île-Saint-Denis"])).toBe("SELECT 'é', 'l''Île-Saint-Denis'");
  });

  it('leaves $n inside literals and quoted identifiers alone, and $10 is not $1 followed by 0', () => {
    const params = Array.from({ length: 10 }, (_, i) => i + 1);
    expect(inlineParams(`SELECT "a$1", 'b$2''$3', $10, $1`, params)).toBe(`SELECT "a$1", 'b$2''$3', (10), (1)`);
  });

  it('refuses what it cannot write as a literal, and a statement that does not parse', () => {
    expect(inlineParams('SELECT $1', [{ a: 1 }])).toBeNull();
    expect(inlineParams('SELECT $1', [Number.NaN])).toBeNull();
    expect(inlineParams('SELECT $2', [1])).toBeNull();
    expect(inlineParams("SELECT 'unterminated", [])).toBeNull();
  });
});
