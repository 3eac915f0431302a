// Engram dashboard: a little progressive enhancement; every page works without it.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-select-all]")) {
    const table = event.target.closest("table");
    table.querySelectorAll('input[name="ids"]').forEach((box) => { box.checked = event.target.checked; });
  }
});
window.addEventListener("DOMContentLoaded", () => {
  const refresh = document.querySelector("[data-refresh]");
  if (refresh) setTimeout(() => window.location.reload(), 1000 * Number(refresh.dataset.refresh));
});
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-owner-picker]") && event.target.value) {
    const [kind, ...rest] = event.target.value.split(":");
    const form = event.target.form;
    form.elements.type.value = kind;
    form.elements.id.value = rest.join(":");
  }
});
// Uploads with a progress bar (XMLHttpRequest reports upload progress; fetch does not).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!form.matches("[data-progress]") || event.defaultPrevented) return;
  event.preventDefault();
  const bar = form.querySelector("progress");
  const request = new XMLHttpRequest();
  request.open("POST", form.action);
  request.upload.addEventListener("progress", (e) => {
    if (e.lengthComputable) { bar.hidden = false; bar.value = Math.round((100 * e.loaded) / e.total); }
  });
  request.addEventListener("load", () => {
    document.open(); document.write(request.responseText); document.close();
  });
  request.send(new FormData(form));
});
document.addEventListener("change", (event) => {
  if (event.target.matches("[data-autosubmit]")) event.target.form.requestSubmit();
});
