// Tidewatch Notes - small site helpers
(function () {
  "use strict";

  function estimateReadingTime(text) {
    var words = text.trim().split(/\s+/).length;
    return Math.max(1, Math.round(words / 220));
  }

  function markExternalLinks() {
    var links = document.querySelectorAll(".sources a");
    for (var i = 0; i < links.length; i++) {
      links[i].setAttribute("rel", "noopener");
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    var article = document.querySelector(".post");
    var meta = document.querySelector(".post-meta");
    if (article && meta) {
      meta.setAttribute("data-minutes", String(estimateReadingTime(article.textContent)));
    }
    markExternalLinks();
  });
})();
