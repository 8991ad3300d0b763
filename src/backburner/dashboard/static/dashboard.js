// Backburner dashboard: live refresh, confirmations, selection, live progress.
// No inline script or handler anywhere (the pages' CSP forbids them): everything is wired here.
"use strict";

(function () {
  const body = document.body;
  const status = document.getElementById("live-status");
  const every = parseFloat(body.dataset.refresh || "0");
  let timer = null;

  function say(text) { if (status) status.textContent = text; }

  // A page the user is working on (a checked box, a focused field) is left alone.
  function busy() {
    if (document.querySelector("input[name=ids]:checked")) return true;
    const active = document.activeElement;
    return !!active && ["INPUT", "SELECT", "TEXTAREA"].includes(active.tagName);
  }

  async function refresh() {
    timer = null;
    if (document.hidden) { say("paused"); return; }
    if (!busy()) {
      try {
        const response = await fetch(window.location.href, {
          headers: {"X-Requested-With": "fetch"}, credentials: "same-origin"});
        if (response.ok) {
          const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
          for (const region of document.querySelectorAll("[data-live]")) {
            const next = fresh.getElementById(region.id);
            if (next) region.replaceWith(document.importNode(next, true));
          }
          say("live");
        } else {
          say("refresh failed: " + response.status);
        }
      } catch (err) {
        say("offline");
      }
    }
    schedule();
  }

  function schedule() {
    if (every > 0 && timer === null && !document.hidden) {
      timer = window.setTimeout(refresh, every * 1000);
    }
  }

  // Pause while the tab is hidden: a background tab costs the store nothing.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (timer !== null) { window.clearTimeout(timer); timer = null; }
      say("paused");
    } else if (every > 0) {
      refresh();
    }
  });

  // Confirmations: forms with data-confirm, and the destructive button of the selection.
  document.addEventListener("submit", function (event) {
    const form = event.target;
    let question = form.dataset.confirm;
    const button = event.submitter;
    if (!question && button && button.value === "delete" && form.dataset.confirmDelete) {
      question = form.dataset.confirmDelete;
    }
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    // The filter form leaves its blank fields out of the URL: short, bookmarkable links.
    if (form.id === "filters") {
      for (const field of form.querySelectorAll("input, select")) {
        if (field.type !== "checkbox" && field.value === "") field.disabled = true;
      }
    }
  });

  // Back to a page whose filter form was submitted: its blank fields usable again.
  window.addEventListener("pageshow", function () {
    for (const field of document.querySelectorAll("#filters [disabled]")) field.disabled = false;
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "select-all") {
      for (const box of document.querySelectorAll("input[name=ids]")) {
        box.checked = event.target.checked;
      }
    }
  });

  // Job page: state and progress over the dashboard's event stream; reload at the end so
  // the result and errors show (rendered, and redacted, by the server).
  const panel = document.getElementById("progress-panel");
  if (panel && panel.dataset.events && window.EventSource) {
    const initial = panel.dataset.state;
    const terminal = ["completed", "failed", "cancelled"];
    if (!terminal.includes(initial)) {
      const source = new EventSource(panel.dataset.events);
      source.addEventListener("job", function (event) {
        const data = JSON.parse(event.data);
        const state = document.getElementById("job-state");
        state.textContent = data.state;
        state.className = "state state-" + data.state;
        // Running again: what shows now is this attempt's progress, not a previous one's.
        if (data.state === "running") {
          document.getElementById("progress-label").textContent = "Progress:";
        }
        const p = data.progress;
        if (p) {
          // The line and its bar stay hidden until there is progress to show.
          document.getElementById("progress-line").hidden = false;
          if (p.percent !== null && p.percent !== undefined) {
            const bar = document.getElementById("progress");
            bar.hidden = false;
            bar.value = p.percent;
            document.getElementById("progress-text").textContent = Math.round(p.percent) + "%";
          }
          document.getElementById("progress-count").textContent =
            "(" + p.current + (p.total ? " of " + p.total : "") + ")";
          document.getElementById("progress-message").textContent = p.message || "";
        }
        if (terminal.includes(data.state)) {
          source.close();
          window.setTimeout(function () { window.location.reload(); }, 400);
        }
      });
      source.addEventListener("gone", function () { source.close(); say("job deleted"); });
    }
  }

  if (every > 0) { say("live"); schedule(); }
})();
