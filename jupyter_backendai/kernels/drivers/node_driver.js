// SPDX-License-Identifier: LGPL-3.0-or-later
// The JavaScript driver of the Backend.AI wrapper kernel (jupyter_backendai/kernels).
//
// Cells run with vm.runInContext in one persistent context, so var/let/const/function/class
// declarations carry over between cells. The wrapper talks to this process over framed JSON
// (4-byte big-endian length + UTF-8 JSON) on two file descriptors named in the environment;
// the program's own stdout and stderr stay ordinary pipes that the wrapper streams to the cell.
'use strict';

const fs = require('fs');
const vm = require('vm');
const util = require('util');
const path = require('path');
const Module = require('module');

const CMD_FD = Number(process.env.BACKENDAI_DRIVER_CMD_FD || 3);
const EVT_FD = Number(process.env.BACKENDAI_DRIVER_EVENT_FD || 4);
delete process.env.BACKENDAI_DRIVER_CMD_FD;
delete process.env.BACKENDAI_DRIVER_EVENT_FD;

// ----- the framed channel -----------------------------------------------------------------

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(EVT_FD, buf, off, buf.length - off);
    } catch (e) {
      if (e.code !== 'EAGAIN' && e.code !== 'EINTR') throw e;
    }
  }
}

function send(msg) {
  const body = Buffer.from(JSON.stringify(msg), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  writeAll(Buffer.concat([head, body]));
}

function readExactSync(n) {
  const buf = Buffer.alloc(n);
  let off = 0;
  while (off < n) {
    let r;
    try {
      r = fs.readSync(CMD_FD, buf, off, n - off, null);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') continue;
      throw e;
    }
    if (r === 0) process.exit(0);
    off += r;
  }
  return buf;
}

function readFrameSync() {
  const n = readExactSync(4).readUInt32BE(0);
  return JSON.parse(readExactSync(n).toString('utf8'));
}

// While idle, wait for the next command without blocking the event loop (timers and
// promises keep running between cells).
function readExact(n, cb) {
  const buf = Buffer.alloc(n);
  let off = 0;
  const step = () => fs.read(CMD_FD, buf, off, n - off, null, (err, r) => {
    if (err) {
      if (err.code === 'EAGAIN' || err.code === 'EINTR') return setTimeout(step, 5);
      throw err;
    }
    if (r === 0) process.exit(0);
    off += r;
    if (off < n) step(); else cb(buf);
  });
  step();
}

function readFrame(cb) {
  readExact(4, (head) => readExact(head.readUInt32BE(0), (body) => cb(JSON.parse(body.toString('utf8')))));
}

// ----- what a cell sees -------------------------------------------------------------------

let running = false;  // a cell is executing (input() may only ask then)

function input(prompt, password) {
  if (!running) throw new Error('input() only works while a cell runs');
  send({ type: 'input', prompt: prompt === undefined ? '' : String(prompt), password: !!password });
  const reply = readFrameSync();
  if (reply.error) {
    const e = new Error(reply.error);
    e.name = reply.ename || 'InputError';
    throw e;
  }
  return reply.value;
}

function display(mime, data, extra) {
  const bundle = {};
  if (typeof mime === 'object' && mime !== null && data === undefined) {
    Object.assign(bundle, mime);
  } else {
    if (Buffer.isBuffer(data) || data instanceof Uint8Array) data = Buffer.from(data).toString('base64');
    bundle[String(mime)] = typeof data === 'string' ? data : JSON.stringify(data);
  }
  if (!('text/plain' in bundle)) bundle['text/plain'] = `<${Object.keys(bundle)[0]} output>`;
  // The marker goes into stdout, in line with console.log, so the wrapper shows the display
  // at this place in the output (jupyter_backendai/kernels/ordering.py).
  const sync = ++displaySeq;
  process.stdout.write(`\x1b]5150;bai-display;${sync}\x07`);
  send({ type: 'display', data: bundle, metadata: extra || {}, sync });
}
let displaySeq = 0;
display.html = (s) => display('text/html', String(s));
display.svg = (s) => display('image/svg+xml', String(s));
display.png = (b) => display('image/png', b);
display.markdown = (s) => display('text/markdown', String(s));
display.json = (o) => display({ 'application/json': o, 'text/plain': util.inspect(o) });

const cwd = process.cwd();
const userRequire = Module.createRequire(path.join(cwd, '<cell>'));
const sandbox = {
  console, process, Buffer, require: userRequire, module: { exports: {} },
  __filename: path.join(cwd, '<cell>'), __dirname: cwd,
  setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate, queueMicrotask,
  URL, URLSearchParams, TextEncoder, TextDecoder, AbortController, AbortSignal, EventTarget, Event,
  structuredClone, atob, btoa, performance,
  input, prompt: input, display,
};
if (typeof fetch === 'function') sandbox.fetch = fetch;
sandbox.exports = sandbox.module.exports;
const context = vm.createContext(sandbox, { name: 'backendai' });
const lexical = new Set();  // let/const/class names: the global object does not list them
let cellNumber = 0;

// ----- verbs ------------------------------------------------------------------------------

function cleanStack(e) {
  // Errors made in the cell's context are not instanceof this realm's Object: duck-type.
  if (e === null || typeof e !== 'object' || typeof e.stack !== 'string') return [String(e)];
  const lines = e.stack.split('\n');
  const cut = lines.findIndex((l) => /^\s+at /.test(l) && (l.includes(__filename) || l.includes('node:vm')));
  return cut >= 0 ? lines.slice(0, cut) : lines;
}

function errorMessage(e) {
  if (e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
    return { type: 'error', ename: 'Interrupted', evalue: 'the cell was interrupted',
             traceback: ['Interrupted: the cell was interrupted (state is kept)'] };
  }
  const isObj = e !== null && (typeof e === 'object' || typeof e === 'function');
  const ename = isObj && e.name ? String(e.name) : 'Error';
  const evalue = isObj && 'message' in e ? String(e.message) : util.inspect(e);
  return { type: 'error', ename, evalue, traceback: isObj ? cleanStack(e) : [`Uncaught ${util.inspect(e)}`] };
}

function rememberNames(code) {
  const re = /(?:^|[;{}\s])(?:let|const|class|var|function\*?|async\s+function\*?)\s+([A-Za-z_$][\w$]*)/g;
  let m;
  while ((m = re.exec(code)) !== null) lexical.add(m[1]);
  // let/const lists: `let a = 1, b = 2` (rough, names only used for completion)
  const re2 = /(?:let|const|var)\s+([^;]+)/g;
  while ((m = re2.exec(code)) !== null) {
    for (const part of m[1].split(',')) {
      const n = /^\s*([A-Za-z_$][\w$]*)\s*(=|$)/.exec(part);
      if (n) lexical.add(n[1]);
    }
  }
}

// Node queues writes to a pipe that is full; the final frame must not overtake them.
function flushed() {
  return Promise.all([process.stdout, process.stderr].map((s) => new Promise((resolve) => {
    if (s.writableLength === 0) return resolve();
    s.write('', () => resolve());
  })));
}

function execute(msg) {
  cellNumber += 1;
  let value;
  let outcome;
  running = true;
  try {
    const script = new vm.Script(msg.code, { filename: `<cell ${cellNumber}>` });
    value = script.runInContext(context, { breakOnSigint: true, displayErrors: false });
    rememberNames(msg.code);
    outcome = value === undefined ? { type: 'ok' }
      : { type: 'ok', data: { 'text/plain': util.inspect(value, { colors: false, depth: 4 }) } };
  } catch (e) {
    outcome = errorMessage(e);
  }
  running = false;
  return flushed().then(() => send(outcome));
}

const KEYWORDS = ('await break case catch class const continue debugger default delete do else export extends '
  + 'false finally for function if import in instanceof let new null return super switch this throw true try '
  + 'typeof undefined var void while with yield async of').split(' ');

function propertyNames(obj) {
  const names = new Set();
  for (let o = obj; o !== null && o !== undefined; o = Object.getPrototypeOf(o)) {
    try {
      for (const n of Object.getOwnPropertyNames(o)) names.add(n);
    } catch (e) { break; }
    if (names.size > 5000) break;
  }
  return [...names].filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
}

function complete(msg) {
  const before = msg.code.slice(0, msg.cursor_pos);
  const dotted = /([A-Za-z_$][\w$]*(?:\s*\.\s*[A-Za-z_$][\w$]*)*)\s*\.\s*([\w$]*)$/.exec(before);
  let names = [];
  let prefix;
  if (dotted) {
    prefix = dotted[2];
    try {
      const obj = vm.runInContext(dotted[1], context, { timeout: 1000 });
      if (obj !== null && obj !== undefined) names = propertyNames(Object(obj));
    } catch (e) { names = []; }
  } else {
    const word = /[A-Za-z_$][\w$]*$/.exec(before);
    prefix = word ? word[0] : '';
    const global = vm.runInContext('globalThis', context);
    names = [...propertyNames(global), ...lexical, ...KEYWORDS];
  }
  const matches = [...new Set(names.filter((n) => n.startsWith(prefix)))].sort();
  send({ type: 'complete', matches, cursor_start: msg.cursor_pos - prefix.length, cursor_end: msg.cursor_pos });
}

function isComplete(msg) {
  try {
    new vm.Script(msg.code);
    return send({ type: 'is_complete', status: 'complete' });
  } catch (e) {
    const m = String(e && e.message);
    const incomplete = /Unexpected end of input|Unterminated template|missing \) after argument list$/.test(m)
      && (m !== 'missing ) after argument list' || endsOpen(msg.code));
    return send({ type: 'is_complete', status: incomplete ? 'incomplete' : 'invalid', indent: incomplete ? '  ' : '' });
  }
}

// "missing )" is also what `f(1 2)` says: call it incomplete only when adding a ")" fixes it.
function endsOpen(code) {
  try { new vm.Script(code + '\n)'); return true; } catch (e) { return /Unexpected end of input/.test(String(e.message)); }
}

function inspect(msg) {
  const before = msg.code.slice(0, msg.cursor_pos);
  const after = msg.code.slice(msg.cursor_pos);
  const m = /[A-Za-z_$][\w$.]*$/.exec(before);
  const m2 = /^[\w$]*/.exec(after);
  const expr = (m ? m[0] : '') + (m2 ? m2[0] : '');
  if (!expr) return send({ type: 'inspect', found: false });
  try {
    const value = vm.runInContext(expr, context, { timeout: 1000 });
    let text = `${expr}: ${typeof value}\n${util.inspect(value, { depth: 2 })}`;
    if (typeof value === 'function') text += `\n\n${String(value).slice(0, 2000)}`;
    return send({ type: 'inspect', found: true, data: { 'text/plain': text } });
  } catch (e) {
    return send({ type: 'inspect', found: false });
  }
}

const VERBS = { execute, complete, is_complete: isComplete, inspect };

function handle(msg) {
  const verb = VERBS[msg.op];
  if (!verb) {
    send({ type: 'error', ename: 'DriverError', evalue: `unknown op ${msg.op}`, traceback: [] });
    return Promise.resolve();
  }
  try {
    return Promise.resolve(verb(msg)).catch((e) => {
      send({ type: 'error', ename: 'DriverError', evalue: String(e && e.stack || e), traceback: [] });
    });
  } catch (e) {
    send({ type: 'error', ename: 'DriverError', evalue: String(e && e.stack || e), traceback: [] });
    return Promise.resolve();
  }
}

// A Ctrl-C outside a running cell (breakOnSigint handles the running one) must not end us.
process.on('SIGINT', () => {});
// Errors thrown later by timers or promises belong to no cell: print them, keep the state.
process.on('uncaughtException', (e) => { process.stderr.write(`Uncaught ${cleanStack(e).join('\n')}\n`); });
process.on('unhandledRejection', (e) => {
  process.stderr.write(`Unhandled promise rejection: ${cleanStack(e).join('\n')}\n`);
});

function loop() {
  readFrame((msg) => { handle(msg).then(() => setImmediate(loop)); });
}

send({ type: 'ready', version: process.versions.node });
loop();
