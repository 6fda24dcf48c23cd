// "Copy code" on the hosted landing page: the Clipboard API, else select the code and use the
// older execCommand (WeChat's browser on older phones), else ask the visitor to copy it.
document.addEventListener("DOMContentLoaded", function () {
  var button = document.getElementById("copy-code");
  var field = document.getElementById("code");
  var status = document.getElementById("copy-status");
  if (!button || !field || !status) return;
  function say(key) { status.textContent = status.getAttribute("data-" + key); }
  function fallback() {
    field.focus();
    field.select();
    field.setSelectionRange(0, field.value.length);
    var done = false;
    try { done = document.execCommand("copy"); } catch (e) { done = false; }
    say(done ? "copied" : "failed");
  }
  button.addEventListener("click", function () {
    var code = button.getAttribute("data-code");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code).then(function () { say("copied"); }, fallback);
    } else {
      fallback();
    }
  });
});
