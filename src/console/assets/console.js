// Larder console: the small script behind the server-rendered pages (no build step, no dependencies).
// - The API key lives in sessionStorage only: it survives a reload, not a closed browser, and is sent only as an
//   Authorization header on requests to this origin (never in a URL or a cookie).
// - Pages are rendered by the server; with a key, the script fetches them with the header and swaps the header and
//   <main> in place (links, GET forms, back/forward), so the key never has to leave the page's memory any other way.
// - Regions marked data-live are re-fetched while they say so (a running job), for live progress.

(() => {
  const KEY = "larder.apiKey";
  const authMode = document.body.dataset.auth;
  const getKey = () => sessionStorage.getItem(KEY);
  let liveTimer = null;
  let navSeq = 0;

  const headers = (extra) => {
    const h = Object.assign({ accept: "text/html" }, extra || {});
    const k = getKey();
    if (k) h.authorization = `Bearer ${k}`;
    return h;
  };

  const announce = (text) => {
    const live = document.getElementById("announce");
    if (live) live.textContent = text;
  };

  const fetchPage = async (url) => {
    const res = await fetch(url, { headers: headers(), credentials: "omit", cache: "no-store" });
    const doc = new DOMParser().parseFromString(await res.text(), "text/html");
    return { res, doc };
  };

  // Swaps the server's new header and <main> in; `focus` moves keyboard focus to the new heading (a navigation).
  const swap = (doc, focus) => {
    for (const id of ["top", "main"]) {
      const fresh = doc.getElementById(id);
      const old = document.getElementById(id);
      if (fresh && old) old.replaceWith(document.adoptNode(fresh));
    }
    document.title = doc.title;
    if (doc.body.dataset.keyRejected === "true") sessionStorage.removeItem(KEY);
    afterRender();
    if (focus) {
      const h1 = document.querySelector("main h1");
      if (h1) {
        h1.setAttribute("tabindex", "-1");
        h1.focus();
      }
      announce(doc.title);
    }
  };

  // `focus`: the person asked for this page (a link, a form), so keyboard focus moves to its heading.
  const navigate = async (url, push, focus = push) => {
    const seq = ++navSeq;
    document.body.setAttribute("aria-busy", "true");
    try {
      const { doc } = await fetchPage(url);
      if (seq !== navSeq) return;
      if (push) history.pushState({}, "", url);
      swap(doc, focus);
      if (push) window.scrollTo(0, 0);
    } catch (e) {
      announce(`Could not load the page: ${e.message}`);
    } finally {
      document.body.removeAttribute("aria-busy");
    }
  };

  const inConsole = (url) =>
    url.origin === location.origin && url.pathname.startsWith("/ui") && !url.pathname.startsWith("/ui/assets/");

  document.addEventListener("click", (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest("a[href]") : null;
    if (!a || ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    if (a.target && a.target !== "_self") return;
    const url = new URL(a.getAttribute("href"), location.href);
    if (!inConsole(url)) return;
    if (url.pathname === location.pathname && url.search === location.search && url.hash) return;
    ev.preventDefault();
    navigate(url.pathname + url.search, true);
  });

  document.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement)) return;
    if (form.id === "key-form") {
      ev.preventDefault();
      const input = form.querySelector("input[name=key]");
      const value = input.value.trim();
      if (!value) return;
      sessionStorage.setItem(KEY, value);
      input.value = "";
      navigate(location.pathname + location.search, false, true);
      return;
    }
    if (form.dataset.action === "materialize") {
      ev.preventDefault();
      materialize(form);
      return;
    }
    const url = new URL(form.getAttribute("action") || location.pathname, location.href);
    if ((form.method || "get").toLowerCase() !== "get" || !inConsole(url)) return;
    ev.preventDefault();
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (typeof v === "string" && v !== "") params.append(k, v);
    const qs = params.toString();
    navigate(url.pathname + (qs ? `?${qs}` : ""), true);
  });

  document.addEventListener("click", (ev) => {
    const b = ev.target instanceof Element ? ev.target.closest("button[data-copy], button[data-signout]") : null;
    if (!b) return;
    if (b.hasAttribute("data-signout")) {
      sessionStorage.removeItem(KEY);
      navigate(location.pathname + location.search, false, true);
      return;
    }
    const src = document.getElementById(b.dataset.copy);
    if (!src || !navigator.clipboard) return;
    navigator.clipboard.writeText(src.textContent).then(
      () => announce("Copied"),
      () => announce("Copying is not allowed here: select the text instead"),
    );
  });

  // "Materialise now": the JSON API with the key, then the view's jobs page to watch it run.
  const materialize = async (form) => {
    const out = form.querySelector("[role=status]");
    const body = { end_ts: new Date().toISOString(), feature_views: [form.dataset.view] };
    try {
      const res = await fetch(form.dataset.endpoint, {
        method: "POST",
        headers: headers({ "content-type": "application/json", accept: "application/json" }),
        body: JSON.stringify(body),
        credentials: "omit",
      });
      const answer = await res.json();
      if (!res.ok) {
        if (out) out.textContent = `Refused (${res.status}): ${answer.error ? answer.error.message : res.statusText}`;
        return;
      }
      navigate(form.dataset.next, true);
    } catch (e) {
      if (out) out.textContent = `Failed: ${e.message}`;
    }
  };

  // Regions marked data-live are refreshed from the server while the server keeps marking them so.
  const startLive = () => {
    if (liveTimer) clearTimeout(liveTimer);
    liveTimer = null;
    const region = document.querySelector("[data-live]");
    if (!region) return;
    const ms = Math.max(500, Number(region.dataset.live) || 1000);
    const path = location.pathname + location.search;
    liveTimer = setTimeout(async () => {
      liveTimer = null;
      try {
        const { doc } = await fetchPage(path);
        if (path !== location.pathname + location.search) return;
        const fresh = doc.getElementById(region.id);
        const current = document.getElementById(region.id);
        if (fresh && current) current.replaceWith(document.adoptNode(fresh));
      } catch {
        // a failed poll is retried at the next tick
      }
      startLive();
    }, ms);
  };

  const afterRender = () => {
    const keyForm = document.getElementById("key-form");
    const signedIn = authMode === "apikey" && !!getKey();
    document.querySelectorAll("[data-signed-in]").forEach((el) => {
      el.hidden = !signedIn;
    });
    if (keyForm && document.body.dataset.keyRejected === "true") {
      const msg = document.getElementById("key-error");
      if (msg) msg.hidden = false;
    }
    startLive();
  };

  window.addEventListener("popstate", () => navigate(location.pathname + location.search, false));

  // A page loaded without the header (a reload, a typed URL) is a locked shell: fetch it again with the key.
  if (document.getElementById("main")?.dataset.locked === "true" && getKey())
    navigate(location.pathname + location.search, false);
  else afterRender();
})();
