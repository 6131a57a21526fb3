// metasift web: a few lines in place of htmx. Forms marked data-async are posted with fetch and
// the returned page's <main> replaces ours; keyboard shortcuts drive the screening page.
"use strict";
(function () {
  function swap(html, url) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var fresh = doc.getElementById("main");
    var main = document.getElementById("main");
    if (!fresh || !main) { document.open(); document.write(html); document.close(); return; }
    main.replaceWith(fresh);
    if (doc.title) document.title = doc.title;
    if (url && url !== location.href) history.replaceState(null, "", url);
  }

  var busy = false;
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute("data-async") || !window.fetch) return;
    ev.preventDefault();
    if (busy) return;
    busy = true;
    fetch(form.action, {
      method: "POST",
      body: new FormData(form, ev.submitter || null),
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    })
      .then(function (r) { return r.text().then(function (t) { swap(t, r.url); }); })
      .catch(function (e) { alert("Could not reach the server: " + e); })
      .finally(function () { busy = false; });
  });

  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[data-back]");
    if (a && history.length > 1) { ev.preventDefault(); history.back(); }
  });

  document.addEventListener("keydown", function (ev) {
    var main = document.getElementById("main");
    if (!main || main.dataset.page !== "screen") return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var tag = (ev.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select") {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    var reason = document.getElementById("reason");
    var key = ev.key.toLowerCase();
    if (key === "n") { ev.preventDefault(); var note = document.getElementById("note"); if (note) note.focus(); return; }
    if (/^[1-9]$/.test(key) && reason && reason.options.length > Number(key)) {
      reason.selectedIndex = Number(key);
      key = "e";
    }
    if (key === "e" && reason && reason.hasAttribute("data-required") && !reason.value) {
      ev.preventDefault(); reason.focus(); return;
    }
    var button = main.querySelector('button[data-key="' + key + '"]');
    if (button) { ev.preventDefault(); button.click(); }
  });
})();
