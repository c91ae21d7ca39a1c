import type { DataResource, EsiaList, ResourceJsonMap } from './resources.js';

/**
 * The data API's XML representation (`Accept: application/xml`): the same data as the
 * JSON, in namespace urn:soglasie:data-api:1, described by docs/schemas/data-api.xsd.
 * Lists carry their size as an attribute and one child element per item; JSON's
 * `stateFacts` has no XML counterpart. Children come in the schema's order whatever the
 * JSON key order.
 */
export const DATA_API_NAMESPACE = 'urn:soglasie:data-api:1';

interface Layout {
  root: string;
  /** Element name of each list item; undefined for the person, which is not a list. */
  item?: string;
  fields: readonly string[];
}

/** Element names and order; must match the XSD (the tests validate against it). */
export const XML_LAYOUT: Readonly<Record<DataResource, Layout>> = {
  person: {
    root: 'person',
    fields: [
      'oid',
      'trusted',
      'lastName',
      'firstName',
      'middleName',
      'birthDate',
      'gender',
      'snils',
      'inn',
    ],
  },
  docs: {
    root: 'documents',
    item: 'document',
    fields: ['type', 'series', 'number', 'issueDate', 'issuedBy', 'issueId'],
  },
  addrs: { root: 'addresses', item: 'address', fields: ['type', 'addressStr', 'zipCode'] },
  ctts: { root: 'contacts', item: 'contact', fields: ['type', 'value', 'vrfStu'] },
  orders: {
    root: 'orders',
    item: 'order',
    fields: [
      'number',
      'serviceName',
      'status',
      'statusText',
      'submittedAt',
      'updatedAt',
      'certificateNumber',
    ],
  },
  payments: {
    root: 'payments',
    item: 'payment',
    fields: ['id', 'kind', 'name', 'amount', 'currency', 'paidAt', 'payer'],
  },
};

/**
 * Characters XML 1.0 cannot carry at all, not even as references (most C0 controls, lone
 * surrogates, U+FFFE/U+FFFF). They become U+FFFD rather than making the document invalid.
 */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  // A raw CR would be turned into LF by every XML parser; a reference survives.
  '\r': '&#xD;',
};

/** Text content, escaped so that any string reads back unchanged (save the above). */
export function escapeXmlText(value: string): string {
  return value.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"'\r]/g, (c) => ESCAPES[c]!);
}

function scalar(value: unknown, where: string): string {
  if (typeof value === 'string') return escapeXmlText(value);
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new TypeError(`toXml: ${where} is not a string, boolean or number`);
}

function fieldsXml(
  object: Readonly<Record<string, unknown>>,
  fields: readonly string[],
  indent: string,
  where: string,
): string {
  for (const key of Object.keys(object)) {
    if (!fields.includes(key)) throw new TypeError(`toXml: ${where} has no place for ${key}`);
  }
  let out = '';
  for (const field of fields) {
    const value = object[field];
    if (value === undefined) continue;
    out += `${indent}<${field}>${scalar(value, `${where}.${field}`)}</${field}>\n`;
  }
  return out;
}

/** Renders a resource's JSON representation (resources.ts) as an XML document. */
export function toXml<R extends DataResource>(resource: R, json: ResourceJsonMap[R]): string {
  const layout = XML_LAYOUT[resource];
  if (!layout) throw new TypeError(`toXml: unknown data resource ${String(resource)}`);
  let body: string;
  let attributes = '';
  if (layout.item === undefined) {
    body = fieldsXml(json as unknown as Record<string, unknown>, layout.fields, '  ', layout.root);
  } else {
    const { elements } = json as unknown as EsiaList<Record<string, unknown>>;
    if (!Array.isArray(elements)) throw new TypeError(`toXml: ${resource} is not a list`);
    attributes = ` size="${elements.length}"`;
    body = elements
      .map(
        (element, i) =>
          `  <${layout.item}>\n` +
          fieldsXml(element, layout.fields, '    ', `${layout.root}[${i}]`) +
          `  </${layout.item}>\n`,
      )
      .join('');
  }
  return (
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<${layout.root} xmlns="${DATA_API_NAMESPACE}"${attributes}>\n${body}</${layout.root}>\n`
  );
}
