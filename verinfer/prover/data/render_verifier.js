#!/usr/bin/env node
// Render snarkjs's own Groth16 Solidity template with a verification key, exactly as
// `snarkjs zkey export solidityverifier` does (ejs.render(template, vk)), for keys that have no
// .zkey (groth16py dev keys). usage: node render_verifier.js <node_modules> <vk.json> <out.sol>
"use strict";
const fs = require("fs");
const path = require("path");
const [nm, vkPath, outPath] = process.argv.slice(2);
const ejs = require(path.join(nm, "ejs"));
const template = fs.readFileSync(path.join(nm, "snarkjs", "templates", "verifier_groth16.sol.ejs"), "utf8");
const vk = JSON.parse(fs.readFileSync(vkPath, "utf8"));
if (vk.protocol !== "groth16") { process.stderr.write("not a groth16 verification key\n"); process.exit(1); }
fs.writeFileSync(outPath, ejs.render(template, vk));
