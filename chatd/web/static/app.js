// chatd's web client: plain JavaScript, no framework, no build step.
//
// It speaks the JSON protocol of the README's "Web client" section over one
// WebSocket.  Everything a user wrote reaches the page only through
// textContent (see text() and addLinks()); the page never parses HTML it did
// not ship.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ui = {
    app: $("app"), me: $("me"), status: $("status"), notify: $("notify"),
    rooms: $("rooms"), privates: $("privates"),
    joinForm: $("join-form"), joinInput: $("join-input"),
    queryForm: $("query-form"), queryInput: $("query-input"),
    roomName: $("room-name"), topic: $("topic"), leave: $("leave"),
    older: $("older"), log: $("log"),
    sayForm: $("say-form"), sayInput: $("say-input"),
    members: $("members"), membersTitle: $("members-title"),
    toggleSidebar: $("toggle-sidebar"), toggleMembers: $("toggle-members"),
    login: $("login"), loginForm: $("login-form"), loginNick: $("login-nick"),
    loginError: $("login-error"), loginRules: $("login-rules"), loginTitle: $("login-title"),
    password: $("password"), passwordForm: $("password-form"), passwordInput: $("password-input"),
    passwordWhy: $("password-why"), passwordError: $("password-error"),
    passwordCancel: $("password-cancel"),
  };

  const MAX_LINES = 2000;          // kept per conversation
  const OLDER_STEP = 50;           // lines asked for by "Load older lines"
  const BACKOFF_FIRST = 1000;      // ms before the first reconnection attempt
  const BACKOFF_MAX = 30000;
  // The server's notices as it closes a connection for idleness
  // (--idle-timeout) or for not choosing a nickname in time (--login-timeout):
  // connecting again at once would only start the wait over (and show the
  // rooms a quit and a join each time), so the page waits for the user.
  const IDLE_CLOSES = {
    "Closing your connection: idle for ": "disconnected for being idle",
    "Closing your connection: not logged in within ": "disconnected: no nickname was chosen in time",
  };

  // ASCII-only folding, as the server folds nicknames and room names.
  const fold = (s) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

  const state = {
    ws: null,
    nick: null,            // the nickname the server confirmed
    wanted: null,          // the nickname to claim (again, after a reconnect)
    loggedIn: false,
    quitting: false,
    buffers: new Map(),    // key -> buffer; rooms are "#name", private ones "@nick"
    current: null,         // key of the buffer shown
    switchTo: null,        // key of a room to show once joined
    rejoin: null,          // after a reconnect: rooms to join again, and the one to show
    attempts: 0,
    timer: null,
    sent: [],              // lines typed, for Up/Down
    sentAt: 0,
    lobby: null,
    kicks: new Map(),      // room key -> how we were kicked from it, until its "left"
    idle: null,            // why it was closed for idleness: the user's next action connects again
    pending: [],           // what that action sent, for once back in
  };

  // ---- text, safely ----------------------------------------------------

  function el(tag, cls, content) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;

  // Append text to node, making http(s) links clickable: the link's text and
  // address are both set as plain values, never parsed as HTML.
  function addLinks(node, text) {
    let last = 0;
    for (const match of text.matchAll(URL_RE)) {
      let found = match[0].replace(/[.,;:!?'")\]}]+$/, "");
      let url = null;
      try { url = new URL(found); } catch (e) { url = null; }
      if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) continue;
      node.append(text.slice(last, match.index));
      const a = el("a", null, found);
      a.href = url.href;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      node.append(a);
      last = match.index + found.length;
    }
    node.append(text.slice(last));
  }

  function nickClass(nick) {
    // CRC-32 of the folded nickname over twelve colours, as chat-client
    // picks its own: a nickname has the same colour in every session, and
    // the same hue as in chat-client.
    let crc = -1;
    const bytes = new TextEncoder().encode(fold(nick));
    for (const b of bytes) {
      crc ^= b;
      for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xEDB88320 & -(crc & 1));
    }
    return "nick n" + (((crc ^ -1) >>> 0) % 12);
  }

  function timeNode(seconds) {
    const when = seconds ? new Date(seconds * 1000) : new Date();
    const node = el("time", "time",
      when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
    node.dateTime = when.toISOString();
    node.title = when.toLocaleString();
    return node;
  }

  // ---- conversations ---------------------------------------------------

  function buffer(key, name, kind) {
    let buf = state.buffers.get(key);
    if (!buf) {
      buf = { key, name, kind, nodes: [], ids: new Map(), oldest: null, catchUp: null,
              unread: 0, mention: false, topic: "", members: new Map(), joined: false,
              entry: null };
      state.buffers.set(key, buf);
      renderSidebar();
    }
    return buf;
  }

  const roomBuffer = (name) => buffer(fold(name), name, "room");
  const privateBuffer = (nick) => buffer("@" + fold(nick), nick, "private");

  function show(key) {
    const buf = state.buffers.get(key);
    if (!buf) return;
    state.current = key;
    buf.unread = 0;
    buf.mention = false;
    ui.roomName.textContent = buf.kind === "room" ? buf.name : "@" + buf.name;
    ui.topic.textContent = buf.topic;
    ui.topic.title = buf.topic;
    ui.leave.hidden = buf.kind !== "room";
    ui.leave.textContent = "Leave";
    showOlderButton(buf);
    // Swapping the log's lines is not news: keep screen readers quiet.
    ui.log.setAttribute("aria-live", "off");
    ui.log.replaceChildren(...buf.nodes);
    ui.log.scrollTop = ui.log.scrollHeight;
    setTimeout(() => ui.log.setAttribute("aria-live", "polite"), 0);
    renderMembers();
    renderSidebar();
    ui.app.classList.remove("show-sidebar");
    ui.toggleSidebar.setAttribute("aria-expanded", "false");
    updateTitle();
  }

  // Whether the log shows its last line (give or take a little): followed.
  function logAtEnd() {
    return ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 40;
  }

  // "Load older lines", over the log, while the room shown may have any.
  function showOlderButton(buf) {
    // The button takes the log's height: a log followed to its end still is.
    const atBottom = logAtEnd();
    ui.older.hidden = !(buf.kind === "room" && buf.oldest !== null && !buf.exhausted);
    if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
  }

  function drop(key) {
    state.buffers.delete(key);
    if (state.current === key) {
      state.current = null;
      const next = [...state.buffers.values()].reverse().find((b) => b.kind === "room") ||
        [...state.buffers.values()].pop();
      if (next) show(next.key);
      else {
        ui.log.replaceChildren();
        ui.roomName.textContent = "";
        ui.topic.textContent = "";
        ui.leave.hidden = ui.older.hidden = true;
      }
    }
    renderSidebar();
    renderMembers();
  }

  function renderSidebar() {
    const rooms = [], privates = [];
    for (const buf of state.buffers.values()) {
      const li = el("li");
      const button = el("button");
      button.type = "button";
      button.dataset.key = buf.key;
      button.append(el("span", "name", buf.kind === "room" ? buf.name : buf.name));
      if (buf.key === state.current) button.setAttribute("aria-current", "true");
      if (buf.unread) {
        const badge = el("span", buf.mention ? "unread mention" : "unread", String(buf.unread));
        badge.setAttribute("aria-label", `${buf.unread} unread`);
        button.append(badge);
      }
      button.addEventListener("click", () => { show(buf.key); ui.sayInput.focus(); });
      li.append(button);
      (buf.kind === "room" ? rooms : privates).push(li);
    }
    ui.rooms.replaceChildren(...rooms);
    ui.privates.replaceChildren(...privates);
  }

  function renderMembers() {
    const buf = state.buffers.get(state.current);
    const names = buf && buf.kind === "room" ? [...buf.members.values()] : [];
    names.sort((a, b) => fold(a) < fold(b) ? -1 : fold(a) > fold(b) ? 1 : 0);
    ui.membersTitle.textContent = buf && buf.kind === "room" ? `Members (${names.length})` : "Members";
    ui.members.replaceChildren(...names.map((nick) => {
      const li = el("li");
      const button = el("span", nickClass(nick).replace("nick ", "member "), nick);
      li.append(button);
      return li;
    }));
  }

  function updateTitle() {
    let unread = 0;
    for (const buf of state.buffers.values()) unread += buf.unread;
    document.title = unread ? `(${unread}) chatd` : "chatd";
  }

  // What tells a stored line from another given the same id: a server
  // started on another database (or a restored one) numbers its lines anew.
  const lineSig = (msg) => `${msg.time}\n${msg.nick}\n${msg.text ?? msg.topic ?? ""}`;

  // Add a line to a conversation.  `id` (a server message id) and `sig`
  // (lineSig) make a line appear once, however often a replay repeats it;
  // `before` puts older lines above the ones shown.
  function addLine(buf, node, { id = null, sig = "", counts = false, mention = false, before = false } = {}) {
    if (id !== null && id !== undefined) {
      const seen = buf.ids.get(id);
      if (seen === sig) {
        // Seen before: a replay after a reconnect reached what was shown.
        if (buf.catchUp) buf.catchUp.met = true;
        return false;
      }
      if (seen !== undefined) {
        // Another line under a shown line's id: the server's history is
        // not the one the ids shown came from, and they say nothing of it.
        buf.ids.clear();
        buf.oldest = null;
      }
      buf.ids.set(id, sig);
      if (buf.catchUp && (buf.catchUp.oldest === null || id < buf.catchUp.oldest)) {
        buf.catchUp.oldest = id;
      }
      if (buf.oldest === null || id < buf.oldest) buf.oldest = id;
    }
    const shown = buf.key === state.current;
    if (before) {
      // Older lines go above every line with a larger id.
      let at = 0;
      while (at < buf.nodes.length && !(Number(buf.nodes[at].dataset.id) > id)) at++;
      buf.nodes.splice(at, 0, node);
      if (shown) {
        const next = buf.nodes[at + 1];
        if (next && next.parentNode === ui.log) ui.log.insertBefore(node, next);
        else ui.log.append(node);
      }
      return true;
    }
    const atBottom = logAtEnd();
    buf.nodes.push(node);
    if (buf.nodes.length > MAX_LINES) {
      const gone = buf.nodes.shift();
      if (shown) gone.remove();
    }
    if (shown) {
      ui.log.append(node);
      if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
    }
    if (counts && (!shown || document.hidden)) {
      if (!shown) {
        buf.unread += 1;
        buf.mention = buf.mention || mention;
        renderSidebar();
      }
      updateTitle();
    }
    return true;
  }

  function messageNode(msg, cls) {
    const li = el("li", cls);
    if (msg.id !== undefined && msg.id !== null) li.dataset.id = String(msg.id);
    if (msg.history) li.classList.add("history");
    // A notice (an IRC user's NOTICE) asks for no answer: shown apart.
    if (msg.notice) li.classList.add("noticed");
    const body = el("span", "text");
    addLinks(body, msg.text);
    li.append(timeNode(msg.time), " ", el("span", nickClass(msg.nick), msg.nick), " ", body);
    return li;
  }

  function eventNode(text, time, cls = "event") {
    const li = el("li", cls);
    li.append(timeNode(time), " ", el("span", "text", text));
    return li;
  }

  function note(text, cls = "notice") {
    const buf = state.buffers.get(state.current);
    if (buf) addLine(buf, eventNode(text, null, cls));
    // In no conversation (every room left): shown where the log was, not
    // kept in a room the user is not in.
    else ui.log.append(eventNode(text, null, cls));
  }

  function mentions(text) {
    if (!state.nick) return false;
    const escaped = state.nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    return new RegExp(`(^|[^A-Za-z0-9_\\-\\[\\]\\\\\`^{|}])${escaped}($|[^A-Za-z0-9_\\-\\[\\]\\\\\`^{|}])`, "i").test(text);
  }

  function notifyIfHidden(title, body) {
    if (!document.hidden || !("Notification" in window) || Notification.permission !== "granted") return;
    try { new Notification(title, { body, tag: "chatd" }); } catch (e) { /* not allowed here */ }
  }

  // ---- what the server says --------------------------------------------

  const handlers = {
    hello(msg) {
      ui.loginRules.textContent = msg.nickRules || "";
      state.lobby = msg.lobby || "#lobby";
      if (state.wanted) send({ type: "nick", nick: state.wanted });
      else askNick();
    },

    you(msg) {
      const first = !state.loggedIn;
      if (ui.password.open) ui.password.close();
      if (!first && msg.old && msg.old !== msg.nick) {
        note(`you are now ${msg.nick}`);
        // Others see it as a rename in each room; here it is told once.
        for (const buf of state.buffers.values()) {
          if (buf.kind === "room" && buf.members.delete(fold(msg.old))) {
            buf.members.set(fold(msg.nick), msg.nick);
          }
        }
        membersChanged();
      }
      state.nick = msg.nick;
      state.wanted = msg.nick;
      state.loggedIn = true;
      ui.me.textContent = msg.nick;
      if (ui.login.open) ui.login.close();
      if (first && state.rejoin) {
        const { rooms, current } = state.rejoin;
        state.rejoin = null;
        for (const name of rooms) {
          if (fold(name) !== fold(state.lobby)) send({ type: "join", room: name });
        }
        if (!rooms.some((name) => fold(name) === fold(state.lobby))) {
          send({ type: "part", room: state.lobby });
        }
        state.switchTo = current;
      }
      // Sent once back from idleness, after the rooms it may be for.
      for (const pending of state.pending.splice(0)) send(pending);
    },

    room(msg) {
      const buf = roomBuffer(msg.room);
      buf.name = msg.room;
      buf.joined = true;
      buf.topic = msg.topic || "";
      buf.members = new Map(msg.members.map((nick) => [fold(nick), nick]));
      if (state.current === null || state.switchTo === buf.key) {
        state.switchTo = null;
        show(buf.key);
      } else if (state.current === buf.key) {
        show(buf.key);
      } else {
        renderSidebar();
      }
    },

    left(msg) {
      const key = fold(msg.room);
      const buf = state.buffers.get(key);
      if (!buf) return;
      drop(key);
      const kick = state.kicks.get(key);
      state.kicks.delete(key);
      if (msg.putOut) note(`you were put out of ${msg.room}` + (kick ? `: ${kick}` : ""));
    },

    identified(msg) {
      if (ui.password.open) ui.password.close();
      note(`you are identified as ${msg.nick}`);
    },

    expelled(msg) {
      state.quitting = true;
      note(`${msg.by} banned you from this server` +
        (msg.duration ? ` for ${duration(msg.duration)}` : "") + (msg.reason ? ` (${msg.reason})` : ""),
        "error");
    },

    ghosted(msg) {
      state.quitting = true;
      note(`the owner of ${msg.nick} took the nickname back; goodbye`, "error");
    },

    said(msg) { roomLine(msg, "message"); },
    acted(msg) { roomLine(msg, "message action"); },

    private(msg) {
      const own = state.nick && fold(msg.from) === fold(state.nick);
      const other = own ? msg.to : msg.from;
      const buf = privateBuffer(other);
      // A private action comes as "* nick waves" (the server has none).
      const acted = `* ${msg.from} `;
      const action = msg.text.startsWith(acted) && msg.text.length > acted.length;
      const li = action
        ? messageNode({ ...msg, nick: msg.from, text: msg.text.slice(acted.length) }, "message private action")
        : messageNode({ ...msg, nick: msg.from }, "message private");
      addLine(buf, li, { counts: !own, mention: !own });
      if (!own) notifyIfHidden(`${msg.from} (private)`, msg.text);
    },

    away(msg) {
      const buf = state.buffers.get("@" + fold(msg.nick));
      const text = `${msg.nick} is away: ${msg.text}`;
      if (buf) addLine(buf, eventNode(text, null, "notice"));
      else note(text);
    },

    joined(msg) {
      comingOrGoing(msg.room, msg.nick, "joined", "", (m) => m.set(fold(msg.nick), msg.nick));
    },
    parted(msg) {
      comingOrGoing(msg.room, msg.nick, "left", msg.reason, (m) => m.delete(fold(msg.nick)));
    },
    quit(msg) {
      comingOrGoing(msg.room, msg.nick, "quit", msg.reason, (m) => m.delete(fold(msg.nick)));
    },
    renamed(msg) {
      memberEvent(msg.room, `${msg.old} is now known as ${msg.new}`,
        (m) => { m.delete(fold(msg.old)); m.set(fold(msg.new), msg.new); });
    },
    kicked(msg) {
      const text = `${msg.nick} was kicked by ${msg.by}` + (msg.reason ? ` (${msg.reason})` : "");
      memberEvent(msg.room, text, (m) => m.delete(fold(msg.nick)));
      // The room's conversation goes at the "left" that follows: who and
      // why are said there.
      if (state.nick && fold(msg.nick) === fold(state.nick)) state.kicks.set(fold(msg.room), text);
    },
    banned(msg) {
      const where = msg.server ? "from the server" : "";
      const span = msg.duration ? ` for ${duration(msg.duration)}` : "";
      memberEvent(msg.room, `${msg.by} banned ${msg.target} ${where}${span}`.replace(/ +/g, " ").trim() +
        (msg.reason ? ` (${msg.reason})` : ""));
    },
    unbanned(msg) { memberEvent(msg.room, `${msg.by} lifted the ban on ${msg.target}`); },
    muted(msg) {
      memberEvent(msg.room, `${msg.by} muted ${msg.nick}` + (msg.duration ? ` for ${duration(msg.duration)}` : ""));
    },
    unmuted(msg) { memberEvent(msg.room, `${msg.by} unmuted ${msg.nick}`); },

    topic(msg) {
      if (msg.found) { foundLine(msg); return; }
      const buf = roomBuffer(msg.room);
      if (!msg.history) {
        buf.topic = msg.topic;
        if (buf.key === state.current) { ui.topic.textContent = msg.topic; ui.topic.title = msg.topic; }
      }
      const text = msg.topic ? `${msg.nick} set the topic: ${msg.topic}` : `${msg.nick} cleared the topic`;
      const li = eventNode(text, msg.time);
      if (msg.id !== undefined && msg.id !== null) li.dataset.id = String(msg.id);
      if (msg.history) li.classList.add("history");
      addLine(buf, li, { id: msg.id, sig: lineSig(msg), before: !!msg.older });
    },

    replayed(msg) {
      const buf = state.buffers.get(fold(msg.room));
      if (!buf) return;
      const catchUp = buf.catchUp;
      if (catchUp) {
        if (catchUp.met || msg.count === 0 || catchUp.oldest === null) {
          buf.catchUp = null;
        } else {
          // More was said while away than the replay holds: the lines
          // before it, until one already shown.
          send({ type: "history", room: buf.name, before: catchUp.oldest, count: OLDER_STEP });
          return;
        }
      }
      // Fewer than asked for: the room's first line is shown.
      if (msg.first) buf.exhausted = true;
      if (buf.key === state.current) showOlderButton(buf);
    },

    notice(msg) {
      for (const [start, why] of Object.entries(IDLE_CLOSES)) {
        if (msg.text.startsWith(start)) state.idle = why;
      }
      note(msg.text, "notice");
    },
    reply(msg) { note(msg.text, "reply"); },

    error(msg) {
      if (ui.password.open) {
        ui.passwordError.textContent = msg.text;
        return;
      }
      const registered = msg.code === "password-required" ||
        (msg.code === "nickname-taken" && msg.detail && msg.detail.registered);
      if (!state.loggedIn) {
        // The nickname was refused (taken, invalid, banned): ask again.
        askNick(msg.text);
      }
      if (registered) {
        // A registered nickname is taken with its password (from a stale
        // connection of its owner's too).
        askPassword(`${msg.detail.nick} is registered. If it is yours, type its password; ` +
          "otherwise choose another nickname.", msg.detail.nick);
        return;
      }
      if (state.loggedIn) note(msg.text, "error");
    },

    pong() {},
  };

  // A line listed by /history or /search: shown where the command was typed,
  // under its reply, with its room.
  function foundLine(msg) {
    const buf = state.buffers.get(state.current);
    if (!buf) return;
    const li = el("li", "found history");
    const body = el("span", "text");
    if (msg.type === "topic") {
      body.textContent = msg.topic ? `${msg.nick} set the topic: ${msg.topic}` : `${msg.nick} cleared the topic`;
    } else {
      addLinks(body, msg.text);
    }
    const nick = el("span", nickClass(msg.nick), msg.nick);
    if (msg.type === "acted") li.classList.add("action");
    li.append(timeNode(msg.time), " ", el("span", "room", msg.room), " ", nick, " ", body);
    addLine(buf, li);
  }

  function roomLine(msg, cls) {
    if (msg.found) { foundLine(msg); return; }
    const buf = roomBuffer(msg.room);
    const own = state.nick && fold(msg.nick) === fold(state.nick);
    const mention = !own && !msg.history && mentions(msg.text);
    const li = messageNode(msg, cls + (mention ? " mention" : ""));
    const added = addLine(buf, li, { id: msg.id, sig: lineSig(msg), counts: !own && !msg.history,
                                     mention, before: !!msg.older });
    if (added && mention) notifyIfHidden(`${msg.nick} in ${msg.room}`, msg.text);
  }

  function memberEvent(room, text, change) {
    const buf = state.buffers.get(fold(room));
    if (!buf) return;
    if (change) change(buf.members);
    addLine(buf, eventNode(text, null));
    if (buf.key === state.current) membersChanged();
  }

  // Arrivals one after another (a restart brings hundreds back at once), or
  // departures for one reason, show as one line that grows, as the line
  // protocol shows them: "ann, bob and 48 others have joined", not a line
  // each pushing the conversation away.
  const GROUPED_MS = 5000;

  function comingOrGoing(room, nick, verb, reason, change) {
    const buf = state.buffers.get(fold(room));
    if (!buf) return;
    change(buf.members);
    const last = buf.nodes[buf.nodes.length - 1];
    const kind = `${verb} ${reason || ""}`;
    const group = last && last.group;
    if (group && group.kind === kind && Date.now() - group.since < GROUPED_MS) {
      group.nicks.push(nick);
      group.since = Date.now();
      last.querySelector(".text").textContent = groupText(group);
    } else {
      const started = { kind, verb, reason, nicks: [nick], since: Date.now() };
      const li = eventNode(groupText(started), null);
      li.group = started;
      addLine(buf, li);
    }
    if (buf.key === state.current) membersChanged();
  }

  function groupText({ nicks, verb, reason }) {
    const [first, second] = nicks;
    const who = nicks.length === 1 ? first
      : nicks.length === 2 ? `${first} and ${second}`
      : nicks.length === 3 ? `${first}, ${second} and ${nicks[2]}`
      : `${first}, ${second} and ${nicks.length - 2} others`;
    return `${who} ${nicks.length === 1 ? "has" : "have"} ${verb}` + (reason ? ` (${reason})` : "");
  }

  // The member list is drawn at most once a frame: redrawn (sorted) for
  // every arrival of a storm, hundreds of them froze the page for seconds.
  let membersDue = false;

  function membersChanged() {
    if (membersDue) return;
    membersDue = true;
    requestAnimationFrame(() => { membersDue = false; renderMembers(); });
  }

  function duration(seconds) {
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
      if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
    }
    return `${seconds}s`;
  }

  // ---- the connection --------------------------------------------------

  function connect() {
    state.timer = null;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws`);
    state.ws = ws;
    setStatus("connecting…");
    ws.addEventListener("open", () => {
      state.attempts = 0;
      setStatus("connected");
    });
    ws.addEventListener("message", (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch (e) { return; }
      if (!msg || typeof msg.type !== "string") return;
      const handler = Object.prototype.hasOwnProperty.call(handlers, msg.type) && handlers[msg.type];
      if (handler) handler(msg);
    });
    ws.addEventListener("close", () => {
      if (state.ws !== ws) return;
      state.ws = null;
      if (state.loggedIn) {
        // Rejoin the same rooms, and show the same one, once back.
        const rooms = [...state.buffers.values()].filter((b) => b.kind === "room" && b.joined)
          .map((b) => b.name);
        const currentBuf = state.buffers.get(state.current);
        state.rejoin = { rooms, current: currentBuf && currentBuf.kind === "room" ? currentBuf.key : null };
        for (const buf of state.buffers.values()) {
          buf.joined = false;
          // Once back, its replay must reach a line shown already, or the
          // lines between are fetched too: no gap.
          if (buf.kind === "room" && buf.ids.size) buf.catchUp = { met: false, oldest: null };
        }
      }
      state.loggedIn = false;
      if (state.quitting) {
        // Gone for good: nobody is "here" any more, as the lists would say.
        for (const buf of state.buffers.values()) buf.members.clear();
        membersChanged();
        setStatus("disconnected: reload the page to connect again", true);
        return;
      }
      if (state.idle) {
        setStatus(`${state.idle}: what you send next connects again`, true);
        return;
      }
      const delay = Math.min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** state.attempts) * (0.5 + Math.random() / 2);
      state.attempts += 1;
      setStatus(`offline; trying again in ${Math.round(delay / 1000)} s`, true);
      state.timer = setTimeout(connect, delay);
    });
  }

  function send(msg) {
    if (!state.ws && state.idle) {
      // Back from idleness: connect again; the nickname (state.wanted) is
      // claimed on the greeting, and anything else sent once back in.
      state.idle = null;
      if (msg.type !== "nick") state.pending.push(msg);
      connect();
      return true;
    }
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) {
      note(state.quitting ? "disconnected; that was not sent (reload the page to connect again)"
        : "not connected; that was not sent", "error");
      return false;
    }
    state.ws.send(JSON.stringify(msg));
    return true;
  }

  function setStatus(text, offline = false) {
    ui.status.textContent = text;
    ui.status.classList.toggle("offline", offline);
  }

  // ---- what the user does ----------------------------------------------

  function askNick(error) {
    ui.loginError.textContent = error || "";
    ui.loginTitle.textContent = error ? "Choose another nickname" : "Choose a nickname";
    if (!ui.login.open) ui.login.showModal();
    if (state.wanted && !ui.loginNick.value) ui.loginNick.value = state.wanted;
    ui.loginNick.focus();
    ui.loginNick.select();
  }

  let passwordNick = null;
  function askPassword(why, nick) {
    passwordNick = nick;
    ui.passwordWhy.textContent = why;
    ui.passwordError.textContent = "";
    ui.passwordInput.value = "";
    if (!ui.password.open) ui.password.showModal();
    ui.passwordInput.focus();
  }

  ui.loginForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = ui.loginNick.value.trim();
    if (!nick) return;
    state.wanted = nick;
    ui.loginError.textContent = "";
    send({ type: "nick", nick });
  });
  // Escape would leave the page with no nickname and nothing to do.
  ui.login.addEventListener("cancel", (event) => event.preventDefault());

  ui.passwordForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const password = ui.passwordInput.value;
    if (!password) return;
    send({ type: "nick", nick: passwordNick, password });
    ui.passwordInput.value = "";
    ui.passwordError.textContent = "";
    // It closes once the server gives the nickname (you).
  });
  ui.passwordCancel.addEventListener("click", () => ui.password.close());

  ui.joinForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = ui.joinInput.value.trim();
    if (!name) return;
    join(name);
    ui.joinInput.value = "";
  });

  ui.queryForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const nick = ui.queryInput.value.trim();
    if (!nick) return;
    show(privateBuffer(nick).key);
    ui.queryInput.value = "";
    ui.sayInput.focus();
  });

  function join(name) {
    const room = name.startsWith("#") ? name : "#" + name;
    const key = fold(room);
    const buf = state.buffers.get(key);
    if (buf && buf.joined) { show(key); return; }
    state.switchTo = key;
    send({ type: "join", room });
  }

  ui.leave.addEventListener("click", () => {
    const buf = state.buffers.get(state.current);
    if (buf && buf.kind === "room") send({ type: "part", room: buf.name });
  });

  ui.older.addEventListener("click", () => {
    const buf = state.buffers.get(state.current);
    if (!buf || buf.kind !== "room" || buf.oldest === null) return;
    send({ type: "history", room: buf.name, before: buf.oldest, count: OLDER_STEP });
  });

  ui.toggleSidebar.addEventListener("click", () => {
    const open = ui.app.classList.toggle("show-sidebar");
    ui.app.classList.remove("show-members");
    ui.toggleSidebar.setAttribute("aria-expanded", String(open));
    if (open) (ui.rooms.querySelector("button") || ui.joinInput).focus();
  });
  ui.toggleMembers.addEventListener("click", () => {
    const open = ui.app.classList.toggle("show-members");
    ui.app.classList.remove("show-sidebar");
    ui.toggleMembers.setAttribute("aria-expanded", String(open));
  });

  if ("Notification" in window && Notification.permission === "default") {
    ui.notify.hidden = false;
    ui.notify.addEventListener("click", () => {
      Notification.requestPermission().then(() => { ui.notify.hidden = true; });
    });
  }

  ui.sayForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const line = ui.sayInput.value;
    if (!line.trim()) return;
    if (submit(line)) {
      state.sent.push(line);
      if (state.sent.length > 100) state.sent.shift();
      state.sentAt = state.sent.length;
      ui.sayInput.value = "";
    }
  });

  // A typed line: a message to the conversation shown, one of the commands
  // the page handles itself, or any other /command for the server.  Spaces
  // before a slash do not make a command a message: the line protocol
  // trims a line before reading it, and so does the page.
  // The server has no private action: a message "* nick waves", as IRC's
  // private ACTION and the line protocol's /msg NICK /me go.
  const privateAction = (nick, text) => ({ type: "tell", nick, text: `* ${state.nick} ${text}` });

  function submit(typed) {
    const line = typed.trimStart();
    const buf = state.buffers.get(state.current);
    const room = buf && buf.kind === "room" ? buf.name : null;
    if (line.startsWith("/") && !line.startsWith("//")) {
      const [, name, rest = ""] = line.match(/^\/(\S*)\s*([\s\S]*)$/);
      const args = rest.trim();
      switch (name.toLowerCase()) {
        case "me":
          // (As the line protocol answers a /me with no action.)
          if (!args) { note("usage: /me ACTION", "error"); return false; }
          if (buf && buf.kind === "private") return send(privateAction(buf.name, args));
          return send({ type: "act", room, text: args });
        case "join":
          if (args) { join(args.split(/\s+/)[0]); return true; }
          break;
        case "part": {
          // /part [#ROOM [REASON]], as the line protocol has it.
          const words = args ? args.split(/\s+/) : [];
          const target = words.length ? words[0] : room;
          const reason = words.length ? args.slice(words[0].length).trim() : "";
          if (target) return send({ type: "part", room: target, reason });
          break;
        }
        case "msg": {
          const m = args.match(/^(\S+)\s+([\s\S]+)$/);
          const action = m && m[2].match(/^\/me(?:\s+(\S[\s\S]*))?$/i);
          if (action && !action[1]) { note("usage: /msg NICK /me ACTION", "error"); return false; }
          if (action) return send(privateAction(m[1], action[1]));
          if (m) return send({ type: "tell", nick: m[1], text: m[2] });
          break;
        }
        case "query":
          if (args) { show(privateBuffer(args.split(/\s+/)[0]).key); return true; }
          break;
        case "nick":
          if (args) { state.wanted = args; return send({ type: "nick", nick: args }); }
          break;
        case "quit":
          state.quitting = true;
          return send({ type: "quit", reason: args });
        case "clear":
          if (buf) { buf.nodes = []; ui.log.replaceChildren(); }
          return true;
      }
      return send({ type: "command", room, line });
    }
    const text = line.startsWith("//") ? line.slice(1) : line;
    if (!buf) { note("join a room first: /join #room", "error"); return false; }
    if (buf.kind === "private") return send({ type: "tell", nick: buf.name, text });
    return send({ type: "say", room, text });
  }

  // Keys: Up/Down recall typed lines; Alt+Up/Alt+Down (or Ctrl+PageUp/Down)
  // move between conversations; Escape closes an open panel.
  ui.sayInput.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowUp" && state.sentAt > 0) {
      state.sentAt -= 1;
      ui.sayInput.value = state.sent[state.sentAt];
      event.preventDefault();
    } else if (event.key === "ArrowDown" && state.sentAt < state.sent.length) {
      state.sentAt += 1;
      ui.sayInput.value = state.sent[state.sentAt] || "";
      event.preventDefault();
    } else if (event.key === "Tab" && ui.sayInput.value) {
      // Complete the nickname being typed from the room's members.
      const buf = state.buffers.get(state.current);
      const value = ui.sayInput.value;
      const m = value.match(/(\S+)$/);
      if (!buf || !m) return;
      const found = [...buf.members.values()].find((n) => fold(n).startsWith(fold(m[1])));
      if (found) {
        ui.sayInput.value = value.slice(0, m.index) + found + (m.index === 0 ? ": " : " ");
        event.preventDefault();
      }
    }
  });

  document.addEventListener("keydown", (event) => {
    const up = (event.altKey && event.key === "ArrowUp") || (event.ctrlKey && event.key === "PageUp");
    const down = (event.altKey && event.key === "ArrowDown") || (event.ctrlKey && event.key === "PageDown");
    if (up || down) {
      const keys = [...state.buffers.keys()];
      if (!keys.length) return;
      const at = keys.indexOf(state.current);
      show(keys[(at + (down ? 1 : keys.length - 1)) % keys.length]);
      event.preventDefault();
    } else if (event.key === "Escape") {
      ui.app.classList.remove("show-sidebar", "show-members");
    }
  });

  document.addEventListener("visibilitychange", updateTitle);

  connect();
})();
