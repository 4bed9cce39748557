// The observation timer: the server renders the elapsed seconds; this only ticks them on.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-elapsed-seconds]").forEach((el) => {
    if (el.dataset.running !== "true") return;
    const start = Date.now() - Number(el.dataset.elapsedSeconds) * 1000;
    const pad = (n) => String(n).padStart(2, "0");
    setInterval(() => {
      const seconds = Math.floor((Date.now() - start) / 1000);
      el.textContent = `${pad(Math.floor(seconds / 60))}:${pad(seconds % 60)}`;
    }, 1000);
  });
  document.querySelectorAll("[data-wait-seconds]").forEach((el) => {
    let left = Number(el.dataset.waitSeconds);
    const tick = () => {
      if (left <= 0) { el.textContent = "now"; return; }
      el.textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
      left -= 1;
    };
    tick();
    setInterval(tick, 1000);
  });
});
