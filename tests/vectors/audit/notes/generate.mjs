// Writes node-generated.json: known answers for audit/note.py, audit/checkpoint.py and
// audit/bundle.py, computed independently of them (and of Python):
//
//     node tests/vectors/audit/notes/generate.mjs
//
// Ed25519 and SHA-256 come from Node's crypto (OpenSSL); the signed-note, vkey, Go private
// key, checkpoint, cosignature/v1 and tlog-proof encodings are written here by hand from the
// C2SP specs, and the RFC 6962 tree is the naive recursive definition (MTH, PATH). Keys are
// derived from fixed labels, seed = SHA-256(label), and Ed25519 is deterministic, so rerunning
// this script reproduces the file byte for byte. Rerun it only if a case is added.

import { createHash, createPrivateKey, createPublicKey, sign } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const sha256 = (...parts) => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const utf8 = (s) => Buffer.from(s, "utf8");
const u64be = (n) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

// --- keys ---------------------------------------------------------------------------------

const PKCS8_ED25519_PREFIX = Buffer.from("302e020100300506032b657004220420", "hex");

function key(name, label) {
  const seed = sha256(utf8(label));
  const priv = createPrivateKey({
    key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]),
    format: "der",
    type: "pkcs8",
  });
  const spki = createPublicKey(priv).export({ format: "der", type: "spki" });
  const pub = spki.subarray(spki.length - 32);
  return { name, label, seed, priv, pub };
}

const keyId = (name, alg, pub) => sha256(utf8(name + "\n"), Buffer.from([alg]), pub).subarray(0, 4);
const vkey = (k, alg) =>
  `${k.name}+${keyId(k.name, alg, k.pub).toString("hex")}+${b64(Buffer.concat([Buffer.from([alg]), k.pub]))}`;
const skey = (k) =>
  `PRIVATE+KEY+${k.name}+${keyId(k.name, 1, k.pub).toString("hex")}+${b64(Buffer.concat([Buffer.from([1]), k.seed]))}`;
const ed25519 = (k, message) => sign(null, message, k.priv);

// --- signed notes -------------------------------------------------------------------------

const sigLine = (name, id, sig) => `\u2014 ${name} ${b64(Buffer.concat([id, sig]))}\n`;
const noteSig = (k, text) => sigLine(k.name, keyId(k.name, 1, k.pub), ed25519(k, utf8(text)));
const cosigLine = (k, text, t) => {
  const signed = ed25519(k, utf8(`cosignature/v1\ntime ${t}\n${text}`));
  return sigLine(k.name, keyId(k.name, 4, k.pub), Buffer.concat([u64be(t), signed]));
};

// --- RFC 6962 (section 2.1), straight from the recursive definitions ------------------------

const leafHash = (d) => sha256(Buffer.from([0]), d);
const nodeHash = (l, r) => sha256(Buffer.from([1]), l, r);
const split = (n) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
function mth(ds) {
  if (ds.length === 0) return sha256(Buffer.alloc(0));
  if (ds.length === 1) return leafHash(ds[0]);
  const k = split(ds.length);
  return nodeHash(mth(ds.slice(0, k)), mth(ds.slice(k)));
}
function path(m, ds) {
  if (ds.length <= 1) return [];
  const k = split(ds.length);
  return m < k
    ? [...path(m, ds.slice(0, k)), mth(ds.slice(k))]
    : [...path(m - k, ds.slice(k)), mth(ds.slice(0, k))];
}

const checkpointText = (origin, size, root, ext = []) =>
  [origin, String(size), b64(root), ...ext].map((l) => l + "\n").join("");
const bundleText = (index, proof, note, extra) =>
  ["c2sp.org/tlog-proof@v1", ...(extra ? [`extra ${b64(extra)}`] : []), `index ${index}`, ...proof.map(b64)]
    .map((l) => l + "\n")
    .join("") +
  "\n" +
  note;

// --- the cases ----------------------------------------------------------------------------

const log = key("example.org/audit-log", "pprl-hub audit test log key");
const w1 = key("witness.example.org/w1", "pprl-hub audit test witness 1");
const w2 = key("witness.example.org/w2", "pprl-hub audit test witness 2");
const fancy = key("example.com/fancylog", "pprl-hub audit test fancylog key");

const leaves = Array.from({ length: 7 }, (_, i) => utf8(`entry ${i}`));
const size = leaves.length;
const root = mth(leaves);
const text = checkpointText(log.name, size, root);
const T1 = 1700000000;
const T2 = 1700000060;
const logLine = noteSig(log, text);
const w1Line = cosigLine(w1, text, T1);
const w2Line = cosigLine(w2, text, T2);
const note = text + "\n" + logLine + w1Line + w2Line;

const extText = checkpointText(log.name, size, root, ["example.org/ext-line 42"]);
const extNote = extText + "\n" + noteSig(log, extText) + cosigLine(w1, extText, T1);

const bundles = [
  { name: "index-5", index: 5, extra: null },
  { name: "index-0-with-extra", index: 0, extra: utf8("context for entry 0") },
  { name: "index-6-last", index: 6, extra: null },
].map(({ name, index, extra }) => {
  const proof = path(index, leaves);
  return {
    name,
    index,
    leaf_data: leaves[index].toString("utf8"),
    extra_hex: extra ? extra.toString("hex") : null,
    proof_hex: proof.map((h) => h.toString("hex")),
    bundle: bundleText(index, proof, note, extra),
  };
});

// The tlog-proof spec example, its elided signature lines replaced by a signature by a test key.
const fancyText = "example.com/fancylog\n109482\nsFodV/vSp5O8n9a8QpW6PRY97tfOSW5bsc2Xl/EQi08=\n";
const specHead =
  "c2sp.org/tlog-proof@v1\nextra YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ\nindex 73894\n" +
  "gSKyXoYZUgZ6jduWYrkDOARinOMGJveXjgMkBTcdPlQ=\nB95lDa8R83lS8n0eG+o0buTxRKQTYFi//1U8anccXmA=\n" +
  "EKNzoDWG8LGC0Yp9o+sv3qllpMP9uHQ9B20KNL+Q1zs=\nRoopEkOdqkYqMB4MJXrbt/hMjOxsVn0IrWjpz1ZMMes=\n" +
  "AHCioX9nLjsrse6YhjRRmk1WUEirVOLLRoOQ6vfO5vk=\n";

const keyDoc = (k, alg) => ({
  name: k.name,
  seed_label: k.label,
  seed_hex: k.seed.toString("hex"),
  public_key_hex: k.pub.toString("hex"),
  skey: skey(k),
  vkey: vkey(k, alg),
});

const doc = {
  source:
    "tests/vectors/audit/notes/generate.mjs (Node crypto); independent of audit/ and of Python",
  keys: { log: keyDoc(log, 1), w1: keyDoc(w1, 4), w2: keyDoc(w2, 4), fancylog: keyDoc(fancy, 1) },
  tree: {
    leaves: leaves.map((l) => l.toString("utf8")),
    size,
    root_hex: root.toString("hex"),
  },
  checkpoint: {
    text,
    log_line: logLine,
    cosignatures: [
      { witness: "w1", timestamp: T1, line: w1Line },
      { witness: "w2", timestamp: T2, line: w2Line },
    ],
    note,
  },
  checkpoint_with_extension: { text: extText, note: extNote, extension: "example.org/ext-line 42" },
  bundles,
  spec_proof_example: {
    bundle: specHead + "\n" + fancyText + "\n" + noteSig(fancy, fancyText),
    index: 73894,
    extra_hex: Buffer.from("YWdlLXYxLjIuMS1kYXJ3aW4tYXJtNjQudGFyLmd6kYXJ3aW4tYXJ", "base64").toString("hex"),
    proof_hashes: 5,
    origin: "example.com/fancylog",
    size: 109482,
  },
};

const out = join(dirname(fileURLToPath(import.meta.url)), "node-generated.json");
writeFileSync(out, JSON.stringify(doc, null, 2) + "\n");
console.log(`wrote ${out}`);
