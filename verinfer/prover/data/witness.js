#!/usr/bin/env node
// Compute circom witnesses (.wtns) for a batch of inputs with ONE load of the circuit's wasm.
// usage: node witness.js <witness_calculator.js> <circuit.wasm> <jobs.json>
//   jobs.json: [{"input": {...signals...}, "wtns": "/path/out.wtns"}, ...]
// Exit 1 with the calculator's message (e.g. a failed assert) on the first failing job.
"use strict";
const fs = require("fs");
const [calcPath, wasmPath, jobsPath] = process.argv.slice(2);
const builder = require(calcPath);
(async () => {
  const calc = await builder(fs.readFileSync(wasmPath));
  const jobs = JSON.parse(fs.readFileSync(jobsPath, "utf8"));
  for (const job of jobs) {
    const buf = await calc.calculateWTNSBin(job.input, 0);
    fs.writeFileSync(job.wtns, buf);
  }
})().catch((e) => {
  process.stderr.write(String(e && e.message ? e.message : e) + "\n");
  process.exit(1);
});
