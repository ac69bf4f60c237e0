// Enter in the prompt box runs it (Shift+Enter adds a new line): a textarea has no submit event of its own.
document.addEventListener("keydown", function (event) {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.target && event.target.id === "prompt") {
    event.preventDefault();
    var run = document.getElementById("run");
    if (run) { run.click(); }
  }
});
