// DTR SMART app page. Talks only to the app's own JSON API (same origin,
// session cookie + X-CSRF-Token); it never sees a token. Answers typed and
// not yet saved are kept in sessionStorage, so a failed save or a reload
// loses nothing.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const FORM = 'formContainer';
  // edits counts the user's changes; saved is the count the payer has.
  const state = { csrf: '', ctx: null, storageKey: null, formReady: false, submitted: false, busy: false, edits: 0, saved: 0 };

  // ---- API ----

  async function api(method, path, body) {
    const opts = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (method !== 'GET') opts.headers['X-CSRF-Token'] = state.csrf;
    if (body !== undefined) {
      opts.headers['Content-Type'] = 'application/json';
      opts.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, opts);
    } catch (e) {
      throw { error: 'The app could not be reached. Your answers are kept in this page; try again.', code: 'network', status: 0 };
    }
    let data = null;
    try { data = await resp.json(); } catch (e) { /* not JSON */ }
    if (!resp.ok) {
      const err = Object.assign({ error: 'The app answered HTTP ' + resp.status + '.', code: 'http' }, data || {});
      err.httpStatus = resp.status;
      throw err;
    }
    return data;
  }

  // ---- messages ----

  function outcomeText(oo) {
    if (!oo || !Array.isArray(oo.issue)) return '';
    return oo.issue.map((i) => i.diagnostics || (i.details && i.details.text) || i.code).filter(Boolean).join('; ');
  }

  function showError(err) {
    const box = $('alert');
    let msg = (err && err.error) || String(err);
    if (err && err.code === 'session_expired') {
      msg += '\nAfter the relaunch, the draft saved at the payer is offered again, and answers typed in this tab since are restored.';
    }
    const oo = outcomeText(err && err.outcome);
    if (oo && msg.indexOf(oo) < 0) msg += '\nPayer/EHR said: ' + oo;
    if (err && err.done && err.done.documentId) {
      msg += '\nAlready done: final document ' + err.done.documentId +
        (err.done.supersededDraftId ? ', draft ' + err.done.supersededDraftId + ' superseded' : '') + '.';
    }
    box.textContent = msg;
    box.className = 'alert';
    box.hidden = false;
    // For tests and automation: the code of the last error shown.
    document.body.dataset.lastError = (err && err.code) || 'error';
  }

  // reason is an error's message for the status line beside the buttons
  // (where the user looks after clicking), without its final full stop.
  function reason(err) {
    return String((err && err.error) || 'the app answered an error').replace(/[.\s]+$/, '');
  }

  function showInfo(msg) {
    const box = $('alert');
    box.textContent = msg;
    box.className = 'alert info';
    box.hidden = false;
  }

  function clearAlert() { $('alert').hidden = true; }

  function setStatus(msg, ok) {
    const s = $('status');
    s.textContent = msg;
    s.className = ok ? 'status-ok' : 'muted';
  }

  // ---- local copy of unsaved answers ----

  function readLocal() {
    if (!state.storageKey) return null;
    try {
      const raw = window.sessionStorage.getItem(state.storageKey);
      return raw ? JSON.parse(raw) : null;
    } catch (e) { return null; }
  }

  function writeLocal(qr) {
    if (!state.storageKey || !qr) return;
    try { window.sessionStorage.setItem(state.storageKey, JSON.stringify(qr)); } catch (e) { /* full or disabled */ }
  }

  function clearLocal() {
    if (!state.storageKey) return;
    try { window.sessionStorage.removeItem(state.storageKey); } catch (e) { /* ignore */ }
  }

  function currentResponse() {
    if (!state.formReady) return null;
    return LForms.Util.getFormFHIRData('QuestionnaireResponse', 'R4', $(FORM));
  }

  function unsaved() { return state.formReady && !state.submitted && state.edits !== state.saved; }

  // rememberSoon keeps the answers in sessionStorage shortly after an edit,
  // until the payer has them.
  let localTimer = null;
  function rememberSoon() {
    if (state.submitted || !state.formReady) return;
    state.edits++;
    clearTimeout(localTimer);
    localTimer = setTimeout(() => {
      if (!unsaved()) return;
      try { writeLocal(currentResponse()); } catch (e) { /* form not ready */ }
    }, 300);
  }

  // markSaved records that the payer has the answers as of edit count n;
  // the local copy goes unless the user changed something meanwhile.
  function markSaved(n) {
    state.saved = n;
    if (state.edits === n) {
      clearTimeout(localTimer);
      clearLocal();
    }
  }

  // ---- rendering ----

  function text(el, value) { el.textContent = value == null ? '' : String(value); }

  function renderContext(ctx) {
    text($('user'), ctx.user && (ctx.user.name || ctx.user.reference) ? 'Signed in as ' + (ctx.user.name || ctx.user.reference) : '');
    if (ctx.need_patient_banner) {
      text($('banner-name'), ctx.patient.name || ctx.patient.reference);
      text($('banner-birth'), ctx.patient.birthDate || 'unknown');
      text($('banner-gender'), ctx.patient.gender || '');
      text($('banner-id'), ctx.patient.id);
      $('banner').hidden = false;
    }
    if (ctx.order) {
      const o = ctx.order;
      text($('order-summary'), o.summary);
      text($('order-status'), o.status || '');
      text($('order-ref'), o.reference);
      text($('order-authored'), o.authoredOn || '–');
      text($('order-requester'), o.requester || '–');
      text($('order-reasons'), (o.reasons || []).join('; ') || '–');
      const c = ctx.coverage;
      text($('coverage'), c ? [c.payor, c.plan, c.memberId ? 'member ' + c.memberId : ''].filter(Boolean).join(' · ') : '–');
      $('order-card').hidden = false;
      $('order-picker').hidden = true;
    }
  }

  async function renderOrderPicker() {
    const list = $('order-list');
    list.textContent = '';
    const orders = await api('GET', '/api/orders');
    if (orders.length === 0) {
      const li = document.createElement('li');
      li.className = 'muted';
      li.textContent = 'This patient has no open orders.';
      list.appendChild(li);
    }
    for (const o of orders) {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary small';
      b.textContent = 'Document this order';
      b.addEventListener('click', () => chooseOrder(o.reference));
      const label = document.createElement('span');
      label.textContent = o.summary + ' (' + o.reference + ')' + (o.questionnaire ? '' : ' – no DTR questionnaire named');
      li.append(b, label);
      list.appendChild(li);
    }
    $('order-picker').hidden = false;
  }

  async function chooseOrder(ref) {
    clearAlert();
    try {
      const ctx = await api('POST', '/api/order', { reference: ref });
      state.ctx = ctx;
      state.storageKey = 'dtr:' + ctx.issuer + '|' + ctx.patient.id + '|' + ctx.order.reference;
      renderContext(ctx);
      await loadForm();
    } catch (err) { showError(err); }
  }

  async function loadForm() {
    $('form-card').hidden = false;
    const f = await api('GET', '/api/questionnaire');
    let q = f.questionnaire;
    text($('form-title'), q.title || q.name || 'Questionnaire');
    let qr = null;
    const local = readLocal();
    if (local) {
      qr = local;
      state.edits = 1; // not saved yet
      text($('form-note'), 'Restored the answers typed in this tab that were not saved yet.');
    } else if (f.draft) {
      qr = f.draft.questionnaireResponse;
      text($('form-note'), 'Resumed the draft saved at the payer' + (f.draft.date ? ' on ' + new Date(f.draft.date).toLocaleString() : '') + '.');
    } else {
      text($('form-note'), 'Fields marked * are required. Save a draft at any time and resume it on a later launch.');
    }
    if (f.draft_error) {
      showError({ error: 'Could not check the payer for a saved draft: ' + f.draft_error });
    }
    q = forRendering(q);
    const opts = { fhirVersion: 'R4' };
    if (qr) opts.questionnaireResponse = qr;
    $(FORM).style.visibility = 'hidden';
    try {
      try {
        await LForms.Util.addFormToPage(q, FORM, opts);
      } catch (e) {
        if (!qr) throw { error: 'The questionnaire could not be rendered: ' + (e && e.message ? e.message : e) };
        showInfo('The saved answers do not fit this version of the questionnaire; starting from an empty form.');
        await LForms.Util.addFormToPage(q, FORM, { fhirVersion: 'R4' });
      }
      await settled($(FORM));
    } finally {
      $(FORM).style.visibility = '';
    }
    state.formReady = true;
    const container = $(FORM);
    for (const ev of ['change', 'input', 'click', 'keyup']) container.addEventListener(ev, rememberSoon);
    $('save-draft').disabled = false;
    $('submit').disabled = false;
    document.body.dataset.formReady = 'true';
  }

  // settled waits (at most about 1.5 s) until LHC-Forms has finished laying
  // out the form: it measures its width with a ResizeObserver debounced by
  // 100 ms, so its first layout after addFormToPage gives the question
  // labels a narrow column that is corrected a little later. The caller
  // keeps the form invisible until then, so nobody sees (or screenshots)
  // the jump.
  async function settled(el) {
    const pause = (ms) => new Promise((r) => setTimeout(r, ms));
    await pause(150);
    let last = el.scrollHeight;
    for (let i = 0; i < 27; i++) {
      await pause(50);
      const h = el.scrollHeight;
      if (h === last) break;
      last = h;
    }
  }

  // refreshDocuments reloads the list of the order's documents at the
  // payer. data-documents on <body> says when the last refresh ended
  // ("loaded" or "failed"), for tests and automation that must not race it.
  async function refreshDocuments() {
    const tbody = $('documents').querySelector('tbody');
    let docs;
    try {
      docs = await api('GET', '/api/documents');
    } catch (err) {
      document.body.dataset.documents = 'failed';
      return;
    }
    document.body.dataset.documents = 'loaded';
    tbody.textContent = '';
    if (docs.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 5; td.className = 'muted'; td.textContent = 'None yet.';
      tr.appendChild(td); tbody.appendChild(tr);
      return;
    }
    for (const d of docs) {
      const tr = document.createElement('tr');
      const cells = [
        'DocumentReference/' + d.id + (d.versionId ? ' v' + d.versionId : ''),
        d.status + (d.docStatus ? ' / ' + d.docStatus : ''),
        d.answersStatus || '',
        d.date ? new Date(d.date).toLocaleString() : '',
        (d.replaces || []).join(', '),
      ];
      for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
      tbody.appendChild(tr);
    }
  }

  // claims shows a decoded token payload first (what a presenter talks
  // about), then its header.
  function claims(view) {
    return JSON.stringify({ payload: view.payload, header: view.header }, null, 2);
  }

  async function refreshSecurity() {
    let v;
    try { v = await api('GET', '/api/security'); } catch (err) { return; }
    text($('sec-ehr-note'), 'Issuer ' + v.ehr.issuer + ', client ' + v.ehr.client_id + '; verified ' + v.ehr.verified + '. Expires ' + new Date(v.ehr.expires_at).toLocaleTimeString() + '.');
    text($('sec-ehr-at'), claims(v.ehr.access_token));
    text($('sec-ehr-id'), v.ehr.id_token ? claims(v.ehr.id_token) : 'No id_token.');
    text($('sec-payer-at'), v.payer.access_token ? claims(v.payer.access_token) : 'Not requested yet.');
    text($('sec-signer'), JSON.stringify(v.signer, null, 2));
    const tbody = $('sec-answers');
    tbody.textContent = '';
    const answers = (v.payer_answers || []).slice().reverse();
    if (answers.length === 0) {
      const tr = document.createElement('tr');
      const td = document.createElement('td');
      td.colSpan = 4; td.className = 'muted'; td.textContent = 'None yet.';
      tr.appendChild(td); tbody.appendChild(tr);
    }
    for (const a of answers) {
      const tr = document.createElement('tr');
      const cells = [
        new Date(a.at).toLocaleTimeString(),
        a.method + ' ' + a.path,
        a.status ? String(a.status) : '–',
        (a.outcome || '') + (a.retry_after ? ' (retry after ' + a.retry_after + ' s)' : ''),
      ];
      for (const c of cells) { const td = document.createElement('td'); td.textContent = c; tr.appendChild(td); }
      tbody.appendChild(tr);
    }
  }

  // ---- actions ----

  async function withBusy(fn) {
    if (state.busy) return;
    state.busy = true;
    $('save-draft').disabled = true;
    $('submit').disabled = true;
    try {
      await fn();
    } finally {
      state.busy = false;
      if (!state.submitted) {
        $('save-draft').disabled = false;
        $('submit').disabled = false;
      }
      refreshSecurity();
    }
  }

  // forRendering returns a copy of the questionnaire for LHC-Forms without
  // `required` on group items: LHC-Forms 40 reports a required group as
  // missing even when its items are answered (lforms issue #60), which
  // would block every submit. Required questions inside the groups are
  // still checked; the payer's questionnaire itself is not changed.
  function forRendering(q) {
    const copy = JSON.parse(JSON.stringify(q));
    const strip = (items) => {
      for (const it of items || []) {
        if (it.type === 'group') delete it.required;
        strip(it.item);
      }
    };
    strip(copy.item);
    return copy;
  }

  function saveDraft() {
    return withBusy(async () => {
      clearAlert();
      const qr = currentResponse();
      const n = state.edits;
      writeLocal(qr); // kept until the payer has it
      setStatus('Saving the draft at the payer…');
      try {
        const r = await api('POST', '/api/draft', qr);
        markSaved(n);
        setStatus('Draft saved at ' + new Date(r.savedAt).toLocaleTimeString() + ' (DocumentReference/' + r.id + (r.versionId ? ', version ' + r.versionId : '') + ').', true);
        document.body.dataset.lastDraft = r.id;
        refreshDocuments();
      } catch (err) {
        setStatus('Draft not saved: ' + reason(err) + '. Your answers are kept in this page.');
        showError(err);
      }
    });
  }

  function submit() {
    return withBusy(async () => {
      clearAlert();
      const errors = LForms.Util.checkValidity($(FORM));
      if (errors && errors.length) {
        showError({ error: 'Some answers are missing or invalid:\n' + errors.join('\n') });
        return;
      }
      const qr = currentResponse();
      const n = state.edits;
      writeLocal(qr);
      setStatus('Submitting…');
      try {
        const r = await api('POST', '/api/submit', qr);
        state.submitted = true;
        markSaved(n);
        clearLocal();
        setStatus('Submitted: DocumentReference/' + r.documentId + ' at the payer' +
          (r.supersededDraftId ? ' (replaces draft ' + r.supersededDraftId + ')' : '') +
          ', QuestionnaireResponse/' + r.ehrQuestionnaireResponseId + ' written back to the EHR.', true);
        document.body.dataset.submitted = r.documentId;
        refreshDocuments();
      } catch (err) {
        setStatus('Not submitted: ' + reason(err) + '. Your answers are kept in this page.');
        showError(err);
      }
    });
  }

  async function logout() {
    try { await api('POST', '/logout'); } catch (e) { /* already gone */ }
    window.location.assign('/');
  }

  // ---- start ----

  async function start() {
    $('save-draft').addEventListener('click', saveDraft);
    $('submit').addEventListener('click', submit);
    $('logout').addEventListener('click', logout);
    window.addEventListener('beforeunload', () => {
      if (unsaved()) { try { writeLocal(currentResponse()); } catch (e) { /* ignore */ } }
    });
    try {
      const ctx = await api('GET', '/api/context');
      state.csrf = ctx.csrf_token;
      state.ctx = ctx;
      renderContext(ctx);
      refreshSecurity();
      if (!ctx.order) {
        await renderOrderPicker();
        return;
      }
      state.storageKey = 'dtr:' + ctx.issuer + '|' + ctx.patient.id + '|' + ctx.order.reference;
      await loadForm();
      refreshDocuments();
      refreshSecurity();
    } catch (err) {
      showError(err);
      const fc = $(FORM);
      if (!state.formReady && fc) fc.textContent = '';
    }
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
