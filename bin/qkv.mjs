#!/usr/bin/env node
// The qkv CLI (and every member process: `qkv serve`) runs the compiled JavaScript in dist/,
// which `npm run build` writes from src/ (`npm start` and `npm test` build it first).
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('qkv: dist/ is not built: run `npm run build` first\n');
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
