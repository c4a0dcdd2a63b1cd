import { describe, it, expect } from 'vitest';
import { XmlWriter, escapeAttr, escapeText } from '../src/ows/xml.js';
import { parseXml, XmlInputError, attr, child } from '../src/ows/xmldom.js';

describe('XML writer', () => {
  it('escapes text and attributes, drops characters XML forbids', () => {
    expect(escapeText('a<b & c>d')).toBe('a&lt;b &amp; c&gt;d');
    expect(escapeAttr('"x" <y> & \'z\'\n')).toBe("&quot;x&quot; &lt;y&gt; &amp; 'z'&#10;");
    expect(escapeText('bad\u0001char\u0008')).toBe('badchar');
    const w = new XmlWriter();
    w.start('a', { t: 'Saint-Étienne "quoted"', skip: undefined }).el('b', 'é & ü').el('c').opt('d', null).opt('e', 0).end();
    const s = w.toString();
    expect(s).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<a t="Saint-Étienne &quot;quoted&quot;"><b>é &amp; ü</b><c/><e>0</e></a>');
    // round trip through the parser
    const el = parseXml(s);
    expect(el.attrs.t).toBe('Saint-Étienne "quoted"');
    expect(child(el, 'b')?.text).toBe('é & ü');
  });

  it('streams with take()', () => {
    const w = new XmlWriter({ declaration: false });
    w.start('root');
    w.el('x', '1');
    const first = w.take();
    w.el('x', '2');
    w.end();
    expect(first + w.take()).toBe('<root><x>1</x><x>2</x></root>');
  });
});

describe('XML input', () => {
  it('resolves namespaces', () => {
    const el = parseXml(
      '<wfs:GetFeature xmlns:wfs="http://www.opengis.net/wfs/2.0" xmlns:fes="http://www.opengis.net/fes/2.0" service="WFS"><wfs:Query typeNames="ns:parcels"><fes:Filter/></wfs:Query></wfs:GetFeature>',
    );
    expect(el.name).toBe('GetFeature');
    expect(el.ns).toBe('http://www.opengis.net/wfs/2.0');
    expect(attr(el, 'service')).toBe('WFS');
    const q = child(el, 'Query')!;
    expect(q.children[0].ns).toBe('http://www.opengis.net/fes/2.0');
  });

  it('refuses DOCTYPE, entities, malformed and oversize documents', () => {
    const bomb = '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><a>&lol2;</a>';
    expect(() => parseXml(bomb)).toThrow(XmlInputError);
    const xxe = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]><a>&x;</a>';
    expect(() => parseXml(xxe)).toThrow(/DOCTYPE/);
    expect(() => parseXml('<a><b></a>')).toThrow(/not well-formed/);
    expect(() => parseXml('<a>' + 'x'.repeat(2000) + '</a>', 1000)).toThrow(/larger than/);
    expect(parseXml('<a>&lt;&amp;&#233;</a>').text).toBe('<&é');
  });
});
