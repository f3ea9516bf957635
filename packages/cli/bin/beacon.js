#!/usr/bin/env node
import { main } from '../dist/main.js';

main(process.argv).catch((err) => {
  process.stderr.write(`beacon: ${err?.message ?? err}\n`);
  process.exit(1);
});
