/* The bridge's own unlock page: same origin as the API, so it is always allowed. */
(function () {
  "use strict";
  var message = document.getElementById("message");
  function post(path, body) {
    return fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      cache: "no-store"
    }).then(function (r) { return r.json().then(function (j) { return { status: r.status, body: j }; }); });
  }
  document.getElementById("unlock").addEventListener("submit", function (ev) {
    ev.preventDefault();
    var field = document.getElementById("passphrase");
    var value = field.value;
    field.value = "";
    message.textContent = "Unlocking…";
    post("/v1/unlock", { passphrase: value }).then(function (r) {
      message.textContent = r.status === 200
        ? "Unlocked. You can close this page and reload the store's page."
        : (r.body.message || "Unlock failed.");
    }, function () { message.textContent = "The bridge did not answer."; });
  });
  document.getElementById("lock").addEventListener("click", function () {
    post("/v1/lock", {}).then(function () { message.textContent = "Locked."; });
  });
})();
