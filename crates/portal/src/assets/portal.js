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
  // Changes that take something away ask first (revoking a source,
  // removing a bucket): the question is the button's data-confirm.
  for (const button of document.querySelectorAll("button[data-confirm]")) {
    button.form.addEventListener("submit", (event) => {
      if (!window.confirm(button.dataset.confirm)) {
        event.preventDefault();
      }
    });
  }
});
