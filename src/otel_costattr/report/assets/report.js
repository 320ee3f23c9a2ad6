// otel-costattr report: inlined into every page, allowed by its hash (no request leaves it).
// Tables marked data-sortable sort by a column (its heading is a button; again: the other
// way), on each cell's exact value; an input marked data-filter shows only the rows of its
// table that contain the text typed, shown or exact (a trace id is shown cut to 16 digits:
// the whole one pasted found nothing). Without script the page reads the same, unsorted.
(function () {
  "use strict";
  function exact(cell) {
    return cell && cell.dataset.exact !== undefined ? cell.dataset.exact : "";
  }
  function compare(x, y) {
    if (x === "" || y === "") return (x === "") - (y === "");  // blanks last
    var nx = Number(x), ny = Number(y);
    if (!isNaN(nx) && !isNaN(ny)) return nx - ny;
    return x.localeCompare(y);
  }
  document.querySelectorAll("table[data-sortable] thead th").forEach(function (th) {
    var i = th.cellIndex;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "sort";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    button.addEventListener("click", function () {
      var table = th.closest("table"), body = table.tBodies[0];
      var down = th.getAttribute("aria-sort") !== "descending";
      table.querySelectorAll("thead th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
      th.setAttribute("aria-sort", down ? "descending" : "ascending");
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = exact(a.cells[i]), y = exact(b.cells[i]);
        if (x === "" || y === "") return compare(x, y);
        return down ? compare(y, x) : compare(x, y);
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.dataset.filter);
    if (!table) return;
    input.hidden = false;
    input.addEventListener("input", function () {
      var q = input.value.trim().toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        var text = r.textContent + "\n" + Array.prototype.map.call(r.cells, exact).join("\n");
        r.hidden = q !== "" && text.toLowerCase().indexOf(q) < 0;
      });
    });
  });
})();
