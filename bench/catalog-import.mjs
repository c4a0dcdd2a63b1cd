#!/usr/bin/env node
/**
 * Catalogue import benchmark (issue 17 target): N ISO 19139 records (default 10,000), INSPIRE-style
 * data set records of about 5 kB each (keywords with the GEMET thesaurus, legal constraints,
 * conformity, lineage, online resources), every other one missing its conformity and access
 * limitation anchor so that the quality checks report failures), written as CSW GetRecordsResponse
 * files of 1,000 records, then imported with `catalog-import`'s code path (importMetadataFiles: parse,
 * ISO AP index, projection, INSPIRE report, one transaction per file) into a catalogue schema of its
 * own (geodata_catalog_importbench, dropped at the end).
 * Reports: total time, records/s, per-file time, peak RSS and heap during the import (sampled every
 * 20 ms) beside the RSS before it, the records stored and the quality failures counted.
 * Usage: npm run build && node bench/catalog-import.mjs [--records 10000] [--per-file 1000]
 *        node bench/catalog-import.mjs --quick      (200 records: a smoke run; its figures mean nothing)
 * Database: DATABASE_URL, else the embedded cluster (database geodata_bench).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { prng } from './lib/core.mjs';
import { createPool } from '../dist/src/db/pool.js';
import { ensureEmbeddedCluster, ensureDatabase, stopEmbeddedCluster } from '../dist/src/db/embedded.js';
import { importMetadataFiles } from '../dist/src/catalog/import.js';
import { migrateCatalog } from '../dist/src/catalog/store.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const quick = process.argv.includes('--quick');
const N = arg('records', quick ? 200 : 10000);
const PER_FILE = arg('per-file', quick ? 100 : 1000);
const SCHEMA = 'geodata_catalog_importbench';

const rnd = prng(17);
// title and abstract words (a vocabulary of its own: the full-text index is not what is measured here)
const words = 'voirie hydrographie cadastre occupation sol bâti forêt littoral risque inondation plan urbanisme'.split(' ');
const pick = () => words[Math.floor(rnd() * words.length)];
const themes = [
  ['tn', 'Réseaux de transport'],
  ['hy', 'Hydrographie'],
  ['cp', 'Parcelles cadastrales'],
  ['lu', 'Usage des sols'],
];
const cs = (v) => `<gco:CharacterString>${v}</gco:CharacterString>`;
const code = (list, v) =>
  `<gmd:${list} codeList="http://standards.iso.org/iso/19139/resources/gmxCodelists.xml#${list}" codeListValue="${v}">${v}</gmd:${list}>`;

function record(i) {
  const complete = i % 2 === 0;
  const [tc, tl] = themes[i % themes.length];
  const w = (-4 + rnd() * 11).toFixed(4);
  const s = (42 + rnd() * 8).toFixed(4);
  const party = (role) =>
    `<gmd:CI_ResponsibleParty><gmd:organisationName>${cs(`Organisme ${i % 40}`)}</gmd:organisationName><gmd:contactInfo><gmd:CI_Contact><gmd:address><gmd:CI_Address><gmd:electronicMailAddress>${cs(`sig${i % 40}@org.example`)}</gmd:electronicMailAddress></gmd:CI_Address></gmd:address></gmd:CI_Contact></gmd:contactInfo><gmd:role>${code('CI_RoleCode', role)}</gmd:role></gmd:CI_ResponsibleParty>`;
  return `<gmd:MD_Metadata xmlns:gmd="http://www.isotc211.org/2005/gmd" xmlns:gco="http://www.isotc211.org/2005/gco" xmlns:gmx="http://www.isotc211.org/2005/gmx" xmlns:gml="http://www.opengis.net/gml/3.2" xmlns:xlink="http://www.w3.org/1999/xlink">
<gmd:fileIdentifier>${cs(`bench-iso-${String(i).padStart(6, '0')}`)}</gmd:fileIdentifier>
<gmd:language><gmd:LanguageCode codeList="http://www.loc.gov/standards/iso639-2/" codeListValue="fre">fre</gmd:LanguageCode></gmd:language>
<gmd:hierarchyLevel>${code('MD_ScopeCode', 'dataset')}</gmd:hierarchyLevel>
<gmd:contact>${party('pointOfContact')}</gmd:contact>
<gmd:dateStamp><gco:DateTime>2025-0${1 + (i % 9)}-1${i % 10}T10:00:00Z</gco:DateTime></gmd:dateStamp>
<gmd:identificationInfo><gmd:MD_DataIdentification>
<gmd:citation><gmd:CI_Citation><gmd:title>${cs(`${pick()} ${pick()} ${i}`)}</gmd:title>
<gmd:date><gmd:CI_Date><gmd:date><gco:Date>2024-0${1 + (i % 9)}-01</gco:Date></gmd:date><gmd:dateType>${code('CI_DateTypeCode', 'revision')}</gmd:dateType></gmd:CI_Date></gmd:date>
<gmd:identifier><gmd:RS_Identifier><gmd:code>${cs(`ds-${i}`)}</gmd:code><gmd:codeSpace>${cs('https://data.example/id/')}</gmd:codeSpace></gmd:RS_Identifier></gmd:identifier>
</gmd:CI_Citation></gmd:citation>
<gmd:abstract>${cs(Array.from({ length: 40 }, pick).join(' '))}</gmd:abstract>
<gmd:pointOfContact>${party('custodian')}</gmd:pointOfContact>
<gmd:descriptiveKeywords><gmd:MD_Keywords><gmd:keyword>${cs(pick())}</gmd:keyword><gmd:keyword>${cs(pick())}</gmd:keyword></gmd:MD_Keywords></gmd:descriptiveKeywords>
<gmd:descriptiveKeywords><gmd:MD_Keywords><gmd:keyword><gmx:Anchor xlink:href="http://inspire.ec.europa.eu/theme/${tc}">${tl}</gmx:Anchor></gmd:keyword><gmd:thesaurusName><gmd:CI_Citation><gmd:title>${cs('GEMET - INSPIRE themes, version 1.0')}</gmd:title><gmd:date><gmd:CI_Date><gmd:date><gco:Date>2008-06-01</gco:Date></gmd:date><gmd:dateType>${code('CI_DateTypeCode', 'publication')}</gmd:dateType></gmd:CI_Date></gmd:date></gmd:CI_Citation></gmd:thesaurusName></gmd:MD_Keywords></gmd:descriptiveKeywords>
<gmd:resourceConstraints><gmd:MD_LegalConstraints><gmd:accessConstraints>${code('MD_RestrictionCode', 'otherRestrictions')}</gmd:accessConstraints><gmd:otherConstraints>${complete ? '<gmx:Anchor xlink:href="http://inspire.ec.europa.eu/metadata-codelist/LimitationsOnPublicAccess/noLimitations">Pas de restriction</gmx:Anchor>' : cs('Pas de restriction')}</gmd:otherConstraints></gmd:MD_LegalConstraints></gmd:resourceConstraints>
<gmd:resourceConstraints><gmd:MD_LegalConstraints><gmd:useConstraints>${code('MD_RestrictionCode', 'otherRestrictions')}</gmd:useConstraints><gmd:otherConstraints><gmx:Anchor xlink:href="https://www.etalab.gouv.fr/licence-ouverte-open-licence/">Licence Ouverte 2.0</gmx:Anchor></gmd:otherConstraints></gmd:MD_LegalConstraints></gmd:resourceConstraints>
<gmd:language><gmd:LanguageCode codeList="http://www.loc.gov/standards/iso639-2/" codeListValue="fre">fre</gmd:LanguageCode></gmd:language>
<gmd:topicCategory><gmd:MD_TopicCategoryCode>transportation</gmd:MD_TopicCategoryCode></gmd:topicCategory>
<gmd:extent><gmd:EX_Extent><gmd:geographicElement><gmd:EX_GeographicBoundingBox><gmd:westBoundLongitude><gco:Decimal>${w}</gco:Decimal></gmd:westBoundLongitude><gmd:eastBoundLongitude><gco:Decimal>${(Number(w) + 0.5).toFixed(4)}</gco:Decimal></gmd:eastBoundLongitude><gmd:southBoundLatitude><gco:Decimal>${s}</gco:Decimal></gmd:southBoundLatitude><gmd:northBoundLatitude><gco:Decimal>${(Number(s) + 0.5).toFixed(4)}</gco:Decimal></gmd:northBoundLatitude></gmd:EX_GeographicBoundingBox></gmd:geographicElement></gmd:EX_Extent></gmd:extent>
</gmd:MD_DataIdentification></gmd:identificationInfo>
<gmd:distributionInfo><gmd:MD_Distribution><gmd:transferOptions><gmd:MD_DigitalTransferOptions>
<gmd:onLine><gmd:CI_OnlineResource><gmd:linkage><gmd:URL>https://data.example/wms?SERVICE=WMS&amp;REQUEST=GetCapabilities</gmd:URL></gmd:linkage><gmd:protocol>${cs('OGC:WMS')}</gmd:protocol><gmd:name>${cs(`layer_${i}`)}</gmd:name></gmd:CI_OnlineResource></gmd:onLine>
<gmd:onLine><gmd:CI_OnlineResource><gmd:linkage><gmd:URL>https://data.example/dl/${i}.zip</gmd:URL></gmd:linkage><gmd:protocol>${cs('WWW:DOWNLOAD-1.0-http--download')}</gmd:protocol><gmd:function>${code('CI_OnLineFunctionCode', 'download')}</gmd:function></gmd:CI_OnlineResource></gmd:onLine>
</gmd:MD_DigitalTransferOptions></gmd:transferOptions></gmd:MD_Distribution></gmd:distributionInfo>
<gmd:dataQualityInfo><gmd:DQ_DataQuality><gmd:scope><gmd:DQ_Scope><gmd:level>${code('MD_ScopeCode', 'dataset')}</gmd:level></gmd:DQ_Scope></gmd:scope>
${complete ? `<gmd:report><gmd:DQ_DomainConsistency><gmd:result><gmd:DQ_ConformanceResult><gmd:specification><gmd:CI_Citation><gmd:title>${cs('Règlement (UE) n° 1089/2010 de la Commission du 23 novembre 2010')}</gmd:title><gmd:date><gmd:CI_Date><gmd:date><gco:Date>2010-12-08</gco:Date></gmd:date><gmd:dateType>${code('CI_DateTypeCode', 'publication')}</gmd:dateType></gmd:CI_Date></gmd:date></gmd:CI_Citation></gmd:specification><gmd:explanation>${cs('Voir la spécification')}</gmd:explanation><gmd:pass><gco:Boolean>true</gco:Boolean></gmd:pass></gmd:DQ_ConformanceResult></gmd:result></gmd:DQ_DomainConsistency></gmd:report>` : ''}
<gmd:lineage><gmd:LI_Lineage><gmd:statement>${cs(`Numérisé en ${2000 + (i % 25)} à partir de ${pick()}.`)}</gmd:statement></gmd:LI_Lineage></gmd:lineage>
</gmd:DQ_DataQuality></gmd:dataQualityInfo>
</gmd:MD_Metadata>`;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'catalog-import-bench-'));
const files = [];
let bytes = 0;
for (let start = 0; start < N; start += PER_FILE) {
  const n = Math.min(PER_FILE, N - start);
  const body = `<?xml version="1.0" encoding="UTF-8"?>
<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" version="2.0.2"><csw:SearchStatus timestamp="2025-01-01T00:00:00Z"/>
<csw:SearchResults numberOfRecordsMatched="${N}" numberOfRecordsReturned="${n}" nextRecord="0">
${Array.from({ length: n }, (_, k) => record(start + k)).join('\n')}
</csw:SearchResults></csw:GetRecordsResponse>`;
  const f = path.join(dir, `records-${String(start).padStart(6, '0')}.xml`);
  writeFileSync(f, body);
  files.push(f);
  bytes += Buffer.byteLength(body);
}

const cluster = process.env.DATABASE_URL ? null : await ensureEmbeddedCluster((m) => console.error(m));
const url = process.env.DATABASE_URL ?? (await ensureDatabase(cluster, 'geodata_bench'));
const pool = createPool({ url, max: 2, statementTimeoutMs: 600000, log: pino({ level: 'warn' }) });
try {
  await pool.query('CREATE EXTENSION IF NOT EXISTS postgis');
  await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`);
  await migrateCatalog(pool, SCHEMA);
  global.gc?.();
  const before = process.memoryUsage();
  let peakRss = before.rss;
  let peakHeap = before.heapUsed;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }, 20);
  const perFile = [];
  const t0 = performance.now();
  let imported = 0;
  let warnings = 0;
  const errors = [];
  for (const f of files) {
    const t1 = performance.now();
    const [r] = await importMetadataFiles(pool, [f], SCHEMA);
    perFile.push(performance.now() - t1);
    imported += r.imported.length;
    warnings += r.warnings.length;
    errors.push(...r.errors);
  }
  const totalMs = performance.now() - t0;
  clearInterval(sampler);
  const stored = await pool.query(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE (quality->>'conformant')::boolean IS FALSE)::int AS failing FROM ${SCHEMA}.records`,
  );
  perFile.sort((a, b) => a - b);
  const mb = (b) => (b / 1024 / 1024).toFixed(1);
  const result = {
    records: N,
    files: files.length,
    inputMegabytes: mb(bytes),
    imported,
    stored: stored.rows[0].n,
    failingQuality: stored.rows[0].failing,
    qualityWarnings: warnings,
    errors: errors.slice(0, 5),
    totalMs: Math.round(totalMs),
    recordsPerSecond: Math.round((imported / totalMs) * 1000),
    perFileMs: { p50: Math.round(perFile[Math.floor(perFile.length / 2)]), max: Math.round(perFile[perFile.length - 1]) },
    memory: {
      rssBeforeMB: mb(before.rss),
      peakRssMB: mb(peakRss),
      peakHeapMB: mb(peakHeap),
      maxRssLifetimeMB: mb(process.resourceUsage().maxRSS * 1024),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  console.log(
    `\n| ISO 19139 import | ${N} records | ${result.totalMs} ms | ${result.recordsPerSecond} records/s | peak RSS ${result.memory.peakRssMB} MB (before ${result.memory.rssBeforeMB} MB) |`,
  );
  if (imported !== N || stored.rows[0].n !== N) process.exitCode = 1;
} finally {
  await pool.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
  if (cluster?.startedHere && !process.env.GEODATA_KEEP_DB) stopEmbeddedCluster(cluster);
}
