// Builds the console's dashboard script (Chart.js included) into one file the
// CRM serves from crm_backend/console/static/, and checks its size.
//
//   node build.mjs [--out PATH]

import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LIMIT_BYTES = 100 * 1024;
const outArg = process.argv.indexOf("--out");
const OUT = path.resolve(outArg > 0 ? process.argv[outArg + 1] : path.join(HERE, "..", "static", "dashboard.js"));

const pkg = JSON.parse(await readFile(path.join(HERE, "package.json"), "utf8"));
const chartjs = JSON.parse(await readFile(path.join(HERE, "node_modules", "chart.js", "package.json"), "utf8"));

const result = await esbuild.build({
  absWorkingDir: HERE,
  entryPoints: ["src/dashboard.js"],
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: "es2020",
  banner: { js: `/*! console dashboard ${pkg.version} | includes Chart.js ${chartjs.version} (MIT) */` },
  legalComments: "none",
  write: false,
  logLevel: "warning",
});

const code = result.outputFiles[0].contents;
await mkdir(path.dirname(OUT), { recursive: true });
await writeFile(OUT, code);

const gzipped = gzipSync(code, { level: 9 }).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
console.log(`dashboard: ${path.relative(process.cwd(), OUT)} ${kb(code.length)} raw, ${kb(gzipped)} gzipped (limit ${kb(LIMIT_BYTES)})`);
if (gzipped > LIMIT_BYTES) {
  console.error(`error: the dashboard script is ${kb(gzipped)} gzipped, over the ${kb(LIMIT_BYTES)} budget.`);
  process.exit(1);
}
