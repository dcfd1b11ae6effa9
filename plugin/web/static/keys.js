// Keys for the coder's pages. The queue: j / k move between rows (the row's link takes the
// focus, so a screen reader reads it), Enter opens it (the link's own behaviour), x ticks the
// row's box, ? lists the keys. A Task page: n the next review, u back to the queue, c the
// "Complete: no change" button, ? the keys. Nothing here is needed: every key does what a
// click can do. Keys are ignored while typing in a text field or menu, or with Ctrl, Alt or
// Meta held.
(function () {
  "use strict";

  var NOT_TEXT = ["checkbox", "radio", "button", "submit", "reset"];
  function typing(target) {
    var tag = (target && target.tagName) || "";
    if (tag === "INPUT") return NOT_TEXT.indexOf(target.type) < 0;
    return tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable);
  }

  var dialog = document.getElementById("keys");
  function showKeys() {
    if (dialog && !dialog.open) {
      dialog.showModal();
      var close = document.getElementById("keys-close");
      if (close) close.focus();
    }
  }
  document.querySelectorAll(".keys-open").forEach(function (button) {
    button.addEventListener("click", showKeys);
  });

  var rows = Array.prototype.slice.call(document.querySelectorAll("#rows tbody tr[data-task]"));
  var current = -1;

  function mark(index) {
    rows.forEach(function (row, n) {
      row.classList.toggle("current", n === index);
      if (n === index) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    });
    current = index;
  }

  function move(step) {
    if (!rows.length) return;
    var next = current < 0 ? (step > 0 ? 0 : rows.length - 1) : Math.min(rows.length - 1, Math.max(0, current + step));
    mark(next);
    var link = rows[next].querySelector("a.open");
    if (link) link.focus();
  }

  function countChosen() {
    var label = document.getElementById("chosen");
    if (!label) return;
    var n = document.querySelectorAll('#rows input[name="task"]:checked').length;
    label.textContent = "(" + n + " chosen)";
  }

  rows.forEach(function (row, n) {
    row.addEventListener("focusin", function () { mark(n); });
    var box = row.querySelector('input[name="task"]');
    if (box) box.addEventListener("change", countChosen);
  });

  function follow(id) {
    var link = document.getElementById(id);
    if (link && link.href) window.location.assign(link.href);
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.altKey || event.metaKey || typing(event.target)) return;
    if (dialog && dialog.open) return;  // Escape closes it; Tab stays inside
    var key = event.key;
    if (key === "?") { showKeys(); event.preventDefault(); return; }
    if (rows.length) {
      if (key === "j") { move(1); event.preventDefault(); }
      else if (key === "k") { move(-1); event.preventDefault(); }
      else if (key === "x" && current >= 0) {
        var box = rows[current].querySelector('input[name="task"]');
        if (box) { box.checked = !box.checked; countChosen(); }
        event.preventDefault();
      }
      return;
    }
    if (key === "n") { follow("next"); event.preventDefault(); }
    else if (key === "u") { follow("back"); event.preventDefault(); }
    else if (key === "c") {
      var complete = document.getElementById("complete-no-change");
      if (complete) { complete.focus(); event.preventDefault(); }
    }
  });
})();
