// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:responseError", (event) => {
  const target = document.querySelector("#flash") || document.querySelector("main");
  const box = document.createElement("p");
  box.className = "message error";
  box.setAttribute("role", "alert");
  box.textContent = event.detail.xhr.responseText.length < 300 ? event.detail.xhr.responseText : "The request failed.";
  target.prepend(box);
});

// Copy buttons: <button data-copy="ID"> copies the text of element ID (a new API token is shown only once).
document.addEventListener("click", async (event) => {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const source = document.getElementById(button.dataset.copy);
  if (!source) return;
  const text = source.textContent.trim();
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    const range = document.createRange();
    range.selectNodeContents(source);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    document.execCommand("copy");
  }
  button.textContent = "Copied";
  setTimeout(() => { button.textContent = "Copy"; }, 2000);
});
