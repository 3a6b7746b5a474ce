// Light progressive enhancement: every page works without this script.
// The inbox refreshes its list by polling the same page as a fragment, without a full reload.
(function () {
  "use strict";
  var inbox = document.getElementById("inbox");
  if (!inbox) { return; }
  var source = inbox.getAttribute("data-refresh");
  var every = 1000 * Number(inbox.getAttribute("data-refresh-seconds") || 15);
  function refresh() {
    var url = source + (source.indexOf("?") < 0 ? "?" : "&") + "fragment=true";
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html !== null && !inbox.contains(document.activeElement)) { inbox.innerHTML = html; }
      })
      .catch(function () { /* offline for a moment: the next poll tries again */ });
  }
  window.setInterval(refresh, every);
})();
