// litetask dashboard: one event stream for every dashboard tab of this browser.
//
// Loaded as a SharedWorker, it holds the only EventSource on GET /events and hands each
// message to every tab (a browser on HTTP/1.1 opens at most 6 connections to a server, so a
// stream per tab would starve the 6th tab). Where SharedWorker is missing the page loads
// this file too and runs the same hub for itself over a MessageChannel.
//
// The hub keeps the stream's position (the id of every message, the server's cursors
// included) and, when the browser gives a stream up (an HTTP error such as a proxy's 502 or
// a 401: EventSource does not retry those), opens a new one from that position after a
// capped, jittered backoff. Network errors are retried by EventSource itself with the same
// position. Tabs receive {kind: "state", state} and {kind: "event", type, data}; they send
// {kind: "bye"} when they go away and {kind: "reconnect"} after signing in.
"use strict";

(() => {
  const EVENT_TYPES = [
    "task.queued", "task.started", "task.progress", "task.completed",
    "task.failed", "task.cancelled", "task.retrying", "task.recovered", "reset", "cursor",
  ];
  const FIRST_DELAY_MS = 1000;
  const MAX_DELAY_MS = 15000;
  const MAX_TABS = 100; // ports of tabs that vanished without a "bye" cannot pile up

  class EventsHub {
    constructor(url) {
      this.url = url;
      this.ports = [];
      this.source = null;
      this.cursor = null; // SSE id of the last message: where the stream resumes
      this.state = "connecting"; // connecting | live | reconnecting | offline
      this.failures = 0;
      this.timer = null;
    }

    add(port) {
      this.ports.push(port);
      if (this.ports.length > MAX_TABS) this.ports.shift();
      port.onmessage = (message) => this.command(port, message.data || {});
      port.postMessage({ kind: "state", state: this.state });
      if (this.source === null && this.timer === null) this.open();
    }

    command(port, command) {
      if (command.kind === "bye") {
        this.ports = this.ports.filter((p) => p !== port);
        if (this.ports.length === 0) this.pause();
      } else if (command.kind === "reconnect" && this.source === null) {
        clearTimeout(this.timer);
        this.failures = 0;
        this.open();
      }
    }

    // No tab left: hold no connection (the position is kept for the next tab).
    pause() {
      if (this.source !== null) this.source.close();
      clearTimeout(this.timer);
      this.source = null;
      this.timer = null;
    }

    broadcast(message) {
      for (const port of this.ports) port.postMessage(message);
    }

    setState(state) {
      if (state === this.state) return;
      this.state = state;
      this.broadcast({ kind: "state", state });
    }

    open() {
      this.timer = null;
      const query = this.cursor === null ? "" : `?last_event_id=${encodeURIComponent(this.cursor)}`;
      const source = new EventSource(this.url + query);
      this.source = source;
      for (const type of EVENT_TYPES) {
        source.addEventListener(type, (message) => this.receive(type, message));
      }
      source.addEventListener("error", () => this.failed(source));
    }

    // Live from the first message: the server subscribes before it sends it.
    receive(type, message) {
      if (message.lastEventId) this.cursor = message.lastEventId;
      this.failures = 0;
      this.setState("live");
      if (type !== "cursor") this.broadcast({ kind: "event", type, data: message.data });
    }

    failed(source) {
      if (source !== this.source) return;
      if (source.readyState !== EventSource.CLOSED) {
        this.setState("reconnecting"); // EventSource retries with Last-Event-ID itself
        return;
      }
      source.close();
      this.source = null;
      this.failures += 1;
      this.setState("offline");
      const ceiling = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(this.failures - 1, 10));
      this.timer = setTimeout(() => this.open(), ceiling * (0.5 + Math.random() / 2));
    }
  }

  const scope = globalThis;
  scope.LitetaskEventsHub = EventsHub;
  if (typeof SharedWorkerGlobalScope !== "undefined" && scope instanceof SharedWorkerGlobalScope) {
    const hub = new EventsHub("/events");
    scope.addEventListener("connect", (event) => hub.add(event.ports[0]));
  }
})();
