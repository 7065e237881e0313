// Offline support: every same-origin GET is answered from the cache when present and stored
// after a successful fetch. The big assets (model, index) are cached by app.js itself with
// progress; this worker makes the page, its script and the WebAssembly load offline too.
const CACHE = "neardb-demo-v1";

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));
self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  e.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        // Network first for the page and code (so a rebuilt site shows up), cache as fallback.
        const fresh = await fetch(e.request);
        if (fresh.ok && !url.pathname.includes("/assets/")) await cache.put(e.request, fresh.clone());
        return fresh;
      } catch (err) {
        const hit = await cache.match(e.request);
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});
