/** The namespace rule of CSW 2.0.2 constraints, shared by GetRecords and Transaction Delete. */
import { OwsException } from '../../ows/exceptions.js';
import type { XmlElement } from '../../ows/xmldom.js';

export const OGC_NS = 'http://www.opengis.net/ogc';

/** CSW 2.0.2 constraints are OGC Filter 1.1 (ogc namespace): a Filter of another namespace is refused. */
export function checkFilterNs(f: XmlElement): XmlElement {
  if (f.ns !== OGC_NS)
    throw new OwsException(
      'InvalidParameterValue',
      `the constraint's Filter is in namespace '${f.ns || '(none)'}': CSW 2.0.2 takes an OGC Filter 1.1 (${OGC_NS})`,
      'Constraint',
    );
  return f;
}
