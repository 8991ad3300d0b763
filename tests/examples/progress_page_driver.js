// Runs the progress page's own script (examples/demo/static/progress.js) in Node against a
// live demo server, with a minimal DOM: clicks #start and waits for both bars to reach 100%.
// Usage: node --experimental-websocket --experimental-eventsource progress_page_driver.js BASE SCRIPT
"use strict";
const fs = require("node:fs");
const vm = require("node:vm");

const [base, scriptPath] = process.argv.slice(2);
const elements = {};
const history = { ws: [], sse: [] };
let ready = null;

function element(id) {
  if (!elements[id]) {
    const listeners = {};
    let text = "";
    elements[id] = {
      id, value: id === "steps" ? "5" : 0, listeners,
      addEventListener(type, fn) { listeners[type] = fn; },
      get textContent() { return text; },
      set textContent(v) {
        text = String(v);
        if (id === "pct-ws" || id === "pct-sse") history[id.slice(4)].push(text);
      },
    };
  }
  return elements[id];
}

const realFetch = globalThis.fetch;
const context = {
  document: {
    getElementById: element,
    addEventListener(type, fn) { if (type === "DOMContentLoaded") ready = fn; },
  },
  location: new URL("/progress", base),
  fetch: (url, options) => realFetch(new URL(url, base), options),
  WebSocket, EventSource, URL, JSON, Math, Set, setTimeout, encodeURIComponent, console,
};
vm.createContext(context);
vm.runInContext(fs.readFileSync(scriptPath, "utf8"), context);

(async () => {
  ready();
  await element("start").listeners.click();
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline) {
    if (element("state-ws").textContent === "completed" &&
        element("state-sse").textContent === "completed") break;
    await new Promise((r) => setTimeout(r, 20));
  }
  const result = {
    jobId: element("job-id").textContent, error: element("error").textContent,
    ws: { pct: element("pct-ws").textContent, bar: element("bar-ws").value,
          state: element("state-ws").textContent },
    sse: { pct: element("pct-sse").textContent, bar: element("bar-sse").value,
           state: element("state-sse").textContent },
    history,
  };
  console.log(JSON.stringify(result));
  process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
