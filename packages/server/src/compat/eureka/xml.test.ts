import { describe, expect, it } from 'vitest';
import { XMLValidator } from 'fast-xml-parser';
import { negotiate } from './negotiate.js';
import { toXml } from './xml.js';

describe('Eureka XML', () => {
  it('maps @attributes, $ text, arrays and the overridden status the way XStream writes them', () => {
    expect(toXml({ instance: { overriddenStatus: 'UNKNOWN', port: { $: 8080, '@enabled': 'true' }, metadata: { '@class': 'java.util.Collections$EmptyMap' }, tags: ['a', 'b'] } })).toBe(
      '<instance><overriddenstatus>UNKNOWN</overriddenstatus><port enabled="true">8080</port><metadata class="java.util.Collections$EmptyMap"/><tags>a</tags><tags>b</tags></instance>',
    );
  });

  it('stays well-formed whatever the values hold, and leaves out keys that are no XML name', () => {
    const out = toXml({ metadata: { ok: '<&>"\u0000\u001f\ud800', 'bad key': 'x', '1st': 'y', '@bad attr': 'z' } });
    expect(XMLValidator.validate(out)).toBe(true);
    expect(out).toBe('<metadata><ok>&lt;&amp;&gt;"\ufffd\ufffd\ufffd</ok></metadata>');
  });

  it('negotiates JSON or XML from Accept, JSON on ties and by default', () => {
    expect(negotiate(undefined)).toBe('json');
    expect(negotiate('*/*')).toBe('json');
    expect(negotiate('text/*')).toBe('xml');
    expect(negotiate('application/xml, application/json')).toBe('json');
    expect(negotiate('application/xml;q=1, application/json;q=0.9')).toBe('xml');
    expect(negotiate('*/*;q=0.1, text/xml')).toBe('xml');
    expect(negotiate('image/png')).toBeUndefined();
    expect(negotiate('*/*, application/json;q=0')).toBe('xml');
  });
});
