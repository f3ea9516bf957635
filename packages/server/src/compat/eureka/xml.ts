import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { errors } from '@beacon/core';

/**
 * Eureka's XML documents, written from the same document objects as its JSON. Eureka's JSON is
 * XStream's mapping of the XML, so the way back is mechanical: `@name` keys are attributes, `$` is
 * the element's text, arrays repeat their element, objects nest. The one name that differs is
 * the overridden status, `overriddenStatus` in JSON and `overriddenstatus` in XML.
 */

const XML_NAMES: Record<string, string> = { overriddenStatus: 'overriddenstatus' };

/** Element names XML allows (ASCII subset): a metadata key outside it has no XML spelling and is left out. */
const NAME_RE = /^[A-Za-z_][A-Za-z0-9._-]*$/;

/** Characters XML 1.0 cannot carry at all, even escaped; replaced so the document stays well-formed. */
// eslint-disable-next-line no-control-regex
const INVALID_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeText(s: string): string {
  return s.replace(INVALID_CHARS, '\uFFFD').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(s: string): string {
  return escapeText(s).replace(/"/g, '&quot;').replace(/\r/g, '&#13;').replace(/\n/g, '&#10;').replace(/\t/g, '&#9;');
}

function scalar(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

function element(name: string, value: unknown, out: string[]): void {
  if (value === undefined || value === null) return;
  const tag = XML_NAMES[name] ?? name;
  if (!NAME_RE.test(tag)) return;
  if (Array.isArray(value)) {
    for (const v of value) element(name, v, out);
    return;
  }
  const text = scalar(value);
  if (text !== undefined) {
    out.push(`<${tag}>${escapeText(text)}</${tag}>`);
    return;
  }
  let attrs = '';
  const body: string[] = [];
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (k.startsWith('@')) {
      const s = scalar(v);
      if (s !== undefined && NAME_RE.test(k.slice(1))) attrs += ` ${k.slice(1)}="${escapeAttr(s)}"`;
    } else if (k === '$') {
      const s = scalar(v);
      if (s !== undefined) body.push(escapeText(s));
    } else {
      element(k, v, body);
    }
  }
  out.push(body.length ? `<${tag}${attrs}>${body.join('')}</${tag}>` : `<${tag}${attrs}/>`);
}

/** `{applications: {…}}` → `<applications>…</applications>`: the document's one top-level key is the root element. */
export function toXml(doc: Record<string, unknown>): string {
  // No XML declaration: XStream, which writes Eureka's XML, leaves it out too.
  const out: string[] = [];
  for (const [k, v] of Object.entries(doc)) element(k, v, out);
  return out.join('');
}

/** The objects of an instance document that an empty element (`<metadata/>`) stands for. */
const OBJECT_ELEMENTS = new Set(['metadata', 'leaseInfo', 'dataCenterInfo']);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  textNodeName: '$',
  // Values stay strings, as in Eureka's XML; the registration reader is lenient about numbers.
  parseTagValue: false,
  parseAttributeValue: false,
  htmlEntities: false,
  processEntities: true,
});

/**
 * A registration body in XML (`<instance>…</instance>`, what Java clients send when configured
 * for XML), read into the same shape as Eureka's JSON: `@name` attributes, `$` text. A DOCTYPE is
 * refused outright, so no entity can be declared, expanded or fetched.
 */
export function parseXmlBody(body: string): Record<string, unknown> {
  if (/<!DOCTYPE/i.test(body)) throw errors.invalid('XML bodies with a DOCTYPE are not accepted');
  const valid = XMLValidator.validate(body);
  if (valid !== true) throw errors.invalid(`body is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  const doc = parser.parse(body) as Record<string, unknown>;
  const inst = doc.instance;
  if (inst === '' || inst === undefined) throw errors.invalid('body must be an <instance> document');
  if (typeof inst === 'object' && inst !== null)
    for (const k of OBJECT_ELEMENTS) if ((inst as Record<string, unknown>)[k] === '') (inst as Record<string, unknown>)[k] = {};
  return doc;
}
