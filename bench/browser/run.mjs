// Runs bench.html in headless Chromium (playwright-core + Debian's chromium) and prints the
// result as one JSON line on stdout; progress goes to stderr. Files are served from disk by a
// small HTTP server on 127.0.0.1 (request interception ships bodies through the DevTools
// protocol and crashes on a 150 MB dataset), with the headers that make the page cross-origin
// isolated, so performance.now() has 5 µs resolution rather than 100 µs.
//
//   node run.mjs --data-dir ../../../shared/bench/data --data clustered-384-cos-100k [--metric cosine]
//                [--ef 16,32,64] [--index path/to/native.neardb] [--nq 1000]
//                [--storage f32|f16] [--layout insertion|graph]   (browser builds only)
//                [--filtered filtered --sel 0.1,0.01]   (filtered.py --export folder under the dataset)
import { chromium } from "playwright-core";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const dataDir = resolve(args["data-dir"] ?? join(repo, "../shared/bench/data"));
const query = new URLSearchParams();
for (const key of ["data", "metric", "m", "efc", "ef", "nq", "flat", "storage", "layout", "filtered", "sel"]) if (args[key]) query.set(key, args[key]);
if (args.index) query.set("index", "/index/file.neardb");

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };
function fileFor(path) {
  if (path === "/" || path === "/bench.html") return join(here, "bench.html");
  if (path === "/bench.js") return join(here, "bench.js");
  if (path.startsWith("/pkg-scalar/")) return join(repo, "wasm/pkg-scalar", path.slice(12));
  if (path.startsWith("/pkg/")) return join(repo, "wasm/pkg", path.slice(5));
  if (path.startsWith("/data/")) return join(dataDir, path.slice(6));
  if (path === "/index/file.neardb") return resolve(args.index);
  return null;
}

const server = createServer(async (req, res) => {
  const file = fileFor(new URL(req.url, "http://localhost").pathname);
  try {
    if (!file) throw new Error("no such file");
    const { size } = await stat(file);
    const ext = file.slice(file.lastIndexOf("."));
    res.writeHead(200, {
      "content-type": types[ext] ?? "application/octet-stream",
      "content-length": size,
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    });
    createReadStream(file).pipe(res);
  } catch (e) {
    res.writeHead(404).end(String(e));
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://localhost:${server.address().port}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
const page = await browser.newPage();
page.on("console", (m) => process.stderr.write(`[page] ${m.text()}\n`));
page.on("pageerror", (e) => process.stderr.write(`[page error] ${e}\n`));
page.on("crash", () => process.stderr.write("[page crashed]\n"));
await page.goto(`${origin}/bench.html?${query}`);
const result = await page.waitForFunction(() => window.__result, null, { timeout: 0, polling: 500 });
const value = await result.jsonValue();
await browser.close();
server.close();
console.log(JSON.stringify(value));
if (value.error) process.exit(1);
