// archive: progressive enhancement only (copy buttons, live capture progress); every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var source = document.getElementById(button.dataset.copy);
      if (!source || !navigator.clipboard) { return; }
      navigator.clipboard.writeText(source.textContent).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        setTimeout(function () { button.textContent = label; }, 1500);
      });
    });
  });
  var job = document.getElementById("job");
  if (job && window.EventSource) {
    var events = new EventSource(job.dataset.events);
    var state = document.getElementById("job-state");
    var count = 0;
    events.addEventListener("progress", function (e) {
      var data = JSON.parse(e.data);
      count += 1;
      job.dataset.progressEvents = String(count);
      document.querySelectorAll("#job-progress dd").forEach(function (dd) {
        if (dd.dataset.key in data) { dd.textContent = String(data[dd.dataset.key]); }
      });
    });
    var messages = document.getElementById("job-messages");
    messages.textContent = "";   // the events start again from the first
    events.addEventListener("message", function (e) {
      var item = document.createElement("li");
      item.textContent = JSON.parse(e.data).text;
      messages.appendChild(item);
    });
    events.addEventListener("done", function (e) {
      var data = JSON.parse(e.data);
      events.close();
      state.textContent = data.ok ? "Done." : "Failed (exit " + data.exit + ")" + (data.why ? ": " + data.why : ".");
      job.dataset.done = data.ok ? "ok" : "failed";
      if (data.snapshot) {
        var link = document.createElement("a");
        link.href = "/snapshots/" + encodeURIComponent(data.snapshot);
        link.textContent = "See the snapshot";
        var result = document.getElementById("job-result");
        result.textContent = "";
        result.appendChild(link);
      }
    });
  }
});
