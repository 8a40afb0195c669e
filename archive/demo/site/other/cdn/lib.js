/* tinytide 1.2.0 - minimal date helpers for tide widgets */
(function (root) {
  "use strict";
  var MS_PER_LUNAR_DAY = 24.84 * 60 * 60 * 1000;

  function pad(n) {
    return n < 10 ? "0" + n : String(n);
  }

  function formatTime(date) {
    return pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function nextSimilarTide(date) {
    return new Date(date.getTime() + MS_PER_LUNAR_DAY);
  }

  root.TinyTide = {
    version: "1.2.0",
    formatTime: formatTime,
    nextSimilarTide: nextSimilarTide
  };
})(this);
