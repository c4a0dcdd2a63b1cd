/**
 * The EU vocabulary tables (src/catalog/vocab.ts) and what the catalogue derives from them: language
 * codes (a Greek record is ELL, not the French default), the verdict on a value (a term, an IRI of the
 * table missing from the embedded subset, anything else), INSPIRE access limitations as EU access
 * rights, the EU data theme added to a record that names only INSPIRE themes, topic categories or
 * keywords.
 */
import { describe, expect, it } from 'vitest';
import { languageCodes, resolveTheme, type CatalogRecord } from '../../src/catalog/model.js';
import { accessRightOfInspire, checkVocab, EU_AUTHORITY, INSPIRE_TO_EU_THEME, DATA_THEMES } from '../../src/catalog/vocab.js';
import { withEuThemes } from '../../src/catalog/dcat.js';

describe('EU vocabularies', () => {
  it('language codes: ISO 639-2/B, /T, 639-1 and EU codes agree; an unknown language has no EU code', () => {
    expect(languageCodes('gre')).toEqual({ iso2: 'el', eu: 'ELL' });
    expect(languageCodes('ell')).toEqual({ iso2: 'el', eu: 'ELL' });
    expect(languageCodes('fre')).toEqual({ iso2: 'fr', eu: 'FRA' });
    expect(languageCodes('FR')).toEqual({ iso2: 'fr', eu: 'FRA' });
    expect(languageCodes('ger')).toEqual({ iso2: 'de', eu: 'DEU' });
    expect(languageCodes('bre')).toEqual({ iso2: 'br', eu: 'BRE' });
    expect(languageCodes('xyz').eu).toBeNull();
  });

  it('a value is a term of its table, unverified (outside an embedded subset) or wrong', () => {
    expect(checkVocab('frequency', `${EU_AUTHORITY}/frequency/ANNUAL`)).toBe('ok');
    expect(checkVocab('frequency', `${EU_AUTHORITY}/frequency/YEARLY`)).toBe('bad');
    expect(checkVocab('frequency', 'http://purl.org/cld/freq/annual')).toBe('bad');
    expect(checkVocab('data-theme', `${EU_AUTHORITY}/data-theme/TRAN`)).toBe('ok');
    expect(checkVocab('data-theme', 'http://inspire.ec.europa.eu/theme/tn')).toBe('bad');
    expect(checkVocab('file-type', `${EU_AUTHORITY}/file-type/GEOJSON`)).toBe('ok');
    expect(checkVocab('file-type', `${EU_AUTHORITY}/file-type/NETCDF`)).toBe('unverified');
    expect(checkVocab('file-type', `${EU_AUTHORITY}/file-type/geo json`)).toBe('bad');
    expect(checkVocab('language', `${EU_AUTHORITY}/language/FRA`)).toBe('ok');
    expect(checkVocab('language', `${EU_AUTHORITY}/language/JPN`)).toBe('unverified');
    expect(checkVocab('access-right', `${EU_AUTHORITY}/access-right/PUBLIC`)).toBe('ok');
    expect(checkVocab('planned-availability', `${EU_AUTHORITY}/planned-availability/STABLE`)).toBe('ok');
  });

  it('INSPIRE limitations on public access → EU access rights', () => {
    expect(accessRightOfInspire('http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/noLimitations')).toBe('PUBLIC');
    expect(
      accessRightOfInspire('http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/INSPIRE_Directive_Article13_1e'),
    ).toBe('NON_PUBLIC');
    expect(accessRightOfInspire('https://example.org/rights')).toBeNull();
  });

  it('every INSPIRE theme has an EU data theme of the table', () => {
    for (const code of Object.values(INSPIRE_TO_EU_THEME)) expect(DATA_THEMES[code]).toBeDefined();
    expect(Object.keys(INSPIRE_TO_EU_THEME)).toHaveLength(34);
  });

  it('a record naming no EU data theme gets the one of its INSPIRE themes, topic categories or keywords', () => {
    const rec = (over: Partial<CatalogRecord>) => ({ keywords: [], themes: [], index: {}, ...over }) as unknown as CatalogRecord;
    const uris = (r: CatalogRecord) => withEuThemes(r, r.themes).map((t) => t.uri);
    const tn = resolveTheme('tn')!;
    expect(uris(rec({ themes: [tn] }))).toEqual([tn.uri, `${EU_AUTHORITY}/data-theme/TRAN`]);
    expect(uris(rec({ index: { topiccategory: ['farming'] } }))).toEqual([`${EU_AUTHORITY}/data-theme/AGRI`]);
    expect(uris(rec({ keywords: ['Santé'] }))).toEqual([`${EU_AUTHORITY}/data-theme/HEAL`]);
    // an EU theme already there: nothing added
    const envi = resolveTheme('ENVI')!;
    expect(uris(rec({ themes: [tn, envi] }))).toEqual([tn.uri, envi.uri]);
    expect(uris(rec({ keywords: ['divers'] }))).toEqual([]);
  });
});
