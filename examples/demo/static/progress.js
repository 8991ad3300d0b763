// The progress page: start a job, follow it over WebSocket and over SSE.
// No inline script anywhere, so the page runs under a strict Content-Security-Policy.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const TERMINAL = new Set(["completed", "failed", "cancelled"]);
  let generation = 0; // a new job makes the streams of the previous one stop updating

  function show(kind, update) {
    const progress = update.progress;
    let percent = 0;
    if (update.state === "completed") {
      percent = 100;
    } else if (progress && progress.percent !== null && progress.percent !== undefined) {
      percent = Math.floor(progress.percent);
    }
    $("bar-" + kind).value = percent;
    $("pct-" + kind).textContent = percent + "%";
    $("state-" + kind).textContent = update.state;
  }

  function reset() {
    for (const kind of ["ws", "sse"]) {
      show(kind, { state: "idle", progress: null });
    }
    $("error").textContent = "";
  }

  // Same origin as the page, whatever host name the server believes it has.
  function sameOrigin(url, protocol) {
    const path = new URL(url, location.href).pathname;
    return protocol + "//" + location.host + path;
  }

  function followWebSocket(url, mine) {
    let finished = false;
    let delay = 250;
    const open = () => {
      const socket = new WebSocket(url);
      socket.addEventListener("message", (event) => {
        const message = JSON.parse(event.data);
        if (message.type !== "job" || mine !== generation) return;
        delay = 250;
        show("ws", message);
        if (TERMINAL.has(message.state)) finished = true;
      });
      socket.addEventListener("close", (event) => {
        // Reconnecting resumes: the server starts every connection with the current state.
        if (!finished && event.code !== 4404 && mine === generation) {
          setTimeout(open, delay);
          delay = Math.min(delay * 2, 5000);
        }
      });
    };
    open();
  }

  function followEvents(url, mine) {
    // EventSource reconnects by itself and sends Last-Event-ID, so the stream resumes.
    const source = new EventSource(url);
    source.addEventListener("job", (event) => {
      if (mine !== generation) {
        source.close();
        return;
      }
      const update = JSON.parse(event.data);
      show("sse", update);
      if (TERMINAL.has(update.state)) source.close();
    });
  }

  async function start() {
    reset();
    const mine = ++generation;
    const steps = encodeURIComponent($("steps").value || "10");
    let response;
    try {
      response = await fetch("/long-jobs?steps=" + steps, { method: "POST" });
    } catch (error) {
      $("error").textContent = "could not reach the server: " + error;
      return;
    }
    if (response.status !== 202) {
      $("error").textContent = "the server refused: HTTP " + response.status;
      return;
    }
    const job = await response.json();
    $("job-id").textContent = job.id;
    const wsProtocol = location.protocol === "https:" ? "wss:" : "ws:";
    followWebSocket(sameOrigin(job.websocket_url, wsProtocol), mine);
    followEvents(sameOrigin(job.events_url, location.protocol), mine);
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("start").addEventListener("click", start);
  });
})();
