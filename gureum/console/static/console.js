// gureum console: small progressive enhancement. Every page works without it.
"use strict";

// Live refresh: an element with data-refresh="URL" has its content replaced by what URL
// answers, every two seconds (or data-every ms) while the tab is visible (instance states turn running
// without a reload). A failed fetch (server restarting) just waits for the next round.
const REFRESH_MS = 2000;

function refresh(el) {
  if (document.hidden) return;
  if (el.contains(document.activeElement) && document.activeElement.tagName !== "BODY") return;
  fetch(el.dataset.refresh, {credentials: "same-origin", headers: {"Accept": "text/html"}})
    .then((r) => {
      if (r.redirected || !r.ok) return null;  // signed out: leave the page as it is
      return r.text();
    })
    .then((html) => {
      if (html !== null && html !== el.dataset.last) {
        el.dataset.last = html;
        el.innerHTML = html;
        wireCopyButtons(el);
      }
    })
    .catch(() => {});
}

// Copy buttons: data-copy names the input whose value is copied.
function wireCopyButtons(root) {
  root.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", () => {
      const field = document.getElementById(button.dataset.copy);
      field.select();
      const done = () => { button.textContent = "Copied"; setTimeout(() => { button.textContent = "Copy"; }, 1500); };
      if (navigator.clipboard) navigator.clipboard.writeText(field.value).then(done, () => {});
      else if (document.execCommand("copy")) done();
    });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  wireCopyButtons(document);
  // data-every: another period (graphs: 10 s); data-load: fetch at once (no content yet).
  document.querySelectorAll("[data-refresh]").forEach((el) => {
    if (el.dataset.load) refresh(el);
    setInterval(() => refresh(el), Number(el.dataset.every || REFRESH_MS));
  });
  // The search box filters as you type (the same request the Filter button makes).
  const search = document.getElementById("f-q");
  const rows = document.querySelector("#instance-rows[data-refresh]");
  if (search && rows) {
    let timer = null;
    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        const url = new URL(rows.dataset.refresh, location.href);
        url.searchParams.set("q", search.value);
        rows.dataset.refresh = url.pathname + url.search;
        history.replaceState(null, "", "?" + url.searchParams.toString());
        refresh(rows);
      }, 200);
    });
  }
});
