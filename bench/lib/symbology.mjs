// One description of the bench's map symbology, from which both servers' styles are generated:
// our server's layer styles (rules in its YAML/JSON configuration, docs/styles.md) and MapServer's
// mapfile CLASSes (lib/mapfile.mjs). Nothing else decides how either server draws the bench layers,
// so the two render the same work; the pixel check (lib/pixels.mjs) verifies it before timing.
//
// Deliberately plain: class fills with 0.6 px outlines, one stroke width per road class, filled
// circles for points; no scale-dependent rules (the two servers round scale denominators differently
// at a rule's edge) and no labels (two text engines never place glyphs on the same pixels).

/** filter: { field, values } (the feature's field equals one of the values) or else: true (no other class matched). */
export const SYMBOLOGY = {
  parcels: {
    geometry: 'POLYGON',
    title: 'Parcelles',
    classes: [
      { name: 'batie', title: 'Parcelle bâtie', field: 'bati', values: [true], fill: '#f4d6b0', stroke: '#a0522d', width: 0.6 },
      { name: 'non-batie', title: 'Parcelle non bâtie', else: true, fill: '#e8f0d8', stroke: '#7a8f5a', width: 0.6 },
    ],
  },
  roads: {
    geometry: 'LINE',
    title: 'Routes',
    classes: [
      { name: 'autoroute', field: 'classe', values: ['autoroute'], stroke: '#e8423f', width: 3 },
      { name: 'nationale', field: 'classe', values: ['nationale'], stroke: '#f5a623', width: 2.5 },
      { name: 'departementale', field: 'classe', values: ['departementale'], stroke: '#f2c94c', width: 1.6 },
      { name: 'communale', field: 'classe', values: ['communale'], stroke: '#b0b0b0', width: 1 },
      { name: 'chemin', field: 'classe', values: ['chemin'], stroke: '#8a7a66', width: 0.8 },
    ],
  },
  pois: {
    geometry: 'POINT',
    title: "Points d'intérêt",
    classes: [
      { name: 'sante', field: 'categorie', values: ['pharmacie', 'hôpital'], fill: '#2e9e44', stroke: '#ffffff', size: 7, width: 1 },
      { name: 'culte', field: 'categorie', values: ['église'], fill: '#7b4fa0', stroke: '#ffffff', size: 7, width: 1 },
      { name: 'culture', field: 'categorie', values: ['musée', 'bibliothèque'], fill: '#d4a017', stroke: '#ffffff', size: 7, width: 1 },
      { name: 'transport', field: 'categorie', values: ['gare'], fill: '#1f5fa8', stroke: '#ffffff', size: 7, width: 1 },
      { name: 'commerce', else: true, fill: '#e4572e', stroke: '#ffffff', size: 6, width: 1 },
    ],
  },
};

export const STYLE_NAME = 'bench';

const cqlValue = (v) => (typeof v === 'string' ? `'${v.replace(/'/g, "''")}'` : String(v));

/** Our server's style (docs/styles.md) for one layer of the description. */
export function ourStyle(name) {
  const d = SYMBOLOGY[name];
  const rules = d.classes.map((c) => {
    const rule = { name: c.name, title: c.title ?? c.name };
    if (c.else) rule.else = true;
    else
      rule.filter = c.values.length === 1 ? `${c.field} = ${cqlValue(c.values[0])}` : `${c.field} IN (${c.values.map(cqlValue).join(',')})`;
    if (d.geometry === 'POLYGON') rule.polygon = { fill: c.fill, stroke: c.stroke, 'stroke-width': c.width };
    else if (d.geometry === 'LINE')
      rule.line = { stroke: c.stroke, 'stroke-width': c.width, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' };
    else rule.point = { mark: 'circle', size: c.size, fill: c.fill, stroke: c.stroke, 'stroke-width': c.width };
    return rule;
  });
  return { title: `${d.title} (bench)`, rules };
}

/** `layers:` entries of our configuration: the bench layers with the description's style as default. */
export function ourLayers() {
  return Object.keys(SYMBOLOGY).map((name) => ({
    name,
    table: `public.${name}`,
    defaultStyle: STYLE_NAME,
    styles: { [STYLE_NAME]: ourStyle(name) },
  }));
}

const rgb = (h) => {
  const n = Number.parseInt(h.slice(1), 16);
  return `${(n >> 16) & 255} ${(n >> 8) & 255} ${n & 255}`;
};

/** MapServer expression for a class: string comparison of the attribute's text ("t" for a PostgreSQL boolean true). */
function msExpression(c) {
  const alts = c.values.flatMap((v) => (v === true ? ['t', 'true'] : v === false ? ['f', 'false'] : [String(v)]));
  return `(${alts.map((v) => `"[${c.field}]" = "${v.replace(/"/g, '\\"')}"`).join(' OR ')})`;
}

/** MapServer CLASS blocks for one layer of the description. */
export function mapserverClasses(name) {
  const d = SYMBOLOGY[name];
  return d.classes
    .map((c) => {
      const style =
        d.geometry === 'POLYGON'
          ? `STYLE COLOR ${rgb(c.fill)} OUTLINECOLOR ${rgb(c.stroke)} WIDTH ${c.width} END`
          : d.geometry === 'LINE'
            ? `STYLE COLOR ${rgb(c.stroke)} WIDTH ${c.width} LINECAP ROUND LINEJOIN ROUND END`
            : `STYLE SYMBOL "circle" SIZE ${c.size} COLOR ${rgb(c.fill)} OUTLINECOLOR ${rgb(c.stroke)} WIDTH ${c.width} END`;
      return `    CLASS
      NAME "${c.name}"
${c.else ? '' : `      EXPRESSION ${msExpression(c)}\n`}      ${style}
    END
`;
    })
    .join('');
}
