/** Re-serialising a parsed request (csw:EchoedRequest of GetRecords resultType=validate and of the Harvest acknowledgement). */
import type { XmlWriter } from '../../ows/xml.js';
import type { XmlElement } from '../../ows/xmldom.js';

/** Write `el` (and its subtree) into `w`; `top` re-declares the namespaces in scope. */
export function echoElement(w: XmlWriter, el: XmlElement, top = true): void {
  const attrs: Record<string, string> = { ...el.attrs };
  if (top) for (const [p, ns] of Object.entries(el.nsmap)) if (p !== 'xml') attrs[p ? `xmlns:${p}` : 'xmlns'] = ns;
  w.start(el.qname, attrs);
  if (el.children.length) for (const c of el.children) echoElement(w, c, false);
  else if (el.text) w.text(el.text);
  w.end();
}
