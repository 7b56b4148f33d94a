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
        var active = document.activeElement;
        var focused = active && active.id;
        var inCard = active && active.closest ? active.closest('.card') : null;
        cards.innerHTML = fresh.innerHTML;
        if (focused && document.getElementById(focused)) {
          document.getElementById(focused).focus();
        } else if (inCard && document.getElementById(inCard.id)) {
          // the focused control went away (connect became a code, say): stay on the card
          var heading = document.getElementById(inCard.id).querySelector('h2');
          if (heading) heading.focus();
        }
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

  // a notice rendered with the page ("connected", "revoked") is not announced by a
  // live region that already held it: put it in again once the page has settled
  var notice = document.getElementById('notice');
  if (notice && notice.firstElementChild) {
    var first = notice.firstElementChild;
    notice.replaceChildren();
    setTimeout(function () { notice.replaceChildren(first); }, 250);
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
