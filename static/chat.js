/*
 * 政务公开智能问答 — page script (plain ES2017, no frameworks, CSP-safe).
 *
 * Loaded by base.html on every page. It
 *   1. applies the saved 大字模式 (large text + high contrast) preference to
 *      <html class="large-text"> as soon as it runs, and wires #font-toggle;
 *   2. makes skip links move keyboard focus to their target;
 *   3. runs the chat when the page has #chat-form (index.html), with 有用 / 没用
 *      under each answer (POST /api/feedback) and, on 没用, the reasons and a
 *      way to hand the question to staff (POST /api/ask with escalate: true);
 *   4. keeps the conversation on this device (localStorage, CHAT_KEY): the
 *      questions, the replies as data, the tickets issued (code and query
 *      password) and the session id, re-rendered on reload without asking the
 *      server again, until the citizen erases it (#chat-device);
 *   5. shows each ticket as a slip (工单凭条) that can be printed on its own or
 *      saved as a .txt file.
 *
 * Security: everything a citizen types or the server returns is inserted with
 * textContent / createElement — never innerHTML; what comes back from storage
 * is treated the same way, and is re-validated (cleanReply) before use. Links
 * from the server are only used when they are same-origin paths ("/..."), see
 * safePath(). The query password goes into no URL and back to no server except
 * the ticket's own contact endpoint, which it authenticates.
 */
(function () {
  'use strict';

  var LARGE_TEXT_KEY = 'zwgk.largeText';
  var LARGE_TEXT_CLASS = 'large-text';
  var SESSION_KEY = 'zwgk.session';
  // The kept conversation. A new layout gets a new key; an old one is ignored.
  var CHAT_KEY = 'zwgk.chat.v1';
  var CHAT_VERSION = 1;
  var MAX_EXCHANGES = 50;          // question-and-reply pairs kept on the device
  var MAX_STORED_CHARS = 300000;   // well inside the smallest localStorage quota (5 MB)
  var KEEP_DAYS = 7;               // exchanges older than this are dropped (shared computers)
  var LOOKUP_PATH = '/tickets';
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
    ticketCode: '工单编号',
    ticketPassword: '查询密码',
    ticketPasswordEarlier: '使用此前获得的查询密码',
    ticketDate: '登记时间',
    ticketQuestion: '您的问题',
    ticketFollowUp: '工作人员将核实后跟进答复。',
    ticketLookupBefore: '可凭工单编号和查询密码在“',
    ticketLookupLink: '办理查询',
    ticketLookupAfter: '”页面查看办理进度和答复。',
    ticketKeep: '请妥善保存工单编号和查询密码，不要告诉他人。',
    slipTitle: '工单凭条',
    slipPrint: '打印',
    slipSave: '保存为文本',
    slipSaved: '工单凭条已保存为文本文件。',
    slipFileName: '工单凭条',
    slipLookup: '查询方式',
    slipLookupHow: '打开“办理查询”页面，输入工单编号和查询密码，即可查看办理进度和答复。',
    restored: '已显示本机保存的对话记录。',
    erased: '本机对话记录已清除。',
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

  /* A ticket code as people read it aloud: GK7Q3M9XA2RT -> GK7Q-3M9X-A2RT. The same rule as
     service/tickets.py display_code(); anything else is shown as it is. Stored and sent
     codes keep the plain form; the lookup page accepts both. */
  var TICKET_CODE_RE = /^GK[0-9A-HJKMNP-TV-Z]{10}$/;

  function displayCode(code) {
    var text = String(code === undefined || code === null ? '' : code);
    if (!TICKET_CODE_RE.test(text)) return text;
    return text.slice(0, 4) + '-' + text.slice(4, 8) + '-' + text.slice(8);
  }

  function pad2(n) {
    return (n < 10 ? '0' : '') + n;
  }

  /* 2024年5月3日 14:05 (the device's local time), or '' for a missing or bad stamp. */
  function formatWhen(iso) {
    var when = typeof iso === 'string' ? new Date(iso) : null;
    if (!when || isNaN(when.getTime())) return '';
    return when.getFullYear() + '年' + (when.getMonth() + 1) + '月' + when.getDate() + '日 ' +
      pad2(when.getHours()) + ':' + pad2(when.getMinutes());
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

  function validSessionId(id) {
    return typeof id === 'string' && /^[0-9a-f]{32}$/.test(id);
  }

  /* One id per conversation, so follow-up questions (那部分公开的呢) find what came before:
     the kept conversation's, else this tab's, else a new one. */
  function sessionId() {
    if (memorySessionId) return memorySessionId;
    var kept = loadConversation();
    var id = kept ? kept.session : readItem(session, SESSION_KEY);
    if (!validSessionId(id)) id = randomId();
    writeItem(session, SESSION_KEY, id);
    memorySessionId = id;
    return id;
  }

  /* ---------- 4. the conversation kept on this device ---------- */

  /*
   * localStorage[CHAT_KEY] = {"v": 1, "session": "<32 hex>", "exchanges": [exchange, ...]}
   * exchange = {"id": random, "at": ISO time, "q": the question as the server stored it (phone,
 *             ID-card and e-mail numbers masked), "escalate": bool, "reply": cleanReply(...),
   *             "feedback": {"helpful": bool, "message": str} once 有用 / 没用 was given}
   * reply.ticket may carry "contact": the server's message once contact details were sent.
   * Only the last MAX_EXCHANGES of the last KEEP_DAYS days are kept. Tabs of one browser
 * share it: each write merges what another tab wrote meanwhile (by exchange id), so no
 * tab's ticket is lost. Everything read back is validated again: the
   * storage may be corrupt, from another version, or edited by hand.
   */

  function clip(value, max) {
    return typeof value === 'string' ? value.slice(0, max || 20000) : null;
  }

  function cleanList(items, max, clean) {
    if (!Array.isArray(items)) return [];
    var out = [];
    for (var i = 0; i < items.length && out.length < max; i++) {
      var item = clean(items[i]);
      if (item) out.push(item);
    }
    return out;
  }

  function cleanTicket(ticket) {
    if (!ticket || typeof ticket !== 'object') return null;
    var code = ticket.code;
    if (typeof code === 'number') code = String(code);
    code = nonEmptyString(code);
    if (!code) return null;
    var out = { code: code.slice(0, 64) };
    var password = ticket.password;
    if (typeof password === 'number') password = String(password);
    if (nonEmptyString(password)) out.password = password.slice(0, 64);
    if (ticket.reused === true) out.reused = true;
    if (nonEmptyString(ticket.note)) out.note = clip(ticket.note, 1000);
    if (nonEmptyString(ticket.contact)) out.contact = clip(ticket.contact, 500);
    return out;
  }

  /* The parts of an /api/ask reply the chat shows, and nothing else. */
  function cleanReply(data) {
    var d = data && typeof data === 'object' ? data : {};
    var entryId = d.entry_id;
    return {
      status: nonEmptyString(d.status) ? clip(d.status, 40) : 'answered',
      kind: nonEmptyString(d.kind) ? clip(d.kind, 40) : null,
      answer: clip(d.answer),
      source: clip(d.source, 1000),
      source_url: clip(d.source_url, 2000),
      entry_id: typeof entryId === 'number' || typeof entryId === 'string' ? entryId : null,
      ask_id: nonEmptyString(d.ask_id) ? clip(d.ask_id, 200) : null,
      suggestions: cleanList(d.suggestions, 10, function (s) {
        if (!s || !nonEmptyString(s.question)) return null;
        var item = { question: clip(s.question, 500) };
        if (typeof s.id === 'number' || nonEmptyString(s.id)) item.id = s.id;
        if (nonEmptyString(s.pick)) item.pick = clip(s.pick, 500);
        return item;
      }),
      related: cleanList(d.related, 3, function (r) {
        if (!r || !nonEmptyString(r.question)) return null;
        var item = { question: clip(r.question, 500) };
        if (nonEmptyString(r.key)) item.key = clip(r.key, 200);
        return item;
      }),
      ticket: cleanTicket(d.ticket)
    };
  }

  function cleanExchange(raw) {
    if (!raw || typeof raw !== 'object' || !nonEmptyString(raw.q)) return null;
    var at = clip(raw.at, 40);
    var time = at ? Date.parse(at) : NaN;
    if (!isNaN(time) && Date.now() - time > KEEP_DAYS * 86400000) return null;  // expired
    var exchange = {
      id: nonEmptyString(raw.id) ? clip(raw.id, 64) : (at || '') + '|' + clip(raw.q, 64),
      at: at,
      q: clip(raw.q, 2000),
      escalate: raw.escalate === true,
      reply: cleanReply(raw.reply)
    };
    var fb = raw.feedback;
    if (fb && typeof fb === 'object' && typeof fb.helpful === 'boolean') {
      exchange.feedback = { helpful: fb.helpful, message: clip(fb.message, 500) || '' };
    }
    return exchange;
  }

  /* The kept conversation, or null when there is none (or it cannot be read). */
  function loadConversation() {
    var raw = readItem(local, CHAT_KEY);
    if (!raw) return null;
    var parsed = null;
    try { parsed = JSON.parse(raw); } catch (e) { return null; }
    if (!parsed || typeof parsed !== 'object' || parsed.v !== CHAT_VERSION) return null;
    return {
      session: validSessionId(parsed.session) ? parsed.session : null,
      exchanges: cleanList(parsed.exchanges, MAX_EXCHANGES, cleanExchange)
    };
  }

  /* Write the conversation (the last MAX_EXCHANGES, fewer if it grows too big or the
     storage is full). Storage that is off, full or refused is no error: the page goes on. */
  function saveConversation(exchanges) {
    if (!local) return;
    while (exchanges.length > MAX_EXCHANGES) exchanges.shift();
    for (;;) {
      var raw = JSON.stringify({ v: CHAT_VERSION, session: sessionId(), exchanges: exchanges });
      if (raw.length <= MAX_STORED_CHARS) {
        try {
          local.setItem(CHAT_KEY, raw);
          return;
        } catch (e) { /* full: keep fewer */ }
      }
      if (exchanges.length <= 1) return;
      exchanges.splice(0, Math.ceil(exchanges.length / 2));
    }
  }

  /* Forget the conversation, its tickets and its session id on this device. */
  function eraseConversation() {
    try { if (local) local.removeItem(CHAT_KEY); } catch (e) { /* nothing to do */ }
    try { if (session) session.removeItem(SESSION_KEY); } catch (e) { /* nothing to do */ }
    memorySessionId = null;
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
    var exchanges = [];      // the kept conversation (see saveConversation)
    var restoring = false;   // drawing the kept conversation: no scrolling, no announcements
    var generation = 0;      // bumped on erase: answers to questions asked before are dropped
    var agencyName = form.getAttribute('data-agency') || '';
    var productName = form.getAttribute('data-product') || '';

    /* Save the conversation, first taking in what other tabs kept meanwhile (a tab that
       was waiting for an answer did not follow them); true if that added anything. */
    function keep() {
      var stored = loadConversation();
      var mine = {};
      exchanges.forEach(function (x) { mine[x.id] = true; });
      var added = stored ? stored.exchanges.filter(function (x) { return !mine[x.id]; }) : [];
      if (added.length) {
        exchanges = exchanges.concat(added).sort(function (a, b) {
          return (a.at || '') < (b.at || '') ? -1 : (a.at || '') > (b.at || '') ? 1 : 0;
        });
      }
      saveConversation(exchanges);
      return added.length > 0;
    }

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
      if (!restoring) reveal(node);
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

    /* The exchange that first issued this ticket, with its password, if the kept
       conversation has it: a repeated question gets the same ticket back without its
       password (reused: true). */
    function issuedIn(code) {
      for (var i = 0; i < exchanges.length; i++) {
        var t = exchanges[i].reply.ticket;
        if (t && t.code === code && t.password) return exchanges[i];
      }
      return null;
    }

    /* What a slip says, for the page, the printed sheet and the text file alike. */
    function slipFacts(ticket, exchange) {
      var first = ticket.password ? exchange : (issuedIn(ticket.code) || exchange);
      return {
        code: displayCode(ticket.code),
        password: first.reply.ticket && first.reply.ticket.password || null,
        when: formatWhen(first.at),
        question: exchange.q,
        lookupUrl: window.location.origin + LOOKUP_PATH
      };
    }

    function slipRows(facts) {
      var rows = [[TEXT.ticketCode, facts.code], [TEXT.ticketPassword, facts.password || TEXT.ticketPasswordEarlier]];
      if (facts.when) rows.push([TEXT.ticketDate, facts.when]);
      rows.push([TEXT.ticketQuestion, facts.question]);
      return rows;
    }

    function slipText(facts) {
      var lines = [agencyName + ' ' + productName, TEXT.slipTitle, ''];
      slipRows(facts).forEach(function (row) { lines.push(row[0] + '：' + row[1]); });
      lines.push('', TEXT.slipLookup + '：' + TEXT.slipLookupHow, facts.lookupUrl, '', TEXT.ticketKeep);
      // CRLF and a byte-order mark, so that every Windows text editor shows the Chinese.
      return '\ufeff' + lines.join('\r\n') + '\r\n';
    }

    function saveSlip(facts) {
      if (typeof Blob !== 'function' || !window.URL || !URL.createObjectURL) return;
      var url = URL.createObjectURL(new Blob([slipText(facts)], { type: 'text/plain;charset=utf-8' }));
      var link = el('a');
      link.href = url;
      link.download = TEXT.slipFileName + '-' + facts.code + '.txt';
      link.hidden = true;
      document.body.appendChild(link);
      link.click();
      link.remove();
      window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      announce(TEXT.slipSaved);
    }

    /* Print one slip on its own: a plain copy goes into #print-slip, which the print
       styles (chat.css) show alone while <html> has .printing-slip. */
    function printSlip(facts) {
      var old = document.getElementById('print-slip');
      if (old) old.remove();
      var sheet = el('div', 'print-slip');
      sheet.id = 'print-slip';
      sheet.appendChild(el('p', 'print-slip-org', agencyName + ' ' + productName));
      sheet.appendChild(el('p', 'print-slip-title', TEXT.slipTitle));
      var list = el('dl', 'slip-facts');
      slipRows(facts).forEach(function (row) {
        var item = el('div', 'slip-row');
        item.appendChild(el('dt', null, row[0]));
        item.appendChild(el('dd', null, row[1]));
        list.appendChild(item);
      });
      sheet.appendChild(list);
      sheet.appendChild(el('p', null, TEXT.slipLookup + '：' + TEXT.slipLookupHow));
      sheet.appendChild(el('p', 'print-slip-url', facts.lookupUrl));
      sheet.appendChild(el('p', null, TEXT.ticketKeep));
      document.body.appendChild(sheet);
      root.classList.add('printing-slip');
      window.print();
    }

    window.addEventListener('afterprint', function () {
      root.classList.remove('printing-slip');
      var sheet = document.getElementById('print-slip');
      if (sheet) sheet.remove();
    });

    function slipRow(list, label, value) {
      var item = el('div', 'slip-row');
      item.appendChild(el('dt', null, label));
      var dd = el('dd');
      if (value) dd.appendChild(value);
      item.appendChild(dd);
      list.appendChild(item);
      return dd;
    }

    /* The ticket a reply issued, as a slip: 工单编号 (grouped), 查询密码, when, the question,
       where to look it up; printable and savable, with the optional contact form. */
    function ticketSlip(ticket, exchange) {
      var facts = slipFacts(ticket, exchange);
      var box = el('div', 'ticket');
      box.setAttribute('role', 'group');
      box.setAttribute('aria-label', TEXT.ticketTitle);
      box.appendChild(el('p', 'ticket-title', TEXT.ticketTitle));

      var list = el('dl', 'slip-facts');
      var codeNode = el('span', 'ticket-code', facts.code);
      slipRow(list, TEXT.ticketCode, codeNode).appendChild(copyButton(facts.code, TEXT.ticketCode, codeNode));
      if (facts.password) {
        var pwdNode = el('span', 'ticket-password', facts.password);
        slipRow(list, TEXT.ticketPassword, pwdNode).appendChild(copyButton(facts.password, TEXT.ticketPassword, pwdNode));
      } else {
        slipRow(list, TEXT.ticketPassword, document.createTextNode(TEXT.ticketPasswordEarlier));
      }
      if (facts.when) slipRow(list, TEXT.ticketDate, document.createTextNode(facts.when));
      slipRow(list, TEXT.ticketQuestion, el('span', 'slip-question', facts.question));
      box.appendChild(list);

      var note = nonEmptyString(ticket.note);
      if (note) box.appendChild(el('p', 'ticket-note', note));

      var follow = el('p', 'ticket-note');
      follow.appendChild(document.createTextNode(TEXT.ticketFollowUp + TEXT.ticketLookupBefore));
      var link = el('a', null, TEXT.ticketLookupLink);
      link.href = LOOKUP_PATH;
      follow.appendChild(link);
      follow.appendChild(document.createTextNode(TEXT.ticketLookupAfter));
      box.appendChild(follow);
      box.appendChild(el('p', 'ticket-note ticket-keep', TEXT.ticketKeep));

      var actions = el('div', 'slip-actions');
      var print = el('button', 'slip-action', TEXT.slipPrint);
      print.type = 'button';
      print.setAttribute('aria-label', TEXT.slipPrint + TEXT.slipTitle);
      print.addEventListener('click', function () { printSlip(facts); });
      var save = el('button', 'slip-action', TEXT.slipSave);
      save.type = 'button';
      save.setAttribute('aria-label', '将' + TEXT.slipTitle + TEXT.slipSave);
      save.addEventListener('click', function () { saveSlip(facts); });
      actions.appendChild(print);
      actions.appendChild(save);
      box.appendChild(actions);

      if (ticket.password) box.appendChild(contactForm(ticket.code, ticket.password, ticket));
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
    function contactForm(code, password, ticket) {
      var n = ++contactCount;
      var details = el('details', 'ticket-contact');
      details.appendChild(el('summary', null, TEXT.contactToggle));
      if (ticket.contact) {
        details.appendChild(el('p', 'ticket-note contact-done', ticket.contact));
        return details;
      }
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
        ticket.contact = (data && nonEmptyString(data.message)) || TEXT.contactDone;
        keep();
        var done = el('p', 'ticket-note contact-done', ticket.contact);
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
        // A clarify suggestion names itself (pick) so the desk learns which reading was meant.
        var pick = nonEmptyString(s.pick);
        button.addEventListener('click', function () { ask(s.question, pick ? { pick: pick } : null); });
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
       question to staff as a ticket. One feedback per answer: the server refuses a second,
       and the kept conversation remembers it was given (exchange.feedback). */
    function feedbackBox(exchange, offerTicket) {
      var askId = exchange.reply.ask_id;
      var question = exchange.q;
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

      function finish(text, helpful, restored) {
        done = true;
        var hadFocus = box.contains(document.activeElement);
        var thanks = el('p', 'feedback-done', text);
        if (!restored) {
          thanks.setAttribute('role', 'status');
          exchange.feedback = { helpful: helpful, message: text };
          keep();
        }
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
      if (exchange.feedback) {
        finish(exchange.feedback.message || TEXT.feedbackThanks, exchange.feedback.helpful, true);
      }
      return box;
    }

    /* The desk's reply to one exchange (live or restored): exchange.reply is cleanReply()'d. */
    function addAnswer(exchange) {
      var data = exchange.reply;
      var question = exchange.q;
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

      if (statusValue === 'escalated' && data.ticket) m.bubble.appendChild(ticketSlip(data.ticket, exchange));

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
        m.bubble.appendChild(feedbackBox(exchange, !smallTalk && !!nonEmptyString(question)));
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

    /* The body of POST /api/ask: escalate hands the question to staff; pick (opaque, from
       a clarify suggestion) says which suggestion was chosen. */
    function askBody(question, options) {
      var body = { question: question, session: sessionId() };
      if (options.escalate) body.escalate = true;
      if (nonEmptyString(options.pick)) body.pick = options.pick;
      return body;
    }

    async function post(question, options) {
      var controller = typeof AbortController === 'function' ? new AbortController() : null;
      var timer = controller ? window.setTimeout(function () { controller.abort(); }, REQUEST_TIMEOUT_MS) : 0;
      try {
        var response;
        try {
          response = await fetch(endpoint, {
            method: 'POST',
            headers: { 'Content-Type': 'application/json', 'Accept': 'application/json' },
            credentials: 'same-origin',
            body: JSON.stringify(askBody(question, options)),
            signal: controller ? controller.signal : undefined
          });
        } catch (err) {
          return { notice: err && err.name === 'AbortError' ? TEXT.timeout : TEXT.network };
        }
        var data = null;
        try { data = await response.json(); } catch (e) { data = null; }
        if (!response.ok) return { notice: errorMessage(response.status, data), status: response.status };
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

    function userText(question, escalate) {
      return escalate ? TEXT.escalateAsked + question : question;
    }

    /* Ask a question (options.escalate: hand it to staff as a ticket; options.pick: the
       clarify suggestion chosen); resolves to whether an answer came back (false when busy,
       empty, erased meanwhile, or on an error notice). An answer is kept on the device. */
    async function ask(text, options) {
      var question = String(text === undefined || text === null ? '' : text).trim();
      var opts = options || {};
      var escalate = !!opts.escalate;
      if (!question || busy) return false;
      setBusy(true);
      var asked = generation;
      addUser(userText(question, escalate));
      var pending = addPending();
      var result;
      try {
        result = await post(question, opts);
        if (result.notice && opts.pick && (result.status === 400 || result.status === 404)) {
          // A pick the desk no longer accepts (e.g. kept from long ago): the question still counts.
          result = await post(question, { escalate: escalate });
        }
      } catch (e) {
        result = { notice: TEXT.network };
      }
      pending.remove();
      if (asked !== generation) {  // the conversation was erased while this was on its way
        setBusy(false);
        return false;
      }
      var answered = false;
      try {
        if (result.data) {
          // The question is kept as the server stored it: personal numbers masked.
          var stored = nonEmptyString(result.data.question) ? clip(result.data.question, 2000) : question;
          var exchange = { id: randomId(), at: new Date().toISOString(), q: stored, escalate: escalate,
                           reply: cleanReply(result.data) };
          exchanges.push(exchange);
          if (keep()) {  // another tab added to the conversation meanwhile: show it all
            var all = exchanges;
            clearLog();
            generation -= 1;  // this is no erase: answers on their way still count
            exchanges = all;
            restore(true);
          } else {
            addAnswer(exchange);
          }
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

    /* The kept conversation, drawn again as it was (no request to the server). The log is
       not live meanwhile, so a screen reader does not read the whole history out. */
    function restore(quietly) {
      if (!exchanges.length) return;
      var live = log.getAttribute('aria-live');
      log.setAttribute('aria-live', 'off');
      restoring = true;
      exchanges.forEach(function (exchange) {
        try {
          addUser(userText(exchange.q, exchange.escalate));
          addAnswer(exchange);
        } catch (e) { /* one unreadable exchange does not hide the rest */ }
      });
      restoring = false;
      window.setTimeout(function () {
        if (live) log.setAttribute('aria-live', live);
        else log.removeAttribute('aria-live');
      }, 0);
      if (!quietly) announce(TEXT.restored);
    }

    /* Back to the empty chat: the welcome message only. */
    function clearLog() {
      generation += 1;
      exchanges = [];
      Array.prototype.slice.call(log.children).forEach(function (node) {
        if (!node.classList.contains('welcome')) node.remove();
      });
    }

    /* 清除本机对话记录: for shared and public computers. Asks first (in the page, not a
       browser dialog), then erases the conversation, its tickets and the session id. */
    function initErase() {
      var bar = document.getElementById('chat-device');
      var open = document.getElementById('erase-chat');
      var panel = document.getElementById('erase-confirm');
      var yes = document.getElementById('erase-yes');
      var no = document.getElementById('erase-no');
      // Nothing is kept where storage is off (a private window, a locked-down kiosk): no bar.
      if (!local || !bar || !open || !panel || !yes || !no) return;
      bar.hidden = false;
      function show(on) {
        panel.hidden = !on;
        open.setAttribute('aria-expanded', on ? 'true' : 'false');
      }
      open.addEventListener('click', function () {
        show(panel.hidden);
        if (!panel.hidden) yes.focus();
      });
      no.addEventListener('click', function () {
        show(false);
        open.focus();
      });
      yes.addEventListener('click', function () {
        eraseConversation();
        clearLog();
        input.value = '';
        show(false);
        announce(TEXT.erased);
        open.focus();
      });
    }

    /* Another tab of this browser changed the kept conversation. Erased there: nothing of it
       stays here either. Added to there: show the same conversation here (unless a question
       is on its way), so that the next answer kept here does not drop the other tab's. */
    function followOtherTabs() {
      window.addEventListener('storage', function (event) {
        if (event.key !== CHAT_KEY && event.key !== null) return;
        if (event.key === null || event.newValue === null) {
          eraseConversation();
          clearLog();
          return;
        }
        var kept = loadConversation();
        if (!kept || busy) return;
        clearLog();
        exchanges = kept.exchanges;
        if (kept.session) memorySessionId = kept.session;
        restore(true);
      });
    }

    var kept = loadConversation();
    exchanges = kept ? kept.exchanges : [];
    restore();
    initErase();
    followOtherTabs();
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
