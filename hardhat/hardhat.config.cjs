// Hardhat 2 build of the verinfer kit, fully offline.
// - Compiler: the repository's solc-js (node_modules/solc, WebAssembly); the download step is replaced, so
//   Hardhat never fetches a compiler list or binary.
// - Imports: `verinfer/...` is remapped to lib/verinfer-src/ (a link to the repository's contracts/src; no
//   link cycle). In your own project: a git submodule at lib/verinfer and "verinfer/": "lib/verinfer/contracts/src/".
// Run: npm ci --prefix hardhat && npx --prefix hardhat hardhat --config hardhat/hardhat.config.cjs compile
const path = require("path");
const { subtask } = require("hardhat/config");
const {
  TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD,
  TASK_COMPILE_GET_REMAPPINGS,
} = require("hardhat/builtin-tasks/task-names");

const SOLCJS = path.resolve(__dirname, "..", "node_modules", "solc");
const SOLC_VERSION = require(path.join(SOLCJS, "package.json")).version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async ({ solcVersion }) => {
  if (solcVersion !== SOLC_VERSION) {
    throw new Error(`only solc-js ${SOLC_VERSION} is available offline (config asks ${solcVersion})`);
  }
  return {
    compilerPath: path.join(SOLCJS, "soljson.js"),
    isSolcJs: true,
    version: SOLC_VERSION,
    longVersion: require(SOLCJS).version(),
  };
});

subtask(TASK_COMPILE_GET_REMAPPINGS, async () => ({ "verinfer/": "lib/verinfer-src/" }));

module.exports = {
  solidity: {
    version: SOLC_VERSION,
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: "cancun" },
  },
  paths: { sources: "contracts", artifacts: "artifacts", cache: "cache" },
};
