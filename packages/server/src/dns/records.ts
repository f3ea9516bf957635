/** Resource records as the answer builders produce them, before they are encoded. */

/** Names are lower-case, dotted, without the trailing dot; '' is the root. */
export type RecordData =
  | { type: 'A'; address: Buffer }
  | { type: 'AAAA'; address: Buffer }
  | { type: 'CNAME'; target: string }
  | { type: 'NS'; target: string }
  | { type: 'SRV'; priority: number; weight: number; port: number; target: string }
  | { type: 'TXT'; strings: readonly Buffer[] }
  | { type: 'SOA'; mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number };

export type RecordType = RecordData['type'];

export interface ResourceRecord {
  name: string;
  ttl: number;
  data: RecordData;
}

export interface Sections {
  answer: ResourceRecord[];
  authority: ResourceRecord[];
  additional: ResourceRecord[];
}

export const TYPE_CODE: Record<RecordType, number> = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, SRV: 33 };

export function emptySections(): Sections {
  return { answer: [], authority: [], additional: [] };
}
