/** The metadata quality report of a catalogue record and its declared conformity (see inspire.ts, vocab.ts). */

export interface QualityCheck {
  /** Stable id (the test of the INSPIRE ATS for metadata 2.0 it follows). */
  id: string;
  /** TG MD 2.0 requirement ('C.17', '1.4', …) when it has a number. */
  req?: string;
  title: string;
  /** warn: not verified (a value of an EU table the embedded subset does not hold). */
  status: 'pass' | 'fail' | 'warn';
  /** What is missing or wrong (failures only). */
  detail?: string;
}

export interface QualityReport {
  /** What was checked: the INSPIRE TG for ISO 19139 metadata 2.0, or DCAT-AP 3.0.1's controlled vocabularies. */
  profile: 'INSPIRE-TG-MD-2.0' | 'DCAT-AP-3.0.1-vocabularies';
  /** The record's resource type (hierarchyLevel): dataset, series, service, nonGeographicDataset. */
  scope: string;
  /** True when every check passed. */
  conformant: boolean;
  /** Ids of the failed checks. */
  failed: string[];
  checks: QualityCheck[];
}

/** A declared degree of conformity (gmd:DQ_ConformanceResult). */
export interface Conformity {
  title: string;
  /** The specification's URI (gmx:Anchor) when it has one. */
  href?: string;
  date?: string;
  /** true / false, or null for "not evaluated" (gmd:pass gco:nilReason="unknown"). */
  pass: boolean | null;
}
