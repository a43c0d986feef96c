// Small conveniences; every page works without them (forms post, links link).
//  - forms with data-confirm ask before they post (revoke, rotate, approve);
//  - the privacy query composer writes SQL into the text area from its selects;
//  - example links fill the text area instead of reloading the page.
"use strict";

(function () {
  function start() {
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });

    const sql = document.getElementById("sql");
    const compose = document.getElementById("compose");
    const button = document.getElementById("compose-button");
    if (sql && compose && button) {
      const part = (name) => compose.querySelector(`[data-part="${name}"]`).value;
      button.addEventListener("click", () => {
        const func = part("func");
        const column = part("column");
        const group = part("group");
        const noise = part("noise");
        const hint = noise ? `/*+ NOISE(laplace, ${noise}) */ ` : "";
        const item = func === "COUNT" ? "COUNT(*) AS n" : `${func}(${column})`;
        sql.value = `SELECT ${hint}${item} FROM customers` + (group ? ` GROUP BY ${group}` : "");
        sql.focus();
      });
      document.querySelectorAll("a[data-sql]").forEach((a) => {
        a.addEventListener("click", (event) => {
          event.preventDefault();
          sql.value = a.dataset.sql;
          sql.focus();
        });
      });
    }
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
