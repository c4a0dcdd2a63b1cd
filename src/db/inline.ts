/**
 * A parameterised statement made self-contained, for a program that takes SQL text and no bound
 * values (GDAL's ogr2ogr `-sql`). Each `$n` outside string literals and quoted identifiers becomes
 * the value as a literal: strings through libpq's quoting rules (pg's escapeLiteral), finite
 * numbers, booleans, NULL. Anything else (an object, an array, NaN) is not inlined: the answer is
 * null and the caller keeps the bound-parameter path.
 */
import { escapeLiteral } from 'pg';

function literal(v: unknown): string | null {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return escapeLiteral(v);
  if (typeof v === 'number') return Number.isFinite(v) ? `(${String(v)})` : null;
  if (typeof v === 'bigint') return `(${v.toString()})`;
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  return null;
}

export function inlineParams(sql: string, params: readonly unknown[]): string | null {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i];
    if (c === "'" || c === '"') {
      // a literal or a quoted identifier, with its doubled quotes, copied as it is
      let j = i + 1;
      for (;;) {
        if (j >= sql.length) return null;
        if (sql[j] === c) {
          if (sql[j + 1] === c) j += 2;
          else break;
        } else j++;
      }
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === '$' && /[0-9]/.test(sql[i + 1] ?? '') && !/[\w$]/.test(sql[i - 1] ?? '')) {
      let j = i + 1;
      while (j < sql.length && /[0-9]/.test(sql[j])) j++;
      const n = Number(sql.slice(i + 1, j));
      if (n < 1 || n > params.length) return null;
      const lit = literal(params[n - 1]);
      if (lit === null) return null;
      out += lit;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}
