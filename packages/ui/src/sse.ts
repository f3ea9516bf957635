/** One Server-Sent Event as the stream carries it. */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/**
 * Splits a text stream into events (the WHATWG rules: fields per line, a blank line ends an event,
 * `:` lines are comments). Fed chunk by chunk; keeps the unfinished tail between chunks.
 */
export class SseParser {
  private buf = '';
  private event = '';
  private data: string[] = [];
  private id: string | undefined;

  push(chunk: string, emit: (e: SseEvent) => void): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.search(/\r\n|\r|\n/)) >= 0) {
      // A CR at the very end may be the first half of a CRLF still in flight.
      if (nl === this.buf.length - 1 && this.buf[nl] === '\r') break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + (this.buf[nl] === '\r' && this.buf[nl + 1] === '\n' ? 2 : 1));
      if (line === '') {
        if (this.data.length > 0) emit({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
        this.event = '';
        this.data = [];
        this.id = undefined;
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') this.event = value;
      else if (field === 'data') this.data.push(value);
      else if (field === 'id') this.id = value;
    }
  }
}
