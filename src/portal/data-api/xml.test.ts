import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { XMLParser } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import type { CitizenPersonalData } from '../citizens/citizen.js';
import { PORTAL_PERSONAS } from '../personas.js';
import type { CitizenOrder, CitizenPayment } from './citizen-record.js';
import { demoRecordsFor } from './citizen-records.service.js';
import {
  fieldsReturned,
  requiredScopeFor,
  resourceJson,
  type DataResource,
  type ResourceInput,
} from './resources.js';
import { CITIZEN_SCOPES, DATA_RESOURCES } from './scope-catalog.js';
import { DATA_API_NAMESPACE, XML_LAYOUT, escapeXmlText, toXml } from './xml.js';

const XSD_FILE = path.resolve(import.meta.dirname, '../../../docs/schemas/data-api.xsd');
const XSD = readFileSync(XSD_FILE, 'utf8');

/** Validates several documents in one xmllint run (each run costs tens of milliseconds). */
async function schemaErrors(documents: readonly string[]): Promise<string[]> {
  if (documents.length === 0) return [];
  const result = await validateXML({
    xml: documents.map((contents, i) => ({ fileName: `doc${i}.xml`, contents })),
    schema: [{ fileName: 'data-api.xsd', contents: XSD }],
  });
  return result.valid ? [] : result.errors.map((e) => e.rawMessage);
}

const ITEMS = new Set(Object.values(XML_LAYOUT).flatMap((l) => (l.item ? [l.item] : [])));
const parser = new XMLParser({
  parseTagValue: false,
  trimValues: false,
  htmlEntities: true,
  ignoreAttributes: false,
  removeNSPrefix: true,
  isArray: (name) => ITEMS.has(name),
});

/** The XML read back into the JSON shape: fields as strings, lists as arrays. */
function readBack(resource: DataResource, xml: string): Record<string, unknown> {
  const layout = XML_LAYOUT[resource];
  const doc = parser.parse(xml) as Record<string, Record<string, unknown>>;
  const root = doc[layout.root]!;
  const clean = (o: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(o).filter(([k]) => layout.fields.includes(k)));
  if (!layout.item) return clean(root);
  const items = (root[layout.item] as Record<string, unknown>[] | undefined) ?? [];
  return { size: Number(root['@_size']), elements: items.map(clean) };
}

/** The JSON with every value as the text XML carries. */
function asText(json: unknown): Record<string, unknown> {
  const value = json as Record<string, unknown>;
  if (Array.isArray(value.elements)) {
    return {
      size: value.size,
      elements: (value.elements as Record<string, unknown>[]).map(asText),
    };
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, String(v)]));
}

function input(
  scopes: Iterable<string>,
  personal: CitizenPersonalData,
  records: { orders: CitizenOrder[]; payments: CitizenPayment[] },
): ResourceInput {
  return {
    oid: 'sub-7f3a',
    personal,
    ...records,
    grantedScopes: new Set(scopes),
    confirmed: { phone: true, email: false },
  };
}

const PERSONAS = [
  { personal: PORTAL_PERSONAS[0]!.personal, records: demoRecordsFor('Иванов') },
  { personal: PORTAL_PERSONAS[1]!.personal, records: demoRecordsFor('Петрова') },
];

function allGranted(scopes: Set<string>, i: ResourceInput) {
  return DATA_RESOURCES.filter((r) => scopes.has(requiredScopeFor(r))).map((resource) => ({
    resource,
    xml: toXml(resource, resourceJson(resource, i)),
  }));
}

describe('XML representation', () => {
  it('validates against docs/schemas/data-api.xsd for every resource', async () => {
    const docs = PERSONAS.flatMap(({ personal, records }) =>
      allGranted(new Set(CITIZEN_SCOPES), input(CITIZEN_SCOPES, personal, records)),
    );
    expect(docs).toHaveLength(12);
    expect(await schemaErrors(docs.map((d) => d.xml))).toEqual([]);
    // Петрова has no payments: an empty list is valid too.
    expect(docs.at(-1)!.xml).toContain('<payments xmlns="urn:soglasie:data-api:1" size="0">');
  });

  it('has a schema that rejects what it should', async () => {
    const person = toXml(
      'person',
      resourceJson('person', input(CITIZEN_SCOPES, PERSONAS[0]!.personal, PERSONAS[0]!.records)),
    );
    const broken = [
      person.replace(/<snils>[^<]*<\/snils>/, '<snils>12345</snils>'),
      person.replace('<trusted>', '<secret>x</secret><trusted>'),
      person.replace(DATA_API_NAMESPACE, 'urn:other'),
      person.replace(/<oid>[^<]*<\/oid>\s*/, ''),
      person.replace(/(<lastName>[^<]*<\/lastName>)\s*(<firstName>[^<]*<\/firstName>)/, '$2$1'),
    ];
    for (const xml of broken) {
      expect(xml).not.toBe(person);
      expect(await schemaErrors([xml]), xml).not.toEqual([]);
    }
  });

  it('validates for any subset of granted scopes and reads back as the JSON', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.subarray([...CITIZEN_SCOPES]),
        fc.constantFrom(...PERSONAS),
        async (picked, { personal, records }) => {
          const scopes = new Set<string>(['openid', ...picked]);
          const i = input(scopes, personal, records);
          const docs = allGranted(scopes, i);
          expect(await schemaErrors(docs.map((d) => d.xml))).toEqual([]);
          for (const { resource, xml } of docs) {
            const back = readBack(resource, xml);
            expect(back, resource).toEqual(asText(resourceJson(resource, i)));
            const names = Object.keys(
              XML_LAYOUT[resource].item ? ((back.elements as object[])[0] ?? {}) : back,
            );
            for (const name of names) expect(fieldsReturned(resource, scopes)).toContain(name);
          }
        },
      ),
      { numRuns: 25 },
    );
  });

  it('escapes hostile values so that they read back unchanged', async () => {
    const hostile = `<script>alert("x")</script> & 'quoted' ]]> &amp; <!-- -->`;
    const { personal, records } = PERSONAS[0]!;
    const evil: CitizenPersonalData = {
      ...personal,
      lastName: hostile,
      addresses: { registration: `119019, ${hostile}`, residence: `${hostile}\r\nкв. 5` },
      passport: { ...personal.passport, issuedBy: hostile },
    };
    const evilRecords = {
      orders: records.orders.map((o) => ({ ...o, serviceName: hostile })),
      payments: records.payments.map((p) => ({ ...p, payer: hostile })),
    };
    const i = input(CITIZEN_SCOPES, evil, evilRecords);
    const docs = allGranted(new Set(CITIZEN_SCOPES), i);
    expect(await schemaErrors(docs.map((d) => d.xml))).toEqual([]);
    for (const { resource, xml } of docs) {
      expect(xml).not.toContain('<script>');
      expect(xml).not.toContain('<!--');
      expect(readBack(resource, xml)).toEqual(asText(resourceJson(resource, i)));
    }
    const addrs = docs.find((d) => d.resource === 'addrs')!.xml;
    expect(addrs).toContain(
      '&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &apos;quoted&apos; ]]&gt; &amp;amp;',
    );
    expect(addrs).toContain('&#xD;\nкв. 5');
  });

  it('keeps any text readable, replacing only what XML cannot carry', async () => {
    const notXml = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
    const { personal, records } = PERSONAS[0]!;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { minLength: 3, maxLength: 3 }),
        async ([name, address, issuer]) => {
          const i = input(
            CITIZEN_SCOPES,
            {
              ...personal,
              firstName: name!,
              addresses: { registration: address! },
              passport: { ...personal.passport, issuedBy: issuer! },
            },
            records,
          );
          const docs = allGranted(new Set(['openid', 'fullname', 'addresses', 'id_doc']), i);
          expect(await schemaErrors(docs.map((d) => d.xml))).toEqual([]);
          const person = readBack('person', docs[0]!.xml);
          expect(person.firstName).toBe(name!.replace(notXml, '\uFFFD'));
        },
      ),
      { numRuns: 20 },
    );
  });

  it('documents only XML that the schema accepts', async () => {
    const guide = readFileSync(path.resolve(XSD_FILE, '../../data-api.md'), 'utf8');
    const examples = [...guide.matchAll(/```xml\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(examples.length).toBeGreaterThan(0);
    expect(await schemaErrors(examples)).toEqual([]);
  });

  it('refuses JSON with a field the schema has no place for', () => {
    expect(() => toXml('person', { oid: 'x', trusted: true, password: 'x' } as never)).toThrow(
      TypeError,
    );
  });

  it('lays out exactly the fields the catalog opens', () => {
    const granted = new Set<string>(CITIZEN_SCOPES);
    for (const resource of DATA_RESOURCES) {
      expect([...XML_LAYOUT[resource].fields].sort(), resource).toEqual(
        fieldsReturned(resource, granted).sort(),
      );
    }
    expect(escapeXmlText('a\u0000b\uFFFEc\uD800')).toBe('a\uFFFDb\uFFFDc\uFFFD');
  });
});
