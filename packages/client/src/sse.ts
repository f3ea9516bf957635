/** One Server-Sent Event. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

const LF = 10;
const CR = 13;

/**
 * Parses a text/event-stream body into events (WHATWG rules: `event:`, `data:` lines joined by
 * newlines, `id:`, comments ignored, dispatch on a blank line; CRLF, CR and LF all end a line).
 *
 * Linear in the body's size however it is chunked: each decoded chunk is scanned once, and the
 * pieces of a line that spans chunks (a multi-megabyte `reset` event) are kept apart and joined
 * once when its end arrives — never appended to one growing buffer and rescanned per chunk.
 *
 * @example
 * for await (const ev of parseSse(res.body)) console.log(ev.event, ev.data.length);
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseEvent> {
  const decoder = new TextDecoder();
  // The current line's text from earlier chunks (it has no end yet).
  const pending: string[] = [];
  // The previous chunk ended in CR: a LF at the start of this one belongs to it.
  let afterCr = false;
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  for await (const chunk of body) {
    const text = decoder.decode(chunk, { stream: true });
    if (text === '') continue;
    let start = 0;
    if (afterCr && text.charCodeAt(0) === LF) start = 1;
    afterCr = false;
    // Next CR and LF at or after `start` (-1: none left in this chunk), each found once per chunk pass.
    let cr = text.indexOf('\r', start);
    let lf = text.indexOf('\n', start);
    while (cr >= 0 || lf >= 0) {
      const end = cr < 0 ? lf : lf < 0 ? cr : Math.min(cr, lf);
      let line = text.slice(start, end);
      if (pending.length) {
        pending.push(line);
        line = pending.join('');
        pending.length = 0;
      }
      start = end + 1;
      if (text.charCodeAt(end) === CR) {
        if (end + 1 === text.length) afterCr = true;
        else if (text.charCodeAt(end + 1) === LF) start++;
      }
      if (cr >= 0 && cr < start) cr = text.indexOf('\r', start);
      if (lf >= 0 && lf < start) lf = text.indexOf('\n', start);

      if (line === '') {
        if (data.length) {
          const e: SseEvent = { event: event || 'message', data: data.join('\n') };
          if (id !== undefined) e.id = id;
          yield e;
        }
        event = '';
        data = [];
        continue;
      }
      if (line.charCodeAt(0) === 58 /* : */) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.charCodeAt(0) === 32 /* space */) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else if (field === 'id') id = value;
    }
    if (start < text.length) pending.push(start === 0 ? text : text.slice(start));
  }
}
