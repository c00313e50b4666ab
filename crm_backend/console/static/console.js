/* Agent console: live queue and conversation over Server-Sent Events, and
   the buttons and forms that call /console/api. Plain JavaScript, no build.
   Every state-changing request sends the page's CSRF token in X-CSRF-Token. */
(function () {
  'use strict';

  var body = document.body;
  var page = body.dataset.page;
  if (!page) return; // the sign-in and error pages need nothing from here

  var csrfToken = document.querySelector('meta[name="csrf-token"]').content;
  var LONG_WAIT_SECONDS = 300;

  // ---- helpers -----------------------------------------------------------

  function $(selector, root) { return (root || document).querySelector(selector); }
  function $all(selector, root) { return Array.prototype.slice.call((root || document).querySelectorAll(selector)); }

  function api(method, url, data) {
    var options = {
      method: method,
      credentials: 'same-origin',
      headers: { 'Accept': 'application/json', 'X-CSRF-Token': csrfToken }
    };
    if (data !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(data);
    }
    return fetch(url, options).then(function (response) {
      if (response.status === 401) { window.location.assign('/console/login?next=' + encodeURIComponent(location.pathname)); }
      return response.json().catch(function () { return {}; }).then(function (json) {
        return { ok: response.ok, status: response.status, data: json };
      });
    }, function () {
      return { ok: false, status: 0, data: { detail: 'The console could not reach the server. Check your connection and try again.' } };
    });
  }

  function problemText(result) {
    var data = result.data || {};
    if (data.errors && data.errors.length) {
      return data.errors.map(function (e) { return e.message; }).join(' ');
    }
    return data.detail || 'Something went wrong (' + result.status + ').';
  }

  function busy(button, on) {
    if (!button) return;
    button.disabled = on;
    button.classList.toggle('is-busy', on);
    if (on) button.setAttribute('aria-busy', 'true'); else button.removeAttribute('aria-busy');
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + ' s';
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return minutes + ' min';
    var hours = Math.floor(minutes / 60);
    minutes = minutes % 60;
    if (hours < 24) return minutes ? hours + ' h ' + minutes + ' min' : hours + ' h';
    return Math.floor(hours / 24) + ' d';
  }

  function label(value) {
    value = (value || '').replace(/_/g, ' ');
    return value.charAt(0).toUpperCase() + value.slice(1);
  }

  // Waiting times tick without a round trip.
  function tick() {
    $all('time[data-since]').forEach(function (el) {
      var seconds = (Date.now() - Date.parse(el.dataset.since)) / 1000;
      el.textContent = duration(seconds);
      var holder = el.closest('.qi-wait');
      if (holder) holder.classList.toggle('is-long', seconds >= LONG_WAIT_SECONDS);
    });
  }
  tick();
  setInterval(tick, 15000);

  // ---- live connection ---------------------------------------------------

  var live = $('#live');
  function setLive(state, text) {
    if (!live) return;
    live.dataset.state = state;
    $('.live-text', live).textContent = text;
  }

  var handlers = {};
  var lastMessageId = Number(body.dataset.lastMessageId || 0);
  var source = null;
  var retryDelay = 2000;

  function eventsUrl() {
    var url = new URL(body.dataset.events, location.href);
    if (url.searchParams.has('after')) url.searchParams.set('after', String(lastMessageId));
    return url.toString();
  }

  function connect() {
    if (source) source.close();
    source = new EventSource(eventsUrl());
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (event) { handlers[name](JSON.parse(event.data)); });
    });
    source.onopen = function () { retryDelay = 2000; setLive('live', 'Live'); };
    source.onerror = function () {
      // The browser reconnects by itself after a dropped stream; a refused
      // one (server busy, signed out) is closed for good, so retry here.
      if (source.readyState === EventSource.CLOSED) {
        setLive('offline', 'Reconnecting…');
        setTimeout(connect, retryDelay);
        retryDelay = Math.min(retryDelay * 2, 30000);
      } else {
        setLive('connecting', 'Reconnecting…');
      }
    };
  }

  // ---- queue -------------------------------------------------------------

  var queue = $('#queue');
  var tabs = $all('.tab');
  var FILTER_KEY = 'console.queueFilter';

  function knownIds() {
    return $all('.queue-item', queue).map(function (a) { return a.dataset.handoffId; });
  }

  function applyFilter(filter) {
    if (!queue) return; // pages without the queue (dashboard, customer) only show its count
    queue.dataset.filter = filter;
    tabs.forEach(function (tab) {
      var selected = tab.dataset.filter === filter;
      tab.setAttribute('aria-selected', String(selected));
      tab.tabIndex = selected ? 0 : -1;
    });
    var visible = $all('.queue-entry', queue).filter(function (li) { return li.offsetParent !== null; }).length;
    var any = $all('.queue-entry', queue).length > 0;
    var filtered = $('.queue-empty-filtered', queue);
    if (filtered) filtered.hidden = !any || visible > 0;
    try { localStorage.setItem(FILTER_KEY, filter); } catch (e) { /* private mode */ }
  }

  tabs.forEach(function (tab, index) {
    tab.addEventListener('click', function () { applyFilter(tab.dataset.filter); });
    tab.addEventListener('keydown', function (event) {
      var step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (!step) return;
      var next = tabs[(index + step + tabs.length) % tabs.length];
      next.focus();
      applyFilter(next.dataset.filter);
    });
  });
  var savedFilter = null;
  try { savedFilter = localStorage.getItem(FILTER_KEY); } catch (e) { /* private mode */ }
  applyFilter(savedFilter && $('.tab[data-filter="' + savedFilter + '"]') ? savedFilter : 'all');

  var initialised = false; // the first snapshot of a connection is not news
  handlers.queue = function (data) {
    var before = knownIds();
    if (queue) queue.innerHTML = data.html;
    knownIds().forEach(function (id) {
      if (initialised && before.indexOf(id) === -1) {
        $('.queue-item[data-handoff-id="' + id + '"]', queue).closest('.queue-entry').classList.add('is-new');
      }
    });
    ['total', 'queued', 'mine'].forEach(function (name) {
      $all('[data-count="' + name + '"]').forEach(function (count) { count.textContent = data[name]; });
    });
    if (queue) applyFilter(queue.dataset.filter);
    tick();
    var base = document.title.replace(/^\(\d+\) /, '');
    document.title = data.queued ? '(' + data.queued + ') ' + base : base;
    initialised = true;
  };

  // ---- conversation ------------------------------------------------------

  if (page === 'conversation') {
    var handoffId = body.dataset.handoffId;
    var apiBase = '/console/api/handoffs/' + handoffId;
    var main = $('#main');
    var log = $('#log');
    var messages = $('#messages');
    var notice = $('#notice');
    var claimButton = $('#claim');
    var resolveButton = $('#resolve');
    var statusBadge = $('#status-badge');
    var composer = $('#composer');
    var reply = $('#reply');
    var sendButton = $('#send');
    var hint = $('#composer-hint');
    var need = $('#need');
    var canned = $('#canned');
    var panel = $('#panel');
    var announcer = document.createElement('p');
    announcer.className = 'sr-only';
    announcer.setAttribute('aria-live', 'polite');
    body.appendChild(announcer);

    var state = {
      status: main.dataset.status,
      mine: main.dataset.mine === '1',
      agent_name: main.dataset.claimedBy || null
    };

    var showNotice = function (text, kind) {
      notice.textContent = text;
      notice.className = 'notice' + (kind ? ' is-' + kind : '');
      notice.hidden = !text;
    };

    var nearBottom = function () {
      return messages.scrollHeight - messages.scrollTop - messages.clientHeight < 120;
    };
    var scrollDown = function () { messages.scrollTop = messages.scrollHeight; };
    scrollDown();

    var appendMessage = function (id, html, sender) {
      if (id && $('[data-message-id="' + id + '"]', log)) return;
      var stick = nearBottom() || sender === 'agent';
      log.insertAdjacentHTML('beforeend', html);
      var added = log.lastElementChild;
      if (added) added.classList.add('is-new');
      if (id) lastMessageId = Math.max(lastMessageId, Number(id));
      if (stick) scrollDown();
      if (sender === 'customer' && added) {
        announcer.textContent = body.dataset.firstName + ' wrote: ' + $('.bubble', added).textContent;
      }
    };

    var applyState = function (next) {
      var previous = state;
      state = next;
      main.dataset.status = next.status;
      var queued = next.status === 'queued';
      var resolved = next.status === 'resolved';
      var mine = next.status === 'claimed' && next.mine;
      statusBadge.className = 'badge badge-lg badge-' + (queued ? 'queued' : resolved ? 'resolved' : mine ? 'mine' : 'claimed');
      statusBadge.textContent = queued ? 'Waiting' : resolved ? 'Resolved' : mine ? 'You have it' : 'With ' + next.agent_name;
      claimButton.hidden = !queued;
      resolveButton.hidden = !(queued || mine);
      resolveButton.textContent = queued ? 'Close request' : 'Resolve';
      resolveButton.title = queued ? 'Close this request without replying (the customer left)' : 'Hand the conversation back to the assistant, which asks for a score';
      var canReply = mine;
      reply.disabled = !canReply;
      sendButton.disabled = !canReply;
      canned.disabled = !canReply;
      composer.classList.toggle('is-locked', !canReply);
      hint.textContent = queued ? 'Claim the conversation to reply.'
        : resolved ? 'Resolved: the assistant has the conversation again.'
        : mine ? 'The customer sees your name with each reply.'
        : next.agent_name + ' has this conversation.';
      if (need && next.category && need.value !== next.category && document.activeElement !== need) {
        need.value = next.category;
        need.dataset.current = next.category;
      }
      if (previous && previous.status === 'queued' && next.status === 'claimed' && !next.mine) {
        showNotice(next.agent_name + ' claimed this conversation.', 'error');
      }
      if (previous && previous.status !== 'resolved' && resolved && !next.mine) {
        showNotice('This conversation was resolved' + (next.agent_name ? ' by ' + next.agent_name : '') + '.');
      }
    };
    applyState(state);

    handlers.message = function (data) { appendMessage(data.id, data.html, data.sender); };
    handlers.handoff = function (data) { applyState(data); };

    claimButton.addEventListener('click', function () {
      busy(claimButton, true);
      api('POST', apiBase + '/claim').then(function (result) {
        busy(claimButton, false);
        if (result.ok) {
          applyState(result.data);
          showNotice('You have this conversation. The customer is waiting for your reply.', 'success');
          reply.focus();
        } else {
          showNotice(problemText(result), 'error');
          api('GET', apiBase).then(function (fresh) { if (fresh.ok) applyState(fresh.data); });
        }
      });
    });

    resolveButton.addEventListener('click', function () {
      busy(resolveButton, true);
      api('POST', apiBase + '/resolve').then(function (result) {
        busy(resolveButton, false);
        if (result.ok) {
          applyState(result.data);
          showNotice('Resolved. The assistant thanks the customer and asks them for a score.', 'success');
        } else {
          showNotice(problemText(result), 'error');
        }
      });
    });

    var send = function () {
      var text = reply.value.trim();
      if (!text || reply.disabled) return;
      busy(sendButton, true);
      reply.setAttribute('aria-busy', 'true');
      api('POST', apiBase + '/messages', { text: text }).then(function (result) {
        busy(sendButton, false);
        reply.removeAttribute('aria-busy');
        if (result.ok) {
          appendMessage(result.data.message.id, result.data.html, 'agent');
          reply.value = '';
          if (!notice.classList.contains('is-error')) showNotice('');
        } else {
          showNotice(problemText(result), 'error');
        }
        applyState(state); // re-enables what busy() disabled
        reply.focus();
      });
    };
    composer.addEventListener('submit', function (event) { event.preventDefault(); send(); });
    // While the agent types, the customer's chat shows "<name> is typing…":
    // one signal every few seconds at most (the server keeps to that too).
    var TYPING_EVERY_MS = 3000;
    var lastTyping = 0;
    reply.addEventListener('input', function () {
      var now = Date.now();
      if (!state.mine || state.status !== 'claimed' || !reply.value.trim() || now - lastTyping < TYPING_EVERY_MS) return;
      lastTyping = now;
      api('POST', apiBase + '/typing');
    });
    reply.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) { event.preventDefault(); send(); }
    });

    var fillIn = function (text) {
      var values = {
        first_name: body.dataset.firstName,
        customer_name: body.dataset.customerName,
        agent_name: body.dataset.agentName
      };
      return text.replace(/\{(first_name|customer_name|agent_name)\}/g, function (_, key) { return values[key] || ''; });
    };
    canned.addEventListener('change', function () {
      var option = canned.selectedOptions[0];
      if (!option || !option.dataset.text) return;
      var text = fillIn(option.dataset.text);
      var start = reply.selectionStart, end = reply.selectionEnd;
      reply.value = reply.value.slice(0, start) + text + reply.value.slice(end);
      canned.value = '';
      reply.focus();
      reply.setSelectionRange(start + text.length, start + text.length);
    });

    need.addEventListener('change', function () {
      var chosen = need.value;
      need.disabled = true;
      api('POST', apiBase + '/category', { category: chosen }).then(function (result) {
        need.disabled = false;
        if (result.ok) {
          need.dataset.current = chosen;
          var ticket = result.data.ticket;
          showNotice('Need set to “' + label(chosen) + '”' + (ticket ? ' here and on ' + ticket.number + '. The classifier learns from it at its next training.' : '. It is used for this conversation\'s ticket.'), 'success');
          $('#need-hint').textContent = 'Corrected by you' + (ticket ? ', here and on ' + ticket.number : '') + '.';
          var newCategory = $('#ticket-new-category');
          if (newCategory) newCategory.value = chosen;
          refreshPanel();
        } else {
          need.value = need.dataset.current;
          showNotice(problemText(result), 'error');
        }
      });
    });

    // ---- customer panel (forms handled by delegation: the panel is re-rendered)
    var refreshPanel = function (message, isError) {
      var keepCategory = $('#ticket-new-category') ? $('#ticket-new-category').value : '';
      return fetch(body.dataset.panelUrl, { credentials: 'same-origin' })
        .then(function (response) { return response.ok ? response.text() : Promise.reject(response); })
        .then(function (html) {
          panel.innerHTML = html;
          if (keepCategory && $('#ticket-new-category')) $('#ticket-new-category').value = keepCategory;
          if (message) {
            var status = $('#ticket-status-message');
            status.textContent = message;
            status.classList.toggle('is-error', !!isError);
          }
        })
        .catch(function () { /* the panel stays as it was */ });
    };

    var formStatus = function (text, isError) {
      var status = $('#ticket-status-message');
      if (!status) return;
      status.textContent = text;
      status.classList.toggle('is-error', !!isError);
    };

    panel.addEventListener('submit', function (event) {
      var form = event.target;
      var button = $('button[type="submit"]', form);
      event.preventDefault();
      var fields = {};
      new FormData(form).forEach(function (value, key) { fields[key] = value; });
      var request;
      if (form.id === 'ticket-create') {
        if (!fields.category) fields.category = null;
        if (!fields.priority) fields.priority = null;  // Automatic: the customer's figures decide
        request = api('POST', apiBase + '/ticket', fields);
      } else if (form.id === 'ticket-update') {
        request = api('PATCH', '/console/api/tickets/' + form.dataset.ticketId, fields);
      } else if (form.id === 'ticket-note') {
        request = api('POST', '/console/api/tickets/' + form.dataset.ticketId + '/notes', fields);
      } else {
        return;
      }
      busy(button, true);
      request.then(function (result) {
        busy(button, false);
        if (!result.ok) { formStatus(problemText(result), true); return; }
        var done = form.id === 'ticket-create' ? 'Ticket ' + result.data.number + ' created and linked to this conversation.'
          : form.id === 'ticket-update' ? 'Ticket ' + result.data.number + ' updated.'
          : 'Note added to ' + result.data.ticket + '.';
        refreshPanel(done);
      });
    });

    // ---- canned replies editor
    var dialog = $('#canned-dialog');
    var rows = $('#canned-rows');
    var cannedError = $('#canned-error');
    var addRow = function (reply) {
      var index = rows.children.length + 1;
      var li = document.createElement('li');
      li.className = 'canned-row';
      li.innerHTML =
        '<div class="field"><label for="canned-title-' + index + '">Title</label><input id="canned-title-' + index + '" maxlength="60" required></div>' +
        '<div class="field"><label for="canned-text-' + index + '">Text</label><textarea id="canned-text-' + index + '" rows="2" maxlength="2000" required></textarea></div>' +
        '<button class="btn btn-quiet" type="button" aria-label="Remove reply ' + index + '">Remove</button>';
      $('input', li).value = reply.title;
      $('textarea', li).value = reply.text;
      $('button', li).addEventListener('click', function () { li.remove(); });
      rows.appendChild(li);
      return li;
    };
    var renderCannedOptions = function (replies) {
      canned.innerHTML = '<option value="">Insert…</option>';
      replies.forEach(function (reply, index) {
        var option = document.createElement('option');
        option.value = String(index);
        option.dataset.text = reply.text;
        option.textContent = reply.title;
        canned.appendChild(option);
      });
    };
    $('#edit-canned').addEventListener('click', function () {
      api('GET', '/console/api/canned-replies').then(function (result) {
        rows.innerHTML = '';
        cannedError.hidden = true;
        (result.data.replies || []).forEach(addRow);
        dialog.showModal();
      });
    });
    $('#canned-add').addEventListener('click', function () { $('input', addRow({ title: '', text: '' })).focus(); });
    $('#canned-cancel').addEventListener('click', function () { dialog.close(); });
    $('#canned-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var replies = $all('.canned-row', rows).map(function (li) {
        return { title: $('input', li).value.trim(), text: $('textarea', li).value.trim() };
      }).filter(function (r) { return r.title || r.text; });
      var save = $('#canned-save');
      busy(save, true);
      api('PUT', '/console/api/canned-replies', { replies: replies }).then(function (result) {
        busy(save, false);
        if (result.ok) {
          renderCannedOptions(result.data.replies);
          dialog.close();
          showNotice('Canned replies saved for every agent.', 'success');
        } else {
          cannedError.textContent = problemText(result);
          cannedError.hidden = false;
        }
      });
    });
  }

  connect();
})();
