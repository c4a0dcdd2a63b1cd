/**
 * OWS exceptions are ServiceErrors (src/errors): this module keeps the OWS-side names that
 * front doors import. The renderer of the report forms is src/errors/render.ts (renderOws).
 */
export { OwsException, ServiceError, type OwsCode } from '../errors/service-error.js';
export { flavourFor, renderOws, type ExceptionFlavour } from '../errors/render.js';
