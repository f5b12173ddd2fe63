/*
 * 政务公开智能问答 — page script (plain ES2017, no frameworks, CSP-safe).
 *
 * Loaded by base.html on every page. It
 *   1. applies the saved 大字模式 (large text + high contrast) preference to
 *      <html class="large-text"> as soon as it runs, and wires #font-toggle;
 *   2. makes skip links move keyboard focus to their target;
 *   3. runs the chat when the page has #chat-form (index.html), with 有用 / 没用
 *      under each answer (POST /api/feedback) and, on 没用, the reasons and a
 *      way to hand the question to staff (POST /api/ask with escalate: true).
 *
 * Security: everything a citizen types or the server returns is inserted with
 * textContent / createElement — never innerHTML. Links from the server are
 * only used when they are same-origin paths ("/..."), see safePath().
 */
(function () {
  'use strict';

  var LARGE_TEXT_KEY = 'zwgk.largeText';
  var LARGE_TEXT_CLASS = 'large-text';
  var SESSION_KEY = 'zwgk.session';
  var DEFAULT_ENDPOINT = '/api/ask';
  var FEEDBACK_ENDPOINT = '/api/feedback';
  var REQUEST_TIMEOUT_MS = 30000;

  var TEXT = {
    network: '网络连接异常，请稍后再试。',
    timeout: '查询超时，请稍后再试。',
    tooMany: '提问过于频繁，请稍后再试。',
    tooLong: '问题过长，请精简后再试。',
    badRequest: '请求未能处理，请修改问题后重试。',
    server: '服务暂时不可用，请稍后再试。',
    pending: '正在查询…',
    emptyAnswer: '暂未找到相关答复。',
    escalatedDefault: '您的问题已转交工作人员处理。',
    ticketTitle: '已为您登记，转人工办理',
    ticketCode: '办理编号：',
    ticketPassword: '查询密码：',
    ticketFollowUp: '工作人员将核实后跟进答复。',
    ticketLookupBefore: '可凭编号和查询密码在“',
    ticketLookupLink: '办理查询',
    ticketLookupAfter: '”页面查看答复。',
    ticketKeep: '请妥善保存编号和查询密码。',
    contactToggle: '留下联系方式（选填）',
    contactIntro: '如需工作人员联系您，可留下姓名和手机号码（或固定电话、电子邮箱）。仅供办理本问题使用，不会公开。',
    contactName: '姓名（选填）',
    contactPhone: '手机号码或固定电话',
    contactEmail: '电子邮箱',
    contactSubmit: '提交联系方式',
    contactSending: '正在提交…',
    contactNeedOne: '请至少填写手机号码、固定电话或电子邮箱中的一项。',
    contactDone: '已收到您的联系方式。',
    copy: '复制',
    copied: '已复制',
    copyFailed: '复制失败，请手动选中后复制。',
    sourcePrefix: '来源：',
    sourceLinkFallback: '查看原文',
    moreSuggestions: '您可能还想了解：',
    suggestionsLabel: '您是不是想问',
    youAsked: '您的问题：',
    answerPrefix: '答复：',
    noticePrefix: '系统提示：',
    feedbackQuestion: '这条回答对您有帮助吗？',
    helpful: '有用',
    notHelpful: '没用',
    reasonLegend: '哪里没有帮到您？（选填）',
    reasonNote: '补充说明（选填，200字以内）',
    feedbackSubmit: '提交反馈',
    feedbackSending: '正在提交…',
    feedbackThanks: '感谢您的反馈！',
    ticketOffer: '仍未解决？可以转交工作人员答复，系统会为您生成工单。',
    ticketButton: '转人工办理',
    referralButton: '仍然提交给工作人员',
    escalateAsked: '请转人工办理：'
  };

  var root = document.documentElement;

  /* ---------- storage helpers (storage can be disabled or throw) ---------- */

  function getStore(name) {
    try {
      var store = window[name];
      var probe = '__zwgk_probe__';
      store.setItem(probe, probe);
      store.removeItem(probe);
      return store;
    } catch (e) {
      return null;
    }
  }

  function readItem(store, key) {
    if (!store) return null;
    try { return store.getItem(key); } catch (e) { return null; }
  }

  function writeItem(store, key, value) {
    if (!store) return;
    try { store.setItem(key, value); } catch (e) { /* quota / privacy mode */ }
  }

  var local = getStore('localStorage');
  var session = getStore('sessionStorage');

  /* ---------- 1. large-text mode: apply immediately, before first paint ---------- */

  function isLargeText() {
    return root.classList.contains(LARGE_TEXT_CLASS);
  }

  if (readItem(local, LARGE_TEXT_KEY) === '1') {
    root.classList.add(LARGE_TEXT_CLASS);
  }

  function initFontToggle() {
    var button = document.getElementById('font-toggle');
    if (!button) return;
    var sync = function () {
      button.setAttribute('aria-pressed', isLargeText() ? 'true' : 'false');
    };
    sync();
    button.addEventListener('click', function () {
      var on = !isLargeText();
      root.classList.toggle(LARGE_TEXT_CLASS, on);
      writeItem(local, LARGE_TEXT_KEY, on ? '1' : '0');
      sync();
    });
  }

  /* ---------- 2. skip links ---------- */

  function initSkipLinks() {
    var links = document.querySelectorAll('a.skip-link[href^="#"]');
    Array.prototype.forEach.call(links, function (link) {
      link.addEventListener('click', function (event) {
        var target = document.getElementById(link.getAttribute('href').slice(1));
        if (!target) return;
        event.preventDefault();
        if (!target.hasAttribute('tabindex') && !isFocusable(target)) {
          target.setAttribute('tabindex', '-1');
        }
        target.focus();
        target.scrollIntoView({ block: 'center', behavior: scrollBehavior() });
      });
    });
  }

  function isFocusable(node) {
    return /^(INPUT|TEXTAREA|SELECT|BUTTON|A)$/.test(node.tagName);
  }

  function scrollBehavior() {
    var reduce = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
    return reduce ? 'auto' : 'smooth';
  }

  /* ---------- small DOM helpers ---------- */

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  /*
   * Only same-origin absolute paths are turned into links: "/reports/2021".
   * Rejects "//host" and "/\host" (protocol-relative), and any whitespace or
   * control character (the URL parser strips tabs/newlines, so "/\t/host"
   * would otherwise become "//host"). Everything else — javascript:, data:,
   * http(s): — is shown as plain text.
   */
  function safePath(url) {
    if (typeof url !== 'string') return null;
    return /^\/(?![\/\\])[^\s\u0000-\u001f\u007f]*$/.test(url) ? url : null;
  }

  function nonEmptyString(value) {
    return typeof value === 'string' && value.trim() !== '' ? value : null;
  }

  /* ---------- session id ---------- */

  var memorySessionId = null;

  function randomId() {
    var bytes = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) {
      window.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    return Array.prototype.map.call(bytes, function (b) {
      return (b < 16 ? '0' : '') + b.toString(16);
    }).join('');
  }

  function sessionId() {
    if (memorySessionId) return memorySessionId;
    var id = readItem(session, SESSION_KEY);
    if (!id || !/^[0-9a-f]{32}$/.test(id)) {
      id = randomId();
      writeItem(session, SESSION_KEY, id);
    }
    memorySessionId = id;
    return id;
  }

  /* ---------- clipboard ---------- */

  function legacyCopy(text) {
    var helper = el('textarea', 'clipboard-helper');
    helper.value = text;
    helper.setAttribute('readonly', '');
    helper.setAttribute('aria-hidden', 'true');
    helper.tabIndex = -1;
    document.body.appendChild(helper);
    var ok = false;
    try {
      helper.select();
      ok = document.execCommand('copy');
    } catch (e) {
      ok = false;
    }
    helper.remove();
    return ok;
  }

  async function copyText(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (e) { /* fall through to the legacy path */ }
    }
    return legacyCopy(text);
  }

  function selectContents(node) {
    var selection = window.getSelection && window.getSelection();
    if (!selection) return;
    var range = document.createRange();
    range.selectNodeContents(node);
    selection.removeAllRanges();
    selection.addRange(range);
  }

  /* ---------- 3. chat ---------- */

  /* The reasons offered under 没用, in order, as the server names them:
     data-feedback-reasons on #chat-form holds [["off_topic", "答非所问"], ...]. */
  function feedbackReasons(form) {
    var parsed = null;
    try { parsed = JSON.parse(form.getAttribute('data-feedback-reasons') || 'null'); } catch (e) { parsed = null; }
    if (!Array.isArray(parsed)) return [];
    return parsed.filter(function (pair) {
      return Array.isArray(pair) && nonEmptyString(pair[0]) && nonEmptyString(pair[1]);
    }).map(function (pair) {
      return { code: pair[0], label: pair[1] };
    });
  }

  function initChat() {
    var form = document.getElementById('chat-form');
    var log = document.getElementById('chat-log');
    var input = document.getElementById('question');
    var sendButton = document.getElementById('send');
    var examples = document.getElementById('examples');
    if (!form || !log || !input) return;

    var endpoint = form.getAttribute('data-endpoint') || DEFAULT_ENDPOINT;
    var reasons = feedbackReasons(form);
    var status = document.getElementById('sr-status');
    if (!status) {
      status = el('div', 'visually-hidden');
      status.setAttribute('role', 'status');
      status.setAttribute('aria-live', 'polite');
      document.body.appendChild(status);
    }
    var busy = false;

    function announce(message) {
      // Clear first so the same message is announced again.
      status.textContent = '';
      window.setTimeout(function () { status.textContent = message; }, 50);
    }

    function reveal(node) {
      var tall = node.offsetHeight > window.innerHeight * 0.6;
      try {
        node.scrollIntoView({ block: tall ? 'start' : 'nearest', behavior: scrollBehavior() });
      } catch (e) {
        node.scrollIntoView(false);
      }
    }

    function message(kind) {
      var wrap = el('div', 'msg ' + kind);
      var bubble = el('div', 'bubble');
      wrap.appendChild(bubble);
      return { wrap: wrap, bubble: bubble };
    }

    function append(node) {
      log.appendChild(node);
      reveal(node);
      return node;
    }

    function addUser(text) {
      var m = message('user');
      m.bubble.appendChild(el('span', 'visually-hidden', TEXT.youAsked));
      m.bubble.appendChild(el('p', 'text', text));
      return append(m.wrap);
    }

    function addNotice(text) {
      var m = message('system');
      m.wrap.setAttribute('data-status', 'error');
      m.bubble.appendChild(el('span', 'visually-hidden', TEXT.noticePrefix));
      m.bubble.appendChild(el('p', 'text', text));
      return append(m.wrap);
    }

    function addPending() {
      var m = message('pending');
      m.wrap.id = 'pending';
      var p = el('p', 'text');
      p.appendChild(el('span', 'spinner'));
      p.appendChild(document.createTextNode(TEXT.pending));
      m.bubble.appendChild(p);
      return append(m.wrap);
    }

    function copyButton(value, label, target) {
      var button = el('button', 'copy', TEXT.copy);
      button.type = 'button';
      button.setAttribute('aria-label', TEXT.copy + label);
      var timer = 0;
      button.addEventListener('click', async function () {
        var ok = await copyText(value);
        window.clearTimeout(timer);
        if (ok) {
          button.textContent = TEXT.copied;
          announce(TEXT.copied + label);
          timer = window.setTimeout(function () { button.textContent = TEXT.copy; }, 2000);
        } else {
          selectContents(target);
          announce(TEXT.copyFailed);
        }
      });
      return button;
    }

    function ticketBox(ticket) {
      var box = el('div', 'ticket');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', TEXT.ticketTitle);
      box.appendChild(el('p', 'ticket-title', TEXT.ticketTitle));

      var code = String(ticket.code);
      var codeLine = el('p', 'ticket-line');
      codeLine.appendChild(el('span', 'ticket-label', TEXT.ticketCode));
      var codeNode = el('span', 'ticket-code', code);
      codeLine.appendChild(codeNode);
      codeLine.appendChild(copyButton(code, '办理编号', codeNode));
      box.appendChild(codeLine);

      var password = ticket.password;
      if (password !== undefined && password !== null && String(password) !== '') {
        var pwd = String(password);
        var pwdLine = el('p', 'ticket-line');
        pwdLine.appendChild(el('span', 'ticket-label', TEXT.ticketPassword));
        var pwdNode = el('span', 'ticket-password', pwd);
        pwdLine.appendChild(pwdNode);
        pwdLine.appendChild(copyButton(pwd, '查询密码', pwdNode));
        box.appendChild(pwdLine);
      }

      var note = nonEmptyString(ticket.note);
      if (note) box.appendChild(el('p', 'ticket-note', note));

      var follow = el('p', 'ticket-note');
      follow.appendChild(document.createTextNode(TEXT.ticketFollowUp + TEXT.ticketLookupBefore));
      var link = el('a', null, TEXT.ticketLookupLink);
      link.href = '/tickets';
      follow.appendChild(link);
      follow.appendChild(document.createTextNode(TEXT.ticketLookupAfter));
      box.appendChild(follow);
      box.appendChild(el('p', 'ticket-note ticket-keep', TEXT.ticketKeep));
      if (password !== undefined && password !== null && String(password) !== '') {
        box.appendChild(contactForm(code, String(password)));
      }
      return box;
    }

    var contactCount = 0;

    function field(form, id, label, type, attrs) {
      var labelNode = el('label', null, label);
      labelNode.htmlFor = id;
      var input = el('input');
      input.id = id;
      input.type = type;
      Object.keys(attrs).forEach(function (name) { input.setAttribute(name, attrs[name]); });
      form.appendChild(labelNode);
      form.appendChild(input);
      return input;
    }

    /* The optional contact form under a new ticket: posts to /api/tickets/<code>/contact
       with the ticket's query password, which authenticates it. */
    function contactForm(code, password) {
      var n = ++contactCount;
      var details = el('details', 'ticket-contact');
      details.appendChild(el('summary', null, TEXT.contactToggle));
      details.appendChild(el('p', 'ticket-note', TEXT.contactIntro));
      var form = el('form', 'contact-form');
      form.noValidate = true;
      var name = field(form, 'contact-name-' + n, TEXT.contactName, 'text',
        { maxlength: '40', autocomplete: 'name' });
      var phone = field(form, 'contact-phone-' + n, TEXT.contactPhone, 'tel',
        { maxlength: '20', autocomplete: 'tel', inputmode: 'tel' });
      var email = field(form, 'contact-email-' + n, TEXT.contactEmail, 'email',
        { maxlength: '254', autocomplete: 'email' });
      var submit = el('button', 'send', TEXT.contactSubmit);
      submit.type = 'submit';
      form.appendChild(submit);
      var result = el('p', 'contact-error');
      result.setAttribute('role', 'alert');
      result.hidden = true;
      form.appendChild(result);

      function show(text) {
        result.textContent = text;
        result.hidden = false;
      }

      form.addEventListener('submit', async function (event) {
        event.preventDefault();
        if (submit.disabled) return;
        if (!phone.value.trim() && !email.value.trim()) {
          show(TEXT.contactNeedOne);
          phone.focus();
          return;
        }
        submit.disabled = true;
        submit.textContent = TEXT.contactSending;
        var data = null;
        var ok = false;
        var statusCode = 0;
        try {
          var response = await fetch('/api/tickets/' + encodeURIComponent(code) + '/contact', {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
            credentials: 'same-origin',
            body: JSON.stringify({ password: password, name: name.value, phone: phone.value, email: email.value })
          });
          statusCode = response.status;
          ok = response.ok;
          try { data = await response.json(); } catch (e) { data = null; }
        } catch (err) {
          show(TEXT.network);
          submit.disabled = false;
          submit.textContent = TEXT.contactSubmit;
          return;
        }
        submit.disabled = false;
        submit.textContent = TEXT.contactSubmit;
        if (!ok) {
          show(errorMessage(statusCode, data));
          return;
        }
        var done = el('p', 'ticket-note contact-done',
          (data && nonEmptyString(data.message)) || TEXT.contactDone);
        done.setAttribute('role', 'status');
        form.replaceWith(done);
      });
      details.appendChild(form);
      return details;
    }

    function sourceLine(source, sourceUrl) {
      var label = nonEmptyString(source);
      var href = safePath(sourceUrl);
      if (!label && !href) return null;
      var line = el('p', 'source', TEXT.sourcePrefix);
      if (href) {
        var a = el('a', null, label || TEXT.sourceLinkFallback);
        a.href = href;
        line.appendChild(a);
      } else {
        line.appendChild(el('span', 'source-text', label));
      }
      return line;
    }

    function suggestionList(items, isClarify) {
      if (!Array.isArray(items)) return null;
      var valid = items.filter(function (s) {
        return s && nonEmptyString(s.question);
      });
      if (!valid.length) return null;
      var frag = document.createDocumentFragment();
      if (!isClarify) frag.appendChild(el('p', 'suggestions-title', TEXT.moreSuggestions));
      var group = el('div', 'suggestions');
      group.setAttribute('role', 'group');
      group.setAttribute('aria-label', isClarify ? TEXT.suggestionsLabel : TEXT.moreSuggestions);
      valid.forEach(function (s) {
        var button = el('button', 'suggestion', s.question);
        button.type = 'button';
        if (s.id !== undefined && s.id !== null) button.setAttribute('data-id', String(s.id));
        button.addEventListener('click', function () { ask(s.question); });
        group.appendChild(button);
      });
      frag.appendChild(group);
      return frag;
    }

    /* 您可能还想了解: up to three entries related to an answered FAQ entry; clicking one asks it. */
    function relatedList(items) {
      if (!Array.isArray(items)) return null;
      var valid = items.filter(function (r) {
        return r && nonEmptyString(r.question);
      }).slice(0, 3);
      if (!valid.length) return null;
      var box = el('div', 'related');
      box.appendChild(el('p', 'suggestions-title', TEXT.moreSuggestions));
      var group = el('div', 'suggestions');
      group.setAttribute('role', 'group');
      group.setAttribute('aria-label', TEXT.moreSuggestions);
      valid.forEach(function (r) {
        var button = el('button', 'suggestion related-question', r.question);
        button.type = 'button';
        if (nonEmptyString(r.key)) button.setAttribute('data-key', r.key);
        button.addEventListener('click', function () { ask(r.question); });
        group.appendChild(button);
      });
      box.appendChild(group);
      return box;
    }

    var feedbackCount = 0;

    async function postJson(url, payload) {
      try {
        var response = await fetch(url, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
          credentials: 'same-origin',
          body: JSON.stringify(payload)
        });
        var data = null;
        try { data = await response.json(); } catch (e) { data = null; }
        return { ok: response.ok, status: response.status, data: data };
      } catch (err) {
        return { ok: false, status: 0, data: null };
      }
    }

    /* 有用 / 没用 under an answer. 有用 is sent at once; 没用 opens the reasons (sent with
       提交反馈) and, when the answer is not small talk, a button that hands the same
       question to staff as a ticket. One feedback per answer: the server refuses a second. */
    function feedbackBox(askId, question, offerTicket) {
      var n = ++feedbackCount;
      var box = el('div', 'feedback');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-labelledby', 'feedback-title-' + n);
      var title = el('p', 'feedback-title', TEXT.feedbackQuestion);
      title.id = 'feedback-title-' + n;
      box.appendChild(title);

      var choices = el('div', 'feedback-choices');
      var yes = el('button', 'feedback-choice', TEXT.helpful);
      yes.type = 'button';
      var no = el('button', 'feedback-choice', TEXT.notHelpful);
      no.type = 'button';
      no.setAttribute('aria-expanded', 'false');
      no.setAttribute('aria-controls', 'feedback-panel-' + n);
      choices.appendChild(yes);
      choices.appendChild(no);
      box.appendChild(choices);

      var panel = el('div', 'feedback-panel');
      panel.id = 'feedback-panel-' + n;
      panel.hidden = true;
      var reasonForm = el('form', 'feedback-form');
      reasonForm.noValidate = true;
      if (reasons.length) {
        var fieldset = el('fieldset');
        fieldset.appendChild(el('legend', null, TEXT.reasonLegend));
        var list = el('div', 'feedback-reasons');
        reasons.forEach(function (reason) {
          var label = el('label');
          var radio = el('input');
          radio.type = 'radio';
          radio.name = 'feedback-reason-' + n;
          radio.value = reason.code;
          label.appendChild(radio);
          label.appendChild(document.createTextNode(reason.label));
          list.appendChild(label);
        });
        fieldset.appendChild(list);
        reasonForm.appendChild(fieldset);
      }
      var noteLabel = el('label', 'feedback-note-label', TEXT.reasonNote);
      noteLabel.htmlFor = 'feedback-note-' + n;
      var note = el('textarea', 'feedback-note');
      note.id = 'feedback-note-' + n;
      note.rows = 2;
      note.maxLength = 200;
      reasonForm.appendChild(noteLabel);
      reasonForm.appendChild(note);
      var submit = el('button', 'send', TEXT.feedbackSubmit);
      submit.type = 'submit';
      reasonForm.appendChild(submit);
      panel.appendChild(reasonForm);

      var offer = null;
      if (offerTicket) {
        offer = el('div', 'feedback-ticket');
        offer.appendChild(el('p', null, TEXT.ticketOffer));
        var handOver = el('button', 'feedback-escalate', TEXT.ticketButton);
        handOver.type = 'button';
        handOver.addEventListener('click', async function () {
          if (handOver.disabled) return;
          handOver.disabled = true;
          var answered = await ask(question, { escalate: true });
          if (!answered) handOver.disabled = false;
        });
        offer.appendChild(handOver);
        panel.appendChild(offer);
      }
      box.appendChild(panel);

      var error = el('p', 'feedback-error');
      error.setAttribute('role', 'alert');
      error.hidden = true;
      box.appendChild(error);

      var sending = false;
      var done = false;

      function finish(text, helpful) {
        done = true;
        var hadFocus = box.contains(document.activeElement);
        var thanks = el('p', 'feedback-done', text);
        thanks.setAttribute('role', 'status');
        thanks.tabIndex = -1;
        choices.replaceWith(thanks);
        reasonForm.remove();
        error.hidden = true;
        // Whoever found the answer no help keeps the way to a person.
        if (!helpful && offer) panel.hidden = false;
        else panel.remove();
        if (hadFocus) thanks.focus();
      }

      async function send(helpful, reasonCode, reasonText) {
        if (sending || done) return;
        sending = true;
        error.hidden = true;
        submit.textContent = TEXT.feedbackSending;
        var payload = { ask_id: askId, helpful: helpful };
        if (reasonCode) payload.reason_code = reasonCode;
        if (reasonText) payload.reason = reasonText;
        var result = await postJson(FEEDBACK_ENDPOINT, payload);
        sending = false;
        submit.textContent = TEXT.feedbackSubmit;
        var message = result.data && typeof result.data === 'object' ? nonEmptyString(result.data.message) : null;
        if (result.ok) {
          finish(message || TEXT.feedbackThanks, helpful);
        } else if (result.status === 409) {
          finish(errorMessage(result.status, result.data), helpful); // already given: nothing to retry
        } else {
          error.textContent = result.status ? errorMessage(result.status, result.data) : TEXT.network;
          error.hidden = false;
        }
      }

      yes.addEventListener('click', function () { send(true, null, null); });
      no.addEventListener('click', function () {
        var open = panel.hidden;
        panel.hidden = !open;
        no.setAttribute('aria-expanded', open ? 'true' : 'false');
      });
      reasonForm.addEventListener('submit', function (event) {
        event.preventDefault();
        var checked = reasonForm.querySelector('input[type="radio"]:checked');
        send(false, checked ? checked.value : null, note.value.trim() || null);
      });
      return box;
    }

    function addAnswer(data, question) {
      var statusValue = typeof data.status === 'string' ? data.status : 'answered';
      var m = message('bot');
      m.wrap.setAttribute('data-status', statusValue);
      if (typeof data.kind === 'string') m.wrap.setAttribute('data-kind', data.kind);
      if (data.entry_id !== undefined && data.entry_id !== null) {
        m.wrap.setAttribute('data-entry-id', String(data.entry_id));
      }

      var answer = nonEmptyString(data.answer) ||
        (statusValue === 'escalated' ? TEXT.escalatedDefault : TEXT.emptyAnswer);
      m.bubble.appendChild(el('span', 'visually-hidden', TEXT.answerPrefix));
      m.bubble.appendChild(el('p', 'text', answer));

      var suggestions = suggestionList(data.suggestions, statusValue === 'clarify');
      if (suggestions) m.bubble.appendChild(suggestions);

      if (statusValue === 'escalated' && data.ticket && data.ticket.code !== undefined &&
          data.ticket.code !== null && String(data.ticket.code) !== '') {
        m.bubble.appendChild(ticketBox(data.ticket));
      }

      var src = sourceLine(data.source, data.source_url);
      if (src) m.bubble.appendChild(src);

      var related = statusValue === 'answered' && data.kind === 'faq' ? relatedList(data.related) : null;
      if (related) m.bubble.appendChild(related);

      if (data.kind === 'referral' && nonEmptyString(question)) {
        /* Another body's business: no ticket was opened, but the citizen may still send it. */
        var stillSend = el('button', 'feedback-escalate referral-escalate', TEXT.referralButton);
        stillSend.type = 'button';
        stillSend.addEventListener('click', async function () {
          if (stillSend.disabled) return;
          stillSend.disabled = true;
          var sent = await ask(question, { escalate: true });
          if (!sent) stillSend.disabled = false;
        });
        m.bubble.appendChild(stillSend);
      }

      var askId = nonEmptyString(data.ask_id);
      if (statusValue === 'answered' && askId) {
        var smallTalk = data.kind === 'chitchat' || data.kind === 'handoff';
        m.bubble.appendChild(feedbackBox(askId, question, !smallTalk && !!nonEmptyString(question)));
      }
      return append(m.wrap);
    }

    function errorMessage(statusCode, data) {
      var fromServer = data && typeof data === 'object' ? nonEmptyString(data.error) : null;
      if (fromServer) return fromServer;
      if (statusCode === 429) return TEXT.tooMany;
      if (statusCode === 413) return TEXT.tooLong;
      if (statusCode >= 500) return TEXT.server;
      return TEXT.badRequest;
    }

    async function post(question, escalate) {
      var controller = typeof AbortController === 'function' ? new AbortController() : null;
      var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
      try {
        var response;
        try {
          response = await fetch(endpoint, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
            credentials: 'same-origin',
            body: JSON.stringify(escalate ? { question: question, session: sessionId(), escalate: true }
              : { question: question, session: sessionId() }),
            signal: controller ? controller.signal : undefined
          });
        } catch (err) {
          return { notice: err && err.name === 'AbortError' ? TEXT.timeout : TEXT.network };
        }
        var data = null;
        try { data = await response.json(); } catch (e) { data = null; }
        if (!response.ok) return { notice: errorMessage(response.status, data) };
        if (!data || typeof data !== 'object') return { notice: TEXT.server };
        return { data: data };
      } finally {
        window.clearTimeout(timer);
      }
    }

    function setBusy(on) {
      busy = on;
      if (sendButton) sendButton.disabled = on;
      form.setAttribute('aria-busy', on ? 'true' : 'false');
    }

    /* Ask a question (options.escalate: hand it to staff as a ticket); resolves to
       whether an answer came back (false when busy, empty, or on an error notice). */
    async function ask(text, options) {
      var question = String(text === undefined || text === null ? '' : text).trim();
      var escalate = !!(options && options.escalate);
      if (!question || busy) return false;
      setBusy(true);
      addUser(escalate ? TEXT.escalateAsked + question : question);
      var pending = addPending();
      var result;
      try {
        result = await post(question, escalate);
      } catch (e) {
        result = { notice: TEXT.network };
      }
      pending.remove();
      var answered = false;
      try {
        if (result.data) {
          addAnswer(result.data, question);
          answered = true;
        } else {
          addNotice(result.notice);
        }
      } catch (e) {
        addNotice(TEXT.server);
      }
      setBusy(false);
      try { input.focus({ preventScroll: true }); } catch (e) { input.focus(); }
      return answered;
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (busy) return;
      var question = input.value.trim();
      if (!question) {
        input.value = '';
        input.focus();
        return;
      }
      input.value = '';
      ask(question);
    });

    // Safari fires the Enter that confirms an IME (拼音) candidate as a
    // keydown with keyCode 229 after compositionend: it must not submit.
    input.addEventListener('keydown', function (event) {
      if (event.key === 'Enter' && (event.isComposing || event.keyCode === 229)) {
        event.preventDefault();
      }
    });

    if (examples) {
      examples.addEventListener('click', function (event) {
        var button = event.target.closest ? event.target.closest('button.example') : null;
        if (!button || !examples.contains(button)) return;
        ask(button.getAttribute('data-question') || button.textContent);
      });
    }

    sessionId();
  }

  function onReady(fn) {
    if (document.readyState === 'loading') {
      document.addEventListener('DOMContentLoaded', fn);
    } else {
      fn();
    }
  }

  onReady(function () {
    initFontToggle();
    initSkipLinks();
    initChat();
  });
})();
