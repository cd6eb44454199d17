// Small progressive enhancements; every page works without this file.
document.addEventListener("htmx:responseError", (event) => {
  const target = document.querySelector("#flash") || document.querySelector("main");
  const box = document.createElement("p");
  box.className = "message error";
  box.setAttribute("role", "alert");
  box.textContent = event.detail.xhr.responseText.length < 300 ? event.detail.xhr.responseText : "The request failed.";
  target.prepend(box);
});
