// rill-authd console: the little the pages need beyond HTML. No inline script (the CSP allows
// none); everything works without this file too, except the copy button and live JSON checks.
"use strict";
(function () {
  // The landing page after an OIDC sign-in: go on to the console at once. This navigation
  // starts on our own page, so the browser sends the SameSite=Strict session cookie; the
  // provider's redirect chain, another site's, would not have (the link does the same by hand).
  var landing = document.querySelector("[data-landing]");
  if (landing) {
    location.replace(landing.getAttribute("href"));
    return;
  }

  // Copy buttons: data-copy names the input whose value is copied.
  document.querySelectorAll("[data-copy]").forEach(function (btn) {
    btn.addEventListener("click", function () {
      var input = document.getElementById(btn.getAttribute("data-copy"));
      var status = document.getElementById("copy-status");
      if (!input) { return; }
      input.focus();
      input.select();
      var say = function (msg) { if (status) { status.textContent = msg; } };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(function () {
          say("Copied to the clipboard.");
        }, function () {
          say("Selected: press Ctrl+C (or ⌘+C) to copy.");
        });
      } else {
        say("Selected: press Ctrl+C (or ⌘+C) to copy.");
      }
    });
  });

  // A secret shown once (a newly issued token) must not come back with Back: Chromium's
  // back/forward cache restores a page as it was left, Cache-Control: no-store or not. So the
  // secret leaves the page when the page is left (pagehide), and, should a cached copy still
  // hold it, when a page is restored from the cache (pageshow with persisted).
  var forgetSecret = function () {
    document.querySelectorAll("section.secret").forEach(function (sec) {
      var note = document.createElement("p");
      note.className = "notice";
      note.textContent = "The new token was shown once and is no longer on this page.";
      sec.replaceWith(note);
    });
  };
  window.addEventListener("pagehide", forgetSecret);
  window.addEventListener("pageshow", function (ev) {
    if (ev.persisted) { forgetSecret(); }
  });

  // JSON object fields (data-json-object): say at once whether the text is a JSON object, next
  // to the field; the server checks it again.
  document.querySelectorAll("textarea[data-json-object]").forEach(function (ta) {
    var msg = document.getElementById(ta.id + "-msg");
    var check = function () {
      var text = ta.value.trim();
      var problem = "";
      if (text !== "") {
        try {
          var v = JSON.parse(text);
          if (v === null || typeof v !== "object" || Array.isArray(v)) {
            problem = "Attributes must be a JSON object like {\"team\": \"data\"}.";
          }
        } catch (e) {
          problem = "Not valid JSON: " + e.message;
        }
      }
      ta.setCustomValidity(problem);
      if (problem) {
        ta.setAttribute("aria-invalid", "true");
      } else {
        ta.removeAttribute("aria-invalid");
      }
      if (msg) { msg.textContent = problem ? "⚠ " + problem : ""; }
    };
    ta.addEventListener("input", check);
  });
})();
