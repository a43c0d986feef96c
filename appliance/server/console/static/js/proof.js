// In-browser check of one ledger entry's inclusion proof (RFC 6962 / RFC 9162) and of the signed
// checkpoint it ends in (C2SP signed note, Ed25519), with WebCrypto only.
//
// Nothing here trusts the server's verdict: the script hashes the entry's bytes itself
// (leaf = SHA-256(0x00 || entry)), walks the audit path to a root (node = SHA-256(0x01 || l || r)),
// compares that root with the one written in the checkpoint note, and checks the note's signature
// with the node's verifier key. The server's own leaf_hash field is ignored.
"use strict";

(function () {
  const section = document.getElementById("proof");
  if (!section) return;
  const status = document.getElementById("proof-status");
  const detail = document.getElementById("proof-detail");
  const msg = (name) => section.dataset["msg" + name[0].toUpperCase() + name.slice(1)] || name;
  const enc = new TextEncoder();

  function hex(bytes) {
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function fromHex(text) {
    if (typeof text !== "string" || !/^([0-9a-f]{2})*$/.test(text)) throw new Error("not lower-case hex: " + text);
    const out = new Uint8Array(text.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(text.substr(2 * i, 2), 16);
    return out;
  }
  function fromBase64(text) {
    const bin = atob(text);
    return Uint8Array.from(bin, (c) => c.charCodeAt(0));
  }
  function concat(...parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  function equal(a, b) {
    if (a.length !== b.length) return false;
    let diff = 0;
    for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
    return diff === 0;
  }
  async function sha256(bytes) {
    return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  }
  const leafHash = (entry) => sha256(concat(Uint8Array.of(0), entry));
  const nodeHash = (l, r) => sha256(concat(Uint8Array.of(1), l, r));

  // RFC 9162 section 2.1.3.2: the root an inclusion path implies, or null when it is malformed.
  async function rootFromInclusion(leaf, index, size, path) {
    if (index < 0n || index >= size) return null;
    let fn = index, sn = size - 1n, r = leaf;
    for (const p of path) {
      if (p.length !== 32 || sn === 0n) return null;
      if ((fn & 1n) === 1n || fn === sn) {
        r = await nodeHash(p, r);
        while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
      } else {
        r = await nodeHash(r, p);
      }
      fn >>= 1n; sn >>= 1n;
    }
    return sn === 0n ? r : null;
  }

  // A C2SP checkpoint: "<origin>\n<size>\n<base64 root>\n[extensions]\n\n— <name> <base64 sig>\n..."
  function parseNote(text) {
    const split = text.lastIndexOf("\n\n");
    if (split < 0) throw new Error("the checkpoint note has no signature block");
    const body = text.slice(0, split + 1);
    const lines = body.split("\n");
    if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) throw new Error("the checkpoint note is malformed");
    const sigs = text.slice(split + 2).split("\n").filter((l) => l.length > 0).map((line) => {
      const m = /^\u2014 (\S+) (\S+)$/.exec(line);
      if (!m) throw new Error("a signature line is malformed");
      const raw = fromBase64(m[2]);
      return { name: m[1], keyHash: raw.slice(0, 4), sig: raw.slice(4) };
    });
    return { body, origin: lines[0], size: BigInt(lines[1]), root: fromBase64(lines[2]), sigs };
  }

  // The node's verifier key "<name>+<key hash hex>+<base64(0x01 || Ed25519 public key)>".
  async function checkSignature(note, vkey) {
    // The name holds no "+", the base64 key may: split at the first two only.
    const first = vkey.indexOf("+");
    const second = vkey.indexOf("+", first + 1);
    if (first < 0 || second < 0) throw new Error("the verifier key is malformed");
    const name = vkey.slice(0, first);
    const hashHex = vkey.slice(first + 1, second);
    const keyB64 = vkey.slice(second + 1);
    const key = fromBase64(keyB64);
    if (key.length !== 33 || key[0] !== 1) throw new Error("the verifier key is not an Ed25519 key");
    const expected = (await sha256(concat(enc.encode(name + "\n"), key))).slice(0, 4);
    if (hex(expected) !== hashHex) throw new Error("the verifier key's hash does not match its key");
    const sig = note.sigs.find((s) => s.name === name && equal(s.keyHash, expected));
    if (!sig) return { ok: false, why: "the checkpoint carries no signature by " + name + "+" + hashHex };
    let pub;
    try {
      pub = await crypto.subtle.importKey("raw", key.slice(1), { name: "Ed25519" }, false, ["verify"]);
    } catch (e) {
      return { ok: null, why: String(e) };  // this browser has no Ed25519
    }
    const ok = await crypto.subtle.verify({ name: "Ed25519" }, pub, sig.sig, enc.encode(note.body));
    return { ok, why: ok ? name + "+" + hashHex : "the signature does not verify: the checkpoint was altered" };
  }

  function step(name, value, ok) {
    const li = section.querySelector(`[data-step="${name}"]`);
    li.querySelector("[data-out]").textContent = value;
    li.dataset.ok = ok === null ? "unknown" : String(ok);
    li.querySelector(".mark").textContent = ok === null ? "?" : ok ? "\u2713" : "\u2717";
  }

  function finish(result, text, why) {
    status.dataset.result = result;
    status.className = "status " + result;
    status.textContent = text;
    detail.textContent = why || "";
  }

  async function verify(data) {
    const bundle = data.bundle;
    const item = bundle.entries[0];
    const note = parseNote(bundle.checkpoint);
    if (note.origin !== bundle.origin) return finish("failed", msg("failed"), "the checkpoint is of another log");
    const leaf = await leafHash(enc.encode(item.entry));
    step("leaf", hex(leaf), true);
    const path = item.inclusion_path.map(fromHex);
    const root = await rootFromInclusion(leaf, BigInt(item.seq), note.size, path);
    const rootOk = root !== null && equal(root, note.root);
    step("root", root ? hex(root) : "\u2014", rootOk);
    step("checkpoint", hex(note.root) + " @ " + note.size, true);
    const sig = await checkSignature(note, data.vkey);
    step("signature", sig.why, sig.ok);
    if (!rootOk) {
      return finish("failed", msg("failed"), root === null
        ? "the inclusion path is malformed for this index and tree size"
        : "the root the path leads to is not the checkpoint's root");
    }
    if (sig.ok === false) return finish("failed", msg("failed"), sig.why);
    if (sig.ok === null) return finish("partial", msg("nosig"), sig.why);
    return finish("verified", msg("verified"), "");
  }

  finish("pending", msg("checking"), "");
  if (!window.crypto || !crypto.subtle) {
    // WebCrypto exists only in secure contexts: HTTPS, or http://127.0.0.1 / localhost.
    finish("failed", msg("failed"), "this page is not a secure context (serve the node over HTTPS)");
    return;
  }
  fetch(section.dataset.proofUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    })
    .then(verify)
    .catch((e) => finish("failed", msg("failed"), String(e && e.message ? e.message : e)));
})();
