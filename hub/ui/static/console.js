// The hub console's only script: small conveniences on top of pages that work without it.
// - a submitted form's buttons are disabled (no double approvals, no double "Verify now"),
//   and a button with data-busy shows that text while the server works;
// - times in <time data-local> also show the reader's local time.
(function () {
  "use strict";

  function onSubmit(event) {
    var form = event.target;
    var buttons = form.querySelectorAll("button[type=submit], button:not([type])");
    window.setTimeout(function () {
      buttons.forEach(function (button) {
        if (button.dataset.busy) {
          button.textContent = button.dataset.busy;
        }
        button.disabled = true;
      });
    }, 0);
  }

  function localTimes() {
    document.querySelectorAll("time[data-local]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when.getTime())) {
        el.title = "Your local time: " + when.toLocaleString();
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form").forEach(function (form) {
      form.addEventListener("submit", onSubmit);
    });
    localTimes();
  });
})();
