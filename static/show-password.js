// Show/hide password on the sign-in page: an enhancement only (the form works without it).
// The button stays hidden until this script runs; its name is constant ("Show password")
// and aria-pressed says whether the password is shown.
(function () {
  "use strict";
  document.querySelectorAll("button[data-show-password]").forEach(function (button) {
    var field = document.getElementById(button.getAttribute("data-show-password"));
    if (!field) {
      return;
    }
    button.hidden = false;
    button.addEventListener("click", function () {
      var show = field.type === "password";
      field.type = show ? "text" : "password";
      button.setAttribute("aria-pressed", show ? "true" : "false");
    });
    // Never submit (or let a browser remember) the password as a plain text field.
    if (field.form) {
      field.form.addEventListener("submit", function () {
        field.type = "password";
        button.setAttribute("aria-pressed", "false");
      });
    }
  });
})();
