/** Errors raised while parsing or compiling a filter (FES, CQL2). */

export type FilterErrorCode = 'InvalidParameterValue' | 'OperationParsingFailed';

export class FilterError extends Error {
  /** OWS exception locator (e.g. 'filter', a property name). */
  locator?: string;
  code: FilterErrorCode;
  /** Character offset in the input (CQL2 text only). */
  position?: number;

  constructor(message: string, code: FilterErrorCode = 'OperationParsingFailed', locator?: string, position?: number) {
    super(message);
    this.name = 'FilterError';
    this.code = code;
    this.locator = locator;
    if (position !== undefined) this.position = position;
  }
}

/** Parsing failure (syntax, unknown operator, malformed literal). */
export function parseError(message: string, locator = 'filter', position?: number): FilterError {
  return new FilterError(message, 'OperationParsingFailed', locator, position);
}

/** Semantic failure (unknown property, value not convertible, unsupported combination). */
export function invalidValue(message: string, locator = 'filter'): FilterError {
  return new FilterError(message, 'InvalidParameterValue', locator);
}
