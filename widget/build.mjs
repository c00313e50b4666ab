// Builds the widget into one file the CRM backend serves as /widget.js, and
// checks its size: < 40 KB gzipped, socket.io-client included.
//
//   node build.mjs [--out PATH]

import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const LIMIT_BYTES = 40 * 1024;
const outArg = process.argv.indexOf("--out");
const OUT = path.resolve(
  outArg > 0 ? process.argv[outArg + 1] : path.join(HERE, "..", "crm_backend", "pages", "static", "widget.js"),
);
// Browsers of the last few years; the stylesheet is lowered for the same ones.
const JS_TARGET = "es2020";
const CSS_TARGETS = ["chrome90", "edge90", "firefox90", "safari14"];

const pkg = JSON.parse(await readFile(path.join(HERE, "package.json"), "utf8"));

// `import css from "./styles.css"` gives the minified stylesheet as a string,
// for the shadow root's <style>.
const cssAsText = {
  name: "css-as-text",
  setup(build) {
    build.onLoad({ filter: /\.css$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const { code } = await esbuild.transform(source, { loader: "css", minify: true, target: CSS_TARGETS });
      return { contents: code.trim(), loader: "text" };
    });
  },
};

const result = await esbuild.build({
  absWorkingDir: HERE,
  entryPoints: ["src/index.js"],
  bundle: true,
  minify: true,
  format: "iife",
  platform: "browser",
  target: JS_TARGET,
  define: { __WIDGET_VERSION__: JSON.stringify(pkg.version) },
  banner: { js: `/*! helpdesk chat widget ${pkg.version} | includes socket.io-client (MIT) */` },
  legalComments: "none",
  plugins: [cssAsText],
  write: false,
  logLevel: "warning",
});

const code = result.outputFiles[0].contents;
await mkdir(path.dirname(OUT), { recursive: true });
await writeFile(OUT, code);

const gzipped = gzipSync(code, { level: 9 }).length;
const kb = (bytes) => `${(bytes / 1024).toFixed(1)} KB`;
console.log(
  `widget: ${path.relative(process.cwd(), OUT)} ${kb(code.length)} raw, ${kb(gzipped)} gzipped (limit ${kb(LIMIT_BYTES)})`,
);
if (gzipped > LIMIT_BYTES) {
  console.error(`error: the widget is ${kb(gzipped)} gzipped, over the ${kb(LIMIT_BYTES)} budget.`);
  process.exit(1);
}
