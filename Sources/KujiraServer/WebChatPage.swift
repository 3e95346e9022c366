/// The web chat `kujira serve` answers at `/`: one self-contained page (no CDN, no external file), compiled into the
/// binary. It talks to this server's own `/v1/chat/completions` with streaming: conversations kept in the browser's
/// localStorage, the model's thinking (`reasoning_content`) in a collapsible block, Markdown with code blocks, stop and
/// regenerate, temperature and max tokens, the model name and tokens/s. scripts/check-web-chat.sh drives it in headless
/// Chromium.
enum WebChatPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kujira chat</title>
<style>
  :root { --bg: #f6f7f9; --panel: #fff; --text: #1d2330; --muted: #6b7385; --accent: #2b6cb0; --border: #dde1e8; --code: #f0f2f5; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--text); background: var(--bg);
         display: grid; grid-template-columns: 240px 1fr; height: 100vh; }
  aside { background: var(--panel); border-right: 1px solid var(--border); display: flex; flex-direction: column; min-height: 0; }
  aside header { padding: 12px; font-weight: 600; display: flex; justify-content: space-between; align-items: center; }
  #conversations { list-style: none; margin: 0; padding: 0 8px; overflow-y: auto; flex: 1; }
  #conversations li { padding: 6px 8px; border-radius: 6px; cursor: pointer; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
  #conversations li.current { background: #e7eefc; }
  #conversations li button { float: right; border: 0; background: none; color: var(--muted); cursor: pointer; }
  aside details { padding: 8px 12px; border-top: 1px solid var(--border); font-size: 13px; }
  aside label { display: block; margin-top: 6px; color: var(--muted); }
  aside input { width: 100%; padding: 4px 6px; border: 1px solid var(--border); border-radius: 4px; }
  main { display: flex; flex-direction: column; min-height: 0; }
  main > header { padding: 10px 16px; border-bottom: 1px solid var(--border); background: var(--panel); color: var(--muted); font-size: 13px; }
  #model-name { color: var(--text); font-weight: 600; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; }
  .message { max-width: 820px; margin: 0 auto 14px; padding: 10px 14px; border-radius: 10px; background: var(--panel); border: 1px solid var(--border); }
  .message.user { background: #e7eefc; border-color: #cfdcf5; }
  .message .role { font-size: 12px; color: var(--muted); margin-bottom: 4px; }
  .thinking { color: var(--muted); font-size: 13px; margin-bottom: 6px; }
  .thinking summary { cursor: pointer; }
  .thinking .body { white-space: pre-wrap; border-left: 3px solid var(--border); padding-left: 8px; margin-top: 4px; }
  .content p { margin: 0 0 8px; }
  .content pre { background: var(--code); padding: 10px; border-radius: 6px; overflow-x: auto; }
  .content code { background: var(--code); padding: 1px 4px; border-radius: 4px; font: 13px ui-monospace, Menlo, Consolas, monospace; }
  .content pre code { padding: 0; background: none; }
  .stats { font-size: 12px; color: var(--muted); margin-top: 6px; }
  .error { color: #b42318; }
  footer { padding: 12px 16px; background: var(--panel); border-top: 1px solid var(--border); }
  footer form { max-width: 820px; margin: 0 auto; display: flex; gap: 8px; }
  #prompt { flex: 1; resize: vertical; min-height: 44px; max-height: 200px; padding: 8px; border: 1px solid var(--border); border-radius: 8px; font: inherit; }
  button.primary { background: var(--accent); color: #fff; border: 0; border-radius: 8px; padding: 0 16px; cursor: pointer; }
  button.secondary { background: none; border: 1px solid var(--border); border-radius: 8px; padding: 0 12px; cursor: pointer; }
  button[hidden] { display: none; }
</style>
</head>
<body>
<aside>
  <header>Conversations <button id="new-chat" class="secondary" title="New conversation">New</button></header>
  <ul id="conversations"></ul>
  <details>
    <summary>Settings</summary>
    <label>Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.6"></label>
    <label>Max tokens <input id="max-tokens" type="number" min="1" max="32768" step="1" value="1024"></label>
    <label>API key (if the server has one) <input id="api-key" type="password" autocomplete="off"></label>
  </details>
</aside>
<main>
  <header>Model: <span id="model-name">…</span> <span id="status"></span></header>
  <div id="messages"></div>
  <footer>
    <form id="composer">
      <textarea id="prompt" placeholder="Message (Enter to send, Shift+Enter for a new line)"></textarea>
      <button id="send" class="primary" type="submit">Send</button>
      <button id="stop" class="secondary" type="button" hidden>Stop</button>
      <button id="regenerate" class="secondary" type="button" hidden>Regenerate</button>
    </form>
  </footer>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const STORE = "kujira.chat.v1";
let state = load();
let controller = null;

function load() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORE));
    if (saved && Array.isArray(saved.conversations)) return saved;
  } catch (e) {}
  return { conversations: [], current: null, settings: {} };
}
function save() { localStorage.setItem(STORE, JSON.stringify(state)); }
function current() { return state.conversations.find((c) => c.id === state.current) || null; }
function newConversation() {
  const conversation = { id: String(Date.now()) + Math.random().toString(16).slice(2, 6), title: "New conversation", messages: [] };
  state.conversations.unshift(conversation);
  state.current = conversation.id;
  save();
  render();
  return conversation;
}

function escapeHTML(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
// Markdown: fenced code blocks, inline code, bold, italic, headings, lists and paragraphs; everything escaped first.
function inline(text) {
  return text.replace(/`([^`]+)`/g, "<code>$1</code>").replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
             .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>");
}
function markdown(source) {
  const parts = source.split(/```/);
  let html = "";
  parts.forEach((part, i) => {
    if (i % 2 === 1) {
      const newline = part.indexOf("\n");
      const language = newline > 0 ? part.slice(0, newline).trim() : "";
      const code = newline >= 0 ? part.slice(newline + 1) : part;
      html += `<pre><code class="language-${escapeHTML(language)}">${escapeHTML(code.replace(/\n$/, ""))}</code></pre>`;
      return;
    }
    for (const block of escapeHTML(part).split(/\n{2,}/)) {
      if (!block.trim()) continue;
      const lines = block.split("\n");
      if (lines.every((l) => /^\s*([-*]|\d+\.)\s+/.test(l))) {
        const ordered = /^\s*\d+\./.test(lines[0]);
        html += (ordered ? "<ol>" : "<ul>") + lines.map((l) => `<li>${inline(l.replace(/^\s*([-*]|\d+\.)\s+/, ""))}</li>`).join("") + (ordered ? "</ol>" : "</ul>");
      } else if (/^#{1,6}\s/.test(block)) {
        const level = block.match(/^#+/)[0].length;
        html += `<h${level}>${inline(block.replace(/^#+\s*/, ""))}</h${level}>`;
      } else {
        html += `<p>${inline(lines.join("<br>"))}</p>`;
      }
    }
  });
  return html;
}

function messageElement(message, index) {
  const element = document.createElement("div");
  element.className = "message " + message.role;
  element.dataset.index = index;
  element.dataset.state = message.pending ? "streaming" : "done";
  const role = document.createElement("div");
  role.className = "role";
  role.textContent = message.role === "user" ? "You" : "Assistant";
  element.appendChild(role);
  if (message.reasoning) {
    const thinking = document.createElement("details");
    thinking.className = "thinking";
    thinking.open = !!message.pending && !message.content;
    thinking.innerHTML = `<summary>Thinking</summary><div class="body"></div>`;
    thinking.querySelector(".body").textContent = message.reasoning;
    element.appendChild(thinking);
  }
  const content = document.createElement("div");
  content.className = "content";
  if (message.role === "user") content.textContent = message.content; else content.innerHTML = markdown(message.content || "");
  element.appendChild(content);
  if (message.error) {
    const error = document.createElement("div");
    error.className = "error";
    error.textContent = message.error;
    element.appendChild(error);
  }
  if (message.stats) {
    const stats = document.createElement("div");
    stats.className = "stats";
    stats.textContent = message.stats;
    element.appendChild(stats);
  }
  return element;
}

function render() {
  const list = $("conversations");
  list.innerHTML = "";
  for (const conversation of state.conversations) {
    const item = document.createElement("li");
    item.textContent = conversation.title;
    item.className = conversation.id === state.current ? "current" : "";
    item.onclick = () => { if (!controller) { state.current = conversation.id; save(); render(); } };
    const remove = document.createElement("button");
    remove.textContent = "×";
    remove.title = "Delete";
    remove.onclick = (event) => {
      event.stopPropagation();
      if (controller) return;
      state.conversations = state.conversations.filter((c) => c.id !== conversation.id);
      if (state.current === conversation.id) state.current = state.conversations[0] ? state.conversations[0].id : null;
      save();
      render();
    };
    item.appendChild(remove);
    list.appendChild(item);
  }
  const messages = $("messages");
  messages.innerHTML = "";
  const conversation = current();
  if (conversation) conversation.messages.forEach((m, i) => messages.appendChild(messageElement(m, i)));
  messages.scrollTop = messages.scrollHeight;
  const last = conversation && conversation.messages[conversation.messages.length - 1];
  $("regenerate").hidden = !!controller || !last || last.role !== "assistant";
  $("stop").hidden = !controller;
  $("send").disabled = !!controller;
}

function headers() {
  const result = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) result["Authorization"] = "Bearer " + key;
  return result;
}

async function complete(conversation) {
  const request = conversation.messages.filter((m) => !m.pending).map((m) => ({ role: m.role, content: m.content }));
  const reply = { role: "assistant", content: "", reasoning: "", pending: true };
  conversation.messages.push(reply);
  controller = new AbortController();
  render();
  const started = performance.now();
  let firstToken = null, usage = null;
  const update = () => {
    const element = document.querySelector(`#messages .message[data-index="${conversation.messages.length - 1}"]`);
    if (element) element.replaceWith(messageElement(reply, conversation.messages.length - 1));
    $("messages").scrollTop = $("messages").scrollHeight;
  };
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ model: $("model-name").textContent, messages: request, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temperature").value), max_tokens: Number($("max-tokens").value) }),
    });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try { message = (await response.json()).error.message; } catch (e) {}
      throw new Error(message);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message || "server error");
        if (chunk.usage) usage = chunk.usage;
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (!delta) continue;
        if (delta.reasoning_content || delta.content) firstToken = firstToken || performance.now();
        if (delta.reasoning_content) reply.reasoning += delta.reasoning_content;
        if (delta.content) reply.content += delta.content;
        update();
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") reply.error = String(error.message || error);
    else reply.stopped = true;
  }
  delete reply.pending;
  const seconds = (performance.now() - (firstToken || started)) / 1000;
  if (usage && usage.completion_tokens) {
    reply.stats = `${usage.completion_tokens} tokens, ${(usage.completion_tokens / Math.max(seconds, 1e-3)).toFixed(1)} tokens/s` +
                  (reply.stopped ? " (stopped)" : "");
  } else if (reply.stopped) {
    reply.stats = "stopped";
  }
  controller = null;
  save();
  render();
}

async function send(text) {
  const conversation = current() || newConversation();
  if (!conversation.messages.length) conversation.title = text.slice(0, 40);
  conversation.messages.push({ role: "user", content: text });
  save();
  await complete(conversation);
}

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || controller) return;
  $("prompt").value = "";
  send(text);
});
$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("composer").requestSubmit(); }
});
$("stop").onclick = () => { if (controller) controller.abort(); };
$("regenerate").onclick = () => {
  const conversation = current();
  if (!conversation || controller) return;
  if (conversation.messages.length && conversation.messages[conversation.messages.length - 1].role === "assistant") conversation.messages.pop();
  complete(conversation);
};
$("new-chat").onclick = () => { if (!controller) newConversation(); };
for (const id of ["temperature", "max-tokens", "api-key"]) {
  if (state.settings[id] !== undefined) $(id).value = state.settings[id];
  $(id).addEventListener("change", () => { state.settings[id] = $(id).value; save(); });
}
fetch("/v1/models", { headers: headers() }).then((r) => r.json()).then((list) => {
  $("model-name").textContent = list.data[0].id;
}).catch(() => { $("model-name").textContent = "(set the API key in Settings)"; });
render();
</script>
</body>
</html>
"""#
}
