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
 * the staff member clicks "reveal". Values are written with textContent only, never as HTML.
 * Without a bridge (not installed, not running, or this page not allowed) the fields stay
 * sealed and the bar says so.
 */
(function (global) {
  "use strict";

  var MAX_BATCH = 256;
  var plaintexts = new WeakMap(); // element -> value, for reveal; never written to the DOM
  var buttons = new WeakMap(); // element -> its reveal button

  function maskCard(value) {
    var digits = value.replace(/\D/g, "");
    if (digits.length < 12) return "••••";
    return digits.slice(0, 6) + "•".repeat(digits.length - 10) + digits.slice(-4);
  }

  function isCard(el) {
    var kind = el.getAttribute("data-vbzkey-kind");
    if (kind) return kind === "card";
    return /\/(card_number|account_number)$/.test(el.getAttribute("data-vbzkey-context") || "");
  }

  function Client(opts) {
    opts = opts || {};
    this.bridge = (opts.bridge || "http://127.0.0.1:7878").replace(/\/$/, "");
    this.root = opts.root || document;
    this.bar = typeof opts.bar === "string" ? document.querySelector(opts.bar) : opts.bar || null;
    this.state = "unknown";
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

  Client.prototype.fields = function () {
    return Array.prototype.slice.call(
      this.root.querySelectorAll("[data-vbzkey-record][data-vbzkey-context]")
    );
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
    return this.call("POST", "/v1/lock", {}).then(function () {
      self.state = "locked";
      self.fields().forEach(function (el) {
        plaintexts.delete(el);
        var button = buttons.get(el);
        if (button && button.parentNode) button.parentNode.removeChild(button);
        buttons.delete(el);
        el.textContent = "[sealed]";
        el.classList.remove("vbzkey-open", "vbzkey-revealed");
      });
      self.render();
    });
  };

  Client.prototype.show = function (el, revealed) {
    var value = plaintexts.get(el);
    if (value === undefined) return;
    var card = isCard(el);
    el.textContent = card && !revealed ? maskCard(value) : value;
    el.classList.add("vbzkey-open");
    el.classList.toggle("vbzkey-revealed", !!revealed);
    if (card && !buttons.has(el)) {
      var button = document.createElement("button");
      buttons.set(el, button);
      button.type = "button";
      button.className = "vbzkey-reveal";
      button.textContent = "reveal";
      var self = this;
      button.addEventListener("click", function () {
        var now = !el.classList.contains("vbzkey-revealed");
        self.show(el, now);
        button.textContent = now ? "hide" : "reveal";
      });
      el.parentNode.insertBefore(button, el.nextSibling);
    }
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
    var info = this.info || {};
    var messages = {
      unreachable: "Key bridge not reachable: customer details stay sealed (is the bridge running, and is this page allowed?).",
      absent: "No key connected: plug in your vbzkey dongle.",
      uninitialised: "The dongle has no key yet: ask an admin to set it up.",
      locked: "Locked: enter your PIN to show customer details.",
      locked_out: "The dongle is locked after too many wrong PINs: ask an admin.",
      device_secret_missing: "The dongle could not read its device secret when it started: ask an admin (no PIN was used up).",
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
  };

  /** Start: read the bridge's state, open the fields if unlocked, draw the bar. */
  Client.prototype.start = function () {
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
