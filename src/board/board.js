// Live updates: the server streams the page's <main> again whenever the
// journal behind it changes (server-sent events); swap it in place, keeping
// what the reader has open and not disturbing a form being filled in.
(function () {
  const live = document.body.dataset.live;
  if (!live || !window.EventSource) return;
  const badge = document.getElementById("live");
  let pending = null;
  // The fragment shown: the stream's first event is usually the same one.
  let version = document.body.dataset.version;
  const swap = (html) => {
    const main = document.getElementById("main");
    const focused = document.activeElement;
    if (focused && main.contains(focused) && (focused.tagName === "INPUT" || focused.tagName === "SELECT")) {
      pending = html; // applied once the field loses focus
      return;
    }
    const open = new Set([...main.querySelectorAll("details[open] > summary")].map((s) => s.textContent));
    main.innerHTML = html;
    main.querySelectorAll("details > summary").forEach((s) => {
      if (open.has(s.textContent)) s.parentElement.open = true;
    });
    pending = null;
    document.dispatchEvent(new CustomEvent("board:updated"));
  };
  document.addEventListener("focusout", () => setTimeout(() => { if (pending !== null) swap(pending); }, 0));
  const source = new EventSource(live);
  source.addEventListener("open", () => badge && badge.classList.add("on"));
  source.addEventListener("error", () => badge && badge.classList.remove("on"));
  source.addEventListener("main", (e) => {
    if (e.lastEventId === version) return;
    version = e.lastEventId;
    swap(JSON.parse(e.data));
  });
})();
