/** The OWS ServiceProvider block (OWS Common 1.0/1.1), written once for WFS, WMTS and CSW capabilities. */
import type { Config } from '../config/index.js';
import type { XmlWriter } from './xml.js';

export function writeServiceProvider(w: XmlWriter, service: Config['service'], baseUrl: string): void {
  const c = service.contact;
  w.start('ows:ServiceProvider');
  w.el('ows:ProviderName', c.organisation || service.title);
  w.el('ows:ProviderSite', { 'xlink:href': c.url || `${baseUrl}/` });
  w.start('ows:ServiceContact');
  w.opt('ows:IndividualName', c.person);
  w.opt('ows:PositionName', c.position);
  w.start('ows:ContactInfo');
  if (c.phone) w.start('ows:Phone').el('ows:Voice', c.phone).end();
  w.start('ows:Address');
  w.opt('ows:DeliveryPoint', c.address);
  w.opt('ows:City', c.city);
  w.opt('ows:PostalCode', c.postcode);
  w.opt('ows:Country', c.country);
  w.opt('ows:ElectronicMailAddress', c.email);
  w.end();
  w.end();
  w.el('ows:Role', 'pointOfContact');
  w.end();
  w.end();
}
