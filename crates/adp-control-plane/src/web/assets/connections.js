// Progressive enhancement for the Connections page: without this script the page
// works as plain forms and links. With it, the server's "change" events (a consent
// finished in another tab, a device code was approved, an admin asked for more scopes)
// refresh the cards in place.
(function () {
  'use strict';
  var cards = document.getElementById('cards');
  if (!cards || !window.EventSource || !window.fetch || !window.DOMParser) return;

  var refreshing = false;
  function refresh() {
    if (refreshing) return;
    refreshing = true;
    fetch('/connections', { credentials: 'same-origin', headers: { accept: 'text/html' } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (text) {
        if (!text) return;
        var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('cards');
        if (!fresh || fresh.innerHTML === cards.innerHTML) return;
        var focused = document.activeElement && document.activeElement.id;
        cards.innerHTML = fresh.innerHTML;
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
        var notice = document.getElementById('notice');
        if (notice) {
          var text = document.createElement('p');
          text.className = 'notice';
          text.textContent = 'Your connections were updated.';
          notice.replaceChildren(text);
        }
      })
      .catch(function () {})
      .then(function () { refreshing = false; });
  }

  var events = new EventSource(cards.getAttribute('data-events'));
  events.addEventListener('change', refresh);
  // after a dropped stream reconnects, catch up on what was missed
  var opened = false;
  events.addEventListener('open', function () {
    if (opened) refresh();
    opened = true;
  });
})();
