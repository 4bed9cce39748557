// Print buttons (a CSP-safe replacement for onclick="window.print()").
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) {
    window.print();
  }
});
