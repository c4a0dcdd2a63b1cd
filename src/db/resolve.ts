/** Which database to use: DATABASE_URL / config when given, else the embedded cluster. */
import type { Config } from '../config/index.js';
import { ensureEmbeddedCluster, type EmbeddedCluster } from './embedded.js';

export interface ResolvedDatabase {
  url: string;
  /** Set when the embedded cluster is in use. */
  cluster?: EmbeddedCluster;
}

export async function resolveDatabase(config: Config, log: (m: string) => void): Promise<ResolvedDatabase> {
  if (config.database.url) return { url: config.database.url };
  const cluster = await ensureEmbeddedCluster(log);
  return { url: cluster.url, cluster };
}

/** The URL with its password hidden, for logs. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:***@');
}
