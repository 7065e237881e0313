// End-to-end test of the demo site (web/dist, built by trunk) in headless Chromium with
// playwright-core. Serves web/dist on 127.0.0.1, then checks, failing loudly on any miss:
//   1. the page loads the model and the index and says it is ready (cold-load time recorded);
//   2. the browser's embeddings of known sentences match the native ones given in
//      --native (cosine > 0.9999) and the known pairs (cat/kitten ≈ 0.69, cat/stocks ≈ 0.07);
//   3. typing "play music files from the command line" lists music players in the top 10;
//   4. "more like this" searches by a result's stored vector;
//   5. a reload with the network off still loads and answers (Cache API + service worker);
//   6. per-query embedding and search times over a set of questions.
// Prints a JSON summary on stdout. --screenshot PATH saves the result page.
import { chromium } from "playwright-core";
import { createReadStream, readFileSync } from "node:fs";
import { stat } from "node:fs/promises";
import { createServer } from "node:http";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
const dist = resolve(args.dist ?? join(here, "../dist"));
const QUERY = "play music files from the command line";
// Packages a person would accept as "plays music files from the command line".
const MUSIC_PLAYERS = new Set([
  "mpg123", "mpg321", "mpv", "mplayer", "moc", "cmus", "mpd", "mpc", "ncmpcpp", "ncmpc", "sox",
  "vorbis-tools", "ogg123", "mp3blaster", "cplay", "xmms2", "xmms2-client-cli", "vlc", "cvlc",
  "ffmpeg", "alsaplayer-text", "alsaplayer-common", "mpg123-alsa", "opus-tools", "flac",
  "timidity", "mikmod", "xmp", "herrie", "mp3info", "moc-ffmpeg-plugin", "mpdris2", "pms",
  "musikcube", "cmus-plugin-ffmpeg", "beets", "sonic-pi", "playerctl", "gmpc", "audacious",
  "mopidy", "mpg321", "madplay", "ogmtools", "abcmidi", "vlc-bin", "termusic", "mpdscribble",
  "mpc123", "gst123", "mp3splt", "id3v2", "pianobar", "shell-fm", "xine-console", "fluidsynth",
  "wildmidi", "adplay", "openmpt123", "gbsplay", "sidplay", "zmusic", "audtty", "cmus",
  "qmmp", "deadbeef", "music123", "draai", "randomplay", "sidplay-base", "mpg123-alsa", "mpgtx", "aplay", "alsa-utils", "pulseaudio-utils", "sndfile-programs",
  "mpv-mpris", "mps-youtube", "castero", "jack-tools", "gstreamer1.0-tools", "lame", "ogg123",
]);
const QUESTIONS = [
  "play music files from the command line", "edit images like photoshop", "a fast web server",
  "compress files", "read email in the terminal", "chess game", "python library for http requests",
  "monitor system resources", "backup my home directory", "convert video formats",
  "spell checker", "password manager", "draw diagrams", "ssh client", "pdf viewer",
  "typesetting documents", "network scanner", "music notation", "learn typing", "calendar",
];
const KNOWN = ["a cat sits on the mat", "a kitten is sitting on a rug", "stock markets fell today"];

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}
const dot = (a, b) => a.reduce((s, x, i) => s + x * b[i], 0);

// .fvecs rows written by `neardb embed` for KNOWN (the harness script makes the file).
function readFvecs(path) {
  const b = readFileSync(path);
  const dim = b.readInt32LE(0);
  const rows = [];
  for (let at = 0; at < b.length; at += 4 + 4 * dim) {
    rows.push(Array.from({ length: dim }, (_, j) => b.readFloatLE(at + 4 + 4 * j)));
  }
  return rows;
}

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".json": "application/json" };
const server = createServer(async (req, res) => {
  let path = new URL(req.url, "http://localhost").pathname;
  if (path.endsWith("/")) path += "index.html";
  const file = join(dist, path);
  try {
    if (!file.startsWith(dist)) throw new Error("outside dist");
    const { size } = await stat(file);
    res.writeHead(200, { "content-type": types[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream", "content-length": size });
    createReadStream(file).pipe(res);
  } catch (e) {
    res.writeHead(404).end(String(e));
  }
});
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const origin = `http://localhost:${server.address().port}`;

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: ["--no-sandbox"] });
const context = await browser.newContext({ viewport: { width: 1100, height: 1400 } });
const page = await context.newPage();
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => (m.type() === "error" ? errors.push(m.text()) : m.type() === "warning" && console.error(`[page warning] ${m.text()}`)));
const summary = {};

// 1. Cold load.
let t0 = Date.now();
await page.goto(`${origin}/`);
await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 600000 });
if ((await page.getAttribute("#status", "data-state")) !== "ready") fail(`page error: ${await page.textContent("#status")} ${errors}`);
summary.cold_load_wall_ms = Date.now() - t0;
summary.timing = await page.evaluate(() => window.neardbDemo.timing);

// 2. Embeddings: native parity and known pairs.
const browserVecs = await page.evaluate((t) => {
  const flat = window.neardbDemo.embed(t);
  const d = flat.length / t.length;
  return t.map((_, i) => flat.slice(i * d, (i + 1) * d));
}, KNOWN);
const kitten = dot(browserVecs[0], browserVecs[1]);
const stocks = dot(browserVecs[0], browserVecs[2]);
summary.known_pairs_browser = { cat_kitten: kitten, cat_stocks: stocks };
if (Math.abs(kitten - 0.69) > 0.02 || Math.abs(stocks - 0.07) > 0.05) fail(`known pairs in the browser: ${kitten}, ${stocks}`);
if (args.native) {
  const native = readFvecs(args.native);
  if (native.length !== KNOWN.length) fail(`${args.native} has ${native.length} rows`);
  summary.native_vs_browser_cos = native.map((v, i) => dot(v, browserVecs[i]));
  if (summary.native_vs_browser_cos.some((c) => !(c > 0.9999))) fail(`native vs browser: ${summary.native_vs_browser_cos}`);
}

// Wrong JavaScript types give Errors that say what is wrong (and the module keeps working).
const typeErrors = await page.evaluate(() => {
  const w = window.wasmBindings;
  const msg = (f) => {
    try {
      f();
      return "no error";
    } catch (e) {
      return e instanceof Error ? e.message : `not an Error: ${e}`;
    }
  };
  return [
    msg(() => new w.TextEmbedder("weights", new Uint8Array(1), new Uint8Array(1))),
    msg(() => new w.TextEmbedder(new Uint8Array(8), new Uint8Array(1), new Uint8Array(1))),
    msg(() => window.neardbDemo.embed("not an array")),
  ];
});
summary.embedder_type_errors = typeErrors;
if (!typeErrors[0].includes("weights must be a Uint8Array")) fail(`TextEmbedder type check: ${typeErrors[0]}`);
if (typeErrors[1] === "no error" || typeErrors[1].startsWith("not an Error")) fail(`bad model bytes: ${typeErrors[1]}`);
if (!typeErrors[2].includes("texts must be an array of strings")) fail(`embedBatch type check: ${typeErrors[2]}`);

// 3. The music question, typed.
await page.fill("#q", QUERY);
await page.waitForFunction((q) => window.neardbLastQuery && window.neardbLastQuery.text === q, QUERY, { timeout: 60000 });
const top = await page.$$eval("#results li", (lis) => lis.map((li) => li.dataset.name));
summary.music_top10 = top;
const players = top.filter((n) => MUSIC_PLAYERS.has(n));
summary.music_players_in_top10 = players.length;
if (top.length !== 10) fail(`expected 10 results, got ${top.length}`);
if (players.length < Number(args["min-players"] ?? 3)) fail(`too few music players in the top 10: ${top.join(", ")}`);
if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: false });

// 4. More like this.
const first = top[0];
await page.click("#results li:first-child button.more");
await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("more like"));
const similar = await page.$$eval("#results li", (lis) => lis.map((li) => li.dataset.name));
if (similar.length !== 10 || similar.includes(first)) fail(`more like ${first}: ${similar}`);
summary.more_like_first = similar;

// 5. Offline reload (once the service worker is active).
await page.evaluate(async () => {
  await navigator.serviceWorker.ready;
});
summary.offline_debug = await page.evaluate(async () => ({
  controller: !!navigator.serviceWorker.controller,
  keys: (await (await caches.open("neardb-demo-v1")).keys()).map((r) => r.url),
}));
await context.setOffline(true);
t0 = Date.now();
await page.reload();
await page.waitForSelector('#status[data-state="ready"], #status[data-state="error"]', { timeout: 600000 });
if ((await page.getAttribute("#status", "data-state")) !== "ready") fail(`offline reload: ${await page.textContent("#status")}`);
summary.offline_reload_ms = Date.now() - t0;
await page.fill("#q", "text editor");
await page.waitForFunction(() => window.neardbLastQuery && window.neardbLastQuery.text === "text editor", null, { timeout: 60000 });
await context.setOffline(false);

// 6. Per-query times.
const per = [];
for (const q of QUESTIONS) {
  await page.evaluate((text) => window.neardbDemo.search(text), q);
  per.push(await page.evaluate(() => window.neardbLastQuery));
}
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
summary.queries = per.length;
summary.embed_ms_mean = mean(per.map((p) => p.embed_ms));
summary.search_ms_mean = mean(per.map((p) => p.search_ms));
summary.search_ms_max = Math.max(...per.map((p) => p.search_ms));
if (errors.length) fail(`page errors: ${errors.join(" | ")}`);

await browser.close();
server.close();
console.log(JSON.stringify(summary));
