// Times in the reader's language and time zone: every <time datetime="...Z"> the server
// wrote in UTC ("2026-12-01 10:55 UTC") is shown in the browser's zone, formatted for the
// page's language (<html lang>). A date without a time (a birth date) is a calendar date
// and is only reformatted, never shifted. Without this script the UTC text stays: correct,
// if less convenient.
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;
  var withTime = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  var dateOnly = new Intl.DateTimeFormat(lang, { dateStyle: "long", timeZone: "UTC" });
  function localise() {
    document.querySelectorAll("time[datetime]").forEach(function (el) {
      var value = el.getAttribute("datetime");
      var isDate = /^\d{4}-\d{2}-\d{2}$/.test(value);
      var when = new Date(isDate ? value + "T00:00:00Z" : value);
      if (isNaN(when.getTime())) { return; }
      el.title = el.textContent;  // the UTC original, on hover
      el.textContent = (isDate ? dateOnly : withTime).format(when);
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", localise);
  } else {
    localise();
  }
})();
