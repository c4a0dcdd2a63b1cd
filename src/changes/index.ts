/** The change feed (src/changes/feed.ts) and the change log it reads (src/changes/schema.ts). */
export {
  ChangeFeed,
  PgListenSource,
  type Change,
  type ChangeFeedOptions,
  type ChangeSource,
  type ChangeSourceHandler,
  type ChangeSubscriber,
} from './feed.js';
export { CHANNEL, EDIT_OPS, hasTriggers } from './schema.js';
