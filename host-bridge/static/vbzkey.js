/*
 * vbzkey.js — the staff client. No dependencies, no build step.
 *
 * Put sealed values in the store's admin page like this:
 *   <span data-vbzkey-record="vk1.VksB…" data-vbzkey-context="cust_cards/1001/card_number"
 *         data-vbzkey-kind="card">[sealed]</span>
 *   <div id="vbzkey-bar"></div>
 *   <script src="/js/vbzkey.js"></script>
 *   <script>VbzKey.start({ bridge: "http://127.0.0.1:7878", bar: "#vbzkey-bar" });</script>
 *
 * The client asks the bridge on the staff member's own machine to open every sealed field in
 * one batch. Card numbers are shown masked (first 6 / last 4, the PCI DSS display rule) until
 * the staff member clicks "reveal", and mask themselves again after `revealSeconds`. Opened
 * phone numbers and email addresses become tel: / mailto: links (only for values that are
 * exactly a phone number or an address, so a hostile value cannot smuggle a link in). Values
 * are written with textContent only, never as HTML. Without a bridge (not installed, not
 * running, or this page not allowed) the fields stay sealed and the bar says so.
 *
 * Shipping labels and packing lists: the page renders, per order, a
 *   <template data-vbzkey-sheet="labels" data-vbzkey-for="ORDER">…sealed fields…</template>
 * (and "packing"), a checkbox <input data-vbzkey-select value="ORDER"> per order, and buttons
 * <button data-vbzkey-print="labels"> / "packing". A click copies the selected orders' sheets
 * into one print area, opens all their sealed fields in ONE request (one audited unseal on the
 * dongle), and prints: 4×6 in labels, A4 or Letter packing lists (<select data-vbzkey-paper>).
 * The print area is hidden on screen, and its plaintext is removed after printing, on lock,
 * when the page is left, and after `printSeconds` at the latest. While unlocked, the client
 * asks the bridge every `pollSeconds` whether it still is, and drops every plaintext when not.
 */
(function (global) {
  "use strict";

  var MAX_BATCH = 256;
  /** A revealed card number is masked again after this long (seconds). */
  var REVEAL_SECONDS = 30;
  /** A printed sheet's plaintext is removed after this long at the latest (seconds). */
  var PRINT_SECONDS = 120;
  /** While unlocked, the bridge is asked this often whether it still is (seconds): a dongle
   *  that locked itself (idle lock), was locked from another page or was unplugged takes
   *  the plaintext off this page within this time. */
  var POLL_SECONDS = 15;
  var plaintexts = new WeakMap(); // element -> value, for reveal; never written to the DOM
  var buttons = new WeakMap(); // element -> its reveal button
  var timers = new WeakMap(); // element -> its re-mask timer
  // Exactly an E.164 number; exactly one plain address (no spaces, quotes, '?', '&', ',' or
  // ';' that could add recipients, headers or a body to a mailto: link).
  var E164 = /^\+[1-9][0-9]{6,14}$/;
  var EMAIL = /^[A-Za-z0-9.!#$%'*+\/=^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+$/;

  function maskCard(value) {
    var digits = value.replace(/\D/g, "");
    if (digits.length < 12) return "••••";
    return digits.slice(0, 6) + "•".repeat(digits.length - 10) + digits.slice(-4);
  }

  /** What a field holds: "card", "phone", "email" or "" (from its kind, else its column). */
  function kindOf(el) {
    var kind = el.getAttribute("data-vbzkey-kind");
    if (kind) return kind;
    var m = /\/(card_number|account_number|phone|email)$/.exec(el.getAttribute("data-vbzkey-context") || "");
    if (!m) return "";
    return m[1] === "account_number" ? "card" : m[1].replace("card_number", "card");
  }

  function isCard(el) {
    return kindOf(el) === "card";
  }

  /** The value as text, or as a tel:/mailto: link when it is exactly a number or an address. */
  function showContact(el, value) {
    var kind = kindOf(el);
    var href = kind === "phone" && E164.test(value) ? "tel:" + value
      : kind === "email" && value.length <= 254 && EMAIL.test(value) ? "mailto:" + value
      : null;
    el.textContent = "";
    if (!href) {
      el.textContent = value;
      return;
    }
    var a = document.createElement("a");
    a.href = href;
    a.className = "vbzkey-contact";
    a.textContent = value;
    el.appendChild(a);
  }

  function Client(opts) {
    opts = opts || {};
    this.bridge = (opts.bridge || "http://127.0.0.1:7878").replace(/\/$/, "");
    this.root = opts.root || document;
    this.bar = typeof opts.bar === "string" ? document.querySelector(opts.bar) : opts.bar || null;
    this.revealSeconds = opts.revealSeconds || REVEAL_SECONDS;
    this.printSeconds = opts.printSeconds || PRINT_SECONDS;
    this.pollSeconds = opts.pollSeconds || POLL_SECONDS;
    this.state = "unknown";
    this.notice = "";
    this.sheet = null; // the print area while it holds plaintext
  }

  Client.prototype.call = function (method, path, body) {
    var init = {
      method: method,
      mode: "cors",
      credentials: "omit",
      cache: "no-store",
      referrerPolicy: "no-referrer",
      headers: {}
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(this.bridge + path, init).then(function (resp) {
      return resp.json().then(
        function (json) { return { status: resp.status, body: json }; },
        function () { return { status: resp.status, body: {} }; }
      );
    });
  };

  /** The page's sealed fields (not those of a print sheet, which opens on its own). */
  Client.prototype.fields = function () {
    return Array.prototype.slice.call(
      this.root.querySelectorAll("[data-vbzkey-record][data-vbzkey-context]")
    ).filter(function (el) { return !el.closest(".vbzkey-print"); });
  };

  Client.prototype.status = function () {
    var self = this;
    return this.call("GET", "/v1/status").then(
      function (r) {
        self.state = r.status === 200 ? r.body.state : "error";
        self.info = r.body;
        return r.body;
      },
      function () {
        // The browser hides why (bridge down, origin not allowed, permission denied):
        // all look the same to a page. Say so plainly.
        self.state = "unreachable";
        self.info = {};
        return { state: "unreachable" };
      }
    );
  };

  Client.prototype.unlock = function (pin) {
    var self = this;
    return this.call("POST", "/v1/unlock", { pin: pin }).then(function (r) {
      if (r.status !== 200) {
        var e = new Error(r.body.message || "unlock failed");
        e.code = r.body.error;
        e.triesLeft = r.body.tries_left;
        throw e;
      }
      self.state = "unlocked";
      return self.unsealAll();
    });
  };

  Client.prototype.lock = function () {
    var self = this;
    // Forget every plaintext at once, before the bridge answers: a slow or failed lock
    // request must not leave values on the screen.
    this.forget();
    return this.call("POST", "/v1/lock", {}).then(
      function () { self.state = "locked"; self.render(); },
      // The request failed: say what the bridge says now, not "Locked" on faith.
      function () { return self.status().then(function () { self.render(); }); }
    );
  };

  /** Remove every plaintext from the page: the fields and any print sheet. */
  Client.prototype.forget = function () {
    this.clearSheet();
    this.fields().forEach(function (el) {
      plaintexts.delete(el);
      clearTimeout(timers.get(el));
      timers.delete(el);
      var button = buttons.get(el);
      if (button && button.parentNode) button.parentNode.removeChild(button);
      buttons.delete(el);
      el.textContent = "[sealed]";
      el.classList.remove("vbzkey-open", "vbzkey-revealed");
    });
  };

  Client.prototype.show = function (el, revealed) {
    var value = plaintexts.get(el);
    if (value === undefined) return;
    var card = isCard(el);
    if (card) {
      el.textContent = revealed ? value : maskCard(value);
    } else {
      showContact(el, value);
    }
    el.classList.add("vbzkey-open");
    el.classList.toggle("vbzkey-revealed", !!revealed);
    clearTimeout(timers.get(el));
    timers.delete(el);
    var self = this;
    if (card && revealed) {
      // A full card number on screen is masked again soon: a glance over the shoulder, or
      // a screen left alone, shows first 6 / last 4 only.
      timers.set(el, setTimeout(function () { self.show(el, false); }, this.revealSeconds * 1000));
    }
    if (card && !buttons.has(el)) {
      var button = document.createElement("button");
      buttons.set(el, button);
      button.type = "button";
      button.className = "vbzkey-reveal";
      button.addEventListener("click", function () {
        self.show(el, !el.classList.contains("vbzkey-revealed"));
      });
      el.parentNode.insertBefore(button, el.nextSibling);
    }
    var b = buttons.get(el);
    if (b) b.textContent = revealed ? "hide" : "reveal";
  };

  Client.prototype.unsealAll = function () {
    var self = this;
    var fields = this.fields();
    var chunks = [];
    for (var i = 0; i < fields.length; i += MAX_BATCH) chunks.push(fields.slice(i, i + MAX_BATCH));
    return chunks.reduce(function (done, chunk) {
      return done.then(function () {
        var items = chunk.map(function (el) {
          return {
            record: el.getAttribute("data-vbzkey-record"),
            context: el.getAttribute("data-vbzkey-context")
          };
        });
        return self.call("POST", "/v1/unseal", { items: items }).then(function (r) {
          if (r.status !== 200) {
            self.state = r.body.error === "locked" ? "locked" : self.state;
            var e = new Error(r.body.message || "unseal failed");
            e.code = r.body.error;
            throw e;
          }
          r.body.results.forEach(function (res, k) {
            var el = chunk[k];
            if (typeof res.value === "string") {
              plaintexts.set(el, res.value);
              self.show(el, false);
            } else {
              el.textContent = "[cannot open: " + res.error + "]";
              el.classList.add("vbzkey-error");
            }
          });
        });
      });
    }, Promise.resolve()).then(function () { self.render(); });
  };

  Client.prototype.render = function () {
    var bar = this.bar;
    if (!bar) return;
    var self = this;
    while (bar.firstChild) bar.removeChild(bar.firstChild);
    var text = document.createElement("span");
    text.className = "vbzkey-state vbzkey-state-" + this.state;
    var notice = document.createElement("span");
    notice.className = "vbzkey-notice";
    notice.textContent = this.notice;
    var info = this.info || {};
    var messages = {
      unreachable: "Key bridge not reachable: customer details stay sealed (is the bridge running, and is this page allowed?).",
      absent: "No key connected: plug in your vbzkey dongle.",
      uninitialised: "The dongle has no key yet: ask an admin to set it up.",
      locked: "Locked: enter your PIN to show customer details.",
      locked_out: "The dongle is locked after too many wrong PINs: ask an admin.",
      device_secret_missing: "The dongle could not read its device secret when it started: ask an admin (no PIN was used up).",
      not_paired: "This workstation is not paired with the dongle (the bridge's host_key setting): ask an admin.",
      unlocked: "Unlocked" + (info.serial ? " (dongle " + info.serial + ")" : "") + "."
    };
    text.textContent = messages[this.state] || "Key bridge error.";
    bar.appendChild(text);
    if (this.state === "locked" && info.unlock_on_bridge_page) {
      var link = document.createElement("a");
      link.href = info.unlock_url;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = "Unlock on the bridge's page";
      bar.appendChild(link);
    } else if (this.state === "locked") {
      var form = document.createElement("form");
      var pin = document.createElement("input");
      pin.type = "password";
      pin.autocomplete = "off";
      pin.placeholder = "PIN";
      pin.className = "vbzkey-pin";
      var go = document.createElement("button");
      go.type = "submit";
      go.textContent = "Unlock";
      var err = document.createElement("span");
      err.className = "vbzkey-error-text";
      form.appendChild(pin);
      form.appendChild(go);
      form.appendChild(err);
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var value = pin.value;
        pin.value = "";
        self.unlock(value).catch(function (e) {
          err.textContent = e.code === "wrong_pin" && e.triesLeft !== undefined
            ? "Wrong PIN: " + e.triesLeft + " tries left."
            : e.message;
          self.status().then(function () { if (self.state !== "locked") self.render(); });
        });
      });
      bar.appendChild(form);
    } else if (this.state === "unlocked") {
      var lock = document.createElement("button");
      lock.type = "button";
      lock.className = "vbzkey-lock";
      lock.textContent = "Lock";
      lock.addEventListener("click", function () { self.lock(); });
      bar.appendChild(lock);
    }
    bar.appendChild(notice);
  };

  // ---- labels and packing lists -----------------------------------------------------------

  /** Print layout: 4×6 in labels, A4 or Letter packing lists; the print area only on paper. */
  var PRINT_CSS = [
    "@media screen { .vbzkey-print { display: none !important; } }",
    "@media print {",
    "  body > :not(.vbzkey-print) { display: none !important; }",
    "  .vbzkey-sheet { break-after: page; }",
    "  .vbzkey-sheet-labels { page: vbzkey-label; }",
    "  .vbzkey-sheet-packing.vbzkey-paper-a4 { page: vbzkey-a4; }",
    "  .vbzkey-sheet-packing.vbzkey-paper-letter { page: vbzkey-letter; }",
    "}",
    "@page vbzkey-label { size: 4in 6in; margin: 0.2in; }",
    "@page vbzkey-a4 { size: A4; margin: 15mm; }",
    "@page vbzkey-letter { size: letter; margin: 0.6in; }",
    ".vbzkey-sheet [data-vbzkey-record] { white-space: pre-line; }"
  ].join("\n");

  function installPrintCss() {
    if (installPrintCss.done) return;
    installPrintCss.done = true;
    // A constructed style sheet where the browser has them (not blocked by a strict CSP's
    // style-src, as an inline <style> would be); a <style> element otherwise.
    if (typeof CSSStyleSheet === "function" && "adoptedStyleSheets" in document) {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(PRINT_CSS);
      document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
    } else {
      var style = document.createElement("style");
      style.textContent = PRINT_CSS;
      document.head.appendChild(style);
    }
  }

  /** The orders whose checkboxes are ticked, in page order. */
  Client.prototype.selectedOrders = function () {
    return Array.prototype.slice.call(this.root.querySelectorAll("input[data-vbzkey-select]"))
      .filter(function (box) { return box.checked; })
      .map(function (box) { return box.value; });
  };

  /** Remove the print area and every plaintext in it. */
  Client.prototype.clearSheet = function () {
    if (!this.sheet) return;
    clearTimeout(this.sheetTimer);
    var area = this.sheet;
    this.sheet = null;
    while (area.firstChild) area.removeChild(area.firstChild);
    if (area.parentNode) area.parentNode.removeChild(area);
  };

  /**
   * Print `kind` ("labels" or "packing") for the selected orders: one batch unseal of the
   * sheets' sealed fields, then the browser's print. Resolves with the number of sheets.
   */
  Client.prototype.print = function (kind, paper) {
    var self = this;
    this.clearSheet();
    var orders = this.selectedOrders();
    var templates = Array.prototype.slice.call(this.root.querySelectorAll("template[data-vbzkey-sheet]"))
      .filter(function (t) { return t.getAttribute("data-vbzkey-sheet") === kind; });
    var fail = function (message) {
      self.clearSheet();
      self.notice = message;
      self.render();
      return Promise.reject(new Error(message));
    };
    if (orders.length === 0) return fail("Select the orders to print first.");
    if (this.state !== "unlocked") return fail("Unlock first: the addresses are sealed.");
    installPrintCss();
    var area = document.createElement("div");
    area.className = "vbzkey-print vbzkey-print-" + kind;
    orders.forEach(function (order) {
      // Attribute values are compared, never put into a selector.
      var t = templates.filter(function (t) { return t.getAttribute("data-vbzkey-for") === order; })[0];
      if (!t) return;
      var page = document.createElement("section");
      page.className = "vbzkey-sheet vbzkey-sheet-" + kind +
        (kind === "packing" ? " vbzkey-paper-" + (paper === "letter" ? "letter" : "a4") : "");
      page.appendChild(document.importNode(t.content, true));
      area.appendChild(page);
    });
    var fields = Array.prototype.slice.call(area.querySelectorAll("[data-vbzkey-record][data-vbzkey-context]"));
    if (area.children.length === 0) return fail("Nothing to print for the selected orders.");
    if (fields.length > MAX_BATCH) return fail("Too many at once: select fewer orders.");
    this.sheet = area;
    document.body.appendChild(area);
    var items = fields.map(function (el) {
      el.textContent = "";
      return { record: el.getAttribute("data-vbzkey-record"), context: el.getAttribute("data-vbzkey-context") };
    });
    return this.call("POST", "/v1/unseal", { items: items }).then(function (r) {
      if (self.sheet !== area) throw new Error("cancelled");
      if (r.status !== 200) {
        if (r.body.error === "locked") self.state = "locked";
        throw new Error(r.body.message || "the bridge refused to open the sheet");
      }
      var failed = r.body.results.filter(function (res) { return typeof res.value !== "string"; }).length;
      if (failed > 0) throw new Error(failed + " field(s) did not open: nothing was printed.");
      r.body.results.forEach(function (res, k) { fields[k].textContent = res.value; });
      self.sheetTimer = setTimeout(function () { self.clearSheet(); }, self.printSeconds * 1000);
      self.notice = "";
      self.render();
      global.print();
      return area.children.length;
    }).catch(function (e) {
      if (self.sheet === area) return fail(e.message);
      throw e;
    });
  };

  /** Wire the page's print buttons, and clear a printed sheet after printing or leaving. */
  Client.prototype.bindPrint = function () {
    var self = this;
    Array.prototype.slice.call(this.root.querySelectorAll("[data-vbzkey-print]")).forEach(function (button) {
      button.addEventListener("click", function (ev) {
        ev.preventDefault();
        var paper = self.root.querySelector("select[data-vbzkey-paper]");
        self.print(button.getAttribute("data-vbzkey-print"), paper ? paper.value : "a4").catch(function () {});
      });
    });
    global.addEventListener("afterprint", function () { self.clearSheet(); });
    // Leaving the page (or its going into the back/forward cache) drops every plaintext; a
    // page brought back from that cache asks the bridge again.
    global.addEventListener("pagehide", function () { self.forget(); });
    global.addEventListener("pageshow", function (ev) {
      if (ev.persisted) self.refresh();
    });
  };

  /** Start: wire the print buttons, then read the bridge's state and open the fields. */
  Client.prototype.start = function () {
    var self = this;
    this.bindPrint();
    setInterval(function () {
      if (self.state !== "unlocked") return;
      self.status().then(function () {
        if (self.state !== "unlocked") {
          self.forget();
          self.render();
        }
      });
    }, this.pollSeconds * 1000);
    return this.refresh();
  };

  /** Read the bridge's state, open the fields if unlocked, draw the bar. */
  Client.prototype.refresh = function () {
    var self = this;
    return this.status().then(function () {
      self.render();
      if (self.state === "unlocked") return self.unsealAll().catch(function () { self.render(); });
    });
  };

  global.VbzKey = {
    Client: Client,
    maskCard: maskCard,
    start: function (opts) {
      var c = new Client(opts);
      c.start();
      return c;
    }
  };
})(typeof window !== "undefined" ? window : this);
