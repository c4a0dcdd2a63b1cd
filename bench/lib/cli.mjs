// The command line and environment of the bench scripts (bench/*.mjs): one way to read an option,
// the database a script runs on and the repository root, so that a script's header is its imports.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

const argv = process.argv.slice(2);

/** The value of `--name value` or `--name=value` on the command line, else `dflt`. */
export function opt(name, dflt) {
  const i = argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return dflt;
  return argv[i].includes('=') ? argv[i].slice(name.length + 3) : argv[i + 1];
}

/** `opt` read as a number. */
export const numOpt = (name, dflt) => Number(opt(name, dflt));

/** Whether `--name` is on the command line. */
export const flag = (name) => argv.includes(`--${name}`);

/**
 * The database URL from the first of `names` that is set in the environment; without one the
 * script stops (exit 2) with a message naming them and `what` the database should be.
 */
export function databaseUrl(names = ['DATABASE_URL'], what = '') {
  for (const n of names) if (process.env[n]) return process.env[n];
  console.error(`set ${names.join(' or ')}${what ? ` (${what})` : ''}`);
  process.exit(2);
}

/** `--schema`: a plain lower-case SQL identifier, since the scripts write it into SQL text. */
export function schemaOpt(dflt) {
  const s = opt('schema', dflt);
  if (!/^[a-z_][a-z0-9_]*$/.test(s)) throw new Error(`bad --schema ${s}`);
  return s;
}
