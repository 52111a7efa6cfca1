// moat's admin portal: progressive enhancement only. Every page works
// without this script (forms post, links navigate). It writes no HTML
// from strings (the page's policy requires Trusted Types for that and
// allows none): only textContent and DOM nodes.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // A notice after an action is announced and focused, so keyboard and
  // screen reader users learn what happened.
  const notice = document.querySelector(".notice");
  if (notice) {
    notice.setAttribute("tabindex", "-1");
    notice.focus();
  }
  // Revoking takes a source out of an app's live policy: ask first.
  for (const form of document.querySelectorAll("form.inline")) {
    const button = form.querySelector("button.revoke");
    if (!button) continue;
    form.addEventListener("submit", (event) => {
      if (!window.confirm("Revoke this source? The app's policy stops allowing it at once.")) {
        event.preventDefault();
      }
    });
  }
});
