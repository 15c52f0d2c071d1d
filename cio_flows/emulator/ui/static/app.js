// Live updates for the emulator's page: when the server says something changed, fetch this
// page again and swap in its [data-live] regions (filters, focus and scroll stay as they are).
"use strict";
(function () {
  const meta = document.querySelector('meta[name="cio-live"]');
  const status = document.getElementById("live-status");
  if (!meta || !window.EventSource || !window.fetch) return;

  const show = (state, text) => {
    if (!status) return;
    status.dataset.state = state;
    status.textContent = text;
  };

  let busy = false;
  let again = false;

  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const answer = await fetch(window.location.href, { headers: { "X-Live": "1" }, cache: "no-store" });
      if (!answer.ok) return;
      const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
      let held = false;
      for (const region of document.querySelectorAll("[data-live][id]")) {
        const next = fresh.getElementById(region.id);
        if (!next || next.innerHTML === region.innerHTML) continue;
        // An expanded body (<details open>) is someone reading: the region waits until closed.
        if (region.querySelector("details[open]")) { held = true; continue; }
        region.replaceWith(document.importNode(next, true));
      }
      show("on", held ? "live (paused while a body is open)" : "live");
      document.dispatchEvent(new CustomEvent("cio:refreshed"));
    } catch (error) {
      show("error", "offline");
    } finally {
      busy = false;
      if (again) { again = false; window.setTimeout(refresh, 200); }
    }
  }

  const source = new EventSource("/live?since=" + encodeURIComponent(meta.content));
  source.addEventListener("open", () => show("on", "live"));
  source.addEventListener("error", () => show("off", "reconnecting"));
  source.addEventListener("change", refresh);
  document.addEventListener("toggle", (event) => { if (!event.target.open) refresh(); }, true);
  window.addEventListener("pagehide", () => source.close());
})();
