/*
 * vhod: sign in with an EDS key / ID card (certificate login).
 *
 * Plain ES2017, no build step, no dependencies. Served from /static/cert-login.js and loaded by
 * the login page only when certificate login is enabled. The page's CSP is
 * `script-src 'self'; connect-src 'self'`: nothing inline, no eval, requests only to this origin.
 *
 * ADAPTER INTERFACE (how a deployment plugs in its national signing extension)
 * ---------------------------------------------------------------------------
 * A deployment defines `window.vhodSigner` in its own script served from this origin ('self'),
 * e.g. a small file that talks to the signing browser extension or local signing service:
 *
 *   window.vhodSigner = {
 *     name: "NCES AvToken",                 // shown to the user while signing
 *
 *     // Resolves to true when the extension / card reader is usable right now.
 *     // A rejection, a non-true answer or no answer within 5 s counts as "unavailable".
 *     async available() { return true; },
 *
 *     // Signs exactly the challenge bytes (do not hash them yourself unless the extension's
 *     // raw mode requires it) and returns the signer's certificate and the signature:
 *     //   certificate:   PEM, the signer's (leaf) certificate first, then intermediates
 *     //                  (an array of PEM strings is accepted too);
 *     //   signature:     base64 of a DER CMS SignedData over the challenge bytes
 *     //                  (detached or attached), or
 *     //   signature_raw: hex of a bare signature over the challenge bytes.
 *     // (A Uint8Array / ArrayBuffer is accepted for either signature field as well.)
 *     // Throwing (e.g. the user cancelled or the PIN was wrong) shows a "could not sign" message;
 *     // an Error's message is appended for the user.
 *     async sign(challengeBytes) {             // challengeBytes: Uint8Array
 *       return { certificate: "-----BEGIN CERTIFICATE-----\n...", signature: "MIAGCSqGSIb3..." };
 *     },
 *   };
 *
 * The object is looked up when the user presses the button, not when this file loads, so it may
 * be defined by a script loaded before or after this one, or injected later by an extension.
 *
 * When there is no `window.vhodSigner`, or it reports itself unavailable, the person is asked to
 * start their signing software. In development mode (`data-dev="1"`) the built-in developer
 * signer panel is shown instead: it displays the challenge and the command
 *   vhod dev sign-challenge --key KEY.pem --cert CERT.pem <challenge>
 * and takes the pasted certificate PEM and signature (base64 CMS; hex digits only = raw).
 * Every attempt spends the challenge on the server, so after a refusal the panel fetches a new
 * one. Both JSON calls also send the page's transaction id (`tx`).
 *
 * SERVER CONTRACT
 *   POST /login/certificate/challenge  {tx}                     -> {challenge: base64url, expires_in}
 *   POST /login/certificate  {tx, certificate, signature | signature_raw} -> {redirect}
 *   Both with `X-CSRF-Token` (from <meta name="csrf-token">) and JSON bodies; errors are 4xx
 *   {error, error_description}, shown via the localized `data-err-<reason>` texts of the
 *   #cert-login section, or error_description for a reason the page does not know.
 */
(function () {
  'use strict';

  var CHALLENGE_URL = '/login/certificate/challenge';
  var LOGIN_URL = '/login/certificate';
  var AVAILABLE_TIMEOUT_MS = 5000;

  var root = document.getElementById('cert-login');
  if (!root) {
    return;
  }

  function $(id) {
    return document.getElementById(id);
  }

  var ui = {
    start: $('cert-start'),
    status: $('cert-status'),
    error: $('cert-error'),
    dev: $('cert-dev'),
    devChallenge: $('cert-dev-challenge'),
    devCommand: $('cert-dev-command'),
    devExpires: $('cert-dev-expires'),
    devRefresh: $('cert-dev-refresh'),
    devCertificate: $('cert-dev-certificate'),
    devSignature: $('cert-dev-signature'),
    devSubmit: $('cert-dev-submit'),
  };

  // The challenge currently shown in the developer panel (base64url text), if any.
  var devChallenge = null;
  var busy = false;

  /* ---------- messages ---------- */

  // "bad_signature" -> dataset key "errBadSignature" (attribute data-err-bad-signature).
  function datasetKey(prefix, reason) {
    return prefix + String(reason).replace(/(^|_)([a-z0-9])/g, function (_, sep, c) {
      return c.toUpperCase();
    });
  }

  function text(prefix, name) {
    var v = root.dataset[datasetKey(prefix, name)];
    return typeof v === 'string' ? v : '';
  }

  function failure(reason, description, detail) {
    return { certLogin: true, reason: reason, description: description, detail: detail };
  }

  function messageFor(err) {
    if (!err || !err.certLogin) {
      return text('err', 'generic');
    }
    var known = /^[a-z0-9_]{1,64}$/.test(err.reason) ? text('err', err.reason) : '';
    var msg = known || (typeof err.description === 'string' && err.description) || text('err', 'generic');
    if (err.detail) {
      msg += ' (' + err.detail + ')';
    }
    return msg;
  }

  function showError(err) {
    ui.status.textContent = '';
    ui.error.textContent = messageFor(err);
    ui.error.hidden = false;
    // The panel is long: bring the message to where the person is looking.
    if (typeof ui.error.scrollIntoView === 'function') {
      ui.error.scrollIntoView({ block: 'center', behavior: 'smooth' });
    }
  }

  function clearError() {
    ui.error.hidden = true;
    ui.error.textContent = '';
  }

  function setStatus(s) {
    ui.status.textContent = s || '';
  }

  function setBusy(on) {
    busy = on;
    root.setAttribute('aria-busy', on ? 'true' : 'false');
    [ui.start, ui.devRefresh, ui.devSubmit].forEach(function (b) {
      if (b) {
        b.disabled = on;
      }
    });
  }

  /* ---------- encodings ---------- */

  function base64urlDecode(s) {
    if (typeof s !== 'string' || !/^[A-Za-z0-9_-]+={0,2}$/.test(s)) {
      throw failure('generic');
    }
    var b64 = s.replace(/=+$/, '').replace(/-/g, '+').replace(/_/g, '/');
    while (b64.length % 4) {
      b64 += '=';
    }
    var bin;
    try {
      bin = atob(b64);
    } catch (e) {
      throw failure('generic');
    }
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out;
  }

  function toBytes(v) {
    if (v instanceof Uint8Array) {
      return v;
    }
    if (v instanceof ArrayBuffer) {
      return new Uint8Array(v);
    }
    if (ArrayBuffer.isView(v)) {
      return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
    }
    return null;
  }

  function bytesToBase64(bytes) {
    var bin = '';
    for (var i = 0; i < bytes.length; i += 0x8000) {
      bin += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return btoa(bin);
  }

  function bytesToHex(bytes) {
    var out = '';
    for (var i = 0; i < bytes.length; i++) {
      out += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
    }
    return out;
  }

  // Base64 text with PEM armor (-----BEGIN CMS-----, PKCS7, ...) and whitespace removed.
  function stripArmor(s) {
    return s.replace(/-----(BEGIN|END) [^-\r\n]*-----/g, '').replace(/\s+/g, '');
  }

  // The developer panel's signature field: hex digits only = raw signature, otherwise base64 CMS.
  function classifySignature(input) {
    var body = stripArmor(String(input));
    if (!body) {
      return null;
    }
    var hex = body.replace(/^0x/i, '').replace(/:/g, '');
    if (/^[0-9a-fA-F]+$/.test(hex)) {
      return { signature_raw: hex.toLowerCase() };
    }
    return { signature: body };
  }

  /* ---------- server ---------- */

  function csrfToken() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute('content') || '' : '';
  }

  async function postJson(url, body) {
    // Name this page's login transaction, so two sign-ins in two tabs never cross.
    if (root.dataset.tx) {
      body = Object.assign({ tx: root.dataset.tx }, body);
    }
    var res;
    try {
      res = await fetch(url, {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: {
          'Content-Type': 'application/json',
          Accept: 'application/json',
          'X-CSRF-Token': csrfToken(),
        },
        body: JSON.stringify(body),
      });
    } catch (e) {
      throw failure('network');
    }
    var data = null;
    try {
      data = await res.json();
    } catch (e) {
      data = null;
    }
    if (!res.ok || !data || typeof data !== 'object') {
      var reason = data && typeof data.error === 'string' ? data.error : res.status >= 500 ? 'server_error' : 'generic';
      throw failure(reason, data && data.error_description);
    }
    return data;
  }

  async function fetchChallenge() {
    var data = await postJson(CHALLENGE_URL, {});
    if (typeof data.challenge !== 'string' || !data.challenge) {
      throw failure('generic');
    }
    return {
      text: data.challenge,
      bytes: base64urlDecode(data.challenge),
      expiresIn: typeof data.expires_in === 'number' ? data.expires_in : null,
    };
  }

  function safeRedirect(target) {
    if (typeof target !== 'string' || !target) {
      return null;
    }
    var url;
    try {
      url = new URL(target, window.location.href);
    } catch (e) {
      return null;
    }
    if (/^(javascript|data|vbscript|blob|file):$/i.test(url.protocol)) {
      return null;
    }
    return url.href;
  }

  // Posts the signed challenge; on success navigates away and leaves the page busy.
  async function submit(payload) {
    var data = await postJson(LOGIN_URL, payload);
    var to = safeRedirect(data.redirect);
    if (!to) {
      throw failure('generic');
    }
    setStatus(text('msg', 'busy'));
    window.location.assign(to);
  }

  /* ---------- external signer ---------- */

  function withTimeout(promise, ms, fallback) {
    return new Promise(function (resolve) {
      var timer = setTimeout(function () {
        resolve(fallback);
      }, ms);
      promise.then(
        function (v) {
          clearTimeout(timer);
          resolve(v);
        },
        function () {
          clearTimeout(timer);
          resolve(fallback);
        }
      );
    });
  }

  async function externalSigner() {
    var s = window.vhodSigner;
    if (!s || typeof s.sign !== 'function') {
      return null;
    }
    if (typeof s.available === 'function') {
      var ok = await withTimeout(
        Promise.resolve().then(function () {
          return s.available();
        }),
        AVAILABLE_TIMEOUT_MS,
        false
      );
      if (ok !== true) {
        return null;
      }
    }
    return s;
  }

  // Checks and normalizes what a signer returned into the request body.
  function fromSigner(r) {
    if (!r || typeof r !== 'object') {
      throw failure('signer');
    }
    var cert = Array.isArray(r.certificate) ? r.certificate.join('\n') : r.certificate;
    if (typeof cert !== 'string' || cert.indexOf('-----BEGIN CERTIFICATE-----') < 0) {
      throw failure('signer');
    }
    var out = { certificate: cert.trim() };
    var bytes;
    if (r.signature != null) {
      bytes = toBytes(r.signature);
      out.signature = bytes ? bytesToBase64(bytes) : stripArmor(String(r.signature));
      if (!out.signature) {
        throw failure('signer');
      }
    } else if (r.signature_raw != null) {
      bytes = toBytes(r.signature_raw);
      out.signature_raw = bytes ? bytesToHex(bytes) : String(r.signature_raw).replace(/\s+/g, '').toLowerCase();
      if (!out.signature_raw) {
        throw failure('signer');
      }
    } else {
      throw failure('signer');
    }
    return out;
  }

  async function signWith(signer) {
    setStatus(text('msg', 'busy'));
    var challenge = await fetchChallenge();
    setStatus(text('msg', 'signing') + (typeof signer.name === 'string' && signer.name ? ' (' + signer.name + ')' : ''));
    var result;
    try {
      result = await signer.sign(challenge.bytes);
    } catch (e) {
      var detail = e && typeof e.message === 'string' ? e.message.slice(0, 200) : '';
      throw failure('signer', null, detail);
    }
    setStatus(text('msg', 'busy'));
    await submit(fromSigner(result));
  }

  /* ---------- developer signer ---------- */

  function showDevPanel() {
    if (!ui.dev) {
      return;
    }
    ui.dev.hidden = false;
    ui.dev.open = true;
  }

  function commandFor(challenge) {
    // A base64url challenge may start with "-"; "--" keeps it from being read as an option.
    return 'vhod dev sign-challenge --key KEY.pem --cert CERT.pem ' + (challenge.charAt(0) === '-' ? '-- ' : '') + challenge;
  }

  async function loadDevChallenge() {
    devChallenge = null;
    ui.devChallenge.value = '';
    ui.devCommand.value = '';
    ui.devExpires.textContent = '';
    var challenge = await fetchChallenge();
    devChallenge = challenge.text;
    ui.devChallenge.value = challenge.text;
    ui.devCommand.value = commandFor(challenge.text);
    if (challenge.expiresIn !== null) {
      ui.devExpires.textContent = text('msg', 'expires').replace('{s}', String(challenge.expiresIn));
    }
  }

  function devPayload() {
    if (!devChallenge) {
      throw failure('no_challenge');
    }
    var cert = ui.devCertificate.value.trim();
    if (cert.indexOf('-----BEGIN CERTIFICATE-----') < 0) {
      ui.devCertificate.focus();
      throw failure('no_pem');
    }
    var sig = classifySignature(ui.devSignature.value);
    if (!sig) {
      ui.devSignature.focus();
      throw failure('no_signature');
    }
    sig.certificate = cert;
    return sig;
  }

  /* ---------- wiring ---------- */

  // Runs one user action: busy while it runs, any failure shown in the alert region.
  function action(fn) {
    return function (ev) {
      if (ev) {
        ev.preventDefault();
      }
      if (busy) {
        return;
      }
      clearError();
      setBusy(true);
      fn().then(
        function (navigating) {
          if (!navigating) {
            setStatus('');
            setBusy(false);
          }
        },
        function (err) {
          showError(err);
          setBusy(false);
        }
      );
    };
  }

  ui.start.addEventListener(
    'click',
    action(async function () {
      var signer = await externalSigner();
      if (signer) {
        await signWith(signer);
        return true;
      }
      // Only developers sign by hand; a person is told to start their signing software.
      if (root.dataset.dev !== '1' || !ui.dev) {
        throw failure('no_signer');
      }
      showDevPanel();
      if (!devChallenge) {
        setStatus(text('msg', 'busy'));
        await loadDevChallenge();
      }
      ui.devCertificate.focus();
      return false;
    })
  );

  if (ui.dev) {
    ui.devRefresh.addEventListener(
      'click',
      action(async function () {
        await loadDevChallenge();
        return false;
      })
    );

    ui.devSubmit.addEventListener(
      'click',
      action(async function () {
        var payload = devPayload();
        setStatus(text('msg', 'busy'));
        try {
          await submit(payload);
        } catch (err) {
          // Every attempt spends the challenge on the server: put a fresh one in its place.
          ui.devSignature.value = '';
          try {
            await loadDevChallenge();
            ui.devExpires.textContent = text('msg', 'reissued') + ' ' + ui.devExpires.textContent;
          } catch (ignored) {
            devChallenge = null;
          }
          throw err;
        }
        return true;
      })
    );

    [ui.devChallenge, ui.devCommand].forEach(function (el) {
      el.addEventListener('focus', function () {
        el.select();
      });
    });
  }
})();
