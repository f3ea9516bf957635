#!/usr/bin/env node
// The baseline for the query benchmark, in its own process: a bare node:http server that answers
// every GET under /api/v1/services/ with the very bytes and headers Beacon answered (a prebuilt
// Buffer, no routing framework, no serialisation). Prints `ready <port>`; stops on SIGTERM.
import { createServer } from 'node:http';
import { readFileSync } from 'node:fs';

const [file, portArg] = process.argv.slice(2);
const answer = JSON.parse(readFileSync(file, 'utf8'));
const body = Buffer.from(answer.body, 'base64');
const headers = { ...answer.headers, 'content-length': String(body.length) };
const notFound = Buffer.from('{"error":{"code":"not_found","message":"no such route"}}');

const server = createServer((req, res) => {
  if (req.method === 'GET' && req.url.startsWith('/api/v1/services/')) {
    res.writeHead(200, headers);
    res.end(body);
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json; charset=utf-8', 'content-length': String(notFound.length) });
  res.end(notFound);
});
// Fastify's default, so both servers keep idle connections alike.
server.keepAliveTimeout = 72_000;
server.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
const stop = () => server.close(() => process.exit(0)) && server.closeAllConnections();
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
